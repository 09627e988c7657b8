"""Worker processes for ``emovox batch``: chunks of files, one single-threaded predictor each.

Decoding, resampling and the NumPy front end hold the GIL, so threads sharing one
:class:`~emovox.serving.predictor.Predictor` do not scale; processes do. :func:`process_rows`
starts ``workers`` processes (``fork`` on Linux when this process runs no other thread and
has loaded no ONNX Runtime or PyTorch, else ``forkserver``/``spawn``), each building its
own predictor once (ONNX Runtime with 1 thread, BLAS limited to 1 thread), and sends them
chunks of paths. Each chunk is predicted with
:func:`predict_chunk`: files decoded, then classified together once
:data:`HELD_SECONDS` of audio is held, and at the end (:meth:`Predictor.predict_batch`:
one network call per 16 windows), so the network sees batches, not single clips.

Rows come back **in the order of the paths**; at most ``2 * workers`` chunks are in flight,
so memory does not grow with the number of files. A file that fails is an error row (as in
:func:`emovox.serving.batch.predict_one`). A worker that dies (a crash in a native library,
the out-of-memory killer) breaks the pool: a new pool is started, the chunks that were in
flight are re-run one file at a time, and a file that kills its worker again becomes an
error row saying so; the batch goes on.

A per-file deadline (``deadline``, ``emovox batch --file-timeout``; stop 51) bounds a read
that never returns (a stuck network mount, a hung FUSE file system: a thread cannot be
stopped, a process can). A chunk not back within ``deadline * len(chunk)`` seconds, counted
as :func:`process_rows` says, gets the pool's processes killed; the chunks that were in
flight are re-run one file per task, as after a crash, each file with its own deadline,
and a file that passes it again is an error row (:data:`TIMEOUT_MESSAGE`). A new pool is
first waited for until its model is loaded (:data:`WORKER_START_S` at most): no deadline
counts that, nor a time this process was stopped (:func:`_result`). Each worker leads its
own process group, which the ffmpeg it starts joins: stuck workers are killed with their
group (SIGTERM, then SIGKILL). A process that no signal reaches (uninterruptible sleep in
the kernel) outlives that, and the batch goes on without it, but the process may then wait
for it at its exit (not tested: no such file system here).

Ctrl-C (SIGINT) reaches only this process: workers ignore it (no traceback from each of
them). The chunks already finished are still given out, in order, then the workers are
killed and :class:`KeyboardInterrupt` goes on up; what was in flight is predicted again by
the next run (at most ``2 * workers`` chunks).
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as WaitTimeout  # builtin's since 3.11
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["CHUNK", "CRASH_MESSAGE", "DEFAULT_FILE_TIMEOUT_S", "HELD_SECONDS", "TIMEOUT_MESSAGE",
           "pool_context", "predict_chunk", "process_rows"]

#: files per task sent to a worker
CHUNK = 16
#: decoded seconds a worker holds before classifying them: a chunk's 16 files were all
#: held decoded first (1.9 GB for 16 files of 30 minutes: code review, stop 47)
HELD_SECONDS = 120.0
#: what the error row of a file that killed its worker process says
CRASH_MESSAGE = "the worker process died while predicting this file (a crash or out of memory)"
#: what the error row of a file not answered within its deadline says (``s``: the deadline)
TIMEOUT_MESSAGE = ("no answer within {s:g} s: reading or predicting this file hung, and its "
                   "worker process was killed (--file-timeout)")
#: ``emovox batch --file-timeout``: seconds per file (a 600 s file takes a few seconds)
DEFAULT_FILE_TIMEOUT_S = 300.0
#: how long a new pool is given to start a worker and load its model before any deadline
#: is counted (it would count against the files: a new worker of ``spawn`` imports NumPy
#: and ONNX Runtime and loads the model, seconds, against a deadline of maybe 1 s)
WORKER_START_S = 120.0
#: the longest single wait for a task's result (s): :func:`_result` waits in slices
SLICE_S = 5.0
#: a slice that took this much longer than asked (s) means that this process was stopped
STOPPED_S = 2.0

_STATE: dict[str, Any] = {}  # the worker's predictor, or the error that prevented it


def predict_chunk(predictor: Any, paths: Sequence[Path], max_duration: float | None,
                  fmt: str = "csv") -> list[dict[str, Any]]:
    """Rows of ``paths`` in order (never raises: a failure is an error row): every file is
    decoded as :meth:`Predictor.predict_file` does, then the decoded ones are classified
    together (:meth:`Predictor.predict_batch`) once they hold :data:`HELD_SECONDS`, and at
    the end; if that fails, one at a time, so one bad waveform costs only its own row."""
    from emovox.audio import load_audio
    from emovox.serving.batch import failure_message, row_for

    rows: list[dict[str, Any] | None] = [None] * len(paths)
    held: list[tuple[int, Any]] = []
    for i, p in enumerate(paths):
        try:
            held.append((i, load_audio(p, sr=predictor.sr, trim=False,
                                       max_duration=max_duration)))
        except Exception as exc:  # noqa: BLE001 - one bad file never stops a batch
            rows[i] = row_for(p, None, failure_message(exc), fmt=fmt)
        if sum(a.duration for _, a in held) >= HELD_SECONDS:
            _classify(predictor, paths, held, rows, fmt)
            held = []
    _classify(predictor, paths, held, rows, fmt)
    return [r for r in rows if r is not None]


def _classify(predictor: Any, paths: Sequence[Path], audios: list[tuple[int, Any]],
              rows: list[dict[str, Any] | None], fmt: str) -> None:
    """The rows of the decoded ``audios`` (``(index into paths, Audio)``), filled in."""
    from emovox.serving.batch import failure_message, row_for

    if not audios:
        return
    try:
        preds = predictor.predict_batch([a.wave for _, a in audios], predictor.sr,
                                        sources=[a.source for _, a in audios])
        for (i, a), pred in zip(audios, preds, strict=True):
            rows[i] = row_for(paths[i], _noted(pred, a), None, fmt=fmt)
    except Exception:  # noqa: BLE001 - find the file that failed: one at a time
        for i, a in audios:
            try:
                pred = predictor.predict_wave(a.wave, a.sr, source=a.source)
                rows[i] = row_for(paths[i], _noted(pred, a), None, fmt=fmt)
            except Exception as exc:  # noqa: BLE001
                rows[i] = row_for(paths[i], None, failure_message(exc), fmt=fmt)


def _noted(pred: Any, audio: Any) -> Any:
    """``pred`` with the decoder's notes on ``audio`` as its warnings (as predict_file)."""
    notes = getattr(audio, "notes", ())
    return dataclasses.replace(pred, warnings=notes) if notes else pred


