"""What changes when an experiment reads several corpora: each corpus's class set, scoring
restricted to it, corpus balancing of a training side and metrics per corpus.

One rule, used by every protocol (and by :mod:`.crosscorpus` for a trained model): a test
clip's probabilities are **restricted to the classes its corpus has** (zero elsewhere) and
renormalised before the argmax, so a model that knows ``calm`` is neither punished on a
corpus without it nor able to win by predicting it. A corpus's class set is a property of
the corpus (its label map, as read from its clips), never of one fold's test labels. UA
and macro-F1 are then taken over the classes present in the test clips
(:func:`emovox.metrics.compute_metrics`).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from emovox.corpora.base import Utterance
from emovox.labels import LABELS
from emovox.metrics import Metrics, compute_metrics


def corpus_classes(utts: list[Utterance], y: np.ndarray) -> dict[str, tuple[int, ...]]:
    """Corpus name -> the class indices its clips carry, sorted."""
    out: dict[str, set[int]] = {}
    for u, label in zip(utts, y, strict=True):
        out.setdefault(u.corpus, set()).add(int(label))
    return {c: tuple(sorted(v)) for c, v in out.items()}


def restrict_to_corpus(
    proba: np.ndarray, corpora: list[str], classes: dict[str, tuple[int, ...]]
) -> np.ndarray:
    """``proba`` (N, C) with each row restricted to the classes of its clip's corpus and
    renormalised (a row with no mass there becomes uniform over those classes)."""
    proba = np.asarray(proba, float)
    mask = np.zeros_like(proba, dtype=bool)
    for i, c in enumerate(corpora):
        mask[i, list(classes[c])] = True
    out = np.where(mask, proba, 0.0)
    total = out.sum(axis=1, keepdims=True)
    uniform = mask / mask.sum(axis=1, keepdims=True)
    return np.where(total > 0, out / np.maximum(total, 1e-300), uniform)


def balance_corpora(
    train_idx: np.ndarray, utts: list[Utterance], rng: np.random.Generator
) -> np.ndarray:
    """``train_idx`` oversampled so every corpus contributes as many clips as the largest:
    whole copies of a smaller corpus plus a random (``rng``) remainder without
    replacement. Indices from a single corpus are returned unchanged."""
    train_idx = np.asarray(train_idx, int)
    by_corpus: dict[str, list[int]] = {}
    for i in train_idx:
        by_corpus.setdefault(utts[i].corpus, []).append(int(i))
    if len(by_corpus) < 2:
        return train_idx
    target = max(len(v) for v in by_corpus.values())
    parts: list[np.ndarray] = []
    for _, idx in sorted(by_corpus.items()):
        arr = np.array(idx, int)
        reps, rest = divmod(target, len(arr))
        parts += [np.tile(arr, reps), rng.choice(arr, rest, replace=False)]
    return np.sort(np.concatenate(parts))


def per_corpus_record(per_corpus: dict[str, Metrics]) -> dict[str, dict[str, Any]]:
    """``metrics.json``'s ``per_corpus``: each corpus's metrics and the classes its test
    clips carry."""
    return {
        c: {"classes": [lab for lab, row in zip(m.labels, m.confusion, strict=True)
                        if sum(row)]} | m.to_dict()
        for c, m in per_corpus.items()
    }


def per_corpus_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, corpora: list[str]
) -> dict[str, Metrics]:
    """Metrics of the test clips of each corpus (UA over the classes present in them)."""
    names = np.array(corpora)
    return {
        c: compute_metrics(np.asarray(y_true)[names == c], np.asarray(y_pred)[names == c],
                           list(LABELS))
        for c in dict.fromkeys(corpora)
    }


def corpus_counts(utts: list[Utterance]) -> dict[str, int]:
    """Clips per corpus, in order of first appearance."""
    return dict(Counter(u.corpus for u in utts))


__all__ = [
    "balance_corpora", "corpus_classes", "corpus_counts", "per_corpus_metrics",
    "per_corpus_record",
    "restrict_to_corpus",
]
