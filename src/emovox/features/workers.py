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

A clip that kills its worker every time (a crash in a native decoder, an ``os._exit``) broke
every pool the same way and the run stopped blaming memory, naming no clip (code review).
Each worker now marks the clips it starts in a shared array (one byte per clip); after a
break, the clips started and not finished (at most one per worker) are run again one at a
time, each on a pool of its own. One that kills even that pool is named: the others go on
(no restart counted: memory is not the cause), and extraction then stops with
:class:`WorkersDied` naming every such clip (at most :data:`MAX_CULPRITS`), so the user
knows which file to remove or fix.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from emovox.errors import EmovoxError

log = logging.getLogger(__name__)

__all__ = ["MAX_CULPRITS", "PARENT_POLL_SECONDS", "POOL_RESTARTS", "CodeChanged", "WorkersDied",
           "die_with_parent", "extraction_pool", "run_in_pool"]

#: Linux prctl option: signal this process when its parent dies
_PR_SET_PDEATHSIG = 1
#: seconds between two parent checks of the portable watchdog
PARENT_POLL_SECONDS = 0.5
#: new pools started for the clips a broken pool left unfinished before extraction stops
POOL_RESTARTS = 2
#: clips found to kill their worker even alone before extraction stops trying the others
MAX_CULPRITS = 10


class WorkersDied(EmovoxError):
    """The extraction pool broke (a worker process died) more often than it is restarted,
    or some clips kill the worker that extracts them even alone: ``culprits`` names them."""

    def __init__(self, message: str, culprits: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.culprits = tuple(culprits)


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
                 fingerprint: Mapping[str, Any] | None = None, started: Any = None) -> None:
    # One BLAS/numba thread per worker: the pool already uses every core.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = "1"
    # Workers die with the process that started them (killing `evaluate` kills them too).
    if parent_pid is not None:
        die_with_parent(parent_pid, use_prctl=use_prctl)
    if fingerprint is not None:  # checked by each task (a failing initializer would only
        _PARENT["fingerprint"] = dict(fingerprint)  # break the pool, unexplained)
    if started is not None:  # the shared array :func:`_tracked` marks
        _PARENT["started"] = started


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


def _tracked(slot: int, fn: Callable[..., Any], *args: Any) -> Any:
    """:func:`_checked`, after marking task ``slot`` started in the shared array: when its
    worker dies, the parent knows which clips were in hand."""
    started = _PARENT.get("started")
    if started is not None:
        started[slot] = 1
    return _checked(fn, *args)


def extraction_pool(n_jobs: int, *, use_prctl: bool = True,
                    fingerprint: Mapping[str, Any] | None = None,
                    started: Any = None) -> ProcessPoolExecutor:
    """The process pool feature extraction runs on: its workers never outlive this process,
    and tasks sent through :func:`run_in_pool` refuse to run in a worker whose
    ``FINGERPRINT`` is not ``fingerprint`` (default: this process's). ``started``: a shared
    byte array (``multiprocessing.RawArray``) the workers mark each task's slot in."""
    from emovox.features.codekey import FINGERPRINT

    return ProcessPoolExecutor(max_workers=n_jobs, initializer=_worker_init,
                               initargs=(os.getpid(), use_prctl,
                                         FINGERPRINT if fingerprint is None else fingerprint,
                                         started))


