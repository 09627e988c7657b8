"""Speaker adaptation of a trained classifier's output: posterior normalisation by the
speaker's mean posterior (a prior correction), usable with any model, without retraining.

A speaker-independent model carries a speaker-dependent bias: one voice sounds "sad" to it
whatever that person says, another "angry". When several **unlabelled** clips of the same
speaker are at hand, the model's mean posterior over them estimates that bias,

    m = mean_i p_i                       (C,) over the speaker's reference clips,

and each of the speaker's answers is corrected by it, as a prior shift (Saerens et al.,
"Adjusting the outputs of a classifier to new a priori probabilities", Neural Computation
14(1), 2002; here in its simplest one-step form):

    q_i  proportional to  p_i / m^alpha,      renormalised so that sum_c q_ic = 1.

``alpha = 1`` (the default) is the textbook correction, fixed before any measurement;
``alpha = 0.5`` was also measured and is lower (README, "Speaker adaptation"). A uniform
``m`` changes nothing. The arg-max can change: that is the point.

**What it assumes.** The reference clips are a *mix* of emotions, as everyday speech is. If
they all carry one emotion (an actor reading one emotion, a corpus recorded one emotion per
speaker), ``m`` is that emotion and dividing by it removes the very label to be found. The
correction also leaves the calibration of the model's temperature behind: ``q`` is not
calibrated by the old temperature (the bench reports its ECE).

Pure NumPy; imports nothing from emovox. Used by :mod:`emovox.serving` (``predict
--reference``, ``batch --speaker-from``, ``timeline --adapt self``) and by ``bench/adapt.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np

__all__ = [
    "DOMINANT_PRIOR",
    "MIN_REFERENCE_CLIPS",
    "PRIOR_FLOOR",
    "PRIOR_PSEUDO_CLIPS",
    "RECOMMENDED_REFERENCE_CLIPS",
    "AdaptMethod",
    "Adaptation",
    "adapt",
    "dominant_class",
    "references_mean",
    "speaker_prior",
]

#: fewest reference clips (or, for a recording adapting to itself, speech windows) a prior is
#: computed from; fewer leave the answers unadapted (a mean of 1-2 posteriors is mostly the
#: emotion of those clips, not the speaker). Fixed a priori, not tuned.
MIN_REFERENCE_CLIPS = 3
#: fewer reference clips than this get a warning: on RAVDESS cross-validation predictions
#: (``bench/adapt.py``, README "Speaker adaptation") 4 random references of the speaker
#: LOWERED UA by 3.6 points, 8 left it about unchanged (+0.6), 16 raised it by 3.5 and all
#: of a speaker's ~59 other clips by 4.9. Not used to refuse anything.
RECOMMENDED_REFERENCE_CLIPS = 16
#: a prior whose top class reaches this says the references sound mostly like one emotion
#: (more likely than not): if they really all carry it, adaptation removes that emotion from
#: every answer, so the product warns (:func:`dominant_class`). 0.5 fixed a priori, as the
#: "uncertain" edge of an answer; not tuned (``bench/adapt.py`` reports how often it fires).
DOMINANT_PRIOR = 0.5
#: the prior is shrunk towards uniform by this many pseudo-clips,
#: ``(n m + n0 u) / (n + n0)``: a mean of a few posteriors is mostly the emotions of those
#: clips, not the speaker. Without it, 4 random references of a RAVDESS actor LOWERED the
#: default's UA (62.9 -> 59.9); with it 65.3. n0 = 4 was chosen on EMOVO (the default's
#: predictions on a corpus it never trained on, k = 4/8/16 references: n0 in 2..8 all
#: turned k = 4 from -0.7 to about +1 UA; 4 is the middle), never on RAVDESS test actors.
PRIOR_PSEUDO_CLIPS = 4.0
#: a prior's entries are floored here before dividing (a class the model never gives to
#: this speaker would otherwise be inflated without bound)
PRIOR_FLOOR = 1e-6


class AdaptMethod(str, Enum):
    """How an answer was adapted to its speaker."""

    SPEAKER_PRIOR = "speaker_prior"  #: q proportional to p / mean posterior of the speaker


@dataclass(frozen=True)
class Adaptation:
    """What an adapted (or deliberately not adapted) answer says about its adaptation.

    Attributes:
        applied: whether the probabilities were adapted.
        reference_clips: clips (or speech windows, for a recording adapting to itself) the
            prior was computed from.
        group: the speaker group (``batch --speaker-from``), the reference folder
            (``predict --reference``) or ``"self"`` (``timeline --adapt self``).
        reason: why not applied (``None`` when applied).
        method: the method (:class:`AdaptMethod`).
        prior: the speaker's mean answer ``{label: probability}`` the answer was divided
            by (``None`` when not applied): a prior dominated by one emotion shows references
            that may all carry it (:func:`dominant_class`).
        warnings: what the user should know about the references (clips skipped, fewer
            than :data:`RECOMMENDED_REFERENCE_CLIPS`, mostly one emotion); in the document
            only when there are some.
    """

    applied: bool
    reference_clips: int
    group: str | None = None
    reason: str | None = None
    method: AdaptMethod = AdaptMethod.SPEAKER_PRIOR
    prior: dict[str, float] | None = None
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "method": self.method.value, "applied": self.applied,
            "reference_clips": int(self.reference_clips), "group": self.group,
            "reason": self.reason,
            "prior": None if self.prior is None
            else {k: round(float(v), 4) for k, v in self.prior.items()}}
        if self.warnings:
            doc["warnings"] = list(self.warnings)
        return doc


def _check_probs(probs: np.ndarray, name: str) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim not in (1, 2) or p.shape[-1] < 2 or p.size == 0:
        raise ValueError(f"{name} must be (C,) or (N, C) with C >= 2 and N >= 1, "
                         f"got shape {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError(f"{name} contain NaN or inf")
    if np.any(p < 0) or np.any(p.sum(-1) <= 0):
        raise ValueError(f"{name} must be non-negative with a positive sum per row")
    return p


def speaker_prior(probs: np.ndarray, weights: np.ndarray | None = None, *,
                  pseudo_clips: float = PRIOR_PSEUDO_CLIPS,
                  n_clips: float | None = None) -> np.ndarray:
    """The speaker's mean posterior ``(C,)`` (sums to 1), shrunk towards uniform:
    ``(n m + n0 u) / (n + n0)`` with ``n`` clips, ``n0 = pseudo_clips``.

    Args:
        probs: ``(N, C)`` calibrated probabilities of N unlabelled clips (or windows) of one
            speaker; each row is renormalised to sum to 1 first.
        weights: optional ``(N,)`` non-negative weights (e.g. seconds of speech per window);
            default equal.
        pseudo_clips: ``n0`` (:data:`PRIOR_PSEUDO_CLIPS`); 0 gives the plain mean.
        n_clips: ``n`` when ``probs`` is already a mean of several clips (default N).

    Raises:
        ValueError: not ``(N, C)``, N = 0, NaN/inf, negative entries, bad weights.
    """
    p = _check_probs(probs, "probabilities")
    if p.ndim != 2:
        raise ValueError(f"probabilities must be (N, C), got shape {p.shape}")
    p = p / p.sum(axis=1, keepdims=True)
    if weights is None:
        w = np.full(len(p), 1.0 / len(p))
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (len(p),) or not np.all(np.isfinite(w)) or np.any(w < 0) \
                or w.sum() <= 0:
            raise ValueError(f"weights must be ({len(p)},), finite, non-negative and not "
                             f"all zero, got shape {w.shape}")
        w = w / w.sum()
    m = w @ p
    m = m / m.sum()
    n = float(len(p) if n_clips is None else n_clips)
    if not (pseudo_clips >= 0 and n > 0):
        raise ValueError(f"pseudo_clips must be >= 0 and n_clips > 0, got {pseudo_clips}, {n}")
    return (n * m + pseudo_clips / len(m)) / (n + pseudo_clips)


def references_mean(prior: np.ndarray, n_clips: float,
                    pseudo_clips: float = PRIOR_PSEUDO_CLIPS) -> np.ndarray:
    """The plain mean posterior of the ``n_clips`` references behind a shrunk ``prior``
    (:func:`speaker_prior` undone): what the references sound like, for
    :func:`dominant_class`."""
    m = _check_probs(prior, "prior")
    m = m / m.sum()
    raw = (m * (n_clips + pseudo_clips) - pseudo_clips / len(m)) / n_clips
    raw = np.clip(raw, 0.0, None)
    return raw / raw.sum()


def adapt(probs: np.ndarray, prior: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """Probabilities adapted to a speaker: ``q proportional to p / prior**alpha``, each row
    renormalised to sum to 1.

    Args:
        probs: ``(C,)`` or ``(N, C)`` probabilities (any row sum > 0; rows are renormalised).
        prior: ``(C,)`` the speaker's mean posterior (:func:`speaker_prior`); floored at
            :data:`PRIOR_FLOOR` and renormalised.
        alpha: strength, in [0, 1]; 0 changes nothing, 1 (default) is the full correction.

    Returns:
        Same shape as ``probs``, float64, rows summing to 1. A uniform prior returns
        ``probs`` renormalised.
    """
    p = _check_probs(probs, "probabilities")
    m = _check_probs(prior, "prior")
    if m.ndim != 1 or m.shape[0] != p.shape[-1]:
        raise ValueError(f"prior must be ({p.shape[-1]},), got shape {m.shape}")
    if not (0.0 <= float(alpha) <= 1.0):
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    m = np.maximum(m / m.sum(), PRIOR_FLOOR)
    q = p / p.sum(axis=-1, keepdims=True) / (m / m.sum()) ** float(alpha)
    return q / q.sum(axis=-1, keepdims=True)


def dominant_class(prior: np.ndarray, labels: tuple[str, ...] | list[str]
                   ) -> tuple[str, float] | None:
    """``(label, probability)`` of a prior whose top class reaches :data:`DOMINANT_PRIOR`
    (the references sound mostly like that emotion), else None."""
    m = _check_probs(prior, "prior")
    if m.ndim != 1 or len(m) != len(labels):
        raise ValueError(f"prior must be ({len(labels)},), got shape {m.shape}")
    m = m / m.sum()
    k = int(np.argmax(m))
    return (labels[k], float(m[k])) if m[k] >= DOMINANT_PRIOR else None
