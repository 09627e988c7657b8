"""``emovox listen``: a subprocess fed raw PCM on stdin prints one line per hop, the first
before the stream ends (fed in real time, faster), with the bundled model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import invoke, text

from emovox.labels import LABELS
from signals import SR, silence, voice

SRC = Path(__file__).resolve().parents[2] / "src"


def pcm(wave: np.ndarray) -> bytes:
    return (np.clip(wave, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def start_listen(*args: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "emovox.cli", "listen", "-", *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(SRC)})
    banner = proc.stderr.readline().decode()  # printed once the model is loaded
    assert "listening to stdin" in banner, banner + proc.stderr.read().decode()
    return proc


def test_a_20_s_stream_gives_one_line_per_hop_and_no_speech_in_the_gap():
    # voice 0-6 s, digital silence 6-12 s, voice 12-20 s
    stream = np.concatenate([voice(6.0), silence(6.0), voice(8.0, f0=220.0)])
    proc = start_listen("--json")
    out, err = proc.communicate(pcm(stream), timeout=120)
    assert proc.returncode == 0, err.decode()
    lines = [json.loads(line) for line in out.decode().splitlines()]
    assert [d["end"] for d in lines] == [float(k) for k in range(1, 21)]
    # the 2.56 s windows ending at 9..12 s lie inside the silence; all others hold voice
    quiet = [d["end"] for d in lines if d["status"] == "no_speech"]
    assert quiet == [9.0, 10.0, 11.0, 12.0]
    for d in lines:
        assert d["end"] - d["start"] == pytest.approx(min(2.56, d["end"]), abs=1e-3)
        if d["status"] in ("ok", "uncertain"):  # predict's statuses
            assert d["label"] in LABELS and d["label"] == max(d["probabilities"],
                                                                   key=d["probabilities"].get)
            assert (d["status"] == "uncertain") == (d["confidence"] < 0.5)
        else:
            assert d["status"] == "no_speech"
            assert d["label"] is None and d["probabilities"] is None


def feed(proc: subprocess.Popen, data: bytes, speed: float) -> tuple[list, dict, float]:
    """Write ``data`` to ``proc`` in 0.1 s chunks at ``speed`` x real time, reading its lines
    meanwhile: (arrival time, line) of each, when each hop's last sample was written, and
    when the last chunk was."""
    chunk = SR // 10 * 2  # bytes of 0.1 s
    arrivals: list[tuple[float, str]] = []

    def read_lines() -> None:
        for raw in proc.stdout:
            arrivals.append((time.perf_counter(), raw.decode()))

    reader = threading.Thread(target=read_lines)
    reader.start()
    hop_written: dict[int, float] = {}
    for k, i in enumerate(range(0, len(data), chunk), start=1):
        proc.stdin.write(data[i : i + chunk])
        proc.stdin.flush()
        if k % 10 == 0:
            hop_written[k // 10] = time.perf_counter()  # the hop's last sample is in
        time.sleep(0.1 / speed)
    ended = time.perf_counter()
    proc.stdin.close()
    reader.join(timeout=60)
    proc.wait(timeout=60)
    assert proc.returncode == 0, proc.stderr.read().decode()
    return arrivals, hop_written, ended


def check_real_time(arrivals: list, hop_written: dict, ended: float, seconds: int) -> None:
    assert [line.split()[0] for _, line in arrivals] == [f"{k}.0" for k in range(1, seconds + 1)]
    assert arrivals[0][0] < ended  # the first line came while the stream was still playing
    latency = [at - hop_written[k] for k, (at, _) in enumerate(arrivals[:-1], start=1)]
    print("LATENCY_S", [round(x, 3) for x in latency])
    assert max(latency) < 0.5, latency  # computing one window takes tens of ms


def test_lines_come_while_the_stream_is_still_playing():
    """5 s of voice at 4x real time: the first line (after 1 s of audio) arrives before the
    last chunk is written, and each line soon after its hop."""
    proc = start_listen()
    check_real_time(*feed(proc, pcm(voice(5.0)), speed=4.0), seconds=5)


def test_20_s_of_ravdess_speech_piped_in_real_time(shared_ravdess):
    """Real clips of one actor, concatenated to 20 s, at 10x real time: one line per hop, as
    it is played."""
    import soundfile as sf

    clips = sorted((shared_ravdess / "Audio_Speech_Actors_01-24" / "Actor_05").glob("*"))[:8]
    wave = np.concatenate([sf.read(c, dtype="float32")[0] for c in clips])[: 20 * SR]
    assert len(wave) == 20 * SR
    proc = start_listen()
    arrivals, hop_written, ended = feed(proc, pcm(wave), speed=10.0)
    check_real_time(arrivals, hop_written, ended, seconds=20)
    emotions = [line.split()[2] for _, line in arrivals if "no speech" not in line]
    assert len(emotions) >= 15 and set(emotions) <= set(LABELS)


def test_listen_bad_sources(monkeypatch):
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # as if not installed
    mic = invoke(["listen"])
    assert mic.exit_code == 2 and "pip install 'emovox[live]'" in text(mic)
    assert "Traceback" not in text(mic)
    file_arg = invoke(["listen", "clip.wav"])
    assert file_arg.exit_code == 2 and "emovox timeline clip.wav" in text(file_arg)
    hop = invoke(["listen", "-", "--hop", "5"], input=b"")
    assert hop.exit_code == 2 and "must not exceed window (2.56 s)" in text(hop)


def test_a_piped_file_or_an_empty_stream_is_said(tmp_path):
    """A FLAC or WAV file piped in got emotions on its bytes as samples, and an empty stream
    printed the banner alone (QA, stop 39)."""
    import io

    import soundfile as sf

    from emovox.serving.live import container_hint

    buf = io.BytesIO()
    sf.write(buf, voice(1.0), 48_000, format="WAV", subtype="PCM_16")
    assert container_hint(buf.getvalue()) == "a WAV file (48000 Hz, 1 channel, 16-bit)"
    flac = io.BytesIO()
    sf.write(flac, voice(1.0), SR, format="FLAC")
    assert container_hint(flac.getvalue()) == "a FLAC file"
    assert container_hint(pcm(voice(1.0))) is None
    assert container_hint(b"\xff\xfb" + pcm(voice(1.0))) is None  # a frame sync alone
    proc = start_listen()
    out, err = proc.communicate(flac.getvalue(), timeout=120)
    assert "starts like a FLAC file, not raw PCM" in err.decode() and "ffmpeg -i -" in err.decode()
    proc = start_listen()
    out, err = proc.communicate(b"", timeout=120)
    assert proc.returncode == 0 and out == b""
    assert "the input ended with no audio" in err.decode()
    proc = start_listen()  # 0.2 s: said how long (re-check, stop 39)
    out, err = proc.communicate(pcm(voice(0.2)), timeout=120)
    assert "ended after 0.20 s of audio, too short to judge" in err.decode()


def test_stereo_on_stdin_with_channels_and_a_quarter_second_hop():
    """A stereo stream read as mono doubled every time without a word, and a 0.25 s hop
    printed 0.2, 0.5, 0.8 (code review, stop 46). The warning is on stderr, with its level
    (listen sets up logging as predict does since stop 53)."""
    wave = voice(3.5)
    stereo = pcm(np.repeat(wave, 2))  # the same voice on both channels, interleaved
    mixed = invoke(["listen", "-", "--channels", "2", "--hop", "0.25"], input=stereo)
    assert mixed.exit_code == 0, text(mixed)
    times = [line.split()[0] for line in mixed.stdout.splitlines() if line.strip()]
    assert times == [f"{0.25 * k:.2f}" for k in range(1, 15)]
    assert "stereo" not in mixed.stderr  # mixed down: no warning
    as_mono = invoke(["listen", "-", "--hop", "0.5"], input=stereo)
    assert as_mono.exit_code == 0
    assert "WARNING  the input looks like 2 interleaved channels (stereo)" in as_mono.stderr
    assert as_mono.stdout.splitlines()[-1].split()[0] == "7.0"  # the doubled clock


def test_an_input_that_fails_to_read_is_named_as_itself(monkeypatch):
    """An EIO while reading stdin (a hung-up terminal, a failing disk) was reported as
    "cannot write the output" once an output that takes nothing was made exit 1 (a review
    of stop 47's fix): only errors of writing are the output's."""
    import errno

    from cli_helpers import invoke, text

    import emovox.serving.live as live

    def failing(*args, **kw):
        raise OSError(errno.EIO, "Input/output error")
        yield  # pragma: no cover

    monkeypatch.setattr(live, "iter_pcm", failing)
    res = invoke(["listen", "-"], input=b"\x00\x01" * 100)
    assert res.exit_code == 2, res.output
    assert "Input/output error" in text(res) and "cannot write the output" not in text(res)
