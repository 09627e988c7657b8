"""The audio layer's log of a file's notes held back, in one context only: for a caller
that says the notes itself (``predict --reference``: in a reference's words) or has said
them already (training extraction: an augmented copy's decode).

A process-wide ``setLevel`` of the ``emovox.audio`` logger did this before (code review,
stop 54): it silenced every thread's decoding meanwhile, and a second caller finishing
first put the level back under the first. Here the audio layer's loggers drop their records
below ERROR only while the current thread (or asyncio task) holds them back: a
:class:`emovox.logcontext.LogHold` (a :class:`logging.Filter` and a
:class:`contextvars.ContextVar`, shared with the corpus readers' since stop 56).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from emovox.logcontext import LogHold

__all__ = ["AUDIO_LOGGER", "notes_held_back"]

#: the logger whose children (``emovox.audio.decode``, ...) say a file's notes
AUDIO_LOGGER = "emovox.audio"

#: the audio modules that log are imported by :mod:`emovox.audio`, so their loggers exist
#: by the time the filter is installed (at each :func:`notes_held_back`)
_HOLD = LogHold(AUDIO_LOGGER)


@contextmanager
def notes_held_back(active: bool = True) -> Iterator[None]:
    """Within the block, in this context only, the audio layer logs nothing below ERROR
    (a file's notes: cut short, hum, near silence...; they still come back in
    ``Audio.notes``); other threads log as before. ``active=False``: a block that holds
    nothing back."""
    with _HOLD.held(active):
        yield
