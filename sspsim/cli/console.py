"""Terminal output: progress bars on a terminal, nothing in pipes or CI; tables with rich."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

__all__ = ["interactive", "print_table", "print_verdicts", "progress_bar"]


def interactive() -> bool:
    """Whether stderr is a terminal a human watches (CI and pipes get no progress bars)."""
    return sys.stderr.isatty() and not os.environ.get("CI")


@contextmanager
def progress_bar(label: str, *, enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A ``progress(done, total)`` callback drawing a rich bar, or None when disabled."""
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        transient=True, console=_console(stderr=True),
    ) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], *, caption: str | None = None) -> None:
    """Print a rich table to stdout (120 columns wide when stdout is not a terminal)."""
    from rich.table import Table

    table = Table(title=title, caption=caption, title_justify="left", caption_justify="left")
    for i, col in enumerate(columns):
        table.add_column(col, justify="left" if i == 0 else "right", overflow="fold")
    for row in rows:
        table.add_row(*(_cell(v) for v in row))
    _console().print(table)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != value:
            return "-"
        return f"{value:.4g}"
    return str(value)


def _console(stderr: bool = False):  # type: ignore[no-untyped-def]
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    return Console(file=stream, width=None if stream.isatty() else 120, highlight=False)


_STYLE = {"holds": "green", "violated": "bold red", "not_applicable": "dim"}


def print_verdicts(verdicts) -> None:  # type: ignore[no-untyped-def]
    """One table per run (sweeps: then one for the sweep-level theorems), and a count."""
    from rich.table import Table

    console = _console()
    runs: dict[str, list] = {}
    for v in verdicts:
        runs.setdefault(v.run or "", []).append(v)
    for run, group in runs.items():
        table = Table(title=f"{run}" + (f" ({group[0].n_runs} runs)" if group[0].n_runs > 1 else ""),
                      title_justify="left")
        for col in ("theorem", "outcome", "measured", "bound", "ratio", "detail"):
            table.add_column(col, justify="right" if col in ("measured", "bound", "ratio") else "left",
                             overflow="fold")
        for v in group:
            style = _STYLE[v.outcome.value]
            table.add_row(v.theorem, f"[{style}]{v.outcome.value}[/]", _cell(v.measured), _cell(v.bound),
                          _cell(v.ratio), v.detail)
        console.print(table)
    counts = {k: sum(v.outcome.value == k for v in verdicts) for k in _STYLE}
    console.print(f"{counts['holds']} hold, {counts['violated']} violated, {counts['not_applicable']} not applicable")
