"""Generate the results tables of the README and the documentation from the committed result files.

``python -m avalanche_rnf.bench.report`` rewrites the blocks between ``<!-- results:NAME -->`` and
``<!-- /results:NAME -->`` in README.md and docs/{results,protocol,benchmarks}.md (``BLOCKS``) from
``benchmarks/results/*/results.json``; ``--check`` only reports whether they are up to date.
"""

from __future__ import annotations

import argparse
import re
import sys
from functools import partial
from pathlib import Path
from typing import Callable

from avalanche_rnf.bench.ablation_table import NARROW_ORDER, RETRAINED_ORDER, ablation_table
from avalanche_rnf.bench.defaults_table import defaults_table
from avalanche_rnf.bench.mechanism_table import mechanism_table
from avalanche_rnf.bench.peer_targets import peer_targets_table
from avalanche_rnf.bench.result_tables import (
    RESULTS,
    ROOT,
    comparison_table,
    explanation_table,
    targets_table,
    task_agnostic_table,
)
from avalanche_rnf.bench.results import load_records
from avalanche_rnf.bench.setup_tables import hparams_table, presets_table, scaling_table

DOCS_LINK = "path:../benchmarks/results/"
"""How the documentation pages (``docs/*.md``, MyST) link a result directory's files: ``path:`` copies them
into the built site."""

Blocks = dict[str, Callable[[], str]]
"""A page's blocks: name -> the function that makes its text."""

ONLINE_ORDER = ("online-split_mnist-task", "online-split_mnist-class", "online10-split_mnist-task",
                "online10-split_mnist-class")
"""The online result directories (``rnf-bench --online``), a table of their own."""

BLOCKS: dict[Path, Blocks] = {
    ROOT / "README.md": {"comparison": comparison_table},
    ROOT / "docs" / "results.md": {"comparison": lambda: comparison_table(link=DOCS_LINK),
                                   "targets": lambda: targets_table(link=DOCS_LINK),
                                   "peer-targets": lambda: peer_targets_table(RESULTS, link=DOCS_LINK),
                                   "defaults": lambda: defaults_table(RESULTS, link=DOCS_LINK),
                                   "task-agnostic": lambda: task_agnostic_table(link=DOCS_LINK),
                                   "online": lambda: comparison_table(link=DOCS_LINK, order=ONLINE_ORDER),
                                   "explanation-drift": lambda: explanation_table(link=DOCS_LINK),
                                   "unit-scores": lambda: ablation_table(RESULTS, link=DOCS_LINK),
                                   "unit-scores-narrow": lambda: ablation_table(RESULTS, link=DOCS_LINK,
                                                                                order=NARROW_ORDER,
                                                                                label="Narrow CNN"),
                                   "unit-scores-retrained": lambda: ablation_table(
                                       RESULTS, link=DOCS_LINK, order=RETRAINED_ORDER,
                                       label="Narrow CNN, retrained"),
                                   "mechanisms": lambda: mechanism_table(RESULTS, link=DOCS_LINK)},
    ROOT / "docs" / "protocol.md": {"hparams": hparams_table, "presets": presets_table},
    ROOT / "docs" / "benchmarks.md": {"scaling": scaling_table},
}


def render(text: str, blocks: Blocks) -> str:
    for name, make in blocks.items():
        pattern = re.compile(rf"(<!-- results:{name} -->\n).*?(<!-- /results:{name} -->)", re.S)
        if not pattern.search(text):
            raise ValueError(f"no <!-- results:{name} --> block to fill")
        text = pattern.sub(partial(_filled, make), text)
    return text


def _filled(make: Callable[[], str], match: re.Match[str]) -> str:
    """A block's markers around the text ``make`` returns."""
    return match.group(1) + make() + "\n" + match.group(2)


def rewrite_run_dirs(results: Path = RESULTS) -> None:
    """Regenerate every result directory's ``summary.md`` and plots from its ``results.json``."""
    from avalanche_rnf.bench.summary import write_summary

    for folder in sorted(results.iterdir()):
        if (folder / "results.json").is_file():
            meta, records = load_records(folder)
            write_summary(folder, meta, records, search=bool(meta.get("plan", {}).get("search")))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a page is out of date, write nothing")
    parser.add_argument("--run-dirs", action="store_true",
                        help="also regenerate each result directory's summary.md and plots from its results.json")
    args = parser.parse_args(argv)
    if args.run_dirs and not args.check:
        rewrite_run_dirs()
    stale = []
    for path, blocks in BLOCKS.items():
        text = path.read_text()
        new = render(text, blocks)
        if new != text:
            stale.append(path)
            if not args.check:
                path.write_text(new)
    if args.check and stale:
        stale_names = ", ".join(str(p) for p in stale)
        print(f"out of date (run python -m avalanche_rnf.bench.report): {stale_names}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
