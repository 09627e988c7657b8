"""Batch prediction over folders and globs: resumable, never stopped by one bad file.

Rows go to a CSV or JSON-lines file as they are produced (flushed each time), so an
interrupted run loses nothing and a re-run skips every file already in the output.
Local runs use a thread pool over one shared :class:`~emovox.inference.Predictor`;
``engine="dask"`` runs the same work on a Dask distributed cluster.
"""

from __future__ import annotations

import csv
import glob
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import Any

from emovox.corpora.base import AUDIO_EXTENSIONS, iter_audio_files
from emovox.labels import LABELS

log = logging.getLogger(__name__)

ERROR_LABEL = "error"
SILENCE_LABEL = "silence"


class Engine(str, Enum):
    LOCAL = "local"
    DASK = "dask"


@dataclass
class BatchSummary:
    found: int = 0
    skipped: int = 0  #: already in the output file (resumed)
    done: int = 0
    errors: int = 0
    silent: int = 0
    seconds: float = 0.0
    labels: Counter = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "labels": dict(self.labels)}


def collect_inputs(inputs: Iterable[str]) -> list[Path]:
    """Audio files from paths: folders are walked recursively, globs expanded (``**``
    allowed), files taken as given. Order is stable; duplicates removed."""
    out: dict[str, Path] = {}
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            paths = list(iter_audio_files(p))
        elif p.is_file():
            paths = [p]
        else:
            matches = sorted(glob.glob(item, recursive=True))
            if not matches:
                raise FileNotFoundError(f"no such file, folder or glob match: {item}")
            paths = []
            for m in matches:
                mp = Path(m)
                if mp.is_dir():
                    paths += list(iter_audio_files(mp))
                elif mp.suffix.lower() in AUDIO_EXTENSIONS:
                    paths.append(mp)
        for q in paths:
            out.setdefault(str(q), q)
    return list(out.values())


def row_for(path: Path, prediction: Any | None, error: str | None) -> dict[str, Any]:
    """One output row: path, label (emotion, ``silence`` or ``error``), confidence, all
    eight probabilities, derived arousal/valence, duration, error message."""
    row: dict[str, Any] = {"path": str(path)}
    if prediction is None:
        row |= {"label": ERROR_LABEL, "confidence": "", "arousal": "", "valence": "",
                "duration": ""} | {f"p_{lab}": "" for lab in LABELS} | {"error": error or ""}
        return row
    p = prediction
    row |= {
        "label": SILENCE_LABEL if p.silent else p.label,
        "confidence": round(p.confidence, 6),
        "arousal": round(p.arousal, 4),
        "valence": round(p.valence, 4),
        "duration": round(p.duration, 3),
    }
    row |= {f"p_{lab}": round(p.probabilities[lab], 6) for lab in LABELS}
    row["error"] = ""
    return row


FIELDS = ["path", "label", "confidence", *(f"p_{lab}" for lab in LABELS), "arousal", "valence",
          "duration", "error"]


def _format(out: Path) -> str:
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".jsonl"):
        raise ValueError(f"output must end in .csv or .jsonl, got {out.name}")
    return suffix[1:]


def done_paths(out: Path) -> set[str]:
    """Paths already in an existing output file (rows with errors included)."""
    if not out.exists() or out.stat().st_size == 0:
        return set()
    if _format(out) == "csv":
        with open(out, newline="") as f:
            return {r["path"] for r in csv.DictReader(f) if r.get("path")}
    seen = set()
    with open(out) as f:
        for line in f:
            try:
                seen.add(json.loads(line)["path"])
            except (json.JSONDecodeError, KeyError):
                log.warning("ignoring an unreadable line in %s", out)
    return seen


class RowWriter:
    """Appends rows to a CSV (header once) or JSONL file, flushing every row."""

    def __init__(self, out: Path) -> None:
        self.fmt = _format(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        new = not out.exists() or out.stat().st_size == 0
        self.f = open(out, "a", newline="")  # noqa: SIM115 - closed in close()
        self.csv = csv.DictWriter(self.f, fieldnames=FIELDS) if self.fmt == "csv" else None
        if self.csv and new:
            self.csv.writeheader()

    def write(self, row: dict[str, Any]) -> None:
        if self.csv:
            self.csv.writerow(row)
        else:
            self.f.write(json.dumps(row) + "\n")
        self.f.flush()

    def close(self) -> None:
        self.f.close()


def predict_one(predictor: Any, path: Path, max_duration: float | None) -> dict[str, Any]:
    """Never raises: a failure becomes an error row naming what went wrong."""
    try:
        return row_for(path, predictor.predict_file(path, max_duration=max_duration), None)
    except Exception as exc:  # noqa: BLE001 - one bad file never stops a batch
        from emovox.errors import EmovoxError

        msg = str(exc) if isinstance(exc, EmovoxError) else f"{type(exc).__name__}: {exc}"
        return row_for(path, None, msg)


@lru_cache(maxsize=4)
def _worker_predictor(artifact: str | None, backend: str) -> Any:
    from emovox.inference import Predictor

    return Predictor.from_artifact(artifact or None, backend=backend, threads=1)


def _dask_chunk(artifact: str | None, backend: str, paths: list[str],
                max_duration: float | None) -> list[dict[str, Any]]:
    pred = _worker_predictor(artifact, backend)
    return [predict_one(pred, Path(p), max_duration) for p in paths]


def _chunks(items: list[Path], n: int) -> Iterator[list[Path]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


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
) -> BatchSummary:
    """Predict every audio file of ``inputs`` into ``out`` (.csv or .jsonl), skipping
    files already there."""
    t0 = time.perf_counter()
    out = Path(out)
    _format(out)
    files = collect_inputs(inputs)
    seen = done_paths(out)
    todo = [p for p in files if str(p) not in seen]
    summary = BatchSummary(found=len(files), skipped=len(files) - len(todo))
    writer = RowWriter(out)

    def record(row: dict[str, Any]) -> None:
        writer.write(row)
        summary.done += 1
        if row["label"] == ERROR_LABEL:
            summary.errors += 1
        elif row["label"] == SILENCE_LABEL:
            summary.silent += 1
        else:
            summary.labels[row["label"]] += 1
        if progress:
            progress(summary.done, len(todo))

    try:
        if not todo:
            pass
        elif engine is Engine.DASK:
            _run_dask(todo, record, artifact, backend, workers, scheduler, max_duration,
                      dask_processes)
        else:
            from emovox.inference import Predictor

            predictor = Predictor.from_artifact(artifact, backend=backend, threads=1)
            with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
                for row in pool.map(lambda p: predict_one(predictor, p, max_duration), todo):
                    record(row)
    finally:
        writer.close()
    summary.seconds = time.perf_counter() - t0
    return summary


def _run_dask(todo: list[Path], record: Callable[[dict[str, Any]], None],
              artifact: str | Path | None, backend: str, workers: int, scheduler: str | None,
              max_duration: float | None, processes: bool) -> None:
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("the dask engine needs: pip install 'emovox[dask]'") from exc
    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        cluster = LocalCluster(n_workers=max(1, workers), threads_per_worker=1,
                               processes=processes, dashboard_address=None,
                               silence_logs=logging.WARNING)
        client = Client(cluster)
    try:
        art = str(artifact) if artifact else None
        futures = [client.submit(_dask_chunk, art, backend, [str(p) for p in chunk],
                                 max_duration, pure=False)
                   for chunk in _chunks(todo, 16)]
        for fut in as_completed(futures):
            for row in fut.result():
                record(row)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
