"""Prosodic and voice-quality functionals in the spirit of eGeMAPS, in NumPy, gain-invariant.

eGeMAPS (Eyben et al., "The Geneva Minimalistic Acoustic Parameter Set", IEEE TAC 7(2), 2016)
is a small expert set chosen to carry emotion across corpora: pitch, loudness, voice quality,
spectral balance and timing, summarised over the utterance. On leave-one-corpus-out runs a
linear model on it is as good as any of emovox's networks (README, "A linear member on
eGeMAPS-like functionals"), but
openSMILE takes about 75 ms per 3 s clip. This module computes a set of the same families
(``(47,)``, fixed a priori from the paper's list, nothing chosen on emovox's test corpora) from
one framing of the wave in a few milliseconds:

* frames of 40 ms every 10 ms (Hann window), power spectrum zero-padded past frame + longest
  pitch period (no circular wrap of the autocorrelation);
* **pitch and harmonicity** from each frame's autocorrelation (inverse FFT of the power
  spectrum), divided by the window's own autocorrelation (Boersma, "Accurate short-term
  analysis of the fundamental frequency and the harmonics-to-noise ratio of a sampled sound",
  IFA Proceedings 17, 1993): the highest peak between 1/500 and 1/60 s gives F0 and its height
  ``r`` the harmonics-to-noise ratio ``10 log10(r / (1 - r))``; a speech frame is *voiced*
  when ``r >= VOICED_R``;
* **speech frames**: frame energy within :data:`SPEECH_RANGE_DB` of the utterance's 95th
  percentile (a relative threshold: gain does not move it);
* **loudness**: frame energy in dB relative to that 95th percentile (so the set is gain-
  invariant by construction, like the networks' per-utterance normalisation);
* **spectral balance**: alpha ratio (50-1000 Hz against 1-5 kHz, dB), Hammarberg index
  (strongest bin below 2 kHz against 2-5 kHz, dB), spectral slopes 0-500 and 500-1500 Hz (dB
  per kHz, least squares on the dB spectrum), spectral flux; over voiced and unvoiced speech
  frames apart, as in eGeMAPS;
* **MFCC 1-4** (DCT-II of a 26-band log-mel) over voiced frames;
* **timing**: voiced fraction, voiced segments per second, mean/std voiced segment and mean
  unvoiced segment length.

:func:`prosody_band` computes the same 47 values with every spectral measure restricted to the
telephone band, 300-3400 Hz (:data:`TELEPHONE_BAND`; :func:`prosody` uses :data:`FULL_BAND`).
:func:`prosody_robust` keeps the 41 of the 47 that a telephone band-pass moves by at most 2
clean standard deviations on the training corpora (:data:`ROBUST_NAMES`, from
``bench/feature_shift.py --limit 2.0``): it drops the four MFCC means and the two 0-500 Hz
slopes, which read the band below 300 Hz.

Formants, jitter and shimmer (period-level measures) are left out: they need a pitch-
synchronous analysis that a 10 ms framing cannot give. A statistic over an empty set of frames
(no voiced frame) is 0; ``voiced_fraction`` tells a model when that happened.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from emovox.features.spectral import as_mono_padded, finite_float32

__all__ = ["F0_RANGE", "FEATURE_NAMES", "FULL_BAND", "ROBUST_COLUMNS", "ROBUST_NAMES",
           "SPEECH_RANGE_DB", "TELEPHONE_BAND", "VOICED_R", "Analysis", "Bands", "analyse",
           "functionals", "prosody", "prosody_band", "prosody_robust", "run_lengths"]

#: speech frames: energy within this many dB of the utterance's 95th-percentile frame
SPEECH_RANGE_DB: float = 35.0
#: a speech frame is voiced when its window-corrected autocorrelation peak reaches this
VOICED_R: float = 0.5
#: the pitch search range (Hz)
F0_RANGE: tuple[float, float] = (60.0, 500.0)
_FMIN, _FMAX = F0_RANGE
_FRAME_S, _HOP_S = 0.040, 0.010
_EPS = 1e-10


@dataclass(frozen=True)
class Bands:
    """The frequency ranges (Hz) the spectral functionals read.

    Attributes:
        limit: every spectral computation (energy, pitch, flux, ...) sees only this band
            (``None``: the whole spectrum).
        alpha: the alpha ratio's low and high bands.
        hammarberg: the Hammarberg index's low and high bands (strongest bin of each).
        slopes: the two spectral-slope ranges.
        mel: the range of the 26-band mel filter bank behind MFCC 1-4.
    """

    limit: tuple[float, float] | None
    alpha: tuple[tuple[float, float], tuple[float, float]]
    hammarberg: tuple[tuple[float, float], tuple[float, float]]
    slopes: tuple[tuple[float, float], tuple[float, float]]
    mel: tuple[float, float]


#: eGeMAPS's bands: :func:`prosody`
FULL_BAND = Bands(None, ((50, 1000), (1000, 5000)), ((0, 2000), (2000, 5000)),
                  ((0, 500), (500, 1500)), (0, 8000))
#: the telephone band, 300-3400 Hz, for everything: :func:`prosody_band` (what a clip keeps
#: over the narrowest line a user sends; fixed from the band alone, not tuned)
TELEPHONE_BAND = Bands((300, 3400), ((300, 1000), (1000, 3400)), ((300, 2000), (2000, 3400)),
                       ((300, 1000), (1000, 3000)), (300, 3400))

_STATS6 = ("mean", "std", "p20", "p50", "p80", "range2080")
FEATURE_NAMES: tuple[str, ...] = (
    *(f"loudness_{s}" for s in _STATS6), "loudness_rise_mean", "loudness_fall_mean",
    *(f"f0_semitone_{s}" for s in _STATS6), "f0_rise_mean", "f0_fall_mean",
    "hnr_mean", "hnr_std", "f0_delta_abs_mean", "loudness_delta_abs_voiced_mean",
    *(f"voiced_{m}_{s}" for m in ("alpha_ratio", "hammarberg", "slope0_500", "slope500_1500")
      for s in ("mean", "std")),
    *(f"unvoiced_{m}_mean" for m in ("alpha_ratio", "hammarberg", "slope0_500",
                                     "slope500_1500")),
    "flux_mean", "flux_std",
    *(f"mfcc{k}_{s}" for k in range(1, 5) for s in ("mean", "std")),
    "voiced_fraction", "voiced_segments_per_s", "voiced_segment_mean_s",
    "voiced_segment_std_s", "unvoiced_segment_mean_s",
)


def scipy_fft():
    """``scipy.fft`` (imported on first use: about 0.25 s, paid only by models that read
    these functionals; 4-5x faster than ``numpy.fft`` on these frame batches)."""
    import scipy.fft

    return scipy.fft


@functools.lru_cache(maxsize=8)
def _hann(length: int) -> np.ndarray:
    """The Hann window ``(L,)``, float32."""
    return np.hanning(length).astype(np.float32)


@functools.lru_cache(maxsize=8)
def _hann_ac(length: int, n_fft: int) -> np.ndarray:
    """The Hann window's own autocorrelation ``(L,)`` over lag, 1 at lag 0 (floored)."""
    win = np.hanning(length)
    ac = np.fft.irfft(np.abs(np.fft.rfft(win, n=n_fft)) ** 2)[:length]
    return np.maximum(ac / ac[0], _EPS).astype(np.float32)


