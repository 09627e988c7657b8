"""Which stretches of what the speech detector calls speech hold their spectrum still, as a
beep, a phone tone or a gated square wave does and no voice does?

The speech detector (:mod:`emovox.features.vad`) finds speech by level and voicing. A beep,
a telephone tone (busy signal, ring-back, DTMF digits) or a square wave switched on and off
rises above its own floor and is periodic, so level and voicing alone call it speech. What no
voice does is hold its spectrum still: even a sustained sung vowel moves its harmonics with
its pitch from one 50 ms to the next. :func:`steady_frames` marks, among the frames flagged
as speech, those whose magnitude spectrum (25 ms, Hann window) is at least :data:`SIMILAR`
alike (cosine) to a flagged frame :data:`LAGS_S` before or after it, in runs of at least
:data:`MIN_RUN_S`. :func:`without_steady` takes them out of the speech flags, so that a tone
before, between or after speech is left out and the speech around it stays, and a recording
of tones alone has no speech left (``steady_sound``).

Frame by frame, at several lags: the first version (stop 29) judged a whole input by the
share of its unchanged frames, which silenced calls that start with ringing; the second, at
one lag with 0.1 s runs, dropped speech beside short unchanged stretches and missed ringing
whose beat does not divide 50 ms (QA re-checks the same day).

Measured (README, "Beeps and phone tones"): 21 of the QA's 24 tone files are left without
speech; every real clip stays speech (RAVDESS 8 of 1440 clips and the song set 7 of 1009
lose a held stretch of at most 0.54 s; EMOVO and URDU none). The settings were chosen on the
QA's files, built from RAVDESS actors and sung clips: the corpus figures are a check of that
choice, not an untouched test (tests/integration/test_speech_real.py).

Pure NumPy; one FFT (25 ms) per speech frame, about 0.5 ms for a 3-4 s clip
(``bench/stages.py``; the detector's frames centred once for it, the level and the tonality);
memory bounded by chunks of :data:`_CHUNK` frames.
"""

from __future__ import annotations

import numpy as np

from emovox.features.frames import CentredFrames, bridge_runs, hann, true_runs

__all__ = ["BETWEEN_S", "EDGE_S", "FRAME_S", "LAGS_S", "MIN_RUN_S", "SIMILAR",
           "TONE_GAP_RAW_SHARE", "steady_frames", "without_steady", "without_tone_gaps"]

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
#: ... and a piece with a steady run on both sides when shorter than this (s): the pause
#: inside a UK ring's cadence (0.4 s on, 0.2 s off, 0.4 s on), bridged by the detector
BETWEEN_S: float = 0.25
_HOP_S = 0.010
_CHUNK = 512


def _unit_spectra(x: np.ndarray, frames: np.ndarray, hop: int, frame: int,
                  win: np.ndarray, centred: CentredFrames | None) -> np.ndarray:
    """``(k, frame // 2 + 1)`` magnitude spectra of ``frames`` scaled to unit norm (zeros
    for a silent frame); ``centred``: the wave's centred frames at this frame and hop."""
    if centred is not None:
        f = centred.rows(frames)
    else:
        f = x[frames[:, None] * hop + np.arange(frame)[None, :]].astype(np.float64)
        f -= f.mean(axis=1, keepdims=True)
    mag = np.abs(np.fft.rfft(f * win, axis=1))
    norm = np.linalg.norm(mag, axis=1, keepdims=True)
    return mag / np.where(norm > 0, norm, np.inf)


