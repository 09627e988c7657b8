"""The REST API review of stop 51 (an integrator's): the window cap of ``/v1/timeline``, CORS,
request ids, predict and timeline agreeing on odd input, and a raw body without a
Content-Type; then the review of those fixes: the cap's headroom for choppy speech, one
upload copy, the 500's log line, CORS refusals (FastAPI's TestClient on the tiny model)."""

from __future__ import annotations

import logging
import struct

import numpy as np
import pytest
from api_helpers import assert_error, make_test_client, post

from signals import clip_bytes, harmonic, voice

pytest.importorskip("fastapi")
pytest.importorskip("multipart")
pytest.importorskip("httpx")

SR = 16000
ORIGIN = "https://app.example.com"
KEY = "k" * 24


def _app(tiny_model, **kw):
    from emovox.api.server import create_app

    kw.setdefault("max_bytes", 4_000_000)
    kw.setdefault("max_duration", 60.0)
    return create_app(tiny_model, **kw)


@pytest.fixture(scope="module")
def capped(tiny_model):
    """A client of a server whose timelines may classify at most 40 windows."""
    with make_test_client(_app(tiny_model, max_windows=40)) as c:
        yield c


@pytest.fixture(scope="module")
def keyed(tiny_model):
    """A client of a keyed server that lets pages of ORIGIN call it."""
    with make_test_client(_app(tiny_model, api_key=KEY, cors_origins=[ORIGIN])) as c:
        yield c


@pytest.fixture(scope="module")
def plain(tiny_model):
    with make_test_client(_app(tiny_model)) as c:
        yield c


@pytest.fixture(scope="module")
def talk20() -> bytes:
    return clip_bytes(voice(20.0), SR, "WAV", "PCM_16")


# ------------------------------------------------------------------- 1. the timeline's cap


def test_a_timeline_over_the_window_cap_is_refused_from_its_header_before_decoding(
        capped, talk20, monkeypatch):
    """Nothing bounded the windows of one request: two ``hop=0.06`` timelines of a 590 s
    file (~10,000 windows each) held both compute slots for 228 s. 20 s at a 0.25 s hop is
    80 windows, over this server's 40: a 422 naming the smallest hop, before any decoding
    (the timeline is never started); at that hop it is answered."""
    from emovox.serving import service

    real = service.build_timeline
    started = []

    def spy(*a, **kw):
        started.append(1)
        return real(*a, **kw)

    monkeypatch.setattr(service, "build_timeline", spy)
    body = assert_error(post(capped, "/v1/timeline?hop=0.25", talk20, "talk.wav"), 422,
                        "invalid_request")
    assert body["detail"].startswith("talk.wav: hop=0.25 s over this 20.00 s recording makes "
                                     "up to 80 windows, more than the 40 one request may")
    assert "use hop >= 0.5 s for this recording" in body["detail"]
    assert started == []
    r = post(capped, "/v1/timeline?hop=0.5", talk20, "talk.wav")
    assert r.status_code == 200, r.text
    assert started == [1] and 30 <= r.json()["summary"]["n_windows"] <= 40
    # a window shorter than the hop it would need: both named
    body = assert_error(post(capped, "/v1/timeline?window=0.3&hop=0.3", talk20), 422,
                        "invalid_request")
    assert "use hop >= 0.5 s and a window of at least 0.5 s" in body["detail"]


def test_a_timeline_whose_header_states_no_duration_is_counted_while_decoding(
        capped, talk20, monkeypatch):
    """A stream's header may state no duration (or less than it holds): the windows handed
    to the model are counted, and the request is refused once they pass the cap."""
    import dataclasses

    import emovox.audio as audio

    real = audio.probe
    monkeypatch.setattr(audio, "probe", lambda *a, **kw: dataclasses.replace(
        real(*a, **kw), duration=None, frames=None))
    body = assert_error(post(capped, "/v1/timeline?hop=0.25", talk20, "talk.wav"), 422,
                        "invalid_request")
    assert "needed more than 40 windows" in body["detail"]
    assert "counted while it was decoded" in body["detail"]
    assert "Use a hop larger than 0.25 s" in body["detail"]
    assert post(capped, "/v1/timeline?hop=0.5", talk20).status_code == 200


