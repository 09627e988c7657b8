"""REST API (emovox.api.server) with FastAPI's TestClient, a tiny model trained here, and
the load script bench/load_api.py against a real `emovox serve` on loopback."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from signals import clip_bytes, voice

pytest.importorskip("fastapi")
pytest.importorskip("multipart")
pytest.importorskip("httpx")

from emovox.labels import LABELS  # noqa: E402

SR = 16000
ROOT = Path(__file__).resolve().parents[2]
MAX_BYTES = 400_000
MAX_DURATION = 10.0


def encode(wave: np.ndarray, fmt: str, sr: int = SR) -> bytes:
    return clip_bytes(wave, sr, fmt)


@pytest.fixture(scope="module")
def wav3() -> bytes:
    return encode(voice(3.0), "WAV")


def _test_client(app):
    with warnings.catch_warnings():  # starlette's notice about httpx vs httpx2
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    return TestClient(app)


@pytest.fixture(scope="module")
def client(tiny_model):
    from emovox.api.server import create_app

    app = create_app(tiny_model, max_bytes=MAX_BYTES, max_duration=MAX_DURATION)
    with _test_client(app) as c:
        yield c


def _post(client, path: str, data: bytes, name: str = "clip.wav", **kw):
    return client.post(path, files={"file": (name, data, "application/octet-stream")}, **kw)


def _assert_error(r, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["error"] == code, body
    assert isinstance(body["detail"], str) and body["detail"]
    assert "Traceback" not in body["detail"]
    return body


# ------------------------------------------------------------------------------ success paths


def test_predict(client, wav3):
    r = _post(client, "/v1/predict", wav3, "voice.wav")
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["emotion"] in LABELS and d["model_id"].startswith("crnn-")
    assert list(d["probabilities"]) == list(LABELS)
    assert sum(d["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)
    assert d["confidence"] == pytest.approx(max(d["probabilities"].values()))
    level = "high" if d["confidence"] >= 0.7 else "medium" if d["confidence"] >= 0.5 else "low"
    assert d["confidence_level"] == level
    assert -1 <= d["arousal"] <= 1 and -1 <= d["valence"] <= 1
    assert d["derived"] == ["arousal", "valence"]
    assert d["duration"] == pytest.approx(3.0, abs=0.01)
    assert d["silent"] is False and d["filename"] == "voice.wav"


def test_predict_formats_agree(client, wav3, tmp_path):
    """flac/ogg/mp3 (and m4a when ffmpeg is there) decode; lossless ones agree with wav."""
    w = voice(3.0)
    ref = _post(client, "/v1/predict", wav3).json()["probabilities"]
    for fmt, ext in (("FLAC", "flac"), ("OGG", "ogg"), ("MP3", "mp3")):
        r = _post(client, "/v1/predict", encode(w, fmt), f"clip.{ext}")
        assert r.status_code == 200, (ext, r.text)
        if ext == "flac":
            assert r.json()["probabilities"] == pytest.approx(ref, abs=1e-4)
    if shutil.which("ffmpeg"):
        (tmp_path / "c.wav").write_bytes(wav3)
        subprocess.run(["ffmpeg", "-v", "error", "-i", str(tmp_path / "c.wav"), "-c:a", "aac",
                        str(tmp_path / "c.m4a")], capture_output=True, check=True)
        m4a = (tmp_path / "c.m4a").read_bytes()
        assert _post(client, "/v1/predict", m4a, "clip.m4a").status_code == 200


def test_timeline(client):
    r = _post(client, "/v1/timeline?window=2&hop=1", encode(voice(6.0), "WAV"), "long.wav")
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["filename"] == "long.wav" and d["window"] == 2 and d["hop"] == 1
    assert d["duration"] == pytest.approx(6.0, abs=0.01)
    starts = [s["start"] for s in d["segments"]]
    assert starts == pytest.approx([0, 1, 2, 3, 4])
    assert all(s["label"] in LABELS for s in d["segments"])
    assert d["summary"]["windows"] == 5 and d["summary"]["dominant"] in LABELS


def test_timeline_of_silence(client):
    d = _post(client, "/v1/timeline", encode(np.zeros(4 * SR, np.float32), "WAV")).json()
    assert {s["label"] for s in d["segments"]} == {"silence"}
    assert d["summary"]["dominant"] == "silence"


def test_model_card(client):
    r = client.get("/v1/model")
    assert r.status_code == 200
    d = r.json()
    assert d["model_id"].startswith("crnn-") and d["labels"] == list(LABELS)
    cv = d["cross_validation"]
    assert cv["protocol"] == "emobox" and cv["summary"]["ua"]["mean"] == 50.0
    assert len(cv["pooled"]["confusion"]) == 8 and set(cv["pooled"]["recall"]) == set(LABELS)
    assert "Speaker-independent cross-validation" in d["model_card_markdown"]
    assert d["limits"] == {"max_upload_bytes": MAX_BYTES, "max_duration_s": MAX_DURATION}


def test_health_docs_openapi(client):
    h = client.get("/health")
    assert h.status_code == 200
    assert h.json()["status"] == "ok" and h.json()["model_loaded"] is True
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert {"/v1/predict", "/v1/timeline", "/v1/model", "/health"} <= set(spec["paths"])
    assert "413" in spec["paths"]["/v1/predict"]["post"]["responses"]


# ------------------------------------------------------------------------------ error paths


def test_not_audio_is_415(client):
    body = _assert_error(_post(client, "/v1/predict", b"just some text\n" * 20, "notes.wav"),
                         415, "not_audio")
    assert "notes.wav" in body["detail"]
    rng = np.random.default_rng(1)
    r = _post(client, "/v1/predict", rng.bytes(5000), "x.mp3")  # named mp3: "damaged mp3"
    assert r.status_code == 415 and r.json()["error"] in ("not_audio", "unsupported_codec")
    _assert_error(_post(client, "/v1/timeline", b"<html></html>" * 50, "page.wav"),
                  415, "not_audio")


def test_empty_and_broken_are_422(client, wav3):
    _assert_error(_post(client, "/v1/predict", b"", "empty.wav"), 422, "bad_audio")
    header_only = wav3[:44]
    r = _post(client, "/v1/predict", header_only, "cut.wav")
    assert r.status_code in (415, 422), r.text
    assert r.json()["error"] in ("bad_audio", "unsupported_codec", "not_audio")


def test_too_long_is_422(client):
    long_flac = encode(voice(MAX_DURATION + 2), "FLAC")
    body = _assert_error(_post(client, "/v1/predict", long_flac, "long.flac"),
                         422, "audio_too_long")
    assert "long.flac" in body["detail"] and "10 s" in body["detail"]
    _assert_error(_post(client, "/v1/timeline", long_flac, "long.flac"), 422, "audio_too_long")


def test_too_large_is_413(client):
    big = b"RIFF" + b"\0" * (MAX_BYTES + 200_000)
    body = _assert_error(_post(client, "/v1/predict", big), 413, "upload_too_large")
    assert "limit" in body["detail"]
    # within the multipart slack of the body limit: rejected by the exact file-size check
    _assert_error(_post(client, "/v1/timeline", b"\0" * (MAX_BYTES + 10)), 413,
                  "upload_too_large")


def test_too_large_chunked_body_is_413(client):
    """No Content-Length: the limit is enforced while the body streams in."""
    boundary = "emovoxboundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"big.wav\"\r\nContent-Type: audio/wav\r\n\r\n").encode()
    sent = [0]

    def chunks():
        yield head
        for _ in range(40):  # 40 x 64 KiB = 2.6 MB, far above the limit
            sent[0] += 1
            yield b"\0" * 65536
        yield f"\r\n--{boundary}--\r\n".encode()

    r = client.post("/v1/predict", content=chunks(),
                    headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    _assert_error(r, 413, "upload_too_large")


def test_bad_requests_are_422(client, wav3):
    _assert_error(client.post("/v1/predict"), 422, "invalid_request")
    _assert_error(_post(client, "/v1/timeline?window=1&hop=2", wav3), 422, "invalid_request")
    _assert_error(_post(client, "/v1/timeline?window=0", wav3), 422, "invalid_request")
    _assert_error(client.get("/nowhere"), 404, "not_found")


def test_unexpected_error_is_500_without_details(tiny_model, wav3, monkeypatch):
    from emovox.api.server import create_app
    from emovox.serving.predictor import Predictor

    pred = Predictor.from_artifact(tiny_model)

    def boom(*a, **k):
        raise RuntimeError("secret internals /etc/shadow")

    monkeypatch.setattr(pred, "predict_file", boom)
    with _test_client(create_app(predictor=pred)) as c:
        body = _assert_error(_post(c, "/v1/predict", wav3), 500, "internal_error")
    assert "secret" not in body["detail"]


def test_no_model_is_503(tmp_path, wav3):
    from emovox.api.server import create_app

    with _test_client(create_app(tmp_path / "missing")) as c:
        h = c.get("/health")
        assert h.status_code == 503 and h.json()["status"] == "unavailable"
        assert "does not exist" in h.json()["detail"]
        _assert_error(_post(c, "/v1/predict", wav3), 503, "model_unavailable")
        _assert_error(c.get("/v1/model"), 503, "model_unavailable")


def test_error_details_never_leak_object_reprs(client):
    """libsndfile names the in-memory file by its repr (<_io.BytesIO object at 0x...>); the
    API says the upload's name instead."""
    rng = np.random.default_rng(3)
    for head, name in ((b"fLaC", "x.flac"), (b"RIFF\0\0\0\0WAVE", "x.wav"), (b"OggS", "x.ogg")):
        r = _post(client, "/v1/predict", head + rng.bytes(3000), name)
        assert r.status_code in (415, 422), r.text
        detail = r.json()["detail"]
        assert " at 0x" not in detail and "<_io" not in detail and name in detail


