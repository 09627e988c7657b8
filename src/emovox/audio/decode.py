"""Decoding: files (or bytes) to mono float32 waveforms, with bounded memory.

Every waveform leaving this module is a 1-D ``float32`` NumPy array of shape ``(n_samples,)``,
mono, at ``TARGET_SR`` (16 kHz) unless the caller asks for another rate, full scale 1.0.

Decoding strategy
-----------------
1. The first bytes are sniffed (:mod:`emovox.audio.sniff`): content, not the file extension.
2. libsndfile (:mod:`soundfile`) decodes WAV/RF64/AIFF/FLAC/OGG/MP3/CAF/...; anything else is
   decoded by ffmpeg in a subprocess (:mod:`emovox.audio.ffmpeg`).
3. The header (rate, channels, frames) is checked BEFORE any sample is read: rates outside
   ``[MIN_SAMPLE_RATE, MAX_SAMPLE_RATE]`` or more than ``MAX_CHANNELS`` channels raise
   :class:`~emovox.errors.AudioOutOfLimits`; with ``max_duration`` a header stating a longer
   file raises :class:`~emovox.errors.AudioTooLong`.
4. Samples are read in blocks of ``READ_FRAMES`` native frames, mixed to mono and resampled
   with a streaming soxr resampler (bit-identical to resampling the whole signal at once; a
   file that fits in one block is resampled in one call, which is faster), so peak memory is
   one native block plus the 16 kHz mono output; decoding stops as soon as ``max_duration``
   is passed, so no more than the limit is ever held.

Every failure is raised as a subclass of :class:`emovox.errors.AudioError` whose message names
the file and says what to do about it; raw ``soundfile``/``RuntimeError`` exceptions never leak.
"""

from __future__ import annotations

import itertools
import logging
import math
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import soxr

from emovox.audio.header import (
    Decoder,
    check_finite,
    open_decoder,
    probe_source,
    tracks_note,
)
from emovox.audio.hum import hum_note
from emovox.audio.length import container_length_note, wav_length_note
from emovox.audio.limits import (
    DURATION_SLACK,
    MAX_CHANNELS,
    check_limits,
    header_slack,
    scaled_limit,
    too_long,
)
from emovox.audio.signal import (
    DC_NEGLIGIBLE,
    RESAMPLE_QUALITY,
    SILENCE_DBFS,
    TARGET_SR,
    faint_note,
    is_silent,
    remove_dc,
    resample,
    to_mono,
    trim_silence,
)
from emovox.audio.sniff import AudioInfo, AudioSource, Source
from emovox.errors import AudioError, AudioTooLong, AudioTooShort, EmptyAudio

log = logging.getLogger(__name__)

__all__ = ["READ_FRAMES", "Audio", "file_notes", "header_notes", "iter_blocks",
           "iter_native_blocks", "load_audio", "mono_aligned"]

#: Native frames read per block (with MAX_CHANNELS float32 channels: 64 MB at most).
READ_FRAMES: int = 1 << 18
# Tolerance (s) on durations reported by headers when enforcing max_duration early.
# Largest output buffer allocated up front from a header's frame count (it grows past that).
_MAX_PREALLOC = 1 << 24


@dataclass(frozen=True)
class Audio:
    """A decoded, mono, resampled waveform and where it came from.

    Attributes:
        wave: ``float32`` array of shape ``(n_samples,)``, full scale = 1.0.
        sr: sample rate of ``wave`` in Hz.
        source: the path, the ``filename`` hint for bytes input, or ``"<bytes>"``.
        orig_sr: sample rate of the file before resampling, in Hz.
        orig_channels: channel count of the file before mixing to mono.
        silent: True when the whole signal is below the silence threshold (see :func:`is_silent`).
        notes: what a user should know about the input (a WAV cut short, near-silence), the
            warnings also logged; carried into answers as ``warnings``.
    """

    wave: np.ndarray
    sr: int
    source: str
    orig_sr: int
    orig_channels: int
    silent: bool
    notes: tuple[str, ...] = ()

    @property
    def duration(self) -> float:
        """Length of ``wave`` in seconds."""
        return len(self.wave) / float(self.sr)


