"""The Dask engine of ``emovox batch`` (``--engine dask``, optionally ``--scheduler ADDR``).

Chunks of 16 files go to Dask workers, each of which builds one single-threaded predictor
(kept between chunks) and answers a chunk as the local engine does
(:func:`emovox.serving.pool.predict_chunk`). What this module makes sure of (QA, stop 36):

- **Paths mean what they mean here.** A worker of a remote scheduler runs in its own folder:
  relative inputs and a relative ``--model`` folder were looked up there (every file an
  error row, or another file or model answered without a sign). Inputs and model folders
  are sent as absolute paths, bundled model names as names loaded from the worker's
  installed package; the workers must see the same file system under the same paths. A row
  answered by another model than the one asked for stops the batch.
- **Workers that cannot answer are said before any work**: a scheduler without workers
  (waited :data:`WAIT_FOR_WORKERS_S`), a worker that cannot import emovox or runs another
  version of it (the batch hung with no word; the cause was only in the worker's log); a
  ``tcp://`` address that accepts a connection but does not greet as a scheduler does at
  once (an HTTP port hung until Ctrl-C: stop 37).
- **A cluster that goes away mid-run** (scheduler killed, connection lost) raises
  :class:`ClusterLost`; the rows written so far stay and the same command resumes. So does
  one whose scheduler stays but has had no worker for :data:`WAIT_FOR_WORKERS_S` (stop 37:
  it waited for one without a word).
- **Rows are written in the order of the files** (they came in the order chunks finished).
- **Ctrl-C** reaches this process only: a local cluster's processes are started with SIGINT
  ignored (each printed a traceback), and their log lines are silenced. A Ctrl-C in the
  seconds the cluster takes to start is lost; the next one stops the batch.
- **A local cluster listens on the loopback only** (its dashboard was served on every
  interface at port 8787).
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from itertools import islice
from pathlib import Path
from typing import Any

from emovox.errors import ConfigError, EmovoxError
from emovox.serving.outfile import unquoted
from emovox.serving.pool import CHUNK as POOL_CHUNK
from emovox.serving.pool import CRASH_MESSAGE
from emovox.serving.predictor import model_id_of

log = logging.getLogger(__name__)

__all__ = ["CHUNK", "ClusterLost", "WAIT_FOR_WORKERS_S", "check_workers", "connect",
           "run_dask", "worker_artifact"]

#: how long a scheduler may be without a worker (before the first, or after losing all)
WAIT_FOR_WORKERS_S: float = 30.0
#: how long (s) a scheduler's port may take to greet a new connection
PROBE_S: float = 5.0
#: a field of the handshake every Dask server sends first on a new connection
_DASK_GREETING = b"pickle-protocol"
#: how often (s) the scheduler is asked whether it still has a worker while a chunk runs
POLL_S: float = 2.0
#: files per task (the local engine's chunk)
CHUNK: int = POOL_CHUNK


class ClusterLost(EmovoxError):
    """The Dask cluster stopped answering part-way (scheduler gone, connection lost), or a
    worker failed a task (files never fail a task: e.g. the model folder missing there)."""


def worker_artifact(artifact: str | Path | None) -> tuple[str, str | None]:
    """What a worker is told to load, decided here: ``("bundled", name)`` (None: the
    default), loaded from the worker's installed package whatever its folder holds, or
    ``("folder", absolute path)`` (a relative one was looked up in the worker's folder)."""
    from emovox.artifact.paths import bundled_name

    if artifact is None:
        return ("bundled", None)
    if (name := bundled_name(artifact)) is not None:
        return ("bundled", name)
    return ("folder", str(Path(artifact).absolute()))


@lru_cache(maxsize=4)
def _worker_predictor(artifact: tuple[str, str | None], backend: str) -> Any:
    from emovox.artifact.paths import packaged_model_path
    from emovox.serving.predictor import Predictor

    kind, value = artifact
    path = value if kind == "folder" or value is None else packaged_model_path(value)
    return Predictor.from_artifact(path, backend=backend, threads=1)


def _dask_chunk(artifact: tuple[str, str | None], backend: str, paths: list[str],
                max_duration: float | None, fmt: str = "csv") -> list[dict[str, Any]]:
    from emovox.serving.pool import predict_chunk

    pred = _worker_predictor(artifact, backend)
    return predict_chunk(pred, [Path(p) for p in paths], max_duration, fmt)


def check_workers(client: Any, where: str) -> None:
    """Refuse a cluster that has no worker, or one that cannot run emovox as this process
    does (ConfigError naming the worker and the fix)."""
    try:
        client.wait_for_workers(1, timeout=WAIT_FOR_WORKERS_S)
    except TimeoutError:
        raise ConfigError(f"the Dask scheduler at {where} has no workers (waited "
                          f"{WAIT_FOR_WORKERS_S:g} s): start some with `dask worker "
                          f"{where}`") from None
    ours = importlib.metadata.version("emovox")
    found = client.run(importlib.metadata.version, "emovox", on_error="return")
    for worker, version in sorted(found.items()):
        if isinstance(version, BaseException):
            raise ConfigError(f"Dask worker {worker} cannot import emovox "
                              f"({type(version).__name__}): install emovox {ours} there")
        if version != ours:
            raise ConfigError(f"Dask worker {worker} runs emovox {version}, this is {ours}: "
                              "install the same version on every worker")


def _result(client: Any, fut: Any, scheduler: str | None) -> Any:
    """``fut``'s result, watching the cluster meanwhile: ClusterLost once it has had no
    worker for :data:`WAIT_FOR_WORKERS_S` (a remote cluster that lost every worker waited
    for one without a word: stop 36's list)."""
    since: float | None = None
    while True:
        try:
            return fut.result(timeout=POLL_S)
        except TimeoutError:
            if client.scheduler_info(n_workers=1).get("workers"):
                since = None
            elif since is None:
                since = time.monotonic()
            elif time.monotonic() - since >= WAIT_FOR_WORKERS_S:
                wait = f"{WAIT_FOR_WORKERS_S:g} s"
                raise ClusterLost(
                    f"the Dask scheduler at {scheduler} has had no worker for {wait} (they "
                    f"stopped or were lost): start some with `dask worker {scheduler}`"
                    if scheduler else f"the local Dask cluster has had no worker for {wait} "
                    "(its processes stopped or were killed)") from None


def _chunk_rows(client: Any, fut: Any, paths: list[str], submit: Callable[[list[str]], Any],
                scheduler: str | None, fmt: str) -> list[dict[str, Any]]:
    """The rows of one chunk's future. A chunk whose worker died (Dask gave up on it,
    ``KilledWorker``) is read again one file per task, and a file that kills its worker
    again is an error row: one such file stopped the batch, for good, as every re-run
    stopped at it (code review, stop 46; the local engine's :func:`pool._after_crash`)."""
    from distributed import CancelledError, KilledWorker
    from distributed.comm import CommClosedError

    try:
        return _result(client, fut, scheduler)
    except KilledWorker:
        log.warning("a Dask worker died on a chunk of %d files; re-running them one at a "
                    "time", len(paths))
        rows = []
        for p in paths:
            one = submit([p])
            try:
                rows += _result(client, one, scheduler)
            except KilledWorker:
                from emovox.serving.batch import row_for

                log.warning("%s: the worker process died on this file", p)
                rows.append(row_for(Path(p), None, CRASH_MESSAGE, fmt=fmt))
            except (CancelledError, CommClosedError, OSError) as exc:
                raise ClusterLost(f"the Dask cluster stopped answering ({_said(exc)})"
                                  ) from None
            finally:
                one.release()
        return rows
    except ClusterLost:
        raise
    except (CancelledError, CommClosedError, OSError) as exc:
        raise ClusterLost(f"the Dask cluster stopped answering ({_said(exc)})") from None
    except Exception as exc:  # noqa: BLE001 - files never raise: the worker did
        raise ClusterLost(f"a Dask worker failed: {_said(exc)}") from None


def _said(exc: BaseException) -> str:
    """``exc`` in one short line (Dask's own messages span lines and name task keys)."""
    text = " ".join(str(exc).split()).split(". ")[0]
    if "reason: " in text:  # "<task key> cancelled for reason: scheduler-connection-lost"
        text = text.split("reason: ", 1)[1]
    text = " ".join(text.split())[:200]
    return text if isinstance(exc, EmovoxError) else f"{type(exc).__name__}: {text}"


@contextmanager
def _sigint_ignored() -> Iterator[None]:
    """SIGINT ignored while a local cluster starts its processes, which inherit it (Python
    keeps an ignored SIGINT ignored), so Ctrl-C reaches this process alone (each of them
    printed a traceback). A Ctrl-C in those seconds is lost: the next one stops the batch
    (holding it blocked instead did not reach the processes: they printed tracebacks)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


def _tcp_endpoint(scheduler: str) -> tuple[str, int] | None:
    """``(host, port)`` of a ``tcp://`` (or scheme-less) scheduler address, else None."""
    scheme, _, rest = scheduler.rpartition("://")
    if scheme not in ("", "tcp"):
        return None
    host, _, port = rest.rpartition(":")
    host = host.strip("[]")
    if not (host and port.isdigit()):
        return None
    if not 0 < int(port) < 65536:  # was "connection refused" (re-check, stop 37)
        raise ConfigError(f"--scheduler {scheduler}: port {port} is out of range (1-65535)")
    return host, int(port)


def _greeting(sock: socket.socket) -> bytes | None:
    """What the peer sends of itself within :data:`PROBE_S` (at most 1 KiB, until Dask's
    handshake is recognised); None when it sent nothing at all in that time."""
    deadline = time.monotonic() + PROBE_S
    got = b""
    while len(got) < 1024 and _DASK_GREETING not in got:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            more = sock.recv(1024)
        except OSError:  # timeout included
            break
        if not more:
            break
        got += more
    return got or None


def _probe_scheduler(scheduler: str) -> None:
    """ConfigError when nothing listens at a ``tcp://`` ``scheduler`` or its host name does
    not resolve (Dask retried for 30 s, then said "Timed out"), or when what answers there
    does not greet as Dask does at once (its handshake): an HTTP port made the client wait
    forever, Dask's connect timeout not covering the handshake (stop 36's list); a banner
    of another protocol ended in a MemoryError message. Other schemes and failures (an
    unreachable network) are left to Dask's client."""
    endpoint = _tcp_endpoint(scheduler)
    if endpoint is None:
        return
    try:
        sock = socket.create_connection(endpoint, timeout=PROBE_S)
    except socket.gaierror:
        raise ConfigError(f"no Dask scheduler at {scheduler}: the host name {endpoint[0]!r} "
                          "does not resolve") from None
    except ConnectionRefusedError:
        raise ConfigError(f"no Dask scheduler at {scheduler}: nothing listens there "
                          "(connection refused); start one with `dask scheduler`") from None
    except OSError:
        return  # Dask says it, in its words
    try:
        first = _greeting(sock)
    finally:
        sock.close()
    if first is None or _DASK_GREETING not in first:
        said = ("sent nothing within " f"{PROBE_S:g} s" if first is None else
                "greets in another protocol")
        raise ConfigError(f"no Dask scheduler answers at {scheduler}: something accepts "
                          f"connections there but {said}, where a scheduler greets at once "
                          "(another service's port, e.g. a web server's or the dashboard's?)")


def _remote_client(scheduler: str) -> Any:
    """A client of ``scheduler``; ConfigError when what answers there is no scheduler (a
    nanny's port ended in a TypeError traceback: QA, stop 36; an HTTP port hung: stop 37)."""
    from dask.distributed import Client

    _probe_scheduler(scheduler)
    try:
        return Client(scheduler, timeout=WAIT_FOR_WORKERS_S)
    except Exception as exc:  # noqa: BLE001 - whatever answers there, it is no scheduler
        raise ConfigError(f"no Dask scheduler answers at {scheduler} ({_said(exc)})"
                          ) from None


def connect(scheduler: str | None, workers: int, processes: bool) -> tuple[Any, Any]:
    """``(client, local cluster or None)``: a client of ``scheduler`` (its workers checked:
    :func:`check_workers`), else of a new local cluster of ``workers`` (processes or
    threads, at most one per CPU) whose processes ignore SIGINT."""
    from dask.distributed import Client, LocalCluster

    if scheduler:
        client = _remote_client(scheduler)
        try:
            check_workers(client, scheduler)
        except BaseException:
            client.close()
            raise
        return client, None
    # on the loopback only, the HTTP server on a free port: `dashboard_address=None` still
    # served Dask's dashboard on every interface, at 8787 (QA, stop 36); threads talk
    # in-process (no host to give, no process to keep from Ctrl-C)
    where = {"host": "127.0.0.1"} if processes else {}
    with _sigint_ignored():
        cluster = LocalCluster(n_workers=max(1, min(workers, os.cpu_count() or 1)),  # (47)
                               threads_per_worker=1,
                               processes=processes, dashboard_address="127.0.0.1:0",
                               silence_logs=logging.CRITICAL, **where)
    return Client(cluster), cluster


class _FromDask(logging.Filter):
    """Drops the records Dask logs itself (40 INFO lines per run drowned the summary; a lost
    scheduler printed tracebacks, some under loggers named after a bare module): what goes
    wrong is raised and said by :func:`run_dask` in one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name.startswith("distributed")
                    or "distributed" in Path(record.pathname).parts)


@contextmanager
def _dask_quiet() -> Iterator[None]:
    """:class:`_FromDask` on every handler of the root and ``distributed`` loggers."""
    quiet = _FromDask()
    handlers = [*logging.getLogger().handlers, *logging.getLogger("distributed").handlers]
    for h in handlers:
        h.addFilter(quiet)
    try:
        yield
    finally:
        for h in handlers:
            h.removeFilter(quiet)


def run_dask(todo: list[Path], record: Callable[[dict[str, Any]], None],
             artifact: str | Path | None, backend: str, workers: int, scheduler: str | None,
             max_duration: float | None, processes: bool, fmt: str) -> None:
    """See :func:`_run_dask`; Dask's own log records are dropped meanwhile."""
    with _dask_quiet():
        _run_dask(todo, record, artifact, backend, workers, scheduler, max_duration,
                  processes, fmt)


def _run_dask(todo: list[Path], record: Callable[[dict[str, Any]], None],
              artifact: str | Path | None, backend: str, workers: int, scheduler: str | None,
              max_duration: float | None, processes: bool, fmt: str) -> None:
    """Answer ``todo`` on a Dask cluster (``scheduler``, else a local one of ``workers``),
    giving each row to ``record`` in the order of ``todo``.

    Raises:
        ImportError: dask is not installed. ConfigError: the cluster has no worker or a
        worker cannot run emovox. ClusterLost: the cluster stopped answering part-way.
    """
    try:
        import distributed  # noqa: F401 - the engine's own dependency, said in one line
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("the dask engine needs: pip install 'emovox[dask]'") from exc
    client = cluster = None
    try:
        client, cluster = connect(scheduler, workers, processes)
        art = worker_artifact(artifact)
        expected = model_id_of(artifact)

        def submit(paths: list[str]) -> Any:
            return client.submit(_dask_chunk, art, backend, paths, max_duration, fmt,
                                 pure=False)

        chunks = iter([str(p.absolute()) for p in todo[i : i + CHUNK]]
                      for i in range(0, len(todo), CHUNK))
        # a bounded window in flight, each result released once written: every chunk
        # submitted at once kept all their rows on the workers (code review, stop 46)
        window = 2 * max(1, len(client.scheduler_info(n_workers=-1).get("workers") or ()))
        inflight = deque((paths, submit(paths)) for paths in islice(chunks, window))
        while inflight:  # in order: a resumed file's row is where it was
            paths, fut = inflight.popleft()
            rows = _chunk_rows(client, fut, paths, submit, scheduler, fmt)
            fut.release()
            for row in rows:
                if row.get("model_id") not in (None, "", expected) and unquoted(
                        str(row["model_id"])) != expected:  # never a stranger's
                    raise ClusterLost(f"a Dask worker answered with model {row['model_id']}, "
                                      f"not {expected}: its model folder is another")
                record(row)
            if (more := next(chunks, None)) is not None:
                inflight.append((more, submit(more)))
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
