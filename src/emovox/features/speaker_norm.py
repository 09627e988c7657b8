"""Per-speaker feature normalisation: the maths of ``emovox evaluate --adapt speaker``.

Pure NumPy functions, no labels anywhere: a speaker's statistics are computed from that
speaker's features alone, and applying them to a clip uses nothing else. Which clips feed a
speaker's statistics (and that no speaker straddles a split) is decided by the caller
(:mod:`emovox.experiment.adapt`).

Two kinds of features, told apart by their number of axes:

- utterance-level vectors ``(D,)`` (ComParE / eGeMAPS functionals, in each functional's own
  units): :func:`vector_stats` takes the mean and std of every dimension over the speaker's
  clips ``(N, D)``;
- frame sequences ``(T, F)`` (time-major, e.g. log-mel in dB): :func:`frame_stats` takes the
  mean and std of every band over **all frames of all the speaker's clips** pooled (not per
  utterance), so a clip keeps its loudness and spectral shape relative to its speaker.

:func:`normalise` applies ``(x - mean) / std`` along the last axis, which covers both shapes.
A std below ``std_floor`` (in the feature's units) is raised to it, so a (near-)constant
dimension maps to ~0 instead of blowing up.

A speaker with fewer than :data:`MIN_CLIPS_FOR_STD` clips of vectors is **centred only**
(std set to 1): with one clip that makes every dimension 0, i.e. "this speaker's average",
which carries no information but keeps the clip on the scale of the others (leaving it raw
would put it far outside the z-scored range the model was trained on). Sequences need at
least 2 frames in all; one clip of many frames is enough (its statistics are then per
utterance).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: vectors: fewer clips than this -> centred only (std 1)
MIN_CLIPS_FOR_STD: int = 2
#: default floor on a std, in the feature's units
STD_FLOOR: float = 1e-6


@dataclass(frozen=True)
class SpeakerStats:
    """One speaker's normalisation statistics for one feature stream.

    Attributes:
        mean: ``(D,)`` per dimension (vectors) or per band (sequences), feature units.
        std: ``(D,)``, already floored (and 1 where the speaker is centred only).
        n_clips: clips the statistics were computed from.
        n_frames: frames pooled (sequences) or ``n_clips`` (vectors).
        centred_only: True when std is 1 because there were too few clips.
    """

    mean: np.ndarray
    std: np.ndarray
    n_clips: int
    n_frames: int
    centred_only: bool = False


def _check_floor(std_floor: float) -> None:
    if not std_floor > 0:
        raise ValueError(f"std_floor must be > 0, got {std_floor}")


def vector_stats(vectors: Sequence[np.ndarray] | np.ndarray,
                 std_floor: float = STD_FLOOR) -> SpeakerStats:
    """Mean and std of each dimension over one speaker's clip vectors.

    Args:
        vectors: ``N >= 1`` arrays ``(D,)`` (or one array ``(N, D)``), one per clip.
        std_floor: lower bound of the std, in the feature's units (> 0).

    Returns:
        :class:`SpeakerStats` with ``mean``/``std`` of shape ``(D,)`` (population std,
        ``ddof=0``); with fewer than :data:`MIN_CLIPS_FOR_STD` clips the std is 1
        (centred only).

    Raises:
        ValueError: no clip, not 1-D vectors of one length, non-finite values, bad floor.
    """
    _check_floor(std_floor)
    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"expected N >= 1 vectors (N, D), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("speaker features contain NaN or inf")
    n = x.shape[0]
    mean = x.mean(axis=0)
    if n < MIN_CLIPS_FOR_STD:
        return SpeakerStats(mean, np.ones_like(mean), n, n, centred_only=True)
    return SpeakerStats(mean, np.maximum(x.std(axis=0), std_floor), n, n)


def frame_stats(sequences: Sequence[np.ndarray], std_floor: float = STD_FLOOR) -> SpeakerStats:
    """Mean and std of each band over all frames of all of one speaker's clips, pooled.

    Args:
        sequences: ``N >= 1`` time-major arrays ``(T_i, F)`` (lengths may differ).
        std_floor: lower bound of the std, in the feature's units (dB for log-mel; > 0).

    Returns:
        :class:`SpeakerStats` with ``mean``/``std`` of shape ``(F,)``; a clip of many frames
        weighs in proportion to its length.

    Raises:
        ValueError: no clip, fewer than 2 frames in all, not 2-D, band counts that differ,
            non-finite values, bad floor.
    """
    _check_floor(std_floor)
    if len(sequences) == 0:
        raise ValueError("expected N >= 1 sequences (T, F), got none")
    arrs = [np.asarray(s, dtype=np.float64) for s in sequences]
    if any(a.ndim != 2 for a in arrs) or len({a.shape[1] for a in arrs}) != 1:
        raise ValueError(f"expected (T, F) sequences with one F, got shapes "
                         f"{sorted({a.shape for a in arrs})}")
    frames = np.concatenate(arrs, axis=0)
    if frames.shape[0] < 2:
        raise ValueError(f"need at least 2 frames for band statistics, got {frames.shape[0]}")
    if not np.isfinite(frames).all():
        raise ValueError("speaker features contain NaN or inf")
    return SpeakerStats(frames.mean(axis=0), np.maximum(frames.std(axis=0), std_floor),
                        len(arrs), frames.shape[0])


def stats_for(items: Sequence[np.ndarray], std_floor: float = STD_FLOOR) -> SpeakerStats:
    """:func:`vector_stats` for ``(D,)`` items, :func:`frame_stats` for ``(T, F)`` items."""
    if len(items) and np.ndim(items[0]) == 1:
        return vector_stats(items, std_floor)
    return frame_stats(items, std_floor)


def normalise(x: np.ndarray, stats: SpeakerStats) -> np.ndarray:
    """``(x - mean) / std`` along the last axis: a clip ``(D,)`` or ``(T, F)`` with its
    speaker's statistics. Returns float32 of ``x``'s shape.

    Raises:
        ValueError: the last axis of ``x`` differs from the statistics' dimension.
    """
    x = np.asarray(x)
    if x.shape[-1] != stats.mean.shape[0]:
        raise ValueError(f"feature dimension {x.shape[-1]} != statistics dimension "
                         f"{stats.mean.shape[0]}")
    return ((x - stats.mean) / stats.std).astype(np.float32)


__all__ = [
    "MIN_CLIPS_FOR_STD", "STD_FLOOR", "SpeakerStats", "frame_stats", "normalise", "stats_for",
    "vector_stats",
]
