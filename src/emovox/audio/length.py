"""What a container says about its own length, against what the file holds.

A file cut short (a copy or upload that stopped part-way) often decodes cleanly up to where
it ends: the decoder says nothing, and the answer would be given on part of the recording
without a word. These functions read only the container's own structure (no samples):

* WAV: the ``data`` chunk's declared size against the bytes that follow it
  (:func:`wav_length_note`; also a header that declares no audio although audio follows);
* AIFF / AIFF-C: the ``SSND`` chunk's declared size against the bytes that follow it, read
  in seconds through the ``COMM`` chunk's frame count and rate (:func:`aiff_length_note`;
  libsndfile reports the frames that are there, not the declared ones);
* Ogg (Vorbis, Opus, FLAC in Ogg): the pages in the file's last 128 KiB, told by their
  checksum, must end whole, each stream's last one with the end-of-stream flag (RFC 3533,
  section 6) (:func:`ogg_end_note`).
* AU: the data size its header declares, against the bytes after its data offset
  (:func:`au_length_note`; libsndfile shrinks a cut AU's frame count, stop 47).

:func:`container_length_note` asks the one that fits the file's kind. FLAC and CAF state
their frame count, which the decoder compares itself (``Decoder.length_note``); a cut CAF
read by ffmpeg, a W64, RF64, NIST, IRCAM or VOC file is not told (known limit).
"""

from __future__ import annotations

import math
import zlib

from emovox.audio.sniff import Source

__all__ = ["aiff_length_note", "container_length_note", "cut_note", "ogg_end_note",
           "wav_data_sizes", "wav_length_note"]

#: a WAV data chunk's size written by a recorder that could not seek back (a stream)
_UNKNOWN_SIZES = (0xFFFFFFFF, 0x7FFFFFFF)
#: chunks walked at most before giving up on an AIFF
_MAX_CHUNKS = 4096
#: bytes read at once from an AIFF's start to walk its chunks in
_AIFF_HEAD = 64 * 1024
#: an Ogg page is at most 27 + 255 + 255 * 255 bytes: twice that holds the last whole page
#: and the start of any page cut after it
_OGG_TAIL = 2 * (27 + 255 + 255 * 255)
#: byte -> the byte with its bits reversed (for :func:`_ogg_crc`)
_BIT_REVERSED = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))
#: Ogg page header flag: the last page of a logical stream
_OGG_EOS = 0x04


def cut_note(name: str, held_s: float, declared_s: float) -> str:
    """The warning of a file that holds ``held_s`` of the ``declared_s`` seconds its header
    declares (every container's, and the decoder's for FLAC, CAF, AU and MP3)."""
    return (f"{name}: the file holds {held_s:.2f} s of the {declared_s:.2f} s of audio its "
            "header declares (cut short, or a damaged header); answered on what is there.")


def wav_data_sizes(s: Source) -> tuple[int, int, int] | None:
    """``(declared bytes, bytes after the chunk header, byte rate)`` of a RIFF WAV's data
    chunk, found by walking at most :data:`_MAX_CHUNKS` chunks (a broadcast WAV's ``bext``
    and ``iXML`` put it past the first KiB, where a cut went unsaid: code review, stop 47);
    None for anything else (another format, RF64, a size a stream writer leaves as a
    placeholder)."""
    h = s.head
    if s.kind != "wav" or h[:4] != b"RIFF" or h[8:12] != b"WAVE":
        return None
    pos, rate = 12, 0
    for _ in range(_MAX_CHUNKS):
        head = h[pos : pos + 20] if pos + 20 <= len(h) else s.read_range(pos, 20)
        if len(head) < 8:
            break
        cid, size = head[:4], int.from_bytes(head[4:8], "little")
        if cid == b"fmt " and len(head) >= 20:
            rate = int.from_bytes(head[16:20], "little")  # bytes per second
        if cid == b"data":
            if size in _UNKNOWN_SIZES or rate <= 0:
                return None
            return size, s.size - (pos + 8), rate
        pos += 8 + size + (size & 1)
    return None