def test_timeline_params_validated_like_the_cli(client, wav3):
    for query, msg in (("window=1&hop=2", "hop (2 s) must not exceed window (1 s)"),
                       ("window=inf", "window must be a finite number"),
                       ("hop=nan", "hop must be a finite number"),
                       ("window=0.2", "window must be more than 0.25 s")):
        body = _assert_error(_post(client, f"/v1/timeline?{query}", wav3), 422,
                             "invalid_request")
        assert msg in body["detail"], query


def test_docs_are_served_locally(client):
    """/docs references only this server (no CDN), and its assets are here."""
    import re

    pytest.importorskip("swagger_ui_bundle")
    page = client.get("/docs")
    assert page.status_code == 200 and "swagger-ui" in page.text
    urls = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", page.text)
    assert urls and all(u.startswith("/") and not u.startswith("//") for u in urls), urls
    assert "http://" not in page.text and "https://" not in page.text
    for u in urls:
        if u.startswith("/docs-assets/"):
            r = client.get(u)
            assert r.status_code == 200 and len(r.content) > 500, u
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
    assert client.get("/redoc").status_code == 404  # ReDoc would load from a CDN


# ------------------------------------------------------------------------------ API key


def test_api_key(tiny_model, wav3):
    from emovox.api.server import create_app

    app = create_app(tiny_model, max_bytes=MAX_BYTES, api_key="s3cret-key")
    with _test_client(app) as c:
        body = _assert_error(_post(c, "/v1/predict", wav3), 401, "unauthorized")
        assert "X-API-Key" in body["detail"]
        _assert_error(_post(c, "/v1/predict", wav3, headers={"X-API-Key": "wrong"}), 401,
                      "unauthorized")
        _assert_error(c.get("/v1/model"), 401, "unauthorized")
        _assert_error(c.get("/v1/model", headers={"Authorization": "Bearer nope"}), 401,
                      "unauthorized")
        assert _post(c, "/v1/predict", wav3, headers={"X-API-Key": "s3cret-key"}
                     ).status_code == 200
        assert c.get("/v1/model", headers={"Authorization": "Bearer s3cret-key"}
                     ).status_code == 200
        assert c.get("/health").status_code == 200  # liveness stays open
        assert c.get("/docs").status_code == 200
        spec = c.get("/openapi.json").json()
        assert spec["components"]["securitySchemes"]["apiKey"]["name"] == "X-API-Key"
        assert spec["paths"]["/v1/predict"]["post"]["security"]


