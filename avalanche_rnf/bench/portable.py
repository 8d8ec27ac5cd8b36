"""The command and the data root as results.json and summary.md record them: with paths relative to where
the command runs again (``command_dir``, relative to the run directory), never a machine's absolute path."""

from __future__ import annotations

import argparse
import os
import shlex
from pathlib import Path

from avalanche_rnf.bench.arguments import build_parser
from avalanche_rnf.bench.data import ENV_VAR

PATH_OPTIONS = ("--out", "--data-root", "--sweep", "--write-tuned")  # recorded relative (portable_command)


def portable_command(argv: list[str], out: Path, cwd: Path | None = None) -> tuple[str, str]:
    """The command as results.json and summary.md record it, and where to run it from, relative to the run
    directory ``out`` (``command_dir``).

    When the run directory is inside the current directory (``rnf-bench --out benchmarks/results/x`` from the
    repository root), the command is recorded as typed, run from there (``command_dir`` ``../../..``); paths
    given as absolute ones become relative to it. Otherwise (a temporary directory, say) the command is
    recorded to run in the run directory itself (``--out .``, ``command_dir`` ``.``). A data root outside
    that directory is recorded as ``"$RNF_DATA_ROOT"``; another file outside it (a sweep configuration, whose
    grids the plan records anyway) by its name. No machine's absolute path gets in.
    """
    cwd = (cwd or Path.cwd()).resolve()
    run_dir = (cwd / out).resolve()
    base = _command_base(out, cwd)
    options = [o for o in build_parser()._option_string_actions if o.startswith("--")]
    parts: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        i += 1
        name, eq, value = token.partition("=")
        option = _long_option(name, options) if token.startswith("--") else None
        if option not in PATH_OPTIONS:
            parts.append(shlex.quote(token))
            continue
        if not eq:
            if i >= len(argv) or (option == "--write-tuned" and argv[i].startswith("-")):
                parts.append(shlex.quote(token))  # --write-tuned without a file: the default one
                continue
            value = argv[i]
            i += 1
        relative = value if option == "--sweep" and value == "default" else _relative_path(value, cwd, base)
        if relative is not None:
            shown = shlex.quote(relative)
        elif option == "--data-root":
            shown = f'"${ENV_VAR}"'
        else:
            shown = shlex.quote(Path(value).name)
        parts.append(f"{option}={shown}" if eq else f"{shlex.quote(name)} {shown}")
    command = " ".join(["rnf-bench", *parts])
    return command, Path(os.path.relpath(base, run_dir)).as_posix()


def portable_data_root(args: argparse.Namespace, out: Path) -> str | None:
    """Where the data came from, as results.json records it: relative to where the command runs
    (see :func:`portable_command`), or ``$RNF_DATA_ROOT``; None when no data root is set."""
    if args.data_root:
        cwd = Path.cwd().resolve()
        return _relative_path(args.data_root, cwd, _command_base(out, cwd)) or f"${ENV_VAR}"
    return f"${ENV_VAR}" if os.environ.get(ENV_VAR) else None


def _long_option(name: str, options: list[str]) -> str | None:
    """The option ``name`` stands for, allowing argparse's unambiguous abbreviations."""
    if name in options:
        return name
    matches = [o for o in options if o.startswith(name)]
    return matches[0] if len(matches) == 1 else None


def _command_base(out: Path, cwd: Path) -> Path:
    """Where a recorded command runs: the current directory if it holds the run directory, else the latter."""
    run_dir = (cwd / out).resolve()
    return cwd if run_dir.is_relative_to(cwd) else run_dir


def _relative_path(value: str, cwd: Path, base: Path) -> str | None:
    """``value`` (a path given on the command line in ``cwd``) relative to ``base``; None if outside it."""
    path = Path(value)
    if base == cwd and not path.is_absolute() and not value.startswith("~"):
        return value  # as typed, relative to where the command runs
    full = (cwd / path.expanduser()).resolve()
    return Path(os.path.relpath(full, base)).as_posix() if full.is_relative_to(base) else None
