"""A logger's records held back in one context only: the current thread's (or asyncio
task's), never the process's.

A process-wide ``setLevel`` of a logger silenced every thread's log lines meanwhile, and a
second caller finishing first put the level back under the first (code review, stop 54, for
the audio layer; stop 56, for the corpus readers tried by ``emovox scan``). Here a
:class:`logging.Filter` on a logger and on each of its children drops their records below a
level only while a :class:`contextvars.ContextVar` is set; the logger's level is never
touched. :mod:`emovox.audio.quiet` and :mod:`emovox.corpora.detect` use it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["LogHold"]

_LOCK = threading.Lock()


class _Held(logging.Filter):
    """Drops a record below ``below`` while the current context holds the records back."""

    def __init__(self, held: ContextVar[bool], below: int) -> None:
        super().__init__()
        self._held, self._below = held, below

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self._below or not self._held.get()


class LogHold:
    """The records of the logger ``name`` and its children below ``below`` (ERROR: errors are
    always said) held back within :meth:`held`, in the current context only."""

    def __init__(self, name: str, below: int = logging.ERROR) -> None:
        self.name = name
        self._var: ContextVar[bool] = ContextVar(f"emovox_held_{name}", default=False)
        self._filter = _Held(self._var, below)

    def install(self) -> None:
        """Put the filter on the logger and on its children that lack it (a filter on a parent
        logger does not see its children's records). Idempotent; a child created later gets
        it at the next :meth:`held`."""
        with _LOCK:
            names = [n for n in list(logging.Logger.manager.loggerDict)
                     if n == self.name or n.startswith(self.name + ".")]
            for name in [self.name, *names]:
                logger = logging.getLogger(name)
                if self._filter not in logger.filters:
                    logger.addFilter(self._filter)

    @contextmanager
    def held(self, active: bool = True) -> Iterator[None]:
        """Within the block, in this context only, the logger and its children log nothing
        below the level; other threads log as before. ``active=False``: a block that holds
        nothing back."""
        if not active:
            yield
            return
        self.install()
        token = self._var.set(True)
        try:
            yield
        finally:
            self._var.reset(token)
