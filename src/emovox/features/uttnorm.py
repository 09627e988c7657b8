"""Per-utterance normalisation of a frame sequence: the one home of ``utt_norm``.

A log-mel ``(T, n_mels)`` in dB can be normalised over the utterance so that a constant gain
cancels (:class:`UtteranceNorm`); several modes side by side (``"cmvn+gain"``) give an input
from which members of an ensemble trained on different normalisations each read their own
block. :func:`standardise_columns` is the column z-score that per-band CMVN and the
``mfcc_chroma`` feature share. Pure NumPy, float64 inside, float32 out.
"""

from __future__ import annotations

from enum import Enum

import numpy as np

__all__ = [
    "CMVN_MIN_STD_DB",
    "UTT_NORM_SEP",
    "UttNormValue",
    "UtteranceNorm",
    "standardise_columns",
    "utt_norm_modes",
    "utt_norm_value",
    "utterance_normalise",
]

#: floor of the per-band standard deviation in :func:`utterance_normalise`, dB (a band that
#: barely moves, e.g. one pinned at the ``top_db`` floor, is not blown up to unit variance)
CMVN_MIN_STD_DB: float = 1.0


class UtteranceNorm(str, Enum):
    """Per-utterance normalisation of a log-mel (the ``utt_norm`` feature parameter)."""

    NONE = "none"  #: dB re full scale, as computed (loudness is part of the input)
    CMVN = "cmvn"  #: per band: minus the mean over time, divided by the std over time
    #: per band: minus the mean over time only (gain and a fixed EQ cancel; each band's
    #: dynamic range is kept, in dB)
    CMN = "cmn"
    #: minus one number, the mean over all bands and frames: the gain is removed, the
    #: spectral shape (tilt, formant balance) and each band's movement are kept
    GAIN = "gain"


#: joins several modes of one ``utt_norm`` value: ``"cmvn+gain"`` is both, side by side
UTT_NORM_SEP = "+"

UttNormValue = UtteranceNorm | str | tuple[UtteranceNorm, ...]


def utt_norm_modes(value: UttNormValue) -> tuple[UtteranceNorm, ...]:
    """The modes of an ``utt_norm`` value: ``"cmvn"`` -> ``(CMVN,)``, ``"cmvn+gain"`` ->
    ``(CMVN, GAIN)`` (several normalisations of one log-mel side by side, ``(T, K n_mels)``:
    the input of an ensemble whose members read different ones).

    Raises:
        ValueError: an unknown mode, none, or one named twice.
    """
    if isinstance(value, UtteranceNorm):
        return (value,)
    parts = list(value) if isinstance(value, (tuple, list)) else str(value).split(UTT_NORM_SEP)
    try:
        modes = tuple(UtteranceNorm(p) for p in parts)
    except ValueError:
        valid = ", ".join(m.value for m in UtteranceNorm)
        raise ValueError(f"utt_norm must be one of {valid} (or several joined by "
                         f"{UTT_NORM_SEP!r}), got {value!r}") from None
    if len(set(modes)) != len(modes):
        raise ValueError(f"utt_norm names a mode twice: {value!r}")
    return modes


def utt_norm_value(value: UttNormValue) -> str:
    """The string form of an ``utt_norm`` value (``"cmvn"``, ``"cmvn+gain"``)."""
    return UTT_NORM_SEP.join(m.value for m in utt_norm_modes(value))


def utterance_normalise(db: np.ndarray, mode: UttNormValue) -> np.ndarray:
    """Per-utterance normalisation of a time-major log-mel.

    Args:
        db: ``(T, n_mels)`` log-mel in dB.
        mode: :class:`UtteranceNorm` (or its value); several modes (``"cmvn+gain"``, see
            :func:`utt_norm_modes`) give each normalisation in turn, concatenated along the
            bands: ``(T, K * n_mels)``.

    Returns:
        float32 ``(T, n_mels)``: unchanged for ``NONE``; for ``CMVN`` each band has zero mean
        over time and unit standard deviation (std floored at :data:`CMVN_MIN_STD_DB`); for
        ``GAIN`` the mean over all bins is subtracted (zero overall mean, dB kept); for
        ``CMN`` each band's mean over time is subtracted (dB kept). A gain
        ``g`` adds ``20 log10 g`` dB to every bin, which either mean removes exactly (except
        where the absolute -100 dB power floor binds: digital silence, and bins of quiet
        input; at a -55 dBFS peak the CMVN input moves by up to 2 std (code review, stop
        47), at -40 dBFS and above by nothing measurable).
    """
    modes = utt_norm_modes(mode)
    if len(modes) > 1:
        return np.concatenate([utterance_normalise(db, m) for m in modes], axis=1)
    mode = modes[0]
    if mode is UtteranceNorm.NONE:
        return np.asarray(db, np.float32)
    if mode in (UtteranceNorm.GAIN, UtteranceNorm.CMN):
        z = np.asarray(db, np.float64)
        mean = z.mean() if mode is UtteranceNorm.GAIN else z.mean(axis=0, keepdims=True)
        return (z - mean).astype(np.float32)
    return standardise_columns(db, CMVN_MIN_STD_DB)


def standardise_columns(x: np.ndarray, min_std: float) -> np.ndarray:
    """``(T, F)`` with every column minus its mean over time, over its std (floored at
    ``min_std``, in the column's units), computed in float64; float32 out."""
    z = np.asarray(x, np.float64)
    mu = z.mean(axis=0, keepdims=True)
    sd = np.maximum(z.std(axis=0, keepdims=True), min_std)
    return ((z - mu) / sd).astype(np.float32)