# ------------------------------------------------------------------------------ process hygiene


def test_model_loaded_once_and_concurrent_requests(tiny_model, wav3, monkeypatch):
    from emovox.api.server import create_app
    from emovox.serving.predictor import Predictor

    calls = []
    original = Predictor.from_artifact.__func__

    def counting(cls, *a, **k):
        calls.append(a)
        return original(cls, *a, **k)

    monkeypatch.setattr(Predictor, "from_artifact", classmethod(counting))
    app = create_app(tiny_model, max_concurrency=2)
    clips = [encode(voice(2.0 + 0.25 * i, f0=150 + 20 * i), "WAV") for i in range(4)]
    with _test_client(app) as c:
        expected = [_post(c, "/v1/predict", clip).json()["probabilities"] for clip in clips]
        results: dict[int, object] = {}

        def worker(i: int) -> None:
            r = _post(c, "/v1/predict", clips[i % 4], f"c{i}.wav")
            results[i] = (r.status_code, r.json())

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    assert len(calls) == 1
    assert len(results) == 12
    for i, (status, body) in results.items():
        assert status == 200
        assert body["probabilities"] == pytest.approx(expected[i % 4], abs=1e-6)


def test_health_answers_while_every_slot_is_busy(tiny_model, wav3, monkeypatch):
    """One slot, held by a request whose prediction blocks, and more requests waiting than
    the server has worker threads (40): /health still answers at once (waiting for a slot
    holds no thread), and no waiting request has started decoding."""
    from emovox.api.server import create_app
    from emovox.serving.predictor import Predictor

    pred = Predictor.from_artifact(tiny_model)
    real = pred.predict_file
    entered, release = threading.Event(), threading.Event()
    calls = []

    def blocking(src, **kw):
        calls.append(type(src).__name__)
        entered.set()
        assert release.wait(60)
        return real(src, **kw)

    monkeypatch.setattr(pred, "predict_file", blocking)
    app = create_app(predictor=pred, max_concurrency=1)
    N = 45
    with _test_client(app) as c:
        results = []
        threads = [threading.Thread(target=lambda: results.append(
            _post(c, "/v1/predict", wav3).status_code)) for _ in range(N)]
        for t in threads:
            t.start()
        assert entered.wait(30)
        import time

        time.sleep(1.0)  # let the others queue up for the slot
        t0 = time.perf_counter()
        h = c.get("/health")
        assert h.status_code == 200 and h.json()["status"] == "ok"
        assert time.perf_counter() - t0 < 5
        assert len(calls) == 1  # the slot is taken before anything is decoded
        release.set()
        for t in threads:
            t.join(120)
    assert results == [200] * N and len(calls) == N


