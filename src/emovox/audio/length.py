"""What a container says about its own length, against what the file holds.

A file cut short (a copy or upload that stopped part-way) often decodes cleanly up to where
it ends: the decoder says nothing, and the answer would be given on part of the recording
without a word. These functions read only the container's own structure (no samples):

* WAV: the ``data`` chunk's declared size against the bytes that follow it
  (:func:`wav_length_note`; also a header that declares no audio although audio follows);
* AIFF / AIFF-C: the ``SSND`` chunk's declared size against the bytes that follow it, read
  in seconds through the ``COMM`` chunk's frame count and rate (:func:`aiff_length_note`;
  libsndfile reports the frames that are there, not the declared ones);
* Ogg (Vorbis, Opus, FLAC in Ogg): the last page must be complete and carry the
  end-of-stream flag (RFC 3533, section 6) (:func:`ogg_end_note`).

:func:`container_length_note` asks the one that fits the file's kind. FLAC, CAF and AU state
their frame count, which the decoder compares itself (``Decoder.length_note``).
"""

from __future__ import annotations

from emovox.audio.sniff import Source

__all__ = ["aiff_length_note", "container_length_note", "ogg_end_note", "wav_data_sizes",
           "wav_length_note"]

#: a WAV data chunk's size written by a recorder that could not seek back (a stream)
_UNKNOWN_SIZES = (0xFFFFFFFF, 0x7FFFFFFF)
#: chunks walked at most before giving up on an AIFF (each costs one small read)
_MAX_CHUNKS = 64
#: an Ogg page is at most 27 + 255 + 255 * 255 bytes: the last one starts within this tail
_OGG_TAIL = 27 + 255 + 255 * 255
#: Ogg page header flag: the last page of a logical stream
_OGG_EOS = 0x04


def _cut_note(name: str, held_s: float, declared_s: float) -> str:
    return (f"{name}: the file holds {held_s:.2f} s of the {declared_s:.2f} s of audio its "
            "header declares (cut short, or a damaged header); answered on what is there.")


def wav_data_sizes(s: Source) -> tuple[int, int, int] | None:
    """``(declared bytes, bytes after the chunk header, byte rate)`` of a RIFF WAV's data
    chunk, read from the first KiB; None for anything else (another format, RF64, a data
    chunk beyond the first KiB, a size a stream writer leaves as a placeholder)."""
    h = s.head
    if s.kind != "wav" or h[:4] != b"RIFF" or h[8:12] != b"WAVE":
        return None
    pos, rate = 12, 0
    while pos + 8 <= len(h):
        cid, size = h[pos : pos + 4], int.from_bytes(h[pos + 4 : pos + 8], "little")
        if cid == b"fmt " and pos + 20 <= len(h):
            rate = int.from_bytes(h[pos + 16 : pos + 20], "little")  # bytes per second
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
        return _cut_note(s.name, held / rate, declared / rate)
    if declared == 0 and held >= rate // 10:
        return (f"{s.name}: its header declares no audio, yet {held / rate:.2f} s of data "
                "follow (a recording that was never finished?). Repair it, e.g. "
                f"`ffmpeg -i {s.name} fixed.wav`, and try again.")
    return None


def _extended(b: bytes) -> float:
    """An 80-bit IEEE 754 extended float (big-endian), as AIFF's ``COMM`` states its rate."""
    exponent = int.from_bytes(b[:2], "big") & 0x7FFF
    mantissa = int.from_bytes(b[2:10], "big")
    return 0.0 if exponent == 0 and mantissa == 0 else mantissa * 2.0 ** (exponent - 16383 - 63)


def _aiff_chunks(s: Source) -> tuple[bytes | None, tuple[int, int] | None]:
    """``(COMM chunk body, (SSND declared sample bytes, sample bytes held))``, each None
    where the file has none (read chunk by chunk: metadata may push them past the head)."""
    comm, ssnd = None, None
    pos = 12
    for _ in range(_MAX_CHUNKS):
        head = s.read_range(pos, 8)
        if len(head) < 8:
            break
        cid, size = head[:4], int.from_bytes(head[4:8], "big")
        if cid == b"COMM":
            comm = s.read_range(pos + 8, min(size, 64))
        elif cid == b"SSND" and size >= 8:
            offset = int.from_bytes(s.read_range(pos + 8, 4), "big")
            start = pos + 16 + offset
            ssnd = (size - 8 - offset, max(0, s.size - start))
        if comm is not None and ssnd is not None:
            break
        pos += 8 + size + (size & 1)
    return comm, ssnd


def aiff_length_note(s: Source) -> str | None:
    """A note when an AIFF or AIFF-C file holds less than its ``SSND`` chunk declares, by
    more than 10 ms (seconds from the ``COMM`` chunk's frame count and rate)."""
    h = s.head
    if s.kind != "aiff" or h[:4] != b"FORM" or h[8:12] not in (b"AIFF", b"AIFC"):
        return None
    comm, ssnd = _aiff_chunks(s)
    if comm is None or ssnd is None or len(comm) < 18:
        return None
    frames = int.from_bytes(comm[2:6], "big")
    rate = _extended(comm[8:18])
    declared, held = ssnd
    if frames <= 0 or declared <= 0 or not 0 < rate < 10_000_000:
        return None
    declared_s = frames / rate
    held_s = declared_s * min(held, declared) / declared
    return _cut_note(s.name, held_s, declared_s) if declared_s - held_s > 0.01 else None


def _last_ogg_page(tail: bytes, tail_start: int, size: int) -> tuple[int, bool] | None:
    """``(header flags, complete)`` of the last Ogg page that starts in ``tail`` (which
    begins at byte ``tail_start`` of a ``size``-byte file); None when no page starts there."""
    at = len(tail)
    while (at := tail.rfind(b"OggS", 0, at)) >= 0:
        if at + 27 <= len(tail) and tail[at + 4] == 0:  # stream structure version 0
            n_seg = tail[at + 26]
            seg_end = at + 27 + n_seg
            if seg_end <= len(tail):
                body = sum(tail[at + 27 : seg_end])
                return tail[at + 5], tail_start + seg_end + body <= size
            return tail[at + 5], False
        if at + 27 > len(tail):  # a page header cut inside its first 27 bytes
            return 0, False
    return None


def ogg_end_note(s: Source) -> str | None:
    """A note when an Ogg file's last page is incomplete or lacks the end-of-stream flag:
    the file stops before its stream ends (cut short, or a recorder that never finished it)."""
    if s.kind != "ogg" or s.head[:4] != b"OggS":
        return None
    start = max(0, s.size - _OGG_TAIL)
    last = _last_ogg_page(s.read_range(start, _OGG_TAIL), start, s.size)
    if last is None:
        return None
    flags, complete = last
    if complete and flags & _OGG_EOS:
        return None
    return (f"{s.name}: the Ogg stream stops before its end (its last page is "
            f"{'not marked as the end' if complete else 'incomplete'}): the file is cut short, "
            "or its recorder never finished it; answered on what is there.")


def container_length_note(s: Source) -> str | None:
    """The length note of ``s``'s container (WAV, AIFF, Ogg), or None."""
    for check in (wav_length_note, aiff_length_note, ogg_end_note):
        note = check(s)
        if note:
            return note
    return None