def run_in_pool(fn: Callable[..., Any], tasks: Mapping[int, tuple[Any, ...]], n_jobs: int,
                on_done: Callable[[int, Future], None],
                name: Callable[[int], str] = str) -> None:
    """Run ``fn(*tasks[i])`` for every ``i`` on ``n_jobs`` processes and call
    ``on_done(i, future)`` for each, in the order of ``tasks`` as far as a pool lasts (its
    result or its own exception: a file's error). A worker that dies breaks the pool: the
    tasks in hand when it broke run again one at a time, each on a pool of its own, and one
    that kills even that is a culprit (``name(i)`` says which clip); the others go to a new
    pool, of half as many processes when no culprit explains the break (memory), which
    happens :data:`POOL_RESTARTS` times at most.

    Raises:
        WorkersDied: some tasks kill their worker even alone (``culprits``; the others are
            done first, up to :data:`MAX_CULPRITS` culprits), or the pool broke once more
            than it is restarted.
        CodeChanged: a worker reads other code or libraries than this process.
    """
    started = multiprocessing.RawArray("b", max(1, len(tasks)))  # 1 byte a task
    slots = {i: k for k, i in enumerate(tasks)}

    def run(todo: list[int], workers: int) -> list[int]:
        return _one_pool(fn, tasks, todo, workers, on_done, started, slots)

    left, culprits = list(tasks), []
    workers, breaks = n_jobs, 0
    while left and len(culprits) < MAX_CULPRITS:
        left = run(left, workers)
        in_hand = [i for i in left if started[slots[i]]]  # (at most one per worker)
        left = [i for i in left if not started[slots[i]]]
        if in_hand:  # said whatever follows (a restart, a culprit, or nothing more to do)
            log.warning("an extraction worker process died (out of memory, or a crash in a "
                        "native library) with %d clip(s) in hand: each is extracted again "
                        "alone", len(in_hand))
        found, untried = _isolate(in_hand, MAX_CULPRITS - len(culprits),
                                  lambda i: bool(run([i], 1)))  # each alone: broke again?
        left = untried + left
        for i in found:
            log.error("%s kills the worker process that extracts it, even alone (a crash "
                      "in a native library, e.g. the audio decoder); the other clips go on",
                      name(i))
        culprits += found
        if not left or found:
            continue
        breaks += 1
        if breaks > POOL_RESTARTS:
            raise WorkersDied(_died_message(len(left), len(tasks), [name(i) for i in culprits]),
                              [name(i) for i in culprits])
        workers = max(1, workers // 2)  # half as many: memory is the usual cause
        log.warning("an extraction worker process died (out of memory, or a crash in a "
                    "native library); starting the pool again with %d process(es) for "
                    "the %d unfinished clip(s) (restart %d of %d)", workers, len(left),
                    breaks, POOL_RESTARTS)
    if culprits:
        names = [name(i) for i in culprits]
        raise WorkersDied(_culprit_message(names, len(left)), names)


def _isolate(in_hand: list[int], room: int, breaks_alone: Callable[[int], bool]
             ) -> tuple[list[int], list[int]]:
    """``(found, untried)``: the clips of ``in_hand`` that break a pool even alone
    (``breaks_alone``, tried one at a time in order), at most ``room`` of them, and those
    left untried once that many are found (back to the clips not extracted, which the
    message counts). Trying every clip in hand named up to ``n_jobs - 1`` culprits past
    :data:`MAX_CULPRITS` (code review)."""
    found: list[int] = []
    for k, i in enumerate(in_hand):
        if len(found) >= room:
            return found, in_hand[k:]
        if breaks_alone(i):
            found.append(i)
    return found, []


def _culprit_message(names: list[str], n_untried: int) -> str:
    """What :class:`WorkersDied` says when some clips kill their worker even alone."""
    n = len(names)
    listed = "\n".join(f"  {p}" for p in names)
    text = (f"feature extraction stopped: {n} clip(s) kill the worker process that extracts "
            "them, even when extracted alone (a crash in a native library such as the audio "
            f"decoder, or the memory the clip needs):\n{listed}\nRemove these files from the "
            "corpus, or fix them (e.g. decode and write them again as WAV), then run again: "
            "the other clips extracted are cached.")
    if n_untried:
        text += f" Extraction stopped after {n} such clips: {n_untried} clip(s) were not tried."
    if n_untried or n >= 3:
        text += (" When many clips do this, suspect the installation (a native library) "
                 "rather than the files.")
    return text


def _died_message(n_left: int, n_total: int, culprits: list[str]) -> str:
    """What :class:`WorkersDied` says when the pool broke more often than it is restarted."""
    text = (f"feature extraction stopped: its worker processes died {POOL_RESTARTS + 1} times "
            "(the out-of-memory killer, or a crash in a native library), and "
            f"{n_left} of {n_total} clip(s) are not extracted. Free memory or use fewer "
            "processes (--jobs), then run again: the clips extracted so far are cached.")
    if culprits:
        text += (" Besides, these clip(s) kill the worker process even alone; remove or fix "
                 "them: " + ", ".join(culprits))
    return text


def _one_pool(fn: Callable[..., Any], tasks: Mapping[int, tuple[Any, ...]], todo: list[int],
              n_jobs: int, on_done: Callable[[int, Future], None], started: Any,
              slots: Mapping[int, int]) -> list[int]:
    """Run ``todo`` on a new pool; returns those it left unfinished (it broke). A worker
    marks ``started[slots[i]]`` when it begins task ``i``."""
    pool = extraction_pool(n_jobs, started=started)
    futs: dict[int, Future] = {}
    try:
        try:
            for i in todo:
                futs[i] = pool.submit(_tracked, slots[i], fn, *tasks[i])
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
