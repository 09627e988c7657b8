"""Bounds on what waits in a server (code review, stop 48): the REST API's queue for an upload
slot (its length and how long a request waits in it), the web app's process-wide analysis
slots, and the upload copies a killed server left in the temp folder."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time

import pytest

# ------------------------------------------------------------------------------ API queue


def _sent_json(sent: list) -> tuple[int, dict, dict]:
    head = sent[0]
    return (head["status"], {k.decode(): v.decode() for k, v in head["headers"]},
            json.loads(b"".join(m.get("body", b"") for m in sent[1:])))


def test_requests_waiting_for_an_upload_slot_are_bounded_in_number_and_time():
    """Requests waiting for an upload slot had no bound, in number or time (4,000 half-sent
    uploads waiting took 658 MiB): past ``max_waiting`` a 503 ``server_busy`` at once, its
    body unread; a request that waited ``wait_s`` gets the same 503; a freed slot is taken
    as before (none lost on the way)."""
    from emovox.api.middleware import MAX_WAITING, RETRY_AFTER_S, UploadSlots

    async def run() -> None:
        entered, release = asyncio.Event(), asyncio.Event()
        served: list[int] = []

        async def app(scope, receive, send):  # holds its slot until released
            entered.set()
            await release.wait()
            served.append(scope["n"])
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})

        read: list[int] = []

        def call(mw, n: int) -> tuple[list, asyncio.Task]:
            sent: list = []

            async def send(msg):
                sent.append(msg)

            async def receive():
                read.append(n)
                return {"type": "http.request", "body": b"", "more_body": False}

            scope = {"type": "http", "method": "POST", "path": "/v1/predict", "n": n,
                     "headers": [(b"content-length", b"1000")]}  # an upload: a body
            return sent, asyncio.ensure_future(mw(scope, receive, send))

        assert UploadSlots(app, slots=3, paths=("/v1/predict",)).max_waiting == MAX_WAITING
        mw = UploadSlots(app, slots=1, paths=("/v1/predict",), max_waiting=2, wait_s=3600)
        _, holder = call(mw, 0)
        await entered.wait()
        waiters = [call(mw, n) for n in (1, 2)]
        for _ in range(5):
            await asyncio.sleep(0)
        assert mw.waiting == 2 and not any(sent for sent, _ in waiters)
        extra, task = call(mw, 3)
        await task  # answered at once: the queue is full
        status, headers, body = _sent_json(extra)
        assert status == 503 and body["error"] == "server_busy"
        assert headers["retry-after"] == str(RETRY_AFTER_S) and headers["connection"] == "close"
        assert "2 requests are waiting" in body["detail"] and 3 not in read
        release.set()
        await asyncio.gather(holder, *(t for _, t in waiters))
        assert served == [0, 1, 2] and mw.waiting == 0

        entered.clear(), release.clear()  # a wait that runs out
        timed = UploadSlots(app, slots=1, paths=("/v1/predict",), wait_s=0.01)
        _, holder = call(timed, 0)
        await entered.wait()
        late, task = call(timed, 4)
        await task
        status, _, body = _sent_json(late)
        assert status == 503 and body["error"] == "server_busy"
        assert "none came free within 0.01 s" in body["detail"] and 4 not in read
        assert timed.waiting == 0
        release.set()
        await holder
        sent, task = call(timed, 5)  # the slot came back
        await task
        assert sent[0]["status"] == 200 and served[-1] == 5

    asyncio.run(run())


def test_serve_caps_the_connections_uvicorn_keeps_open(monkeypatch):
    """``emovox serve`` gave uvicorn no ``limit_concurrency``: every connection was kept,
    each with its buffers. It is the upload slots, those that may wait for one and room for
    GETs; an app without the setting is served without a limit, as before."""
    import socket

    import uvicorn

    from emovox.api.middleware import MAX_WAITING, OTHER_CONNECTIONS
    from emovox.api.server import create_app
    from emovox.cli import servers

    seen = []

    class Server:
        def __init__(self, config):
            seen.append(config)

        def run(self, sockets):
            return None

    class Predictor:
        model_id, labels, sr, meta = "fake", ("a",), 16000, {}

    monkeypatch.setattr(uvicorn, "Server", Server)
    for concurrency in (1, 3):
        api = create_app(predictor=Predictor(), max_concurrency=concurrency)
        with socket.socket() as sock:
            servers.run_server(api, sock, "warning")
        assert seen[-1].limit_concurrency == 2 * concurrency + MAX_WAITING + \
            OTHER_CONNECTIONS == api.state.emovox_max_connections
    with socket.socket() as sock:
        servers.run_server(object(), sock, "warning")
    assert seen[-1].limit_concurrency is None


# ------------------------------------------------------------------------------ web slots


def test_an_analysis_slot_is_refused_when_none_comes_free(monkeypatch):
    """The web app's sessions (threads of one process) analysed any number of clips at once
    (one 600 s clip: +349 MiB): a slot is held for each, and a session that cannot take one
    within the wait is told the server is busy; its work does not run."""
    from emovox.errors import EmovoxError
    from emovox.serving import capacity

    assert capacity.ANALYSIS_SLOTS is not None and 1 <= capacity.default_concurrency() <= 4
    monkeypatch.setattr(capacity, "ANALYSIS_SLOTS", threading.BoundedSemaphore(2))
    ran = []
    with capacity.analysis_slot(), capacity.analysis_slot():
        with pytest.raises(capacity.ServerBusy, match="busy.*try again"):
            with capacity.analysis_slot(wait_s=0):
                ran.append("third")
        assert issubclass(capacity.ServerBusy, EmovoxError)
    with capacity.analysis_slot(wait_s=0):  # both released
        ran.append("after")
    assert ran == ["after"]


# ------------------------------------------------------------------------------ upload copies


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_an_upload_copy_is_named_with_its_process(monkeypatch, tmp_path):
    """A copy's folder carries its process's PID, so a sweep can tell a killed server's from
    a running one's; the running process's own copy is not swept (unless ``own``)."""
    import tempfile

    from emovox.serving.uploads import SPOOL_BYTES, open_upload, sweep_uploads

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with open_upload(b"x" * (SPOOL_BYTES + 1), "clip.wav") as up:
        folder = up.source.parent
        assert folder.parent == tmp_path
        assert folder.name.startswith(f"emovox-upload-{os.getpid()}-")
        assert sweep_uploads() == [] and up.source.exists()
    assert list(tmp_path.iterdir()) == []


def test_the_sweep_removes_only_copies_of_processes_that_are_gone(tmp_path):
    """A server killed with SIGKILL left its ``emovox-upload-*`` folders in the temp folder
    for good. The sweep removes those of dead processes only: not a live process's, not a
    link of that name (nor what it points to), not a file, not another name."""
    from emovox.serving.uploads import sweep_uploads

    dead = _dead_pid()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale = tmp_path / f"emovox-upload-{dead}-ab_cd123"
        (stale / "sub").mkdir(parents=True)
        (stale / "sub" / "upload.wav").write_bytes(b"RIFF")
        target = tmp_path / "kept"
        target.mkdir()
        (target / "data").write_text("keep")
        keep = {
            "live": tmp_path / f"emovox-upload-{live.pid}-abcdefgh",
            "own": tmp_path / f"emovox-upload-{os.getpid()}-abcdefgh",
            "short": tmp_path / f"emovox-upload-{dead}-abc",
            "no pid": tmp_path / "emovox-upload-abcdefgh",
            "decoder": tmp_path / f"emovox-{dead}-abcdefgh",
            "pid 0": tmp_path / "emovox-upload-0-abcdefgh",
            "no such pid": tmp_path / f"emovox-upload-{10**30}-abcdefgh",
        }
        for p in keep.values():
            p.mkdir()
        link = tmp_path / f"emovox-upload-{dead}-linkedxx"
        link.symlink_to(target, target_is_directory=True)
        a_file = tmp_path / f"emovox-upload-{dead}-afile123"
        a_file.write_text("x")
        for p in [stale, *keep.values()]:  # made before locks (stop 48): judged by PID,
            os.utime(p, (time.time() - 120,) * 2)  # after a grace period

        assert sweep_uploads(tmp_path) == [stale]
        assert not stale.exists()
        assert all(p.is_dir() for p in keep.values())
        assert link.is_symlink() and (target / "data").read_text() == "keep"
        assert a_file.read_text() == "x"
        assert sweep_uploads(tmp_path, own=True) == [keep["own"]]  # a server that starts
        assert sweep_uploads(tmp_path / "missing") == []
    finally:
        live.kill()
        live.wait()


def test_the_sweep_trusts_a_copys_lock_over_its_pid(tmp_path):
    """Servers in other containers share the temp folder and their PIDs say nothing here:
    another server's copy was removed while it read it (diff review, stop 48). A copy holds
    an flock while it lives; a lockless one is left alone for a minute."""
    import fcntl

    from emovox.serving.uploads import open_upload, sweep_uploads

    with open_upload(b"x" * 10, "a.wav", spool_bytes=1) as up:  # this process's, held
        assert sweep_uploads(up.source.parent.parent, own=True) == []
        assert up.source.exists()
    dead = _dead_pid()
    held, free = (tmp_path / f"emovox-upload-{dead}-{k}" for k in ("heldheld", "freefree"))
    for p in (held, free):
        p.mkdir()
        (p / ".lock").write_text("")
    young = tmp_path / f"emovox-upload-{dead}-youngxxx"  # lockless, just made
    young.mkdir()
    fd = os.open(held / ".lock", os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # a live server elsewhere, whatever its PID
        assert sweep_uploads(tmp_path) == [free]
        assert held.is_dir() and young.is_dir()
    finally:
        os.close(fd)
