"""openSMILE functionals: eGeMAPSv02 (88) and ComParE_2016 (6373).

``opensmile`` is an optional extra (``pip install emovox[smile]``) and is imported lazily, on
the first extraction. ``opensmile.Smile`` objects are slow to build, so one is created per
``(feature_set, level)`` and kept in a module-level cache (a pure memo: it never changes what
a call returns).

Inputs shorter than :data:`MIN_SECONDS` are zero-padded at the end to that length before
analysis: openSMILE fills every functional with NaN below about 60 ms, and the padded clip
gives finite, well-defined values instead. Any NaN that remains is replaced with 0 (logged).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from emovox.features.spectral import as_mono, finite_float32

logger = logging.getLogger(__name__)

__all__ = ["MIN_SECONDS", "FEATURE_SETS", "compare", "egemaps", "feature_names"]

#: Shortest clip handed to openSMILE, in seconds; shorter waves are zero-padded at the end.
MIN_SECONDS: float = 0.25

#: emovox name -> (openSMILE FeatureSet member, number of functionals).
FEATURE_SETS: dict[str, tuple[str, int]] = {
    "egemaps": ("eGeMAPSv02", 88),
    "compare": ("ComParE_2016", 6373),
}

_INSTALL_HINT = "opensmile is not installed; pip install emovox[smile]"

# (feature_set, level) -> opensmile.Smile. A memo of slow-to-build, stateless extractors.
_SMILES: dict[tuple[str, str], Any] = {}


def _opensmile() -> Any:
    """Import opensmile lazily, turning its absence into an actionable ImportError."""
    try:
        import opensmile
    except ImportError as exc:  # pragma: no cover - exercised with a patched sys.modules
        raise ImportError(_INSTALL_HINT) from exc
    return opensmile


def _resolve(feature_set: str) -> str:
    """Map ``"egemaps"``/``"compare"`` or an openSMILE FeatureSet name to the latter."""
    if feature_set in FEATURE_SETS:
        return FEATURE_SETS[feature_set][0]
    known = {name for name, _ in FEATURE_SETS.values()}
    if feature_set in known:
        return feature_set
    raise ValueError(
        f"unknown openSMILE feature set {feature_set!r}; valid: "
        f"{', '.join(sorted(FEATURE_SETS) + sorted(known))}"
    )


def _smile(feature_set: str, level: str = "Functionals") -> Any:
    """The cached ``opensmile.Smile`` for ``(feature_set, level)``, built on first use."""
    key = (_resolve(feature_set), level)
    smile = _SMILES.get(key)
    if smile is None:
        opensmile = _opensmile()
        smile = opensmile.Smile(
            feature_set=getattr(opensmile.FeatureSet, key[0]),
            feature_level=getattr(opensmile.FeatureLevel, level),
        )
        _SMILES[key] = smile
    return smile


def _functionals(feature_set: str, wave: np.ndarray, sr: int) -> np.ndarray:
    """Run openSMILE functionals on one clip and return a finite float32 vector."""
    smile = _smile(feature_set)
    x = as_mono(wave)
    min_len = int(np.ceil(MIN_SECONDS * sr))
    if x.shape[0] < min_len:
        logger.debug("padding %d samples to %d for openSMILE", x.shape[0], min_len)
        x = np.pad(x, (0, min_len - x.shape[0]))
    df = smile.process_signal(x, int(sr))
    return finite_float32(df.to_numpy(dtype=np.float64).reshape(-1), f"opensmile:{feature_set}")


def egemaps(wave: np.ndarray, sr: int) -> np.ndarray:
    """eGeMAPSv02 functionals (Eyben et al. 2016), one vector per utterance.

    Args:
        wave: mono waveform ``(n_samples,)``, full scale [-1, 1].
        sr: sampling rate in Hz.

    Returns:
        float32 array ``(88,)`` in the order of :func:`feature_names` ``("egemaps")``
        (units as openSMILE defines them: F0 in semitones from 27.5 Hz, loudness in sones, ...).
    """
    return _functionals("egemaps", wave, sr)


def compare(wave: np.ndarray, sr: int) -> np.ndarray:
    """ComParE_2016 functionals (Interspeech ComParE baseline set).

    Args:
        wave: mono waveform ``(n_samples,)``, full scale [-1, 1].
        sr: sampling rate in Hz.

    Returns:
        float32 array ``(6373,)`` in the order of :func:`feature_names` ``("compare")``.
    """
    return _functionals("compare", wave, sr)


def feature_names(feature_set: str = "egemaps") -> list[str]:
    """Names of the functionals, in output order.

    Args:
        feature_set: ``"egemaps"`` / ``"compare"`` (or ``"eGeMAPSv02"`` / ``"ComParE_2016"``).

    Returns:
        88 or 6373 names.
    """
    return list(_smile(feature_set).feature_names)
