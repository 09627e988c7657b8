"""Voice activity detection: which 10 ms frames of a recording hold speech, and whether a
whole input holds any speech at all.

Pure NumPy functions ``(wave, sr, *, params) -> ndarray`` (no librosa, no downloaded weights;
the per-frame level, tonality and voicing are computed in :mod:`emovox.features.frames`):

* :func:`frame_measures`: per-frame level (dBFS, DC removed), voicing (normalised
  autocorrelation peak at pitch lags 2.5-16 ms, i.e. 62-400 Hz) and tonality (share of the
  frame's power in its strongest spectral peak);
* :func:`speech_frames`: per-frame speech flags. A frame is speech when its level rises
  ``margin_db`` above an **adaptive noise floor** (a low percentile of the recording's own frame
  levels), lies within ``range_db`` of the loud frames, is above an absolute floor, and is not
  a pure tone; short gaps are bridged and blips dropped;
* :func:`speech_segments`: ``(n, 2)`` start/end **seconds** of the speech stretches;
* :func:`speech_verdict`: is this input speech at all? Stationary sounds (white or pink noise,
  hum, pure tones, DC offset, square waves) never rise above their own floor; digital silence
  has no level; noise bursts are not voiced; less than ``min_speech_s`` of speech is too short.
  Speech under noise as loud as itself does not rise ``margin_db`` either: it is found by its
  pitch (:func:`voice_flags`, :mod:`emovox.features.voice`), which noise does not carry.

The thresholds of :class:`VadParams` were set on synthetic signals and on RAVDESS actors 01
and 02 only (both in the bundled models' training data). A first voicing measure (on
pre-emphasised frames) judged 4 of 1320 clips of actors 03-24 and 29 of 588 EMOVO clips
"not voiced"; it was changed on principle (low-pass noise has no true autocorrelation peak
in the pitch range), thresholds unchanged: actors 03-24, EMOVO and URDU are a check of this
version, not an untouched test (README, tests/integration/test_speech_real.py).
Frames: ``ceil(n / hop)`` of ``hop_s``; frame ``i`` covers samples ``[i*hop, i*hop + frame)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

from emovox.features.frames import (
    CentredFrames,
    FrameSizes,
    bridge_runs,
    frame_levels,
    frame_tonality,
    frame_voicing,
    n_frames,
    true_runs,
)
from emovox.features.steady import without_steady, without_tone_gaps
from emovox.features.voice import (
    VoicingScan,
    pitch_runs,
    pitch_track,
    scan_voicing,
    voice_frames,
)

__all__ = ["CONTINUOUS_MIN_SPREAD_DB", "CONTINUOUS_VOICED_SHARE", "DEFAULT_PARAMS",
           "FrameMeasures", "NoSpeechReason", "PITCH_WHEN_UNDER_S", "SpeechVerdict",
           "VadParams", "continuous_speech", "flags_and_tones", "frame_flags",
           "frame_measures", "smooth_flags", "speech_frames", "speech_segments",
           "speech_verdict", "total_s", "voice_flags", "voicing_scan", "voiced_needed_s"]


class NoSpeechReason(str, Enum):
    """Why an input was judged to hold no speech."""

    SILENCE = "silence"  #: digital silence or nearly so (no frame above the absolute floor)
    #: nothing rises above the sound's own floor (noise, hum, tone, DC), or what does holds
    #: its spectrum still like no voice (beeps, phone tones: :mod:`emovox.features.steady`)
    #: or its notes (bells, plucked strings: :func:`voicing_scan`)
    STEADY = "steady_sound"
    TONE = "pure_tone"  #: what rises above the floor is a pure tone
    UNVOICED = "not_voiced"  #: louder stretches without voicing (noise bursts, clicks)
    TOO_SHORT = "too_short"  #: less than ``min_speech_s`` seconds of speech

    @property
    def message(self) -> str:
        return self.words()

    def words(self, subject: str = "recording") -> str:
        """In words, ``subject`` naming what was heard: a live stream is no "recording"
        (``listen`` said so of a microphone: review, stop 57)."""
        return _MESSAGES[self].format(subject=subject)


_MESSAGES = {
    NoSpeechReason.SILENCE: "the {subject} is silent (or a constant offset)",
    NoSpeechReason.STEADY: ("no speech: a steady sound (noise, hum, tones, beeps or bells, "
                            "a constant offset)"),
    NoSpeechReason.TONE: "no speech: the sound is a pure tone",
    NoSpeechReason.UNVOICED: "no speech: the louder parts are not voiced (noise or clicks)",
    NoSpeechReason.TOO_SHORT: "too little speech to judge (less than 0.3 s)",
}


@dataclass(frozen=True)
class VadParams:
    """Settings of the detector (times in seconds, levels in dB).

    Attributes:
        frame_s: analysis frame for the level and tonality (25 ms).
        pitch_frame_s: longer frame for the voicing measure (40 ms: two periods at 50 Hz).
        hop_s: frame hop (10 ms): one flag per hop.
        floor_percentile: the adaptive noise floor is this percentile of the frame levels.
        margin_db: a speech frame is at least this much above the noise floor.
        range_db: ... and at most this far below the loud frames (99th percentile).
        abs_floor_dbfs: ... and above this absolute level (frame RMS, dBFS).
        voicing: normalised autocorrelation peak above which a frame is voiced.
        tonal: share of frame power in the strongest peak (+-2 bins) above which a frame is
            a pure tone (never speech).
        bridge_s: gaps shorter than this between speech frames are filled (hangover).
        min_segment_s: speech stretches shorter than this are dropped (clicks).
        min_speech_s: an input with less speech than this is judged non-speech.
        min_voiced_s: ... and one with fewer voiced speech seconds than this (a guard
            against unvoiced noise bursts, which give 0.00 s: see the module notes).
    """

    frame_s: float = 0.025
    pitch_frame_s: float = 0.040
    hop_s: float = 0.010
    floor_percentile: float = 10.0
    margin_db: float = 10.0
    range_db: float = 45.0
    abs_floor_dbfs: float = -85.0
    voicing: float = 0.5
    tonal: float = 0.9
    bridge_s: float = 0.2
    min_segment_s: float = 0.08
    min_speech_s: float = 0.3
    min_voiced_s: float = 0.15


DEFAULT_PARAMS = VadParams()


@dataclass(frozen=True)
class FrameMeasures:
    """Per-frame measures, each ``(n_frames,)`` float64."""

    level_db: np.ndarray  #: frame RMS in dBFS after removing the frame mean (-inf: zeros)
    voicing: np.ndarray  #: normalised autocorrelation peak at pitch lags, 0-1
    tonality: np.ndarray  #: share of the frame power within +-2 bins of its peak, 0-1


@dataclass(frozen=True)
class SpeechVerdict:
    """Whether an input holds speech, and how much.

    Attributes:
        is_speech: enough voiced speech to classify.
        reason: why not (``None`` when ``is_speech``).
        speech_seconds: seconds of speech frames (after bridging and dropping blips).
        voiced_seconds: seconds of those frames that are voiced.
        segments: ``(n, 2)`` start/end seconds of the speech stretches.
    """

    is_speech: bool
    reason: NoSpeechReason | None
    speech_seconds: float
    voiced_seconds: float
    segments: np.ndarray


def frame_measures(wave: np.ndarray, sr: int, *, params: VadParams = DEFAULT_PARAMS,
                   voicing: bool = True) -> FrameMeasures:
    """Level, voicing and tonality of every ``hop_s`` frame of a mono float ``wave`` (full
    scale 1.0) at ``sr`` Hz; computed in chunks, so scratch memory does not grow with the
    recording. ``voicing=False`` leaves the voicing at 0 (for callers that measure it later
    on the speech frames only, :func:`voicing_scan`)."""
    x = np.asarray(wave, dtype=np.float32).ravel()  # no copy of a float32 wave
    z = FrameSizes.of(sr, params)
    n = n_frames(len(x), z.hop)
    if len(x) == 0:
        return FrameMeasures(np.full(1, -np.inf), np.zeros(1), np.zeros(1))
    every = np.arange(n)
    v = frame_voicing(x, z, every) if voicing else np.zeros(n)
    return FrameMeasures(frame_levels(x, z, n), v, frame_tonality(x, z, every))


def frame_flags(m: FrameMeasures, params: VadParams = DEFAULT_PARAMS) -> np.ndarray:
    """Raw per-frame speech flags of the measures (before :func:`smooth_flags`): the
    noise floor and loud level are percentiles of ``m`` itself."""
    return _flags_above(m, _flag_threshold(m.level_db, params), params)


def flags_and_tones(m: FrameMeasures, params: VadParams = DEFAULT_PARAMS
                    ) -> tuple[np.ndarray, np.ndarray]:
    """``(frame_flags(m), tones)``, the threshold computed once: ``tones`` (``(n_frames,)``
    bool) are the frames as loud as speech that :func:`frame_flags` leaves out as a pure
    tone (tonality at least ``params.tonal``)."""
    thr = _flag_threshold(m.level_db, params)
    return _flags_above(m, thr, params), _flags_above(m, thr, params, tone=True)


def _flags_above(m: FrameMeasures, thr: float | None, params: VadParams, *,
                 tone: bool = False) -> np.ndarray:
    """:func:`frame_flags` (``tone``: the tones of :func:`flags_and_tones`), the threshold
    already computed."""
    if thr is None:
        return np.zeros(len(m.level_db), bool)
    return (m.level_db > thr) & ((m.tonality >= params.tonal) == tone)


#: a run of digital silence at least this long (s) inside a recording is a muted or cut
#: stretch, left out of the noise floor like leading and trailing padding (stop 39)
MUTED_RUN_S = 2.0


def _floor_and_loud(lv: np.ndarray, params: VadParams) -> tuple[float, float]:
    """``(noise floor, loud level)`` in dB: the ``floor_percentile`` and the 99th percentile
    of the frame levels, frames of digital silence (``-inf``) counted at 40 dB under the
    absolute floor; leading and trailing digital silence (an editor's padding) and inner
    runs of it of :data:`MUTED_RUN_S` or more (a muted stretch) left out when what remains
    has a floor of its own, ``margin_db`` under its loud level (240 s of zeros around a
    clip made its room tone speech: QA, stop 37; 60 s of zeros between two halves of a
    recording with a fan made the fan speech for the rest of the file: QA, stop 39). Short
    inner zeros (a noise gate's pauses) still count. A burst in digital silence has no floor
    of its own, and is measured against the silence, as before."""
    silent = params.abs_floor_dbfs - 40.0
    filled = np.where(np.isfinite(lv), lv, silent)
    kept = _without_muted_runs(np.isfinite(lv), max(1, int(round(MUTED_RUN_S / params.hop_s))))
    if kept is not None and kept.any():
        floor, loud = np.percentile(filled[kept], [params.floor_percentile, 99.0])
        if loud - floor >= params.margin_db:
            return float(floor), float(loud)
    floor, loud = np.percentile(filled, [params.floor_percentile, 99.0])
    return float(floor), float(loud)


def _without_muted_runs(finite: np.ndarray, long_run: int) -> np.ndarray | None:
    """Frames to measure the floor over: all but leading and trailing digital silence and
    inner runs of it of ``long_run`` frames or more; None when nothing is left out."""
    keep = finite.copy()
    zero_runs = true_runs(~finite)
    if not zero_runs:
        return None
    left_out = False
    for s, e in zero_runs:
        if s == 0 or e == len(finite) or e - s >= long_run:
            left_out = True
        else:
            keep[s:e] = True  # a short inner pause: counted, at the silence level
    return keep if left_out else None


def _flag_threshold(lv: np.ndarray, params: VadParams) -> float | None:
    """The level a speech frame must exceed (None: no finite level at all)."""
    if not np.any(np.isfinite(lv)):
        return None
    floor, loud = _floor_and_loud(lv, params)
    return max(floor + params.margin_db, loud - params.range_db, params.abs_floor_dbfs)


def speech_frames(wave: np.ndarray, sr: int, *, params: VadParams = DEFAULT_PARAMS
                  ) -> np.ndarray:
    """Per-frame speech flags, ``(ceil(len(wave) / (hop_s * sr)),)`` bool: frame ``i`` covers
    ``[i * hop_s, i * hop_s + frame_s)`` seconds."""
    m = frame_measures(wave, sr, params=params)
    return smooth_flags(frame_flags(m, params), params)


def smooth_flags(raw: np.ndarray, params: VadParams = DEFAULT_PARAMS) -> np.ndarray:
    """Bridge gaps shorter than ``bridge_s`` and drop runs shorter than ``min_segment_s``."""
    gap = max(1, int(round(params.bridge_s / params.hop_s)))
    return bridge_runs(raw, gap, max(1, int(round(params.min_segment_s / params.hop_s))))


def speech_segments(flags: np.ndarray, *, params: VadParams = DEFAULT_PARAMS,
                    duration: float | None = None, hop_s: float | None = None) -> np.ndarray:
    """``(n, 2)`` float64 start/end seconds of the ``True`` runs of per-frame ``flags``; the
    last end is clipped to ``duration`` (seconds) when given. ``hop_s``: the frames' true
    hop (``params.hop_s`` rounded to whole samples: 110 samples = 9.977 ms at 11025 Hz)."""
    h = params.hop_s if hop_s is None else hop_s
    segs = np.array([(s * h, e * h) for s, e in true_runs(flags)], np.float64).reshape(-1, 2)
    if duration is not None and len(segs):
        segs[:, 1] = np.minimum(segs[:, 1], duration)
    return segs


def total_s(segs: np.ndarray) -> float:
    """Seconds covered by ``(n, 2)`` segments, to the us (30 frames: 0.3, not 0.2999...)."""
    return round(float(np.sum(segs[:, 1] - segs[:, 0])), 6) if len(segs) else 0.0


def voiced_needed_s(speech_s: float, params: VadParams = DEFAULT_PARAMS, *,
                    part: bool = False) -> float:
    """Seconds of voiced frames ``speech_s`` seconds of detected speech need to count as
    speech: ``min_voiced_s``; for a region of a timeline (``part``) at most half its speech
    (a word of 0.18 s among others: QA stop 30). A share of the speech, asked for a while
    at stop 37, made clear speech before noise bursts "not voiced" (README)."""
    return min(params.min_voiced_s, speech_s / 2) if part else params.min_voiced_s


#: :func:`speech_verdict` looks for speech by its pitch (:func:`voice_flags`) when the
#: level finds less than this (s), when asked (``by_pitch``), or when what the level found
#: is no speech after all: a short clip with more is speech by its level, and is classified
#: whole (about 10 ms saved per 4 s clip)
PITCH_WHEN_UNDER_S: float = 1.0


#: ... the reasons for which a verdict made without the pitch is made again with it (speech
#: under a dishwasher's sloshing was `not_voiced` in predict, speech in the timeline: QA)
_RETRY_BY_PITCH = frozenset({NoSpeechReason.UNVOICED, NoSpeechReason.STEADY,
                             NoSpeechReason.TOO_SHORT})


def speech_verdict(wave: np.ndarray, sr: int, *, params: VadParams = DEFAULT_PARAMS,
                   exact_voiced: bool = False, by_pitch: bool = False) -> SpeechVerdict:
    """Does the mono float ``wave`` at ``sr`` Hz hold speech? See :class:`NoSpeechReason`
    for the ways it may not; the segments are in seconds.

    The decisions are those of :func:`frame_measures` + :func:`frame_flags` +
    :func:`smooth_flags`, but only the measures they read are computed: the level of every
    frame, the tonality of the frames above the speech threshold (and, when there is almost
    no speech, of every frame above the noise floor, for the reason), and the voicing of the
    speech frames, in time order, until ``min_voiced_s`` of voiced speech is found and a
    stretch has moved its pitch (then ``voiced_seconds`` is a lower bound, at least
    ``min_voiced_s``; ``exact_voiced=True`` counts every speech frame). Speech that holds
    its notes (voiced throughout, no pitch moving: :func:`voicing_scan`) is a steady sound.
    Speech under noise as loud as itself is found by its pitch (:func:`voice_flags`) when
    the level finds less than :data:`PITCH_WHEN_UNDER_S`, and always with ``by_pitch`` (a
    long input windowed by its segments, as the timeline does)."""
    x = np.asarray(wave, dtype=np.float32).ravel()
    duration = len(x) / sr
    z = FrameSizes.of(sr, params)
    n = n_frames(len(x), z.hop)
    thr: float | None = None
    cf = CentredFrames(x, z, n if len(x) else 0)  # read by the level, tonality and beeps
    if len(x) == 0:
        m = FrameMeasures(np.full(1, -np.inf), np.zeros(1), np.zeros(1))
    else:
        lv = frame_levels(x, z, n, cf)
        tonal = np.zeros(n)
        thr = _flag_threshold(lv, params)
        cand = np.flatnonzero(lv > thr) if thr is not None else np.zeros(0, np.int64)
        tonal[cand] = frame_tonality(x, z, cand, cf)  # what frame_flags reads
        m = FrameMeasures(lv, np.zeros(n), tonal)
    raw = _flags_above(m, thr, params)  # = frame_flags(m, params), threshold computed once
    level_s = np.count_nonzero(smooth_flags(raw, params)) * params.hop_s  # by level alone
    pitch = bool(len(x)) and thr is not None and (by_pitch or level_s < PITCH_WHEN_UNDER_S)
    if pitch:
        raw = raw | voice_flags(x, sr, m.level_db, params)  # speech under loud noise
    blip = max(1, int(round(params.min_segment_s / params.hop_s)))
    # beeps and phone tones out (features.steady): what was speech only for them is steady,
    bridged = smooth_flags(raw, params)  # and pure-tone beeps' gaps bridged by smoothing
    smoothed = without_tone_gaps(bridged, raw, _flags_above(m, thr, params, tone=True), blip,
                                 max(1, int(round(params.bridge_s / params.hop_s))))
    flags, n_steady = without_steady(wave, sr, smoothed, blip, cf)
    n_steady += int(np.count_nonzero(bridged & ~smoothed))  # a beep's, as steady
    segs = speech_segments(flags, params=params, duration=duration, hop_s=z.hop / sr)
    speech_s = total_s(segs)
    lv = m.level_db
    if len(x) and duration >= params.min_speech_s and min(speech_s, level_s) < \
            params.min_speech_s:
        fallback = continuous_speech(x, sr, lv, params=params)
        if fallback is not None:  # speech without a pause: the floor was speech itself
            flags, more = without_steady(wave, sr, fallback | smoothed, blip, cf)
            n_steady += more
            segs = speech_segments(flags, params=params, duration=duration, hop_s=z.hop / sr)
            speech_s = total_s(segs)
    scan = voicing_scan(x, sr, np.flatnonzero(flags), params, enough_s=None if exact_voiced
                        else voiced_needed_s(speech_s, params))
    voiced_s = scan.voiced * params.hop_s
    reason: NoSpeechReason | None = None
    if duration < params.min_speech_s:
        reason = NoSpeechReason.TOO_SHORT
    elif not np.any(np.isfinite(lv) & (lv > params.abs_floor_dbfs)):
        reason = NoSpeechReason.SILENCE
    elif speech_s < params.min_speech_s and n_steady * params.hop_s >= params.min_speech_s:
        reason = NoSpeechReason.STEADY  # what rose above the floor held its spectrum still
    elif speech_s < params.min_speech_s:
        if len(x):  # _why_none reads the tonality of every frame above the noise floor
            rest = np.flatnonzero((lv > _floor_threshold(lv, params))
                                  & ~(lv > (np.inf if thr is None else thr)))
            m.tonality[rest] = frame_tonality(x, z, rest, cf)
        reason = _why_none(m, raw, params, speech_s)
    elif voiced_s < voiced_needed_s(speech_s, params) - 1e-9 or scan.unvoiced:
        reason = NoSpeechReason.UNVOICED
    elif scan.held:  # voiced throughout, no pitch moving: bells, plucked strings (stop 41)
        reason = NoSpeechReason.STEADY
    if reason in _RETRY_BY_PITCH and not pitch and thr is not None:  # as the timeline
        return speech_verdict(wave, sr, params=params, exact_voiced=exact_voiced, by_pitch=True)
    return SpeechVerdict(reason is None, reason, speech_s, voiced_s, segs)


#: :func:`continuous_speech`: the share of the candidate frames that must be voiced
CONTINUOUS_VOICED_SHARE: float = 0.5
#: ... and the least spread (dB, 90th - 10th percentile) of their levels: speech rises and
#: falls with its syllables, a synthetic steady sound (square or sawtooth wave) does not
CONTINUOUS_MIN_SPREAD_DB: float = 3.0


def continuous_speech(wave: np.ndarray, sr: int, level_db: np.ndarray, *,
                      params: VadParams = DEFAULT_PARAMS) -> np.ndarray | None:
    """Smoothed speech flags of an input that is speech from end to end, or ``None``.

    The adaptive floor assumes some pause: the ``floor_percentile`` of a clip cut tightly
    around loud, compressed speech (broadcast audio) is speech itself, and no frame rises
    ``margin_db`` above it. When the frame levels (``level_db``, of ``wave``)
    span less than ``margin_db`` between that percentile and the 99th, the frames above the
    absolute floor and within ``range_db`` of the loud ones that are not pure tones are
    taken as speech, if their levels rise and fall by :data:`CONTINUOUS_MIN_SPREAD_DB`, at
    least :data:`CONTINUOUS_VOICED_SHARE` of them are voiced, and one syllable-long stretch
    moves its pitch as a voice does (:func:`emovox.features.voice.pitch_runs`). A steady
    noise is not voiced, a pure tone is tonal, a square or sawtooth wave does not rise and
    fall, and music holds its notes (a violin, a melody with vibrato: stop 41): none
    passes."""
    if not np.any(np.isfinite(level_db)):
        return None
    floor, loud = _floor_and_loud(level_db, params)
    if loud - floor >= params.margin_db:
        return None  # the floor was a real floor: the input has little speech
    z = FrameSizes.of(sr, params)
    cand = np.flatnonzero(level_db > max(loud - params.range_db, params.abs_floor_dbfs))

    def steady(idx: np.ndarray) -> bool:
        return len(idx) == 0 or float(np.subtract(*np.percentile(level_db[idx], [90, 10]))) \
            < CONTINUOUS_MIN_SPREAD_DB

    if steady(cand):  # first on the levels alone: steady noise stops here, cheaply
        return None
    cand = cand[frame_tonality(wave, z, cand) < params.tonal]
    if steady(cand):
        return None
    track = pitch_track(wave, sr, cand, len(level_db), z=z, voicing=params.voicing,
                        tonal=params.tonal)  # each frame measured once, for both checks
    voiced = int(np.count_nonzero(track[0]))
    if voiced < CONTINUOUS_VOICED_SHARE * len(cand) or voiced * params.hop_s < \
            params.min_voiced_s:
        return None
    if not len(pitch_runs(*track, params.hop_s)):
        return None  # music: voiced, rising and falling, but no syllable moves its pitch
    raw = np.zeros(len(level_db), bool)
    raw[cand] = True
    return smooth_flags(raw, params)


def voicing_scan(wave: np.ndarray, sr: int, frames: np.ndarray,
                 params: VadParams = DEFAULT_PARAMS, *, enough_s: float | None = None
                 ) -> VoicingScan:
    """Voicing and pitch movement of the speech ``frames`` (indices) of ``wave``, measured
    in time order until ``enough_s`` seconds are voiced and a stretch moves its pitch, or to
    the end (``enough_s`` None: every frame, an exact count); ``.held`` marks a sound that
    holds its notes (:func:`emovox.features.voice.scan_voicing`): no speech, as
    :func:`speech_verdict`, ``predict``'s regions and the timeline's parts judge it."""
    idx = np.asarray(frames, dtype=np.int64)
    if len(idx) == 0 or len(wave) == 0:
        return VoicingScan(0, False, 0, 0)
    enough = len(idx) if enough_s is None else int(np.ceil(enough_s / params.hop_s - 1e-9))
    return scan_voicing(wave, sr, idx, z=FrameSizes.of(sr, params), voicing=params.voicing,
                        hop_s=params.hop_s, enough=enough)


#: :func:`voice_flags` takes the floor of each stretch this long (s), as the timeline reads
#: a recording in blocks (quiet speech after minutes of a machine: QA review, stop 42)
PITCH_BLOCK_S: float = 60.0


def voice_flags(wave: np.ndarray, sr: int, level_db: np.ndarray,
                params: VadParams = DEFAULT_PARAMS) -> np.ndarray:
    """Per-frame flags of speech found by its pitch (:func:`emovox.features.voice.voice_frames`)
    with the detector's settings: frames above the noise floor of ``level_db`` (the frames'
    levels) over each :data:`PITCH_BLOCK_S`, within ``range_db`` of its loud ones and above
    the absolute floor."""
    z = FrameSizes.of(sr, params)
    out, step = np.zeros(len(level_db), bool), max(1, int(round(PITCH_BLOCK_S * sr / z.hop)))
    for a in range(0, len(level_db), step):
        lv = level_db[a : a + step]
        if np.any(np.isfinite(lv)):
            floor, loud = _floor_and_loud(lv, params)
            out[a : a + step] = voice_frames(
                wave[a * z.hop : (a + step) * z.hop], sr, lv, floor, z=z, voicing=params.voicing,
                tonal=params.tonal, hop_s=params.hop_s,
                least_db=max(loud - params.range_db, params.abs_floor_dbfs))
    return out


def _floor_threshold(lv: np.ndarray, params: VadParams) -> float:
    """The lowest level a speech frame (or a frame :func:`_why_none` reads) can have:
    ``margin_db`` above the adaptive floor and above the absolute floor."""
    return max(_floor_and_loud(lv, params)[0] + params.margin_db, params.abs_floor_dbfs)


#: :func:`_why_none`: a run of this many frames over the floor is a (short) sound; one or
#: two at a time are a noise's own fluctuations: 20 minutes of car noise was "too short"
#: in ``predict`` and a steady sound in the timeline (QA re-check, stop 40)
_SOUND_FRAMES = 4


def _why_none(m: FrameMeasures, raw: np.ndarray, params: VadParams,
              speech_s: float) -> NoSpeechReason:
    """The reason for (almost) no speech frames: a pure tone, a steady sound, or too short."""
    above = m.level_db > _floor_threshold(m.level_db, params)
    if np.count_nonzero(above) * params.hop_s >= params.min_speech_s and \
            np.median(m.tonality[above]) >= params.tonal:
        return NoSpeechReason.TONE
    if speech_s > 0 or max((b - a for a, b in true_runs(raw)), default=0) >= _SOUND_FRAMES:
        return NoSpeechReason.TOO_SHORT  # a sound too short to be speech
    return NoSpeechReason.STEADY  # at most a frame or two of noise over its floor at a time
