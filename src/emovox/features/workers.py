"""The processes feature extraction runs on: started so that they never outlive the process
that started them (:func:`die_with_parent`), refusing to work when they read other code or
libraries than it (:data:`~emovox.features.codekey.FINGERPRINT`), and started again when
one of them dies (:func:`run_in_pool`).

A worker killed by the out-of-memory killer (or by a crash in a native library) breaks the
whole pool: every clip queued or running then failed with ``BrokenProcessPool``, which was
recorded as that clip's extraction error, and the run trained and scored on the clips that
happened to be done (code review, stop 48). The clips a broken pool left unfinished are now
sent to a new pool, up to :data:`POOL_RESTARTS` times; then extraction stops with
:class:`WorkersDied`, never with per-file errors.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from emovox.errors import EmovoxError

log = logging.getLogger(__name__)

__all__ = ["PARENT_POLL_SECONDS", "POOL_RESTARTS", "CodeChanged", "WorkersDied",
           "die_with_parent", "extraction_pool", "run_in_pool"]

#: Linux prctl option: signal this process when its parent dies
_PR_SET_PDEATHSIG = 1
#: seconds between two parent checks of the portable watchdog
PARENT_POLL_SECONDS = 0.5
#: new pools started for the clips a broken pool left unfinished before extraction stops
POOL_RESTARTS = 2


class WorkersDied(EmovoxError):
    """The extraction pool broke (a worker process died) more often than it is restarted."""


class CodeChanged(EmovoxError):
    """A worker process reads other emovox code or libraries than the process that started
    it: its numbers would be cached under the parent's key."""


def die_with_parent(parent_pid: int, *, use_prctl: bool = True) -> str:
    """Make this (worker) process exit when ``parent_pid`` dies; returns how.

    On Linux ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` has the kernel kill it; elsewhere (or
    when prctl is unavailable) a daemon thread polls ``os.getppid()`` and exits the
    process once the parent is gone (the worker is re-parented to init or a subreaper).
    """
    first_ppid = os.getppid()  # parent_pid itself, or a fork server it started

    def parent_gone() -> bool:
        if os.getppid() != first_ppid:
            return True
        try:
            os.kill(parent_pid, 0)
        except ProcessLookupError:
            return True
        except OSError:  # exists, but not ours to signal
            pass
        return False

    if use_prctl and sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
                if parent_gone():  # the parent died before prctl took effect
                    os._exit(1)
                return "prctl"
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        while not parent_gone():
            time.sleep(PARENT_POLL_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="emovox-parent-watch", daemon=True).start()
    return "watchdog"


#: in a worker: the parent's fingerprint, given by :func:`_worker_init`
_PARENT: dict[str, Any] = {}


def _worker_init(parent_pid: int | None = None, use_prctl: bool = True,
                 fingerprint: Mapping[str, Any] | None = None) -> None:
    # One BLAS/numba thread per worker: the pool already uses every core.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = "1"
    # Workers die with the process that started them (killing `evaluate` kills them too).
    if parent_pid is not None:
        die_with_parent(parent_pid, use_prctl=use_prctl)
    if fingerprint is not None:  # checked by each task (a failing initializer would only
        _PARENT["fingerprint"] = dict(fingerprint)  # break the pool, unexplained)


def _checked(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` in a worker whose code and libraries are its parent's; else
    :class:`CodeChanged` (a worker started by spawn or a fork server imports emovox from
    disk again: an edit or an upgrade since the parent started shows there; code review,
    stop 48)."""
    from emovox.features.codekey import FINGERPRINT

    parent = _PARENT.get("fingerprint")
    if parent is not None and parent != FINGERPRINT:
        differ = ", ".join(f"{k}: {parent.get(k)} here {FINGERPRINT.get(k)}"
                           for k in sorted(set(parent) | set(FINGERPRINT))
                           if parent.get(k) != FINGERPRINT.get(k))
        raise CodeChanged(f"an extraction worker reads other emovox code or libraries than "
                          f"the process that started it ({differ}): emovox's source or a "
                          "library changed while this run went on (an edit, a git pull, a "
                          "pip install); run it again")
    return fn(*args)


def extraction_pool(n_jobs: int, *, use_prctl: bool = True,
                    fingerprint: Mapping[str, Any] | None = None) -> ProcessPoolExecutor:
    """The process pool feature extraction runs on: its workers never outlive this process,
    and tasks sent through :func:`run_in_pool` refuse to run in a worker whose
    ``FINGERPRINT`` is not ``fingerprint`` (default: this process's)."""
    from emovox.features.codekey import FINGERPRINT

    return ProcessPoolExecutor(max_workers=n_jobs, initializer=_worker_init,
                               initargs=(os.getpid(), use_prctl,
                                         FINGERPRINT if fingerprint is None else fingerprint))


def run_in_pool(fn: Callable[..., Any], tasks: Mapping[int, tuple[Any, ...]], n_jobs: int,
                on_done: Callable[[int, Future], None]) -> None:
    """Run ``fn(*tasks[i])`` for every ``i`` on ``n_jobs`` processes and call
    ``on_done(i, future)`` for each, in the order of ``tasks`` as far as a pool lasts (its
    result or its own exception: a file's error). A worker that dies breaks the pool: the
    tasks it left unfinished go to a new one of half as many processes,
    :data:`POOL_RESTARTS` times at most.

    Raises:
        WorkersDied: the pool broke once more than it is restarted.
        CodeChanged: a worker reads other code or libraries than this process.
    """
    left = list(tasks)
    for attempt in range(POOL_RESTARTS + 1):
        workers = max(1, n_jobs >> attempt)  # half as many: memory is the usual cause
        if attempt:
            log.warning("an extraction worker process died (out of memory, or a crash in a "
                        "native library); starting the pool again with %d process(es) for "
                        "the %d unfinished clip(s) (restart %d of %d)", workers, len(left),
                        attempt, POOL_RESTARTS)
        left = _one_pool(fn, tasks, left, workers, on_done)
        if not left:
            return
    raise WorkersDied(
        f"feature extraction stopped: its worker processes died {POOL_RESTARTS + 1} times "
        "(the out-of-memory killer, or a crash in a native library), and "
        f"{len(left)} of {len(tasks)} clip(s) are not extracted. Free memory or use fewer "
        "processes (--jobs), then run again: the clips extracted so far are cached.")


def _one_pool(fn: Callable[..., Any], tasks: Mapping[int, tuple[Any, ...]], todo: list[int],
              n_jobs: int, on_done: Callable[[int, Future], None]) -> list[int]:
    """Run ``todo`` on a new pool; returns those it left unfinished (it broke)."""
    pool = extraction_pool(n_jobs)
    futs: dict[int, Future] = {}
    try:
        try:
            for i in todo:
                futs[i] = pool.submit(_checked, fn, *tasks[i])
        except BrokenProcessPool:  # broke while tasks were sent: the rest go to the next
            pass
        unfinished = []
        for i, fut in futs.items():
            try:
                broken = isinstance(fut.exception(), BrokenProcessPool)
            except CancelledError:
                broken = True
            if broken:  # this task's worker, or another, died: not the file's error
                unfinished.append(i)
            else:
                on_done(i, fut)
        return unfinished + todo[len(futs):]  # (tasks are sent in the order of todo)
    finally:  # cancel what is queued (a CodeChanged, Ctrl-C: no waiting for the corpus)
        pool.shutdown(wait=True, cancel_futures=True)