def _check_header(s: Source, max_duration: float) -> AudioInfo | None:
    """Refuse from the header alone (rate, channels, stated duration), before decoding;
    the header read (None when no reader could), for :func:`header_notes`."""
    try:
        info = probe_source(s)
    except AudioError:
        return None  # the decoder raises the properly worded error
    check_limits(s.name, info.sr, info.channels)
    if info.duration is None:
        return info
    asked, max_duration = max_duration, scaled_limit(max_duration, info.sr, info.channels)
    # Headers of WAV/FLAC/AIFF are exact; MP3/AAC/Opus durations can be estimates, so only
    # reject those early when clearly too long (decoding enforces the exact limit).
    if info.duration > max_duration + header_slack(info, max_duration):
        raise too_long(s.name, info.duration, max_duration, estimate=not info.exact,
                        scaled=(asked, info.sr, info.channels))
    return info


class _Output:
    """A float32 buffer filled in order; allocated once from the expected length, grows 1.5x."""

    def __init__(self, expected: int) -> None:
        self.buf = np.empty(max(1024, expected), dtype=np.float32)
        self.n = 0

    def add(self, x: np.ndarray) -> None:
        if self.n + len(x) > len(self.buf):
            grown = np.empty(max(self.n + len(x), int(len(self.buf) * 1.5)), dtype=np.float32)
            grown[: self.n] = self.buf[: self.n]
            self.buf = grown
        self.buf[self.n : self.n + len(x)] = x
        self.n += len(x)

    def result(self) -> np.ndarray:
        """The filled part (a copy when more than 1/8 of the buffer is unused)."""
        if self.n < len(self.buf) - len(self.buf) // 8:
            return self.buf[: self.n].copy()
        return self.buf[: self.n]


def _frame_limit(dec: Decoder, name: str, max_duration: float | None
                 ) -> tuple[int | None, AudioTooLong | None]:
    """``(most native frames to read, the error when more come)`` under ``max_duration``
    (:func:`scaled_limit` for the decoder's rate and channels); ``(None, None)`` without."""
    if max_duration is None:
        return None, None
    limit = scaled_limit(max_duration, dec.sr, dec.channels)
    err = too_long(name, None, limit, scaled=(max_duration, dec.sr, dec.channels))
    return math.ceil((limit + DURATION_SLACK) * dec.sr), err


def _checked_blocks(dec: Decoder, name: str, max_frames: int | None,
                    too_long: AudioTooLong | None) -> Iterator[np.ndarray]:
    """The decoder's ``(n, channels)`` blocks, checked (finite, within ``max_frames``)."""
    n = 0
    for block in dec.blocks(READ_FRAMES):
        check_finite(block, name, n / dec.sr, dec.sr)
        n += block.shape[0]
        if max_frames is not None and n > max_frames:
            raise too_long  # type: ignore[misc]
        yield block


def _mono_blocks(dec: Decoder, name: str, max_frames: int | None,
                 too_long: AudioTooLong | None) -> Iterator[np.ndarray]:
    """:func:`_checked_blocks` mixed to mono (:func:`mono_aligned`)."""
    yield from mono_aligned(_checked_blocks(dec, name, max_frames, too_long))


