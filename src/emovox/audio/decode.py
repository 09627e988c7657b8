"""Audio decoding: the only place in emovox that turns files (or bytes) into waveforms.

Every waveform leaving this module is a 1-D ``float32`` NumPy array of shape ``(n_samples,)``,
mono, at ``TARGET_SR`` (16 kHz) unless the caller asks for another rate, with samples in the
nominal range [-1, 1] (full scale).

Decoding strategy
-----------------
1. The first bytes are sniffed to recognise the container (content, not the file extension:
   AIFF data saved as ``.wav`` loads fine, a text file named ``.wav`` is rejected).
2. libsndfile (via :mod:`soundfile`) decodes WAV/RF64/AIFF/FLAC/OGG (Vorbis, Opus)/MP3/CAF/...
3. Anything libsndfile cannot open (M4A/AAC, WebM, WMA, ...) is decoded by ``ffmpeg`` in a
   subprocess, which writes native-rate, native-channel 32-bit float samples to a pipe.

Channel mixing (mean of channels) and resampling (soxr, "HQ") are always done here in NumPy,
never by ffmpeg, so an M4A and a WAV of the same recording give the same waveform. (ffmpeg's
own float down-mix of stereo is ``0.707 * (L + R)``, 3 dB louder than the mean.)

Every failure is raised as a subclass of :class:`emovox.errors.AudioError` whose message names
the file and says what to do about it; raw ``soundfile``/``RuntimeError`` exceptions never leak.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import re
import shutil
import subprocess
import tempfile
import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Union

import numpy as np
import soundfile as sf
import soxr

from emovox.errors import (
    AudioError,
    AudioFileNotFound,
    AudioTooLong,
    AudioTooShort,
    EmptyAudio,
    InvalidSamples,
    NotAudio,
    UnsupportedCodec,
)

log = logging.getLogger(__name__)

__all__ = [
    "TARGET_SR",
    "SILENCE_DBFS",
    "Audio",
    "AudioInfo",
    "AudioSource",
    "load_audio",
    "probe",
    "iter_blocks",
    "is_silent",
    "trim_silence",
    "to_mono",
    "to_float32",
    "resample",
    "sniff_format",
    "ffmpeg_available",
]

#: Sample rate (Hz) every model in emovox expects.
TARGET_SR: int = 16000
#: Default silence threshold: a signal whose loudest frame is below this RMS level (dBFS) is silent.
SILENCE_DBFS: float = -60.0
#: Default soxr quality for every resampling in emovox.
RESAMPLE_QUALITY: str = "HQ"

#: A path to an audio file, or the encoded file contents in memory.
AudioSource = Union[str, os.PathLike, bytes, bytearray, memoryview]  # noqa: UP007

# Native frames read per block when decoding a whole file (mono-mixed block by block so the
# multichannel copy of a long file never sits in memory at once).
_READ_FRAMES = 1 << 18
# ffmpeg pipe read size in bytes.
_PIPE_BYTES = 1 << 20
# Tolerance (s) on durations reported by headers when enforcing max_duration early.
_DURATION_SLACK = 0.05

# Containers whose header states the exact number of frames.
_EXACT_LENGTH_KINDS = frozenset({"wav", "aiff", "flac", "caf", "au", "w64"})
# Containers libsndfile can usually decode itself.
_SOUNDFILE_KINDS = frozenset({"wav", "aiff", "flac", "ogg", "mp3", "caf", "au", "w64"})
# Human-readable names for error messages.
_KIND_NAMES = {
    "wav": "WAV",
    "aiff": "AIFF",
    "flac": "FLAC",
    "ogg": "Ogg (Vorbis/Opus)",
    "mp3": "MP3",
    "caf": "CAF",
    "au": "AU/SND",
    "w64": "Wave64",
    "mp4": "MP4/M4A",
    "aac": "AAC",
    "matroska": "WebM/Matroska",
    "asf": "WMA/ASF",
    "amr": "AMR",
    "wavpack": "WavPack",
    "ape": "Monkey's Audio",
}


# --------------------------------------------------------------------------------------------
# Data classes
# --------------------------------------------------------------------------------------------


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
    """

    wave: np.ndarray
    sr: int
    source: str
    orig_sr: int
    orig_channels: int
    silent: bool

    @property
    def duration(self) -> float:
        """Length of ``wave`` in seconds."""
        return len(self.wave) / float(self.sr)


@dataclass(frozen=True)
class AudioInfo:
    """What a file's header says, obtained without decoding its samples.

    Attributes:
        source: the path, filename hint or ``"<bytes>"``.
        format: container name (e.g. ``"WAV"``, ``"FLAC"``, ``"mov,mp4,m4a,3gp,3g2,mj2"``).
        codec: sample encoding / codec (e.g. ``"PCM_16"``, ``"aac"``), if known.
        sr: sample rate in Hz.
        channels: number of channels.
        frames: number of sample frames per channel, if known (may be approximate for MP3).
        duration: length in seconds, or None when the container does not say.
        backend: ``"soundfile"``, ``"ffprobe"`` or ``"ffmpeg"``.
    """

    source: str
    format: str
    codec: str | None
    sr: int
    channels: int
    frames: int | None
    duration: float | None
    backend: str


