"""``python -m benchmarks``: the same as the ``rnf-bench`` console script."""

from benchmarks.cli import main

raise SystemExit(main())
