"""The REST API's per-request deadline (review, stop 57): a request had no time limit, its
client waiting for as long as the queue for a slot and the analysis took. Now, past
``request_timeout`` (``emovox serve --request-timeout``, ``EMOVOX_REQUEST_TIMEOUT_S``): a
JSON 504 ``deadline_exceeded``; a request still queued never runs; an analysis past it keeps
its slot until it ends (never more than ``max_concurrency`` at once), its answer dropped.

No model: a stand-in predictor, and the analysis a monkeypatched function that blocks on a
:class:`threading.Event` (deadlines of a fraction of a second, nothing sleeps long)."""

from __future__ import annotations

import asyncio
import inspect
import re
import threading
import time
import warnings
from types import SimpleNamespace

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("multipart")
pytest.importorskip("httpx")

from emovox.errors import NotAudio  # noqa: E402
from emovox.serving.errcodes import ErrorCode  # noqa: E402

DEADLINE = 0.2
WAIT = 30.0  # a generous bound on what must happen at once (a busy machine)
PREDICTOR = SimpleNamespace(model_id="stand-in", labels=("neutral", "happy"))


class SlowWork:
    """``service.predict_upload`` (and ``timeline_from_upload``) as an analysis that blocks
    until :attr:`release` is set, then raises :class:`NotAudio` (its own answer, a 415: no
    model needed); counts the calls and the most running at once."""

    def __init__(self) -> None:
        self.entered, self.release, self.ended = (threading.Event(), threading.Event(),
                                                  threading.Event())
        self.calls, self.running, self.most = 0, 0, 0
        self._lock = threading.Lock()

    def __call__(self, *args: object, **kwargs: object) -> object:
        with self._lock:
            self.calls += 1
            self.running += 1
            self.most = max(self.most, self.running)
        self.entered.set()
        try:
            assert self.release.wait(WAIT)
            raise NotAudio("clip.wav: the stand-in analysis's own answer")
        finally:
            with self._lock:
                self.running -= 1
            self.ended.set()


@pytest.fixture
def slow(monkeypatch) -> SlowWork:
    from emovox.serving import service

    work = SlowWork()
    monkeypatch.setattr(service, "predict_upload", work)
    monkeypatch.setattr(service, "timeline_from_upload", work)
    yield work
    work.release.set()  # no thread left blocked


def _client(**kw):
    from emovox.api.server import create_app

    with warnings.catch_warnings():  # starlette's notice about httpx vs httpx2
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    return TestClient(create_app(predictor=PREDICTOR, max_bytes=100_000, max_duration=10.0,
                                 max_concurrency=1, **kw))


def _post(client, path: str = "/v1/predict"):
    return client.post(path, files={"file": ("clip.wav", b"RIFF" + bytes(60), "audio/wav")})


def _in_thread(fn) -> tuple[threading.Thread, list]:
    out: list = []
    t = threading.Thread(target=lambda: out.append(fn()))
    t.start()
    return t, out


def _until(condition, what: str) -> None:
    """Wait (briefly polling) for ``condition()``: what the server does on its own loop."""
    stop = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < stop, what
        time.sleep(0.01)


def _deadline_body(r, limit: float) -> dict:
    assert r.status_code == 504, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body) == {"error", "detail"} and body["error"] == "deadline_exceeded", body
    assert ErrorCode.DEADLINE_EXCEEDED.status == 504
    assert f"the request took longer than the server's limit of {limit:g} s" in body["detail"]
    assert "emovox serve --request-timeout" in body["detail"]
    return body


