"""How much heavy work one server process does at once: the default concurrency the REST API
and the web app share, and the web app's process-wide analysis slots.

The API bounds its own work with its slots (:mod:`emovox.api.middleware`, ``emovox serve
--concurrency``). Streamlit runs every session's script in a thread of one process, and
nothing bounded how many analysed at once: one 600 s clip took 349 MiB more in
:func:`~emovox.serving.service.analyse`, so ten visitors at once could take the process past
3 GiB (code review, stop 48). :func:`analysis_slot` holds one of :func:`default_concurrency`
slots around an analysis; a session that cannot take one within :data:`BUSY_WAIT_S` gets
:class:`ServerBusy` (a message: "busy, try again"), not an unbounded queue.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from emovox.errors import EmovoxError

__all__ = ["ANALYSIS_SLOTS", "BUSY_WAIT_S", "ServerBusy", "analysis_slot",
           "default_concurrency"]

#: seconds a web session waits for an analysis slot before it is told the server is busy
#: (a short wait: an analysis of a short clip takes a few seconds, of a 600 s one a minute)
BUSY_WAIT_S = 10.0


def default_concurrency() -> int:
    """Analyses at once by default: the CPUs, at most 4 (``emovox serve --concurrency``'s
    default, and the web app's)."""
    return max(1, min(4, os.cpu_count() or 1))


#: the web app's process-wide analysis slots (Streamlit's sessions are threads of one
#: process); replaced only by tests
ANALYSIS_SLOTS = threading.BoundedSemaphore(default_concurrency())


class ServerBusy(EmovoxError):
    """Every analysis slot stayed taken for the whole wait."""


@contextmanager
def analysis_slot(wait_s: float | None = None) -> Iterator[None]:
    """Hold one of :data:`ANALYSIS_SLOTS` for the block, waiting at most ``wait_s`` seconds
    (``None``: :data:`BUSY_WAIT_S`) for it.

    Raises:
        ServerBusy: no slot came free in time; the block does not run.
    """
    slots = ANALYSIS_SLOTS  # read when called, so a test's replacement counts
    wait = BUSY_WAIT_S if wait_s is None else wait_s
    if not slots.acquire(timeout=max(0.0, wait)):
        raise ServerBusy("The server is busy analysing other recordings; try again in a "
                         "minute.")
    try:
        yield
    finally:
        slots.release()