def _init_worker(artifact: str | None, backend: str) -> None:
    """Build this worker's predictor (errors are kept and reported by the first task)."""
    from emovox.features.workers import die_with_parent

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    die_with_parent(os.getppid())  # a killed batch left its workers running (QA, stop 36)
    _own_process_group()
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)  # one BLAS thread: the processes are the parallelism
    except ImportError:  # pragma: no cover - scikit-learn brings threadpoolctl
        pass
    try:
        from emovox.serving.predictor import Predictor

        _STATE["predictor"] = Predictor.from_artifact(artifact, backend=backend, threads=1)
    except Exception as exc:  # noqa: BLE001 - reported to the parent by _run_chunk
        _STATE["error"] = f"{type(exc).__name__}: {exc}"


def _own_process_group() -> None:
    """Make this worker the leader of a process group of its own, which the ffmpeg and
    ffprobe it starts join: :meth:`_Pool.kill` ends the group, and so the ffmpeg that hung
    on a stuck mount with it (it outlived its killed worker: a review, stop 51). Out of the
    terminal's foreground group, its standard input is /dev/null (ffmpeg without
    ``-nostdin`` would set the terminal's modes from there) and it ignores SIGTTOU (a
    write to the terminal under ``stty tostop`` would stop it). Ctrl-Z stops the batch
    alone: its workers finish the chunk they hold and wait."""
    if not hasattr(os, "setpgid"):  # pragma: no cover - Windows
        return
    try:
        os.setpgid(0, 0)
        fd = os.open(os.devnull, os.O_RDONLY)
        os.dup2(fd, 0)
        os.close(fd)
    except OSError as exc:  # pragma: no cover - e.g. already a session leader
        log.debug("batch worker %d keeps its process group: %s", os.getpid(), exc)
    signal.signal(signal.SIGTTOU, signal.SIG_IGN)


def _run_chunk(paths: list[str], max_duration: float | None, fmt: str
               ) -> tuple[str | None, list[dict[str, Any]]]:
    """``(error, rows)``: the predictor's load error (no rows), or the chunk's rows."""
    if "error" in _STATE:
        return _STATE["error"], []
    return None, predict_chunk(_STATE["predictor"], [Path(p) for p in paths], max_duration,
                               fmt)