@pytest.mark.parametrize("path", ["/v1/predict", "/v1/timeline"])
def test_an_analysis_past_the_deadline_is_a_504_and_keeps_its_slot(slow, caplog, path):
    """Past the deadline while analysing: the JSON 504 at once; the analysis runs on and
    holds the only slot, so a second request waits for it and, its own deadline passing
    while queued, leaves without ever running; once the first ends, its answer is dropped
    (logged), the slot is free and the next request runs. Never two analyses at once;
    /health and /v1/model answer all along."""
    from emovox.serving import service

    caplog.set_level("WARNING", logger="emovox.api.server")
    card = {"model_id": "stand-in", "backend": "onnx", "labels": ["neutral"],
            "temperature": 1.0, "sr": 16000, "cross_validation": None,
            "model_card_markdown": None}
    with pytest.MonkeyPatch.context() as mp, _client(request_timeout=DEADLINE) as c:
        mp.setattr(service, "model_card", lambda _: dict(card))
        t0 = time.monotonic()
        body = _deadline_body(_post(c, path), DEADLINE)
        assert time.monotonic() - t0 < WAIT and slow.entered.is_set()
        assert "ran for" in body["detail"] and "abandoned" in body["detail"]
        assert not slow.ended.is_set() and slow.running == 1  # it goes on, in its slot
        assert c.get("/health").json()["status"] == "ok"  # never waits for a slot
        assert c.get("/v1/model").json()["model_id"] == "stand-in"

        queued = _deadline_body(_post(c, path), DEADLINE)  # the slot is still held
        assert "was not analysed" in queued["detail"] and "waited" in queued["detail"]
        assert slow.calls == 1  # the queued request never ran

        slow.release.set()
        _until(lambda: "ended after" in caplog.text, "the abandoned work's end is logged")
        r = _post(c, path)  # the slot is free again: the next request is analysed
        assert r.status_code == 415 and r.json()["error"] == "not_audio", r.text
    assert slow.calls == 2 and slow.most == 1
    assert "deadline of 0.2 s passed while it waited for a slot" in caplog.text
    assert "its answer is dropped and its slot is free" in caplog.text


def _start(slots: asyncio.Semaphore, work: SlowWork, timeout: float) -> asyncio.Future:
    """``work`` as a request of ``predict`` run in ``slots`` with the deadline ``timeout``."""
    from emovox.api.deadline import run_in_slot

    async def nothing() -> None:
        return None

    return asyncio.ensure_future(run_in_slot(slots, work, what="predict", timeout=timeout,
                                             before=nothing))


def test_a_request_behind_an_abandoned_analysis_waits_for_its_end():
    """The slot of an analysis past its deadline is given back when it ends, not at its
    504: a request with a longer deadline queued behind it starts only then."""
    from emovox.api.errors import ApiError

    first, second = SlowWork(), SlowWork()
    second.release.set()

    async def main() -> None:
        slots = asyncio.Semaphore(1)

        def run(work: SlowWork, timeout: float) -> asyncio.Future:
            return _start(slots, work, timeout)

        abandoned = run(first, DEADLINE)
        with pytest.raises(ApiError) as late:
            await abandoned
        assert late.value.status == 504 and first.running == 1
        waiting = run(second, 60.0)
        for _ in range(20):  # the waiter gets every chance to start: it must not
            await asyncio.sleep(0.01)
        assert not waiting.done() and second.calls == 0 and slots.locked()
        first.release.set()
        with pytest.raises(NotAudio):  # the work's own answer
            await asyncio.wait_for(waiting, WAIT)
        assert second.calls == 1 and not slots.locked()

    asyncio.run(main())
    assert first.most == 1 and second.most == 1


def test_a_stopping_server_does_not_call_the_abandoned_work_ended(caplog):
    """The loop of a stopping server cancels what is left, the abandoned work's wait
    included, while its thread still runs: the log says so, not that it ended."""
    from emovox.api.deadline import run_in_slot
    from emovox.api.errors import ApiError

    caplog.set_level("WARNING", logger="emovox.api.server")
    work = SlowWork()

    async def main() -> None:
        async def nothing() -> None:
            return None

        with pytest.raises(ApiError):
            await run_in_slot(asyncio.Semaphore(1), work, what="timeline", timeout=DEADLINE,
                              before=nothing)

    try:
        asyncio.run(main())  # returns with the work still blocked: its wait is cancelled
        assert work.running == 1  # the seconds: at least the deadline, more on a busy machine
        assert re.search(r"timeline: the server stopped \d+\.\d s into the work abandoned at "
                         r"its deadline \(its thread may still run\)", caplog.text), caplog.text
        assert "ended after" not in caplog.text
    finally:
        work.release.set()


