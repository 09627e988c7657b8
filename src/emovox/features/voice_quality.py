"""The eGeMAPS parameters that :mod:`emovox.features.prosody` leaves out: period-level
perturbation, harmonic differences and formants, in NumPy, gain-invariant.

Definitions follow Eyben et al., "The Geneva Minimalistic Acoustic Parameter Set (GeMAPS)",
IEEE TAC 7(2), 2016, section 3.1, over the voiced frames of the prosody analysis
(:func:`emovox.features.prosody.analyse`: 40 ms Hann frames every 10 ms, autocorrelation
pitch). Every threshold below was fixed from the paper and from textbook values before any
corpus was read, and is checked only on synthetic signals (``tests/unit/test_voice_quality.py``):

* **jitter** (local): the mean absolute difference of consecutive pitch periods over the
  mean period, per voiced frame; **shimmer** (local, dB): the mean absolute difference of
  consecutive periods' peak amplitudes in dB. Periods come from pitch marks: within each
  run of voiced frames, the first mark is the largest sample (of the run's dominant
  polarity) within 1.25 of the run's median pitch period, and each next one the largest
  between 0.75 and 1.25 of the last period after it. A frame needs 3 periods starting in
  it.
* **H1-H2**, **H1-A3** (dB): the power of the first harmonic (the spectrum's peak within half
  an F0 of F0) over that of the second, and over the harmonic peak at the third formant.
* **formants F1-F3**: centre frequency and bandwidth (Hz) from the roots of an LPC
  polynomial (order ``2 + sr / 1000``, pre-emphasis 0.97, Hamming window, autocorrelation
  method) of each voiced frame; a root is a formant candidate when its frequency lies in
  90 Hz .. sr/2 - 50 Hz and its bandwidth is under 700 Hz; F1-F3 are the three lowest
  (on every second voiced frame: :data:`FORMANT_STRIDE`).
  Their **amplitude** (dB) is the harmonic peak at the formant's centre over the peak at F0.
* **loudness peaks per second** (of speech) and the **standard deviation of unvoiced
  segment lengths**, the two eGeMAPS timing values :mod:`prosody` lacks.

Gain does not move any of them (every value is a ratio or a time). A statistic over no frame
is 0, like the prosody set's. :func:`prosody_vq` is the prosody set followed by these 28:
``(75,)``.
"""

from __future__ import annotations

import numpy as np

from emovox.features import prosody as pr
from emovox.features.spectral import finite_float32

__all__ = ["FEATURE_NAMES", "FORMANT_STRIDE", "VQ_NAMES", "formants", "harmonic_peak_db",
           "pitch_marks", "prosody_vq", "voice_quality"]

#: formant candidates: frequency range (Hz, the upper end sr/2 minus this) and bandwidth
_F_MIN, _F_EDGE, _BW_MAX = 90.0, 50.0, 700.0
_PRE_EMPHASIS = 0.97
#: formants are fitted on every this-many-th voiced frame (20 ms apart: half the cost of the
#: root finding, the same statistics of a contour that moves slowly)
FORMANT_STRIDE = 2
_MIN_PERIODS = 3
#: frames handled at once where a (frames, bins) temporary is needed
_CHUNK = 1024
_EPS = 1e-10

VQ_NAMES: tuple[str, ...] = (
    *(f"{m}_{s}" for m in ("jitter", "shimmer_db", "h1_h2", "h1_a3") for s in ("mean", "std")),
    *(f"f{k}_{q}_{s}" for k in (1, 2, 3) for q in ("freq", "bw", "amp")
      for s in ("mean", "std")),
    "loudness_peaks_per_s", "unvoiced_segment_std_s",
)
FEATURE_NAMES: tuple[str, ...] = (*pr.FEATURE_NAMES, *VQ_NAMES)