def test_large_uploads_are_decoded_from_a_private_file(tiny_model, monkeypatch):
    """Past 1 MB the predictor gets a path (a private copy), never the whole upload in
    memory; small uploads are decoded from bytes."""
    from emovox.api.server import create_app
    from emovox.serving.predictor import Predictor

    pred = Predictor.from_artifact(tiny_model)
    real = pred.predict_file
    seen = []

    def spy(src, **kw):
        seen.append((type(src).__name__, oct(Path(src).stat().st_mode & 0o777)
                     if isinstance(src, Path) else None))
        return real(src, **kw)

    monkeypatch.setattr(pred, "predict_file", spy)
    big = encode(voice(40.0), "WAV")  # 1.28 MB of 16-bit PCM
    assert len(big) > 1024 * 1024
    with _test_client(create_app(predictor=pred, max_bytes=4_000_000, max_duration=60)) as c:
        assert _post(c, "/v1/predict", big).status_code == 200
        assert _post(c, "/v1/predict", encode(voice(2.0), "WAV")).status_code == 200
    assert seen[0][0].endswith("Path") and seen[0][1] == "0o600"
    assert seen[1] == ("bytes", None)


def test_uploads_stay_in_temp_and_are_deleted(tiny_model, monkeypatch, tmp_path):
    """Uploads (spooled to a file past 1 MB) and the timeline's copy live under the
    temporary directory only, and nothing is left behind."""
    import emovox.serving.service
    from emovox.api.server import create_app

    tmp = tmp_path / "tmp"
    work = tmp_path / "cwd"
    tmp.mkdir()
    work.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    monkeypatch.chdir(work)
    seen = []
    real = emovox.serving.service.build_timeline

    def spy(predictor, path, **kw):
        p = Path(path)
        seen.append((p, p.is_file(), tmp in p.parents))
        return real(predictor, path, **kw)

    monkeypatch.setattr(emovox.serving.service, "build_timeline", spy)
    stereo = np.stack([voice(9.0, 48000), voice(9.0, 48000, f0=200)], axis=1)
    buf = io.BytesIO()
    sf.write(buf, stereo, 48000, format="WAV", subtype="FLOAT")
    big = buf.getvalue()
    assert len(big) > 3_000_000
    with _test_client(create_app(tiny_model, max_bytes=8_000_000)) as c:
        assert _post(c, "/v1/timeline", big).status_code == 200
        assert _post(c, "/v1/predict", big).status_code == 200
    assert len(seen) == 1 and seen[0][1] and seen[0][2]
    assert not seen[0][0].exists()
    assert list(tmp.iterdir()) == [] and list(work.iterdir()) == []