# --------------------------------------------------------------------------------------------
# Small array helpers
# --------------------------------------------------------------------------------------------


def to_float32(x: np.ndarray) -> np.ndarray:
    """Convert samples of any numeric dtype to ``float32`` at full scale 1.0.

    Signed integers are divided by ``2**(bits-1)`` (int16 32767 -> ~1.0), unsigned integers are
    centred first (uint8 128 -> 0.0), floats are cast. Shape is unchanged.
    """
    x = np.asarray(x)
    if x.dtype == np.float32:
        return x
    if np.issubdtype(x.dtype, np.floating):
        return x.astype(np.float32)
    if np.issubdtype(x.dtype, np.signedinteger):
        scale = float(2 ** (8 * x.dtype.itemsize - 1))
        return (x.astype(np.float64) / scale).astype(np.float32)
    if np.issubdtype(x.dtype, np.unsignedinteger):
        half = float(2 ** (8 * x.dtype.itemsize - 1))
        return ((x.astype(np.float64) - half) / half).astype(np.float32)
    if x.dtype == np.bool_:
        return x.astype(np.float32)
    raise TypeError(f"cannot convert samples of dtype {x.dtype} to float32 audio")


def to_mono(x: np.ndarray, *, channel_axis: int = -1) -> np.ndarray:
    """Mix a signal down to mono by averaging its channels.

    Args:
        x: shape ``(n_samples,)`` (returned as float32) or ``(n_samples, n_channels)``
            (soundfile layout; pass ``channel_axis=0`` for ``(n_channels, n_samples)``).
            Any numeric dtype; integers are scaled to full scale 1.0 (see :func:`to_float32`).
        channel_axis: which axis holds the channels when ``x`` is 2-D.

    Returns:
        ``float32`` array of shape ``(n_samples,)``.
    """
    x = to_float32(x)
    if x.ndim == 1:
        return x
    if x.ndim != 2:
        raise ValueError(f"expected a 1-D or 2-D signal, got shape {x.shape}")
    if x.shape[channel_axis] == 1:
        return np.ascontiguousarray(np.take(x, 0, axis=channel_axis))
    return x.mean(axis=channel_axis, dtype=np.float32)


def resample(
    x: np.ndarray, orig_sr: int, sr: int, *, quality: str = RESAMPLE_QUALITY
) -> np.ndarray:
    """Resample with soxr.

    Args:
        x: ``(n_samples,)`` or ``(n_samples, n_channels)``, any numeric dtype.
        orig_sr: rate of ``x`` in Hz.
        sr: wanted rate in Hz.
        quality: soxr quality, one of ``"QQ", "LQ", "MQ", "HQ", "VHQ"``.

    Returns:
        ``float32`` array with ``round(n_samples * sr / orig_sr)`` samples (same channel layout).
    """
    x = to_float32(x)
    if int(orig_sr) <= 0 or int(sr) <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_sr} -> {sr}")
    if int(orig_sr) == int(sr) or x.shape[0] == 0:
        return x
    y = soxr.resample(x, int(orig_sr), int(sr), quality=quality)
    return np.asarray(y, dtype=np.float32)


def _frame_rms(wave: np.ndarray, frame: int, hop: int) -> np.ndarray:
    """RMS of non-centred frames ``[i*hop, i*hop+frame)`` of a 1-D signal; shape ``(n_frames,)``.

    A signal shorter than one frame gives a single frame over the whole signal.
    """
    w = np.asarray(wave, dtype=np.float32)
    if len(w) <= frame:
        return np.array([math.sqrt(float(np.mean(np.square(w, dtype=np.float64))))])
    sq = np.square(w, dtype=np.float64)
    csum = np.concatenate([[0.0], np.cumsum(sq)])
    starts = np.arange(0, len(w) - frame + 1, hop)
    if starts[-1] + frame < len(w):  # cover the tail
        starts = np.append(starts, len(w) - frame)
    energy = (csum[starts + frame] - csum[starts]) / frame
    return np.sqrt(np.maximum(energy, 0.0))


