"""The review of stop 51's API fixes (FastAPI's TestClient on the tiny model): the window cap
refused default-hop timelines of choppy speech and estimated durations past the limit, and
asked for a smaller hop than the one sent; the window check copied every upload a second
time; an unhandled error's log line had no request id and its 500 no CORS headers; CORS
refusals were text/plain, an origin with its default port never matched, and listed origins
were allowed credentials."""

from __future__ import annotations

import logging

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


# ------------------------------------------------------------------------ 1. the window cap


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
