"""Batch prediction over folders and globs: resumable, never stopped by one bad file.

Rows go to a CSV or JSON-lines file as they are produced (flushed each time), so an
interrupted run loses nothing and a re-run skips every file already in the output. A file
is identified by its resolved absolute path, which is what the ``path`` column holds (file
names that are not valid UTF-8 are written with backslash escapes, ``b\\xff.wav``, and a
backslash that would read as one is doubled: see
:func:`emovox.serving.inputs.exact_path_text`). Error rows are retried by the next run
unless ``retry_errors=False``: the old error row is removed, the new result appended. So is
a file changed since its CSV row was written (another size or modification time, recorded
in the row: :mod:`emovox.serving.batch_rows`); rows without them (older outputs, JSON
lines) resume by path.
Local runs with more than one worker use worker **processes**, each with its own
single-threaded :class:`~emovox.serving.predictor.Predictor`, fed chunks of files
(:mod:`emovox.serving.pool`; ``processes=False``: a thread pool over one shared predictor);
every chunk is classified together (one network call per 16 windows). ``engine="dask"`` runs
the same chunks on a Dask distributed cluster. ``file_timeout`` (``emovox batch
--file-timeout``, stop 51): seconds per file, after which the worker process is killed and
the file becomes an error row; it needs worker processes (a thread cannot be stopped), so
the files then go to them whatever ``workers`` is (the Dask engine has no deadline).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from emovox.errors import ConfigError, EmovoxError
from emovox.fileio import locked_beside
from emovox.labels import LABELS
from emovox.serving.answer import Status, rounded_probability
from emovox.serving.batch_rows import (
    ERROR_LABEL,
    FIELDS,
    FileVersion,
    RowWriter,
    done_paths,
    done_rows,
    drop_rows,
    file_version,
    is_error_row,
    legacy_renames,
    output_format,
    read_rows,
    version_cells,
)
from emovox.serving.inputs import collect_inputs, path_of_text, printable_path, resolved_key
from emovox.serving.outfile import (
    capped,
    check_ours,
    check_same_model,
    csv_sentences,
    drop_partial_last_line,
    spreadsheet_safe,
)
from emovox.serving.params import check_max_duration
from emovox.serving.schema import failure_document
from emovox.serving.timeline import SILENCE as SILENCE_LABEL

log = logging.getLogger(__name__)

__all__ = ["ERROR_LABEL", "FIELDS", "SILENCE_LABEL", "BatchInterrupted", "BatchSummary", "Engine",
           "RowWriter", "check_file_timeout", "collect_inputs", "done_paths", "failure_message",
           "is_error_row", "predict_one", "read_rows", "row_for", "run_batch"]


class Engine(str, Enum):
    LOCAL = "local"
    DASK = "dask"


@dataclass
class BatchSummary:
    found: int = 0
    skipped: int = 0  #: already in the output file (resumed)
    skipped_errors: int = 0  #: of those, error rows kept (``retry_errors=False``)
    retried: int = 0  #: error rows of an earlier run tried again
    changed: int = 0  #: files changed since their row was written (size, mtime), redone
    gone: int = 0  #: rows of files no longer on disk (deleted or renamed since), kept
    done: int = 0
    errors: int = 0  #: files that failed in this run
    no_speech: int = 0  #: files judged to hold no speech (no emotion given)
    uncertain: int = 0  #: files answered with status ``uncertain`` (also in ``labels``)
    seconds: float = 0.0
    labels: Counter = field(default_factory=Counter)

    @property
    def silent(self) -> int:
        """Deprecated name of :attr:`no_speech`."""
        return self.no_speech

    @property
    def failed(self) -> int:
        """Files whose row in the output is an error (this run's and kept old ones)."""
        return self.errors + self.skipped_errors

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "labels": dict(self.labels), "failed": self.failed}


class BatchStopped(EmovoxError):
    """A batch stopped part-way for a reason other than Ctrl-C (:attr:`reason`, e.g. a Dask
    cluster that stopped answering); :attr:`summary` counts the rows written before it (kept:
    the same call resumes after them)."""

    def __init__(self, summary: BatchSummary, reason: str) -> None:
        super().__init__(reason)
        self.summary = summary
        self.reason = reason


class BatchInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a batch; :attr:`summary` counts the rows written before it (all kept
    in the output: the same call resumes after them)."""

    def __init__(self, summary: BatchSummary) -> None:
        super().__init__("interrupted")
        self.summary = summary


def row_for(path: Path, prediction: Any | None, error: str | None, *,
            fmt: str = "csv") -> dict[str, Any]:
    """One output row.

    ``jsonl``: the prediction document (schema ``prediction-v1.json``) with ``source`` =
    the resolved path and ``error`` null, or a failure record ``{"schema_version",
    "source", "error"}``. ``csv``: flat columns :data:`FIELDS` (``path`` = the resolved
    path; label empty for ``no_speech`` and for a failed file, whose ``status`` is
    ``error`` and ``error`` the reason; ``warnings`` the decoder's, joined by `` | ``; free
    text cut to :data:`~emovox.serving.outfile.MAX_CELL_CHARS`; the file's version cells
    empty: :func:`run_batch` fills them)."""
    key = resolved_key(path)
    if fmt == "jsonl":
        if prediction is None:
            return failure_document(key, printable_path(error or ""))
        return {**prediction.to_dict(), "source": key, "error": None}
    row: dict[str, Any] = {"path": key}
    if prediction is None:
        row |= {k: "" for k in FIELDS if k != "path"}
        # the label column holds emotions only: "error" there was counted as one by a
        # spreadsheet (CLI QA, stop 33); rows written before say it, and still count as errors
        row |= {"status": ERROR_LABEL,
                "error": spreadsheet_safe(capped(printable_path(error or "")))}
        return row
    p = prediction
    probs = p.probabilities or {}
    row |= {
        "status": p.status.value,
        "reason": capped(p.reason or ""),
        "label": p.label or "",
        "confidence": "" if p.confidence is None else rounded_probability(p.confidence, 6),
        "arousal": "" if p.arousal is None else round(p.arousal, 4),
        "valence": "" if p.valence is None else round(p.valence, 4),
        "duration": round(p.duration, 3),
        "speech_seconds": round(p.speech_seconds, 3),
        "n_windows": p.n_windows,
        "model_id": spreadsheet_safe(p.model_id or ""),  # a model's name is any text
        # the decoder's warnings (a WAV cut short, near-silence), as in the JSON lines
        "warnings": capped(csv_sentences([printable_path(w) for w in p.warnings])),
        **version_cells(None),
    }
    row |= {f"p_{lab}": rounded_probability(probs[lab], 6) if lab in probs else ""
            for lab in LABELS}
    row["error"] = ""
    return row


def failure_message(exc: BaseException) -> str:
    """What an error row (of ``batch`` or ``predict``) says about a file that failed."""
    return str(exc) if isinstance(exc, EmovoxError) else f"{type(exc).__name__}: {exc}"


def predict_one(predictor: Any, path: Path, max_duration: float | None,
                fmt: str = "csv") -> dict[str, Any]:
    """Never raises: a failure becomes an error row naming what went wrong."""
    try:
        pred = predictor.predict_file(path, max_duration=max_duration)
    except Exception as exc:  # noqa: BLE001 - one bad file never stops a batch
        return row_for(path, None, failure_message(exc), fmt=fmt)
    return row_for(path, pred, None, fmt=fmt)


@dataclass(frozen=True)
class FileOutcome:
    """One file of ``emovox predict``: its prediction, or why it failed (never both)."""

    path: Path
    prediction: Any | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The prediction document (``source`` = the path as given) with ``error`` null, or
        a failure record ``{"schema_version", "source", "error"}``."""
        if self.prediction is None:
            return failure_document(str(self.path), self.error or "")
        return {**self.prediction.to_dict(), "source": str(self.path), "error": None}


def predict_files(predictor: Any, files: Iterable[Path], *,
                  max_duration: float | None) -> list[FileOutcome]:
    """Predict each file in turn; a file that fails becomes an outcome naming the error and
    never stops the others."""
    out: list[FileOutcome] = []
    for f in files:
        try:
            out.append(FileOutcome(f, predictor.predict_file(f, max_duration=max_duration)))
        except Exception as exc:  # noqa: BLE001 - one bad file never stops the others
            out.append(FileOutcome(f, error=failure_message(exc)))
    return out


def check_file_timeout(value: float | None, name: str = "file timeout") -> float | None:
    """A per-file deadline in seconds: ``None`` or 0 (no deadline: None), or a finite
    positive number.

    Raises:
        ConfigError: NaN, infinity, a negative number, or not a number.
    """
    if value is None:
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number of seconds, got {value!r}") from None
    if not math.isfinite(x) or x < 0:
        raise ConfigError(f"{name} must be a finite number of seconds, 0 or more (0: no "
                          f"deadline), got {value!r}")
    return x or None