def pitch_marks(x: np.ndarray, voiced: np.ndarray, f0: np.ndarray, hop: int, length: int,
                sr: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pitch marks of the voiced runs of ``x``.

    Args:
        x: the wave ``(n,)``; voiced, f0: frame mask and pitch (Hz) ``(T,)``; hop, length:
            the framing (samples); sr: rate (Hz).

    Returns:
        ``(marks, amplitudes, run)``: the mark positions (samples, increasing), the absolute
        sample value at each, and the index of the voiced run each belongs to (periods are
        taken only between marks of one run).
    """
    marks, amps, runs = [], [], []
    p_min, p_max = sr / pr.F0_RANGE[1], sr / pr.F0_RANGE[0]
    edges = np.flatnonzero(np.diff(np.concatenate([[0], voiced.astype(np.int8), [0]])))
    for k, (a, b) in enumerate(zip(edges[::2], edges[1::2], strict=True)):
        start, stop = a * hop, min(len(x), (b - 1) * hop + length)
        seg = x[start:stop]
        if len(seg) < 4:
            continue
        sign = 1.0 if seg.max() >= -seg.min() else -1.0
        s = seg * sign
        p = float(np.median(sr / f0[a:b]))  # samples: the run's typical period
        t = int(np.argmax(s[: int(1.25 * p) + 1]))
        while True:
            marks.append(start + t)
            amps.append(float(s[t]))
            runs.append(k)
            lo, hi = t + int(0.75 * p), t + int(np.ceil(1.25 * p)) + 1
            if hi > len(s):
                break
            nxt = lo + int(np.argmax(s[lo:hi]))
            # the next search follows the last period, within the pitch search range
            p, t = min(max(float(nxt - t), p_min), p_max), nxt
    return np.array(marks, np.int64), np.abs(np.array(amps)), np.array(runs, np.int64)


def _perturbation(a: pr.Analysis) -> tuple[np.ndarray, np.ndarray]:
    """Jitter and shimmer (dB) of each voiced frame with enough periods (two ``(N,)``)."""
    marks, amps, runs = pitch_marks(a.x, a.voiced, a.f0, a.hop, a.length, a.sr)
    same = runs[1:] == runs[:-1]
    period = np.diff(marks).astype(float)  # period k: marks k -> k+1
    ok = same[:-1] & same[1:] if len(same) > 1 else np.zeros(0, bool)  # pairs (k, k+1)
    start = marks[:-2][ok]
    dp = np.abs(np.diff(period))[ok]
    pk = period[:-1][ok]
    da = np.abs(20 * np.log10((amps[1:-1] + _EPS) / (amps[:-2] + _EPS)))[ok]
    f_start = np.flatnonzero(a.voiced) * a.hop
    lo = np.searchsorted(start, f_start)
    hi = np.searchsorted(start, f_start + a.length)
    n = hi - lo
    keep = n >= _MIN_PERIODS - 1  # >= 3 periods starting in the frame: >= 2 pairs

    def window_sum(v: np.ndarray) -> np.ndarray:
        c = np.concatenate([[0.0], np.cumsum(v)])
        return (c[hi] - c[lo])[keep]

    jitter = window_sum(dp) / np.maximum(window_sum(pk), _EPS)  # mean |dP| / mean P
    return jitter, window_sum(da) / np.maximum(n[keep], 1)


def _lpc(frames: np.ndarray, order: int) -> np.ndarray:
    """LPC polynomials ``(N, order + 1)`` (leading 1) of ``frames`` ``(N, L)`` by the
    autocorrelation method (Levinson-Durbin over all frames at once)."""
    n = frames.shape[1]
    r = np.stack([np.einsum("ij,ij->i", frames[:, : n - i], frames[:, i:])
                  for i in range(order + 1)], axis=1)  # (N, order + 1)
    r[:, 0] *= 1.0 + 1e-9  # white-noise correction: silence-safe
    a = np.zeros((len(frames), order + 1))
    a[:, 0] = 1.0
    err = r[:, 0].copy() + _EPS
    for i in range(1, order + 1):
        acc = r[:, i] + (a[:, 1:i] * r[:, i - 1:0:-1]).sum(1)
        k = -acc / err
        a[:, 1:i] = a[:, 1:i] + k[:, None] * a[:, i - 1:0:-1]
        a[:, i] = k
        err = err * (1.0 - k ** 2) + _EPS
    return a


def formants(frames: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """F1-F3 centre frequencies and bandwidths (Hz) of raw frames ``(N, L)``: two ``(N, 3)``
    arrays, NaN where a frame has fewer candidates."""
    order = int(2 + sr // 1000)
    n = frames.shape[1]
    rms = np.sqrt((frames ** 2).mean(1, keepdims=True))
    frames = frames / np.where(rms > 0, rms, 1.0)  # unit power: gain cannot move the fit
    emph = np.concatenate([frames[:, :1], frames[:, 1:] - _PRE_EMPHASIS * frames[:, :-1]], 1)
    a = _lpc(emph * np.hamming(n), order)
    comp = np.zeros((len(a), order, order))
    comp[:, 0, :] = -a[:, 1:]
    comp[:, np.arange(1, order), np.arange(order - 1)] = 1.0
    roots = np.linalg.eigvals(comp) if len(a) else np.zeros((0, order), complex)
    freq = np.angle(roots) * sr / (2 * np.pi)
    bw = -np.log(np.abs(roots) + _EPS) * sr / np.pi
    ok = (freq > _F_MIN) & (freq < sr / 2 - _F_EDGE) & (bw < _BW_MAX) & (roots.imag > 0)
    freq = np.where(ok, freq, np.inf)
    idx = np.argsort(freq, axis=1)[:, :3]
    f3 = np.take_along_axis(freq, idx, 1)
    b3 = np.take_along_axis(bw, idx, 1)
    missing = ~np.isfinite(f3)
    return np.where(missing, np.nan, f3), np.where(missing, np.nan, b3)


def harmonic_peak_db(power: np.ndarray, freqs: np.ndarray, centre: np.ndarray,
                     f0: np.ndarray) -> np.ndarray:
    """dB of the largest power within half an F0 of ``centre`` in each frame: ``power``
    ``(N, F)``, ``centre`` and ``f0`` ``(N,)`` in Hz; NaN where ``centre`` is NaN."""
    peak = np.zeros(len(power))
    for i in range(0, len(power), _CHUNK):  # bounded memory on long input
        c, h = centre[i:i + _CHUNK, None], f0[i:i + _CHUNK, None] / 2
        near = np.abs(freqs[None, :] - c) <= h
        peak[i:i + _CHUNK] = np.where(near, power[i:i + _CHUNK], 0.0).max(1)
    return np.where(np.isfinite(centre), 10 * np.log10(peak + _EPS), np.nan)


def _stats(v: np.ndarray) -> list[float]:
    v = v[np.isfinite(v)]
    return [float(v.mean()), float(v.std())] if len(v) else [0.0, 0.0]


def voice_quality(a: pr.Analysis) -> np.ndarray:
    """The 28 values of :data:`VQ_NAMES` from a prosody analysis ``a``, float32."""
    jit, shim = _perturbation(a)
    v = np.flatnonzero(a.voiced)
    f0 = a.f0[v]
    raw = np.lib.stride_tricks.sliding_window_view(a.x, a.length)[:: a.hop][v]  # (N, L)
    fq, bw = np.full((len(v), 3), np.nan), np.full((len(v), 3), np.nan)
    picked = np.arange(len(v))[::FORMANT_STRIDE]
    for i in range(0, len(picked), _CHUNK):  # bounded memory on long input
        rows = picked[i:i + _CHUNK]
        fq[rows], bw[rows] = formants(raw[rows].astype(np.float64), a.sr)
    power = a.power[v]
    h1 = harmonic_peak_db(power, a.freqs, f0, f0)
    h2 = harmonic_peak_db(power, a.freqs, 2 * f0, f0)
    peaks = [harmonic_peak_db(power, a.freqs, fq[:, k], f0) for k in range(3)]
    amp = [pk - h1 for pk in peaks]  # formant amplitude relative to the F0 harmonic
    out = [*_stats(jit), *_stats(shim), *_stats(h1 - h2), *_stats(h1 - peaks[2])]
    for k in range(3):
        out += [*_stats(fq[:, k]), *_stats(bw[:, k]), *_stats(amp[k])]
    n_speech = int(a.speech.sum())
    smooth = np.convolve(a.loud, np.ones(3) / 3, mode="same")
    peak = np.zeros_like(a.speech)
    peak[1:-1] = (smooth[1:-1] > smooth[:-2]) & (smooth[1:-1] >= smooth[2:])
    out.append(float((peak & a.speech).sum() / (n_speech * a.hop / a.sr)) if n_speech else 0.0)
    uruns = pr.run_lengths(a.speech & ~a.voiced) * (a.hop / a.sr)
    out.append(float(uruns.std()) if len(uruns) else 0.0)
    return finite_float32(np.asarray(out), "voice_quality")


def prosody_vq(wave: np.ndarray, sr: int) -> np.ndarray:
    """The prosody functionals and the voice-quality values of one utterance: ``(75,)``
    float32 (:data:`FEATURE_NAMES`)."""
    a = pr.analyse(wave, sr)
    return np.concatenate([pr.functionals(a), voice_quality(a)])
