"""Opening decoders and reading headers, with the limits checked before any sample is read.

:func:`open_decoder` picks libsndfile or ffmpeg for a :class:`~emovox.audio.sniff.Source`
and refuses, from the header alone, sample rates and channel counts outside
:mod:`emovox.audio.limits` (:class:`AudioOutOfLimits`), so a tiny file declaring an absurd
rate never gets decoded. :func:`probe` reads a header without
decoding.
"""

from __future__ import annotations

import logging
import math
import re
import shlex
from collections.abc import Callable, Iterator

import numpy as np
import soundfile as sf

from emovox.audio import ffmpeg as ffm
from emovox.audio.clipping import ClipCounter
from emovox.audio.length import cut_note
from emovox.audio.limits import check_limits, seconds_text
from emovox.audio.sniff import (
    EXACT_LENGTH_KINDS,
    SOUNDFILE_KINDS,
    AudioInfo,
    AudioSource,
    Source,
    looks_like_text,
    read_on,
)
from emovox.errors import (
    AudioError,
    AudioOutOfLimits,
    DamagedAudio,
    DamagedContainer,
    InvalidSamples,
    NotAudio,
    UnsupportedCodec,
)
from emovox.fileio import private_copies

log = logging.getLogger(__name__)

__all__ = [
    "Decoder",
    "MAX_ABS_SAMPLE",
    "MAX_PROCESSED_SAMPLE",
    "check_finite",
    "open_decoder",
    "probe",
    "probe_source",
]

