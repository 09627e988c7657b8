"""Streams of blocks: the speech detector (:func:`emovox.serving.timeline.build_timeline`):
per-frame measures computed block by block, and the samples not yet classified
(:class:`SpeechStream`); the channel rule of files applied to a live multichannel stream
(:class:`ChannelMixer`, ``emovox listen --channels N``)."""

from __future__ import annotations

import numpy as np

from emovox.audio import READ_FRAMES, mix_channels
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
from emovox.serving.mixsums import WindowSums
from emovox.serving.speech import speech_regions

__all__ = ["CONTEXT_S", "MIX_PIECE_S", "ChannelMixer", "SpeechStream"]

#: frames of a speech blip and of a gap smoothing bridges, as speech_verdict counts them
_BLIP = max(1, int(round(DEFAULT_PARAMS.min_segment_s / DEFAULT_PARAMS.hop_s)))
_BRIDGE = max(1, int(round(DEFAULT_PARAMS.bridge_s / DEFAULT_PARAMS.hop_s)))

#: seconds of tonality and pitch flags kept before the samples still held (:meth:`drop_before`):
#: what a frame's speech flag depends on around it (smoothing, a beep's gaps, the merging of
#: regions) lies within 2 s, so the flags and regions from there on are those computed over
#: the whole recording. They were kept, and smoothed again each block, for the whole file
#: (9 bytes per 10 ms, and 175 MB of scratch per block after 10 h: code review, stop 48)
CONTEXT_S = 30.0


#: a multichannel live stream is mixed to mono piece by piece, pieces of this many seconds
#: counted from its start, each by the channel weights of the frames before it
#: (:class:`ChannelMixer`)
MIX_PIECE_S = 0.5


class ChannelMixer:
    """A live stream's ``(n, channels)`` frames mixed to mono as they come, by the rule that
    mixes a file (:func:`~emovox.audio.channel_weights`: a channel of hiss, hum or silence
    left out, one in opposite polarity flipped, else the plain average). The weights of each
    piece of :data:`MIX_PIECE_S` seconds from the stream's start are decided on the
    :data:`~emovox.audio.READ_FRAMES` frames before it (a file's piece: 16.4 s at 16 kHz,
    5.5 s at 48 kHz), whatever sizes the reads have: no audio is held back, and a choice
    lasts while its evidence is in those frames (a speaker's turns and pauses do not drop
    their channel; one silent for longer leaves the mix, and comes back in the piece after
    its sound starts, the rest of that piece lost). The first piece is the plain average.
    The stream used to be averaged: a channel in opposite polarity cancelled the speech, a
    dead one halved it and a hissing one added its noise (review, stop 53). Memory and
    time: :data:`~emovox.audio.READ_FRAMES` int16 frames and their running sums
    (:class:`~emovox.serving.mixsums.WindowSums`), each piece's frames summed once: the
    weights are those of the frames before the piece, not weighed again each piece (19 ms
    for stereo and 116 ms for 8 channels per piece on 2 shared cores when they were)."""

    def __init__(self, channels: int, sr: int, keep: int = READ_FRAMES) -> None:
        self.piece = max(1, int(round(MIX_PIECE_S * sr)))
        self.keep = keep  # frames the weights are decided on (READ_FRAMES; fewer in tests)
        self.weights = np.ones(channels, np.float32)
        self.sums = WindowSums(channels)  # the frames of the last pieces and their sums
        self.into = 0  # frames of the current piece mixed so far

    def mix(self, frames: np.ndarray) -> np.ndarray:
        """float32 mono (full scale 1.0) of ``frames``, int16 ``(n, channels)``."""
        if frames.dtype != np.int16:
            raise TypeError(f"expected int16 frames, got {frames.dtype}")
        out = []
        while len(frames):
            if self.into == self.piece:  # a new piece: weights from the seconds before it
                self.weights, self.into = self.sums.weights(self.keep), 0
            part, frames = frames[: self.piece - self.into], frames[self.piece - self.into :]
            self.sums.push(part)
            self.into += len(part)
            out.append(mix_channels(part.astype(np.float32) / np.float32(32768.0),
                                    self.weights))  # as to_mono applies them
        return np.concatenate(out) if out else np.zeros(0, np.float32)


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
