"""The speech detector over a stream of blocks (:func:`emovox.serving.timeline.build_timeline`):
per-frame measures computed block by block, and the samples not yet classified."""

from __future__ import annotations

import numpy as np

from emovox.features.frames import true_runs
from emovox.features.steady import without_tone_gaps
from emovox.features.vad import (
    DEFAULT_PARAMS,
    FrameMeasures,
    flags_and_tones,
    frame_measures,
    smooth_flags,
    voice_flags,
    voicing_scan,
)
from emovox.features.voice import VoicingScan
from emovox.serving.speech import speech_regions

__all__ = ["CONTEXT_S", "SpeechStream"]

#: frames of a speech blip and of a gap smoothing bridges, as speech_verdict counts them
_BLIP = max(1, int(round(DEFAULT_PARAMS.min_segment_s / DEFAULT_PARAMS.hop_s)))
_BRIDGE = max(1, int(round(DEFAULT_PARAMS.bridge_s / DEFAULT_PARAMS.hop_s)))

#: seconds of tonality and pitch flags kept before the samples still held (:meth:`drop_before`):
#: what a frame's speech flag depends on around it (smoothing, a beep's gaps, the merging of
#: regions) lies within 2 s, so the flags and regions from there on are those computed over
#: the whole recording. They were kept, and smoothed again each block, for the whole file
#: (9 bytes per 10 ms, and 175 MB of scratch per block after 10 h: code review, stop 48)
CONTEXT_S = 30.0


class SpeechStream:
    """The speech detector over a stream: per-frame level, tonality and speech found by its
    pitch (:func:`~emovox.features.vad.voice_flags`, against each block's own floor)
    computed block by block, and the samples of what is not yet classified (the voicing is
    measured on a region's speech frames when it is classified, :meth:`voicing`). The level
    of every frame read is kept (4 bytes per 10 ms): the noise floor is a percentile of them
    all; the tonality and pitch flags only from :attr:`first` on (:data:`CONTEXT_S` before the
    samples held), and :meth:`regions` works on those frames alone."""

    def __init__(self, sr: int) -> None:
        self.sr = sr
        self.hop = int(round(DEFAULT_PARAMS.hop_s * sr))
        self.level: list[np.ndarray] = []  # per-frame levels of everything read so far
        self.first = 0  # the frame of tonality[0] and voice[0]
        self.tonality = np.zeros(0, np.float32)  # per frame, from frame ``first`` on
        self.voice = np.zeros(0, bool)
        self.buf = np.zeros(0, np.float32)
        self.buf_start = 0  # sample index of buf[0]
        self.vad_pos = 0  # samples analysed so far (a multiple of hop, except at the end)

    @property
    def end(self) -> int:
        return self.buf_start + len(self.buf)

    def push(self, block: np.ndarray, final: bool = False) -> None:
        self.buf = np.concatenate([self.buf, np.asarray(block, np.float32)])
        n = self.end - self.vad_pos
        n = n if final else n - n % self.hop
        if n <= 0:
            return
        x = self.buf[self.vad_pos - self.buf_start : self.vad_pos - self.buf_start + n]
        m = frame_measures(x, self.sr, voicing=False)
        self.level.append(m.level_db.astype(np.float32))
        self.tonality = np.concatenate([self.tonality, m.tonality.astype(np.float32)])
        self.voice = np.concatenate([self.voice, voice_flags(x, self.sr, m.level_db)])
        self.vad_pos += n

    def regions(self) -> tuple[list[tuple[float, float]], np.ndarray, np.ndarray]:
        """Speech regions (s) so far, with the per-frame speech flags and levels of the frames
        from :attr:`first` on (index 0 is frame ``first``); the noise floor is taken over every
        frame read so far. Regions before ``first`` + :data:`CONTEXT_S` are not those of the
        whole recording (one reaching back there starts there)."""
        if not self.level:
            return [], np.zeros(0, bool), np.zeros(0)
        level = np.concatenate(self.level, dtype=np.float64)  # the floor's: every frame
        a = self.first
        tonality = np.zeros(len(level))  # before ``first``: never read (cut off below)
        tonality[a:] = self.tonality
        m = FrameMeasures(level, np.broadcast_to(0.0, level.shape), tonality)
        raw, tones = flags_and_tones(m)  # as speech_verdict: beeps' gaps out (stop 47)
        del m, tonality
        raw, tones = raw[a:] | self.voice, tones[a:]
        flags = without_tone_gaps(smooth_flags(raw), raw, tones, _BLIP, _BRIDGE)
        segs = _segments(flags, a, self.vad_pos / self.sr)
        return speech_regions(segs, self.vad_pos / self.sr), flags, level[a:].copy()

    def voicing(self, frames: np.ndarray, enough_s: float) -> VoicingScan:
        """The voicing of ``frames`` (indices; those whose samples are still held), measured
        in time order until ``enough_s`` seconds are voiced and a stretch moves its pitch
        (:func:`~emovox.features.vad.voicing_scan`)."""
        first = -(-self.buf_start // self.hop)  # the first frame that starts in the buffer
        frames = frames[frames >= first]
        off = first * self.hop - self.buf_start
        return voicing_scan(self.buf[off:], self.sr, frames - first, enough_s=enough_s)

    def samples(self, a: int, b: int) -> np.ndarray:
        return self.buf[a - self.buf_start : b - self.buf_start]

    def drop_before(self, pos: int) -> None:
        """Forget the samples before sample ``pos``, and the tonality and pitch flags of the
        frames more than :data:`CONTEXT_S` before it."""
        k = min(max(0, pos - self.buf_start), len(self.buf))
        if k:
            self.buf = self.buf[k:]
            self.buf_start += k
        keep = min(pos // self.hop - int(round(CONTEXT_S / DEFAULT_PARAMS.hop_s)),
                   self.first + len(self.tonality))
        if keep > self.first:  # copies: a view would keep the whole array
            self.tonality = self.tonality[keep - self.first :].copy()
            self.voice = self.voice[keep - self.first :].copy()
            self.first = keep


def _segments(flags: np.ndarray, first: int, duration: float) -> np.ndarray:
    """``(n, 2)`` seconds of the ``True`` runs of ``flags`` (frame ``first`` on), the last end
    clipped to ``duration``: :func:`~emovox.features.vad.speech_segments` of the whole
    recording's flags, the same floats (frame ``i`` starts at ``i * hop_s``)."""
    h = DEFAULT_PARAMS.hop_s
    segs = np.array([((first + s) * h, (first + e) * h) for s, e in true_runs(flags)],
                    np.float64).reshape(-1, 2)
    if len(segs):
        segs[:, 1] = np.minimum(segs[:, 1], duration)
    return segs
