"""Sphinx configuration: Markdown pages (MyST) and an API reference from the reST docstrings.

Build: ``sphinx-build -W --keep-going -b html docs <out>`` (after ``pip install -e ".[docs]"``).
Nothing is fetched at build time: no intersphinx, the figure is committed (``docs/figures/pipeline.py``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

project = "avalanche-rnf"
author = "avalanche-rnf contributors"
copyright = "avalanche-rnf contributors, MIT licence"  # noqa: A001 (Sphinx's name)

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "figures/*.py"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

html_theme = "furo"
html_title = "avalanche-rnf"
html_static_path = []

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}


def _rnf_cli_help() -> str:
    """``rnf-bench --help``, as the reference page of the benchmark harness shows it."""
    from avalanche_rnf.bench.cli import build_parser

    parser = build_parser()
    parser.prog = "rnf-bench"
    return parser.format_help()


class _CliHelp(SphinxDirective):
    """``rnf-bench-help``: the harness's ``--help`` text, generated from its argument parser."""

    def run(self):
        text = _rnf_cli_help()
        return [nodes.literal_block(text, text, language="text")]


def _short_reference(app, env, node, contnode):
    """Resolve ``avalanche_rnf.<module>.<Name>`` (as the docstrings write it) to ``avalanche_rnf.<Name>``,
    where the API page documents the package's public names."""
    target = node.get("reftarget", "")
    if node.get("refdomain") != "py" or not target.startswith("avalanche_rnf."):
        return None
    parts = target.split(".")
    domain = env.get_domain("py")
    for i in range(len(parts) - 1, 1, -1):
        short = ".".join(["avalanche_rnf", *parts[i:]])
        if short != target and short in domain.objects:
            node["reftarget"] = short
            return domain.resolve_xref(env, node["refdoc"], app.builder, node["reftype"], short, node, contnode)
    return None


def setup(app):
    app.add_directive("rnf-bench-help", _CliHelp)
    app.connect("missing-reference", _short_reference)