def _frames(x: np.ndarray, sr: int) -> tuple[np.ndarray, int, int]:
    """Hann-windowed frames ``(T, L)`` (float32), the frame length ``L`` and the hop, in
    samples (strided views of ``x``, one copy: the windowed frames)."""
    length = int(round(_FRAME_S * sr))
    hop = int(round(_HOP_S * sr))
    view = np.lib.stride_tricks.sliding_window_view(x, length)[::hop]  # (T, L), no copy
    return view * _hann(length), length, hop


def _pitch(power: np.ndarray, length: int, n_fft: int, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """F0 (Hz) and the window-corrected autocorrelation peak ``r`` of each frame ``(N,)`` of
    ``power`` ``(N, F)``."""
    lo = int(np.floor(sr / _FMAX))
    hi = min(int(np.ceil(sr / _FMIN)), length // 2)
    ac = scipy_fft().irfft(power, n=n_fft, axis=1, workers=1)  # (T, n_fft)
    win_ac = _hann_ac(length, n_fft)
    norm0 = np.maximum(ac[:, :1], _EPS)
    seg = ac[:, lo:hi + 1] / norm0 / win_ac[lo:hi + 1]  # only the lags searched
    # the shortest lag whose local peak is within 10 % of the best: a periodic frame peaks at
    # every multiple of its period about equally, and the highest would be an octave too low
    peak = np.zeros_like(seg, dtype=bool)
    peak[:, 1:-1] = (seg[:, 1:-1] >= seg[:, :-2]) & (seg[:, 1:-1] >= seg[:, 2:])
    good = peak & (seg >= 0.9 * seg.max(1, keepdims=True))
    k = np.where(good.any(1), good.argmax(1), seg.argmax(1))
    r = np.clip(seg[np.arange(len(seg)), k], 0.0, 0.999)
    # parabolic interpolation of the lag around the peak
    left = seg[np.arange(len(seg)), np.maximum(k - 1, 0)]
    right = seg[np.arange(len(seg)), np.minimum(k + 1, seg.shape[1] - 1)]
    den = left - 2 * seg[np.arange(len(seg)), k] + right
    shift = np.where(np.abs(den) > _EPS, 0.5 * (left - right) / np.where(den == 0, 1, den), 0)
    lag = lo + k + np.clip(shift, -0.5, 0.5)
    return sr / np.maximum(lag, 1.0), r


def _stats6(v: np.ndarray) -> list[float]:
    if len(v) == 0:
        return [0.0] * 6
    p20, p50, p80 = np.percentile(v, [20, 50, 80])
    return [float(v.mean()), float(v.std()), float(p20), float(p50), float(p80), float(p80 - p20)]


def _mean_std(v: np.ndarray) -> list[float]:
    return [float(v.mean()), float(v.std())] if len(v) else [0.0, 0.0]


def _rise_fall(v: np.ndarray, mask: np.ndarray) -> list[float]:
    """Mean positive and mean negative step between consecutive frames both in ``mask``."""
    both = mask[1:] & mask[:-1]
    d = np.diff(v)[both]
    up, down = d[d > 0], d[d < 0]
    return [float(up.mean()) if len(up) else 0.0, float(-down.mean()) if len(down) else 0.0]


def _band_measures(power: np.ndarray, db: np.ndarray, freqs: np.ndarray,
                   b: Bands) -> np.ndarray:
    """Alpha ratio, Hammarberg index and the two spectral slopes of each frame, (T, 4), from
    its power spectrum and the same in dB, over the bands ``b``."""

    def band_db(lo: float, hi: float) -> np.ndarray:
        sel = (freqs >= lo) & (freqs < hi)
        return 10 * np.log10(power[:, sel].sum(1) + _EPS)

    def slope(lo: float, hi: float) -> np.ndarray:  # dB per kHz, least squares
        sel = (freqs >= lo) & (freqs <= hi)
        f = freqs[sel] / 1000.0
        fc = f - f.mean()
        return (db[:, sel] - db[:, sel].mean(1, keepdims=True)) @ fc / (fc @ fc)

    (l0, l1), (h0, h1) = b.hammarberg
    low, high = (freqs >= l0) & (freqs < l1), (freqs >= h0) & (freqs < h1)
    hammarberg = db[:, low].max(1) - db[:, high].max(1)
    return np.stack([band_db(*b.alpha[0]) - band_db(*b.alpha[1]), hammarberg,
                     slope(*b.slopes[0]), slope(*b.slopes[1])], axis=1)


@functools.lru_cache(maxsize=8)
def _mfcc_matrix(sr: int, n_fft: int, fmin: float = 0.0, fmax: float = 8000.0) -> np.ndarray:
    """The 26-band triangular mel filter bank over ``fmin``-``fmax`` Hz as ``(F, 26)``
    float32, for power spectra of ``n_fft`` points at ``sr`` (:data:`_DCT14` then gives
    MFCC 1-4)."""
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)

    def mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    edges_mel = np.linspace(mel(fmin), mel(min(sr / 2, fmax)), 28)
    edges = 700.0 * (10 ** (edges_mel / 2595.0) - 1.0)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    fb = np.clip(np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)), 0, None)
    return fb.T.astype(np.float32)  # (F, 26)