def is_silent(
    wave: np.ndarray, *, threshold_dbfs: float = SILENCE_DBFS, frame_length: int = 1024
) -> bool:
    """True when even the loudest frame of ``wave`` is below ``threshold_dbfs``.

    Args:
        wave: ``(n_samples,)`` (or ``(n_samples, n_channels)``, mixed to mono first).
        threshold_dbfs: level in dB relative to full scale (RMS 1.0 = 0 dBFS; a full-scale
            sine is about -3 dBFS). Speech is typically -35 to -15 dBFS.
        frame_length: frame length in samples (64 ms at 16 kHz), half-overlapping frames.

    An empty signal is silent. Using the *peak* frame RMS means a mostly silent clip with a
    short utterance is not silent, while steady low-level hiss (e.g. -80 dBFS) is.
    """
    w = to_mono(np.asarray(wave))
    if w.size == 0:
        return True
    if not np.all(np.isfinite(w)):
        return False
    peak_rms = float(np.max(_frame_rms(w, frame_length, max(1, frame_length // 2))))
    if peak_rms <= 0.0:
        return True
    return 20.0 * math.log10(peak_rms) < threshold_dbfs


def _trim_bounds(wave: np.ndarray, sr: int, top_db: float) -> tuple[int, int]:
    """Sample range ``[start, end)`` whose frames are within ``top_db`` of the loudest frame."""
    frame = max(1, int(round(0.032 * sr)))  # 32 ms
    hop = max(1, int(round(0.008 * sr)))  # 8 ms
    rms = _frame_rms(wave, frame, hop)
    peak = float(rms.max()) if rms.size else 0.0
    if peak <= 0.0:
        return 0, 0
    loud = np.flatnonzero(rms > peak * 10.0 ** (-top_db / 20.0))
    if loud.size == 0:
        return 0, 0
    n = len(wave)
    if n <= frame:
        return 0, n
    starts = np.arange(0, n - frame + 1, hop)
    if starts[-1] + frame < n:
        starts = np.append(starts, n - frame)
    return int(starts[loud[0]]), int(min(n, starts[loud[-1]] + frame))


def trim_silence(wave: np.ndarray, sr: int, *, top_db: float = 40.0) -> np.ndarray:
    """Cut leading and trailing stretches more than ``top_db`` below the loudest frame.

    Args:
        wave: ``(n_samples,)`` float signal.
        sr: its sample rate in Hz (sets the 32 ms frame / 8 ms hop; edges are exact to ~32 ms).
        top_db: threshold in dB below the peak frame RMS.

    Returns:
        A view ``wave[start:end]``; the untouched ``wave`` when trimming would remove
        everything (all-zero input).
    """
    w = to_mono(np.asarray(wave))
    if w.size == 0:
        return w
    start, end = _trim_bounds(w, sr, top_db)
    if end <= start:
        return w
    return w[start:end]


# --------------------------------------------------------------------------------------------
# Format sniffing and source handling
# --------------------------------------------------------------------------------------------


def sniff_format(head: bytes) -> str | None:
    """Recognise an audio container from its first bytes (at least 12, ideally 64).

    Returns a short kind such as ``"wav"``, ``"aiff"``, ``"flac"``, ``"ogg"``, ``"mp3"``,
    ``"mp4"``, ``"aac"``, ``"matroska"``, or None when no known signature matches.
    """
    h = bytes(head[:64])
    if len(h) < 4:
        return None
    if h[:4] in (b"RIFF", b"RIFX", b"RF64", b"BW64") and h[8:12] == b"WAVE":
        return "wav"
    if h[:4] == b"FORM" and h[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if h[:16] == b"riff\x2e\x91\xcf\x11\xa5\xd6\x28\xdb\x04\xc1\x00\x00":
        return "w64"
    if h[:4] == b"fLaC":
        return "flac"
    if h[:4] == b"OggS":
        return "ogg"
    if h[:4] == b"caff":
        return "caf"
    if h[:4] == b".snd":
        return "au"
    if h[4:8] == b"ftyp":
        return "mp4"
    if h[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska"
    if h[:4] == b"ADIF":
        return "aac"
    if h[:8] == b"\x30\x26\xb2\x75\x8e\x66\xcf\x11":
        return "asf"
    if h[:5] == b"#!AMR":
        return "amr"
    if h[:4] == b"wvpk":
        return "wavpack"
    if h[:4] == b"MAC ":
        return "ape"
    if h[:3] == b"ID3":
        return "mp3"
    if h[0] == 0xFF and (h[1] & 0xE0) == 0xE0:
        # MPEG audio frame sync: layer bits 00 mean ADTS AAC, otherwise MPEG layer I/II/III.
        return "aac" if (h[1] & 0x06) == 0 else "mp3"
    return None


def _looks_like_text(head: bytes) -> bool:
    """True when the bytes are almost all printable text (a text file is never audio)."""
    h = bytes(head[:1024])
    if not h or b"\x00" in h:
        return False
    control = sum(1 for b in h if (b < 32 and b not in (9, 10, 12, 13)) or b == 127)
    try:
        h.decode("utf-8")
    except UnicodeDecodeError as e:
        # A multi-byte character cut at the end is still text; anything else is binary.
        if e.start < len(h) - 3:
            return False
    return control <= 0.02 * len(h)


class _Source:
    """A validated audio source: a readable regular file or an in-memory byte string."""

    def __init__(self, src: AudioSource, filename: str | None = None) -> None:
        self.path: Path | None = None
        self.data: bytes | None = None
        if isinstance(src, (bytes, bytearray, memoryview)):
            self.data = bytes(src)
            self.name = filename or "<bytes>"
            if len(self.data) == 0:
                raise EmptyAudio(f"{self.name}: the audio data is empty (0 bytes).")
            self.head = self.data[:1024]
            self.size = len(self.data)
        elif isinstance(src, (str, os.PathLike)):
            path = Path(os.fspath(src)).expanduser()
            self.name = str(src)
            if not path.exists():
                raise AudioFileNotFound(f"{self.name}: no such file. Check the path and try again.")
            if path.is_dir():
                raise AudioFileNotFound(
                    f"{self.name}: is a directory, not an audio file. Pass the path of one file."
                )
            if not path.is_file():
                raise AudioFileNotFound(f"{self.name}: is not a regular file.")
            self.path = path
            try:
                self.size = path.stat().st_size
                with open(path, "rb") as fh:
                    self.head = fh.read(1024)
            except PermissionError as e:
                raise AudioError(
                    f"{self.name}: permission denied; make the file readable and try again."
                ) from e
            except OSError as e:
                raise AudioError(f"{self.name}: cannot be read ({e.strerror or e}).") from e
            if self.size == 0:
                raise EmptyAudio(f"{self.name}: the file is empty (0 bytes).")
        else:
            raise TypeError(f"audio source must be a path or bytes, not {type(src).__name__}")
        self.kind = sniff_format(self.head)
        self.suffix = Path(filename or (self.name if self.path else "")).suffix.lower()

    def open_soundfile(self) -> sf.SoundFile:
        """Open with libsndfile; raises ``sf.LibsndfileError``/``RuntimeError`` on failure."""
        target: str | IO[bytes] = str(self.path) if self.path else io.BytesIO(self.data or b"")
        return sf.SoundFile(target)

    @property
    def kind_name(self) -> str:
        return _KIND_NAMES.get(self.kind or "", self.kind or "unknown")


def ffmpeg_available() -> bool:
    """True when an ``ffmpeg`` executable is on ``PATH`` (needed for M4A/AAC/WebM...)."""
    return _ffmpeg_exe() is not None


def _ffmpeg_exe() -> str | None:
    """Path of the ffmpeg executable (``$EMOVOX_FFMPEG`` overrides ``PATH``), or None."""
    return shutil.which(os.environ.get("EMOVOX_FFMPEG", "ffmpeg"))


def _ffprobe_exe() -> str | None:
    """Path of ffprobe (``$EMOVOX_FFPROBE`` overrides; else next to ffmpeg, else PATH)."""
    env = os.environ.get("EMOVOX_FFPROBE")
    if env:
        return shutil.which(env)
    ff = _ffmpeg_exe()
    if ff:
        sibling = Path(ff).with_name("ffprobe" + Path(ff).suffix)
        if sibling.is_file():
            return str(sibling)
    return shutil.which("ffprobe")


def _install_ffmpeg_hint() -> str:
    return (
        "install ffmpeg (Debian/Ubuntu: `apt-get install ffmpeg`, macOS: `brew install ffmpeg`, "
        "conda: `conda install -c conda-forge ffmpeg`) or convert the file to WAV or FLAC"
    )


# --------------------------------------------------------------------------------------------
# Decoders: each yields (orig_sr, orig_channels) then float32 blocks of shape (frames, channels)
# --------------------------------------------------------------------------------------------


class _Decoded:
    """An opened decoder: ``sr``/``channels`` known, samples pulled with :meth:`blocks`.

    Always :meth:`close` it (idempotent); it owns a SoundFile or an ffmpeg process.
    """

    def __init__(
        self,
        sr: int,
        channels: int,
        backend: str,
        read: Callable[[int], Iterator[np.ndarray]],
        close: Callable[[], None],
    ) -> None:
        self.sr = int(sr)
        self.channels = int(channels)
        self.backend = backend
        self._read = read
        self._close = close
        self._closed = False

    def blocks(self, frames: int) -> Iterator[np.ndarray]:
        """float32 blocks of shape ``(<= frames, channels)`` until the real end of the data."""
        return self._read(max(1, int(frames)))

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._close()

    def __enter__(self) -> _Decoded:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _open_soundfile(s: _Source) -> _Decoded:
    """Open with libsndfile; raises ``sf.LibsndfileError``/``RuntimeError`` when it cannot."""
    f = s.open_soundfile()
    if f.samplerate <= 0 or f.channels <= 0:
        f.close()
        raise sf.LibsndfileError(0, f"invalid header (sr={f.samplerate}, channels={f.channels})")

    def read(frames: int) -> Iterator[np.ndarray]:
        # Read to the real end: headers of truncated files overstate the length.
        while True:
            try:
                block = f.read(frames, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as e:
                raise UnsupportedCodec(
                    f"{s.name}: decoding failed part-way through ({e}). The file is probably "
                    "damaged or truncated; re-export or re-encode it."
                ) from e
            if block.shape[0] == 0:
                return
            yield block

    return _Decoded(f.samplerate, f.channels, "soundfile", read, f.close)


def _parse_wav_stream_header(stream: IO[bytes]) -> tuple[int, int]:
    """Parse the streamed WAV header ffmpeg writes (sizes may be 0xFFFFFFFF); stop at ``data``.

    Returns ``(sample_rate, channels)``; the stream is left at the first sample byte.
    Raises EOFError when the stream ends first, ValueError on an unexpected layout.
    """

    def exact(n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = stream.read(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    riff = exact(12)
    if riff[:4] not in (b"RIFF", b"RF64") or riff[8:12] != b"WAVE":
        raise ValueError("unexpected ffmpeg output header")
    sr = channels = 0
    while True:
        cid, size = exact(4), int.from_bytes(exact(4), "little")
        if cid == b"data":
            if not sr or not channels:
                raise ValueError("ffmpeg output has no fmt chunk")
            return sr, channels
        if size > 1 << 16:
            raise ValueError(f"unexpected {cid!r} chunk of {size} bytes in ffmpeg output")
        body = exact(size + (size & 1))
        if cid == b"fmt ":
            fmt_tag = int.from_bytes(body[0:2], "little")
            channels = int.from_bytes(body[2:4], "little")
            sr = int.from_bytes(body[4:8], "little")
            bits = int.from_bytes(body[14:16], "little")
            if bits != 32 or fmt_tag not in (3, 0xFFFE):
                raise ValueError(f"unexpected ffmpeg sample format (tag={fmt_tag}, bits={bits})")


class _FFmpegError(Exception):
    """ffmpeg ran but could not decode; ``str()`` is the gist of its stderr."""


def _open_ffmpeg(s: _Source, *, via_tempfile: bool = False) -> _Decoded:
    """Start ffmpeg decoding ``s`` to native-rate, native-channel float32 WAV on a pipe.

    Bytes input goes through stdin (or a temp file named with the ``filename`` suffix when
    ``via_tempfile``). Raises :class:`_FFmpegError` when ffmpeg fails before the first sample,
    ``OSError`` when it cannot be started.
    """
    exe = _ffmpeg_exe()
    if exe is None:
        raise FileNotFoundError("ffmpeg is not installed")
    tmpdir = tempfile.TemporaryDirectory(prefix="emovox-") if via_tempfile else None
    stdin_data: bytes | None = None
    if s.path is not None:
        inp = "file:" + str(s.path.resolve())
    elif tmpdir is not None:
        suffix = s.suffix if re.fullmatch(r"\.\w{1,8}", s.suffix) else ""
        tmp = Path(tmpdir.name) / ("input" + suffix)
        tmp.write_bytes(s.data or b"")
        inp = "file:" + str(tmp)
    else:
        inp, stdin_data = "pipe:0", s.data
    cmd = [
        exe, "-nostdin", "-hide_banner", "-v", "error", "-i", inp,
        "-map", "0:a:0", "-vn", "-sn", "-dn", "-c:a", "pcm_f32le",
        "-f", "wav", "-fflags", "+bitexact", "-map_metadata", "-1", "pipe:1",
    ]  # fmt: skip
    err = tempfile.TemporaryFile()  # a file, not a pipe: a chatty ffmpeg can never deadlock us
    try:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
        )
    except OSError:
        err.close()
        if tmpdir is not None:
            tmpdir.cleanup()
        raise
    feeder: threading.Thread | None = None
    if stdin_data is not None:
        pipe_in = proc.stdin
        assert pipe_in is not None

        def feed() -> None:
            try:
                pipe_in.write(stdin_data)
            except OSError:
                pass  # ffmpeg stopped reading early; its stderr says why
            finally:
                try:
                    pipe_in.close()
                except OSError:
                    pass

        feeder = threading.Thread(target=feed, name="emovox-ffmpeg-stdin", daemon=True)
        feeder.start()
    out = proc.stdout
    assert out is not None

    def stderr_text() -> str:
        err.seek(0)
        text = err.read().decode("utf-8", "replace")
        text = re.sub(r" @ 0x[0-9a-fA-F]+\]", "]", text)  # drop ffmpeg's object addresses
        lines = [ln.strip() for ln in text.splitlines()]
        lines = [ln for ln in lines if ln]
        return "; ".join(lines[-3:]) or f"ffmpeg exited with status {proc.returncode}"

    def close() -> None:
        out.close()
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if feeder is not None:
            feeder.join(timeout=10)
        err.close()
        if tmpdir is not None:
            tmpdir.cleanup()

    try:
        sr, channels = _parse_wav_stream_header(out)
    except (EOFError, ValueError) as e:
        proc.wait()
        msg = stderr_text() if isinstance(e, EOFError) else f"{e}; {stderr_text()}"
        close()
        raise _FFmpegError(msg) from None

    def read(frames: int) -> Iterator[np.ndarray]:
        frame_bytes = 4 * channels
        want = frame_bytes * min(frames, max(1, _PIPE_BYTES // frame_bytes) * 8)
        pending = b""
        while True:
            chunk = out.read(want)
            if not chunk:
                break
            pending += chunk
            usable = len(pending) - len(pending) % frame_bytes
            if usable:
                block = np.frombuffer(pending[:usable], dtype="<f4").reshape(-1, channels)
                pending = pending[usable:]
                yield block.astype(np.float32)
        if proc.wait() != 0:
            raise UnsupportedCodec(
                f"{s.name}: ffmpeg failed part-way through decoding ({stderr_text()}). The file "
                "is probably damaged or truncated; re-export or re-encode it."
            )

    return _Decoded(sr, channels, "ffmpeg", read, close)


def _open_decoder(s: _Source) -> _Decoded:
    """Open the best decoder for ``s``, or raise the typed error that explains the failure."""
    if s.kind is None and _looks_like_text(s.head):
        start = s.head[:24].decode("utf-8", "replace")
        raise NotAudio(
            f"{s.name}: this is a text file, not audio (it starts with {start!r}). "
            "Pass a WAV, FLAC, MP3, OGG or M4A recording."
        )
    sf_error: Exception | None = None
    if s.kind is None or s.kind in _SOUNDFILE_KINDS:
        try:
            return _open_soundfile(s)
        except (sf.LibsndfileError, RuntimeError, ValueError, OSError) as e:
            sf_error = e
            log.debug("%s: libsndfile cannot open it (%s)", s.name, e)
    ff_error: str | None = None
    if _ffmpeg_exe() is not None:
        attempts = [False] + ([True] if s.data is not None and s.kind == "mp4" else [])
        for via_tempfile in attempts:  # MP4 with its index at the end may need a seekable file
            try:
                dec = _open_ffmpeg(s, via_tempfile=via_tempfile)
                log.debug("%s: decoding %s with ffmpeg", s.name, s.kind_name)
                return dec
            except _FFmpegError as e:
                ff_error = str(e)
            except OSError as e:
                ff_error = f"could not run ffmpeg ({e})"
        log.debug("%s: ffmpeg cannot decode it either: %s", s.name, ff_error)
    if s.kind is None:
        if ff_error is None:
            tried = (
                "libsndfile cannot open it. If it is audio in an unusual format, installing "
                "ffmpeg may let emovox read it"
            )
        else:
            tried = "neither libsndfile nor ffmpeg can read it"
        raise NotAudio(
            f"{s.name}: not a recognisable audio file (its first bytes match no known audio "
            f"format and {tried}). Check that it is really an audio recording and not damaged; "
            "WAV, FLAC, MP3, OGG and M4A are supported."
        )
    if ff_error is None:
        detail = f" (libsndfile: {sf_error})" if sf_error else ""
        raise UnsupportedCodec(
            f"{s.name}: looks like {s.kind_name}, which cannot be decoded without ffmpeg"
            f"{detail}. To read it, {_install_ffmpeg_hint()}."
        )
    detail = f"libsndfile: {sf_error}; " if sf_error else ""
    raise UnsupportedCodec(
        f"{s.name}: looks like {s.kind_name} but could not be decoded ({detail}ffmpeg: "
        f"{ff_error}). The file may be damaged or truncated, or use a codec this ffmpeg build "
        "lacks; re-encode it to WAV or FLAC (e.g. `ffmpeg -i INPUT out.wav`)."
    )


def _check_finite(block: np.ndarray, name: str, offset_s: float, sr: int) -> None:
    """Raise InvalidSamples when a native ``(frames, channels)`` block has NaN/inf samples."""
    if np.isfinite(block).all():
        return
    bad_frames = np.flatnonzero(~np.isfinite(block).all(axis=-1))
    raise InvalidSamples(
        f"{name}: contains NaN or infinite sample values (first at "
        f"{offset_s + bad_frames[0] / sr:.3f} s). The file is corrupt or was written from a "
        "broken computation; re-export it."
    )


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def probe(src: AudioSource, *, filename: str | None = None) -> AudioInfo:
    """Read duration, sample rate, channels and format from the header, without decoding.

    Uses ``soundfile.info`` semantics (libsndfile header); for containers libsndfile cannot
    open, ``ffprobe`` (or, failing that, ``ffmpeg -i``). Cheap enough to reject hour-long files
    before decoding them. ``duration`` may be None (or approximate, e.g. for MP3).

    Raises:
        AudioFileNotFound, EmptyAudio, NotAudio, UnsupportedCodec: as :func:`load_audio`.
    """
    return _probe(_Source(src, filename))


def _probe(s: _Source) -> AudioInfo:
    """:func:`probe` for an already validated source."""
    if s.kind is None and _looks_like_text(s.head):
        raise NotAudio(f"{s.name}: this is a text file, not audio.")
    if s.kind is None or s.kind in _SOUNDFILE_KINDS:
        try:
            with s.open_soundfile() as f:
                if f.samplerate <= 0 or f.channels <= 0:
                    raise ValueError("invalid header")
                frames = int(f.frames) if f.frames >= 0 else None
                return AudioInfo(
                    source=s.name,
                    format=str(f.format),
                    codec=str(f.subtype) if f.subtype else None,
                    sr=int(f.samplerate),
                    channels=int(f.channels),
                    frames=frames,
                    duration=frames / f.samplerate if frames is not None else None,
                    backend="soundfile",
                )
        except (sf.LibsndfileError, RuntimeError, ValueError, OSError) as e:
            log.debug("%s: libsndfile cannot read the header (%s)", s.name, e)
    info = _ffprobe_info(s)
    if info is not None:
        return info
    # No header reader worked: open a decoder, which either works or raises the right error.
    with _open_decoder(s) as dec:
        return AudioInfo(s.name, s.kind_name, None, dec.sr, dec.channels, None, None, dec.backend)


def _ffprobe_info(s: _Source) -> AudioInfo | None:
    """Header info via ffprobe (JSON) or ``ffmpeg -i`` (stderr parsing); None on failure."""
    inp = "pipe:0" if s.path is None else "file:" + str(s.path.resolve())
    exe = _ffprobe_exe()
    if exe is not None:
        cmd = [
            exe, "-v", "error", "-select_streams", "a:0", "-show_entries",
            "stream=codec_name,sample_rate,channels,duration:format=format_name,duration",
            "-of", "json", "-i", inp,
        ]  # fmt: skip
        try:
            r = subprocess.run(cmd, input=s.data, capture_output=True, timeout=120)
        except (OSError, subprocess.SubprocessError) as e:
            log.debug("%s: ffprobe failed to run: %s", s.name, e)
            return None
        if r.returncode != 0:
            log.debug("%s: ffprobe: %s", s.name, r.stderr.decode("utf-8", "replace").strip())
            return None
        try:
            doc = json.loads(r.stdout or b"{}")
            st = doc["streams"][0]
            sr, channels = int(st["sample_rate"]), int(st["channels"])
            fmt = doc.get("format", {})
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            return None
        if sr <= 0 or channels <= 0:
            return None
        duration = _float_or_none(st.get("duration"))
        if duration is None:
            duration = _float_or_none(fmt.get("duration"))
        return AudioInfo(
            source=s.name,
            format=str(fmt.get("format_name") or s.kind_name),
            codec=st.get("codec_name"),
            sr=sr,
            channels=channels,
            frames=int(round(duration * sr)) if duration is not None else None,
            duration=duration,
            backend="ffprobe",
        )
    ff = _ffmpeg_exe()
    if ff is None:
        return None
    try:
        r = subprocess.run(
            [ff, "-hide_banner", "-i", inp], input=s.data, capture_output=True, timeout=120
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return _parse_ffmpeg_banner(r.stderr.decode("utf-8", "replace"), s)


_CHANNEL_LAYOUTS = {
    "mono": 1, "stereo": 2, "downmix": 2, "2.1": 3, "3.0": 3, "3.0(back)": 3, "4.0": 4,
    "quad": 4, "quad(side)": 4, "3.1": 4, "5.0": 5, "5.0(side)": 5, "4.1": 5, "5.1": 6,
    "5.1(side)": 6, "6.0": 6, "6.0(front)": 6, "hexagonal": 6, "6.1": 7, "6.1(back)": 7,
    "6.1(front)": 7, "7.0": 7, "7.0(front)": 7, "7.1": 8, "7.1(wide)": 8,
    "7.1(wide-side)": 8, "octagonal": 8,
}  # fmt: skip


def _parse_ffmpeg_banner(text: str, s: _Source) -> AudioInfo | None:
    """Parse the stream summary ``ffmpeg -i`` prints (used only when ffprobe is missing)."""
    m = re.search(r"Stream #\d+:\d+.*?: Audio: ([^,\s]+)[^,]*, (\d+) Hz, ([^,]+),", text)
    if not m:
        return None
    layout = m.group(3).strip()
    n = re.match(r"(\d+) channels", layout)
    channels = int(n.group(1)) if n else _CHANNEL_LAYOUTS.get(layout)
    if channels is None:
        return None
    sr = int(m.group(2))
    d = re.search(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)", text)
    duration = int(d.group(1)) * 3600 + int(d.group(2)) * 60 + float(d.group(3)) if d else None
    fm = re.search(r"Input #0, (.+?), from ", text)
    return AudioInfo(
        source=s.name,
        format=fm.group(1) if fm else s.kind_name,
        codec=m.group(1),
        sr=sr,
        channels=channels,
        frames=int(round(duration * sr)) if duration is not None else None,
        duration=duration,
        backend="ffmpeg",
    )


def _float_or_none(v: object) -> float | None:
    """``float(v)`` when it is a finite non-negative number, else None (ffprobe says "N/A")."""
    try:
        f = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) and f >= 0 else None


def _too_long(name: str, duration: float | None, max_duration: float) -> AudioTooLong:
    length = f"is {duration:.2f} s long, " if duration is not None else "is "
    return AudioTooLong(
        f"{name}: {length}longer than the {max_duration:g} s limit. Cut it into shorter pieces "
        "(or raise the limit)."
    )


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
    """Decode an audio file (or its bytes) to a mono ``float32`` waveform at ``sr`` Hz.

    Args:
        src: path to a file, or the file's contents as bytes.
        sr: output sample rate in Hz (default 16 kHz).
        trim: cut leading/trailing silence (``top_db`` below the loudest frame, see
            :func:`trim_silence`). Silent input is never trimmed.
        top_db: trimming threshold in dB below the peak frame RMS.
        min_duration: raise :class:`AudioTooShort` when the (trimmed) result is shorter, in s.
        max_duration: raise :class:`AudioTooLong` when the file is longer, in s (50 ms
            tolerance for codec padding); checked from the header before decoding whenever the
            header states a duration, and decoding stops as soon as the limit is passed.
        filename: for bytes input, the original file name (used in messages and as an
            extension hint for ffmpeg).
        silence_dbfs: silence threshold for :attr:`Audio.silent` (see :func:`is_silent`).

    Returns:
        :class:`Audio` whose ``wave`` has shape ``(n_samples,)``,
        ``n_samples = round(n_native_samples * sr / orig_sr)`` (before trimming).

    Raises:
        AudioFileNotFound: the path is missing or is a directory.
        EmptyAudio: 0 bytes, or no samples decoded.
        NotAudio: the content is not audio (text, random bytes, unknown format).
        UnsupportedCodec: an audio container that cannot be decoded here (install ffmpeg), or
            a damaged file.
        InvalidSamples: NaN or infinite samples.
        AudioTooShort, AudioTooLong: outside ``min_duration`` / ``max_duration``.

    Silent or near-silent input is not an error: ``silent`` is True and a warning is logged.
    """
    if sr <= 0:
        raise ValueError(f"sr must be a positive sample rate in Hz, got {sr}")
    s = _Source(src, filename)

    if max_duration is not None:
        try:
            info: AudioInfo | None = _probe(s)
        except AudioError:
            info = None  # the decoder below raises the properly worded error
        if info is not None and info.duration is not None:
            # Headers of WAV/FLAC/AIFF are exact; MP3/AAC/Opus durations can be estimates, so
            # only reject those early when clearly too long (decoding enforces the exact limit).
            exact = info.backend == "soundfile" and s.kind in _EXACT_LENGTH_KINDS
            slack = _DURATION_SLACK if exact else 0.5 + 0.02 * max_duration
            if info.duration > max_duration + slack:
                raise _too_long(s.name, info.duration, max_duration)

    parts: list[np.ndarray] = []
    n = 0
    with _open_decoder(s) as dec:
        orig_sr, orig_channels = dec.sr, dec.channels
        max_frames = (
            math.ceil((max_duration + _DURATION_SLACK) * orig_sr)
            if max_duration is not None
            else None
        )
        for block in dec.blocks(_READ_FRAMES):
            _check_finite(block, s.name, n / orig_sr, orig_sr)
            parts.append(to_mono(block))
            n += block.shape[0]
            if max_frames is not None and n > max_frames:
                raise _too_long(s.name, None, max_duration)  # type: ignore[arg-type]
    if n == 0:
        raise EmptyAudio(
            f"{s.name}: contains no audio samples (the header is there but the data is "
            "empty). Re-export the recording."
        )
    mono = parts[0] if len(parts) == 1 else np.concatenate(parts)
    del parts
    wave = np.ascontiguousarray(resample(mono, orig_sr, sr), dtype=np.float32)
    del mono

    silent = is_silent(wave, threshold_dbfs=silence_dbfs)
    if silent:
        log.warning(
            "%s: the audio is silent or nearly so (loudest frame below %.0f dBFS); "
            "predictions on it are meaningless.",
            s.name,
            silence_dbfs,
        )
    elif trim:
        trimmed = trim_silence(wave, sr, top_db=top_db)
        if 0 < len(trimmed) < len(wave):
            log.debug("%s: trimmed %.3f s of silence", s.name, (len(wave) - len(trimmed)) / sr)
            wave = np.ascontiguousarray(trimmed)

    duration = len(wave) / sr
    if min_duration is not None and duration < min_duration:
        after = " after trimming silence" if trim and not silent else ""
        raise AudioTooShort(
            f"{s.name}: is only {duration:.2f} s long{after}, shorter than the "
            f"{min_duration:g} s minimum. Use a longer recording."
        )
    return Audio(
        wave=wave,
        sr=int(sr),
        source=s.name,
        orig_sr=int(orig_sr),
        orig_channels=int(orig_channels),
        silent=bool(silent),
    )


def iter_blocks(
    src: AudioSource,
    *,
    block_s: float = 30.0,
    sr: int = TARGET_SR,
    filename: str | None = None,
    quality: str = RESAMPLE_QUALITY,
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

    Yields:
        ``(start_s, block)``: the block's start time in seconds (``k * block_len / sr``) and
        a ``float32`` array of shape ``(n,)``, ``0 < n <= round(block_s * sr)``.

    Raises:
        InvalidSamples: when a block with NaN/inf samples is reached.
        EmptyAudio: (at the end) when the file held no samples at all.
    """
    if block_s <= 0 or sr <= 0:
        raise ValueError(f"block_s and sr must be positive, got block_s={block_s}, sr={sr}")
    block_len = int(round(block_s * sr))
    if block_len <= 0:
        raise ValueError(f"block_s={block_s} s is shorter than one sample at {sr} Hz")
    s = _Source(src, filename)
    dec = _open_decoder(s)
    gen = _iter_blocks(s, dec, block_len, sr, quality)
    weakref.finalize(gen, dec.close)  # release the file / ffmpeg even if never iterated
    return gen


def _iter_blocks(
    s: _Source, dec: _Decoded, block_len: int, sr: int, quality: str
) -> Iterator[tuple[float, np.ndarray]]:
    native = max(1024, min(int(round(block_len * dec.sr / sr)), 1 << 22))
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

    with dec:
        for block in dec.blocks(native):
            _check_finite(block, s.name, n_in / dec.sr, dec.sr)
            n_in += block.shape[0]
            mono = to_mono(block)
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
    while n_pending > 0:
        n = min(block_len, n_pending)
        yield emitted / sr, take(n)
        emitted += n
    if emitted == 0:
        raise EmptyAudio(f"{s.name}: contains no audio samples. Re-export the recording.")