def mono_aligned(blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """Native ``(n, channels)`` blocks of any sizes, mixed to mono over the pieces
    ``[k * READ_FRAMES, (k + 1) * READ_FRAMES)`` of the file (the last one shorter): the
    channel weights (:func:`~emovox.audio.mixdown.channel_weights`) are decided per piece,
    so :func:`load_audio` and :func:`iter_blocks` mix a file alike, whatever sizes the
    decoder (an ffmpeg pipe) hands over (they differed: QA stop 30). Mono files are cut
    into the same pieces: the constant offset taken off before resampling is the first
    piece's on both paths (:func:`_native_offset`); a mono file passed through in the
    timeline's 60 s reads had its offset from the first minute, and where the offset
    drifted (0.02 for 6 s, then 0.2, in a 20 s 48 kHz file) the timeline's 16 kHz wave
    rang by 0.054 peak to peak in its first 10 ms, where :func:`load_audio`'s was flat
    (stop 55)."""
    held: list[np.ndarray] = []
    n_held = 0
    for block in blocks:
        held.append(block)
        n_held += len(block)
        while n_held >= READ_FRAMES:
            buf = held[0] if len(held) == 1 else np.concatenate(held)
            yield to_mono(buf[:READ_FRAMES])
            rest = buf[READ_FRAMES:]
            held, n_held = ([rest] if len(rest) else []), len(rest)
    if n_held:
        yield to_mono(held[0] if len(held) == 1 else np.concatenate(held))


def iter_native_blocks(src: AudioSource, *, filename: str | None = None,
                       max_duration: float | None = None) -> Iterator[np.ndarray]:
    """The file as recorded: float32 ``(n, channels)`` blocks at its own rate, neither mixed
    nor resampled (for level and clipping measured per channel), with :func:`load_audio`'s
    checks and errors; memory is one block."""
    s = Source(src, filename)
    if max_duration is not None:
        _check_header(s, max_duration)
    with open_decoder(s) as dec:
        yield from _checked_blocks(dec, s.name, *_frame_limit(dec, s.name, max_duration))


def _decode(s: Source, sr: int, max_duration: float | None
            ) -> tuple[np.ndarray, int, int, list[str]]:
    """Decode ``s`` block by block to mono at ``sr`` -> (wave, orig_sr, orig_channels,
    notes: a file cut short or damaged part-way, :class:`Decoder`)."""
    with open_decoder(s) as dec:
        orig_sr = dec.sr
        max_frames, too_long = _frame_limit(dec, s.name, max_duration)
        blocks = _mono_blocks(dec, s.name, max_frames, too_long)
        head: list[np.ndarray] = []
        if dec.frames is not None and dec.frames <= READ_FRAMES:  # one block, says the header
            head = list(itertools.islice(blocks, 2))
            if len(head) == 1:  # ... and it was: one soxr call, the streaming call's samples
                note = dec.length_note(len(head[0]), s)
                native = remove_dc(head[0]) if orig_sr != sr else head[0]
                return (resample(native, orig_sr, sr), orig_sr, dec.channels,
                        [*dec.notes, *([note] if note else [])])
        expected = dec.frames if dec.frames is not None else READ_FRAMES
        if max_frames is not None:
            expected = min(expected, max_frames)
        n_out = math.ceil(expected * sr / orig_sr) + 64
        # a length the header states and the duration limit allows is trusted: one buffer of
        # exactly that size (no 1.5x growth, no final copy); otherwise start small and grow
        trusted = dec.frames is not None and max_frames is not None
        out = _Output(n_out if trusted else min(n_out, _MAX_PREALLOC))
        stream = (
            soxr.ResampleStream(orig_sr, sr, 1, dtype="float32", quality=RESAMPLE_QUALITY)
            if orig_sr != sr
            else None
        )
        n, offset = 0, None
        for mono in itertools.chain(head, blocks):
            n += len(mono)
            if stream is not None:  # the first block's offset, removed before resampling
                offset = _native_offset(mono) if offset is None else offset
                out.add(stream.resample_chunk(mono - offset if offset else mono, last=False))
            else:
                out.add(mono)
        if n == 0:
            raise EmptyAudio(_as_refusal(wav_length_note(s)) or (
                f"{s.name}: contains no audio samples (the header is there but the data is "
                "empty). Re-export the recording."))
        if stream is not None:
            out.add(stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True))
        note = dec.length_note(n, s)
        return out.result(), orig_sr, dec.channels, [*dec.notes, *([note] if note else [])]


def _native_offset(block: np.ndarray) -> np.float32:
    """A block's constant offset (0 when negligible), taken off every block before they are
    resampled: resampling the step where an offset starts and stops rings, and the mean
    taken off afterwards left a burst of about -23 dBFS in a 48 kHz file's first and last
    10 ms that changed its answer (code review, stop 47). Whatever offset is left is
    removed after resampling, as for every wave."""
    m = float(np.mean(block, dtype=np.float64)) if block.size else 0.0
    return np.float32(m if abs(m) >= DC_NEGLIGIBLE else 0.0)


def _as_refusal(note: str | None) -> str | None:
    """A length note as the reason a file is refused: it must not say it was answered (a WAV
    header with no data after it: "...; answered on what is there", in a 422: API QA,
    stop 37)."""
    return note.replace("; answered on what is there.", ": there is no audio to answer.") \
        if note else None


def header_notes(s: Source, info: AudioInfo | None = None) -> list[str]:
    """What the container says that the user should know, each also logged: a WAV cut
    short or never finished (QA stop 30), an AIFF or Ogg cut short (stop 37,
    :mod:`emovox.audio.length`), several audio tracks of which only the first is
    read (stop 31). ``info``: the header already probed, if it was."""
    notes = [n for n in (container_length_note(s), tracks_note(s, info)) if n]
    for note in notes:
        log.warning("%s", note)
    return notes


def file_notes(src: AudioSource, *, filename: str | None = None) -> tuple[str, ...]:
    """:func:`header_notes` of a file or its bytes, for readers that stream it
    (:func:`iter_blocks` has no place for them; ``emovox timeline`` asks here)."""
    return tuple(header_notes(Source(src, filename)))


