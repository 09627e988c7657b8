"""Content sniffing: what an audio source is, from its first bytes (never its file name).

Owns :class:`Source` (a validated path or byte string, with its first 1 KiB and sniffed kind),
:class:`AudioInfo` (what a header says) and the container tables the decoders consult.
"""

from __future__ import annotations

import errno
import io
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Union

import numpy as np
import soundfile as sf

from emovox.errors import AudioError, AudioFileNotFound, EmptyAudio

__all__ = [
    "AudioSource",
    "AudioInfo",
    "Source",
    "sniff_format",
    "looks_like_text",
    "read_on",
    "EXACT_LENGTH_KINDS",
    "SOUNDFILE_KINDS",
    "KIND_NAMES",
]

#: A path to an audio file, or the encoded file contents in memory.
AudioSource = Union[str, os.PathLike, bytes, bytearray, memoryview]  # noqa: UP007

#: Containers whose header states the exact number of frames.
EXACT_LENGTH_KINDS = frozenset({"wav", "aiff", "flac", "caf", "au", "w64"})
#: Containers libsndfile can usually decode itself.
SOUNDFILE_KINDS = frozenset({"wav", "aiff", "flac", "ogg", "mp3", "caf", "au", "w64", "nist",
                             "voc", "ircam", "svx", "paf", "pvf", "xi", "avr", "mat5", "wve",
                             "sds"})
#: Human-readable container names for error messages.
KIND_NAMES = {
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
    "nist": "NIST SPHERE",
    "voc": "Creative VOC",
    "ircam": "IRCAM",
    "svx": "IFF 8SVX",
    "paf": "Ensoniq PARIS",
    "pvf": "Portable Voice Format",
    "xi": "FastTracker XI",
    "avr": "Audio Visual Research",
    "mat5": "MATLAB 5",
    "wve": "Psion WVE",
    "sds": "MIDI sample dump",
}
#: first bytes of the formats libsndfile reads that have a signature of their own (libsndfile
#: is given only sniffed kinds: it guesses unknown content as Sound Designer II and opens a
#: file beside it; security QA, stop 31)
_SNDFILE_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"NIST_1A", "nist"), (b"Creative Voice File", "voc"), (b" paf", "paf"),
    (b"fap ", "paf"), (b"PVF1", "pvf"), (b"Extended Instrument:", "xi"), (b"2BIT", "avr"),
    (b"MATLAB 5.0 MAT-file", "mat5"), (b"ALawSoundFile**", "wve"), (b"\xf0\x7e", "sds"),
    (b"\x64\xa3\x01\x00", "ircam"), (b"\x00\x01\xa3\x64", "ircam"),
    (b"\x64\xa3\x02\x00", "ircam"), (b"\x00\x02\xa3\x64", "ircam"),
    (b"\x64\xa3\x03\x00", "ircam"), (b"\x00\x03\xa3\x64", "ircam"),
    (b"\x64\xa3\x04\x00", "ircam"), (b"\x00\x04\xa3\x64", "ircam"),
)



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
    #: how many audio tracks the container holds, when the reader says (ffprobe, ffmpeg)
    audio_tracks: int | None = None
    #: ``duration`` is what the header states (WAV, FLAC, AIFF... read by libsndfile), not an
    #: estimate (MP3, AAC, Opus): a "too long" refusal from the header needs no slack then
    exact: bool = False



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
    if h[:4] == b"FORM" and h[8:12] in (b"8SVX", b"16SV"):
        return "svx"
    for magic, kind in _SNDFILE_MAGIC:
        if h.startswith(magic):
            return kind
    if h[:16] == b"riff\x2e\x91\xcf\x11\xa5\xd6\x28\xdb\x04\xc1\x00\x00":
        return "w64"
    if h[:4] == b"fLaC":
        return "flac"
    if h[:4] == b"OggS":
        return "ogg"
    if h[:4] == b"caff":
        return "caf"
    if h[:4] in (b".snd", b"dns."):  # big- and little-endian AU
        return "au"
    size = int.from_bytes(h[:4], "big")  # 1: a 64-bit size follows the box type
    if h[4:8] == b"ftyp" or (h[4:8] in _QUICKTIME_FIRST_BOXES and not looks_like_text(h)
                               and (size >= 8 or size == 1)):  # ("I'm free...": text)
        return "mp4"  # QuickTime needs no ftyp: a .mov starting with `wide`/`free`/`mdat`
        # was piped to ffmpeg as unknown and refused uploaded ("partial file": review, 47)
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


#: top-level boxes a QuickTime / MP4 file may start with instead of ``ftyp``
_QUICKTIME_FIRST_BOXES = frozenset({b"moov", b"mdat", b"wide", b"free", b"skip"})


def looks_like_text(head: bytes) -> bool:
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


def _missing(path: Path) -> str:
    """Why ``path``, which does not exist as far as ``stat`` can tell, is not there: a link
    loop and a dangling link were both "no such file" (QA, stop 38)."""
    if not path.is_symlink():
        return "no such file. Check the path and try again."
    try:
        path.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a loop of symbolic links, not a file."
    try:
        return f"a symbolic link to {os.readlink(path)!r}, which does not exist."
    except OSError:  # removed meanwhile
        return "no such file. Check the path and try again."


