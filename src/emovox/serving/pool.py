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
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["CHUNK", "CRASH_MESSAGE", "HELD_SECONDS", "pool_context", "predict_chunk",
           "process_rows"]

#: files per task sent to a worker
CHUNK = 16
#: decoded seconds a worker holds before classifying them: a chunk's 16 files were all
#: held decoded first (1.9 GB for 16 files of 30 minutes: code review, stop 47)
HELD_SECONDS = 120.0
#: what the error row of a file that killed its worker process says
CRASH_MESSAGE = "the worker process died while predicting this file (a crash or out of memory)"

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


def _run_chunk(paths: list[str], max_duration: float | None, fmt: str
               ) -> tuple[str | None, list[dict[str, Any]]]:
    """``(error, rows)``: the predictor's load error (no rows), or the chunk's rows."""
    if "error" in _STATE:
        return _STATE["error"], []
    return None, predict_chunk(_STATE["predictor"], [Path(p) for p in paths], max_duration,
                               fmt)


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
    """A process pool that can be replaced when a worker dies."""

    def __init__(self, workers: int, artifact: str | None, backend: str) -> None:
        self.args = (workers, artifact, backend)
        self.ex = self._new()

    def _new(self) -> ProcessPoolExecutor:
        workers, artifact, backend = self.args
        return ProcessPoolExecutor(max_workers=workers, mp_context=pool_context(),
                                   initializer=_init_worker, initargs=(artifact, backend))

    def restart(self) -> None:
        self.ex.shutdown(wait=False, cancel_futures=True)
        self.ex = self._new()

    def close(self) -> None:
        self.ex.shutdown(wait=True, cancel_futures=True)

    def kill(self) -> None:
        """Stop now: queued chunks cancelled, running ones killed with their processes
        (they ignore SIGINT, so a shutdown alone would wait for their chunks)."""
        procs = list((getattr(self.ex, "_processes", None) or {}).values())  # stdlib's own
        manager = getattr(self.ex, "_executor_manager_thread", None)  # shutdown forgets it
        self.ex.shutdown(wait=False, cancel_futures=True)
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.join(5)
        # the executor's manager thread closes its wake-up pipe when it sees the dead
        # workers; left running, it raced the interpreter's exit hook that writes to that
        # pipe ("Exception ignored ... Bad file descriptor" after a Ctrl-C, CI of stop 37)
        if manager is not None:
            manager.join(5)


def process_rows(todo: Sequence[Path], *, artifact: str | Path | None, backend: str,
                 workers: int, max_duration: float | None, fmt: str,
                 chunk: int = CHUNK) -> Iterator[dict[str, Any]]:
    """Rows of ``todo`` in order, predicted by ``workers`` processes ``chunk`` files at a
    time (see the module notes).

    Raises:
        The predictor's load error (e.g. :class:`emovox.artifact.ArtifactError`), raised in
        this process by loading the model here once a worker reported that it failed.
    """
    art = str(artifact) if artifact else None
    chunks = [[str(p) for p in todo[i : i + chunk]] for i in range(0, len(todo), chunk)]
    # a process per chunk at most, and per CPU: --workers 100000 started processes without
    # end for one file (a review, stop 47)
    n = max(1, min(workers, len(chunks), os.cpu_count() or 1))
    if n < workers:
        log.info("%d worker processes for %d chunk(s) on %s CPUs (asked: %d)", n, len(chunks),
                 os.cpu_count(), workers)
    workers = n
    pool = _Pool(workers, art, backend)
    inflight: deque[tuple[list[str], Future]] = deque()
    nxt = 0
    try:
        while nxt < len(chunks) or inflight:
            try:  # a dead worker breaks the pool: seen by result() or by the next submit()
                while nxt < len(chunks) and len(inflight) < 2 * max(1, workers):
                    inflight.append((chunks[nxt], pool.ex.submit(_run_chunk, chunks[nxt],
                                                                 max_duration, fmt)))
                    nxt += 1
                error, rows = inflight[0][1].result()
            except BrokenProcessPool:
                pending = [p for p, _ in inflight]  # a chunk whose submit failed is not in
                inflight.clear()                    # it: the new pool takes it later
                yield from _after_crash(pool, pending, max_duration, fmt, art, backend)
                continue
            inflight.popleft()
            if error is not None:
                _raise_load_error(art, backend, error)
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


def _finished_rows(inflight: deque[tuple[list[str], Future]]) -> Iterator[dict[str, Any]]:
    """The rows of the chunks at the head of ``inflight`` that have finished (in order, up
    to the first that has not): an interrupted batch keeps them."""
    for _, fut in inflight:
        if not fut.done() or fut.cancelled() or fut.exception() is not None:
            return
        error, rows = fut.result()
        if error is not None:
            return
        yield from rows


def _after_crash(pool: _Pool, pending: list[list[str]], max_duration: float | None,
                 fmt: str, art: str | None, backend: str) -> Iterator[dict[str, Any]]:
    """Re-run the chunks that were in flight when a worker died, one file per task in a new
    pool; a file that breaks the pool again is an error row."""
    from emovox.serving.batch import row_for

    log.warning("a batch worker process died; re-running %d files one at a time",
                sum(map(len, pending)))
    pool.restart()
    for p in (p for paths in pending for p in paths):
        try:
            error, rows = pool.ex.submit(_run_chunk, [p], max_duration, fmt).result()
        except BrokenProcessPool:
            log.warning("%s: the worker process died on this file", p)
            pool.restart()
            yield row_for(Path(p), None, CRASH_MESSAGE, fmt=fmt)
            continue
        if error is not None:
            _raise_load_error(art, backend, error)
        yield from rows


def _raise_load_error(art: str | None, backend: str, error: str) -> None:
    """Load the model here to raise its own error; if it loads here, say what the worker
    said."""
    from emovox.serving.predictor import Predictor

    Predictor.from_artifact(art, backend=backend, threads=1)
    raise RuntimeError(f"a batch worker could not load the model: {error}")
