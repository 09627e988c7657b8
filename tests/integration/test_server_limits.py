"""Server-wide bounds (code review, stop 48) where they meet the product: the web app's
reference clips checked before any is read, its analyses refused with a message while every
process-wide slot is taken, and `emovox serve` / `emovox app` sweeping the upload copies a
killed server left."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from signals import clip_bytes, voice

SR = 16000


def wav(seconds: float, **kw) -> bytes:
    return clip_bytes(voice(seconds, **kw), SR, "WAV", "PCM_16")


def _app():
    from streamlit.testing.v1 import AppTest

    from emovox.web import APP_SCRIPT

    return AppTest.from_file(str(APP_SCRIPT), default_timeout=90)


def _no_traceback(at) -> None:
    assert len(at.exception) == 0, [e.value for e in at.exception]


def _reads_of(app_env) -> list[str]:
    """The names of the uploads whose bytes the app reads (``getvalue``)."""
    from streamlit.runtime.uploaded_file_manager import UploadedFile

    read: list[str] = []
    real = UploadedFile.getvalue

    def getvalue(self):
        read.append(self.name)
        return real(self)

    app_env.setattr(UploadedFile, "getvalue", getvalue)
    return read


def test_references_over_the_limits_are_refused_before_any_is_read(app_env):
    """The reference uploader takes any number of files; the 32-clip and size limits were
    checked only inside the adaptation, after every clip had been read and hashed (40 clips
    of 25 MB: 1 GB copied for a refusal). Now the count and the total size come first."""
    pytest.importorskip("streamlit")
    read = _reads_of(app_env)
    at = _app().run()
    refs = next(u for u in at.file_uploader if u.accept_multiple_files)
    refs.set_value([(f"r{i}.wav", b"RIFF" + bytes(60), "audio/wav") for i in range(33)])
    at.file_uploader[0].upload("voice.wav", wav(2.0, f0=210.0), "audio/wav")
    at.run()
    _no_traceback(at)
    msg = next(w.value for w in at.warning if w.value.startswith("Not adapted:"))
    assert "33 reference clips: at most 32" in msg
    assert read and not [n for n in read if n.startswith("r")]  # the clip only

    read.clear()  # three clips of 0.4 MB: each under the app's 1 MB, together over it
    big = [(f"big{i}.wav", wav(12.5, f0=150.0 + 40 * i), "audio/wav") for i in range(3)]
    refs = next(u for u in at.file_uploader if u.accept_multiple_files)
    refs.set_value(big)
    at.run()
    _no_traceback(at)
    msg = next(w.value for w in at.warning if w.value.startswith("Not adapted:"))
    assert "the 3 reference clips together are" in msg and "1 MB upload limit" in msg
    assert not [n for n in read if n.startswith("big")]


def test_an_analysis_waits_for_a_process_wide_slot_or_says_the_server_is_busy(app_env):
    """Nothing bounded how many sessions analysed at once (one 600 s clip: +349 MiB in
    ``service.analyse``). With every slot taken a session is told to try again, its clip
    not analysed; once a slot is free the same clip is."""
    pytest.importorskip("streamlit")
    from emovox.serving import capacity, service

    analysed = []
    real = service.analyse

    def analyse(*a, **k):
        analysed.append(a[2])
        return real(*a, **k)

    app_env.setattr(service, "analyse", analyse)
    slots = threading.BoundedSemaphore(1)
    app_env.setattr(capacity, "ANALYSIS_SLOTS", slots)
    app_env.setattr(capacity, "BUSY_WAIT_S", 0.01)
    at = _app().run()
    assert slots.acquire(timeout=1)  # another session's analysis
    try:
        at.file_uploader[0].upload("voice.wav", wav(2.0), "audio/wav")
        at.run()
    finally:
        slots.release()
    _no_traceback(at)
    assert "busy" in at.error[0].value and "try again" in at.error[0].value
    assert analysed == []
    at.run()  # the slot is free: the same clip is analysed
    _no_traceback(at)
    assert not at.error and analysed == ["voice.wav"]
    assert slots.acquire(timeout=0)  # and the slot was given back
    slots.release()


def _stale_copy(tmp_path):
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    stale = tmp_path / f"emovox-upload-{p.pid}-abcd1234"
    stale.mkdir()
    (stale / "upload.wav").write_bytes(b"RIFF")
    (stale / ".lock").write_text("")  # a copy's lock, no longer held
    return stale


def test_serve_and_app_sweep_the_upload_copies_of_killed_servers(tiny_model, monkeypatch,
                                                                  tmp_path):
    """A server killed with SIGKILL left its upload copies in the temp folder, and nothing
    removed them; `emovox serve` and `emovox app` now do as they start (the running
    process's own PID too: it has made none yet, and a restarted container's server often
    gets the PID of the one that was killed)."""
    import tempfile

    from typer.testing import CliRunner

    from emovox.cli import app, servers

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(servers, "run_server", lambda api, sock, level: sock.close())
    monkeypatch.setattr(os, "execve", lambda *a: (_ for _ in ()).throw(SystemExit(0)))
    env = {"EMOVOX_MODEL": str(tiny_model)}
    for command in (["serve", "--port", "0"], ["app"]):
        stale = _stale_copy(tmp_path)
        own = tmp_path / f"emovox-upload-{os.getpid()}-abcd1234"
        own.mkdir()
        (own / ".lock").write_text("")
        r = CliRunner().invoke(app, command, env=env)
        assert r.exit_code == 0, r.output
        assert not stale.exists() and not own.exists(), command