_DCT14 = np.cos(np.pi / 26 * (np.arange(26)[:, None] + 0.5) * np.arange(1, 5)[None, :])  # (26, 4)


def _mfcc14(power: np.ndarray, sr: int, n_fft: int, mel: tuple[float, float]) -> np.ndarray:
    """MFCC 1-4 of each frame from a 26-band triangular mel filter bank over ``mel`` Hz,
    (T, 4)."""
    return np.log(power @ _mfcc_matrix(sr, n_fft, *map(float, mel)) + _EPS) @ _DCT14


def run_lengths(flags: np.ndarray) -> np.ndarray:
    """Lengths (frames) of the runs of True in ``flags``."""
    padded = np.concatenate([[False], flags, [False]]).astype(np.int8)
    d = np.diff(padded)
    return np.flatnonzero(d == -1) - np.flatnonzero(d == 1)


def _timing(speech: np.ndarray, voiced: np.ndarray) -> list[float]:
    n_speech = int(speech.sum())
    if n_speech == 0:
        return [0.0] * 5
    vruns = run_lengths(voiced) * _HOP_S
    uruns = run_lengths(speech & ~voiced) * _HOP_S
    return [float(voiced.sum() / n_speech), float(len(vruns) / (n_speech * _HOP_S)),
            *(_mean_std(vruns)), float(uruns.mean()) if len(uruns) else 0.0]


