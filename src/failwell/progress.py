"""Progress for long work, on stderr so that a JSON report on stdout stays clean.

On a terminal it is a Rich bar. Anywhere else (CI logs, pipes, ``nohup``) it is a log line
every :data:`INTERVAL` seconds (``FAILWELL_PROGRESS_SECONDS``) from a background thread, so
work that blocks for a minute in one step still shows it is alive, and work shorter than the
interval prints nothing. Library code (the demos, the scanners' callers) and the command line
share these, so nothing below the command line needs to import it.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import IO, TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # pragma: no cover - rich is imported only when progress is shown
    from rich.console import Console

INTERVAL = 10.0


class Progress(Protocol):
    """What a scan reports to: ``progress(step_name, done, total)``."""

    def __call__(self, name: str, done: int, total: int) -> None: ...


Count = Callable[[int, int], None]
"""What a loop over items reports to (an import, a batch of LLM calls): ``(done, total)``."""


class LogLines:
    """Progress as periodic log lines: the latest state, every ``interval`` seconds."""

    def __init__(self, label: str, stream: IO[str], interval: float | None = None):
        self.label, self.stream = label, stream
        self.interval = interval if interval is not None else _interval()
        self.state = ("", 0, 0)
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick, daemon=True,
                                        name="failwell-progress")

    def __call__(self, name: str, done: int, total: int) -> None:
        self.state = (name, done, total)

    def __enter__(self) -> LogLines:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def line(self) -> str:
        name, done, total = self.state
        step = f" {name}" if name else ""
        count = f": {done}/{total}" if total else ""
        return f"failwell: {self.label}{step}{count} ({time.monotonic() - self.started:.0f} s)"

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            with contextlib.suppress(ValueError, OSError):  # the stream was closed under us
                self.stream.write(self.line() + "\n")
                self.stream.flush()


def _interval() -> float:
    try:
        return max(0.05, float(os.environ.get("FAILWELL_PROGRESS_SECONDS", INTERVAL)))
    except ValueError:
        return INTERVAL


@contextlib.contextmanager
def progress_bar(console: Console | None = None, *, label: str = "scanning",
                 eta: bool = False) -> Iterator[Progress]:
    """Yields the ``progress(name, done, total)`` callback that scans take: a transient bar on
    a terminal, periodic log lines elsewhere."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.progress import Progress as Bar

    console = console or Console(stderr=True)
    if not console.is_terminal:
        with LogLines(label, console.file) as lines:
            yield lines
        return
    clock = TimeRemainingColumn() if eta else TimeElapsedColumn()
    with Bar(TextColumn(f"[bold]{label}[/] {{task.description}}"), BarColumn(),
             MofNCompleteColumn(), clock, console=console, transient=True) as bar:
        task = bar.add_task("", total=None)

        def progress(name: str, done: int, total: int) -> None:
            bar.update(task, description=name, completed=done, total=total or None)

        yield progress


@contextlib.contextmanager
def counter(label: str, console: Console | None = None) -> Iterator[Count]:
    """Progress for a loop over a known number of items: ``count(done, total)``."""
    with progress_bar(console, label=label, eta=True) as progress:
        yield lambda done, total: progress("", done, total)