@pytest.mark.parametrize("timeout", [0.0, 60.0])
def test_a_cancelled_request_keeps_its_slot_until_its_work_ends(caplog, timeout):
    """A request cancelled while its analysis runs (its task cancelled, as a stopping
    server's loop does) leaves the thread running and the slot held until it ends, with a
    deadline or without: with ``0`` (none) ``async with slots`` gave the slot back at once
    and the next request ran beside it, one more than ``max_concurrency`` (review, stop
    57)."""

    caplog.set_level("WARNING", logger="emovox.api.server")
    first, second = SlowWork(), SlowWork()
    second.release.set()

    async def main() -> None:
        slots = asyncio.Semaphore(1)

        def run(work: SlowWork) -> asyncio.Future:
            return _start(slots, work, timeout)

        cancelled = run(first)
        while not first.entered.is_set():  # its thread runs
            await asyncio.sleep(0.01)
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        assert first.running == 1 and slots.locked()
        waiting = run(second)
        for _ in range(20):  # the waiter gets every chance to start: it must not
            await asyncio.sleep(0.01)
        assert not waiting.done() and second.calls == 0 and slots.locked()
        first.release.set()
        with pytest.raises(NotAudio):  # the second's own answer, once the first ended
            await asyncio.wait_for(waiting, WAIT)
        assert second.calls == 1 and not slots.locked()

    try:
        asyncio.run(main())
    finally:
        first.release.set()
    assert first.most == 1 and second.most == 1 and first.ended.is_set()
    assert re.search(r"predict: the work of a cancelled request ended after \d+\.\d s with "
                     r"an error \(NotAudio: .*\); its answer is dropped and its slot is free",
                     caplog.text), caplog.text
    assert "abandoned at its deadline" not in caplog.text


def test_no_deadline_waits_for_the_analysis(slow):
    """``request_timeout=0``: no deadline; the request waits for the analysis (here
    longer than the 0.2 s that is a 504 above) and gets its answer."""
    with _client(request_timeout=0) as c:
        t, out = _in_thread(lambda: _post(c))
        assert slow.entered.wait(WAIT)
        time.sleep(2 * DEADLINE)  # well past what a deadline of 0.2 s would allow
        assert not out
        slow.release.set()
        t.join(WAIT)
    assert out[0].status_code == 415 and out[0].json()["error"] == "not_audio"


def test_the_default_and_bad_values():
    """The default has one home, :mod:`emovox.serving.params` (the command's option, the
    API and the error code's words each wrote 120: review, stop 57)."""
    from emovox.api import deadline, server
    from emovox.api.server import create_app
    from emovox.cli import servers
    from emovox.serving import params

    assert params.DEFAULT_REQUEST_TIMEOUT_S == 120.0
    option = inspect.signature(servers.serve).parameters["request_timeout"].default
    for default in (deadline.DEFAULT_REQUEST_TIMEOUT_S, option,
                    inspect.signature(create_app).parameters["request_timeout"].default,
                    inspect.signature(server._Service).parameters["request_timeout"].default):
        assert default is params.DEFAULT_REQUEST_TIMEOUT_S  # the same object, not a copy
    assert "120 s by default" in ErrorCode.DEADLINE_EXCEEDED.meaning
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="request_timeout finite and >= 0"):
            create_app(predictor=PREDICTOR, request_timeout=bad)


