"""Scoring a finished cross-validation run again, each test clip read at several playback
speeds (test-time speed augmentation): ``emovox rescore RUN --speeds 0.9,1,1.1``.

A run written with ``--save-models`` keeps each fold's model (``models/foldK``). Every
scored test clip of fold K is decoded again and read by that fold's model exactly as a
model folder whose ``preprocess.speeds`` is set reads it
(:meth:`~emovox.serving.predictor.Predictor.wave_probabilities`: each window also played at
each speed, the softmax averaged), restricted to its corpus's classes as ``evaluate``
stores it. The result is a run directory like any other (``config.yaml`` copied, metrics
recomputed) whose ``metrics.json`` records ``speeds``: ``emovox fuse`` and ``merge`` keep
it (and refuse runs read at other speeds), and ``emovox calibrate`` / ``ensemble
--calibrate`` give the model the speeds its calibration run was read at, so a model's
temperature is always fitted on answers read the way it reads. Before the speeds, a few
clips of each fold are read once and must give the stored probabilities (the fold models
are the run's). No test-speaker information is used.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from emovox.errors import ConfigError
from emovox.experiment.multicorpus import (
    per_corpus_metrics,
    per_corpus_record,
    restrict_to_corpus,
)
from emovox.experiment.rundest import (
    carry_files,
    check_run_destination,
    refuse_links,
    refuse_out_among,
    staged_run_dir,
)
from emovox.experiment.rundir import (
    CONFIG_FILE,
    ERRORS_FILE,
    MERGED_INPUTS,
    Prediction,
    Predictions,
    RunDirError,
    link_refused,
    merged_parts,
    part_records,
    read_metrics,
    read_run,
    saved_fold_model,
    write_run,
)
from emovox.experiment.runfiles import CHECK_TOLERANCE  # the largest difference allowed
from emovox.features.cache import RESEARCH_MAX_DURATION_S
from emovox.labels import LABELS
from emovox.metrics import compute_metrics, summarize
from emovox.preprocess import checked_speeds

log = logging.getLogger(__name__)

__all__ = ["CHECK_CLIPS", "CHECK_TOLERANCE", "rescore_run", "run_speeds"]

#: clips of each fold read once and compared with the stored probabilities
CHECK_CLIPS = 4
#: what a rescored run records (:data:`~emovox.experiment.rundest.RUN_KINDS`): the only run
#: folder ``rescore --out`` replaces
RESCORED = "rescored_from"


def run_speeds(metrics: Sequence[dict[str, Any]], names: Sequence[Any]) -> tuple[float, ...]:
    """The ``speeds`` the runs (their metrics.json contents) were read at, ``()`` for once;
    ConfigError when they differ (a fusion or merge of runs read in different ways, or a
    temperature fitted on both, would match no model)."""
    seen = {tuple(m.get("speeds") or ()) for m in metrics}
    if len(seen) > 1:
        said = ", ".join(f"{n}: {list(m.get('speeds') or []) or 'once'}"
                         for n, m in zip(names, metrics, strict=True))
        raise ConfigError(f"the runs were read at different speeds ({said}); rescore them "
                          "alike (emovox rescore --speeds)")
    return seen.pop() if seen else ()


def _fold_model(run: Path, fold: int) -> Path:
    """Fold ``fold``'s saved model: in ``run``, or in the part of a merged run that ran it
    (review, stop 52: a merged run was said to have none)."""
    return saved_fold_model(run, fold)


def _corpus_columns(rows: list[Prediction]) -> dict[str, tuple[int, ...]]:
    """Each corpus's label columns as the run stored them: the labels its clips carry and
    every column its stored rows give any probability."""
    cols: dict[str, set[int]] = {}
    for r in rows:
        mine = cols.setdefault(r.corpus, set())
        mine.add(LABELS.index(r.true))
        mine.update(i for i, v in enumerate(r.proba or ()) if v > 0)
    return {c: tuple(sorted(v)) for c, v in cols.items()}


def _over_labels(p: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """A model's probabilities over its ``labels`` as a row over :data:`LABELS`."""
    row = np.zeros(len(LABELS))
    row[[LABELS.index(lab) for lab in labels]] = p
    return row


def _read(path: str) -> Path:
    clip = Path(path)
    if not clip.is_file():
        raise ConfigError(f"test clip {path} not found (a relative path is read from the "
                          "current folder: rescore from where the run was evaluated)")
    return clip


