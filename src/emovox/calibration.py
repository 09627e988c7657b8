"""Temperature scaling (Guo et al., 2017) of a classifier's probabilities.

One scalar ``T > 0`` divides the logits before the softmax: ``p_T = softmax(z / T)``.
``T > 1`` softens over-confident predictions, ``T < 1`` sharpens under-confident ones;
the arg-max (so accuracy, UA, the confusion matrix) never changes. ``T`` is fitted by
minimising the negative log-likelihood on held-out predictions -- in emovox the
out-of-fold test predictions of the cross-validation (``predictions.csv`` of an experiment,
read by :func:`emovox.experiment.rundir.fit_from_predictions_csv`), so no clip is scored by
a model that trained on it.

Probabilities work as well as logits: ``log p`` differs from the logits by a per-row
constant, which the softmax ignores.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "T_BOUNDS",
    "apply_temperature",
    "calibration_report",
    "fit_temperature",
    "group_calibration_report",
    "nll",
    "softmax",
    "to_logits",
]

#: search interval of the temperature
T_BOUNDS: tuple[float, float] = (0.05, 20.0)
#: probabilities are floored here before the log (a 0 would be -inf)
_P_FLOOR = 1e-12


def softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax (float64)."""
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _is_probs(x: np.ndarray) -> bool:
    return bool(np.all(x >= 0) and np.all(x <= 1) and np.allclose(x.sum(-1), 1.0, atol=1e-3))


def to_logits(probs_or_logits: np.ndarray, floor: float = _P_FLOOR) -> np.ndarray:
    """Rows that are probability vectors (non-negative, summing to 1) become ``log p``
    (floored at ``floor``); anything else is taken to be logits already."""
    x = np.asarray(probs_or_logits, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"expected an (N, C) array, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("probabilities/logits contain NaN or inf")
    return np.log(np.maximum(x, floor)) if _is_probs(x) else x


def apply_temperature(logits: np.ndarray, temperature: float) -> np.ndarray:
    """Calibrated probabilities ``softmax(logits / T)``; ``logits`` may be probabilities."""
    if not (temperature > 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature must be a positive number, got {temperature}")
    return softmax(to_logits(logits) / float(temperature))


def nll(probs: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-likelihood of the true classes."""
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(y, dtype=int)
    return float(-np.mean(np.log(np.maximum(p[np.arange(len(y)), y], _P_FLOOR))))


def _check(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != len(z):
        raise ValueError(f"y must be ({len(z)},), got shape {y.shape}")
    if len(y) == 0:
        raise ValueError("no predictions to calibrate on")
    y = y.astype(int)
    if y.min() < 0 or y.max() >= z.shape[1]:
        raise ValueError(f"labels must be class indices 0..{z.shape[1] - 1}")
    return y


def fit_temperature(
    probs_or_logits: np.ndarray, y: np.ndarray, bounds: tuple[float, float] = T_BOUNDS
) -> float:
    """The temperature minimising the NLL of ``softmax(z / T)`` on ``(z, y)``.

    Args:
        probs_or_logits: ``(N, C)`` held-out probabilities or logits.
        y: ``(N,)`` true class indices.
        bounds: search interval for ``T``.

    The NLL is convex in ``1/T``, hence unimodal in ``log T``: a bounded scalar search over
    ``log T`` (scipy ``minimize_scalar``, method "bounded") finds the optimum.
    """
    from scipy.optimize import minimize_scalar

    z = to_logits(probs_or_logits)
    y = _check(z, y)
    rows = np.arange(len(y))

    def objective(log_t: float) -> float:
        s = z / math.exp(log_t)
        s = s - s.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(s).sum(axis=1)) - s[rows, y]))

    lo, hi = math.log(bounds[0]), math.log(bounds[1])
    res = minimize_scalar(objective, bounds=(lo, hi), method="bounded",
                          options={"xatol": 1e-6})
    return float(math.exp(res.x))


def calibration_report(
    probs: np.ndarray, y: np.ndarray, temperature: float, n_bins: int = 15
) -> dict[str, float]:
    """ECE (0-1, ``n_bins`` equal-width bins) and NLL before and after temperature ``T``.

    Returns:
        ``{"temperature", "n", "ece_before", "ece_after", "nll_before", "nll_after"}``.
    """
    from emovox.metrics import expected_calibration_error

    z = to_logits(probs)
    y = _check(z, y)
    before = softmax(z)
    after = apply_temperature(z, temperature)
    return {
        "temperature": float(temperature),
        "n": int(len(y)),
        "ece_before": expected_calibration_error(before, y, n_bins),
        "ece_after": expected_calibration_error(after, y, n_bins),
        "nll_before": nll(before, y),
        "nll_after": nll(after, y),
    }


def group_calibration_report(
    probs: np.ndarray, y: np.ndarray, groups: np.ndarray, temperature: float,
    n_bins: int = 15, exclude_by: np.ndarray | None = None,
) -> dict[str, dict[str, float]]:
    """ECE per group (e.g. per held-out corpus of a leave-one-corpus-out run).

    For each group ``g`` (``groups``: ``(N,)`` names): ``n``, ``ece_before`` (raw
    probabilities), ``ece_after`` (the pooled ``temperature``, fitted on every group, ``g``
    included) and the honest figure for a corpus never seen by the calibration either:
    ``temperature_without`` fitted on the *other* groups only and ``ece_without``, the ECE of
    ``g`` under it. With a single group the last two are absent. ``exclude_by`` (``(N,)``,
    e.g. each row's corpus when groups are corpus x protocol) widens "other": the fit
    without ``g`` also leaves out every row sharing an ``exclude_by`` value with ``g``'s
    rows (absent when nothing is left).

    Returns:
        ``{group: {"n", "ece_before", "ece_after"[, "temperature_without", "ece_without"]}}``
        in sorted group order.
    """
    from emovox.metrics import expected_calibration_error

    z = to_logits(probs)
    y = _check(z, y)
    groups = np.asarray(groups)
    if groups.shape != y.shape:
        raise ValueError(f"groups must have shape {y.shape}, got {groups.shape}")
    names = sorted({str(g) for g in groups})
    key = groups.astype(str) if exclude_by is None else np.asarray(exclude_by).astype(str)
    if key.shape != y.shape:
        raise ValueError(f"exclude_by must have shape {y.shape}, got {key.shape}")
    out: dict[str, dict[str, float]] = {}
    for name in names:
        m = groups.astype(str) == name
        row = {
            "n": int(m.sum()),
            "ece_before": expected_calibration_error(softmax(z[m]), y[m], n_bins),
            "ece_after": expected_calibration_error(apply_temperature(z[m], temperature),
                                                    y[m], n_bins),
        }
        rest = ~np.isin(key, np.unique(key[m]))
        if len(names) > 1 and rest.any():
            t_out = fit_temperature(z[rest], y[rest])
            row["temperature_without"] = t_out
            row["ece_without"] = expected_calibration_error(apply_temperature(z[m], t_out),
                                                            y[m], n_bins)
        out[name] = row
    return out
