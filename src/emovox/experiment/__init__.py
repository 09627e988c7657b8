"""Experiments: everything that turns a corpus and a model name into measured results.

Owns: the dataset and its model inputs (:mod:`.dataset`: ``load_dataset``, public
``featurise``, ``gather``), the cross-validation fold runner (:mod:`.runner`), the run
directory -- its one writer, one reader and the one ``predictions.csv`` schema
(:mod:`.rundir`) --, cross-corpus scoring of a trained model (:mod:`.crosscorpus`), late
fusion of finished runs (:mod:`.fuse`) and the results table of ``emovox report``
(:mod:`.report`).

May import: training, serving, artifact, models, preprocess, features, augment, splits,
metrics, calibration, plots, affect, audio, corpora, config, labels, errors. Never cli,
api or web.
"""

from emovox.experiment.dataset import Dataset, featurise, gather, load_dataset
from emovox.experiment.runner import ExperimentResult, FoldResult, run_experiment

__all__ = [
    "Dataset", "ExperimentResult", "FoldResult", "featurise", "gather", "load_dataset",
    "run_experiment",
]