def _fold_probabilities(run: Path, fold: int, rows: list[Prediction],
                        cols: dict[str, tuple[int, ...]], speeds: tuple[float, ...]
                        ) -> tuple[np.ndarray, float]:
    """``(N, 8)`` probabilities of fold ``fold``'s ``rows`` read at ``speeds``, each
    restricted to its corpus's columns as ``evaluate`` stores them, and the largest
    difference of the first :data:`CHECK_CLIPS` read once from the stored ones."""
    from emovox.audio import load_audio
    from emovox.serving.predictor import Predictor

    once = Predictor.from_artifact(_fold_model(run, fold), backend="torch")
    views = dataclasses.replace(once, preprocess=once.preprocess.replace(speeds=speeds))
    out, first = [], []
    for k, r in enumerate(rows):
        # bounded as extraction is (none: a long file took its hour's gigabytes; code
        # review, stop 48): a clip over it was an extraction error, never a scored row
        wave = load_audio(_read(r.path), sr=once.sr, trim=False,
                          max_duration=RESEARCH_MAX_DURATION_S).wave
        if k < CHECK_CLIPS:
            first.append(_over_labels(once.wave_probabilities(wave, once.sr), once.labels))
        out.append(_over_labels(views.wave_probabilities(wave, once.sr), once.labels))
    corpora = [r.corpus for r in rows]
    again = restrict_to_corpus(np.array(first), corpora[:len(first)], cols)
    stored = np.array([r.proba for r in rows[:len(first)]])
    worst = float(np.abs(again - stored).max()) if len(first) else 0.0
    return restrict_to_corpus(np.array(out), corpora, cols), worst


def rescore_run(run: Path, out: Path, *, speeds: Sequence[float]) -> dict[str, Any]:
    """Write the run directory ``out``: the CV run ``run`` scored again by its saved fold
    models, each test clip read at ``speeds``. Returns its metrics.json content.

    ``out`` may be free, an empty folder or an earlier output of ``rescore`` (its
    metrics.json records ``rescored_from``): an ``evaluate`` run there lost its fold models,
    curves and history (review, stop 56). Every check of ``out`` -- its kind, its parent,
    another process writing it -- is made before any clip is read (a file as its parent
    was refused after the whole scoring: review, stop 56).

    Raises:
        ConfigError: ``out`` is ``run``, holds or lies inside it or one of its parts, or is
            not replaceable; the run was adapted to its test speakers, is already rescored,
            lacks a fold's saved model or a test clip; a fold model read once does not give
            the stored answers; bad ``speeds``.
    """
    run, out = Path(run), Path(out)
    try:
        speeds = checked_speeds(list(speeds))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if len(speeds) < 2:
        raise ConfigError("rescore needs two or more speeds (one reading is what the run has)")
    if out.resolve() == run.resolve():
        raise ConfigError(f"--out {out} is the run being rescored; write to another folder")
    refuse_links(run)  # read, and its config.yaml copied: never through a link, nor
    record = read_run(run, unlinked=True)  # one swapped in after the check (code review)
    _not_an_input(out, run, record.metrics)
    check_run_destination(out, RESCORED)
    m = record.metrics
    if m.get("adapt", "none") != "none":
        raise ConfigError(f"{run} was run with --adapt {m['adapt']}: its answers used the "
                          "test speakers' audio, which rescoring would drop")
    if m.get("speeds"):
        raise ConfigError(f"{run} is already read at speeds {m['speeds']}; rescore the run "
                          f"it came from ({m.get('rescored_from', '?')})")
    if record.predictions is None or record.predictions.labels != list(LABELS):
        raise ConfigError(f"{run}: probabilities are not over the {len(LABELS)} labels")
    rows = record.predictions.scored()
    parts = _parts_recorded(run, out, m)
    # staged before the first clip is read: the parent made, the claim taken, the kind
    # checked (as `evaluate` stages its run before extraction)
    with staged_run_dir(out, RESCORED) as stage:
        result = _write(run, stage, record, rows, _scored(run, rows, speeds), speeds, parts)
    return result


def _parts_recorded(run: Path, out: Path, metrics: dict[str, Any]) -> dict[str, Any]:
    """The :data:`~emovox.experiment.rundir.MERGED_INPUTS` of the rescore at ``out`` of the
    merged run ``run``: its parts (their fold models) recorded from ``out``, not from
    ``run`` as merge recorded them (review, stop 57). ``{}`` when ``run`` was not merged or
    a part is not found (the parts as given, ``merged_runs``, stay)."""
    given = metrics.get("merged_runs")
    if not isinstance(given, list) or not given:
        return {}
    try:
        return {MERGED_INPUTS: part_records(list(map(str, given)), merged_parts(run, metrics),
                                            out)}
    except RunDirError:
        return {}