# ------------------------------------------------------------------------------ CLI + bench


def test_serve_command(tiny_model, monkeypatch, tmp_path):
    import uvicorn
    from typer.testing import CliRunner

    from emovox.cli import app

    captured = {}
    monkeypatch.setattr(uvicorn, "run", lambda api, **kw: captured.update(api=api, **kw))
    r = CliRunner().invoke(app, ["serve", "--port", "8765", "--max-upload-mb", "2",
                                 "--max-duration", "30"], env={"EMOVOX_MODEL": str(tiny_model)})
    assert r.exit_code == 0, r.output
    assert captured["host"] == "127.0.0.1" and captured["port"] == 8765
    assert captured["api"].state.emovox_limits == {"max_bytes": 2 * 1024 * 1024,
                                                   "max_duration": 30.0}
    assert "WARNING" not in r.output
    bad = CliRunner().invoke(app, ["serve", "--model", str(tmp_path / "none")])
    assert bad.exit_code == 2 and "does not exist" in " ".join(bad.output.split())

    open_net = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0"],
                                  env={"EMOVOX_MODEL": str(tiny_model)})
    assert open_net.exit_code == 0, open_net.output
    assert "WARNING" in open_net.output and "WITHOUT an API key" in " ".join(
        open_net.output.split())
    keyed = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0"],
                               env={"EMOVOX_MODEL": str(tiny_model), "EMOVOX_API_KEY": "k"})
    assert keyed.exit_code == 0 and "WARNING" not in keyed.output
    with _test_client(captured["api"]) as c:
        assert c.get("/v1/model").status_code == 401
        assert c.get("/v1/model", headers={"X-API-Key": "k"}).status_code == 200


@pytest.mark.slow  # a real `emovox serve` on loopback under load
def test_bench_load_script(tiny_model):
    """bench/load_api.py starts `emovox serve` on loopback, loads it, stops it."""
    r = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "load_api.py"), "--model", str(tiny_model),
         "--clients", "8", "--requests", "24", "--json"],
        capture_output=True, text=True, timeout=180,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads(r.stdout)
    assert res["ok"] == 24 and res["errors"] == 0 and res["clients"] == 8
    assert res["latency_ms"]["p50"] <= res["latency_ms"]["p99"]
    assert res["throughput_rps"] > 0