def steady_frames(wave: np.ndarray, sr: int, flags: np.ndarray,
                  centred: CentredFrames | None = None) -> np.ndarray:
    """Per-frame (10 ms hop) ``(len(flags),)`` bool: the ``flags`` frames whose spectrum is
    unchanged at one of :data:`LAGS_S` before or after, in runs of at least
    :data:`MIN_RUN_S`.

    Args:
        wave: ``(n_samples,)`` float, mono.
        sr: sample rate (Hz).
        flags: ``(n_frames,)`` bool speech flags of ``wave`` at a 10 ms hop.
        centred: ``wave``'s centred frames (:class:`~emovox.features.frames.CentredFrames`)
            when the caller has them (used when their frame and hop are these).
    """
    x = np.asarray(wave, dtype=np.float32).ravel()
    hop, frame = max(1, int(round(_HOP_S * sr))), max(2, int(round(FRAME_S * sr)))
    lags = sorted({max(1, int(round(t / _HOP_S))) for t in LAGS_S})
    ok = np.asarray(flags, dtype=bool).copy()
    ok[max(0, (len(x) - frame) // hop + 1) :] = False  # only frames that fit in the wave
    out = np.zeros(len(ok), dtype=bool)
    win, reach = hann(frame), max(lags)
    if centred is not None and (centred.frame, centred.hop) != (frame, hop):
        centred = None
    for s, e in true_runs(ok):
        for c0 in range(s, e, _CHUNK):  # contiguous speech, a chunk (+ the lags) at a time
            c1 = min(e, c0 + _CHUNK + reach)
            spec = _unit_spectra(x, np.arange(c0, c1), hop, frame, win, centred)  # once each
            for lag in lags:
                if c1 - c0 <= lag:
                    break
                sim = np.einsum("ij,ij->i", spec[:-lag], spec[lag:])
                pos = c0 + np.flatnonzero(sim >= SIMILAR)
                out[pos] = True  # unchanged some lag after ...
                out[pos + lag] = True  # ... and before
    return bridge_runs(out, 0, max(1, int(round(MIN_RUN_S / _HOP_S))))


def without_steady(wave: np.ndarray, sr: int, flags: np.ndarray, min_run: int,
                   centred: CentredFrames | None = None) -> tuple[np.ndarray, int]:
    """``(flags without their steady frames, number of steady frames taken out)``. Of what
    remains, pieces shorter than ``min_run`` frames are dropped, and so are pieces shorter
    than :data:`EDGE_S` within :data:`EDGE_S` of a steady run: a beep's onset and decay,
    and the silence between touch-tone digits bridged by the detector, are not speech.
    ``centred``: as :func:`steady_frames`."""
    steady = steady_frames(wave, sr, flags, centred)
    n = int(np.count_nonzero(steady))
    if n == 0:
        return flags, 0
    edge = max(1, int(round(EDGE_S / _HOP_S)))
    between = max(1, int(round(BETWEEN_S / _HOP_S)))
    out = bridge_runs(flags & ~steady, 0, min_run)
    for a, b in true_runs(out):
        before, after = steady[max(0, a - edge) : a].any(), steady[b : b + edge].any()
        if (b - a < edge and (before or after)) or (b - a < between and before and after):
            out[a:b] = False  # a beep's edges; the pause inside a ring's cadence
    return out, n


#: a stretch of smoothed speech flags beside a pure tone is a beep's gap when fewer than
#: this share of its frames are speech by themselves (the rest bridged by smoothing)
TONE_GAP_RAW_SHARE = 0.5


def without_tone_gaps(flags: np.ndarray, raw: np.ndarray, tone: np.ndarray,
                      min_run: int, bridge: int) -> np.ndarray:
    """Smoothed speech ``flags`` without what smoothing made of pure-tone beeps: a stretch
    of ``flags`` beside a run of ``tone`` frames (``min_run`` frames or longer: a
    beep's body, not a voice's frame or two), no longer than a gap smoothing bridges
    (``bridge`` frames) with a beep's edge each side, whose own ``raw`` flags cover under
    :data:`TONE_GAP_RAW_SHARE` of it is the silence between beeps bridged from their
    edges, one shorter than ``min_run`` frames a beep's edge, and a tone run beside
    no stretch kept goes too (a caller's sentence after a voicemail beep is longer, and
    stays: a first version dropped it, a review of the fix). Beeps with gaps under 0.2 s were
    speech ("ok sad" for 2 kHz beeps 0.1 s on, 0.1 s off): their tonal bodies are not
    flagged, so no steady run was found (code review, stop 47). A sung note's tonal frames
    stay: the voice around them is speech by itself. All ``(n_frames,)`` bool."""
    n, out, blip = len(flags), flags.copy(), min_run
    tone = bridge_runs(np.asarray(tone, bool), 0, blip)  # a beep's body, not a frame or two
    if not tone.any():
        return flags

    def beside(a: int, b: int, marks: np.ndarray) -> bool:
        return (a > 0 and bool(marks[a - 1])) or (b < n and bool(marks[b]))

    for a, b in true_runs(flags & ~tone):
        if beside(a, b, tone) and (b - a < blip or (
                b - a <= bridge + 2 * blip
                and np.count_nonzero(raw[a:b]) < TONE_GAP_RAW_SHARE * (b - a))):
            out[a:b] = False
    kept = out & ~tone
    for a, b in true_runs(tone & flags):  # bridged into speech by smoothing
        if not beside(a, b, kept):
            out[a:b] = False
    return out
