"""Tests for emovox.audio: every bad input is a typed error naming the file.

Every signal is synthesised into ``tmp_path``; ffmpeg-dependent tests skip when it is absent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emovox import audio
from emovox.audio import (
    decode,
    load_audio,
    probe,
)
from emovox.audio import ffmpeg as ffm
from emovox.errors import (
    AudioError,
    AudioFileNotFound,
    AudioTooLong,
    AudioTooShort,
    DamagedAudio,
    EmptyAudio,
    InvalidSamples,
    NotAudio,
    UnsupportedCodec,
)
from signals import SR, ffmpeg_encode, needs_ffmpeg, sine, voice, write_clip

F64 = np.float64  # the signals these tests were written with


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.wav"
    with pytest.raises(AudioFileNotFound, match="nope.wav.*no such file"):
        load_audio(path)
    with pytest.raises(FileNotFoundError):  # also a FileNotFoundError for generic handlers
        probe(path)


def test_broken_links_say_what_they_are(tmp_path: Path) -> None:
    """A link loop and a dangling link were both "no such file" (QA, stop 38)."""
    (tmp_path / "a.wav").symlink_to(tmp_path / "b.wav")
    (tmp_path / "b.wav").symlink_to(tmp_path / "a.wav")
    (tmp_path / "dangling.wav").symlink_to("gone.flac")
    with pytest.raises(AudioFileNotFound, match=r"a\.wav: a loop of symbolic links"):
        load_audio(tmp_path / "a.wav")
    with pytest.raises(AudioFileNotFound, match=r"dangling\.wav: a symbolic link to 'gone"
                       r"\.flac', which does not exist"):
        load_audio(tmp_path / "dangling.wav")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(AudioFileNotFound, match="directory"):
        load_audio(tmp_path)


def test_empty_file_and_empty_bytes(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(EmptyAudio, match="empty.wav.*0 bytes"):
        load_audio(path)
    with pytest.raises(EmptyAudio):
        load_audio(b"")


def test_header_without_samples_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "header_only.wav"
    sf.write(path, np.zeros(0), 16000, subtype="PCM_16")
    with pytest.raises(EmptyAudio, match="header_only.wav.*no audio samples"):
        load_audio(path)


def test_a_header_declaring_audio_with_none_after_it_is_refused_without_saying_answered(
        tmp_path: Path) -> None:
    """A WAV header declaring 2 s, no data: the refusal said "answered on what is there"
    (API QA, stop 37)."""
    path = tmp_path / "hdr.wav"
    sf.write(path, voice(2.0), 16000, subtype="PCM_16")
    raw = path.read_bytes()
    path.write_bytes(raw[: raw.index(b"data") + 8])
    with pytest.raises(EmptyAudio) as err:
        load_audio(path)
    said = str(err.value)
    assert "holds 0.00 s of the 2.00 s" in said and "there is no audio to answer" in said
    assert "answered" not in said


def test_text_file_named_wav(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("these are my meeting notes, not a recording\n" * 10)
    with pytest.raises(NotAudio, match="notes.wav.*text file") as decoding:
        load_audio(path)
    with pytest.raises(NotAudio) as probing:  # in the same words (QA, stop 39)
        probe(path)
    assert str(probing.value) == str(decoding.value)
    assert "it starts with 'these are my meeting n" in str(decoding.value)


@pytest.mark.parametrize("as_bytes", [False, True])
def test_random_bytes(tmp_path: Path, as_bytes: bool) -> None:
    data = np.random.default_rng(0).bytes(8192)
    path = tmp_path / "noise.wav"
    path.write_bytes(data)
    with pytest.raises(NotAudio, match="not a recognisable audio file"):
        load_audio(data if as_bytes else path)


def test_a_flac_cut_short_is_damaged_audio(tmp_path: Path) -> None:
    src = tmp_path / "clip.flac"
    rng = np.random.default_rng(0)
    sf.write(src, (0.1 * rng.standard_normal(32000)).astype(np.float32), 16000)
    cut = tmp_path / "cut.flac"
    cut.write_bytes(src.read_bytes()[:3000])  # a download or copy cut short
    with pytest.raises(DamagedAudio, match="cut.flac: decoding failed part-way through"):
        load_audio(cut, sr=16000)


def _half_flac(tmp_path: Path, seconds: float = 6.0) -> tuple[Path, np.ndarray]:
    """A FLAC of noise cut at half its bytes (an interrupted copy), and its samples."""
    src = tmp_path / "clip.flac"
    x = (0.1 * np.random.default_rng(0).standard_normal(int(seconds * 16000))).astype(
        np.float32)
    sf.write(src, x, 16000, subtype="PCM_16")
    cut = tmp_path / "cut.flac"
    data = src.read_bytes()
    cut.write_bytes(data[:len(data) // 2])
    return cut, sf.read(src, dtype="float32")[0]


def test_a_flac_cut_in_half_is_answered_on_what_decodes_with_a_note(tmp_path: Path) -> None:
    cut, x = _half_flac(tmp_path)  # stop 33: refused whole, as if nothing were there
    a = load_audio(cut, sr=16000)
    assert 2.5 < a.duration < 3.0  # up to the last whole FLAC frame of the first half
    np.testing.assert_allclose(a.wave, x[:len(a.wave)] - x[:len(a.wave)].mean(), atol=1e-6)
    assert len(a.notes) == 1 and a.notes[0].startswith(
        f"{cut}: decoding stopped at {audio.seconds_text(a.duration)} s (")
    assert "flac decoder lost sync" in a.notes[0] and "damaged or cut short" in a.notes[0]


def test_a_stream_of_a_cut_flac_ends_at_the_damage_with_the_note(tmp_path: Path) -> None:
    cut, _ = _half_flac(tmp_path, seconds=40.0)
    notes: list[str] = []
    blocks = [b for _, b in audio.iter_blocks(cut, block_s=5.0, notes=notes)]
    n = sum(len(b) for b in blocks)
    assert len(blocks) == 4 and 18 * 16000 < n < 20 * 16000  # its timeline is not lost
    assert len(notes) == 1 and notes[0].startswith(f"{cut}: decoding stopped at ")


@pytest.mark.parametrize("seconds", [30.0, 60.0])
def test_a_flac_damaged_in_the_middle_is_read_up_to_the_damage(tmp_path: Path,
                                                               seconds: float) -> None:
    """Garbage over a few bytes at a third of a FLAC: the handle that lost sync cannot seek
    back, so the whole read block was dropped (16.4 s at 16 kHz; a file damaged in its first
    block was refused whole: QA re-check, stop 34). A fresh handle re-reads up to it."""
    src = tmp_path / "clip.flac"
    x = (0.1 * np.random.default_rng(1).standard_normal(int(seconds * 16000))).astype(
        np.float32)
    sf.write(src, x, 16000, subtype="PCM_16")
    data = bytearray(src.read_bytes())
    at = len(data) // 3
    data[at:at + 2000] = np.random.default_rng(2).integers(0, 256, 2000, np.uint8).tobytes()
    bad = tmp_path / "bad.flac"
    bad.write_bytes(bytes(data))
    a = load_audio(bad, sr=16000)
    assert seconds / 3 - 1.0 < a.duration <= seconds / 3 + 0.1  # up to the damage itself
    x = sf.read(src, dtype="float32")[0]
    np.testing.assert_allclose(a.wave, x[:len(a.wave)] - x[:len(a.wave)].mean(), atol=1e-6)
    assert len(a.notes) == 1 and "(flac decoder lost sync)" in a.notes[0], a.notes


def test_truncated_wav_decodes_what_is_there(tmp_path: Path) -> None:
    path = tmp_path / "full.wav"
    sf.write(path, sine(440.0, 1.0, 16000, dtype=F64), 16000, subtype="PCM_16")
    data = path.read_bytes()
    assert len(data) == 44 + 32000
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[:20044])  # header says 16000 samples, 10000 are there
    a = load_audio(cut)
    assert len(a.wave) == 10000
    np.testing.assert_allclose(a.wave, load_audio(path).wave[:10000], atol=1e-6)


@pytest.mark.parametrize("keep", [12, 20, 30, 43])
def test_wav_cut_inside_header_is_typed_error(tmp_path: Path, keep: int) -> None:
    path = tmp_path / "full.wav"
    sf.write(path, sine(440.0, 1.0, 16000, dtype=F64), 16000, subtype="PCM_16")
    cut = tmp_path / "cut.wav"
    cut.write_bytes(path.read_bytes()[:keep])
    with pytest.raises(AudioError, match="cut.wav"):
        load_audio(cut)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_samples(tmp_path: Path, bad: float) -> None:
    path = tmp_path / "nan.wav"
    x = sine(440.0, 1.0, 16000, dtype=F64)
    x[8000] = bad
    sf.write(path, x, 16000, subtype="FLOAT")
    with pytest.raises(InvalidSamples, match=r"nan.wav.*NaN or infinite.*0\.500 s"):
        load_audio(path)


def test_samples_far_beyond_full_scale_are_refused(tmp_path: Path) -> None:
    """A float WAV scaled by 1e19 is finite but overflows float32 power spectra: it gave
    NaN probabilities marked "ok" (stop 29 QA). An integer-scale float file (x 32768) and a
    hot one (x 10) still decode."""
    x = sine(440.0, 1.0, 16000, dtype=F64)
    for scale in (10.0, 32768.0):
        sf.write(tmp_path / "ok.wav", x * scale, 16000, subtype="FLOAT")
        assert np.abs(load_audio(tmp_path / "ok.wav").wave).max() >= 4.9
    y = x * 1e19
    sf.write(tmp_path / "huge.wav", y, 16000, subtype="FLOAT")
    with pytest.raises(InvalidSamples, match=r"huge.wav.*beyond \+-1e\+06.*0\.000 s"):
        load_audio(tmp_path / "huge.wav")
    from emovox.preprocess import Preprocess

    with pytest.raises(InvalidSamples, match="beyond"):
        Preprocess().at_rate(y.astype(np.float32), 16000)


def test_too_short(tmp_path: Path) -> None:
    path = tmp_path / "short.wav"
    sf.write(path, sine(440.0, 0.1, 16000, dtype=F64), 16000)
    with pytest.raises(AudioTooShort, match="short.wav.*0.10 s.*0.5 s minimum"):
        load_audio(path, min_duration=0.5)
    assert load_audio(path, min_duration=0.05).duration == pytest.approx(0.1)


def test_too_long_is_rejected_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "long.wav"
    sf.write(path, sine(440.0, 5.0, 16000, dtype=F64), 16000)
    assert load_audio(path, max_duration=6.0).duration == pytest.approx(5.0)

    def no_decoding(*args: object, **kwargs: object) -> None:
        raise AssertionError("decoder opened although the header already says it is too long")

    monkeypatch.setattr(decode, "open_decoder", no_decoding)
    with pytest.raises(AudioTooLong, match="long.wav.*5.00 s.*2 s limit"):
        load_audio(path, max_duration=2.0)


def test_too_long_without_header_duration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "long.wav"
    sf.write(path, sine(440.0, 5.0, 16000, dtype=F64), 16000)

    def blind_probe(s: object) -> None:
        raise NotAudio("header unreadable")

    monkeypatch.setattr(decode, "probe_source", blind_probe)
    with pytest.raises(AudioTooLong, match="long.wav"):
        load_audio(path, max_duration=2.0)


def test_m4a_without_ffmpeg_says_install_ffmpeg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "voice.m4a"
    path.write_bytes(b"\x00\x00\x00\x20ftypM4A \x00\x00\x02\x00M4A isommp42" + bytes(2000))
    monkeypatch.setattr(ffm, "ffmpeg_exe", lambda: None)
    monkeypatch.setattr(ffm, "ffprobe_exe", lambda: None)
    assert not audio.ffmpeg_available()
    with pytest.raises(UnsupportedCodec, match="voice.m4a.*MP4/M4A.*install ffmpeg"):
        load_audio(path)
    with pytest.raises(UnsupportedCodec, match="install ffmpeg"):
        probe(path)


@needs_ffmpeg
def test_broken_m4a_with_ffmpeg_is_unsupported_codec(tmp_path: Path) -> None:
    data = b"\x00\x00\x00\x20ftypM4A \x00\x00\x02\x00M4A isommp42" + bytes(2000)
    path = tmp_path / "broken.m4a"
    path.write_bytes(data)
    with pytest.raises(UnsupportedCodec, match="broken.m4a.*could not be decoded.*ffmpeg"):
        load_audio(path)
    with pytest.raises(UnsupportedCodec, match="clip.m4a"):
        load_audio(data, filename="clip.m4a")


@needs_ffmpeg
def test_a_video_without_sound_says_it_has_no_audio_track(tmp_path: Path) -> None:
    """ffmpeg's own hint ("Stream map '0:a:0' matches no streams; add a trailing '?'") was
    passed on to the user (stop 29 QA); the error now says what is wrong."""
    import subprocess

    from emovox.audio.ffmpeg import ffmpeg_exe

    for name in ("silent_film.mp4", "silent_film.avi"):  # AVI: the sniffer does not know it
        path = tmp_path / name                       # ("not a recognisable audio file":
        subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i",  # re-check, stop 37)
                        "color=c=black:s=16x16:d=1", "-c:v", "mpeg4", str(path)], check=True)
        article = "an MP4/M4A" if name.endswith("mp4") else "a video"  # (an MP4: stop 52)
        with pytest.raises(NotAudio, match=f"{name}: {article} file with no audio track") as err:
            load_audio(path)
        assert "trailing" not in str(err.value)


@needs_ffmpeg
def test_a_cut_mp3_whose_header_claims_more_is_said_to_declare_it(tmp_path: Path) -> None:
    """An MP3 header (Xing) states the length before decoding; a file cut short keeps the
    full length in its header: the error says the header declares it (QA pass)."""
    import subprocess

    from emovox.audio.ffmpeg import ffmpeg_exe

    wav = tmp_path / "long.wav"
    sf.write(wav, sine(220.0, 30.0), 16000)
    mp3 = tmp_path / "long.mp3"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(wav), "-b:a", "32k", str(mp3)],
                   check=True)
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(mp3.read_bytes()[:20000])  # about 5 s of the 30 s
    with pytest.raises(AudioTooLong, match="cut.mp3: declares 30.* in its header"):
        load_audio(cut, sr=16000, max_duration=10.0)


@needs_ffmpeg
@pytest.mark.parametrize(("name", "codec", "said"), [
    ("clip.m4a", ("-c:a", "aac", "-movflags", "+faststart"), "partial file"),
    ("clip.webm", ("-c:a", "libopus"), "File ended prematurely"),
])
def test_an_m4a_or_webm_cut_short_is_answered_with_a_note(tmp_path: Path, name: str,
                                                          codec: tuple[str, ...],
                                                          said: str) -> None:
    """ffmpeg decodes these up to the cut and exits 0, saying so on stderr only: they were
    answered without a warning (QA re-check, stop 34). The whole file gets no note."""
    wav = write_clip(tmp_path / "src.wav", voice(4.0))
    whole = ffmpeg_encode(wav, tmp_path / name, *codec)
    cut = tmp_path / f"cut-{name}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 6 // 10])
    assert not load_audio(whole, sr=16000).notes
    a = load_audio(cut, sr=16000)
    assert 1.0 < a.duration < 3.5
    assert len(a.notes) == 1 and a.notes[0].startswith(
        f"{cut}: decoding stopped at {audio.seconds_text(a.duration)} s (ffmpeg: ")
    assert said in a.notes[0] and "damaged or cut short" in a.notes[0]


@needs_ffmpeg
def test_an_undecodable_mp3_is_not_said_not_to_exist(tmp_path: Path) -> None:
    """libsndfile says "File does not exist or is not a regular file (possibly a pipe?)" of
    an MP3 it cannot decode; the error said it too (API QA, stop 35)."""
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(b"ID3\x03\0\0\0\0\0\0" + np.random.default_rng(0).bytes(200_000))
    with pytest.raises(AudioError) as err:
        load_audio(junk)
    said = str(err.value)
    assert "does not exist" not in said and "possibly a pipe" not in said
    assert said.startswith(f"{junk}: looks like MP3 but could not be decoded (")


@needs_ffmpeg
def test_a_cut_mp3_whose_header_states_its_length_is_noted_and_vbr_without_one_is_not(
        tmp_path: Path) -> None:
    """A cut MP3 was answered on half its length without a word; its Xing header states the
    whole length. A VBR MP3 without one has a length libsndfile guesses (8.8 s for 3.8 s):
    no note there (re-check, stop 35)."""
    wav = write_clip(tmp_path / "src.wav", voice(12.0))
    whole = ffmpeg_encode(wav, tmp_path / "whole.mp3", "-b:a", "32k")
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    assert not load_audio(whole, sr=16000).notes
    a = load_audio(cut, sr=16000)
    assert len(a.notes) == 1 and a.notes[0].startswith(f"{cut}: the file holds ")
    assert "of the 12.0" in a.notes[0]
    vbr = ffmpeg_encode(wav, tmp_path / "vbr.mp3", "-q:a", "7", "-write_xing", "0")
    assert not load_audio(vbr, sr=16000).notes


def _with_data_size(path: Path, size: int | None, cut: int = 0) -> Path:
    """``path`` (a 16-bit WAV written by soundfile) with its data chunk's size field set to
    ``size`` (unchanged when None) and its last ``cut`` bytes removed."""
    raw = bytearray(path.read_bytes())
    at = raw.index(b"data") + 4
    if size is not None:
        raw[at : at + 4] = size.to_bytes(4, "little")
    path.write_bytes(bytes(raw[: len(raw) - cut]))
    return path


def test_a_wav_cut_short_is_answered_with_a_warning(tmp_path, caplog):
    # QA stop 30: a WAV cut at half was answered on what was left, and nothing said so
    path = _with_data_size(write_clip(tmp_path / "cut.wav", voice(2.0)), None, cut=32000)
    with caplog.at_level("WARNING"):
        a = load_audio(path)
    assert abs(a.duration - 1.0) < 0.01
    assert "holds 1.00 s of the 2.00 s of audio its header declares" in caplog.text
    assert len(a.notes) == 1 and "holds 1.00 s of the 2.00 s" in a.notes[0]  # -> answers
    caplog.clear()
    whole = write_clip(tmp_path / "whole.wav", voice(2.0))
    stream = _with_data_size(write_clip(tmp_path / "stream.wav", voice(2.0)), 0xFFFFFFFF)
    with caplog.at_level("WARNING"):
        load_audio(whole), load_audio(stream)  # a stream writer's placeholder size is fine
    assert "header declares" not in caplog.text


def test_a_wav_whose_header_declares_no_audio_says_how_to_repair_it(tmp_path):
    path = _with_data_size(write_clip(tmp_path / "unfinished.wav", voice(2.0)), 0)
    with pytest.raises(EmptyAudio, match=r"declares no audio, yet 2.00 s of data follow.*ffmpeg"):
        load_audio(path)


@needs_ffmpeg
def test_a_long_m4a_decodes_from_bytes_as_from_its_path(tmp_path):
    """An M4A with its index at the end (ffmpeg's default) over ~64 KB, sent as bytes (API,
    web app): piped into ffmpeg it decoded to nothing with exit status 0 and was refused as
    empty, while `emovox predict` read the path (QA stop 30)."""
    wav = write_clip(tmp_path / "long.wav", np.tile(voice(3.0), 9))  # 27 s
    m4a = ffmpeg_encode(wav, tmp_path / "long.m4a", "-c:a", "aac", "-b:a", "64k")
    assert m4a.stat().st_size > 100_000
    from_path = load_audio(m4a)
    from_bytes = load_audio(m4a.read_bytes(), filename="upload.m4a")
    assert abs(from_bytes.duration - 27.0) < 0.1
    np.testing.assert_array_equal(from_bytes.wave, from_path.wave)


@needs_ffmpeg
@pytest.mark.parametrize("codec", ["alac", "libopus"])
def test_a_caf_of_alac_or_opus_decodes_from_bytes_as_from_its_path(tmp_path, codec):
    """A CAF holding ALAC or Opus (iPhone recordings) cannot be read from a pipe ("Missing
    packet table"): `emovox predict` read its path while the API and the web app refused the
    same file uploaded (code review, stop 47)."""
    wav = write_clip(tmp_path / "memo.wav", voice(2.0, 48000), 48000)
    caf = ffmpeg_encode(wav, tmp_path / "memo.caf", "-c:a", codec)
    from_path = load_audio(caf)
    from_bytes = load_audio(caf.read_bytes(), filename="memo.caf")
    assert abs(from_bytes.duration - 2.0) < 0.05
    np.testing.assert_array_equal(from_bytes.wave, from_path.wave)


@needs_ffmpeg
def test_an_mp3_without_a_stated_length_is_not_refused_on_a_guessed_one(tmp_path):
    """A VBR MP3 without a Xing header whose first second is silent: libsndfile guessed its
    length from the first frame's bit rate (143.8 s for 25 s) and a 60 s limit refused it
    unread (code review, stop 47). Its length is now unknown until decoded."""
    wave = np.concatenate([np.zeros(SR, np.float32), np.tile(voice(3.0), 8)])  # 25 s
    wav = write_clip(tmp_path / "memo.wav", wave)
    mp3 = ffmpeg_encode(wav, tmp_path / "memo.mp3", "-c:a", "libmp3lame", "-q:a", "0",
                        "-write_xing", "0")
    assert audio.probe(mp3).duration is None
    assert abs(load_audio(mp3, max_duration=60).duration - 25.0) < 0.1
    with pytest.raises(AudioTooLong):
        load_audio(mp3, max_duration=20)  # decoding still enforces the limit


def _playlist(tmp_path: Path) -> tuple[Path, bytes]:
    """An HLS playlist listing another audio file of the machine, with one binary byte (so
    it is not refused as text): ``(the listed file, the playlist's bytes)``."""
    segment = ffmpeg_encode(write_clip(tmp_path / "secret.wav", voice(2.0), 16000),
                            tmp_path / "secret.aac", "-c:a", "aac")
    body = (f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n{segment}\n"
            "#EXT-X-ENDLIST\n").encode() + b"\x00\x01"
    return segment, body


@needs_ffmpeg
def test_a_playlist_is_never_followed(tmp_path: Path) -> None:
    """ffmpeg followed an HLS playlist named call.wav to the file it lists, and emovox
    answered that file's emotion (stop 31): a request could read the server's files. Only
    audio containers are demuxed now, from the named file or pipe only."""
    segment, body = _playlist(tmp_path)
    assert load_audio(segment).duration > 1.5  # the listed file is audio: the refusal is
    playlist = tmp_path / "call.wav"           # the playlist's
    playlist.write_bytes(body)
    for src in (playlist, body):
        with pytest.raises(NotAudio, match="not a recognisable audio file"):
            load_audio(src, filename="call.wav")
    with pytest.raises(NotAudio):
        list(audio.iter_blocks(playlist))
    with pytest.raises(NotAudio):
        audio.probe(playlist)
    assert "hls" not in ffm.SAFE_DEMUXERS and "concat" not in ffm.SAFE_DEMUXERS


def _refused_in_a_child(cwd: Path, arg: str) -> None:
    """``load_audio(arg)`` (``arg`` a Python expression) in a child process run in ``cwd``:
    it must end with a clear refusal within a minute, never wait on a FIFO."""
    import os
    import subprocess
    import sys

    code = ("from emovox.audio import load_audio\n"
            f"try: load_audio({arg})\n"
            "except Exception as e: print(type(e).__name__)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60, cwd=cwd,
                       env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert r.stdout.strip() in ("NotAudio", "UnsupportedCodec", "DamagedContainer"), \
        r.stdout + r.stderr


@pytest.mark.parametrize("head", [b"", b"ID3\x04\x00\x00\x00\x00\x00\x10", b"\xff\xfb",
                                  b"caff", b"BW64\xff\xff\xff\xffWAVE"])
def test_unknown_content_never_makes_libsndfile_open_a_file_beside_it(
        tmp_path: Path, head: bytes) -> None:
    """libsndfile, failing to recognise content (unknown, or junk behind a signature it
    knows), looks for a Sound Designer II "resource fork" beside the file (``._NAME``): a
    FIFO there hung a batch for ever (security QA and its re-check, stop 31). Unknown
    content goes to ffmpeg only, and libsndfile is not asked while such a fork is there."""
    import os

    junk = tmp_path / "junk.wav"
    junk.write_bytes(head + bytes(range(256)) * 8)
    os.mkfifo(tmp_path / "._junk.wav")
    _refused_in_a_child(tmp_path, repr(str(junk)))


@pytest.mark.parametrize("fmt", ["NIST", "VOC", "IRCAM", "SVX", "PAF", "PVF", "AVR", "MAT5"])
def test_formats_libsndfile_reads_by_signature_still_load(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"clip.{fmt.lower()}"
    sf.write(path, voice(1.0), 16000, format=fmt, subtype="PCM_16")
    assert load_audio(path).duration == pytest.approx(1.0, abs=0.01)


def test_a_folder_named_tilde_is_not_the_home_folder(tmp_path: Path, monkeypatch) -> None:
    """`emovox batch .` over a tree with a folder named `~` read $HOME/x.wav instead of
    ./~/x.wav (pathlib drops the `./`; security QA, stop 31)."""
    from emovox.serving.inputs import collect_inputs, resolved_key

    home, work = tmp_path / "home", tmp_path / "work"
    write_clip(home / "x.wav", sine(440, 1.0), 16000)
    write_clip(work / "~" / "x.wav", sine(220, 0.5), 16000)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    (found,) = collect_inputs(["."])
    assert resolved_key(found) == str(work / "~" / "x.wav")
    assert load_audio(found).duration == pytest.approx(0.5, abs=0.01)
    assert load_audio(Path("./~/x.wav")).duration == pytest.approx(0.5, abs=0.01)


def test_bytes_input_never_waits_on_a_fork_in_the_current_folder(tmp_path: Path) -> None:
    """For bytes (API uploads) libsndfile looks for ``._`` in the current folder."""
    import os

    os.mkfifo(tmp_path / "._")
    _refused_in_a_child(tmp_path, "b'ID3\\x04' + bytes(range(256)) * 8, filename='x.mp3'")


def test_little_endian_au_and_camcorder_video_still_load(tmp_path: Path) -> None:
    """The re-check of the decoder whitelists found little-endian AU (`dns.`) and DV, MXF
    and WTV refused; the old decoder read them."""
    le = tmp_path / "le.au"
    sf.write(le, voice(1.0), 16000, format="AU", subtype="PCM_16", endian="LITTLE")
    assert le.read_bytes()[:4] == b"dns." and load_audio(le).duration == pytest.approx(1.0)
    if not ffm.ffmpeg_available():
        return
    import subprocess

    dv = tmp_path / "cam.dv"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                    "sine=f=300:d=2", "-f", "lavfi", "-i", "color=c=black:s=720x576:d=2",
                    "-ar", "48000", "-shortest", "-target", "pal-dv", str(dv)], check=True)
    assert load_audio(dv).duration == pytest.approx(2.0, abs=0.1)
    assert {"dv", "mxf", "wtv"} <= set(ffm.SAFE_DEMUXERS)


def test_a_backslash_in_a_relative_name_does_not_move_the_fork(tmp_path: Path) -> None:
    """Given a relative name without '/', libsndfile split it at a backslash and looked for
    `a\\._b.mp3`, which the fork check did not (second re-check, stop 31)."""
    import os

    (tmp_path / "a\\b.mp3").write_bytes(b"ID3\x04\x00\x00\x00\x00\x00\x10" + bytes(4000))
    os.mkfifo(tmp_path / "a\\._b.mp3")
    _refused_in_a_child(tmp_path, repr("a\\b.mp3"))


def test_a_path_with_dotdot_after_a_link_reads_the_file_the_kernel_means(tmp_path: Path,
                                                                           monkeypatch) -> None:
    """Handing libsndfile an absolute path dropped `..` after a link and decoded another
    file than the one sniffed (third re-check, stop 31)."""
    (tmp_path / "other" / "deep").mkdir(parents=True)
    write_clip(tmp_path / "a.wav", sine(440, 0.5), 16000)
    write_clip(tmp_path / "other" / "a.wav", sine(440, 1.0), 16000)
    (tmp_path / "lnk").symlink_to(tmp_path / "other" / "deep")
    monkeypatch.chdir(tmp_path)
    assert load_audio("lnk/../a.wav").duration == pytest.approx(1.0, abs=0.01)
    assert load_audio("a.wav").duration == pytest.approx(0.5, abs=0.01)


@needs_ffmpeg
@pytest.mark.parametrize(("name", "fmt"), [("call.gsm", "-f gsm"), ("dump.raw", "-f s16le"),
                                           ("my take.PCM", "-f s16le")])
def test_headerless_audio_is_refused_with_the_command_that_converts_it(tmp_path, name, fmt):
    """A .gsm file was refused with "ffmpeg cannot read it either", which it can, told the
    format; emovox keeps headerless formats off ffmpeg's list on purpose (QA, stop 37). Real
    PCM whose first bytes look like an MP3 frame ended in libsndfile's "samplerate must be
    specified" (re-check)."""
    from emovox.audio import probe

    noise = np.random.default_rng(0).integers(0, 256, 3300, np.uint8).tobytes()
    pcm = (np.concatenate([[-1, -2], voice(1.0)[2:]]) * 32767).astype("<i2").tobytes()
    for data in (noise, pcm):
        path = tmp_path / name
        path.write_bytes(data)
        for read in (load_audio, probe):
            with pytest.raises(NotAudio) as err:
                read(path)
            said = str(err.value)
            assert "headerless" in said and f"`ffmpeg {fmt}" in said, said
            assert "cannot read it" not in said and "samplerate" not in said
            assert (f"-i '{path}' out.wav`" if " " in name else f"-i {path} out.wav`") in said


@needs_ffmpeg
def test_an_adts_aac_is_not_refused_on_the_length_ffprobe_guesses(tmp_path, monkeypatch):
    """An ADTS AAC states no length; ffprobe guesses one from the first frames' bit rate
    (406 s for 22 s that start silent), and `predict --max-duration 300` and the API's
    timeline refused it (code review, stop 47). Its length is unknown until decoded."""
    from emovox.serving.predictor import Predictor
    from emovox.serving.service import timeline_from_upload

    wave = np.concatenate([np.zeros(4 * SR, np.float32), np.tile(voice(3.0), 6)])  # 22 s
    wav = write_clip(tmp_path / "memo.wav", wave)
    aac = ffmpeg_encode(wav, tmp_path / "memo.aac", "-c:a", "aac", "-b:a", "32k", "-f", "adts")
    info = audio.probe(aac)
    assert info.duration is None and not info.exact
    assert abs(load_audio(aac, max_duration=60).duration - 22.0) < 0.2
    tl = timeline_from_upload(Predictor.from_artifact("default"), aac.read_bytes(), "memo.aac",
                              max_duration=60)
    assert abs(tl.duration - 22.0) < 0.2
    assert audio.probe(wav).exact  # a WAV's header states its length
    monkeypatch.setenv("EMOVOX_FFPROBE", str(tmp_path / "no-ffprobe"))  # ffmpeg's banner
    assert audio.probe(aac).duration is None  # read instead (a review of the fix)


def test_a_file_of_one_sample_and_a_name_too_long_are_clear_errors(tmp_path):
    """One sample at 48 kHz resampled to none: load_audio answered an empty wave said to
    be "muted", while iter_blocks refused it; a file name over the system's limit was a
    raw OSError (code review, stop 47)."""
    tiny = write_clip(tmp_path / "tiny.wav", np.full(1, 0.5, np.float32), 48000)
    with pytest.raises(EmptyAudio, match="tiny.wav: holds too few samples"):
        load_audio(tiny)
    with pytest.raises(AudioFileNotFound, match="cannot be opened"):
        load_audio(tmp_path / ("a" * 300 + ".wav"))


@needs_ffmpeg
def test_ffmpegs_errors_are_not_read_into_memory_whole(tmp_path):
    """A damaged AAC makes ffmpeg write an error line per frame; the whole of stderr was
    read into memory (1.9x the file's size) for one message (code review, stop 47)."""
    import tracemalloc

    rng = np.random.default_rng(1)
    wav = write_clip(tmp_path / "n.wav", 0.1 * rng.standard_normal(SR * 60), subtype="FLOAT")
    d = bytearray(ffmpeg_encode(wav, tmp_path / "n.aac", "-c:a", "aac", "-b:a", "32k", "-f",
                                "adts").read_bytes())
    i, frames = 0, 0  # every frame after the first scrambled, its ADTS header kept
    while i + 7 < len(d):
        if d[i] == 0xFF and (d[i + 1] & 0xF6) == 0xF0:
            n = ((d[i + 3] & 3) << 11) | (d[i + 4] << 3) | (d[i + 5] >> 5)
            if n < 7:
                break
            if frames:
                d[i + 7 : i + n] = rng.integers(0, 256, n - 7, dtype=np.uint8).tobytes()
            frames, i = frames + 1, i + n
        else:
            i += 1
    bad = tmp_path / "bad.aac"
    bad.write_bytes(bytes(d) * 24)  # about 6 MB: some 3 MB of error lines
    tracemalloc.start()
    try:
        try:
            load_audio(bad)
        except AudioError:
            pass
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5e6, peak  # (12.1 MB before; 2.4 MB of it now the decoded audio)


@needs_ffmpeg
def test_a_damaged_upload_read_from_a_private_copy_is_named_after_the_upload(tmp_path):
    """An upload decoded from a temporary copy (an M4A) named the server's copy
    (file:/tmp/emovox-.../input.m4a) in its error (a review of stop 47's retry)."""
    m4a = ffmpeg_encode(write_clip(tmp_path / "s.wav", voice(3.0)), tmp_path / "s.m4a",
                        "-c:a", "aac")
    data = m4a.read_bytes()
    with pytest.raises(AudioError) as err:
        load_audio(data[: len(data) // 3] + bytes(500), filename="memo.m4a")
    assert "emovox-" not in str(err.value) and "input.m4a" not in str(err.value), err.value


def test_a_cut_broadcast_wav_is_noted_though_its_data_starts_past_the_first_kib(tmp_path):
    """A broadcast WAV's iXML chunk put the data chunk past the first KiB, where the length
    check never looked: cut at half, it was answered on 5 s of 10 without a word (code
    review, stop 47)."""
    import struct

    w = write_clip(tmp_path / "take.wav", voice(10.0)).read_bytes()
    assert w[36:40] == b"data"
    riff = w[12:36] + b"iXML" + struct.pack("<I", 2048) + bytes(2048) + w[36:]
    bwf = b"RIFF" + struct.pack("<I", 4 + len(riff)) + b"WAVE" + riff
    a = load_audio(bwf[: len(bwf) // 2], filename="take.wav")
    assert any("holds 4.9" in n and "of the 10.00 s" in n for n in a.notes), a.notes


def test_an_au_file_cut_short_is_noted(tmp_path):
    """libsndfile shrinks a cut AU's frame count to what is there, so the decoder's own
    check never fired: answered on 5 s of 10 without a word (code review, stop 47)."""
    au = tmp_path / "take.au"
    sf.write(au, voice(10.0), SR, format="AU", subtype="PCM_16")
    assert load_audio(au).notes == ()
    cut = au.read_bytes()
    a = load_audio(cut[: len(cut) // 2], filename="take.au")
    assert any("holds 5.00 s of the 10.00 s" in n for n in a.notes), a.notes


@needs_ffmpeg
def test_a_quicktime_file_without_ftyp_decodes_from_bytes_as_from_its_path(tmp_path):
    """QuickTime needs no `ftyp` box: a .mov starting with `free` was unknown to the sniffer,
    piped to ffmpeg and refused uploaded as "partial file" while `emovox predict` read its
    path (a review of stop 47)."""
    mov = ffmpeg_encode(write_clip(tmp_path / "m.wav", np.tile(voice(3.0), 8)),
                        tmp_path / "m.mov", "-c:a", "aac")
    data = bytearray(mov.read_bytes())
    assert data[4:8] == b"ftyp"
    data[4:8] = b"free"  # the same offsets, the first box now skippable
    (tmp_path / "free.mov").write_bytes(bytes(data))
    assert audio.sniff_format(bytes(data[:32])) == "mp4"
    assert audio.sniff_format(b"\x00\x00\x00\x01mdat" + (1 << 20).to_bytes(8, "big")) == "mp4"
    from_path = load_audio(tmp_path / "free.mov")
    from_bytes = load_audio(bytes(data), filename="free.mov")
    assert abs(from_bytes.duration - 24.0) < 0.1
    np.testing.assert_array_equal(from_bytes.wave, from_path.wave)


@needs_ffmpeg
def test_no_message_names_an_uploads_copy_under_a_linked_temp_folder(tmp_path, monkeypatch):
    """ffmpeg is given a copy's resolved path: with TMPDIR a symbolic link (macOS's /var),
    the API's timeline error named /.../realtmp/emovox-upload-.../upload.m4a (a review of
    stop 47)."""
    import tempfile

    from emovox.serving.predictor import Predictor
    from emovox.serving.service import timeline_from_upload

    (tmp_path / "realtmp").mkdir()
    (tmp_path / "lnktmp").symlink_to(tmp_path / "realtmp")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "lnktmp"))
    m4a = ffmpeg_encode(write_clip(tmp_path / "s.wav", voice(3.0)), tmp_path / "s.m4a",
                        "-c:a", "aac")  # its index at the end: cut, "moov atom not found"
    cut = m4a.read_bytes()[: m4a.stat().st_size // 3]
    with pytest.raises(AudioError) as err:
        timeline_from_upload(Predictor.from_artifact("default"), cut, "memo.m4a")
    assert "realtmp" not in str(err.value) and "emovox-" not in str(err.value), err.value


def test_text_that_spells_a_quicktime_box_is_still_text(tmp_path):
    """"I'm free to go" holds `free` at bytes 4-8: with the QuickTime sniffing it was read
    as a damaged M4A instead of refused as text (a review of stop 47)."""
    from emovox.errors import NotAudio

    note = tmp_path / "note"
    note.write_text("I'm free to go home now, the wide world awaits.\n" * 4)
    for src in (note, note.read_bytes()):
        with pytest.raises(NotAudio, match="text file"):
            load_audio(src)


@needs_ffmpeg
def test_a_users_path_with_emovox_in_it_is_named_as_it_is(tmp_path):
    """The scrubbing of a private copy's path used the file name as a regular-expression
    template (`take\\q1.m4a`: re.error) and rewrote any path with an `emovox-` folder (a
    review of stop 47): only the copy under the temp folder is renamed now."""
    m4a = ffmpeg_encode(write_clip(tmp_path / "s.wav", voice(3.0)), tmp_path / "s.m4a",
                        "-c:a", "aac")
    folder = tmp_path / "emovox-clips"
    folder.mkdir()
    for name in ("take\\q1.m4a", "my take 1.m4a"):
        bad = folder / name
        bad.write_bytes(m4a.read_bytes()[: m4a.stat().st_size // 3])
        with pytest.raises(AudioError) as err:
            load_audio(bad)
        assert str(err.value).startswith(f"{bad}: ") and f"{name} {name}" not in str(err.value)


def test_a_little_endian_au_file_cut_short_is_noted(tmp_path):
    au = tmp_path / "take.au"
    sf.write(au, voice(2.0), SR, format="AU", subtype="PCM_16", endian="LITTLE")
    data = au.read_bytes()
    assert data[:4] == b"dns."
    a = load_audio(data[: len(data) // 2], filename="take.au")
    assert any("of the 2.00 s" in n for n in a.notes), a.notes
