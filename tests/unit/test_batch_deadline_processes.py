"""The per-file deadline of `emovox batch` (emovox.serving.pool, stop 51), as a review of it
found it wanting: a timed-out worker's ffmpeg kept running, a stopped batch (Ctrl-Z,
SIGSTOP) turned a good file into an error row, and a deadline of 1e9 s crashed the batch.

As in test_batch_deadline.py the workers are forked, so a patch of the decoder made here
reaches them."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import sys
import time
import uuid
from pathlib import Path

import pytest

from emovox.serving import pool
from signals import voice, write_clip

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="process groups and /proc, as on the servers")

#: the start of an MPEG-4 audio file: the decoder sends it to ffmpeg
M4A_HEAD = b"\x00\x00\x00\x18ftypM4A \x00\x00\x02\x00M4A isom"


@pytest.fixture()
def forked(monkeypatch):
    """Worker processes by fork, so a patch made here reaches them."""
    monkeypatch.setattr(pool, "pool_context", lambda: mp.get_context("fork"))


def _rows(model, files, deadline, **kw):
    return list(pool.process_rows(files, artifact=model, backend="auto", max_duration=None,
                                  fmt="csv", deadline=deadline, **kw))


def _running(token: str) -> list[int]:
    """Pids of the live processes whose command line holds ``token`` (psutil if installed,
    else /proc; a zombie has no command line)."""
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        found = []
        for p in psutil.process_iter():
            try:
                if token in " ".join(p.cmdline()) and p.status() != psutil.STATUS_ZOMBIE:
                    found.append(p.pid)
            except (psutil.Error, OSError):
                continue
        return found
    found = []
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and token.encode() in (d / "cmdline").read_bytes():
                found.append(int(d.name))
        except OSError:
            continue
    return found


@linux_only
def test_a_timed_out_workers_ffmpeg_is_killed_with_it(tiny_model, tmp_path, monkeypatch,
                                                       forked, request):
    """ffmpeg hangs on a stuck mount, not the worker: the worker's deadline passes and it
    is killed, and so is the ffmpeg it started (its process group); two sleeping ffmpeg
    processes outlived the batch before."""
    token = f"600.{uuid.uuid4().int % 10**12:012d}"  # a sleep no other process does
    ran = tmp_path / "ffmpeg-ran"
    fake = tmp_path / "fake-ffmpeg"
    fake.write_text(f"#!/bin/sh\necho $$ >> '{ran}'\nexec sleep {token}\n")
    fake.chmod(0o755)
    monkeypatch.setenv("EMOVOX_FFMPEG", str(fake))
    monkeypatch.setenv("EMOVOX_FFPROBE", str(fake))
    clip = tmp_path / "talk.m4a"
    clip.write_bytes(M4A_HEAD + bytes(4000))

    def no_orphans() -> None:  # what the old code left, ended here (by pid)
        for pid in _running(token):
            os.kill(pid, signal.SIGKILL)

    request.addfinalizer(no_orphans)
    rows = _rows(tiny_model, [clip], 1.0, workers=1, chunk=1)
    assert [r["error"] for r in rows] == [pool.TIMEOUT_MESSAGE.format(s=1.0)]
    assert ran.is_file()  # the worker did wait on the fake ffmpeg
    for _ in range(30):  # SIGKILLed already; a moment for the kernel to end them
        if not _running(token):
            break
        time.sleep(0.1)
    assert _running(token) == []
    assert mp.active_children() == []


def test_a_worker_is_its_own_process_group_and_kill_spares_ours(tiny_model, tmp_path,
                                                                forked):
    """What _Pool.kill signals: each worker's own group (with whatever it started), never
    the group of the process running the batch (a killpg there would end the batch)."""
    p = pool._Pool(1, str(tiny_model), "auto")
    try:
        assert p.ex.submit(pool._ready).result(60) is None
        (worker,) = p.ex._processes.values()
        assert os.getpgid(worker.pid) == worker.pid != os.getpgrp()
    finally:
        p.kill()
    assert not worker.is_alive()  # and this process, in its own group, lives on


@linux_only
def test_a_stopped_batch_does_not_time_out_a_good_file(tiny_model, tmp_path, monkeypatch,
                                                       forked, request):
    """Ctrl-Z, `kill -STOP`, a frozen container: the batch and its worker stopped for
    longer than the deadline, mid-file, then continued. The file needs 0.5 s more and its
    deadline is 1.5 s: the time stopped is not counted, the file has its row (before: an
    error row, at once, as a file that hung)."""
    import emovox.audio

    real = emovox.audio.load_audio
    mark = tmp_path / "worker.pid"

    def load_audio(path, *a, **k):  # in the worker
        if Path(path).name == "pause.wav":
            mark.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGSTOP)  # stopped here until the test continues it
            time.sleep(0.5)
        return real(path, *a, **k)

    monkeypatch.setattr(emovox.audio, "load_audio", load_audio)
    monkeypatch.setattr(pool, "STOPPED_S", 0.5, raising=False)  # a stop: a slice 0.5 s over
    clip = write_clip(tmp_path / "pause.wav", voice(1.0))
    got = tmp_path / "errors.json"

    def batch() -> None:  # the batch, in a child process the test can stop
        rows = _rows(tiny_model, [clip], 1.5, workers=1, chunk=1)
        got.write_text(json.dumps([r["error"] for r in rows]))

    child = mp.get_context("fork").Process(target=batch)
    child.start()
    request.addfinalizer(lambda: child.is_alive() and child.kill())
    worker = None
    try:
        for _ in range(600):
            if mark.is_file() and mark.read_text():
                worker = int(mark.read_text())
                break
            time.sleep(0.01)
        assert worker is not None, "the worker never read pause.wav"
        os.kill(child.pid, signal.SIGSTOP)
        time.sleep(2.5)
    finally:
        os.kill(child.pid, signal.SIGCONT)
        if worker is not None:
            os.kill(worker, signal.SIGCONT)
    child.join(60)
    assert child.exitcode == 0
    assert json.loads(got.read_text()) == [""]


@pytest.mark.parametrize("seconds", [1e9, 1e300])
def test_a_huge_deadline_is_no_deadline_in_practice(tiny_model, tmp_path, forked, seconds):
    """12 files in one chunk at 1e9 s each waited 1.2e10 s at once: past
    threading.TIMEOUT_MAX, an OverflowError ended the batch."""
    files = [write_clip(tmp_path / f"c{i:02d}.wav", voice(0.3, f0=120.0 + 10 * i))
             for i in range(12)]
    rows = _rows(tiny_model, files, seconds, workers=1)
    assert [Path(r["path"]).name for r in rows] == [f.name for f in files]
    assert [r["error"] for r in rows] == [""] * 12
