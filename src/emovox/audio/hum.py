"""Mains hum: find steady lines at the mains frequency (50 or 60 Hz) or twice it, and say so.

A ground loop, a cheap sound card or a mains-powered lamp near the cable adds a hum at the
mains frequency and its harmonics. It carries no voice, but it fills the lowest mel bands
the networks read and the floor the speech detector measures from: a 50 Hz hum 20 dB under
a clip's level changed 30 of 72 answers of the bundled model, 30 dB under it 6 (QA, stop 30).
Removing it changes the audio the models were trained on, and three removal rules failed
their false-alarm checks (README, known limits), so emovox only **warns**
(:func:`hum_note`, in an answer's ``warnings``): the answer itself is never changed.

Detection (:func:`detect_hum`): the power spectrum of up to :data:`MAX_FRAMES` Hann frames of
1 s (1 Hz bins) every 0.25 s, spread over the wave; its median over frames keeps what is
there most of the time (hum) and drops what comes and goes (speech, whose pitch also
moves). A line at ``k * F`` (``F`` 50 or 60 Hz, ``k * F <= 1 kHz``, searched in the 1 Hz
bins around +-1 % and refined between them: in effect 48.5-51.5 Hz for 50 Hz) counts
when that median is :data:`PROMINENCE_DB` over the median of its neighbours 4-12 Hz away
and, in at least 2/3 of the frames themselves, the line stands :data:`FRAME_DB` over its
neighbours at its own frequency (within :data:`DRIFT_HZ`): speech harmonics come and
go, a held sung note drifts. A hum needs a counted line at ``F`` or ``2 F``, and its lines
together within :data:`RELEVANT_DB` of the wave's power. Waves under 1.5 s are not
examined; the wave is analysed resampled to 4 kHz. Measured (stop 32; ``bench/hum.py``): it
fires on 0 of 1,440 RAVDESS speech clips, 0 of 1,009 RAVDESS song clips, 1 of 588 EMOVO
clips (a held 101 Hz pitch; those sets shaped the rule), 12 of 300 synthetic held sung
notes within 1 % of a mains harmonic (a fresh check set: low notes at 100-120 Hz whose
pitch held still), and on 64 of URDU's 400 talk-show clips (Pakistan's mains is 50 Hz).
Cost: 0.7-0.75 ms for a 3-4 s clip (median; 1.0 before the medians were taken by a sort:
``bench/stages.py``, one core busy).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from emovox.audio.signal import resample

__all__ = ["MAINS_HZ", "WARN_DB", "Hum", "detect_hum", "hum_note"]

#: Mains frequencies (Hz) looked for.
MAINS_HZ: tuple[float, ...] = (50.0, 60.0)
#: Highest harmonic frequency (Hz) looked at; hum above it is rare and weak, speech strong.
MAX_LINE_HZ: float = 1000.0
#: A line is searched within this share of its nominal frequency (mains drift, resampling).
TOLERANCE: float = 0.01
#: A line counts when its median power is this far over its neighbours' (dB).
PROMINENCE_DB: float = 12.0
#: Neighbours of a line: bins this far from it (Hz), on both sides.
NEIGHBOURS_HZ: tuple[float, float] = (4.0, 12.0)
#: The counted lines must hold at least the wave's mean power minus this (dB) to count.
RELEVANT_DB: float = 45.0
#: Detection frame (s): 1 Hz resolution.
FRAME_S: float = 1.0
#: Hop between detection frames (s).
HOP_S: float = 0.25
#: Shorter waves (s) are not examined: fewer than three frames cannot tell a hum from a
#: held vowel.
MIN_S: float = 1.5
#: A line must stand this far over its neighbours (dB) in a frame to be there ...
FRAME_DB: float = 6.0
#: ... and be there in at least this share of the frames.
STEADY_SHARE: float = 2 / 3
#: ... at its own frequency within this much (Hz) in those frames: a mains line holds to
#: a few hundredths of a hertz; a held sung note drifts and wanders by more.
DRIFT_HZ: float = 0.25
#: A hum has a counted line at the mains frequency or its second harmonic (ground loops
#: and rectifiers put their energy there; a lone line at 150-240 Hz was a voice's).
LOW_HARMONICS: int = 2
#: At most this many detection frames, spread evenly over the wave (bounded cost).
MAX_FRAMES: int = 64
#: The wave is looked at at this rate (Hz), resampled with soxr when it is higher.
ANALYSIS_SR: int = 4000
#: A hum at least this loud (dB re the audio's mean power) is said in the answer's warnings.
WARN_DB: float = -30.0


@dataclass(frozen=True)
class Hum:
    """Mains hum found in a wave: its mains frequency and its counted lines."""

    #: 50.0 or 60.0
    mains_hz: float
    #: the counted lines' frequencies (Hz), refined between bins
    lines_hz: tuple[float, ...]
    #: the lines' power relative to the wave's mean power (dB; 0 = as loud as the wave)
    level_db: float


@functools.lru_cache(maxsize=4)
def _hann(frame: int) -> tuple[np.ndarray, float]:
    """``(np.hanning(frame) as float32, the float64 window's sum)``, computed once per
    length (read-only): 0.1 ms a clip rebuilt them twice."""
    w = np.hanning(frame)
    w32 = w.astype(np.float32)
    w32.flags.writeable = False  # a view of it cannot be made writeable again (review, 55)
    return w32[:], float(w.sum())


def _spectra(wave: np.ndarray, sr: int, top_hz: float) -> tuple[np.ndarray, float]:
    """``(power per frame and bin up to top_hz (n_frames, n_bins), bin width in Hz)``."""
    frame = int(round(FRAME_S * sr))
    n = len(wave)
    n_frames = min(MAX_FRAMES, 1 + (n - frame) // max(1, int(round(HOP_S * sr))))
    starts = np.linspace(0, n - frame, n_frames).round().astype(np.int64)
    bin_hz = sr / frame
    n_bins = min(frame // 2 + 1, int(top_hz / bin_hz) + 2)
    window = _hann(frame)[0]
    # at most MAX_FRAMES x 1 s at ANALYSIS_SR: 1 MB, whatever the wave's length
    frames = wave[starts[:, None] + np.arange(frame)] * window  # (F, frame)
    spec = np.fft.rfft(frames, axis=1)[:, :n_bins]
    return spec.real.astype(np.float64) ** 2 + spec.imag.astype(np.float64) ** 2, bin_hz


def _median(a: np.ndarray, axis: int = -1) -> np.ndarray:
    """``np.median(a, axis=axis)``, the same numbers, by a sort: ``np.median``'s own
    overhead was 15-70 us a call, 4-9 calls a clip (a third of the check)."""
    s = np.sort(a, axis=axis)
    n = s.shape[axis]
    if n == 0 or np.isnan(np.take(s, -1, axis=axis)).any():
        return np.median(a, axis=axis)  # NaN sorts last: np.median's answer is NaN
    if n % 2:  # the middle one itself: (a + a) / 2 overflowed near the float64 limit
        return np.take(s, n // 2, axis=axis)  # (a review, stop 55)
    return (np.take(s, n // 2 - 1, axis=axis) + np.take(s, n // 2, axis=axis)) / 2


def _ring(spec: np.ndarray, p: int, bin_hz: float) -> np.ndarray:
    """The neighbours of bin ``p`` (:data:`NEIGHBOURS_HZ` away) along the last axis."""
    near = int(np.ceil(NEIGHBOURS_HZ[0] / bin_hz - 1e-9))
    far = int(np.floor(NEIGHBOURS_HZ[1] / bin_hz + 1e-9))
    return np.concatenate([spec[..., max(0, p - far):max(0, p - near + 1)],
                           spec[..., p + near:p + far + 1]], axis=-1)


def _frame_peaks(power: np.ndarray, p: int, bin_hz: float) -> np.ndarray:
    """Per frame, the refined frequency (Hz) of the highest of bins ``p - 1 .. p + 1``
    (parabola through the log power of that bin and its two neighbours): ``(n_frames,)``."""
    logp = np.log(power[:, p - 2:p + 3] + 1e-30)  # (F, 5)
    j = 1 + np.argmax(logp[:, 1:4], axis=1)  # (F,) in 1..3
    rows = np.arange(len(logp))
    a, b, c = logp[rows, j - 1], logp[rows, j], logp[rows, j + 1]
    den = a - 2 * b + c
    delta = np.where(den < 0, 0.5 * (a - c) / np.where(den < 0, den, -1.0), 0.0)
    return (p - 2 + j + delta) * bin_hz


def _steady(power: np.ndarray, p: int, bin_hz: float, freq: float) -> bool:
    """Is the line at bin ``p`` (refined frequency ``freq``) there in at least
    :data:`STEADY_SHARE` of the frames: :data:`FRAME_DB` over its neighbours, and at its own
    frequency within :data:`DRIFT_HZ`? (Speech harmonics come and go, and are absent from the
    pauses; a held sung note stays but its pitch wanders by more; a hum stays, steady.)"""
    if p < 2 or p + 3 > power.shape[1]:
        return False
    line = power[:, p - 1:p + 2].max(axis=1)
    ref = _median(_ring(power, p, bin_hz), axis=1)
    there = line >= ref * 10 ** (FRAME_DB / 10)
    still = np.abs(_frame_peaks(power, p, bin_hz) - freq) <= DRIFT_HZ
    return bool((there & still).mean() >= STEADY_SHARE)


def _line(med: np.ndarray, bin_hz: float, nominal: float) -> tuple[float, int, float, float]:
    """``(prominence dB, peak bin, refined frequency Hz, line power)`` of the line near
    ``nominal`` in the median spectrum ``med``."""
    lo = max(1, int(np.floor(nominal * (1 - TOLERANCE) / bin_hz)))
    hi = min(len(med) - 2, int(np.ceil(nominal * (1 + TOLERANCE) / bin_hz)))
    if hi < lo:
        return -np.inf, 0, nominal, 0.0
    p = lo + int(np.argmax(med[lo:hi + 1]))
    if med[p] < med[p - 1] or med[p] < med[p + 1] or med[p] <= 0:
        return -np.inf, p, nominal, 0.0  # not a peak: the band's slope
    ring = _ring(med, p, bin_hz)
    ref = float(_median(ring)) if ring.size else 0.0
    prom = np.inf if ref <= 0 else 10 * np.log10(med[p] / ref)
    a, b, c = np.log(med[p - 1:p + 2] + 1e-30)
    den = a - 2 * b + c
    delta = 0.5 * (a - c) / den if den < 0 else 0.0
    # the three bins hold about 1.5x a Hann-windowed sinusoid's power (1 + 2 * 0.25)
    return float(prom), p, float((p + delta) * bin_hz), float(med[p - 1:p + 2].sum() / 1.5)


def _best_mains(power: np.ndarray, bin_hz: float, frame: int
                ) -> tuple[Hum, float] | None:
    """The mains frequency whose counted lines hold the most power, with that power (full
    scale 1.0), or None when neither has a counted line at ``F`` or ``2 F``."""
    med = _median(power, axis=0)
    # a sinusoid of power P (amplitude^2 / 2) gives sum(window)^2 * P / 2 at its bin
    scale = _hann(frame)[1] ** 2 / 2
    best: tuple[Hum, float] | None = None
    for mains in MAINS_HZ:
        lines: list[float] = []
        total = 0.0
        for k in range(1, int(MAX_LINE_HZ // mains) + 1):
            if k > LOW_HARMONICS and not lines:
                break  # no line at F or 2 F: no hum at this mains frequency (the usual case)
            prom, b, f, p = _line(med, bin_hz, k * mains)
            if prom >= PROMINENCE_DB and _steady(power, b, bin_hz, f):
                lines.append(f)
                total += p / scale
        if lines and (best is None or total > best[1]):
            best = Hum(mains, tuple(lines), 0.0), total
    return best


def _mean_power(x: np.ndarray, block: int = 1 << 16) -> float:
    """Mean of ``x ** 2`` in float64, a block at a time (no whole-wave float64 copy: a long
    48 kHz wave is decoded with a few MB to spare)."""
    total = 0.0
    for a in range(0, len(x), block):
        b = x[a:a + block].astype(np.float64)
        total += float(np.einsum("i,i->", b, b))  # not b @ b: no BLAS threads
    return total / max(1, len(x))


def detect_hum(wave: np.ndarray, sr: int) -> Hum | None:
    """The mains hum in ``wave`` (``(n,)`` float, full scale 1.0, ``sr`` Hz), or None.

    None for waves shorter than :data:`MIN_S`, rates under 4 kHz, or no hum (see the
    module's docstring for the test).
    """
    x = np.asarray(wave)
    if x.ndim != 1 or sr < 4000 or len(x) < int(round(MIN_S * sr)):
        return None
    mean_power = _mean_power(x)
    if sr > ANALYSIS_SR:  # only what lies under 1 kHz is looked at: 4x fewer FFT points
        x, sr = resample(x, sr, ANALYSIS_SR), ANALYSIS_SR
    top = MAX_LINE_HZ * (1 + TOLERANCE) + NEIGHBOURS_HZ[1] + 2
    power, bin_hz = _spectra(x, sr, top)
    found = _best_mains(power, bin_hz, int(round(FRAME_S * sr)))
    if found is None:
        return None
    best, best_power = found
    level_db = 10 * np.log10(best_power / mean_power) if mean_power > 0 else 0.0
    if level_db < -RELEVANT_DB:
        return None
    return Hum(best.mains_hz, best.lines_hz, round(float(level_db), 1))


def hum_note(name: str, wave: np.ndarray, sr: int) -> str | None:
    """The warning for ``wave``'s mains hum (:func:`detect_hum`) when it is at least
    :data:`WARN_DB` loud, else None. ``name``: the file's name, for the message."""
    hum = detect_hum(wave, sr)
    if hum is None or hum.level_db < WARN_DB:
        return None
    under = round(-hum.level_db)
    level = f"{under} dB under the audio's level" if under > 0 else "as loud as the audio itself"
    return (f"{name}: mains hum at {hum.mains_hz:g} Hz, {level}: answers may be affected (a "
            "hum 20 dB under the speech changed 30 of 72 answers in our tests). Check the "
            "recording's cables and power supply.")
