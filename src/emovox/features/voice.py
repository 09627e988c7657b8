"""Speech found by its pitch where its level does not rise above the noise.

The speech detector (:mod:`emovox.features.vad`) flags frames that rise ``margin_db`` (10 dB)
above the recording's own noise floor. Speech under loud noise does not: at 0 dB SNR (noise
as loud as the voice) its frames rise 1-3 dB, and the detector found speech in 3 of 136
clips under white noise (``bench/speech_in_noise.py``). Lowering the margin was tried (stop
40) and reverted: a car interior, wind gusts and a fan swell by as much as a voice does.

What noise does not do is carry a voice's pitch. :func:`voice_frames` marks the frames of
**pitch runs**: consecutive frames that are voiced (the detector's autocorrelation measure,
``voicing`` >= :attr:`~emovox.features.vad.VadParams.voicing`), not a pure tone, and whose
pitch moves smoothly (less than :data:`PITCH_STEP` per 10 ms), for a syllable's length
(:data:`MIN_RUN_S` to :data:`MAX_RUN_S`), moving by at least :data:`MIN_MOVE` over the run
(a held note, an engine or a fan's blade tone do not), and ending or starting at an
unvoiced frame (a siren's glide only breaks where its pitch tracking jumps, a note where the
input is cut). A voice says several such syllables close together: only runs in **groups**
of at least :data:`GROUP_RUNS` syllables (runs apart by an unvoiced frame), each within
:data:`GROUP_GAP_S` of the next, with :data:`GROUP_VOICED_S` of run frames in all, count,
and only when their pitch spreads by :data:`MIN_SPREAD` over the input (a machine's tone
tracked under noise wobbles around one pitch). Only frames :data:`VOICE_MARGIN_DB` above
the noise floor are measured (steady noise sits on its floor).

:func:`scan_voicing` measures the voicing of a recording's speech frames in time order and
says whether a stretch of them moves its pitch (:func:`moves_pitch`): speech whose frames
are voiced throughout with none moving holds its notes (bells, plucked strings), and speech
barely voiced with none moving is noise that swells (:class:`VoicingScan`).

Settings were chosen on the QA's noise and music files and the speech-in-noise bench (every
18th clip of RAVDESS speech, EMOVO and URDU): checks of that choice, not untouched tests.
Measured in the README ("What an answer says"). Pure NumPy; one 1024-point FFT per measured
frame (about 1.8 ms per second of audio when every frame is measured).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emovox.features.frames import FrameSizes, frame_pitch, frame_tonality

__all__ = ["GROUP_GAP_S", "GROUP_RUNS", "GROUP_VOICED_S", "HELD_VOICED_SHARE", "MAX_RUN_S",
           "MIN_MOVE", "MIN_RUN_S", "MIN_SPREAD", "PITCH_STEP", "UNVOICED_SHARE",
           "VOICE_MARGIN_DB", "VoicingScan", "moves_pitch", "pitch_runs", "pitch_track",
           "scan_voicing", "voice_frames"]

#: frames measured: at least this far (dB) above the noise floor
VOICE_MARGIN_DB: float = 1.5
#: largest change of ln(F0) from one 10 ms frame to the next within one run (about 6 %)
PITCH_STEP: float = 0.06
#: a run lasts from this to this (s): a syllable's voiced part
MIN_RUN_S: float = 0.05
MAX_RUN_S: float = 0.8
#: ... and its ln(F0) spans at least this much (3 %): held notes and machines do not move
MIN_MOVE: float = 0.03
#: the grouped runs' pitch must spread this much over the input (ln F0, 10th to 90th
#: percentile, about 10 %): a voice's syllables sit at different pitches, while a fan's
#: blade tone or a compressor, tracked under noise, wobbles by a few percent around one
#: (QA re-check, stop 41: they gave runs under a fan or in pink noise)
MIN_SPREAD: float = 0.1
#: runs closer than this (s) form a group; a group needs this many runs and voiced seconds
GROUP_GAP_S: float = 0.5
GROUP_RUNS: int = 2
GROUP_VOICED_S: float = 0.15


def pitch_runs(voiced: np.ndarray, f0: np.ndarray, hop_s: float) -> np.ndarray:
    """``(k, 2)`` int64 ``[start, end)`` frame ranges of the pitch runs kept: ``voiced``
    ``(n,)`` bool frames, ``f0`` ``(n,)`` Hz (read where voiced), 10 ms frames of ``hop_s``.
    """
    n = len(voiced)
    if n == 0 or not voiced.any():
        return np.zeros((0, 2), np.int64)
    lf, starts, ends = _stretches(voiced, f0)
    length = ends - starts
    ok = (length >= max(1, round(MIN_RUN_S / hop_s))) & (length <= round(MAX_RUN_S / hop_s))
    starts, ends = starts[ok], ends[ok]
    if len(starts) == 0:
        return np.zeros((0, 2), np.int64)
    move = _moves(lf, starts, ends)
    # an unvoiced frame next to it, not the edge of the input (a clip cut in a note)
    bounded = ((starts > 0) & ~voiced[np.maximum(starts - 1, 0)]) | \
        ((ends < n) & ~voiced[np.minimum(ends, n - 1)])
    keep = (move >= MIN_MOVE) & bounded
    return np.stack([starts[keep], ends[keep]], axis=1).astype(np.int64)


def _grouped(runs: np.ndarray, voiced: np.ndarray, hop_s: float) -> np.ndarray:
    """The runs (``(k, 2)`` frame ranges, in order) that belong to a group: runs closer
    than :data:`GROUP_GAP_S`, at least :data:`GROUP_RUNS` syllables (runs with an unvoiced
    frame between them: one syllable split by a pitch jump is one) and
    :data:`GROUP_VOICED_S` of run frames."""
    if len(runs) == 0:
        return runs
    new = np.ones(len(runs), bool)
    new[1:] = runs[1:, 0] - runs[:-1, 1] >= round(GROUP_GAP_S / hop_s)
    gid = np.cumsum(new) - 1
    unvoiced = np.concatenate([[0], np.cumsum(~voiced)])  # unvoiced frames before each index
    apart = np.ones(len(runs), bool)
    apart[1:] = unvoiced[runs[1:, 0]] > unvoiced[runs[:-1, 1]]
    apart |= new  # a group's first run is its first syllable
    syllables = np.bincount(gid, weights=apart)
    frames = np.bincount(gid, weights=runs[:, 1] - runs[:, 0])
    good = (syllables >= GROUP_RUNS) & (frames * hop_s >= GROUP_VOICED_S - 1e-9)
    return runs[good[gid]]


def voice_frames(wave: np.ndarray, sr: int, level_db: np.ndarray, floor_db: float,
                 *, z: FrameSizes, voicing: float, tonal: float, hop_s: float,
                 least_db: float = -np.inf) -> np.ndarray:
    """``(len(level_db),)`` bool: the frames of ``wave`` (mono float at ``sr`` Hz, frames
    of :class:`~emovox.features.frames.FrameSizes` ``z``) in grouped pitch runs.

    Args:
        level_db: the frames' levels (dBFS).
        floor_db: the noise floor (dB); only frames :data:`VOICE_MARGIN_DB` above it, and
            above ``least_db``, are measured.
        voicing: autocorrelation peak from which a frame is voiced.
        tonal: tonality from which a frame is a pure tone (never voice).
    """
    n = len(level_db)
    out = np.zeros(n, bool)
    measured = np.isfinite(level_db) & (level_db > max(floor_db + VOICE_MARGIN_DB, least_db))
    voiced, f0 = pitch_track(wave, sr, np.flatnonzero(measured), n, z=z, voicing=voicing,
                             tonal=tonal)
    for a, b in _grouped(pitch_runs(voiced, f0, hop_s), voiced, hop_s):
        out[a:b] = True
    if out.any() and np.subtract(*np.percentile(np.log(f0[out]), [90, 10])) < MIN_SPREAD:
        out[:] = False  # one pitch throughout, wobbling: a fan's or a machine's tone
    return out


def pitch_track(wave: np.ndarray, sr: int, frames: np.ndarray, n: int, *, z: FrameSizes,
                voicing: float, tonal: float) -> tuple[np.ndarray, np.ndarray]:
    """``(voiced, f0)``, each ``(n,)``: which of the ``frames`` (indices among ``n``) of
    ``wave`` are voiced and not pure tones, and their pitch (Hz; 0 elsewhere)."""
    voiced, f0 = np.zeros(n, bool), np.zeros(n)
    x = np.asarray(wave, dtype=np.float32).ravel()
    idx = np.asarray(frames, dtype=np.int64)
    idx = idx[idx * z.hop + z.pframe <= len(x)]  # whole frames only: no padded tail
    if n == 0 or len(x) == 0 or len(idx) == 0:
        return voiced, f0
    v, period = frame_pitch(x, z, idx)
    ok = (v >= voicing) & (period > 0)
    idx, period = idx[ok], period[ok]
    if len(idx):
        keep = frame_tonality(x, z, idx) < tonal
        idx, period = idx[keep], period[keep]
    voiced[idx] = True
    f0[idx] = sr / period
    return voiced, f0


#: a sound whose speech frames are at least this share voiced, with no stretch of voiced
#: frames that moves its pitch (:func:`moves_pitch`), holds its notes: bells, a plucked
#: string, a ring tone (speech has unvoiced sounds and pauses; singing moves its pitch)
HELD_VOICED_SHARE: float = 0.8
#: ... and one under this share voiced, with no such stretch, is noise that swells (pink
#: noise rising 12-20 dB had 1-2 % of its frames look voiced by chance, enough seconds)
UNVOICED_SHARE: float = 0.1
_SCAN_CHUNK = 64  # frames measured at a time by :func:`scan_voicing`


def moves_pitch(voiced: np.ndarray, f0: np.ndarray, hop_s: float) -> bool:
    """Does any stretch of consecutive voiced frames whose pitch moves smoothly (under
    :data:`PITCH_STEP` per frame), :data:`MIN_RUN_S` or longer, move by :data:`MIN_MOVE`?
    (A pitch run without its length cap and its unvoiced edges: a sung note with vibrato
    moves; a bell's partials, a plucked string and a synthetic ring tone do not.)"""
    if len(voiced) == 0 or not voiced.any():
        return False
    lf, starts, ends = _stretches(voiced, f0)
    ok = ends - starts >= max(1, round(MIN_RUN_S / hop_s))
    if not ok.any():
        return False
    return bool(np.any(_moves(lf, starts[ok], ends[ok]) >= MIN_MOVE))


def _stretches(voiced: np.ndarray, f0: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(ln F0, starts, ends)``: the ``[start, end)`` stretches of consecutive voiced
    frames whose pitch changes by under :data:`PITCH_STEP` from one frame to the next."""
    n = len(voiced)
    lf = np.log(np.where(voiced, np.maximum(f0, 1.0), 1.0))
    joined = np.zeros(n, bool)  # frame i continues the stretch of frame i - 1
    joined[1:] = voiced[1:] & voiced[:-1] & (np.abs(np.diff(lf)) < PITCH_STEP)
    starts = np.flatnonzero(voiced & ~joined)
    breaks = np.append(np.flatnonzero(~joined), n)  # it ends at the next frame not joined
    return lf, starts, breaks[np.searchsorted(breaks, starts, side="right")]


def _moves(lf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Range of ``lf`` (ln F0) over each ``[start, end)`` run."""
    edges = np.ravel(np.stack([starts, ends], axis=1))  # [s0, e0, s1, e1, ...]
    padded = np.append(lf, 0.0)  # reduceat needs every edge < len
    return (np.maximum.reduceat(padded, edges) - np.minimum.reduceat(padded, edges))[::2]


@dataclass(frozen=True)
class VoicingScan:
    """What :func:`scan_voicing` found among some frames of a recording.

    Attributes:
        voiced: voiced frames found (a lower bound when the scan stopped early).
        moving: a stretch of them moved its pitch (:func:`moves_pitch`).
        scanned: frames measured; ``total``: frames asked about.
    """

    voiced: int
    moving: bool
    scanned: int
    total: int

    @property
    def held(self) -> bool:
        """Every frame measured, :data:`HELD_VOICED_SHARE` of them voiced, none moving."""
        return (not self.moving and self.scanned == self.total > 0
                and self.voiced >= HELD_VOICED_SHARE * self.total)

    @property
    def unvoiced(self) -> bool:
        """Every frame measured, under :data:`UNVOICED_SHARE` of them voiced, none moving."""
        return (not self.moving and self.scanned == self.total > 0
                and self.voiced < UNVOICED_SHARE * self.total)


def scan_voicing(wave: np.ndarray, sr: int, frames: np.ndarray, *, z: FrameSizes,
                 voicing: float, hop_s: float, enough: int) -> VoicingScan:
    """Measure the voicing and pitch of ``frames`` (indices of ``wave``'s frames) in time
    order, :data:`_SCAN_CHUNK` at a time, until ``enough`` are voiced and a stretch moves
    its pitch (speech: the first chunk or two), else to the end (a held sound)."""
    x = np.asarray(wave, dtype=np.float32).ravel()
    idx = np.unique(np.asarray(frames, dtype=np.int64))
    if len(idx) == 0 or len(x) == 0:
        return VoicingScan(0, False, len(idx), len(idx))
    span = idx[-1] - idx[0] + 1
    voiced, f0 = np.zeros(span, bool), np.zeros(span)
    found, moving, done = 0, False, 0
    for c0 in range(0, len(idx), _SCAN_CHUNK):
        ii = idx[c0 : c0 + _SCAN_CHUNK]
        v, period = frame_pitch(x, z, ii)
        found += int(np.count_nonzero(v >= voicing))  # every frame, padded tail too
        ok = (v >= voicing) & (period > 0) & (ii * z.hop + z.pframe <= len(x))  # no padded tail
        voiced[ii[ok] - idx[0]] = True
        f0[ii[ok] - idx[0]] = sr / period[ok]
        done += len(ii)
        if not moving:  # the new chunk and a reach back into the one before
            a = max(0, ii[0] - idx[0] - _SCAN_CHUNK)
            b = ii[-1] - idx[0] + 1
            moving = moves_pitch(voiced[a:b], f0[a:b], hop_s)
        if moving and found >= enough:
            break
    return VoicingScan(found, moving, done, len(idx))