def _scored(run: Path, rows: list[Prediction], speeds: tuple[float, ...]) -> np.ndarray:
    """``(N, 8)`` probabilities of ``rows`` read at ``speeds`` by each fold's saved model;
    ConfigError when a fold model read once does not give the stored answers."""
    cols = _corpus_columns(rows)
    proba = np.zeros((len(rows), len(LABELS)))
    for fold in sorted({r.fold for r in rows}):
        idx = [i for i, r in enumerate(rows) if r.fold == fold]
        p, worst = _fold_probabilities(run, fold, [rows[i] for i in idx], cols, speeds)
        if worst > CHECK_TOLERANCE:
            raise ConfigError(f"{run}: fold {fold}'s saved model read once differs from the "
                              f"stored probabilities by {worst:.3g}: they are not this run's")
        proba[idx] = p
        log.info("fold %s: %d clips read at %s", fold, len(idx), list(speeds))
    return proba


def _inputs(run: Path, metrics: dict[str, Any]) -> list[Path]:
    """``run`` and, for a merged run, every part it was merged from, parts of parts too
    (:func:`~emovox.experiment.rundir.merged_parts`: where rescore finds fold models). A
    part not found is left out: reading its fold then names it."""
    found: list[Path] = []
    todo: list[tuple[Path, dict[str, Any]]] = [(Path(run), metrics)]
    while todo:
        path, m = todo.pop()
        if any(path.resolve() == f.resolve() for f in found):
            continue
        found.append(path)
        try:
            parts = merged_parts(path, m)
        except RunDirError:
            parts = []
        for part in parts:
            try:
                todo.append((part, read_metrics(part)))
            except RunDirError:
                todo.append((part, {}))
    return found


def _not_an_input(out: Path, run: Path, metrics: dict[str, Any]) -> None:
    """ConfigError when ``out`` is, holds or lies inside ``run`` or one of its parts
    (:func:`~emovox.experiment.rundest.refuse_out_among`): the swap replaced the part whose
    fold model the rescore had just read (``rescore MERGED --out PART``), or wrote a folder
    into a run folder (review, stop 56)."""
    mine = run.resolve()
    refuse_out_among(out, [(r, "the run being rescored" if r.resolve() == mine else
                            f"a part of the run being rescored ({run} was merged from {r})")
                           for r in _inputs(run, metrics)])


def _write(run: Path, stage: Path, record: Any, rows: list[Prediction], proba: np.ndarray,
           speeds: tuple[float, ...], parts: dict[str, Any]) -> dict[str, Any]:
    """Write the rescored run into the staging folder ``stage``; its metrics.json content
    (``parts``: :func:`_parts_recorded`)."""
    m = record.metrics
    y = np.array([LABELS.index(r.true) for r in rows])
    pred = proba.argmax(1)
    folds = np.array([r.fold for r in rows])
    order = sorted(set(folds.tolist()))
    per_fold = {f: compute_metrics(y[folds == f], pred[folds == f], list(LABELS)) for f in order}
    pooled = compute_metrics(y, pred, list(LABELS))
    result = {
        **{k: v for k, v in m.items()
           if k not in {"summary", "pooled", "worst_class", "folds", "per_corpus",
                        MERGED_INPUTS}},
        "summary": summarize([per_fold[f] for f in order]), "pooled": pooled.to_dict(),
        "worst_class": dict(zip(("label", "recall"), pooled.worst_recall, strict=True)),
        "folds": [{**f, "metrics": per_fold[f["index"]].to_dict(),
                   "n_test": per_fold[f["index"]].n}
                  for f in m.get("folds") or [] if f.get("index") in per_fold],
        "per_corpus": per_corpus_record(per_corpus_metrics(y, pred, [r.corpus for r in rows])),
        "speeds": list(speeds), "rescored_from": str(run), **parts,
    }
    scored = [dataclasses.replace(r, pred=LABELS[pred[i]], proba=tuple(map(float, proba[i])))
              for i, r in enumerate(rows)]
    kept = [r for r in record.predictions.rows if r.proba is None]  # unreadable clips
    name, s = m.get("model", "?"), result["summary"]["ua"]
    write_run(stage, result, Predictions(list(LABELS), [*scored, *kept]), pooled=pooled,
              titles=(f"{name} at speeds {list(speeds)}: UA {s['mean']:.1f} ± "
                      f"{s['std']:.1f}", f"{name}: recall per class"))
    skipped = carry_files([run / extra for extra in (CONFIG_FILE, ERRORS_FILE)
                           if (run / extra).exists() or (run / extra).is_symlink()], stage)
    if run / CONFIG_FILE in skipped:  # a link since refuse_links: refused, as it was
        raise link_refused(run / CONFIG_FILE)
    return result
