"""Is a sound that rises and falls like speech really speech, or a synthetic steady sound?

The speech detector (:mod:`emovox.features.vad`) finds speech by level and voicing. A beep,
a telephone tone (busy signal, ring-back, DTMF digits) or a square wave switched on and off
rises above its own floor and is periodic, so level and voicing alone call it speech. What no
voice does is hold its spectrum still: even a sustained sung vowel moves its harmonics with
its pitch from one 50 ms to the next. :func:`steady_share` measures that:

* up to :data:`MAX_FRAMES` speech frames (25 ms, Hann window, evenly spread over the speech
  segments) are compared with the frame :data:`LAG_S` later (when that one is speech too) by
  the cosine similarity of their magnitude spectra;
* the share of pairs at least :data:`SIMILAR` alike is returned.

Tones and beeps give 0.5-1.0 (touch-tone digits 0.49: they change every 100-200 ms; busy
and ring-back tones 0.93-0.99; gated square and sawtooth waves 0.74-0.89); speech gives at
most 0.04 on RAVDESS actors 01 and 02, 0.11 on all 1440 RAVDESS clips and 0.21 on the 1009
sung ones. :data:`STEADY_SHARE` (0.3) was set from those synthetic signals and actors 01-02
only, like the detector's other thresholds (:class:`emovox.features.vad.VadParams`); the
other actors, the song set, EMOVO and URDU are a check (tests/integration/test_speech_real.py).

Pure NumPy, ``(wave, sr, segments) -> float``; about 1 ms for a clip of speech (200 FFTs of
512 points), so speech answers take that much longer (README, "Beeps and phone tones").
"""

from __future__ import annotations

import numpy as np

__all__ = ["FRAME_S", "LAG_S", "MAX_FRAMES", "SIMILAR", "STEADY_SHARE", "steady_share"]

#: analysis frame (s) and the distance (s) between the two frames compared
FRAME_S: float = 0.025
LAG_S: float = 0.050
#: frames compared at most (evenly spread): bounds the cost on long inputs
MAX_FRAMES: int = 100
#: two frames this alike (cosine of magnitude spectra) count as unchanged
SIMILAR: float = 0.99
#: an input whose speech frames are unchanged 50 ms later this often is a steady sound
STEADY_SHARE: float = 0.3
_HOP_S = 0.010


def steady_share(wave: np.ndarray, sr: int, segments: np.ndarray) -> float:
    """Share (0-1) of the speech frames of ``wave`` (mono, ``sr`` Hz) whose magnitude
    spectrum is at least :data:`SIMILAR` alike (cosine) to the one :data:`LAG_S` later.

    Args:
        wave: ``(n_samples,)`` float.
        sr: sample rate (Hz).
        segments: ``(n, 2)`` start/end seconds of the speech (the detector's segments).

    Returns:
        The share; 0.0 when no frame has a speech frame :data:`LAG_S` after it.
    """
    x = np.asarray(wave, dtype=np.float32).ravel()
    hop, frame = max(1, int(round(_HOP_S * sr))), max(2, int(round(FRAME_S * sr)))
    lag = max(1, int(round(LAG_S / _HOP_S)))
    n = max(0, (len(x) - frame) // hop + 1)  # whole frames only
    flags = np.zeros(n + lag, bool)
    for s, e in np.asarray(segments, dtype=np.float64).reshape(-1, 2):
        flags[max(0, int(s / _HOP_S)) : max(0, min(n, int(e / _HOP_S)))] = True
    idx = np.flatnonzero(flags[:n] & flags[lag : n + lag])
    if len(idx) == 0:
        return 0.0
    if len(idx) > MAX_FRAMES:
        idx = idx[np.linspace(0, len(idx) - 1, MAX_FRAMES).astype(np.int64)]
    win = np.hanning(frame)
    nfft = 1 << max(9, (frame - 1).bit_length())

    def spectra(starts: np.ndarray) -> np.ndarray:  # (k, nfft // 2 + 1) magnitudes
        f = x[starts[:, None] * hop + np.arange(frame)[None, :]].astype(np.float64)
        f -= f.mean(axis=1, keepdims=True)
        return np.abs(np.fft.rfft(f * win, nfft, axis=1))  # float64: NumPy's fastest here

    a, b = spectra(idx), spectra(idx + lag)
    norm = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    sim = np.einsum("ij,ij->i", a, b) / np.where(norm > 0, norm, 1.0)
    return float(np.mean((sim >= SIMILAR) & (norm > 0)))
