"""What a container says that the user should know (``emovox.audio.file_notes``): a file
with several audio tracks (only the first is read: QA stop 30, said since stop 31); an AIFF
or Ogg file cut short (stop 37: they decoded cleanly up to the cut without a word). Files
with several tracks are made with ffmpeg in ``tmp_path``; those tests skip without it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from emovox.audio import ffmpeg as ffm
from emovox.audio import file_notes, iter_blocks, load_audio
from emovox.audio.length import ogg_end_note
from emovox.audio.sniff import Source
from signals import FFMPEG, SR, needs_ffmpeg, silence, voice, write_clip


def _two_tracks(tmp_path: Path, name: str, codec: str) -> Path:
    """A screen recording's layout: a silent first audio track, the voice on the second."""
    quiet = write_clip(tmp_path / "quiet.wav", silence(2.0), SR)
    talk = write_clip(tmp_path / "talk.wav", voice(2.0), SR)
    out = tmp_path / name
    subprocess.run([FFMPEG or "ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(quiet),
                    "-i", str(talk), "-map", "0:a", "-map", "1:a", "-c:a", codec, str(out)],
                   check=True)
    return out


@needs_ffmpeg
@pytest.mark.parametrize(("name", "codec"), [("screen.mp4", "aac"), ("screen.mkv", "flac")])
def test_a_second_audio_track_is_named(tmp_path, name, codec):
    path = _two_tracks(tmp_path, name, codec)
    a = load_audio(path)
    assert a.silent  # the first track, as before: but now the answer says why
    (note,) = [n for n in a.notes if "audio tracks" in n]
    assert "2 audio tracks; only the first was read" in note and "-map 0:a:1" in note
    assert name in note
    from_bytes = load_audio(path.read_bytes(), filename="upload" + Path(name).suffix)
    assert any("upload" in n and "2 audio tracks" in n for n in from_bytes.notes)
    assert file_notes(path) == tuple(n for n in a.notes if "audio tracks" in n)


@needs_ffmpeg
def test_one_track_and_plain_files_say_nothing(tmp_path):
    talk = write_clip(tmp_path / "talk.wav", voice(2.0), SR)
    m4a = tmp_path / "talk.m4a"
    subprocess.run([FFMPEG or "ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(talk),
                    "-c:a", "aac", str(m4a)], check=True)
    assert load_audio(m4a).notes == () and file_notes(m4a) == ()
    assert load_audio(talk).notes == () and file_notes(talk) == ()


@needs_ffmpeg
def test_tracks_counted_without_ffprobe(tmp_path, monkeypatch):
    """Without ffprobe the stream list of ``ffmpeg -i`` is read instead."""
    path = _two_tracks(tmp_path, "screen.mp4", "aac")
    monkeypatch.setattr(ffm, "ffprobe_exe", lambda: None)
    assert any("2 audio tracks" in n for n in file_notes(path))


def test_a_cut_wav_is_noted_for_streaming_readers(tmp_path):
    """``file_notes`` gives the timeline what ``load_audio`` gives a prediction."""
    path = write_clip(tmp_path / "cut.wav", voice(2.0), SR)
    path.write_bytes(path.read_bytes()[:-16000])
    (note,) = file_notes(path)
    assert "cut short" in note and load_audio(path).notes == (note,)
    blocks = list(iter_blocks(path, block_s=1.0))  # still read as far as it goes
    assert sum(len(b) for _, b in blocks) == pytest.approx(1.5 * SR, abs=2)
    assert np.isfinite(np.concatenate([b for _, b in blocks])).all()


@needs_ffmpeg
def test_the_track_count_comes_from_the_header_probe_already_made(tmp_path, monkeypatch):
    """With a duration limit the header is probed before decoding; the track count is read
    from that probe, not from a second ffprobe run."""
    path = _two_tracks(tmp_path, "screen.mkv", "flac")
    calls = []
    real = ffm.ffprobe_info
    monkeypatch.setattr(ffm, "ffprobe_info", lambda s: calls.append(s.name) or real(s))
    a = load_audio(path, max_duration=60)
    assert any("2 audio tracks" in n for n in a.notes) and len(calls) == 1