def prosody_band(wave: np.ndarray, sr: int) -> np.ndarray:
    """:func:`prosody` with every spectral computation restricted to the telephone band,
    300-3400 Hz (:data:`TELEPHONE_BAND`): the same 47 names, what a clip keeps over a phone
    line, so that a model trained on studio clips reads a phone call's the same way."""
    return _prosody(wave, sr, TELEPHONE_BAND)


#: the columns of :func:`prosody` that a 300-3400 Hz band-pass moves by at most 2 clean
#: standard deviations over RAVDESS + EMOVO's 2,028 clips (``bench/feature_shift.py --limit
#: 2.0``; the six left out moved by 2.2-6.7)
ROBUST_NAMES: tuple[str, ...] = tuple(n for n in FEATURE_NAMES if n not in (
    "mfcc1_mean", "mfcc2_mean", "mfcc3_mean", "mfcc4_mean",
    "voiced_slope0_500_mean", "unvoiced_slope0_500_mean"))
#: their positions in :data:`FEATURE_NAMES`
ROBUST_COLUMNS: tuple[int, ...] = tuple(FEATURE_NAMES.index(n) for n in ROBUST_NAMES)


def prosody_robust(wave: np.ndarray, sr: int) -> np.ndarray:
    """:func:`prosody` without the columns a telephone line moves most: ``(41,)`` float32
    in the order of :data:`ROBUST_NAMES`."""
    return prosody(wave, sr)[list(ROBUST_COLUMNS)]


def prosody(wave: np.ndarray, sr: int) -> np.ndarray:
    """eGeMAPS-like functionals of one utterance (see the module docstring).

    Args:
        wave: mono (or multi-channel: averaged) waveform, float, any level.
        sr: sampling rate in Hz (>= 10 kHz for the 1-5 kHz bands to exist).

    Returns:
        float32 array ``(47,)`` in the order of :data:`FEATURE_NAMES`. Loudness is in dB
        relative to the utterance's loud frames, pitch in semitones re 27.5 Hz, HNR in dB,
        spectral balance in dB and dB/kHz, durations in seconds. Scaling ``wave`` by any
        positive factor leaves the result unchanged (up to float rounding).
    """
    return _prosody(wave, sr, FULL_BAND)


