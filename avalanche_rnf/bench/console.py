"""What ``rnf-bench`` shows while it runs: a run's progress bar over its experiences, and the warnings
redirect that sends the dependencies' warnings to the run directory's log instead of the console."""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from avalanche_rnf.bench.results import RunRecord

LOG_FILE = "logs/rnf-bench.log"  # in the run directory: warnings and the runs' start and end
STEP_BAR_DELAY = 5.0  # seconds a run takes before its bar over experiences appears


class StepBar:
    """A run's progress bar over its training steps (experiences), shown only once the run has taken
    :data:`STEP_BAR_DELAY` seconds, below the bar over runs and cleared when the run ends."""

    def __init__(self, label: str):
        self.label = label
        self.bar: Any = None  # a tqdm bar, made on the first call

    def __call__(self, done: int, total: int) -> None:
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=total, desc=self.label, unit="exp", position=1, leave=False, file=sys.stderr,
                            delay=STEP_BAR_DELAY, dynamic_ncols=True)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class WarningLog:
    """Warnings while the CLI runs go to the run directory's log (:data:`LOG_FILE`), each once, not to the
    console; RNF's own warnings (``RNF...``, or raised in the library) are also printed, once each.

    Only inside the ``with`` block: it restores the warning machinery as it found it. Warnings before
    the run directory is known are kept and written when :meth:`attach` names the file. Filters are left
    as they are (warnings ignored by them stay ignored); Avalanche's deprecation notices, which force
    themselves past the filters, land in the log too.
    """

    def __init__(self) -> None:
        self.file: IO[str] | None = None
        self.pending: list[str] = []
        self.logged: set[tuple[type[Warning], str, str, int]] = set()
        self.printed: set[str] = set()
        self._catch = warnings.catch_warnings()

    def __enter__(self) -> WarningLog:
        self._catch.__enter__()
        warnings.showwarning = self.show
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._catch.__exit__(kind, error, trace)
        if self.file is not None:
            self.file.close()
            self.file = None

    def attach(self, path: Path) -> None:
        """Write to ``path`` (appending: a resumed run keeps the earlier invocations' lines) from now on."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(path, "a")
        for line in self.pending:
            self.file.write(line)
        self.file.flush()
        self.pending = []

    def write(self, text: str) -> None:
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}\n"
        if self.file is None:
            self.pending.append(line)
        else:
            self.file.write(line)
            self.file.flush()

    def show(self, message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: IO[str] | None = None, line: str | None = None) -> None:
        text = str(message)
        key = (category, text, filename, lineno)
        if key not in self.logged:
            self.logged.add(key)
            self.write(warnings.formatwarning(message, category, filename, lineno, line).rstrip())
        if _is_rnf_warning(text, filename) and text not in self.printed:
            self.printed.add(text)
            from tqdm import tqdm

            tqdm.write(f"rnf-bench: warning: {text}", file=sys.stderr)


_LIBRARY = Path(__file__).resolve().parents[1]


def _is_rnf_warning(text: str, filename: str) -> bool:
    """A warning of RNF itself: its message starts with 'RNF', or the library (not the harness) raised it."""
    if text.startswith("RNF"):
        return True
    try:
        path = Path(filename).resolve()
    except (OSError, ValueError):
        return False
    return path.is_relative_to(_LIBRARY) and not path.is_relative_to(_LIBRARY / "bench")


def outcome(record: RunRecord) -> str:
    """A finished run as the log's line tells it: its average accuracy and time, or why it did not run."""
    if record.status != "ok":
        return f"{record.status}: {record.reason}"
    return (f"ok, average accuracy {record.average_accuracy:.4f}, "
            f"{sum(record.train_seconds) + record.eval_seconds:.1f} s")


def display_path(path: Path) -> Path:
    """``path`` relative to the current directory when inside it (shorter on the console), else as given."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path