def _chunks(items: list[Path], n: int) -> Iterator[list[Path]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def _check_output(out: Path, artifact: str | Path | None, *, checked_only: bool = False
                  ) -> None:
    """Refuse an ``out`` emovox did not write or that holds another model's answers; remove
    a last row cut short (:mod:`emovox.serving.outfile`). ``checked_only``: only whether it
    is ours (before its lock is taken: nothing is written beside a foreign file)."""
    check_ours(out)
    if checked_only:
        return
    drop_partial_last_line(out)
    if out.exists() and out.stat().st_size:
        from emovox.serving.predictor import model_id_of

        check_same_model(out, read_rows(out), model_id_of(artifact))  # streamed: a list of
        # every row took 196 MiB for 50,000 rows before anything was predicted (stop 46)


def _plan(files: list[Path], out: Path, retry_errors: bool
          ) -> tuple[list[Path], BatchSummary, dict[str, FileVersion | None]]:
    """The files still to predict, the summary of what the output already holds, and every
    file's version now, by key (taken before it is read: a file changed while it is read
    is predicted again by the next run). A file whose row recorded another version is
    predicted again, an error row too (it is another recording), and its old rows dropped.
    A row keyed as an older version wrote a file's path is that file's (re-keyed, or
    dropped when the file has a row under its key now: :func:`legacy_renames`)."""
    seen = done_rows(out)
    keys = {resolved_key(p): p for p in files}
    renames = legacy_renames(seen, keys)
    for old, new in renames.items():
        row = seen.pop(old)
        if new is not None:
            seen[new] = row
    now = {k: file_version(p) for k, p in keys.items()}
    changed = {k for k, v in now.items()
               if k in seen and None not in (v, seen[k].version) and v != seen[k].version}
    old_errors = {k for k in keys if k in seen and seen[k].status == ERROR_LABEL} - changed
    retry = old_errors if retry_errors else set()
    todo = [p for k, p in keys.items() if k not in seen or k in retry or k in changed]
    summary = BatchSummary(found=len(files), skipped=len(files) - len(todo),
                           skipped_errors=len(old_errors - retry), retried=len(retry),
                           changed=len(changed), gone=_gone(seen, keys, out))
    if changed:
        log.warning("%d file(s) changed since their row in %s was written (another size or "
                    "modification time): they are predicted again, their old rows replaced",
                    len(changed), out)
    stale = {old for old, new in renames.items() if new is None}
    if retry or changed or renames:
        drop_rows(out, retry | changed | stale,
                  {old: new for old, new in renames.items() if new is not None})
    return todo, summary, now


def _gone(seen: dict[str, Any], keys: dict[str, Path], out: Path) -> int:
    """How many rows of ``out`` name a file no longer on disk (deleted or renamed since its
    row was written), said in a warning: they were kept without a word (a review as a user,
    stop 53). They stay: ``out`` may hold rows of other inputs, and nothing is thrown away.
    Keys are read back as paths by :func:`~emovox.serving.inputs.path_of_text`."""
    gone = sorted(k for k in seen if k not in keys and not path_of_text(k).exists())
    if gone:
        log.warning("%d row(s) in %s name a file that is no longer there (deleted or renamed "
                    "since, e.g. %s): they are kept; remove them from %s if they should go",
                    len(gone), out, gone[0], out)
    return len(gone)


def run_batch(
    inputs: Iterable[str],
    out: Path,
    *,
    artifact: str | Path | None = None,
    backend: str = "auto",
    workers: int = 2,
    engine: Engine = Engine.LOCAL,
    scheduler: str | None = None,
    max_duration: float | None = None,
    progress: Callable[[int, int], None] | None = None,
    dask_processes: bool = True,
    retry_errors: bool = True,
    processes: bool | None = None,
    also_ours: tuple[Path, ...] = (),
    file_timeout: float | None = None,
    before_run: Callable[[], None] | None = None,
) -> BatchSummary:
    """Predict every audio file of ``inputs`` into ``out`` (.csv or .jsonl), skipping
    files already there (error rows too when ``retry_errors`` is False). ``processes``:
    local workers are processes (default when ``workers > 1``) or threads. ``also_ours``:
    further outputs of this batch, never counted among an input folder's other files.
    ``file_timeout``: seconds per file (None, the default here, or 0: no deadline; the
    command line's default is :data:`emovox.serving.pool.DEFAULT_FILE_TIMEOUT_S`); a file
    not answered in time is an error row (:data:`emovox.serving.pool.TIMEOUT_MESSAGE`), its
    worker process killed; local workers are then always processes. ``before_run``: called
    once the inputs are collected and ``out`` is checked and locked, before its rows are read
    or anything is written (``batch --speaker-from`` moves a plain run's answers there then).

    Raises:
        ValueError: ``out`` is not .csv/.jsonl. ConfigError: a bad ``max_duration`` or
        ``file_timeout``, or one with ``processes=False`` or the Dask engine; an ``out``
        emovox did not write, or that holds another model's answers.
        FileNotFoundError: an input that matches nothing.
    """
    out = Path(out)
    output_format(out)
    max_duration = check_max_duration(max_duration)
    file_timeout = check_file_timeout(file_timeout)
    if file_timeout is not None and (engine is Engine.DASK or processes is False):
        raise ConfigError("a per-file deadline (file_timeout) needs the local engine's worker "
                          "processes: " + ("the Dask engine has none" if engine is Engine.DASK
                                           else "threads cannot be stopped"))
    files = collect_inputs(inputs, ours=(out, *also_ours))
    _check_output(out, artifact, checked_only=True)
    with locked_beside(out, "the batch output"):  # one batch per output at a time
        if before_run is not None:
            before_run()
        return _run_locked(files, out, artifact, backend, workers, engine, scheduler,
                           max_duration, progress, dask_processes, retry_errors,
                           True if file_timeout is not None else processes, file_timeout)


def _run_locked(files: list[Path], out: Path, artifact: str | Path | None, backend: str,
                workers: int, engine: Engine, scheduler: str | None,
                max_duration: float | None, progress: Callable[[int, int], None] | None,
                dask_processes: bool, retry_errors: bool, processes: bool | None,
                file_timeout: float | None = None) -> BatchSummary:
    """:func:`run_batch` once ``out`` is locked for this process."""
    t0 = time.perf_counter()
    fmt = output_format(out)
    _check_output(out, artifact)
    todo, summary, versions = _plan(files, out, retry_errors)
    created = not out.exists()
    writer = RowWriter(out)

    def record(row: dict[str, Any]) -> None:
        if fmt == "csv":  # the version planned, read before the file was
            row |= version_cells(versions.get(row["path"]))
        writer.write(row)
        summary.done += 1
        if is_error_row(row):
            summary.errors += 1
        elif row["status"] == Status.NO_SPEECH.value:
            summary.no_speech += 1
        else:
            summary.labels[row["label"]] += 1
            summary.uncertain += row["status"] == Status.UNCERTAIN.value
        if progress:
            progress(summary.done, len(todo))

    finished = False
    try:
        if not todo:
            pass
        elif engine is Engine.DASK:
            from emovox.serving.dask_engine import run_dask

            run_dask(todo, record, artifact, backend, workers, scheduler, max_duration,
                     dask_processes, fmt)
        elif (workers > 1) if processes is None else processes:
            from emovox.serving.pool import process_rows

            for row in process_rows(todo, artifact=artifact, backend=backend,
                                    workers=workers, max_duration=max_duration, fmt=fmt,
                                    deadline=file_timeout):
                record(row)
        else:
            _run_threads(todo, record, artifact, backend, workers, max_duration, fmt)
        writer.close()  # its last flush may fail too: the run's failure, with its summary
        finished = True
    except KeyboardInterrupt as exc:
        summary.seconds = time.perf_counter() - t0
        with contextlib.suppress(OSError):
            writer.close()  # counted from the file: a Ctrl-C between a row's write and its
        summary.done = _kept(out, todo)  # count said one fewer (clean-clone CI, stop 40)
        raise BatchInterrupted(summary) from exc
    except (EmovoxError, OSError) as exc:  # a Dask cluster lost, a full disk: say what
        if summary.done == 0:  # was kept (a full disk said only "[Errno 28] ...": QA 38)
            raise
        summary.seconds = time.perf_counter() - t0
        why = str(exc) if isinstance(exc, EmovoxError) else \
            f"writing {out} failed ({exc.strerror or exc})"
        raise BatchStopped(summary, why) from exc
    finally:
        if not finished:  # the first error is the one to report (a full disk raised again
            with contextlib.suppress(OSError):  # here and hid the summary: QA re-check, 38)
                writer.close()
        if not finished and created and summary.done == 0:
            out.unlink(missing_ok=True)  # failed before any answer: no empty file left behind
    summary.seconds = time.perf_counter() - t0
    return summary


def _kept(out: Path, todo: list[Path]) -> int:
    """How many of ``todo`` have a row in ``out`` (this run's rows: what it skipped was not
    in ``todo``, and old error rows of retried files were dropped first)."""
    seen = done_paths(out)
    return sum(resolved_key(p) in seen for p in todo)


def _run_threads(todo: list[Path], record: Callable[[dict[str, Any]], None],
                 artifact: str | Path | None, backend: str, workers: int,
                 max_duration: float | None, fmt: str) -> None:
    """Chunks of files over a thread pool sharing one predictor (in order). Ctrl-C cancels
    the chunks not started (a plain ``with`` would have run them all first)."""
    from emovox.serving.pool import CHUNK, predict_chunk
    from emovox.serving.predictor import Predictor

    predictor = Predictor.from_artifact(artifact, backend=backend, threads=1)
    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    try:
        for rows in pool.map(lambda c: predict_chunk(predictor, c, max_duration, fmt),
                             _chunks(todo, CHUNK)):
            for row in rows:
                record(row)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