@dataclass(frozen=True)
class Analysis:
    """The frame-level analysis behind the functionals, for measures built on it
    (:mod:`emovox.features.voice_quality`). ``T`` frames of ``length`` samples every ``hop``.

    Attributes:
        x: the mono float32 wave ``(n,)`` (padded to one frame at least).
        sr: its rate (Hz).
        length, hop: frame length and hop (samples).
        n_fft: FFT size of ``power`` (zero-padded past frame + longest pitch period).
        power: power spectra of the Hann-windowed frames ``(T, n_fft // 2 + 1)``.
        freqs: their bin frequencies (Hz).
        loud: frame energy in dB relative to the utterance's 95th percentile ``(T,)``.
        speech, voiced: frame masks ``(T,)``.
        f0: pitch (Hz) of each frame ``(T,)`` (meaningful on voiced frames).
        r: its window-corrected autocorrelation peak ``(T,)``.
    """

    x: np.ndarray
    sr: int
    length: int
    hop: int
    n_fft: int
    power: np.ndarray
    freqs: np.ndarray
    loud: np.ndarray
    speech: np.ndarray
    voiced: np.ndarray
    f0: np.ndarray
    r: np.ndarray


def analyse(wave: np.ndarray, sr: int, b: Bands = FULL_BAND) -> Analysis:
    """Frame, transform and voice ``wave`` as :func:`prosody` does (see the module
    docstring); ``b.limit`` zeroes the power outside that band first."""
    x = as_mono_padded(wave, int(round(_FRAME_S * sr)))  # float32
    frames, length, hop = _frames(x, sr)
    # zero-padding past frame + longest lag: the autocorrelation does not wrap around
    n_fft = 1 << int(np.ceil(np.log2(length + np.ceil(sr / _FMIN))))
    z = scipy_fft().rfft(frames, n=n_fft, axis=1, workers=1)
    power = z.real ** 2 + z.imag ** 2  # (T, F)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    if b.limit is not None:
        power[:, (freqs < b.limit[0]) | (freqs > b.limit[1])] = 0.0
    energy_db = 10 * np.log10(power.sum(1) + _EPS)
    loud = energy_db - np.percentile(energy_db, 95)
    speech = loud >= -SPEECH_RANGE_DB
    f0, r = np.full(len(power), _FMIN), np.zeros(len(power))
    f0[speech], r[speech] = _pitch(power[speech], length, n_fft, sr)  # only speech is read
    voiced = speech & (r >= VOICED_R)
    return Analysis(x, sr, length, hop, n_fft, power, freqs, loud, speech, voiced, f0, r)


def _prosody(wave: np.ndarray, sr: int, b: Bands) -> np.ndarray:
    return functionals(analyse(wave, sr, b), b)


def functionals(a: Analysis, b: Bands = FULL_BAND) -> np.ndarray:
    """The 47 functionals (:data:`FEATURE_NAMES`) of an :func:`analyse` result."""
    power, freqs, loud, speech, voiced = a.power, a.freqs, a.loud, a.speech, a.voiced
    semitone = 12 * np.log2(a.f0 / 27.5)
    hnr = 10 * np.log10(a.r / (1 - a.r) + _EPS)
    # a floor relative to each frame's energy (an absolute one would make gain matter)
    db = 10 * np.log10(power + _EPS * power.sum(1, keepdims=True) + 1e-30)
    bands = _band_measures(power, db, freqs, b)
    spec = power / (power.sum(1, keepdims=True) + _EPS)
    flux = np.concatenate([[0.0], np.sqrt((np.diff(spec, axis=0) ** 2).sum(1))])
    mf = _mfcc14(power, a.sr, a.n_fft, b.mel)
    unvoiced = speech & ~voiced
    out = [*_stats6(loud[speech]), *_rise_fall(loud, speech),
           *_stats6(semitone[voiced]), *_rise_fall(semitone, voiced),
           *_mean_std(hnr[voiced]),
           float(np.abs(np.diff(semitone)[voiced[1:] & voiced[:-1]]).mean())
           if (voiced[1:] & voiced[:-1]).any() else 0.0,
           float(np.abs(np.diff(loud)[voiced[1:] & voiced[:-1]]).mean())
           if (voiced[1:] & voiced[:-1]).any() else 0.0]
    for j in range(4):
        out += _mean_std(bands[voiced, j])
    out += [float(bands[unvoiced, j].mean()) if unvoiced.any() else 0.0 for j in range(4)]
    out += _mean_std(flux[speech])
    for j in range(4):
        out += _mean_std(mf[voiced, j])
    out += _timing(speech, voiced)
    return finite_float32(np.asarray(out), "prosody")