def wav_length_note(s: Source) -> str | None:
    """What a WAV header's data size says against the file's size, when it should be
    said: a file cut short (the header declares more audio than follows) or a header that
    declares no audio although audio follows (a recorder that never finished the file)."""
    sizes = wav_data_sizes(s)
    if sizes is None:
        return None
    declared, held, rate = sizes
    if declared > held + rate // 100:  # more than 10 ms missing
        return cut_note(s.name, held / rate, declared / rate)
    if declared == 0 and held >= rate // 10:
        return (f"{s.name}: its header declares no audio, yet {held / rate:.2f} s of data "
                "follow (a recording that was never finished?). Repair it, e.g. "
                f"`ffmpeg -i {s.name} fixed.wav`, and try again.")
    return None


def _extended(b: bytes) -> float:
    """An 80-bit IEEE 754 extended float (big-endian), as AIFF's ``COMM`` states its rate;
    0.0 for zero, infinities, NaNs and numbers too large for a float."""
    exponent = int.from_bytes(b[:2], "big") & 0x7FFF
    mantissa = int.from_bytes(b[2:10], "big")
    if exponent == 0x7FFF or exponent - 16383 > 1000:  # QA: 2.0 ** huge overflowed
        return 0.0
    return math.ldexp(mantissa, exponent - 16383 - 63)


def _aiff_chunks(s: Source) -> tuple[bytes | None, tuple[int, int] | None]:
    """``(COMM chunk body, (SSND declared sample bytes, sample bytes held))``, each None
    where the file has none. Chunks are walked in the file's first :data:`_AIFF_HEAD`
    bytes read once (metadata may come before the sound), then a small read each; the last
    ``COMM`` counts, as for libsndfile."""
    head = s.read_range(0, _AIFF_HEAD)

    def read(pos: int, n: int) -> bytes:
        return head[pos : pos + n] if pos + n <= len(head) else s.read_range(pos, n)

    comm, ssnd = None, None
    pos = 12
    for _ in range(_MAX_CHUNKS):
        chunk = read(pos, 8)
        if len(chunk) < 8:
            break
        cid, size = chunk[:4], int.from_bytes(chunk[4:8], "big")
        if cid == b"COMM":
            comm = read(pos + 8, min(size, 64))
        elif cid == b"SSND" and size >= 8:
            offset = int.from_bytes(read(pos + 8, 4), "big")
            start = pos + 16 + offset
            ssnd = (size - 8 - offset, max(0, s.size - start))
        pos += 8 + size + (size & 1)
    return comm, ssnd


def _aiff_frames(comm: bytes) -> int:
    """The frames a ``COMM`` chunk declares: AIFF-C's ``ima4`` counts packets of 64."""
    frames = int.from_bytes(comm[2:6], "big")
    return frames * 64 if comm[18:22] == b"ima4" else frames


def aiff_length_note(s: Source) -> str | None:
    """A note when an AIFF or AIFF-C file holds less than its ``SSND`` chunk declares, by
    more than 10 ms (seconds from the ``COMM`` chunk's frame count and rate)."""
    h = s.head
    if s.kind != "aiff" or h[:4] != b"FORM" or h[8:12] not in (b"AIFF", b"AIFC"):
        return None
    comm, ssnd = _aiff_chunks(s)
    if comm is None or ssnd is None or len(comm) < 18:
        return None
    frames, rate = _aiff_frames(comm), _extended(comm[8:18])
    declared, held = ssnd
    if frames <= 0 or declared <= 0 or not 0 < rate < 10_000_000:
        return None
    declared_s = frames / rate
    held_s = declared_s * min(held, declared) / declared
    return cut_note(s.name, held_s, declared_s) if declared_s - held_s > 0.01 else None


def _ogg_crc(page: bytes) -> int:
    """Ogg's page checksum (CRC-32, polynomial 0x04C11DB7, not reflected, initial value and
    final XOR 0; the checksum field read as zeros), through zlib's reflected CRC-32: the
    bytes' bits reversed in, the result's reversed out, its initial value cancelled by the
    CRC of as many zero bytes."""
    data = page[:22] + b"\0\0\0\0" + page[26:]
    r = zlib.crc32(data.translate(_BIT_REVERSED)) ^ zlib.crc32(bytes(len(data)))
    return int(f"{r:032b}"[::-1], 2)


