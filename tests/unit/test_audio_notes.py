"""What a container says that the user should know (``emovox.audio.file_notes``): a file
with several audio tracks (only the first is read: QA stop 30, said since stop 31). Every
file is made with ffmpeg in ``tmp_path``; the tests skip without it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from emovox.audio import ffmpeg as ffm
from emovox.audio import file_notes, iter_blocks, load_audio
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
