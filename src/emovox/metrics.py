"""Classification metrics per fold and pooled, and their summary over folds."""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)


@dataclass
class Metrics:
    """Scores of one set of predictions. Percentages (0-100) except the raw confusion counts.

    ``ua`` is unweighted accuracy (balanced accuracy: mean per-class recall over the
    classes present in ``y_true``); ``wa`` is plain accuracy.
    """

    n: int
    ua: float
    wa: float
    macro_f1: float
    weighted_f1: float
    recall: dict[str, float]
    precision: dict[str, float]
    confusion: list[list[int]]  # rows = true label, columns = predicted, in ``labels`` order
    labels: list[str]

    @property
    def worst_recall(self) -> tuple[str, float]:
        present = [lab for lab, row in zip(self.labels, self.confusion, strict=True) if sum(row)]
        lab = min(present, key=lambda k: self.recall[k])
        return lab, self.recall[lab]

    def to_dict(self) -> dict:
        return asdict(self)


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """scikit-learn's balanced accuracy, without its warning that a class was predicted that
    the clips lack (the usual case for a corpus with fewer classes: the console of ``fuse``
    and ``merge`` filled with it)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        return float(balanced_accuracy_score(y_true, y_pred))


def compute_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> Metrics:
    """Metrics of integer predictions ``y_pred`` against ``y_true`` (indices into ``labels``).

    Classes absent from ``y_true`` are left out of UA and macro-F1 (they would be 0/0), and
    of ``recall``; ``precision`` holds the classes present or predicted (a class the test
    clips lack reads as no recall at all, not 0 %: research QA, stop 32).
    """
    y_true = np.asarray(y_true, int)
    y_pred = np.asarray(y_pred, int)
    present = set(np.unique(y_true).tolist())
    predicted = set(np.unique(y_pred).tolist())
    all_idx = np.arange(len(labels))
    p, r, _, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=all_idx, zero_division=0
    )
    return Metrics(
        n=int(len(y_true)),
        ua=100.0 * balanced_accuracy(y_true, y_pred),
        wa=100.0 * accuracy_score(y_true, y_pred),
        macro_f1=100.0 * f1_score(y_true, y_pred, labels=sorted(present), average="macro",
                                  zero_division=0),
        weighted_f1=100.0
        * f1_score(y_true, y_pred, labels=sorted(present), average="weighted", zero_division=0),
        recall={lab: 100.0 * float(v) for i, (lab, v) in enumerate(zip(labels, r, strict=True))
                if i in present},
        precision={lab: 100.0 * float(v) for i, (lab, v) in enumerate(zip(labels, p, strict=True))
                   if i in present or i in predicted},
        confusion=confusion_matrix(y_true, y_pred, labels=all_idx).tolist(),
        labels=list(labels),
    )


SCALARS = ("ua", "wa", "macro_f1", "weighted_f1")


def summarize(per_fold: list[Metrics]) -> dict[str, dict[str, float]]:
    """Mean and (population) standard deviation over folds of each scalar metric."""
    out: dict[str, dict[str, float]] = {}
    for k in SCALARS:
        v = np.array([getattr(m, k) for m in per_fold], float)
        out[k] = {"mean": float(v.mean()), "std": float(v.std())}
    return out


def expected_calibration_error(proba: np.ndarray, y_true: np.ndarray, n_bins: int = 15) -> float:
    """ECE (0-1) of the top-class confidence over ``n_bins`` equal-width bins."""
    conf = proba.max(axis=1)
    correct = proba.argmax(axis=1) == np.asarray(y_true)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            ece += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return float(ece)
