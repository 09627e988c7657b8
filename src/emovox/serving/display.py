"""Spectrograms to look at (the web app's log-mel and MFCC tabs), in bounded memory.

A 10-minute upload's log-mel at 10 ms hops is 60,000 STFT frames: computed whole, its
complex spectrum alone took the app's process from 146 to 450 MB (web QA, stop 32), only to
be averaged down to :data:`MAX_FRAMES` columns. :func:`display_spectrograms` computes it a
chunk of :data:`CHUNK_S` at a time, each with enough of its neighbours' samples that its
frames are the frames of the whole computation, and averages each chunk's frames in groups
of ``k`` (the same groups as averaging the whole). A recording of one chunk or less gets
exactly the arrays of :func:`~emovox.features.spectral.log_mel` and
:func:`~emovox.features.spectral.mfcc`. Longer ones differ in one respect, on screen only:
the 80 dB floor below the loudest bin is applied after averaging (log-mel) or per chunk
(MFCC) instead of over the whole recording at once.
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
#: Dynamic range shown (dB below the loudest bin), as :func:`log_mel`'s default.
TOP_DB = 80.0


def _pool(x: np.ndarray, k: int) -> np.ndarray:
    """Means of ``x``'s columns in groups of ``k`` (a last incomplete group dropped)."""
    if k == 1:
        return x
    m = x.shape[1] // k
    return x[:, : m * k].reshape(x.shape[0], m, k).mean(axis=2)


def display_spectrograms(wave: np.ndarray, sr: int, *, hop_length: int = 160,
                         max_frames: int = MAX_FRAMES, chunk_s: float = CHUNK_S
                         ) -> tuple[np.ndarray, np.ndarray, int]:
    """``(log-mel (64, T'), MFCC (20, T'), k)`` of a mono ``wave``: each column the mean of
    ``k`` frames of ``hop_length`` samples, ``T' <= max_frames`` (see the module's
    docstring). Scratch memory: one chunk's spectrum, whatever the recording's length."""
    from emovox.features.spectral import log_mel, mfcc

    n = len(wave)
    frames = 1 + n // hop_length
    k = max(1, math.ceil(frames / max_frames))
    per_chunk = k * max(1, math.ceil(chunk_s * sr / hop_length / k))  # a multiple of k
    if frames <= per_chunk:
        return (_pool(log_mel(wave, sr, hop_length=hop_length), k),
                _pool(mfcc(wave, sr, hop_length=hop_length), k), k)
    ctx = hop_length * math.ceil(_N_FFT / 2 / hop_length)  # half an FFT or more, whole hops
    mels, ceps = [], []
    for f0 in range(0, frames, per_chunk):
        a = f0 * hop_length
        lo = max(0, a - ctx)
        piece = wave[lo:min(n, a + per_chunk * hop_length + ctx)]
        first = (a - lo) // hop_length  # frames of the piece before frame f0
        keep = min(per_chunk, frames - f0)
        mel = log_mel(piece, sr, hop_length=hop_length, top_db=None)[:, first:first + keep]
        cep = mfcc(piece, sr, hop_length=hop_length)[:, first:first + keep]
        mels.append(_pool(mel, k))
        ceps.append(_pool(cep, k))
        del mel, cep
    mel = np.concatenate(mels, axis=1)
    return np.maximum(mel, mel.max() - TOP_DB), np.concatenate(ceps, axis=1), k