def _ready() -> str | None:
    """The predictor's load error in this worker, or None (a new pool's first task)."""
    return _STATE.get("error")


#: libraries whose native thread pools do not survive a fork: once loaded, no fork
_NO_FORK_AFTER = ("onnxruntime", "torch")


def pool_context() -> Any:
    """``fork`` on Linux when this process runs a single thread and has not loaded ONNX
    Runtime or PyTorch (workers start in milliseconds and share the imported modules; the
    ``emovox batch`` command forks before loading any model); otherwise ``forkserver`` (with
    the predictor module preloaded) or ``spawn``."""
    methods = mp.get_all_start_methods()
    if sys.platform.startswith("linux") and "fork" in methods and \
            threading.active_count() == 1 and not any(m in sys.modules for m in _NO_FORK_AFTER):
        return mp.get_context("fork")
    if "forkserver" in methods:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["emovox.serving.predictor"])
        return ctx
    return mp.get_context("spawn")


class _Pool:
    """A process pool that can be replaced when a worker dies or hangs."""

    def __init__(self, workers: int, artifact: str | None, backend: str) -> None:
        self.args = (workers, artifact, backend)
        self.ex = self._new()
        self.fresh = True  #: no worker known to have loaded its model yet (_warm_up)

    def _new(self) -> ProcessPoolExecutor:
        workers, artifact, backend = self.args
        return ProcessPoolExecutor(max_workers=workers, mp_context=pool_context(),
                                   initializer=_init_worker, initargs=(artifact, backend))

    def restart(self, kill: bool = False) -> None:
        """A new executor in place of this one; ``kill``: the old one's processes killed
        first (a worker stuck in a read would never end, and a shutdown waits for it)."""
        if kill:
            self.kill()
        else:
            self.ex.shutdown(wait=False, cancel_futures=True)
        self.ex = self._new()
        self.fresh = True

    def close(self) -> None:
        self.ex.shutdown(wait=True, cancel_futures=True)

    def kill(self) -> None:
        """Stop now: queued chunks cancelled, running ones killed with their processes
        and what those started (they ignore SIGINT, so a shutdown alone would wait for
        their chunks; an ffmpeg stuck in a read outlived its killed worker: a review)."""
        procs = list((getattr(self.ex, "_processes", None) or {}).values())  # stdlib's own
        manager = getattr(self.ex, "_executor_manager_thread", None)  # shutdown forgets it
        groups = _worker_groups(procs)  # read before the workers end (and are reaped)
        self.ex.shutdown(wait=False, cancel_futures=True)
        _signal_groups(groups, signal.SIGTERM)  # each worker with its ffmpeg
        for proc in procs:
            proc.terminate()  # a worker not yet in its own group
        for proc in procs:
            proc.join(5)
            if proc.is_alive():  # SIGTERM not acted on within 5 s: SIGKILL
                proc.kill()
                proc.join(1)
        _signal_groups(groups, signal.SIGKILL)  # what is left of them (an ffmpeg in a read)
        # the executor's manager thread closes its wake-up pipe when it sees the dead
        # workers; left running, it raced the interpreter's exit hook that writes to that
        # pipe ("Exception ignored ... Bad file descriptor" after a Ctrl-C, CI of stop 37)
        if manager is not None:
            manager.join(5)


def _worker_groups(procs: list[Any]) -> list[int]:
    """The process groups that these workers lead (:func:`_own_process_group`); never this
    process's own group (a worker still starting is in it: signalled by pid alone)."""
    ours = os.getpgrp() if hasattr(os, "getpgrp") else None
    groups = []
    for proc in procs:
        try:
            pgid = os.getpgid(proc.pid)
        except (OSError, AttributeError, TypeError):  # gone already, or not POSIX
            continue
        if pgid == proc.pid and pgid != ours:
            groups.append(pgid)
    return groups


def _signal_groups(groups: list[int], sig: int) -> None:
    for pgid in groups:
        try:
            os.killpg(pgid, sig)
        except OSError:  # the group has ended
            pass


@dataclasses.dataclass(frozen=True)
class _Job:
    """What every task of one :func:`process_rows` call shares."""

    max_duration: float | None
    fmt: str
    art: str | None
    backend: str
    deadline: float | None  #: seconds per file; None: no deadline

    def submit(self, pool: _Pool, paths: list[str]) -> Future:
        return pool.ex.submit(_run_chunk, paths, self.max_duration, self.fmt)

    def left(self, n_files: int, start: float) -> float | None:
        """Seconds left to a task of ``n_files`` files whose clock started at ``start``."""
        if self.deadline is None:
            return None
        return max(0.0, start + self.deadline * n_files - time.monotonic())


