"""The command line's progress bars (on stderr, only on a terminal; transient)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from emovox.cli import render


class EvaluateProgress:
    """Feature-extraction and training bars of ``evaluate``, plus a log line per fold."""

    def __init__(self, bar: Progress) -> None:
        self.bar = bar
        self.feat_task = bar.add_task("features", total=None, info="")
        self.epoch_task = bar.add_task("training", total=None, info="", visible=False)
        self.folds_done = 0

    def features(self, done: int, total: int) -> None:
        self.bar.update(self.feat_task, completed=done, total=total)

    def epoch(self, epoch: int, epochs: int, loss: float, val_ua: float) -> None:
        val = "–" if math.isnan(val_ua) else f"{val_ua:.1f}"  # nan: no validation speakers
        self.bar.update(self.epoch_task, visible=True, completed=epoch + 1, total=epochs,
                        info=f"fold {self.folds_done} · loss {loss:.3f} · val UA {val}")

    def fold(self, fr: Any) -> None:
        self.folds_done += 1
        render.err_console.print(f"fold {fr.index}: UA {fr.metrics.ua:.1f} WA {fr.metrics.wa:.1f} "
                          f"({fr.fit_seconds:.0f} s)", soft_wrap=True)  # no "render.py:71"


@contextmanager
def evaluate_progress() -> Iterator[EvaluateProgress]:
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
        console=render.err_console, transient=True, disable=not render.err_console.is_terminal,
    ) as bar:
        yield EvaluateProgress(bar)


@contextmanager
def batch_progress() -> Iterator[Any]:
    """A ``progress(done, total)`` callback drawing the ``batch`` bar."""
    with Progress(
        TextColumn("[bold]predicting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=render.err_console, transient=True, disable=not render.err_console.is_terminal,
    ) as bar:
        task = bar.add_task("batch", total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


#: ``predict`` shows a progress bar for more files than this (on a terminal).
PROGRESS_MIN_FILES = 3
#: ``timeline`` shows a progress bar for recordings longer than this (s, on a terminal).
PROGRESS_MIN_SECONDS = 60.0


@contextmanager
def files_progress(total: int) -> Iterator[Any]:
    """An ``advance()`` callback drawing ``predict``'s bar on stderr: only on a terminal
    and for more than :data:`PROGRESS_MIN_FILES` files."""
    with Progress(
        TextColumn("[bold]predicting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=render.err_console, transient=True,
        disable=not render.err_console.is_terminal or total <= PROGRESS_MIN_FILES,
    ) as bar:
        task = bar.add_task("predict", total=total)
        yield lambda: bar.advance(task)


@contextmanager
def references_progress() -> Iterator[Any]:
    """A ``progress(done, total)`` callback drawing ``predict --reference``'s bar on stderr
    (only on a terminal): a folder of 500 clips took a minute without a word (QA, stop 38)."""
    with Progress(
        TextColumn("[bold]reference clips"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=render.err_console, transient=True,
        disable=not render.err_console.is_terminal,
    ) as bar:
        task = bar.add_task("references", total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


@contextmanager
def seconds_progress(duration: float | None) -> Iterator[Any]:
    """A ``progress(seconds_done)`` callback drawing ``timeline``'s bar on stderr: only on a
    terminal and for recordings longer than :data:`PROGRESS_MIN_SECONDS`."""
    with Progress(
        TextColumn("[bold]timeline"), BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f} s"), TimeElapsedColumn(),
        console=render.err_console, transient=True,
        disable=(not render.err_console.is_terminal or duration is None
                 or duration <= PROGRESS_MIN_SECONDS),
    ) as bar:
        task = bar.add_task("timeline", total=duration)
        yield lambda seconds: bar.update(task, completed=seconds)