class Source:
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
            # no expanduser: `~` is the shell's to expand; a folder named `~` in a scanned
            # tree made `./~/x.wav` read $HOME/x.wav (security QA, stop 31)
            path = Path(os.fspath(src))
            # a caller's copy of someone's file (an upload) is named after that file in
            # messages and in the log, never by the copy's path (stop 33)
            self.name = filename or str(src)
            try:
                exists, is_dir, is_file = path.exists(), path.is_dir(), path.is_file()
            except OSError as e:  # a name too long, a folder not searchable: it was a raw
                raise AudioFileNotFound(  # OSError (code review, stop 47)
                    f"{self.name}: cannot be opened ({e.strerror or e})") from None
            if not exists:
                raise AudioFileNotFound(f"{self.name}: {_missing(path)}")
            if is_dir:
                raise AudioFileNotFound(
                    f"{self.name}: is a directory, not an audio file. Pass the path of one file."
                )
            if not is_file:
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

    def read_range(self, start: int, n: int) -> bytes:
        """Up to ``n`` bytes from byte ``start`` (b"" past the end or when unreadable)."""
        if self.data is not None:
            return self.data[start:start + n]
        try:
            with open(self.path, "rb") as fh:  # type: ignore[arg-type]
                fh.seek(start)
                return fh.read(n)
        except OSError:
            return b""

    def mp3_length_stated(self) -> bool:
        """Does this MP3's first frame carry a Xing, Info or VBRI header (the stream's
        length, which libsndfile reports; without one its length is a guess from the file
        size and the first frame's bit rate, far off for VBR)? After an ID3v2 tag."""
        start = 0
        tag = self.read_range(0, 10)
        if tag[:3] == b"ID3" and len(tag) == 10:  # its size: 4 syncsafe bytes
            start = 10 + sum((b & 0x7F) << (7 * (3 - i)) for i, b in enumerate(tag[6:10]))
        frame = self.read_range(start, 4096)
        sync = next((i for i in range(len(frame) - 1)
                     if frame[i] == 0xFF and frame[i + 1] & 0xE0 == 0xE0), None)
        if sync is None:
            return False
        first = frame[sync:sync + 200]  # Xing/Info at 13-36, VBRI at 36
        return any(t in first for t in (b"Xing", b"Info", b"VBRI"))

    def open_soundfile(self) -> sf.SoundFile:
        """Open with libsndfile; raises ``sf.LibsndfileError``/``RuntimeError`` on failure.

        libsndfile, failing to recognise the content (even behind a known signature: an ID3
        tag or ``caff`` followed by junk), looks for a Sound Designer II resource fork:
        ``._NAME`` and ``.AppleDouble/NAME`` beside the file, or ``._`` in the current
        folder for bytes. A FIFO or a device there blocked the open for ever (security QA,
        stop 31): libsndfile is not asked when one is there (``OSError``: ffmpeg tries)."""
        for fork in self._fork_paths():
            try:
                mode = os.stat(fork).st_mode
            except OSError:
                continue
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise OSError(f"{fork}: not a regular file beside the audio; libsndfile "
                              "would wait on it")
        # the path as bytes (os.fsencode): a name the locale cannot encode (LC_ALL=C) failed
        # in libsndfile and went to ffmpeg, which treats every file as lossy (re-check, 39)
        target: bytes | IO[bytes] = (os.fsencode(self._sf_path()) if self.path
                                     else io.BytesIO(self.data or b""))
        return sf.SoundFile(target)

    def _sf_path(self) -> str:
        """The path handed to libsndfile: as given, with ``./`` before a name without ``/``,
        so that it splits folder and name at a ``/`` as :meth:`_fork_paths` does (given
        ``a\\b.mp3`` it split at the backslash and opened ``a\\._b.mp3``; second re-check).
        Not made absolute: that drops ``..`` after a link and read another file (third
        re-check, stop 31)."""
        p = str(self.path)
        return p if "/" in p else "./" + p

    def _fork_paths(self) -> list[str]:
        """Where libsndfile looks for a resource fork (file_io.c, psf_open_rsrc)."""
        if self.path is None:
            return ["._", os.path.join(".AppleDouble", "")]
        d, name = os.path.split(self._sf_path())
        return [os.path.join(d, "._" + name), os.path.join(d, ".AppleDouble", name),
                os.path.join(self._sf_path(), "..namedfork", "rsrc")]

    @property
    def kind_name(self) -> str:
        return KIND_NAMES.get(self.kind or "", self.kind or "unknown")


def read_on(f: sf.SoundFile, frames: int) -> np.ndarray:
    """Up to ``frames`` float32 frames ``(n, channels)`` from where ``f`` stands. An MP3 is
    read by libsndfile's ``sf_readf_float`` alone: python-soundfile's ``read`` asks the
    position and seeks back to it around every read, and libsndfile's MP3 decoder
    (libmpg123) restarts at a seek without the previous frames' bit reservoir, so a long
    variable-rate MP3 read in blocks went wrong just after block edges (by 0.41 of full
    scale on a tone-burst file) and libmpg123 printed "part2_3_length ... too large for
    available bit count" on stderr (stop 55). Other formats keep the public ``read``: its
    seek keeps a damaged Ogg's later audio at its time (read on, libvorbis skips the
    damage and all after it comes early: code review, stop 55). So does an MP3 where the
    package keeps its libsndfile binding elsewhere."""
    snd, ffi, handle = (getattr(sf, "_snd", None), getattr(sf, "_ffi", None),
                        getattr(f, "_file", None))
    if str(f.format) != "MP3" or snd is None or ffi is None or handle is None:
        return f.read(frames, dtype="float32", always_2d=True)
    out = np.empty((frames, f.channels), dtype=np.float32)
    n = int(snd.sf_readf_float(handle, ffi.cast("float *", ffi.from_buffer(out)), frames))
    if code := int(snd.sf_error(handle)):
        raise sf.LibsndfileError(code)
    return out[:max(n, 0)]
