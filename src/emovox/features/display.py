"""Spectrograms to look at (the web app's log-mel and MFCC tabs), in bounded memory.

A 10-minute upload's log-mel at 10 ms hops is 60,000 STFT frames: computed whole, its
complex spectrum alone took the app's process from 146 to 450 MB (web QA, stop 32), only to
be averaged down to :data:`MAX_FRAMES` columns. :func:`display_spectrograms` computes the
short-time spectrum a chunk of :data:`CHUNK_S` at a time, each with enough of its
neighbours' samples that its frames are the frames of the whole computation, and keeps only
the mel power (64 bands: 15 MB for 10 minutes); the 80 dB floor below the loudest bin, the
DCT of the MFCCs and the averaging of ``k`` frames per column then run on the whole, as
:func:`~emovox.features.spectral.log_mel` and :func:`~emovox.features.spectral.mfcc` (whose
librosa calls and parameters these are) followed by that averaging: the same arrays, for
any length.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["CHUNK_S", "MAX_FRAMES", "display_spectrograms"]

#: Spectrogram columns drawn at most (long recordings are averaged down to this).
MAX_FRAMES = 3000
#: Length of the pieces a long recording is analysed in (s).
CHUNK_S = 30.0
# the FFT size of log_mel and mfcc (their frames reach half of it either side of a centre)
_N_FFT = 512
# (window length, lowest band edge in Hz) of log_mel's and of mfcc's mel spectrum
_LOG_MEL = (400, 20.0)
_MFCC = (None, 0.0)


def _pool(x: np.ndarray, k: int) -> np.ndarray:
    """Means of ``x``'s columns in groups of ``k`` (a last incomplete group dropped)."""
    if k == 1:
        return x
    m = x.shape[1] // k
    return x[:, : m * k].reshape(x.shape[0], m, k).mean(axis=2)


def _mel_power(wave: np.ndarray, sr: int, hop_length: int, chunk_s: float
               ) -> tuple[np.ndarray, np.ndarray]:
    """Mel power ``(64, T)`` of :func:`log_mel`'s and of :func:`mfcc`'s spectrum, computed
    ``chunk_s`` at a time (the frames of the whole computation: see the module's docstring)."""
    import librosa

    from emovox.features.spectral import as_mono_padded

    y = as_mono_padded(wave, _N_FFT)
    n = len(y)
    frames = 1 + n // hop_length
    per_chunk = max(1, math.ceil(chunk_s * sr / hop_length))
    ctx = hop_length * math.ceil(_N_FFT / 2 / hop_length)  # half an FFT or more, whole hops
    out: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
    for f0 in range(0, frames, per_chunk):
        a = f0 * hop_length
        hi = min(n, a + per_chunk * hop_length + ctx)
        lo = max(0, a - ctx)
        if hi - lo < _N_FFT:  # a short last piece: more context, in whole hops
            lo = max(0, lo - hop_length * math.ceil((_N_FFT - (hi - lo)) / hop_length))
        piece = y[lo:hi]
        first, keep = (a - lo) // hop_length, min(per_chunk, frames - f0)
        for (win, fmin), acc in zip((_LOG_MEL, _MFCC), out, strict=True):
            s = librosa.feature.melspectrogram(y=piece, sr=sr, n_fft=_N_FFT,
                                               hop_length=hop_length, win_length=win,
                                               n_mels=64, fmin=fmin, power=2.0)
            acc.append(s[:, first:first + keep])
    return np.concatenate(out[0], axis=1), np.concatenate(out[1], axis=1)


def display_spectrograms(wave: np.ndarray, sr: int, *, hop_length: int = 160,
                         max_frames: int = MAX_FRAMES, chunk_s: float = CHUNK_S
                         ) -> tuple[np.ndarray, np.ndarray, int]:
    """``(log-mel (64, T'), MFCC (20, T'), k)`` of a mono ``wave``: each column the mean of
    ``k`` frames of ``hop_length`` samples, ``T' <= max_frames``; equal to
    ``log_mel(wave, sr)`` and ``mfcc(wave, sr)`` averaged so (see the module's docstring).
    Scratch memory: one chunk's spectrum plus the two mel powers, whatever the length."""
    import librosa

    from emovox.features.spectral import finite_float32

    mel_p, cep_p = _mel_power(wave, sr, hop_length, chunk_s)
    k = max(1, math.ceil(mel_p.shape[1] / max_frames))
    mel = finite_float32(librosa.power_to_db(mel_p, ref=1.0, amin=1e-10, top_db=80.0),
                         "log_mel")
    del mel_p
    cep = finite_float32(librosa.feature.mfcc(S=librosa.power_to_db(cep_p), n_mfcc=20),
                         "mfcc")
    return _pool(mel, k), _pool(cep, k), k