def load_audio(
    src: AudioSource,
    *,
    sr: int = TARGET_SR,
    trim: bool = False,
    top_db: float = 40.0,
    min_duration: float | None = None,
    max_duration: float | None = None,
    filename: str | None = None,
    silence_dbfs: float = SILENCE_DBFS,
) -> Audio:
    """Decode an audio file (or its bytes) to a mono ``float32`` waveform at ``sr`` Hz,
    its constant offset removed (:func:`~emovox.audio.signal.remove_dc`).

    Args:
        src: path to a file, or the file's contents as bytes.
        sr: output sample rate in Hz (default 16 kHz).
        trim: cut leading/trailing silence (``top_db`` below the loudest frame, see
            :func:`~emovox.audio.signal.trim_silence`; relative, so faint input too).
        top_db: trimming threshold in dB below the peak frame RMS.
        min_duration: raise :class:`AudioTooShort` when the (trimmed) result is shorter, in s.
        max_duration: raise :class:`AudioTooLong` when the file is longer, in s (50 ms
            tolerance for codec padding); checked from the header before decoding whenever the
            header states a duration, and decoding stops as soon as the limit is passed, so
            memory never exceeds what the limit allows.
        filename: the original file's name, used in messages and the log (and for bytes
            as an extension hint for ffmpeg); for a path, a copy's (an upload's) own name.
        silence_dbfs: silence threshold for :attr:`Audio.silent` (see ``is_silent``).

    Returns:
        :class:`Audio` whose ``wave`` has shape ``(n_samples,)``,
        ``n_samples = round(n_native_samples * sr / orig_sr)`` (before trimming).

    Raises:
        AudioFileNotFound: the path is missing or is a directory.
        EmptyAudio: 0 bytes, or no samples decoded.
        NotAudio: the content is not audio (text, random bytes, unknown format).
        UnsupportedCodec: an audio container that cannot be decoded here (install ffmpeg), or
            a damaged file.
        AudioOutOfLimits: the header's sample rate or channel count is outside the limits.
        InvalidSamples: NaN or infinite samples.
        AudioTooShort, AudioTooLong: outside ``min_duration`` / ``max_duration``.

    Silent or near-silent input is not an error: ``silent`` is True and a warning is logged.
    """
    if sr <= 0:
        raise ValueError(f"sr must be a positive sample rate in Hz, got {sr}")
    s = Source(src, filename)
    info = _check_header(s, max_duration) if max_duration is not None else None
    wave, orig_sr, orig_channels, cut = _decode(s, sr, max_duration)
    if len(wave) == 0:  # a sample or two at 44.1 kHz resample to none: iter_blocks refused
        raise EmptyAudio(f"{s.name}: holds too few samples to hear anything (less than "
                         f"one at {sr} Hz). Re-export the recording.")  # it said "muted" (47)
    wave = remove_dc(wave, in_place=True)  # a constant offset is no sound (our own buffer)
    notes = header_notes(s, info) + cut
    silent = is_silent(wave, threshold_dbfs=silence_dbfs)
    if silent:
        notes.append(faint_note(s.name, silence_dbfs, digital=not wave.any()))
        log.warning("%s", notes[-1])
    elif hum := hum_note(s.name, wave, sr):  # said, never removed (stop 32)
        notes.append(hum)
        log.warning("%s", hum)
    if trim:  # relative to the loudest frame: faint input too (stop 39)
        trimmed = trim_silence(wave, sr, top_db=top_db)
        if 0 < len(trimmed) < len(wave):
            log.debug("%s: trimmed %.3f s of silence", s.name, (len(wave) - len(trimmed)) / sr)
            wave = np.ascontiguousarray(trimmed)

    duration = len(wave) / sr
    if min_duration is not None and duration < min_duration:
        after = " after trimming silence" if trim else ""
        raise AudioTooShort(
            f"{s.name}: is only {duration:.2f} s long{after}, shorter than the "
            f"{min_duration:g} s minimum. Use a longer recording."
        )
    return Audio(wave=wave, sr=int(sr), source=s.name, orig_sr=int(orig_sr),
                 orig_channels=int(orig_channels), silent=bool(silent), notes=tuple(notes))


