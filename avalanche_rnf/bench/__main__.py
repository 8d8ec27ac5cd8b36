"""``python -m avalanche_rnf.bench``: the same as the ``rnf-bench`` console script."""

from avalanche_rnf.bench.cli import main

raise SystemExit(main())
