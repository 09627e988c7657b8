"""Arousal and valence *derived* from the categorical emotion probabilities.

No emovox model is trained on dimensional (arousal/valence) ratings. The two numbers are a
fixed, documented mapping of the eight class probabilities onto the affective circumplex:
every emotion is given a prototype position ``(arousal, valence)`` in ``[-1, 1]^2`` and a
prediction's point is the probability-weighted mean of those prototypes,

    arousal = sum_c p_c * A_c,    valence = sum_c p_c * V_c.

They are a summary of the categorical output, **not a measurement**: a clip the model finds
60 % angry / 40 % happy lands between the two prototypes whatever its real arousal. Label
them as derived wherever they are shown.

The prototypes follow the circumplex model of affect (J. A. Russell, "A circumplex model of
affect", *Journal of Personality and Social Psychology* 39(6), 1161-1178, 1980), where
emotion words lie around a circle spanned by valence (pleasure-displeasure, horizontal) and
arousal (activation-deactivation, vertical): *happy/delighted* at positive valence with
moderate-to-high arousal, *excited/astonished* (surprise) at high arousal and mildly positive
valence, *angry* and *afraid* at high arousal and negative valence (afraid a little less
aroused and more unpleasant than angry), *sad/miserable* at negative valence and low arousal,
*calm/relaxed* at low arousal and positive valence. Russell's 28 terms do not include
*disgust*; it is placed at moderate arousal and strongly negative valence as in later
circumplex placements of the basic emotions. *Neutral* is the origin. The exact numbers are
our choice (rounded to one decimal, radii below 1 so no class sits on the boundary), not
values read off Russell's figure.

=========  =======  =======
emotion    arousal  valence
=========  =======  =======
neutral     0.0      0.0
calm       -0.6      0.4
happy       0.5      0.8
sad        -0.5     -0.7
angry       0.8     -0.6
fearful     0.6     -0.7
disgust     0.3     -0.7
surprised   0.8      0.3
=========  =======  =======
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from emovox.labels import EMOTIONS, LABELS, Emotion

__all__ = ["AROUSAL_VALENCE", "DERIVED_NOTE", "arousal_valence", "prototype_matrix"]

#: Prototype ``(arousal, valence)`` of each emotion, both in [-1, 1]. See the module docstring.
AROUSAL_VALENCE: dict[Emotion, tuple[float, float]] = {
    Emotion.NEUTRAL: (0.0, 0.0),
    Emotion.CALM: (-0.6, 0.4),
    Emotion.HAPPY: (0.5, 0.8),
    Emotion.SAD: (-0.5, -0.7),
    Emotion.ANGRY: (0.8, -0.6),
    Emotion.FEARFUL: (0.6, -0.7),
    Emotion.DISGUST: (0.3, -0.7),
    Emotion.SURPRISED: (0.8, 0.3),
}

#: One line to show next to derived arousal/valence values.
DERIVED_NOTE = (
    "arousal and valence are derived from the class probabilities (probability-weighted "
    "circumplex prototypes, emovox.affect), not predicted by the model"
)


def prototype_matrix(labels: tuple[str, ...] = LABELS) -> np.ndarray:
    """``(n_labels, 2)`` prototype matrix ``[arousal, valence]`` in ``labels`` order."""
    return np.array([AROUSAL_VALENCE[Emotion(lab)] for lab in labels], dtype=np.float64)


_PROTOTYPES = prototype_matrix(tuple(e.value for e in EMOTIONS))


def arousal_valence(
    probs: np.ndarray | Mapping[str, float], labels: tuple[str, ...] = LABELS
) -> tuple[float, float]:
    """Derived ``(arousal, valence)`` of one probability vector.

    Args:
        probs: ``(n_labels,)`` class probabilities in ``labels`` order, or a mapping
            ``{label: probability}``. Renormalised to sum to 1 (an all-zero vector is an error).
        labels: label order of ``probs`` when it is an array (default: the eight emovox labels).

    Returns:
        ``(arousal, valence)``, each in [-1, 1].
    """
    if isinstance(probs, Mapping):
        labels = tuple(probs)
        p = np.array([float(probs[k]) for k in labels], dtype=np.float64)
    else:
        p = np.asarray(probs, dtype=np.float64).reshape(-1)
    if p.shape != (len(labels),):
        raise ValueError(f"expected {len(labels)} probabilities, got shape {p.shape}")
    if not np.all(np.isfinite(p)) or np.any(p < 0) or p.sum() <= 0:
        raise ValueError("probabilities must be finite, non-negative and not all zero")
    protos = _PROTOTYPES if labels == LABELS else prototype_matrix(labels)
    a, v = (p / p.sum()) @ protos
    return float(a), float(v)
