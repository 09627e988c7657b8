"""Live input: a rolling emotion every hop over an endless stream (``emovox listen``).

::

    ffmpeg -i URL -f s16le -ar 16000 -ac 1 - | emovox listen -

Sources yield float32 mono blocks as they arrive: :func:`iter_pcm` (raw PCM s16le from a
binary stream such as stdin) and :func:`iter_microphone` (sounddevice/PortAudio, an optional
extra; :mod:`emovox.serving.mic`, resampled to the model's rate when the device records at
another). :func:`listen` keeps the last window in a fixed-size ring buffer
(:class:`RingBuffer`, memory bounded by one window) and, as soon as a hop's samples have
arrived, predicts the window that ends there with
:meth:`emovox.serving.predictor.Predictor.predict_wave`: the answer for a sample comes at
most one window (plus the computing time) after it was spoken. A window without speech
(:func:`has_speech`) is reported as ``no_speech``, with the detector's reason, without
running the model.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from emovox.audio import (
    SILENCE_DBFS,
    TARGET_SR,
    hum_note,
    is_silent,
    peak_frame_dbfs,
    sniff_format,
)
from emovox.features.vad import NoSpeechReason, speech_verdict
from emovox.serving.answer import Status
from emovox.serving.mic import LiveInputError, Skipped, iter_microphone
from emovox.serving.params import TIMELINE_WINDOW_S, TimelineParams
from emovox.serving.stream import ChannelMixer

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_HOP_S",
    "LiveInputError",
    "LiveStatus",
    "LiveUpdate",
    "RingBuffer",
    "Skipped",
    "has_speech",
    "iter_microphone",
    "iter_pcm",
    "listen",
    "model_window_s",
    "pcm_format_hint",
    "container_hint",
    "stream_checked",
]

#: Seconds between two updates of ``emovox listen``.
DEFAULT_HOP_S = 1.0
#: Seconds read at most per block from a stream (small, so a hop is processed on time).
READ_BLOCK_S = 0.1
#: Bytes per sample of raw PCM s16le.
S16_BYTES = 2
#: what a no-speech reason calls a live stream (a file's is "the recording")
STREAM_SUBJECT = "input"

#: the status of a live line: the same answers as ``predict`` (:class:`Status`: ``ok``,
#: ``uncertain`` below :data:`~emovox.serving.answer.UNCERTAIN_BELOW`, ``no_speech``)
LiveStatus = Status


@dataclass(frozen=True)
class LiveUpdate:
    """The answer for the window ``[start, end)`` (seconds since the stream began).

    ``status`` is ``predict``'s: ``ok``, ``uncertain`` (calibrated confidence below
    :data:`~emovox.serving.answer.UNCERTAIN_BELOW`) or ``no_speech``; ``emotion`` (``label``
    in JSON), ``confidence`` and ``probabilities`` are ``None`` for ``no_speech``, and
    ``reason`` says why (predict's :class:`~emovox.features.vad.NoSpeechReason`; ``None``
    otherwise, and in JSON ``null``, as in predict's documents).
    ``compute_ms`` is the time the check and the model took for this window.
    """

    start: float
    end: float
    status: LiveStatus
    level_dbfs: float
    compute_ms: float
    emotion: str | None = None
    confidence: float | None = None
    probabilities: dict[str, float] | None = None
    reason: NoSpeechReason | None = None

    @property
    def reason_message(self) -> str | None:
        """``reason`` in words, of a stream: "the input is silent (or a constant offset)"
        (predict's words, "the recording is ...", were said of a live microphone: review,
        stop 57); ``None`` for an answer."""
        return None if self.reason is None else self.reason.words(STREAM_SUBJECT)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (``level_dbfs`` of digital silence is ``None``)."""
        level = self.level_dbfs if np.isfinite(self.level_dbfs) else None
        return {"start": round(self.start, 3), "end": round(self.end, 3),
                "status": self.status.value,
                "reason": None if self.reason is None else self.reason.value,
                "label": self.emotion,
                "confidence": self.confidence,
                "probabilities": None if self.probabilities is None else dict(self.probabilities),
                "level_dbfs": None if level is None else round(level, 1),
                "compute_ms": round(self.compute_ms, 1)}


def has_speech(wave: np.ndarray, sr: int) -> bool:
    """Whether a window holds speech: the speech detector's verdict
    (:func:`emovox.features.vad.speech_verdict`, the same one ``predict`` and the timeline
    use): noise, tones, silence and windows with under 0.3 s of voiced speech are not."""
    return speech_verdict(wave, sr).is_speech


class RingBuffer:
    """The last ``size`` samples of a stream, in a fixed array (memory never grows)."""

    def __init__(self, size: int) -> None:
        if size <= 0:
            raise ValueError(f"ring buffer size must be positive, got {size}")
        self._buf = np.zeros(size, np.float32)
        self._pos = 0  # where the next sample goes
        self._filled = 0

    @property
    def size(self) -> int:
        return len(self._buf)

    def push(self, x: np.ndarray) -> None:
        n, size = len(x), len(self._buf)
        if n >= size:
            self._buf[:] = x[-size:]
            self._pos = 0
        else:
            first = min(n, size - self._pos)
            self._buf[self._pos : self._pos + first] = x[:first]
            self._buf[: n - first] = x[first:]
            self._pos = (self._pos + n) % size
        self._filled = min(size, self._filled + n)

    def clear(self) -> None:
        """Forget the samples held (after a gap in the stream)."""
        self._pos = self._filled = 0

    def latest(self) -> np.ndarray:
        """A copy of the samples held, oldest first (fewer than ``size`` at the start)."""
        ordered = np.concatenate([self._buf[self._pos :], self._buf[: self._pos]])
        return ordered[len(ordered) - self._filled :]


def _lag1(x: np.ndarray, channels: int = 1) -> float:
    """Lag-1 autocorrelation of ``x`` (0.0 for a constant), of its ``channels`` interleaved
    channels together (each without its mean): sound sampled at 8 kHz or more is smooth
    (speech 0.8-0.99), samples read in the wrong format are rough (about 0)."""
    x = np.asarray(x, np.float64).reshape(-1, channels)
    x = x - x.mean(axis=0)
    energy = float(np.einsum("ij,ij->", x, x))  # not a BLAS dot: no threads (see to_mono)
    return float(np.einsum("ij,ij->", x[1:], x[:-1])) / energy if energy > 0.0 else 0.0


def _roughest(x: np.ndarray, channels: int) -> float:
    """The least smooth of the ``channels`` interleaved channels of ``x`` that carry sound
    (energy over 1e-6 of the loudest), each measured by the lower of its lag-1 and lag-2
    autocorrelations: read as s16le, a float stream's low halves make a channel of noise,
    and with the same signal on two channels each of its frames twice (a lag-1 of 0.5)."""
    x = np.asarray(x, np.float64).reshape(-1, channels)
    x = x - x.mean(axis=0)
    energy = np.einsum("ij,ij->j", x, x)
    if not energy.max() > 0.0:
        return 0.0
    lags = np.minimum(np.einsum("ij,ij->j", x[1:], x[:-1]), np.einsum("ij,ij->j", x[2:], x[:-2]))
    sound = energy > 1e-6 * energy.max()
    return float(np.min(lags[sound] / energy[sound]))


def pcm_format_hint(samples: np.ndarray, channels: int = 1) -> str | None:
    """What the int16 ``samples`` of a stream read as s16le (``channels`` interleaved) are
    instead, if they are much smoother (lag-1 autocorrelation over 0.6, and 0.3 more than as
    s16le) read as 32-bit little-endian floats (``"32-bit float"``) or byte-swapped
    (``"big-endian"``), or, read as mono, look like two interleaved channels
    (``"2-channel"``, :func:`_interleaved`; a stereo stream read as mono doubled every time
    without a word: code review, stop 46); None when they look right, are noise whichever
    way they are read, or are too few to say. With channels, the smoothness as s16le is
    that of the roughest channel with sound (:func:`_roughest`; they went unchecked: review,
    stop 53)."""
    v = np.asarray(samples, np.int16)
    v = v[: len(v) // channels * channels]
    if len(v) < 2000 * channels:
        return None
    bar = max(0.6, (_lag1(v) if channels == 1 else _roughest(v, channels)) + 0.3)
    f = np.frombuffer(v[: len(v) // (2 * channels) * 2 * channels].astype("<i2").tobytes(),
                      "<f4")
    with np.errstate(all="ignore"):  # a stereo pair (L, 0) read as a float is a denormal
        plausible = bool(np.all(np.isfinite(f)) and 1e-20 <= np.abs(f).max() <= 1e3)  # (47)
    if plausible and _lag1(f, channels) > bar:
        return "32-bit float"
    if _lag1(v.astype("<i2").byteswap(), channels) > bar:
        return "big-endian"
    return "2-channel" if channels == 1 and _interleaved(v) else None


def _interleaved(v: np.ndarray) -> bool:
    """Whether the int16 ``v`` look like two channels read as one: the steps inside each
    (even, odd) pair much smaller than the steps between pairs (both channels nearly the same
    signal), or samples two apart much more alike than neighbours (two different ones).
    Mono sound steps alike inside and between pairs, at any rate."""
    x = np.asarray(v[: len(v) // 2 * 2], np.float64)
    inside = float(np.abs(x[1::2] - x[0::2]).mean())
    between = float(np.abs(x[2::2] - x[1:-1:2]).mean())
    if between > 0.0 and inside < 0.3 * between:
        return True
    x = x - x.mean()
    energy = float(x @ x)
    lag2 = float(x[2:] @ x[:-2]) / energy if energy > 0.0 else 0.0
    return lag2 > max(0.6, _lag1(x) + 0.3)


def container_hint(head: bytes) -> str | None:
    """What a stream that should be raw PCM starts like instead: ``"a FLAC file"``, ``"a WAV
    file (48000 Hz, 2 channels, 16-bit)"``, ...; None for none (an MPEG frame sync alone is
    not trusted: raw samples can start with those two bytes). Piped files got emotions on
    their bytes as samples without a word (QA, stop 39)."""
    h = bytes(head[:64])
    kind = sniff_format(h) if len(h) >= 12 else None
    if kind is None or (kind in ("mp3", "aac") and h[:1] == b"\xff"):
        return None
    if kind == "wav" and h[12:16] == b"fmt " and len(h) >= 36:
        ch, rate = int.from_bytes(h[22:24], "little"), int.from_bytes(h[24:28], "little")
        bits = int.from_bytes(h[34:36], "little")
        return f"a WAV file ({rate} Hz, {ch} channel{'s' if ch != 1 else ''}, {bits}-bit)"
    return f"{'an' if kind[0] in 'aeio' else 'a'} {kind.upper()} file"


#: seconds of a stream's start that :func:`pcm_format_hint` looks at (at 1 s, the
#: near-silent start of 2 of 306 RAVDESS and URDU clips looked byte-swapped; at 3 s none did)
FORMAT_CHECK_S = 3.0
#: ... piece after piece for this long, until one is judged another format (stop 52)
FORMAT_CHECK_UNTIL_S = 60.0
_FFMPEG_FORMAT = {"32-bit float": "f32le", "big-endian": "s16be"}


#: bytes of a stream's start that :func:`container_hint` looks at (gathered across reads: a
#: first read of a few bytes skipped the check, code review, stop 46)
SNIFF_BYTES = 64


def iter_pcm(stream: BinaryIO, *, block_s: float = READ_BLOCK_S, sr: int = TARGET_SR,
             channels: int = 1) -> Iterator[np.ndarray]:
    """float32 mono blocks (full scale 1.0) of raw PCM s16le read from ``stream``, its
    ``channels`` interleaved channels mixed by the rule of files (:class:`ChannelMixer`;
    averaged before stop 53), each yielded as soon as it is read (``read1``: what has
    arrived, at most ``block_s``). The stream's first :data:`SNIFF_BYTES` are checked for a
    file's header (:func:`container_hint`) and its pieces of :data:`FORMAT_CHECK_S`
    seconds, over its first :data:`FORMAT_CHECK_UNTIL_S` seconds until one is, for samples
    of another format (:func:`pcm_format_hint`; mono ones only before stop 53): either got
    emotions on noise (QA, stops 30 and 39), so a warning says how to convert."""
    if channels < 1:
        raise ValueError(f"channels must be 1 or more, got {channels}")
    read = getattr(stream, "read1", stream.read)
    frame = S16_BYTES * channels
    size = max(frame, int(block_s * sr) * frame)
    carry, head, sniff = b"", b"", b""
    check = int(FORMAT_CHECK_S * sr) * frame
    left = int(FORMAT_CHECK_UNTIL_S * sr) * frame
    mixer = ChannelMixer(channels, sr) if channels > 1 else None
    while True:
        data = read(size)
        if sniff is not None and (not data or len(sniff) + len(data) >= SNIFF_BYTES):
            _warn_container(sniff + data, sr)
            sniff = None
        elif sniff is not None:
            sniff += data
        if not data:
            if carry:
                log.warning("the stream ended in the middle of a sample (%d byte%s dropped)",
                            len(carry), "s" if len(carry) != 1 else "")
            return
        data = carry + data
        usable = len(data) - len(data) % frame
        carry = data[usable:]
        if usable and left > 0:  # each 3 s piece until one warns or a minute has passed:
            head += data[:usable]  # a stream that opens with silence said nothing of the
            left -= usable  # format of what followed (timeline/listen review, stop 52)
            while len(head) >= check:
                piece, head = head[:check], head[check:]
                if _warn_format(np.frombuffer(piece, "<i2"), sr, channels):
                    left = 0
                    break
            if left <= 0:
                head = b""
        if usable:
            x = np.frombuffer(data[:usable], "<i2")
            yield (x.astype(np.float32) / 32768.0 if mixer is None else
                   mixer.mix(x.reshape(-1, channels)))


def _warn_container(head: bytes, sr: int) -> None:
    if kind := container_hint(head):
        log.warning("the input starts like %s, not raw PCM: answers on it are noise. "
                    "Decode it first, e.g. ffmpeg -i - -f s16le -ar %d -ac 1 - | %s", kind,
                    sr, _listen_command(sr, 1))


def _warn_format(samples: np.ndarray, sr: int, channels: int = 1) -> bool:
    """Log what ``samples`` (``channels`` interleaved) look like instead of s16le, if
    anything; whether it did."""
    hint = pcm_format_hint(samples, channels)
    if hint == "2-channel":
        log.warning("the input looks like 2 interleaved channels (stereo), not mono: every "
                    "time would be doubled. Pass --channels 2, or mix it down, e.g. ffmpeg "
                    "-i URL -f s16le -ar %d -ac 1 - | %s", sr, _listen_command(sr, 1))
    elif hint:
        log.warning("the input looks like %s samples, not 16-bit little-endian PCM: answers "
                    "on it are noise. Convert it, e.g. ffmpeg -f %s -ar %d -ac %d -i - -f "
                    "s16le - | %s", hint, _FFMPEG_FORMAT[hint], sr, channels,
                    _listen_command(sr, channels))
    return hint is not None


def _listen_command(sr: int, channels: int) -> str:
    """``emovox listen -`` with the options that read ``sr`` Hz and ``channels`` (the advice
    said no --rate: its command read a 44.1 kHz stream as 16 kHz)."""
    return "emovox listen -" + (f" --rate {sr}" if sr != TARGET_SR else "") + (
        f" --channels {channels}" if channels > 1 else "")


def model_window_s(predictor: Any) -> float:
    """The span of the model's input (``n_frames`` frames of its front end), else the
    timeline's default window."""
    pre = predictor.preprocess
    if pre.n_frames and pre.frontend is not None:
        return pre.n_frames * pre.frontend.hop_length / pre.sr
    return TIMELINE_WINDOW_S


#: seconds of a live stream checked once for faintness and mains hum (:func:`stream_checked`)
STREAM_CHECK_S = 10.0


def stream_checked(blocks: Iterable[np.ndarray | Skipped], sr: int, name: str
                   ) -> Iterator[np.ndarray | Skipped]:
    """``blocks`` passed through as they come; once :data:`STREAM_CHECK_S` seconds have
    arrived (or the stream ended before, after at least one second), the warnings
    ``predict`` gives a file are logged once: nothing above the silence threshold (worded
    for a stream, where nobody may have spoken yet), mains hum (:func:`~emovox.audio.hum_note`).
    ``listen`` gave neither (stop 37's list). ``name`` starts the messages."""
    need, head, held = int(STREAM_CHECK_S * sr), [], 0
    for block in blocks:
        if held < need and not isinstance(block, Skipped):
            head.append(np.asarray(block, np.float32).reshape(-1))
            held += len(head[-1])
            if held >= need:
                _warn_stream(np.concatenate(head)[:need], sr, name)
                head = []
        yield block
    if head and held >= sr:
        _warn_stream(np.concatenate(head), sr, name)


def _warn_stream(wave: np.ndarray, sr: int, name: str) -> None:
    faint = None
    if is_silent(wave, threshold_dbfs=SILENCE_DBFS):  # worded for a stream: nobody may have
        faint = (f"{name}: nothing louder than {SILENCE_DBFS:.0f} dBFS in its first "  # spoken
                 f"{len(wave) / sr:.0f} s: if someone spoke, the input is too faint to judge "
                 "(move closer to the microphone or raise the input gain)")  # yet (stop 38)
    for note in (faint, hum_note(name, wave, sr)):
        if note:
            log.warning("%s", note)


def listen(predictor: Any, blocks: Iterable[np.ndarray | Skipped], *, sr: int = TARGET_SR,
           window: float | None = None, hop: float = DEFAULT_HOP_S,
           name: str = "the stream") -> Iterator[LiveUpdate]:
    """One :class:`LiveUpdate` per ``hop`` seconds of ``blocks`` (``sr`` Hz mono), for the
    ``window`` seconds ending there (fewer at the start), as soon as the hop is complete;
    a last update for a final part of at least half a hop. The stream's start is checked
    for faintness and hum (:func:`stream_checked`; ``name`` starts those warnings). After a
    :class:`Skipped` gap the clock moves on by it, the window starts afresh, and a warning
    says so (at most one a minute). The model's lazy set-up is done when the predictor
    loads (:meth:`~emovox.serving.predictor.Predictor.check_runs`), so the first hop pays
    none (a warm-up window here was noise the speech check refused: it never ran the model).

    Raises:
        emovox.errors.ConfigError: (at once) window or hop out of range, or hop > window.
    """
    params = TimelineParams(model_window_s(predictor) if window is None else window, hop)
    ring = RingBuffer(int(round(params.window * sr)))
    return _updates(predictor, stream_checked(blocks, sr, name), ring, params.hop * sr, sr)


def _updates(predictor: Any, blocks: Iterable[np.ndarray | Skipped], ring: RingBuffer,
             step: float, sr: int) -> Iterator[LiveUpdate]:
    """The k-th answer after the start (or a gap) ends at ``round(k * step)`` samples (a step
    rounded once drifted 1.6 s an hour at 11025 Hz: a review, stop 47)."""
    seen = origin = k = 0  # samples received (or skipped); where the count restarted
    gaps, pace = _Gaps(sr), _Pace(step / sr)

    def boundary(j: int) -> int:  # sample where answer j ends
        return origin + int(round(j * step))

    for block in blocks:
        if isinstance(block, Skipped):
            gaps.skip(block.samples, seen)
            seen += block.samples
            origin, k = seen, 0
            ring.clear()
            continue
        block = np.asarray(block, np.float32).reshape(-1)
        while len(block):
            take = min(len(block), boundary(k + 1) - seen)
            ring.push(block[:take])
            seen, block = seen + take, block[take:]
            if seen == boundary(k + 1):
                yield pace.timed(_update(predictor, ring.latest(), seen, sr))
                k += 1
    if seen > boundary(k) and (seen - boundary(k)) * 2 >= boundary(k + 1) - boundary(k):
        yield _update(predictor, ring.latest(), seen, sr)


class _Pace:
    """One warning when answers take longer than the hop (the mean of the last
    :attr:`N` updates): a live input then falls further behind, with no word on stdin,
    where nothing is skipped (timeline/listen review, stop 52: 156 ms per 60 ms hop, 9.6 s
    behind after 40 s)."""

    N = 10

    def __init__(self, hop_s: float) -> None:
        self.hop_ms, self.recent, self.told = hop_s * 1000.0, deque(maxlen=self.N), False

    def timed(self, update: LiveUpdate) -> LiveUpdate:
        self.recent.append(update.compute_ms)
        mean = sum(self.recent) / len(self.recent)
        if not self.told and len(self.recent) == self.N and mean > self.hop_ms:
            self.told = True
            log.warning("answers take %.0f ms each, more than the %.2f s hop: a live input "
                        "falls further behind them (a longer --hop asks for fewer answers, "
                        "a shorter --window for less work each)", mean, self.hop_ms / 1000)
        return update


class _Gaps:
    """The warnings about skipped audio: the first at once, then at most one a minute of
    stream time, each with what was skipped since the last."""

    def __init__(self, sr: int) -> None:
        self.sr, self.untold, self.told_at = sr, 0, None

    def skip(self, samples: int, at: int) -> None:
        self.untold += samples
        if self.told_at is None or at - self.told_at >= 60 * self.sr:
            log.warning("the answers fell behind the input: %.1f s of audio skipped before "
                        "%.1f s (a longer --hop asks for fewer answers)",
                        self.untold / self.sr, (at + samples) / self.sr)
            self.untold, self.told_at = 0, at


def _update(predictor: Any, wave: np.ndarray, end: int, sr: int) -> LiveUpdate:
    """The answer for ``wave`` (``sr`` Hz), the window ending at sample ``end``: one run of
    the speech detector (:func:`has_speech`'s verdict, kept for its reason: listen's lines
    had none, predict's and timeline's do), then the model when it found speech."""
    t0 = time.perf_counter()
    start, stop = (end - len(wave)) / sr, end / sr
    level = peak_frame_dbfs(wave)
    verdict = speech_verdict(wave, sr)
    if not verdict.is_speech:
        return LiveUpdate(start, stop, Status.NO_SPEECH, level,
                          (time.perf_counter() - t0) * 1000, reason=verdict.reason)
    p = predictor.predict_wave(wave, sr, source="<live>")
    if p.label is None:  # the predictor's own speech check (the same detector) said no
        why = getattr(p, "reason", None)
        return LiveUpdate(start, stop, Status.NO_SPEECH, level,
                          (time.perf_counter() - t0) * 1000,
                          reason=NoSpeechReason(why) if why else None)
    return LiveUpdate(start, stop, Status(p.status), level, (time.perf_counter() - t0) * 1000,
                      emotion=p.label, confidence=p.confidence,
                      probabilities=dict(p.probabilities))