class _Hung(Exception):
    """A task not back within its deadline (its worker is taken to be stuck)."""


def _result(fut: Future, timeout: float | None) -> Any:
    """``fut``'s result; :class:`_Hung` when it is not back within ``timeout`` seconds of
    this process's running time.

    The wait is cut into slices of :data:`SLICE_S` at most (one wait of ``--file-timeout
    1e9`` x 16 files passed ``threading.TIMEOUT_MAX``: an OverflowError), timed with
    ``time.monotonic``. A slice that overran by more than :data:`STOPPED_S` counts for
    nothing: this process was stopped (Ctrl-Z, ``kill -STOP``, a frozen container), maybe
    with its workers, and a good file was an error row once it went on (a review, stop 51).
    """
    if timeout is None:
        return fut.result()
    left = timeout
    while True:
        step = min(left, SLICE_S)
        began = time.monotonic()
        try:
            return fut.result(step)
        except WaitTimeout:
            if fut.done():  # the task's own TimeoutError, not the wait's
                raise
        took = time.monotonic() - began
        if took > step + STOPPED_S:
            log.info("this process was stopped for %.0f s: not counted against the "
                     "deadline (--file-timeout)", took - step)
            continue
        left -= took
        if left <= 0:
            raise _Hung from None


def process_rows(todo: Sequence[Path], *, artifact: str | Path | None, backend: str,
                 workers: int, max_duration: float | None, fmt: str,
                 chunk: int = CHUNK, deadline: float | None = None
                 ) -> Iterator[dict[str, Any]]:
    """Rows of ``todo`` in order, predicted by ``workers`` processes ``chunk`` files at a
    time (see the module notes).

    ``deadline``: seconds per file (None: no deadline). The chunk whose rows come next (the
    head of the queue) must be back within ``deadline * len(chunk)`` seconds, counted from
    the later of its submission and the moment the rows of the chunk before it were handed
    out. By then every earlier chunk has finished, and workers take chunks in the order
    they were submitted, so the head is running or is taken at once by a free worker: a
    chunk that merely waited in the queue is never timed out (counted from its submission
    it would be, as up to ``2 * workers`` chunks are in flight and a worker runs one at a
    time). A chunk after the head that hangs is found once it is the head. A new pool is
    first waited for until a worker has loaded its model (:func:`_warm_up`), so no clock
    counts that; a worker started later takes no chunk before it has.

    The head's ``deadline * len(chunk)`` cannot be tightened without timing out good
    files: a worker reads a chunk's files one after another, each allowed ``deadline``, and
    this process sees only the chunk's end. So a hung file costs up to ``chunk`` deadlines
    before it is found (16 x 300 s by default), its own deadline again when it is re-run
    alone, and the re-run of the files in flight, one at a time; a stuck mount on which
    every file hangs, a deadline per file plus ``chunk`` deadlines for every ``2 *
    workers`` chunks (review of stop 51).

    Raises:
        The predictor's load error (e.g. :class:`emovox.artifact.ArtifactError`), raised in
        this process by loading the model here once a worker reported that it failed.
    """
    job = _Job(max_duration, fmt, str(artifact) if artifact else None, backend, deadline)
    chunks = [[str(p) for p in todo[i : i + chunk]] for i in range(0, len(todo), chunk)]
    workers = _worker_count(workers, len(chunks))
    pool = _Pool(workers, job.art, backend)
    inflight: deque[tuple[list[str], Future, float]] = deque()  # (paths, result, sent at)
    nxt = 0
    try:
        while nxt < len(chunks) or inflight:
            if deadline is not None:
                _warm_up(pool, job)  # a new pool (nothing in flight): its model loaded
            since = time.monotonic()  # the rows before the head are handed out
            try:  # a dead worker breaks the pool: seen by result() or by the next submit()
                while nxt < len(chunks) and len(inflight) < 2 * workers:
                    inflight.append((chunks[nxt], job.submit(pool, chunks[nxt]),
                                     time.monotonic()))
                    nxt += 1
                paths, fut, sent = inflight[0]
                error, rows = _result(fut, job.left(len(paths), max(sent, since)))
            except (BrokenProcessPool, _Hung) as exc:
                pending = [p for p, *_ in inflight]  # a chunk whose submit failed is not in
                inflight.clear()                     # it: the new pool takes it later
                yield from _one_at_a_time(pool, pending, job, hung=isinstance(exc, _Hung))
                continue
            inflight.popleft()
            if error is not None:
                _raise_load_error(job.art, backend, error)
            yield from rows
    except KeyboardInterrupt:
        yield from _finished_rows(inflight)
        pool.kill()
        raise
    except (GeneratorExit, Exception):  # the caller stopped reading (its own error), or a
        pool.kill()  # failure here ("Too many open files" starting a worker, which then
        raise  # hung the batch in a wait for ever: QA, stop 38): no waiting
    finally:
        pool.close()