def iter_blocks(
    src: AudioSource,
    *,
    block_s: float = 30.0,
    sr: int = TARGET_SR,
    filename: str | None = None,
    quality: str = RESAMPLE_QUALITY,
    max_duration: float | None = None,
    notes: list[str] | None = None,
) -> Iterator[tuple[float, np.ndarray]]:
    """Stream a long file as consecutive mono blocks, keeping memory flat.

    The file is read block by block (libsndfile, or an ffmpeg pipe), mixed to mono and
    resampled with a streaming soxr resampler, so the concatenation of all blocks matches
    :func:`load_audio` up to tiny resampler edge effects. The source is opened (and bad input
    rejected with the errors of :func:`load_audio`) when this function is called, not on the
    first ``next()``.

    Args:
        src: path (or bytes) of an audio file.
        block_s: block length in seconds; every block but the last has exactly
            ``round(block_s * sr)`` samples.
        sr: output rate in Hz.
        filename: name hint for bytes input.
        quality: soxr quality.
        max_duration: raise :class:`AudioTooLong` (when reached) once more than this many
            seconds (+50 ms) have been read; None: no limit (memory stays flat anyway).
        notes: given, it receives (once the blocks are read) what the decoder found: a
            file cut short or damaged part-way ends there with a note, not an error.

    Yields:
        ``(start_s, block)``: the block's start time in seconds (``k * block_len / sr``) and
        a ``float32`` array of shape ``(n,)``, ``0 < n <= round(block_s * sr)``.

    Raises:
        AudioOutOfLimits: (at call time) the header's rate or channel count is refused.
        InvalidSamples: when a block with NaN/inf samples is reached.
        EmptyAudio: (at the end) when the file held no samples at all.
    """
    if block_s <= 0 or sr <= 0:
        raise ValueError(f"block_s and sr must be positive, got block_s={block_s}, sr={sr}")
    block_len = int(round(block_s * sr))
    if block_len <= 0:
        raise ValueError(f"block_s={block_s} s is shorter than one sample at {sr} Hz")
    s = Source(src, filename)
    dec = open_decoder(s)
    gen = _iter_blocks(s, dec, block_len, sr, quality, _frame_limit(dec, s.name, max_duration),
                       notes)
    weakref.finalize(gen, dec.close)  # release the file / ffmpeg even if never iterated
    return gen


def _iter_blocks(
    s: Source,
    dec: Decoder,
    block_len: int,
    sr: int,
    quality: str,
    limit: tuple[int | None, AudioTooLong | None],
    notes: list[str] | None,
) -> Iterator[tuple[float, np.ndarray]]:
    max_frames, too_long = limit
    # native frames per read: a block's worth, at most 4 Mi frames and at most what
    # READ_FRAMES frames of MAX_CHANNELS take (64 MB): a 27 KB 16-channel file made a 1 GB
    # read here (security QA, stop 31)
    native = max(1024, min(int(round(block_len * dec.sr / sr)), 1 << 22,
                           max(READ_FRAMES, READ_FRAMES * MAX_CHANNELS // max(1, dec.channels))))
    stream = (
        soxr.ResampleStream(dec.sr, sr, 1, dtype="float32", quality=quality)
        if dec.sr != sr
        else None
    )
    pending: list[np.ndarray] = []
    n_pending = 0
    emitted = 0
    n_in = 0

    def take(n: int) -> np.ndarray:
        nonlocal pending, n_pending
        buf = pending[0] if len(pending) == 1 else np.concatenate(pending)
        out, rest = buf[:n], buf[n:]
        pending = [rest] if rest.size else []
        n_pending = int(rest.size)
        return np.array(out, dtype=np.float32)  # a copy: never a view into a larger buffer

    def checked() -> Iterator[np.ndarray]:
        nonlocal n_in
        for block in dec.blocks(native):
            check_finite(block, s.name, n_in / dec.sr, dec.sr)
            n_in += block.shape[0]
            if max_frames is not None and n_in > max_frames:
                raise too_long  # type: ignore[misc]
            yield block

    offset = None
    with dec:
        for mono in mono_aligned(checked()):
            if stream is not None:  # as load_audio: the offset off before resampling
                offset = _native_offset(mono) if offset is None else offset
                mono = mono - offset if offset else mono
            out = stream.resample_chunk(mono, last=False) if stream is not None else mono
            if out.size:
                pending.append(np.asarray(out, dtype=np.float32))
                n_pending += int(out.size)
            while n_pending >= block_len:
                yield emitted / sr, take(block_len)
                emitted += block_len
        if stream is not None and n_in > 0:
            tail = stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
            if tail.size:
                pending.append(np.asarray(tail, dtype=np.float32))
                n_pending += int(tail.size)
    if notes is not None:
        notes += [*dec.notes, *filter(None, [dec.length_note(n_in, s)])]
    while n_pending > 0:
        n = min(block_len, n_pending)
        yield emitted / sr, take(n)
        emitted += n
    if emitted == 0:
        raise EmptyAudio(f"{s.name}: contains no audio samples. Re-export the recording.")