# Containers ffmpeg may fail to read from a pipe (MP4 with its index at the end; WavPack and
# Monkey's Audio at unusual rates: "Cannot determine additional parameters"; CAF holding ALAC
# or Opus: "Missing packet table"). Other bytes that fail piped are tried once more from a
# temporary file.
_SEEKABLE_KINDS = frozenset({"mp4", "wavpack", "ape", "caf"})
class Decoder:
    """An opened decoder: ``sr``/``channels`` (and ``frames`` when the header says) known,
    samples pulled with :meth:`blocks`. Always :meth:`close` it (idempotent).
    """

    def __init__(
        self,
        sr: int,
        channels: int,
        backend: str,
        read: Callable[[int], Iterator[np.ndarray]],
        close: Callable[[], None],
        frames: int | None = None,
        name: str = "<audio>",
        subtype: str | None = None,
        lossy: bool = False,
    ) -> None:
        self.sr = int(sr)
        self.channels = int(channels)
        self.backend = backend
        self.frames = frames
        self.name = name
        self.subtype = subtype  #: libsndfile's sample format (None: ffmpeg's output)
        self.lossy = lossy  #: a lossy codec (clipping counted sample by sample)
        #: what a user should know about the samples read (a file that stops decoding
        #: part-way), each also logged; complete once :meth:`blocks` is exhausted
        self.notes: list[str] = []
        self.stopped = False  #: decoding failed part-way (a note says so)
        self._read = read
        self._close = close
        self._closed = False

    def blocks(self, frames: int) -> Iterator[np.ndarray]:
        """float32 blocks of shape ``(<= frames, channels)`` until the real end of the data.

        A file whose decoding fails part-way (cut short, damaged) ends where it failed, with
        a note (:attr:`notes`): what was read is answered, as a WAV cut short is; a long
        recording's timeline is not lost for its last seconds (stop 33). Nothing read: the
        :class:`DamagedAudio` error."""
        n = 0
        clips = ClipCounter(self.subtype, lossy=self.lossy)  # on the samples as recorded
        # (stop 39: the web page alone said)
        try:
            for block in self._read(max(1, int(frames))):
                n += block.shape[0]
                clips.add(block)
                yield block
        except DamagedAudio as exc:
            if n == 0:
                raise
            at = seconds_text(n / self.sr)
            self.stopped = True
            self.notes.append(
                f"{self.name}: decoding stopped at {at} s ({exc.detail or exc}): the file is "
                f"damaged or cut short; answered on the {at} s before that.")
            log.warning("%s", self.notes[-1])
        for note in clips.notes(self.name):  # clipped, coarse (stop 39)
            self.notes.append(note)
            log.warning("%s", note)

    def length_note(self, n: int, s: Source) -> str | None:
        """After ``n`` frames were read to the end: a note when a header that states the
        length exactly (FLAC, CAF; WAV, AIFF, Ogg and AU: :mod:`emovox.audio.length`) declared more
        than 10 ms more, or an MP3's Xing header 0.5 s more (a file cut short that decoded
        cleanly up to its end)."""
        # an MP3's Xing header states its length to a frame or two: 0.5 s of slack there
        # (a cut MP3 was answered on half its length without a word: re-check, stop 35)
        # (only when its first frame states it: a VBR file without one is guessed far off)
        kind = s.kind
        slack = (self.sr // 100 if kind in EXACT_LENGTH_KINDS else
                 self.sr // 2 if kind == "mp3" else None)
        if (self.frames is None or slack is None or kind == "wav" or self.stopped
                or n >= self.frames - slack or (kind == "mp3" and not s.mp3_length_stated())):
            return None
        note = cut_note(self.name, n / self.sr, self.frames / self.sr)
        log.warning("%s", note)
        return note

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._close()

    def __enter__(self) -> Decoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: frames re-read at a time up to the damage of a file that fails part-way (stop 33)
_SALVAGE_FRAMES = 4096


def _seek(f: sf.SoundFile, pos: int) -> bool:
    """Seek ``f`` to frame ``pos``; False when it cannot."""
    try:
        return f.seekable() and f.seek(pos) == pos
    except (sf.LibsndfileError, RuntimeError, ValueError):
        return False


def _reopened(s: Source, pos: int) -> sf.SoundFile | None:
    """A fresh libsndfile handle on ``s`` at frame ``pos``, or None. A handle whose read
    failed cannot seek any more (a FLAC decoder that lost sync: ``psf_fseek() failed``), so
    what lay between its last good block and the damage was lost, and a file damaged in its
    first block was refused whole (QA re-check, stop 34)."""
    try:
        h = s.open_soundfile()
    except (sf.LibsndfileError, RuntimeError, OSError):
        return None
    if _seek(h, pos):
        return h
    h.close()
    return None


def _detail(e: Exception) -> str:
    """libsndfile's message without its decoration: ``flac decoder lost sync``; a failed
    internal seek (a FLAC cut at a frame boundary) in words."""
    text = str(e).strip().removeprefix("Error : ").rstrip(".")
    return "the data end early" if "psf_fseek" in text else text


def _sf_words(sf_error: object) -> str:
    """libsndfile's refusal without its "Error opening 'PATH': " prefix; its "File does not
    exist or is not a regular file (possibly a pipe?)", said of an existing MP3 it cannot
    decode, in words that are true (API QA, stop 35)."""
    text = re.sub(r"^Error opening .*?: ", "", str(sf_error or "")).strip()
    return "cannot decode it" if "File does not exist or is not a regular file" in text else text


def _open_soundfile(s: Source) -> Decoder:
    """Open with libsndfile; raises ``sf.LibsndfileError``/``RuntimeError`` when it cannot."""
    f = s.open_soundfile()
    if f.samplerate <= 0 or f.channels <= 0:
        f.close()
        raise sf.LibsndfileError(0, f"invalid header (sr={f.samplerate}, channels={f.channels})")
    handles = [f]  # a fresh handle is opened to re-read up to the damage
    declared = int(f.frames) if 0 < f.frames < 1 << 62 else None

    def read(frames: int) -> Iterator[np.ndarray]:
        # Read to the real end: headers of truncated files overstate the length; an MP3's
        # buffer is at most what its header has left (4096 frames at least).
        pos, step, first = 0, frames, None
        while True:
            want = step if declared is None else min(step, max(declared - pos,
                                                                _SALVAGE_FRAMES))
            try:
                block = read_on(handles[-1], want)
            except (sf.LibsndfileError, RuntimeError) as e:
                first = first or e  # the damage itself, not a later failed seek
                if step > _SALVAGE_FRAMES and (h := _reopened(s, pos)) is not None:
                    handles.append(h)  # a failed read returns nothing: re-read up to the
                    step = _SALVAGE_FRAMES  # damage in small steps
                    continue
                raise DamagedAudio(
                    f"{s.name}: decoding failed part-way through ({_detail(first)}). The file "
                    "is probably damaged or truncated; re-export or re-encode it.",
                    detail=_detail(first)) from first
            if block.shape[0] == 0:
                return
            pos += block.shape[0]
            yield block

    def close() -> None:
        for h in handles:
            h.close()

    frames = int(f.frames) if 0 <= f.frames < 1 << 62 else None
    return Decoder(f.samplerate, f.channels, "soundfile", read, close, frames, s.name,
                   str(f.subtype))


def _open_ffmpeg(s: Source) -> tuple[Decoder | None, str | None]:
    """(decoder, None) when ffmpeg decodes ``s``; (None, why not) otherwise."""
    ff_error: str | None = None
    # from bytes, MP4/M4A (index at the end, ffmpeg's default), WavPack and APE need a
    # seekable file: piped, a long M4A upload decoded to nothing with exit status 0, so the
    # API and the web app refused what `emovox predict` read (QA stop 30)
    # and other bytes that fail piped for want of seeking get a second try from a file (a
    # CAF of ALAC read from its path but was refused uploaded: code review, stop 47)
    via_tempfile = s.data is not None and s.kind in _SEEKABLE_KINDS
    while True:
        try:
            ff = ffm.FFmpegDecoder(s, via_tempfile=via_tempfile)
            log.debug("%s: decoding %s with ffmpeg", s.name, s.kind_name)
            return Decoder(ff.sr, ff.channels, "ffmpeg", ff.blocks, ff.close, name=s.name,
                           lossy=True), None
        except ffm.FFmpegError as e:
            error = str(e) if not via_tempfile else private_copies().sub(  # the upload's
                lambda _: s.name, str(e))  # name, never its copy's
            ff_error = ff_error or error  # (the piped attempt's words when both fail)
            if via_tempfile or s.data is None or not _NEEDS_SEEK.search(error):
                break
            via_tempfile = True
        except OSError as e:
            ff_error = f"could not run ffmpeg ({e})"
            break
    log.debug("%s: ffmpeg cannot decode it either: %s", s.name, ff_error)
    return None, ff_error


#: what ffmpeg says when piped input needed seeking (an index at the end, a packet table)
_NEEDS_SEEK = re.compile(r"packet table|moov atom|seek|partial file|Cannot determine", re.I)


#: headerless audio by extension -> the ffmpeg format that reads it (left off ffmpeg's
#: input whitelist on purpose: it takes any bytes for audio)
_HEADERLESS = {".gsm": "gsm", ".raw": "s16le -ar 16000 -ac 1", ".pcm": "s16le -ar 16000 -ac 1",
               ".sln": "s16le -ar 8000 -ac 1", ".ul": "mulaw -ar 8000 -ac 1",
               ".al": "alaw -ar 8000 -ac 1", ".g722": "g722"}


def _headerless(s: Source) -> NotAudio:
    """Headerless audio refused as such, with the ffmpeg command that converts it: it was
    "ffmpeg cannot read it either", which ffmpeg can, told the format, or, for PCM whose
    first bytes look like an MP3 frame, libsndfile's "samplerate must be specified" (QA and
    its re-check, stop 37)."""
    return NotAudio(
        f"{s.name}: headerless {s.suffix[1:].upper()} data: emovox reads only audio files "
        "whose format announces itself, so that no bytes are taken for sound on a guess. "
        f"Convert it with ffmpeg, naming its format, e.g. `ffmpeg -f {_HEADERLESS[s.suffix]} "
        f"-i {shlex.quote(s.name)} out.wav`.")


def _undecodable(s: Source, sf_error: Exception | None, ff_error: str | None) -> AudioError:
    """The typed error explaining why neither libsndfile nor ffmpeg decodes ``s``."""
    if "matches no streams" in str(ff_error):  # ffmpeg's answer to -map 0:a:0 (an AVI,
        what = s.kind_name if s.kind else "video"  # unknown to the sniffer, too: re-check)
        article = "an" if what[:1] in "AEIOU" or what.startswith("MP") else "a"  # an MP4
        return NotAudio(
            f"{s.name}: {article} {what} file with no audio track (a video without sound, or "
            "a damaged file); there is nothing to listen to. Pass a recording with sound.")
    if s.kind is None:
        if ff_error is None:
            tried = (
                "without ffmpeg nothing here reads unknown content. If it is audio in an "
                "unusual format, installing "
                "ffmpeg may let emovox read it"
            )
        else:
            tried = "ffmpeg cannot read it either"
        return NotAudio(
            f"{s.name}: not a recognisable audio file (its first bytes match no known audio "
            f"format and {tried}). Check that it is really an audio recording and not damaged; "
            "WAV, FLAC, MP3, OGG and M4A are supported."
        )
    sf_text = _sf_words(sf_error)
    if ff_error is None:
        detail = f" (libsndfile: {sf_text})" if sf_text else ""
        return UnsupportedCodec(
            f"{s.name}: looks like {s.kind_name}, which cannot be decoded without ffmpeg"
            f"{detail}. To read it, {ffm.install_ffmpeg_hint()}."
        )
    detail = f"libsndfile: {sf_text}; " if sf_text else ""
    if ffm.says_damaged(s, ff_error):
        return DamagedContainer(
            f"{s.name}: looks like {s.kind_name} but could not be decoded ({detail}ffmpeg: "
            f"{ff_error}). The file is damaged or cut short; re-export or re-encode it.",
            detail=ff_error)
    return UnsupportedCodec(
        f"{s.name}: looks like {s.kind_name} but could not be decoded ({detail}ffmpeg: "
        f"{ff_error}). The file may be damaged or truncated, or use a codec this ffmpeg build "
        "lacks; re-encode it to WAV or FLAC (e.g. `ffmpeg -i INPUT out.wav`)."
    )


def _refuse_text(s: Source) -> None:
    """NotAudio for a text file, in one wording for decoding and probing (the API's
    timeline, which probes first, said less: QA, stop 39)."""
    if s.kind is None and looks_like_text(s.head):
        start = s.head[:24].decode("utf-8", "replace")
        raise NotAudio(
            f"{s.name}: this is a text file, not audio (it starts with {start!r}). "
            "Pass a WAV, FLAC, MP3, OGG or M4A recording.")


def _open_any(s: Source) -> Decoder:
    """Open the best decoder for ``s``, or raise the typed error that explains the failure."""
    _refuse_text(s)
    if s.suffix in _HEADERLESS and s.kind in (None, "mp3"):  # PCM may start like an MP3 frame
        raise _headerless(s)
    sf_error: Exception | None = None
    ff_error: str | None = None
    tried_ffmpeg = False
    if s.kind == "mp3" and not s.mp3_length_stated() and ffm.ffmpeg_exe() is not None:
        # libsndfile stops at its guess of the length, from the first frame's bit rate: a
        # variable-rate MP3 without a Xing, Info or VBRI header that starts loud was
        # answered on 8.7 s of its 27.4 s without a word (code review, stop 55); ffmpeg
        # reads such a stream to its end
        tried_ffmpeg = True
        dec, ff_error = _open_ffmpeg(s)
        if dec is not None:
            return dec
    # only what the sniffer recognised goes to libsndfile: given content it does not know,
    # it guesses Sound Designer II and opens a "resource fork" beside the file (or in the
    # current folder for bytes), `._NAME` or `.AppleDouble/NAME`, and a FIFO there hung a
    # batch or an API request for ever (security QA, stop 31); ffmpeg (guarded) tries it
    if s.kind in SOUNDFILE_KINDS:
        try:
            dec = _open_soundfile(s)
            if s.kind == "mp3" and not tried_ffmpeg and not s.mp3_length_stated():
                dec.notes.append(f"{s.name}: this MP3 does not state its length and ffmpeg "
                                 "is not installed: it may be read short of its end (install "
                                 "ffmpeg to read it whole).")
                log.warning("%s", dec.notes[-1])
            return dec
        except (sf.LibsndfileError, RuntimeError, ValueError, OSError) as e:
            sf_error = e
            log.debug("%s: libsndfile cannot open it (%s)", s.name, e)
    if not tried_ffmpeg and ffm.ffmpeg_exe() is not None:
        dec, ff_error = _open_ffmpeg(s)
        if dec is not None:
            return dec
    raise _undecodable(s, sf_error, ff_error)


def open_decoder(s: Source) -> Decoder:
    """:func:`_open_any`, then the header limits (:func:`check_limits`) before any sample."""
    dec = _open_any(s)
    try:
        check_limits(s.name, dec.sr, dec.channels)
    except AudioOutOfLimits:
        dec.close()
        raise
    return dec


#: the largest sample magnitude accepted (full scale is 1.0): 120 dB over full scale, far
#: above any float file written on an integer scale (32768); beyond it the power spectra of
#: a float32 pipeline overflow and every probability becomes NaN
MAX_ABS_SAMPLE: float = 1e6
#: the largest magnitude :meth:`emovox.preprocess.Preprocess.at_rate` accepts in a wave
#: handed to it (full scale is 1.0): :data:`MAX_ABS_SAMPLE` x 16. The steps after the
#: decoder's check may raise a file's peak over :data:`MAX_ABS_SAMPLE`: taking a constant
#: offset off at most doubles it, soxr's resampling to 16 kHz has a worst-case gain of 2.81
#: (measured from 1 to 192 kHz) and the offset taken off after it doubles it again: 11.3x
#: at worst. With the same bound for both, a float WAV peaking at exactly 1e6 was accepted
#: by the decoder, then refused by ``predict`` after its offset came off, in a message
#: naming no file, while the timeline (offset off per window) answered it (API review, stop
#: 51). The decoder's check (named after the file) is the bound for files; this one is for
#: waves handed over directly, and is out of a decoded file's reach. Both stay far below
#: where float32 spectra overflow (about 1e15)
MAX_PROCESSED_SAMPLE: float = 16 * MAX_ABS_SAMPLE


def check_finite(block: np.ndarray, name: str, offset_s: float, sr: int) -> None:
    """Raise InvalidSamples when a native ``(frames, channels)`` block has NaN/inf samples or
    samples beyond :data:`MAX_ABS_SAMPLE`."""
    if block.dtype.kind != "f" or block.size == 0:
        return
    hi, lo = float(block.max()), float(block.min())  # no temporaries; NaN propagates
    if math.isfinite(hi) and math.isfinite(lo) and max(hi, -lo) <= MAX_ABS_SAMPLE:
        return
    bad = ~np.isfinite(block).all(axis=-1)
    what = "NaN or infinite sample values"
    if not bad.any():
        bad, what = (np.abs(block) > MAX_ABS_SAMPLE).any(axis=-1), (
            f"sample values beyond +-{MAX_ABS_SAMPLE:g} (full scale is 1.0)")
    raise InvalidSamples(
        f"{name}: contains {what} (first at {offset_s + np.flatnonzero(bad)[0] / sr:.3f} s). "
        "The file is corrupt or was written from a broken computation; re-export it."
    )


def probe(src: AudioSource, *, filename: str | None = None) -> AudioInfo:
    """Read duration, sample rate, channels and format from the header, without decoding.

    Uses libsndfile's header; for containers libsndfile cannot open, ``ffprobe`` (or, failing
    that, ``ffmpeg -i``). Cheap enough to reject hour-long files before decoding them.
    ``duration`` may be None (or approximate, e.g. for MP3). Reports rates and channel counts
    as they are (:func:`load_audio` and :func:`iter_blocks` refuse the absurd ones).

    Raises:
        AudioFileNotFound, EmptyAudio, NotAudio, UnsupportedCodec: as :func:`load_audio`.
    """
    return probe_source(Source(src, filename))


def probe_source(s: Source) -> AudioInfo:
    """:func:`probe` for an already validated source."""
    _refuse_text(s)
    if s.suffix in _HEADERLESS and s.kind in (None, "mp3"):  # as _open_any refuses it
        raise _headerless(s)
    if s.kind in SOUNDFILE_KINDS:  # not unknown content: see _open_any
        try:
            with s.open_soundfile() as f:
                if f.samplerate <= 0 or f.channels <= 0:
                    raise ValueError("invalid header")
                frames = int(f.frames) if f.frames >= 0 else None
                if s.kind == "mp3" and not s.mp3_length_stated():
                    # libsndfile's length is then a guess from the first frame's bit rate
                    # (143.8 s for a 25 s VBR file that starts quietly): unknown, so no
                    # early "too long" refusal on it (code review, stop 47)
                    frames = None
                return AudioInfo(
                    source=s.name,
                    format=str(f.format),
                    codec=str(f.subtype) if f.subtype else None,
                    sr=int(f.samplerate),
                    channels=int(f.channels),
                    frames=frames,
                    duration=frames / f.samplerate if frames is not None else None,
                    backend="soundfile",
                    exact=s.kind in EXACT_LENGTH_KINDS,
                )
        except (sf.LibsndfileError, RuntimeError, ValueError, OSError) as e:
            log.debug("%s: libsndfile cannot read the header (%s)", s.name, e)
    info = ffm.ffprobe_info(s)
    if info is not None:
        return info
    # No header reader worked: open a decoder, which either works or raises the right error.
    with _open_any(s) as dec:
        return AudioInfo(s.name, s.kind_name, None, dec.sr, dec.channels, None, None, dec.backend)


#: containers that may hold several audio tracks (only the first is decoded)
_MULTITRACK_KINDS = frozenset({"mp4", "matroska", "asf"})


def tracks_note(s: Source, info: AudioInfo | None = None) -> str | None:
    """A note when ``s`` (an MP4/MOV, WebM/Matroska or ASF container) holds more than one
    audio track: only the first is read (a screen recording may keep the microphone on the
    second; QA stop 30). ``info``: a probe of ``s`` already made (its track count is
    reused); else one ffprobe run for those containers, nothing for others."""
    if s.kind not in _MULTITRACK_KINDS:
        return None
    if info is None or info.audio_tracks is None:
        info = ffm.ffprobe_info(s)
    n = info.audio_tracks if info is not None else None
    if n is None or n < 2:
        return None
    return (f"{s.name}: holds {n} audio tracks; only the first was read. To analyse "
            f"another, extract it first, e.g. `ffmpeg -i {s.name} -map 0:a:1 track2.wav`.")