def test_the_reviewed_stall_is_refused_at_once_by_a_default_server(tiny_model):
    """The review's request, on a server with the default limits: 590 s at ``hop=0.06``
    (9,834 windows; here of silence, which the old code answered 200 without classifying
    anything, so the test stays quick either way) is a 422 from the header."""
    import time

    flac = clip_bytes(np.zeros(590 * SR, np.float32), SR, "FLAC")
    with make_test_client(_app(tiny_model, max_duration=600.0)) as c:
        t0 = time.monotonic()
        body = assert_error(post(c, "/v1/timeline?window=3&hop=0.06", flac, "long.flac"),
                            422, "invalid_request")
        assert time.monotonic() - t0 < 5
        assert "9,834 windows, more than the 2,400" in body["detail"]
        assert "use hop >= 0.25 s" in body["detail"]


def test_the_default_cap_and_the_smallest_hop():
    """2400 windows: a 600 s recording at a 0.25 s hop; a server with a longer duration
    limit keeps the default hop for its longest recordings, however choppy their speech.
    The stalled request of the review (590 s at hop 0.06, about 10,000 windows) is refused
    with hop >= 0.25."""
    from emovox.serving import params as tp

    assert tp.MAX_API_WINDOWS == tp.api_window_cap(600.0) == 2400
    assert tp.api_window_cap(7200.0) >= tp.worst_window_count(7260.0, 1.5) > 2 * 4800
    assert tp.api_window_cap(600.0, 10) == 10
    stalled = tp.window_count_problem(590.0, tp.TimelineParams(3.0, 0.06), 2400)
    assert stalled and "makes up to 9,834 windows" in stalled and "hop >= 0.25 s" in stalled
    assert tp.window_count_problem(600.0, tp.TimelineParams(3.0, 0.25), 2400) is None
    assert tp.window_count_problem(600.0, tp.TimelineParams(), 2400) is None
    tp.TimelineParams(3.0, 0.06)  # the CLI's timeline is not capped


# ------------------------------------------------------------------------------- 2. CORS


def test_no_cors_headers_unless_origins_are_given(plain):
    r = plain.options("/v1/predict", headers={"Origin": ORIGIN,
                                              "Access-Control-Request-Method": "POST"})
    assert r.status_code == 405 and "access-control-allow-origin" not in r.headers
    r = plain.get("/health", headers={"Origin": ORIGIN})
    assert "access-control-allow-origin" not in r.headers