def _ogg_page(buf: bytes, at: int) -> tuple[int, int, int] | None:
    """``(end, serial, flags)`` of a whole page at ``at`` of ``buf`` whose checksum holds;
    None otherwise (cut, or "OggS" inside another page's data)."""
    if buf[at : at + 4] != b"OggS" or at + 27 > len(buf) or buf[at + 4] != 0:
        return None
    seg_end = at + 27 + buf[at + 26]
    if seg_end > len(buf):
        return None
    end = seg_end + sum(buf[at + 27 : seg_end])
    if end > len(buf) or _ogg_crc(buf[at:end]) != int.from_bytes(buf[at + 22 : at + 26],
                                                                  "little"):
        return None
    return end, int.from_bytes(buf[at + 14 : at + 18], "little"), buf[at + 5]


def _ogg_tail_state(tail: bytes) -> tuple[dict[int, int], bool] | None:
    """Walk the whole pages of ``tail`` (the file's last bytes) from the first one whose
    checksum holds: ``({serial: flags of its last page}, cut)``, ``cut`` when what follows
    the last whole page begins as a page would ("OggS", or a prefix of it: trailing tags
    are not pages). None when no whole page is found."""
    at = tail.find(b"OggS")
    while at >= 0 and _ogg_page(tail, at) is None:
        at = tail.find(b"OggS", at + 1)
    if at < 0:
        return None
    last: dict[int, int] = {}
    while (page := _ogg_page(tail, at)) is not None:
        at, serial, flags = page
        last[serial] = flags
    rest = tail[at : at + 4]
    return last, bool(rest) and b"OggS".startswith(rest)


def ogg_end_note(s: Source) -> str | None:
    """A note when an Ogg file stops before its streams end: the data after its last whole
    page begins a page that is not all there, or a stream's last page lacks the
    end-of-stream flag (a file cut short, or a recorder that never finished it). Only the
    file's last :data:`_OGG_TAIL` bytes are read; pages are told by their checksum."""
    if s.kind != "ogg" or s.head[:4] != b"OggS":
        return None
    start = max(0, s.size - _OGG_TAIL)
    state = _ogg_tail_state(s.read_range(start, _OGG_TAIL))
    if state is None:
        return None
    last, cut = state
    if not cut and all(flags & _OGG_EOS for flags in last.values()):
        return None
    return (f"{s.name}: the Ogg stream stops before its end (its last page is "
            f"{'incomplete' if cut else 'not marked as the end'}): the file is cut short, "
            "or its recorder never finished it; answered on what is there.")


#: bytes per sample of the Sun/NeXT AU encodings libsndfile reads (G.72x ADPCM left out)
_AU_WIDTH = {1: 1, 2: 1, 3: 2, 4: 3, 5: 4, 6: 4, 7: 8, 27: 1}


def au_length_note(s: Source) -> str | None:
    """A note when an AU header's data size (bytes 8-11, big-endian; little-endian after
    ``dns.``) declares more than
    10 ms more than follows its data offset: libsndfile shrinks a cut AU's frame count to
    what is there, so the decoder's own check never fired (code review, stop 47)."""
    h = s.head
    if s.kind != "au" or h[:4] not in (b".snd", b"dns.") or len(h) < 24:
        return None
    order = "big" if h[:4] == b".snd" else "little"
    offset, size, enc, sr, ch = (int.from_bytes(h[i : i + 4], order) for i in range(4, 24, 4))
    rate = _AU_WIDTH.get(enc, 0) * sr * ch  # bytes per second
    if size in _UNKNOWN_SIZES or rate <= 0:
        return None
    held = max(0, s.size - offset)
    return cut_note(s.name, held / rate, size / rate) if size > held + rate // 100 else None


def container_length_note(s: Source) -> str | None:
    """The length note of ``s``'s container (WAV, AIFF, Ogg, AU), or None."""
    for check in (wav_length_note, aiff_length_note, ogg_end_note, au_length_note):
        note = check(s)
        if note:
            return note
    return None