def _worker_count(asked: int, n_chunks: int) -> int:
    """A process per chunk at most, and per CPU: --workers 100000 started processes
    without end for one file (a review, stop 47)."""
    n = max(1, min(asked, n_chunks, os.cpu_count() or 1))
    if n < asked:
        log.info("%d worker processes for %d chunk(s) on %s CPUs (asked: %d)", n, n_chunks,
                 os.cpu_count(), asked)
    return n


def _finished_rows(inflight: deque[tuple[list[str], Future, float]]
                   ) -> Iterator[dict[str, Any]]:
    """The rows of the chunks at the head of ``inflight`` that have finished (in order, up
    to the first that has not): an interrupted batch keeps them."""
    for _, fut, _ in inflight:
        if not fut.done() or fut.cancelled() or fut.exception() is not None:
            return
        error, rows = fut.result()
        if error is not None:
            return
        yield from rows


def _one_at_a_time(pool: _Pool, pending: list[list[str]], job: _Job, *, hung: bool
                   ) -> Iterator[dict[str, Any]]:
    """Re-run the chunks that were in flight when a worker died, or (``hung``) when the
    head passed its deadline (the pool's processes are killed), one file per task in a new
    pool. A file that breaks the pool again, or passes its own deadline, is an error row
    (:data:`CRASH_MESSAGE`, :data:`TIMEOUT_MESSAGE`); the pool is replaced for the next.
    A head of one file that hung has had its own deadline, time this process spent stopped
    not counted (:func:`_result`): its error row at once."""
    from emovox.serving.batch import row_for

    files = [p for paths in pending for p in paths]
    log.warning("%s; re-running %d files one at a time", f"no answer within {job.deadline:g} "
                "s per file (--file-timeout)" if hung else "a batch worker process died",
                len(files))
    pool.restart(kill=hung)
    if hung and len(pending[0]) == 1:
        log.warning("%s: no answer within %g s: its worker was killed", files[0], job.deadline)
        yield row_for(Path(files.pop(0)), None, TIMEOUT_MESSAGE.format(s=job.deadline),
                      fmt=job.fmt)
    for p in files:
        if job.deadline is not None:
            _warm_up(pool, job)
        try:
            error, rows = _result(job.submit(pool, [p]), job.deadline)
        except (BrokenProcessPool, _Hung) as exc:
            hung = isinstance(exc, _Hung)
            log.warning("%s: %s", p, f"no answer within {job.deadline:g} s: its worker was "
                        "killed" if hung else "the worker process died on this file")
            pool.restart(kill=hung)
            why = TIMEOUT_MESSAGE.format(s=job.deadline) if hung else CRASH_MESSAGE
            yield row_for(Path(p), None, why, fmt=job.fmt)
            continue
        if error is not None:
            _raise_load_error(job.art, job.backend, error)
        yield from rows


def _warm_up(pool: _Pool, job: _Job) -> None:
    """Wait until a worker of a new pool has loaded its model (:data:`WORKER_START_S` at
    most; nothing to do for a pool that has answered), so that the next deadline counts
    the files' work alone; its load error is raised here. A pool that breaks, or is not
    ready in time, is left to the next task."""
    if not pool.fresh:
        return
    pool.fresh = False
    try:
        error = _result(pool.ex.submit(_ready), WORKER_START_S)
    except _Hung:
        return
    except BrokenProcessPool:  # a broken pool refuses every submit: the next task, to a
        pool.restart()         # new pool, has its row (a crash) if it breaks that one too
        pool.fresh = False
        return
    if error is not None:
        _raise_load_error(job.art, job.backend, error)


def _raise_load_error(art: str | None, backend: str, error: str) -> None:
    """Load the model here to raise its own error; if it loads here, say what the worker
    said."""
    from emovox.serving.predictor import Predictor

    Predictor.from_artifact(art, backend=backend, threads=1)
    raise RuntimeError(f"a batch worker could not load the model: {error}")
