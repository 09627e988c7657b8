"""The canonical emotion vocabulary: the eight RAVDESS classes, in a fixed order.

Every corpus reader maps its own labels onto :class:`Emotion`; a label with no
RAVDESS counterpart (EmoDB "boredom", say) maps to ``None`` and is reported by the
reader, never silently relabelled.
"""

from __future__ import annotations

from enum import Enum


class Emotion(str, Enum):
    """The eight RAVDESS emotions. Member order is the label order of every model."""

    NEUTRAL = "neutral"
    CALM = "calm"
    HAPPY = "happy"
    SAD = "sad"
    ANGRY = "angry"
    FEARFUL = "fearful"
    DISGUST = "disgust"
    SURPRISED = "surprised"

    def __str__(self) -> str:  # so f-strings print "happy", not "Emotion.HAPPY"
        return self.value


#: Label order used by every model, metric and artifact.
EMOTIONS: tuple[Emotion, ...] = tuple(Emotion)
LABELS: tuple[str, ...] = tuple(e.value for e in EMOTIONS)


def emotion_index(e: Emotion | str) -> int:
    """Position of ``e`` in :data:`EMOTIONS`."""
    return EMOTIONS.index(Emotion(e))


def shared_classes(
    map_a: dict[str, Emotion | None], map_b: dict[str, Emotion | None]
) -> list[Emotion]:
    """The canonical emotions that both label maps can produce, in canonical order."""
    a = {v for v in map_a.values() if v is not None}
    b = {v for v in map_b.values() if v is not None}
    return [e for e in EMOTIONS if e in a and e in b]
