"""Small run folders for the tests: :func:`one_fold_run`, a run of one fold written as
``evaluate`` writes it, and :func:`another_run`, another run of the same clips for the tests
that fuse a run with "another" one (since stop 53 ``fuse`` refuses a copied run folder: the
same predictions weighed twice)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from emovox.config import DataConfig, ExperimentConfig, ModelConfig
from emovox.experiment.rundir import (
    Prediction,
    Predictions,
    read_predictions,
    write_predictions,
    write_run,
)
from emovox.labels import LABELS
from emovox.metrics import compute_metrics


def one_fold_run(root: Path, name: str, fold: int, *, models: bool = False,
                 adapt: str | None = None) -> Path:
    """``root/name``: a ``loso`` run of fold ``fold`` (two clips answered right, its config
    and training history); ``models``: with its fold model (``evaluate --save-models``);
    ``adapt``: the run's recorded ``adapt``."""
    rows = []
    for i, lab in enumerate(LABELS[:2]):
        p = np.full(len(LABELS), 0.1 / (len(LABELS) - 1))
        p[LABELS.index(lab)] = 0.9
        rows.append(Prediction(f"/c/f{fold}_{i}.wav", f"s{fold}", lab, lab, tuple(p), fold,
                               "ravdess"))
    y = np.array([LABELS.index(r.true) for r in rows])
    run = root / name
    record = {"model": "prosody_logreg", "protocol": "loso", "speaker_independent": True,
              **({"adapt": adapt} if adapt is not None else {}),
              "folds": [{"index": fold, "fit_seconds": 1.0}]}
    write_run(run, record, Predictions(list(LABELS), rows),
              pooled=compute_metrics(y, y, list(LABELS)), titles=("t", "t"))
    ExperimentConfig(data=DataConfig(root="/r"), model=ModelConfig("prosody_logreg")
                     ).save_yaml(run / "config.yaml")
    (run / f"history_fold{fold}.json").write_text("{}")
    if models:
        (run / "models" / f"fold{fold}").mkdir(parents=True)
        (run / "models" / f"fold{fold}" / "model.json").write_text("{}")
    return run


def another_run(run: Path, out: Path, mix: float = 0.01) -> Path:
    """``run`` copied to ``out`` with each clip's probabilities blended towards uniform by
    ``mix``: every answer (arg max) and figure the same, the predictions no copy's."""
    shutil.copytree(run, out)
    pred = read_predictions(out)
    for row in pred.rows:
        if row.proba is not None:
            row.proba = tuple((1 - mix) * p + mix / len(row.proba) for p in row.proba)
    write_predictions(out / "predictions.csv", pred)
    return out
