"""Experiments: everything that turns a corpus and a model name into measured results.

Owns: the dataset and its model inputs (:mod:`.dataset`: ``load_dataset``, public
``featurise``, ``gather``), the cross-validation fold runner (:mod:`.runner`), the run
directory -- its one writer, one reader and the one ``predictions.csv`` schema
(:mod:`.rundir`) --, several corpora in one experiment: each corpus's classes, corpus
balancing, per-corpus metrics (:mod:`.multicorpus`), speaker adaptation of the features
(:mod:`.adapt`, ``--adapt speaker``), cross-corpus scoring of a trained model
(:mod:`.crosscorpus`), late fusion of finished runs (:mod:`.fuse`), the results table
of ``emovox report`` (:mod:`.report`), packaging trained models (:mod:`.package`),
calibrating one afterwards (:mod:`.calibrate`), a run scored again at several playback
speeds (:mod:`.rescore`) and the check that a CV run attached to a model measures its
recipe (:mod:`.recipe`).

May import: training, serving, artifact, models, preprocess, features, augment, splits,
metrics, calibration, plots, affect, audio, corpora, config, labels, errors, fileio. Never
cli, api or web (checked by import-linter).
"""

from __future__ import annotations

import importlib
from typing import Any

# Re-exported lazily: ``emovox report`` and ``fuse`` read run directories without importing
# the models (torch) that the runner needs.
_EXPORTS = {
    "Dataset": "dataset", "featurise": "dataset", "gather": "dataset", "load_dataset": "dataset",
    "ExperimentResult": "runner", "FoldResult": "runner", "run_experiment": "runner",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