def test_a_preflight_is_answered_without_the_key_and_the_request_still_needs_it(keyed):
    """A browser's preflight was a 405, and a 401 on a keyed server (the key guard checked
    OPTIONS too): no front end could call the API."""
    r = keyed.options("/v1/predict", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-api-key, content-type, x-request-id"})
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == ORIGIN
    allowed = {h.strip().lower() for h in r.headers["access-control-allow-headers"].split(",")}
    assert {"x-api-key", "authorization", "content-type", "x-request-id"} <= allowed
    assert {"GET", "HEAD", "POST"} <= set(r.headers["access-control-allow-methods"].split(", "))
    assert r.headers["x-request-id"]
    r = keyed.get("/v1/model", headers={"Origin": ORIGIN})  # no key: still 401, readable
    assert_error(r, 401, "unauthorized")
    assert r.headers["access-control-allow-origin"] == ORIGIN
    r = keyed.get("/v1/model", headers={"Origin": ORIGIN, "X-API-Key": KEY})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == ORIGIN
    assert "x-request-id" in r.headers["access-control-expose-headers"].lower()
    other = keyed.options("/v1/predict", headers={"Origin": "https://evil.example",
                                                  "Access-Control-Request-Method": "POST"})
    assert other.status_code == 400 and "access-control-allow-origin" not in other.headers


def test_any_origin_allows_no_credentials(tiny_model):
    with make_test_client(_app(tiny_model, cors_origins=["*"])) as c:
        r = c.get("/health", headers={"Origin": "https://any.example"})
        assert r.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in r.headers


def test_cors_origins_are_checked(monkeypatch, tiny_model):
    from emovox.api.cors import cors_origins
    from emovox.errors import ConfigError

    assert cors_origins([" https://A.example.com/ , http://localhost:5173", ""]) == (
        "https://a.example.com", "http://localhost:5173")
    assert cors_origins(["https://a.example", "*"]) == ("*",) and cors_origins([]) == ()
    for bad in ("app.example.com", "https://a.example/path", "ftp://a.example", "https://a b"):
        with pytest.raises(ConfigError, match="is not an origin"):
            cors_origins([bad])
    from emovox.api.server import create_app_from_env

    monkeypatch.setenv("EMOVOX_MODEL", str(tiny_model))
    monkeypatch.setenv("EMOVOX_CORS_ORIGINS", f"{ORIGIN},http://localhost:3000")
    assert create_app_from_env().state.emovox_cors_origins == (ORIGIN,
                                                                "http://localhost:3000")
    monkeypatch.setenv("EMOVOX_CORS_ORIGINS", "localhost:3000")
    with pytest.raises(SystemExit, match="EMOVOX_CORS_ORIGINS: 'localhost:3000' is not"):
        create_app_from_env()


def test_serve_takes_cors_origins(tiny_model, monkeypatch):
    from typer.testing import CliRunner

    from emovox.cli import app, servers

    captured = {}

    def run_server(api, sock, log_level):
        captured["api"] = api
        sock.close()

    monkeypatch.setattr(servers, "run_server", run_server)
    env = {"EMOVOX_MODEL": str(tiny_model)}
    r = CliRunner().invoke(app, ["serve", "--port", "0", "--cors-origin", ORIGIN,
                                 "--cors-origin", "http://localhost:5173"], env=env)
    assert r.exit_code == 0, r.output
    assert captured.pop("api").state.emovox_cors_origins == (ORIGIN, "http://localhost:5173")
    r = CliRunner().invoke(app, ["serve", "--port", "0"],
                           env={**env, "EMOVOX_CORS_ORIGINS": f"{ORIGIN}, https://b.example"})
    assert r.exit_code == 0, r.output
    assert captured.pop("api").state.emovox_cors_origins == (ORIGIN, "https://b.example")
    r = CliRunner().invoke(app, ["serve", "--port", "0"], env=env)
    assert captured.pop("api").state.emovox_cors_origins == ()
    r = CliRunner().invoke(app, ["serve", "--port", "0", "--cors-origin", "example.com"],
                           env=env)
    assert r.exit_code == 2 and "is not an origin" in r.output and not captured


# -------------------------------------------------------------------------- 3. request ids


def test_every_answer_carries_a_request_id(keyed):
    r = keyed.get("/health")
    assert r.status_code == 200 and len(r.headers["x-request-id"]) == 32
    assert keyed.get("/health").headers["x-request-id"] != r.headers["x-request-id"]
    assert keyed.get("/health", headers={"X-Request-ID": "abc.DEF_1-2"}).headers[
        "x-request-id"] == "abc.DEF_1-2"
    for insane in ("a" * 65, "a b", "a;b", "<script>", ""):
        rid = keyed.get("/health", headers={"X-Request-ID": insane}).headers["x-request-id"]
        assert rid != insane and len(rid) == 32, insane
    # the middleware's own errors too: 401 (key), 413 (Content-Length), 422 (query pre-check)
    r = keyed.get("/v1/model", headers={"X-Request-ID": "r-401"})
    assert_error(r, 401, "unauthorized")
    assert r.headers["x-request-id"] == "r-401" and "r-401" not in r.text
    r = keyed.post("/v1/predict", content=b"x" * 100, headers={
        "X-API-Key": KEY, "Content-Length": str(10**9), "X-Request-ID": "r-413"})
    assert r.status_code == 413 and r.headers["x-request-id"] == "r-413"
    r = post(keyed, "/v1/timeline?hop=0", b"RIFF", headers={"X-API-Key": KEY,
                                                          "X-Request-ID": "r-422"})
    assert_error(r, 422, "invalid_request")
    assert r.headers["x-request-id"] == "r-422" and "r-422" not in r.text


def test_the_log_lines_of_a_request_carry_its_id(plain, caplog):
    """A warning logged while a request is handled (here in a worker thread: the decoder's
    note on a silent clip) ends with the request's id."""
    silent = clip_bytes(np.zeros(SR, np.float32), SR, "WAV")
    with caplog.at_level(logging.WARNING):
        r = post(plain, "/v1/predict", silent, "quiet.wav",
                 headers={"X-Request-ID": "trace-51"})
    assert r.status_code == 200 and r.headers["x-request-id"] == "trace-51"
    lines = [rec.getMessage() for rec in caplog.records if "quiet.wav" in rec.getMessage()]
    assert lines and all(line.endswith(" [request_id=trace-51]") for line in lines)
    assert all(rec.request_id == "trace-51" for rec in caplog.records
               if "quiet.wav" in rec.getMessage())
    logging.getLogger("emovox.test").warning("outside any request")
    assert caplog.records[-1].getMessage() == "outside any request"
    assert "trace-51" not in r.text


def test_an_unhandled_error_is_a_json_500_with_the_id():
    """An exception no handler answers (a bug) is answered with a JSON 500 carrying the id,
    and not raised on (it is logged, with the id, where it is caught)."""
    import asyncio

    from emovox.api.requestid import RequestId, UnhandledErrors

    async def broken(scope, receive, send):
        raise RuntimeError("bug")

    sent = []

    async def send(msg):
        sent.append(msg)

    scope = {"type": "http", "method": "GET", "path": "/x",
             "headers": [(b"x-request-id", b"bug-1")]}
    asyncio.run(RequestId(UnhandledErrors(broken))(scope, None, send))
    assert sent[0]["status"] == 500 and (b"x-request-id", b"bug-1") in sent[0]["headers"]
    assert b"internal_error" in sent[1]["body"] and b"bug-1" not in sent[1]["body"]


# ------------------------------------------------------- 4. predict and timeline agreeing


def _float_wav(wave: np.ndarray) -> bytes:
    return clip_bytes(wave.astype(np.float32), SR, "WAV", "FLOAT")


def test_a_float_wav_at_the_sample_bound_gets_the_same_answer_from_both(plain):
    """A float WAV peaking at exactly 1e6 (the decoder's bound) with an offset: predict took
    the offset off, went over 1e6 and answered 422 "the waveform has samples beyond
    +-1e+06" (no file named) where the timeline answered 200. Both answer now; over the
    bound both refuse it, naming the file."""
    w = voice(3.0).astype(np.float64)
    w = np.where(w < 0, 0.5 * w, w) / w.max() - 0.2  # lopsided, below an offset of -0.2
    w *= 1e6 / np.abs(w).max()  # the peak, exactly 1e6, on the side away from the offset
    assert w.max() == 1e6 and w.mean() < -1e5  # without the offset it is over 1e6
    at_bound = _float_wav(w)
    for path in ("/v1/predict", "/v1/timeline"):
        r = post(plain, path, at_bound, "peak.wav")
        assert r.status_code == 200, (path, r.text)
    over = _float_wav(w * 2)
    for path in ("/v1/predict", "/v1/timeline"):
        body = assert_error(post(plain, path, over, "over.wav"), 422, "bad_audio")
        assert body["detail"].startswith("over.wav: contains sample values beyond +-1e+06")


def test_a_wave_handed_over_directly_is_still_bounded():
    from emovox.errors import InvalidSamples
    from emovox.preprocess import Preprocess

    Preprocess().at_rate(np.full(100, 1.5e6, np.float32), SR)  # what a decoded file reaches
    with pytest.raises(InvalidSamples, match="beyond"):
        Preprocess().at_rate(np.full(100, 1e8, np.float32), SR)


def test_a_one_hertz_header_is_refused_for_its_rate_by_both(plain):
    """A WAV whose header says 1 Hz: predict named the rate, the timeline called it 59,259 s
    long (its duration was checked before its rate)."""
    b = bytearray(clip_bytes(voice(3.7), SR, "WAV", "PCM_16"))
    struct.pack_into("<II", b, 24, 1, 2)  # the rate and the bytes per second
    details = []
    for path in ("/v1/predict", "/v1/timeline"):
        details.append(assert_error(post(plain, path, bytes(b), "onehz.wav"), 422,
                                    "bad_audio")["detail"])
    assert details[0] == details[1] and "1000 to 192000 Hz" in details[0]


@pytest.mark.parametrize("wave", [np.full(3 * SR, 0.3, np.float32),
                                  np.array([0.3], np.float32)], ids=["dc", "one-sample"])
def test_the_timeline_warns_of_silence_as_predict_does(plain, wave):
    """A constant offset and a one-sample file are silence to predict (its warning names the cause)
    but not to the timeline, which measures the level before the offset comes off."""
    body = clip_bytes(wave, SR, "WAV")
    p = post(plain, "/v1/predict", body, "dc.wav").json()
    t = post(plain, "/v1/timeline", body, "dc.wav").json()
    assert any("every sample has the same value" in w for w in p["warnings"])
    assert t.get("warnings") == p["warnings"]


# ------------------------------------------------------------------ 5. a raw untyped body


def test_a_raw_body_without_a_content_type_is_a_415_as_with_one(plain):
    wav = clip_bytes(voice(1.0), SR, "WAV")
    typed = plain.post("/v1/predict", content=wav, headers={"Content-Type": "audio/wav"})
    untyped = plain.post("/v1/predict", content=wav, headers={"Content-Type": ""})
    a = assert_error(typed, 415, "unsupported_media_type")["detail"]
    b = assert_error(untyped, 415, "unsupported_media_type")["detail"]
    assert a.startswith("the request body is audio/wav: send the recording as a "
                        "multipart/form-data upload in the field 'file'")
    assert b.startswith("the request body has no Content-Type: send the recording as a "
                        "multipart/form-data upload in the field 'file'")
    assert a.split(": ", 1)[1] == b.split(": ", 1)[1]
    empty = plain.post("/v1/timeline", headers={"Content-Type": ""})  # no body at all
    assert "file: Field required" in assert_error(empty, 422, "invalid_request")["detail"]


# ======================================== the review of these fixes (stop 51): window cap,
# one upload copy, the 500's log line, CORS refusals, default ports, no credentials
# ------------------------------------------------------------- fixes 1. the window cap


def _choppy(seconds: float, burst: float = 0.3, pause: float = 0.55) -> np.ndarray:
    """Voiced bursts of ``burst`` s every ``burst + pause`` s: each pause is longer than the
    timeline bridges, so each burst is a speech region of its own, one window each."""
    tone = harmonic(150.0, seconds, SR, vibrato=0.1, glide=0.2, n_harmonics=8)
    t = np.arange(len(tone)) / SR
    return (tone * ((t % (burst + pause)) < burst)).astype(np.float32)


@pytest.fixture(scope="module")
def choppy60() -> bytes:
    return clip_bytes(_choppy(59.5), SR, "WAV", "PCM_16")


def test_choppy_speech_at_the_default_hop_is_not_refused(tiny_model, choppy60, monkeypatch):
    """The cap assumed one window per 1.5 s, and the timeline classifies at least one per
    speech region: 59.5 s of 0.3 s bursts is 70 windows. With the cap's floor out of the
    way (the cap of a server whose limit is over 3,600 s was duration / 1.5), a 60 s server
    refused it at the default hop, asking for "hop >= 1.49 s" (review, stop 51)."""
    from emovox.serving import params as tp

    monkeypatch.setattr(tp, "MAX_API_WINDOWS", 1)
    with make_test_client(_app(tiny_model, max_duration=60.0)) as c:
        r = post(c, "/v1/timeline", choppy60, "choppy.wav")
    assert r.status_code == 200, r.text
    assert r.json()["summary"]["n_windows"] > tp.window_count(59.5, tp.TIMELINE_HOP_S)


def test_a_refusal_while_decoding_asks_for_a_larger_hop(capped, choppy60):
    """Refused once the windows passed the cap, it asked for "hop >= 1.49 s" at the 1.5 s
    hop sent, and said the header stated no duration, which it did."""
    body = assert_error(post(capped, "/v1/timeline", choppy60, "choppy.wav"), 422,
                        "invalid_request")
    detail = body["detail"]
    assert detail.startswith("choppy.wav: at hop=1.5 s this recording needed more than 40 "
                             "windows"), detail
    assert "Use a hop larger than 1.5 s" in detail and "hop >=" not in detail
    assert "states no duration" not in detail and "each stretch of speech" in detail


def test_an_estimate_past_the_limit_is_counted_at_the_limit(tiny_model, monkeypatch):
    """An MP3's estimated duration may run 0.5 s + 2 % past the limit and still be read:
    under a 7,200 s limit, one estimated at 7,250 s was refused at the default hop, its
    windows counted on 7,250 s."""
    import dataclasses

    import emovox.audio as audio

    real = audio.probe
    monkeypatch.setattr(audio, "probe", lambda *a, **kw: dataclasses.replace(
        real(*a, **kw), duration=7250.0, frames=None, exact=False))
    clip = clip_bytes(voice(4.0), SR, "WAV")
    with make_test_client(_app(tiny_model, max_duration=7200.0)) as c:
        assert post(c, "/v1/timeline", clip, "long.mp3").status_code == 200
        body = assert_error(post(c, "/v1/timeline?hop=0.25", clip, "long.mp3"), 422,
                            "invalid_request")
    assert "over this 7200.00 s recording makes up to 28,800 windows" in body["detail"]


def test_a_timeline_copies_its_upload_once(plain, capped, monkeypatch):
    """The window check read the header from a copy of its own (an upload over 1 MiB), and
    the timeline copied it again: two copies of every upload."""
    import shutil

    from emovox.serving import uploads

    copies = []

    class Counting:
        def __getattr__(self, name):
            return getattr(shutil, name)

        @staticmethod
        def copyfileobj(src, dst, *a, **kw):
            copies.append(1)
            return shutil.copyfileobj(src, dst, *a, **kw)

    monkeypatch.setattr(uploads, "shutil", Counting())
    big = clip_bytes(voice(40.0), SR, "WAV", "PCM_16")
    assert len(big) > uploads.SPOOL_BYTES
    r = post(plain, "/v1/timeline", big, "big.wav")
    assert r.status_code == 200, r.text
    assert copies == [1]
    copies.clear()
    body = assert_error(post(capped, "/v1/timeline?hop=0.25", big, "big.wav"), 422,
                        "invalid_request")  # refused from its header: one copy too
    assert "makes up to 160 windows" in body["detail"]
    assert copies == [1]


# ------------------------------------------------------------- 2. unhandled errors and CORS


def test_an_unhandled_error_is_logged_with_its_id_and_readable_by_the_page(tiny_model,
                                                                            caplog):
    """uvicorn logged the traceback after the id was reset, so its line had none; the JSON
    500 was answered outside the CORS layer, so a page could not read it."""
    app = _app(tiny_model, cors_origins=[ORIGIN])

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    with make_test_client(app) as c, caplog.at_level(logging.ERROR):
        r = c.get("/boom", headers={"Origin": ORIGIN, "X-Request-ID": "boom-1"})
    assert_error(r, 500, "internal_error")
    assert r.headers["x-request-id"] == "boom-1"
    assert r.headers["access-control-allow-origin"] == ORIGIN
    logged = [rec for rec in caplog.records if rec.exc_info]
    assert len(logged) == 1 and logged[0].getMessage().endswith(" [request_id=boom-1]")
    assert "GET /boom" in logged[0].getMessage() and "a bug" in str(logged[0].exc_info[1])


def test_a_refused_preflight_is_a_json_error(keyed):
    """Starlette refused a preflight with a text/plain 400 ("Disallowed CORS origin")."""
    asks = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    cases = [({**asks, "Origin": "https://evil.example"}, "origin is not one"),
             ({**asks, "Access-Control-Request-Method": "DELETE"}, "method is not one of"),
             ({**asks, "Access-Control-Request-Headers": "x-secret"}, "header is not one of")]
    for headers, words in cases:
        r = keyed.options("/v1/predict", headers=headers)
        body = assert_error(r, 400, "cors_refused")
        assert words in body["detail"], body
        assert r.headers["x-request-id"]
    r = keyed.options("/v1/predict", headers={**asks, "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers


def test_no_origin_is_allowed_credentials(keyed):
    """The API needs no cookies: credentials were allowed to every listed origin."""
    r = keyed.options("/v1/predict", headers={"Origin": ORIGIN,
                                              "Access-Control-Request-Method": "POST"})
    assert r.status_code == 200 and "access-control-allow-credentials" not in r.headers
    r = keyed.get("/v1/model", headers={"Origin": ORIGIN, "X-API-Key": KEY})
    assert r.headers["access-control-allow-origin"] == ORIGIN
    assert "access-control-allow-credentials" not in r.headers


def test_an_origin_with_its_default_port_matches_the_browsers(tiny_model):
    """``https://a.example:443`` was accepted, and never matched the ``https://a.example``
    a browser sends."""
    from emovox.api.cors import cors_origins
    from emovox.errors import ConfigError

    assert cors_origins(["https://A.example:443/", "http://x:80", "http://[::1]:80",
                         "http://x:8080", "https://b.example:0443", "http://c:443"]) == (
        "https://a.example", "http://x", "http://[::1]", "http://x:8080", "https://b.example",
        "http://c:443")
    for bad in ("http://x:0", "http://x:65536", "http://x:99999"):
        with pytest.raises(ConfigError, match="is not an origin"):
            cors_origins([bad])
    with make_test_client(_app(tiny_model, cors_origins=["https://app.example.com:443"])) as c:
        r = c.get("/health", headers={"Origin": ORIGIN})
    assert r.headers["access-control-allow-origin"] == ORIGIN
