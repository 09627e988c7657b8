"""The audio layer's own log of a file's notes held back, in one context only: for a caller
that says the notes itself (``predict --reference``: in a reference's words) or has said
them already (training extraction: an augmented copy's decode).

A process-wide ``setLevel`` of the ``emovox.audio`` logger did this before (code review,
stop 54): it silenced every thread's decoding meanwhile, and a second caller finishing
first put the level back under the first. Here a :class:`logging.Filter` on the audio
layer's loggers drops their records below ERROR only while a :class:`contextvars.ContextVar`
is set, which is the current thread's (or asyncio task's) own.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["AUDIO_LOGGER", "notes_held_back"]

#: the logger whose children (``emovox.audio.decode``, ...) say a file's notes
AUDIO_LOGGER = "emovox.audio"

_HELD: ContextVar[bool] = ContextVar("emovox_audio_notes_held", default=False)
_LOCK = threading.Lock()


class _HeldBack(logging.Filter):
    """Drops a record below ERROR while the current context holds the notes back."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or not _HELD.get()


_FILTER = _HeldBack()


def _install() -> None:
    """Put the filter on the audio layer's loggers that lack it (a filter on a parent logger
    does not see its children's records). Idempotent; the audio modules that log are
    imported by :mod:`emovox.audio`, so their loggers exist by now."""
    with _LOCK:
        names = [n for n in list(logging.Logger.manager.loggerDict)
                 if n == AUDIO_LOGGER or n.startswith(AUDIO_LOGGER + ".")]
        for name in names:
            logger = logging.getLogger(name)
            if _FILTER not in logger.filters:
                logger.addFilter(_FILTER)


@contextmanager
def notes_held_back(active: bool = True) -> Iterator[None]:
    """Within the block, in this context only, the audio layer logs nothing below ERROR
    (a file's notes: cut short, hum, near silence...; they still come back in
    ``Audio.notes``); other threads log as before. ``active=False``: a block that holds
    nothing back."""
    if not active:
        yield
        return
    _install()
    token = _HELD.set(True)
    try:
        yield
    finally:
        _HELD.reset(token)