def test_the_504_is_in_the_openapi_errors_of_the_upload_routes_only():
    with _client() as c:
        spec = c.get("/openapi.json").json()
    for path in ("/v1/predict", "/v1/timeline"):
        said = spec["paths"][path]["post"]["responses"]["504"]["description"]
        assert "`deadline_exceeded`" in said and "--request-timeout" in said
    assert "504" not in spec["paths"]["/v1/model"]["get"]["responses"]
    assert "504" not in spec["paths"]["/health"]["get"]["responses"]


# ------------------------------------------------------------------ option and variable


def test_the_environment_variable(monkeypatch):
    from emovox.api import server
    from emovox.api.deadline import request_timeout_from_env

    assert request_timeout_from_env({}) == 120.0
    assert request_timeout_from_env({"EMOVOX_REQUEST_TIMEOUT_S": " "}) == 120.0
    assert request_timeout_from_env({"EMOVOX_REQUEST_TIMEOUT_S": "0"}) == 0.0
    assert request_timeout_from_env({"EMOVOX_REQUEST_TIMEOUT_S": "2.5"}) == 2.5
    seen = {}
    monkeypatch.setattr(server, "create_app", lambda *a, **kw: seen.update(kw))
    monkeypatch.setenv("EMOVOX_REQUEST_TIMEOUT_S", "30")
    server.create_app_from_env()
    assert seen["request_timeout"] == 30.0
    for raw, said in (("-1", "must be a finite number of seconds >= 0 (0: no deadline)"),
                      ("nan", "must be a finite number of seconds >= 0 (0: no deadline)"),
                      ("soon", "is not a number of seconds (0: no deadline)")):
        monkeypatch.setenv("EMOVOX_REQUEST_TIMEOUT_S", raw)
        with pytest.raises(SystemExit) as out:  # one line, not a traceback (uvicorn --factory)
            server.create_app_from_env()
        assert str(out.value) == f"emovox: EMOVOX_REQUEST_TIMEOUT_S={raw!r} {said}", out.value


def test_the_serve_option(monkeypatch):
    """``emovox serve --request-timeout S`` (or ``EMOVOX_REQUEST_TIMEOUT_S``) reaches the
    app; a negative or non-number value is a usage error (exit 2) in words."""
    from typer.testing import CliRunner

    from emovox.api import server
    from emovox.cli import app, servers
    from emovox.serving.predictor import Predictor

    seen: list[float] = []
    real = server.create_app

    def create_app(*a, **kw):
        seen.append(kw["request_timeout"])
        return real(*a, **kw)

    monkeypatch.setattr(server, "create_app", create_app)
    monkeypatch.setattr(Predictor, "from_artifact", classmethod(
        lambda cls, *a, **k: SimpleNamespace(model_id="stand-in", backend="onnx")))
    monkeypatch.setattr(servers, "run_server", lambda api, sock, level: sock.close())
    for args, env, expected in (([], {}, 120.0), (["--request-timeout", "7.5"], {}, 7.5),
                                (["--request-timeout", "0"], {}, 0.0),
                                ([], {"EMOVOX_REQUEST_TIMEOUT_S": "45"}, 45.0)):
        r = CliRunner().invoke(app, ["serve", "--port", "0", *args], env=env)
        assert r.exit_code == 0, r.output
        assert seen.pop() == expected, (args, env)
    for args, env, said in (
            (["--request-timeout", "-1"], {}, "--request-timeout=-1.0 must be a finite "
             "number of seconds >= 0 (0: no deadline)"),
            (["--request-timeout", "inf"], {}, "must be a finite number of seconds >= 0"),
            (["--request-timeout", "soon"], {}, "Input should be a valid number"),
            ([], {"EMOVOX_REQUEST_TIMEOUT_S": "-5"}, "must be a finite number of seconds")):
        r = CliRunner().invoke(app, ["serve", "--port", "0", *args], env=env)
        text = " ".join(r.output.replace("\u2502", " ").split())  # Rich's box, wrapped
        assert r.exit_code == 2 and said in text and "--request-timeout" in text, text
        assert "Traceback" not in r.output
    assert not seen
