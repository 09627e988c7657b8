"""MFCC (+ deltas) and chroma per frame, optionally normalised per utterance: the input of the
ResLSTM (:mod:`emovox.models.reslstm`).

One time-major ``(T, n_mfcc * (1 + deltas) + n_chroma)`` matrix from
:func:`emovox.features.spectral.mfcc` and :func:`emovox.features.spectral.chroma` computed on
the same frame grid (``n_fft`` / ``hop_length``, ``T = 1 + max(n, n_fft) // hop_length``).

Why it is gain-invariant with ``utt_norm="cmvn"``: a gain ``g`` adds ``20 log10 g`` dB to
every mel bin (the ``top_db`` floor follows the utterance maximum, so it moves too), the
orthonormal DCT puts that constant into ``c_0`` only, and the per-utterance mean removes it;
deltas do not see a constant at all; chroma frames are peak-normalised (a gain cancels) and
the tuning is fixed (``tuning=0.0``, not estimated from the signal). Only where the -100 dB
power floor binds (digital silence, and the quietest bins of input under about -45 dBFS:
at a -55 dBFS peak the CMVN frames move by up to 3 std; code review, stop 47) can a gain
still change a number.

Like the other spectral features this calls librosa (imported inside the functions it uses),
so a model reading it computes its input with librosa at serving time too (there is no NumPy
front end for it, unlike the log-mel).
"""

from __future__ import annotations

import numpy as np

from emovox.features.spectral import chroma, finite_float32, mfcc
from emovox.features.uttnorm import UtteranceNorm, standardise_columns

__all__ = ["MFCC_CHROMA_MIN_STD", "mfcc_chroma"]

#: floor of a column's standard deviation in
#: :func:`~emovox.features.uttnorm.standardise_columns` (a constant column,
#: e.g. digital silence, becomes zeros instead of a division by zero). The columns' units
#: differ (dB-scale cepstra, chroma in [0, 1]), so the floor only guards degenerate columns;
#: a gain changes no column's spread, so the floor keeps the invariance.
MFCC_CHROMA_MIN_STD: float = 1e-3


def mfcc_chroma(
    wave: np.ndarray,
    sr: int,
    *,
    n_mfcc: int = 20,
    deltas: int = 2,
    n_mels: int = 64,
    n_fft: int = 512,
    hop_length: int = 160,
    n_chroma: int = 12,
    tuning: float = 0.0,
    utt_norm: str = "none",
) -> np.ndarray:
    """MFCC (+ Δ, ΔΔ) and chroma of each frame, time-major.

    Args:
        wave: mono waveform ``(n_samples,)``.
        sr: sampling rate in Hz.
        n_mfcc: cepstral coefficients (``c_0`` included).
        deltas: 0, 1 or 2 orders of deltas appended to the cepstra.
        n_mels: mel bands before the DCT.
        n_fft: FFT size (= window length) of both analyses, samples.
        hop_length: hop between frames, samples.
        n_chroma: chroma bins per octave.
        tuning: tuning deviation from A440 in fractions of a chroma bin (fixed, so that a
            clip's pitch is not re-centred and the feature stays gain-invariant).
        utt_norm: ``"none"`` or ``"cmvn"`` (every column standardised over the utterance,
            :func:`~emovox.features.uttnorm.standardise_columns`).

    Returns:
        float32 ``(T, n_mfcc * (1 + deltas) + n_chroma)``: cepstra, deltas, then chroma
        (row 0 = pitch class C).

    Raises:
        ValueError: ``deltas`` not in 0..2 or an unknown ``utt_norm``.
    """
    modes = (UtteranceNorm.NONE, UtteranceNorm.CMVN)  # "gain" and "cmn" are log-mel modes
    try:
        mode: UtteranceNorm | None = UtteranceNorm(utt_norm)
    except ValueError:
        mode = None
    if mode not in modes:
        valid = ", ".join(m.value for m in modes)
        raise ValueError(f"utt_norm must be one of {valid}, got {utt_norm!r}")
    ceps = mfcc(wave, sr, n_mfcc=n_mfcc, n_mels=n_mels, n_fft=n_fft, hop_length=hop_length,
                deltas=deltas)  # (n_mfcc * (1 + deltas), T)
    chro = chroma(wave, sr, n_fft=n_fft, hop_length=hop_length, n_chroma=n_chroma,
                  tuning=tuning)  # (n_chroma, T)
    x = np.concatenate([ceps, chro], axis=0).T  # (T, F)
    if mode is UtteranceNorm.CMVN:
        x = standardise_columns(x, MFCC_CHROMA_MIN_STD)
    return finite_float32(np.ascontiguousarray(x), "mfcc_chroma")
