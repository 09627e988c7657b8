"""Which stretches of what the speech detector calls speech hold their spectrum still, as a
beep, a phone tone or a gated square wave does and no voice does?

The speech detector (:mod:`emovox.features.vad`) finds speech by level and voicing. A beep,
a telephone tone (busy signal, ring-back, DTMF digits) or a square wave switched on and off
rises above its own floor and is periodic, so level and voicing alone call it speech. What no
voice does is hold its spectrum still: even a sustained sung vowel moves its harmonics with
its pitch from one 50 ms to the next. :func:`steady_frames` marks, among the frames flagged
as speech, those whose magnitude spectrum (25 ms, Hann window) is at least :data:`SIMILAR`
alike (cosine) to the flagged frame :data:`LAG_S` before or after it, in runs of at least
:data:`MIN_RUN_S`. :func:`without_steady` takes them out of the speech flags, so that a tone
before, between or after speech is left out and the speech around it stays, and a recording
of tones alone has no speech left (``steady_sound``).

Frame by frame (stop 29's second version): the first compared a whole input's frames and
called the input ``steady_sound`` when 30 % of them were unchanged, which silenced speech
that shared a recording with a ring-back tone (a QA pass found it the same day).

Measured (share of a clip's speech frames taken out): tones and beeps 0.56-0.99 (QA's busy
and ring-back tones, touch-tone digits, gated square and sawtooth waves); speech at most 0.09
of a RAVDESS clip (41 of 1440 clips touched at all), 0.23 of a sung one, 0.05 / 0.08 for
EMOVO / URDU; every real clip stays speech. :data:`SIMILAR`, :data:`LAG_S`, :data:`MIN_RUN_S`
and :data:`EDGE_S` were set from synthetic tones and RAVDESS actors 01 and 02 only, like the
detector's other thresholds; the other actors, the song set, EMOVO and URDU are a check
(tests/integration/test_speech_real.py).

Pure NumPy; one FFT (25 ms) per speech frame, about 1.5 ms for a 4 s clip; memory bounded
by chunks of :data:`_CHUNK` frames.
"""

from __future__ import annotations

import numpy as np

__all__ = ["EDGE_S", "FRAME_S", "LAGS_S", "MIN_RUN_S", "SIMILAR", "steady_frames",
           "without_steady"]

#: analysis frame (s) and the distances (s) between the frames compared: a tone of two
#: frequencies, or one switched on and off, repeats its short-time spectrum with its beat,
#: so several lags (20-125 ms periods) catch what one would miss
FRAME_S: float = 0.025
LAGS_S: tuple[float, ...] = (0.04, 0.05, 0.06, 0.08, 0.1, 0.125)
#: two frames this alike (cosine of magnitude spectra) count as unchanged
SIMILAR: float = 0.99
#: unchanged frames count only in runs at least this long (s): a voice holds still for a
#: frame or two, a beep for its whole length
MIN_RUN_S: float = 0.2
#: what is left between or beside steady runs counts as speech only when at least this long
#: (s); a word is longer, a beep's edges and the pauses between digits are shorter
EDGE_S: float = 0.12
_HOP_S = 0.010
_CHUNK = 512


def _unit_spectra(x: np.ndarray, frames: np.ndarray, hop: int, frame: int,
                  win: np.ndarray) -> np.ndarray:
    """``(k, frame // 2 + 1)`` magnitude spectra of ``frames`` scaled to unit norm (zeros
    for a silent frame)."""
    f = x[frames[:, None] * hop + np.arange(frame)[None, :]].astype(np.float64)
    f -= f.mean(axis=1, keepdims=True)
    mag = np.abs(np.fft.rfft(f * win, axis=1))
    norm = np.linalg.norm(mag, axis=1, keepdims=True)
    return mag / np.where(norm > 0, norm, np.inf)


def steady_frames(wave: np.ndarray, sr: int, flags: np.ndarray) -> np.ndarray:
    """Per-frame (10 ms hop) ``(len(flags),)`` bool: the ``flags`` frames whose spectrum is
    unchanged :data:`LAG_S` before or after, in runs of at least :data:`MIN_RUN_S`.

    Args:
        wave: ``(n_samples,)`` float, mono.
        sr: sample rate (Hz).
        flags: ``(n_frames,)`` bool speech flags of ``wave`` at a 10 ms hop.
    """
    x = np.asarray(wave, dtype=np.float32).ravel()
    hop, frame = max(1, int(round(_HOP_S * sr))), max(2, int(round(FRAME_S * sr)))
    lags = sorted({max(1, int(round(t / _HOP_S))) for t in LAGS_S})
    ok = np.asarray(flags, dtype=bool).copy()
    ok[max(0, (len(x) - frame) // hop + 1) :] = False  # only frames that fit in the wave
    out = np.zeros(len(ok), dtype=bool)
    idx = np.flatnonzero(ok)
    win = np.hanning(frame)
    for c0 in range(0, len(idx), _CHUNK):
        a = idx[c0 : c0 + _CHUNK]
        pairs = [(a[m], a[m] + lag) for lag in lags
                 if (m := (a + lag < len(ok)) & ok[np.minimum(a + lag, len(ok) - 1)]).any()]
        if not pairs:
            continue
        need = np.unique(np.concatenate([np.concatenate(p) for p in pairs]))
        spec = _unit_spectra(x, need, hop, frame, win)  # each frame's spectrum once
        for i, j in pairs:
            sim = np.einsum("ij,ij->i", spec[np.searchsorted(need, i)],
                            spec[np.searchsorted(need, j)])
            out[i[sim >= SIMILAR]] = True  # unchanged some lag after ...
            out[j[sim >= SIMILAR]] = True  # ... and before
    return _long_runs(out, max(1, int(round(MIN_RUN_S / _HOP_S))))


def _long_runs(flags: np.ndarray, n: int) -> np.ndarray:
    """``flags`` without its ``True`` runs shorter than ``n`` frames."""
    d = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    out = np.zeros_like(flags)
    for s, e in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1), strict=True):
        if e - s >= n:
            out[s:e] = True
    return out


def without_steady(wave: np.ndarray, sr: int, flags: np.ndarray, min_run: int
                   ) -> tuple[np.ndarray, int]:
    """``(flags without their steady frames, number of steady frames taken out)``. Of what
    remains, pieces shorter than ``min_run`` frames are dropped, and so are pieces shorter
    than :data:`EDGE_S` within :data:`EDGE_S` of a steady run: a beep's onset and decay,
    and the silence between touch-tone digits bridged by the detector, are not speech."""
    steady = steady_frames(wave, sr, flags)
    n = int(np.count_nonzero(steady))
    if n == 0:
        return flags, 0
    edge = max(1, int(round(EDGE_S / _HOP_S)))
    near = np.convolve(steady.astype(np.int32), np.ones(2 * edge + 1, np.int32), "same") > 0
    out = _long_runs(flags & ~steady, min_run)
    d = np.diff(np.concatenate([[0], out.astype(np.int8), [0]]))
    for a, b in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1), strict=True):
        if b - a < edge and near[a:b].any():
            out[a:b] = False
    return out, n
