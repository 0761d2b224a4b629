"""Progress bars for long work, on stderr so that a JSON report on stdout stays clean.

Library code (the demos, the scanners' callers) and the command line share these, so nothing
below the command line needs to import it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # pragma: no cover - rich is imported only when a bar is shown
    from rich.console import Console


class Progress(Protocol):
    """What a scan reports to: ``progress(step_name, done, total)``."""

    def __call__(self, name: str, done: int, total: int) -> None: ...


Count = Callable[[int, int], None]
"""What a loop over items reports to (an import, a batch of LLM calls): ``(done, total)``."""


@contextlib.contextmanager
def progress_bar(console: Console | None = None) -> Iterator[Progress]:
    """A transient bar; yields the ``progress(name, done, total)`` callback scans take."""
    from rich.console import Console
    from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as Bar

    with Bar(TextColumn("[bold]scanning[/] {task.description}"), BarColumn(),
             TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
             console=console or Console(stderr=True), transient=True) as bar:
        task = bar.add_task("", total=None)

        def progress(name: str, done: int, total: int) -> None:
            bar.update(task, description=name, completed=done, total=total)

        yield progress


def counted_bar(label: str, console: Console | None = None):
    """A bar with a count and time remaining, for loops over a known number of items."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeRemainingColumn,
    )
    from rich.progress import Progress as Bar

    return Bar(TextColumn(f"[bold]{label}[/]"), BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn(), console=console or Console(stderr=True), transient=True)