@pytest.mark.parametrize(("name", "subtype"), [("clip.aiff", "PCM_16"), ("clip.aifc", "ULAW")])
def test_an_aiff_cut_short_is_noted(tmp_path, name, subtype):
    """libsndfile reports the frames an AIFF holds, not those its SSND chunk declares: a
    file cut at 60 % decoded cleanly up to the cut and nothing said so (stop 36's list)."""
    kw = {"format": "AIFF"}
    whole = write_clip(tmp_path / name, voice(2.0), SR, subtype=subtype, **kw)
    assert load_audio(whole).notes == () and file_notes(whole) == ()
    raw = whole.read_bytes()
    cut = tmp_path / ("cut" + Path(name).suffix)
    header = len(raw) - (2 * SR * (1 if subtype == "ULAW" else 2))  # bytes before the samples
    cut.write_bytes(raw[: header + (len(raw) - header) * 6 // 10])
    (note,) = file_notes(cut)
    assert "holds 1.20 s of the 2.00 s of audio its header declares" in note
    a = load_audio(cut)
    assert a.notes == (note,) and abs(a.duration - 1.2) < 0.01
    from_bytes = load_audio(cut.read_bytes(), filename="upload.aiff")
    assert from_bytes.notes == (note.replace(str(cut), "upload.aiff"),)
    cut.write_bytes(raw[:-2])  # one frame short: under 10 ms, a rounding, not a cut
    assert file_notes(cut) == ()


@pytest.mark.parametrize("subtype", ["VORBIS", "OPUS"])
def test_an_ogg_cut_short_is_noted(tmp_path, subtype):
    """An Ogg stream ends with a page flagged end-of-stream; a copy cut short has an
    incomplete last page or one without the flag (stop 36's list: not detected before)."""
    sr = 48000 if subtype == "OPUS" else SR
    whole = write_clip(tmp_path / "clip.ogg", voice(4.0, sr), sr, subtype=subtype,
                       format="OGG")
    assert load_audio(whole).notes == () and file_notes(whole) == ()
    raw = whole.read_bytes()
    cut = tmp_path / "cut.ogg"
    for keep in (len(raw) * 6 // 10, len(raw) - 1):
        cut.write_bytes(raw[:keep])
        assert "the Ogg stream stops before its end" in ogg_end_note(Source(cut)), keep
    cut.write_bytes(raw[:40])  # inside the first page: no whole page to judge by (and no
    assert ogg_end_note(Source(cut)) is None  # audio: decoding says so)
    # complete pages up to a page boundary, but the last is not flagged as the end
    last = raw.rindex(b"OggS")
    cut.write_bytes(raw[:last])
    note = ogg_end_note(Source(cut))
    assert note is not None and "not marked as the end" in note
    a = load_audio(cut)
    assert note in a.notes and a.duration < 4.0


def test_ogg_pages_found_from_the_tail_alone(tmp_path):
    """A long Ogg file: only its last 64 KiB are read, and a page that starts before
    them is still judged by the one that starts after (no false alarm on a whole file)."""
    whole = write_clip(tmp_path / "long.ogg", voice(60.0), SR, subtype="VORBIS", format="OGG")
    assert whole.stat().st_size > 70_000
    assert ogg_end_note(Source(whole)) is None
    assert ogg_end_note(Source(whole.read_bytes())) is None


def _page(serial: int, seq: int, flags: int, body: bytes) -> bytes:
    """One Ogg page (RFC 3533) holding ``body``, its checksum filled in."""
    from emovox.audio.length import _ogg_crc

    lacing = bytes([255] * (len(body) // 255) + [len(body) % 255])
    head = (b"OggS\0" + bytes([flags]) + (1000 * seq).to_bytes(8, "little")
            + serial.to_bytes(4, "little") + seq.to_bytes(4, "little") + bytes(4)
            + bytes([len(lacing)]) + lacing)
    page = head + body
    return page[:22] + _ogg_crc(page).to_bytes(4, "little") + page[26:]


def _ogg_note(data: bytes) -> str | None:
    return ogg_end_note(Source(data, filename="x.ogg"))


def test_ogg_pages_are_told_by_their_checksum():
    """Pages are walked from the tail and checked by their CRC: "OggS" inside a page's data
    is not a page (QA, stop 37: a complete FLAC-in-Ogg file was called cut), a stream whose
    last page lacks the end flag is cut even when another stream ended (a video's), a page
    cut in its first bytes is cut, and trailing tags are not pages."""
    data = [bytes(range(200)) * 3, b"x" * 4000 + b"OggS\0\4" + bytes(40), bytes(300)]
    whole = (_page(7, 0, 2, data[0]) + _page(7, 1, 0, data[1]) + _page(7, 2, 4, data[2]))
    assert _ogg_note(whole) is None
    assert _ogg_note(whole[: -len(_page(7, 2, 4, data[2]))]) is not None  # at a boundary
    tricky = _page(7, 0, 2, data[0]) + _page(7, 1, 4, data[1])  # "OggS" in the last page
    assert _ogg_note(tricky) is None and _ogg_note(whole + b"TAG" + bytes(125)) is None
    for extra in (b"O", b"OggS", _page(7, 3, 0, bytes(100))[:30]):
        assert "incomplete" in _ogg_note(tricky + extra), extra
    video_audio = (_page(1, 0, 2, bytes(50)) + _page(2, 0, 2, bytes(50))
                   + _page(1, 1, 0, bytes(500)) + _page(2, 1, 0, bytes(500))
                   + _page(1, 2, 4, bytes(100)))  # the video ended, the audio did not
    assert "not marked as the end" in _ogg_note(video_audio)
    assert _ogg_note(video_audio + _page(2, 2, 4, bytes(100))) is None
    assert _ogg_note(b"OggS" + bytes(60)) is None  # no whole page: nothing to judge


def _aiff(chunks: list[tuple[bytes, bytes]]) -> bytes:
    body = b"AIFF" + b"".join(cid + len(d).to_bytes(4, "big") + d + b"\0" * (len(d) & 1)
                              for cid, d in chunks)
    return b"FORM" + len(body).to_bytes(4, "big") + body


def _comm(frames: int, rate_exponent: int = 16396, mantissa: int = 0xFA00 << 48,
          compression: bytes = b"") -> bytes:
    """A COMM chunk: mono, 16-bit, ``frames``; the default rate is 16000 Hz."""
    return (b"\0\1" + frames.to_bytes(4, "big") + b"\0\x10" + rate_exponent.to_bytes(2, "big")
            + mantissa.to_bytes(8, "big") + compression)


def test_aiff_headers_that_are_odd_or_hostile():
    """The last COMM counts (as for libsndfile) and a rate that overflows a float is no
    rate (QA, stop 37: OverflowError, a traceback in the timeline and a 500 in the API);
    AIFF-C ima4 counts packets of 64 frames (its note said 0.05 s for a 3.3 s file); more
    than 64 chunks before the sound are walked."""
    from emovox.audio.length import aiff_length_note

    ssnd = (b"SSND", bytes(8) + bytes(2 * 16000))  # 1 s of 16-bit mono at 16 kHz
    whole = _aiff([(b"COMM", _comm(16000, rate_exponent=0x7FFF)), ssnd,
                   (b"COMM", _comm(16000))])
    assert aiff_length_note(Source(whole, filename="a.aiff")) is None
    cut = _aiff([(b"COMM", _comm(16000, rate_exponent=0x7FFF)), ssnd])[:-16000]
    assert aiff_length_note(Source(cut, filename="a.aiff")) is None  # no rate: no judgement
    many = _aiff([(b"NAME", b"x" * 10)] * 70 + [(b"COMM", _comm(16000)), ssnd])
    assert aiff_length_note(Source(many, filename="a.aiff")) is None
    note = aiff_length_note(Source(many[:-16000], filename="a.aiff"))
    assert note is not None and "holds 0.50 s of the 1.00 s" in note
    ima = _aiff([(b"COMM", _comm(250, compression=b"ima4")), (b"SSND", bytes(8) + bytes(8500))])
    note = aiff_length_note(Source(ima[:-4250], filename="a.aiff"))
    assert note is not None and "holds 0.50 s of the 1.00 s" in note


def test_near_silence_and_a_muted_input_are_told_apart(tmp_path):
    """Exact zeros were told to "record closer to the microphone" (QA, stop 39): a muted
    input says to check the input instead; a faint voice keeps the old advice."""
    import soundfile as sf

    sf.write(tmp_path / "zeros.wav", np.zeros(2 * SR, np.float32), SR, subtype="PCM_16")
    sf.write(tmp_path / "faint.wav", 0.0005 * voice(2.0), SR, subtype="FLOAT")
    (muted,) = load_audio(tmp_path / "zeros.wav").notes
    (faint,) = load_audio(tmp_path / "faint.wav").notes
    assert "every sample has the same value" in muted and "not muted" in muted
    assert "record closer" not in muted
    assert "loudest frame below -60 dBFS" in faint and "record closer" in faint


def test_a_coarse_integer_recording_is_said(tmp_path):
    """16-bit audio at -50 dBFS (a few steps of resolution in the quiet parts of the voice)
    changed answers that float samples at the same level kept; 8-bit audio is always
    coarse (QA, stop 39). Float samples and louder 16-bit audio are not."""
    import soundfile as sf

    v = voice(2.0) / np.abs(voice(2.0)).max()
    for name, level_db, subtype, coarse in (("c50.wav", -50, "PCM_16", True),
                                            ("c40.wav", -40, "PCM_16", False),
                                            ("f50.wav", -50, "FLOAT", False),
                                            ("u8.wav", -1, "PCM_U8", True),
                                            ("c50.flac", -50, "PCM_16", True)):
        sf.write(tmp_path / name, v * 10 ** (level_db / 20), SR, subtype=subtype)
        notes = [n for n in load_audio(tmp_path / name).notes if "is coarse" in n]
        assert bool(notes) is coarse, (name, notes)
        if coarse:
            bits = 8 if subtype == "PCM_U8" else 16
            said_db = float(notes[0].split(f"steps of its {bits}-bit scale (")[1].split()[0])
            assert said_db == pytest.approx(level_db, abs=0.15)  # 8 bits round the peak
            said = []
            list(iter_blocks(tmp_path / name, notes=said))  # the timeline's reader too
            assert notes[0] in said


@needs_ffmpeg
def test_clipping_survives_a_lossy_codec(tmp_path):
    """A clipped WAV encoded to MP3 lost its clipping warning: the codec's ringing breaks
    the flat tops into single samples over full scale (re-check, stop 39). A clean file
    normalised to full scale stays unwarned."""
    v = voice(3.0) / np.abs(voice(3.0)).max()
    for name, wave, clipped in (("clip", np.clip(3 * v, -1, 1), True), ("clean", v, False)):
        src = write_clip(tmp_path / f"{name}.wav", wave, SR)
        mp3 = tmp_path / f"{name}.mp3"
        subprocess.run([FFMPEG, "-loglevel", "error", "-y", "-i", str(src), str(mp3)],
                       check=True)
        notes = [n for n in load_audio(mp3).notes if "is clipped" in n]
        assert bool(notes) is clipped, (name, notes)


def test_clipping_and_coarseness_at_each_formats_own_scale(tmp_path):
    """Re-check, stop 39: clipped mu-law and A-law files (whose largest value is 0.980 and
    0.984) were never warned; a 1-step dither file was told that the quiet parts of its
    voice were lost; an 8-bit file peaking at -0.1 dBFS was told to record louder, and one
    reaching -128 was not coarse."""
    import soundfile as sf

    v = voice(2.0) / np.abs(voice(2.0)).max()
    for subtype in ("ULAW", "ALAW"):
        sf.write(tmp_path / f"c_{subtype}.wav", np.clip(3 * v, -1, 1), SR, subtype=subtype)
        sf.write(tmp_path / f"n_{subtype}.wav", 0.9 * v, SR, subtype=subtype)
        assert any("is clipped" in n for n in load_audio(tmp_path / f"c_{subtype}.wav").notes)
        assert load_audio(tmp_path / f"n_{subtype}.wav").notes == ()
    dither = np.random.default_rng(0).integers(-1, 2, 2 * SR) / 32768
    sf.write(tmp_path / "dither.wav", dither, SR, subtype="PCM_16")
    assert not any("is coarse" in n for n in load_audio(tmp_path / "dither.wav").notes)
    sf.write(tmp_path / "u8.wav", np.clip(1.5 * v, -1, 1), SR, subtype="PCM_U8")
    (coarse,) = [n for n in load_audio(tmp_path / "u8.wav").notes if "is coarse" in n]
    assert "128 steps of its 8-bit scale" in coarse and "record with more bits" in coarse
    assert "higher level" not in coarse
    sf.write(tmp_path / "u8q.wav", 0.1 * v, SR, subtype="PCM_U8")  # -20 dBFS: 13 steps
    assert any("is coarse" in n for n in load_audio(tmp_path / "u8q.wav").notes)
