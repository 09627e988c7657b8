"""Pooling and shaping of feature-major ``(F, T)`` frame matrices: utterance statistics
(:func:`frame_stats`) and fixed frame counts (:func:`fix_length_frames`). Pure functions."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from emovox.features.spectral import finite_float32

__all__ = ["STATS", "fix_length_frames", "frame_stats"]

#: Statistic names accepted by :func:`frame_stats` (plus any percentile ``"pNN"``, 0 <= NN <= 100).
STATS: tuple[str, ...] = ("mean", "std", "min", "max", "median", "skew", "kurtosis", "p10", "p90")

_PERCENTILE = re.compile(r"^p(\d{1,3}(?:\.\d+)?)$")


def _stat(x: np.ndarray, name: str) -> np.ndarray:
    """One statistic over axis 1 of a float64 ``(F, T)`` array with ``T >= 1``."""
    if name == "mean":
        return x.mean(axis=1)
    if name == "std":
        return x.std(axis=1)
    if name == "min":
        return x.min(axis=1)
    if name == "max":
        return x.max(axis=1)
    if name == "median":
        return np.median(x, axis=1)
    if name in ("skew", "kurtosis"):
        # Population (biased) moments, as scipy.stats defaults; 0 for constant rows.
        centred = x - x.mean(axis=1, keepdims=True)
        var = (centred**2).mean(axis=1)
        flat = var <= 1e-12 * np.maximum(1.0, (x**2).mean(axis=1))
        safe = np.where(flat, 1.0, var)
        if name == "skew":
            out = (centred**3).mean(axis=1) / safe**1.5
        else:  # excess (Fisher) kurtosis
            out = (centred**4).mean(axis=1) / safe**2 - 3.0
        return np.where(flat, 0.0, out)
    match = _PERCENTILE.match(name)
    if match and 0.0 <= float(match.group(1)) <= 100.0:
        return np.percentile(x, float(match.group(1)), axis=1)
    raise ValueError(f"unknown statistic {name!r}; valid: {', '.join(STATS)} or pNN (0..100)")


def frame_stats(
    frames: np.ndarray, stats: Sequence[str] = ("mean", "std", "min", "max")
) -> np.ndarray:
    """Pool a ``(F, T)`` frame matrix over time into one utterance vector.

    Layout is **statistic-major**: ``[stat_0(f_0..f_{F-1}), stat_1(f_0..f_{F-1}), ...]``, i.e.
    ``out[k * F + f]`` is statistic ``stats[k]`` of feature row ``f``.

    Supported statistics: ``mean``, ``std`` (population), ``min``, ``max``, ``median``,
    ``skew`` and ``kurtosis`` (population moments, excess kurtosis, 0 for a constant row) and
    percentiles ``pNN`` such as ``p10`` / ``p90``. An empty time axis (``T = 0``) gives zeros.

    Args:
        frames: array ``(F, T)``.
        stats: statistic names, in output order.

    Returns:
        float32 array ``(F * len(stats),)``.
    """
    x = np.asarray(frames, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"frames must be 2-D (F, T), got shape {x.shape}")
    if isinstance(stats, str):
        stats = (stats,)
    if not stats:
        raise ValueError("stats must name at least one statistic")
    n_feat, n_time = x.shape
    if n_time == 0:
        for name in stats:  # still validate the names
            _stat(np.zeros((1, 1)), name)
        return np.zeros(n_feat * len(stats), dtype=np.float32)
    out = np.concatenate([_stat(x, name) for name in stats])
    return finite_float32(out, "frame_stats")


def fix_length_frames(x: np.ndarray, n_frames: int) -> np.ndarray:
    """Force the time axis of a ``(F, T)`` matrix to exactly ``n_frames``.

    Shorter inputs are zero-padded at the end; longer ones are centre-cropped (the middle
    ``n_frames`` frames are kept; with an odd surplus the extra frame is dropped at the end).

    Args:
        x: array ``(F, T)``.
        n_frames: target number of frames (> 0).

    Returns:
        float32 array ``(F, n_frames)``.
    """
    a = np.asarray(x, dtype=np.float32)
    if a.ndim != 2:
        raise ValueError(f"x must be 2-D (F, T), got shape {a.shape}")
    if n_frames <= 0:
        raise ValueError(f"n_frames must be positive, got {n_frames}")
    n_time = a.shape[1]
    if n_time < n_frames:
        return np.pad(a, ((0, 0), (0, n_frames - n_time)))
    start = (n_time - n_frames) // 2
    return np.ascontiguousarray(a[:, start : start + n_frames])
