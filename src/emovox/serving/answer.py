"""The answer for one recording: :class:`Prediction` with its :class:`Status`, the
per-window :class:`Evidence`, and how window probabilities become one answer.

A prediction is one of three things (:class:`Status`):

* ``ok``: speech, and the calibrated probability of the top emotion is at least
  :data:`UNCERTAIN_BELOW`;
* ``uncertain``: speech, but the top probability is below :data:`UNCERTAIN_BELOW`; the label and
  every probability are still given;
* ``no_speech``: the detector (:func:`emovox.features.vad.speech_verdict`) found no speech
  (silence, noise, a tone, a constant offset, a square wave, less than 0.3 s of speech):
  no label, no probabilities, no arousal/valence (all ``None``), and a ``reason``.

:data:`UNCERTAIN_BELOW` = 0.5 is a principled value, not fitted on any test data: the
probabilities are calibrated (temperature fitted on cross-validation out-of-fold predictions;
the bundled default's out-of-fold ECE is 0.03), so a top probability below 0.5 means the
answer is more likely wrong than right. It is also the lower edge of the "medium" confidence
band below.

Whole recordings: the answer is the **duration-weighted mean** of the calibrated probabilities
of the speech windows (:func:`aggregate`), each window weighted by its own seconds
(:func:`emovox.serving.speech.own_seconds`: overlapping windows count each second once);
each window's :class:`Evidence` says how much of the final label's probability mass it
contributed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np

from emovox.adaptation import Adaptation
from emovox.affect import DERIVED_NOTE

__all__ = [
    "HIGH_CONFIDENCE",
    "MEDIUM_CONFIDENCE",
    "SCHEMA_VERSION",
    "UNCERTAIN_BELOW",
    "Evidence",
    "Prediction",
    "Status",
    "aggregate",
    "confidence_band",
    "percent_text",
    "rounded_probability",
]

#: version of the JSON documents (prediction, timeline): ``emovox/data/schema/*-v1.json``
SCHEMA_VERSION = "1"
#: calibrated top probability below which a speech answer is ``uncertain`` (see module doc)
UNCERTAIN_BELOW = 0.5
#: confidence bands: high >= 70 %, medium 50-70 %, low < 50 %
HIGH_CONFIDENCE = 0.70
MEDIUM_CONFIDENCE = 0.50


def percent_text(p: float) -> str:
    """A probability as people read it: a whole percent, unless rounding would carry it
    across the ``uncertain`` line or a confidence band's edge (0.4957 was "50%" beside
    "? = uncertain: top probability below 50 %": QA, stop 37); then one decimal, rounded
    down if need be (49.6%, 49.9%)."""
    lines = (UNCERTAIN_BELOW, MEDIUM_CONFIDENCE, HIGH_CONFIDENCE)
    for text in (f"{p:.0%}", f"{p:.1%}"):
        shown = float(text[:-1]) / 100  # what a reader takes it for
        if not any(p < line <= shown + 1e-12 for line in lines):
            return text
    return f"{math.floor(p * 1000) / 10:.1f}%"


def rounded_probability(p: float, digits: int) -> float:
    """``round(p, digits)`` for a file's column, unless that carries ``p`` across the
    ``uncertain`` line or a confidence band's edge (a confidence of 0.49996 was written
    "0.5" beside the status ``uncertain`` in CSV: code review); then rounded down instead
    (0.4999), as :func:`percent_text` does for people. A value at or above a line is never
    written below it (rounding to the nearest never goes under a line on its grid)."""
    r = round(p, digits)
    for line in (UNCERTAIN_BELOW, MEDIUM_CONFIDENCE, HIGH_CONFIDENCE):
        if p < line <= r:
            return round(line - 10.0 ** -digits, digits)
    return r


class Status(str, Enum):
    """What kind of answer a prediction is."""

    OK = "ok"
    UNCERTAIN = "uncertain"
    NO_SPEECH = "no_speech"


def confidence_band(confidence: float | None) -> str | None:
    """``high`` (>= 0.70), ``medium`` (0.50-0.70), ``low`` (< 0.50); ``None`` without one."""
    if confidence is None:
        return None
    if confidence >= HIGH_CONFIDENCE:
        return "high"
    return "medium" if confidence >= MEDIUM_CONFIDENCE else "low"


@dataclass(frozen=True)
class Evidence:
    """One window behind an answer.

    Attributes:
        start, end: seconds from the start of the recording.
        weight: the window's share of the duration-weighted mean (weights sum to 1).
        label: the window's own top emotion; ``confidence`` its probability.
        contribution: the window's share of the final label's probability mass
            (``weight * p_window[final] / p_final[final]``; contributions sum to 1).
    """

    start: float
    end: float
    weight: float
    label: str
    confidence: float
    contribution: float

    def to_dict(self) -> dict[str, Any]:
        return {"start": round(self.start, 3), "end": round(self.end, 3),
                "weight": round(self.weight, 4), "label": self.label,
                "confidence": rounded_probability(self.confidence, 4),
                "contribution": round(self.contribution, 4)}


@dataclass(frozen=True)
class Prediction:
    """The answer for one recording.

    Attributes:
        label: the most probable emotion (``None`` for ``no_speech``).
        confidence: its calibrated probability (``None`` for ``no_speech``).
        probabilities: calibrated probability of every label, in the model's label order
            (``None`` for ``no_speech``).
        arousal, valence: **derived** from ``probabilities`` (:mod:`emovox.affect`), in
            [-1, 1]; not predicted by the model (``None`` for ``no_speech``).
        duration: length of the input in seconds.
        source: file name, ``"<bytes>"`` or ``"<array>"``.
        status: ``ok``, ``uncertain`` or ``no_speech`` (:class:`Status`).
        reason: why ``no_speech`` (a :class:`emovox.features.vad.NoSpeechReason` value).
        reason_message: the same in words.
        speech_seconds: seconds of speech the answer is based on.
        n_windows: windows the model classified (0 for ``no_speech``).
        evidence: the windows and their contributions.
        model_id: the model that answered.
        adaptation: how the answer was adapted to its speaker (:mod:`emovox.adaptation`;
            ``None``: not adapted and not asked to be; the key is then left out of the
            document).
        window_probs: ``(n_windows, n_labels)`` calibrated probabilities of the windows in
            ``evidence`` (kept for speaker adaptation; not part of the document).
        warnings: what the decoder noticed about the input (a WAV cut short, near-silence:
            :attr:`emovox.audio.Audio.notes`); the key is left out when there are none.
    """

    label: str | None
    confidence: float | None
    probabilities: dict[str, float] | None
    arousal: float | None
    valence: float | None
    duration: float
    source: str
    status: Status = Status.OK
    reason: str | None = None
    reason_message: str | None = None
    speech_seconds: float = 0.0
    n_windows: int = 0
    evidence: tuple[Evidence, ...] = field(default=(), repr=False)
    model_id: str | None = None
    adaptation: Adaptation | None = None
    window_probs: np.ndarray | None = field(default=None, repr=False, compare=False)
    warnings: tuple[str, ...] = ()

    @property
    def silent(self) -> bool:
        """Deprecated (use ``status``): True when there is no speech to classify."""
        return self.status is Status.NO_SPEECH

    @property
    def has_emotion(self) -> bool:
        return self.status is not Status.NO_SPEECH

    def to_dict(self) -> dict[str, Any]:
        """The prediction document of schema version :data:`SCHEMA_VERSION` (plain JSON
        types; ``derived`` names the fields that are not model outputs)."""
        doc = {
            "schema_version": SCHEMA_VERSION,
            "source": self.source,
            "status": self.status.value,
            "reason": self.reason,
            "reason_message": self.reason_message,
            "label": self.label,
            "confidence": self.confidence,
            "confidence_level": confidence_band(self.confidence),
            "probabilities": None if self.probabilities is None else dict(self.probabilities),
            "arousal": self.arousal,
            "valence": self.valence,
            "derived": ["arousal", "valence"],
            "derived_note": DERIVED_NOTE,
            "duration": round(self.duration, 3),
            "speech_seconds": round(self.speech_seconds, 3),
            "n_windows": self.n_windows,
            "evidence": [e.to_dict() for e in self.evidence],
            "model_id": self.model_id,
        }
        if self.adaptation is not None:
            doc["adaptation"] = self.adaptation.to_dict()
        if self.warnings:
            doc["warnings"] = list(self.warnings)
        return doc


def aggregate(probs: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    """Duration-weighted mean ``(n_labels,)`` of window probabilities ``(n, n_labels)``."""
    w = np.asarray(weights, np.float64)
    if len(w) != len(probs) or len(w) == 0 or np.any(w < 0) or w.sum() <= 0:
        raise ValueError("aggregate needs one non-negative weight per window, not all zero")
    return (w / w.sum()) @ np.asarray(probs, np.float64)


def evidence_of(spans: Sequence[tuple[float, float]], probs: np.ndarray,
                weights: Sequence[float], labels: Sequence[str], final: np.ndarray
                ) -> tuple[Evidence, ...]:
    """The :class:`Evidence` of every window for the final probabilities ``final``."""
    w = np.asarray(weights, np.float64)
    w = w / w.sum()
    k = int(np.argmax(final))
    mass = w * probs[:, k]
    total = float(mass.sum()) or 1.0
    out = []
    for (s, e), wi, p, m in zip(spans, w, probs, mass, strict=True):
        j = int(np.argmax(p))
        out.append(Evidence(float(s), float(e), float(wi), labels[j], float(p[j]),
                            float(m / total)))
    return tuple(out)
