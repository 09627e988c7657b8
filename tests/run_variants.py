"""Another run of the same clips for the tests that fuse a run with "another" one: since stop
53 ``fuse`` refuses a copied run folder (the same predictions weighed twice)."""

from __future__ import annotations

import shutil
from pathlib import Path

from emovox.experiment.rundir import read_predictions, write_predictions


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
