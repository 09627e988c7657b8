"""REST API process behaviour: the API key, one model load and concurrent requests, busy
slots, upload files, `emovox serve` and the load script bench/load_api.py against a real
`emovox serve` on loopback."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from api_helpers import MAX_BYTES, ROOT, assert_error, encode, make_test_client, post

from signals import voice

pytest.importorskip("fastapi")
pytest.importorskip("multipart")
pytest.importorskip("httpx")


# ------------------------------------------------------------------------------ API key


def test_api_key(tiny_model, wav3):
    from emovox.api.server import create_app

    app = create_app(tiny_model, max_bytes=MAX_BYTES, api_key="s3cret-key")
    with make_test_client(app) as c:
        body = assert_error(post(c, "/v1/predict", wav3), 401, "unauthorized")
        assert "X-API-Key" in body["detail"]
        assert_error(post(c, "/v1/predict", wav3, headers={"X-API-Key": "wrong"}), 401,
                      "unauthorized")
        assert_error(c.get("/v1/model"), 401, "unauthorized")
        assert_error(c.get("/v1/model", headers={"Authorization": "Bearer nope"}), 401,
                      "unauthorized")
        assert post(c, "/v1/predict", wav3, headers={"X-API-Key": "s3cret-key"}
                     ).status_code == 200
        assert c.get("/v1/model", headers={"Authorization": "Bearer s3cret-key"}
                     ).status_code == 200
        assert c.get("/health").status_code == 200  # liveness stays open
        assert c.get("/docs").status_code == 200
        spec = c.get("/openapi.json").json()
        assert spec["components"]["securitySchemes"]["apiKey"]["name"] == "X-API-Key"
        assert spec["paths"]["/v1/predict"]["post"]["security"]


def test_health_keeps_server_paths_behind_the_key(tmp_path):
    """/health is open without the key; it said "no model: /srv/.../weights.safetensors: is
    missing" to anyone (security QA, stop 31). With a key it says the model failed, no more;
    the keyed routes keep the detail."""
    from emovox.api.server import create_app

    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "model.json").write_text("{}")
    for key in (None, "s3cret-key"):
        app = create_app(tmp_path / "broken", max_bytes=MAX_BYTES, api_key=key)
        with make_test_client(app) as c:
            r = c.get("/health")
            assert r.status_code == 503 and r.json()["model_loaded"] is False
            assert (str(tmp_path) in r.json()["detail"]) is (key is None), r.json()
            if key:
                d = c.get("/v1/model", headers={"X-API-Key": key}).json()["detail"]
                assert str(tmp_path) in d


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
    with make_test_client(app) as c:
        expected = [post(c, "/v1/predict", clip).json()["probabilities"] for clip in clips]
        results: dict[int, object] = {}

        def worker(i: int) -> None:
            r = post(c, "/v1/predict", clips[i % 4], f"c{i}.wav")
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
    with make_test_client(app) as c:
        results = []
        threads = [threading.Thread(target=lambda: results.append(
            post(c, "/v1/predict", wav3).status_code)) for _ in range(N)]
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
    with make_test_client(create_app(predictor=pred, max_bytes=4_000_000, max_duration=60)) as c:
        assert post(c, "/v1/predict", big).status_code == 200
        assert post(c, "/v1/predict", encode(voice(2.0), "WAV")).status_code == 200
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
    with make_test_client(create_app(tiny_model, max_bytes=8_000_000)) as c:
        assert post(c, "/v1/timeline", big).status_code == 200
        assert post(c, "/v1/predict", big).status_code == 200
    assert len(seen) == 1 and seen[0][1] and seen[0][2]
    assert not seen[0][0].exists()
    assert list(tmp.iterdir()) == [] and list(work.iterdir()) == []


# ------------------------------------------------------------------------------ CLI + bench


def test_serve_command(tiny_model, monkeypatch, tmp_path):
    import socket

    from typer.testing import CliRunner

    from emovox.cli import app, servers

    captured = {}

    def run_server(api, sock, log_level):
        captured.update(api=api, host=sock.getsockname()[0], port=sock.getsockname()[1],
                        log_level=log_level)
        sock.close()

    monkeypatch.setattr(servers, "run_server", run_server)

    with socket.socket() as held:  # a port in use: a usage error naming it (uvicorn: exit 3)
        held.bind(("127.0.0.1", 0))
        held.listen()
        busy = held.getsockname()[1]
        r = CliRunner().invoke(app, ["serve", "--port", str(busy)],
                               env={"EMOVOX_MODEL": str(tiny_model)})
        assert r.exit_code == 2 and "Address already in use" in " ".join(r.output.split())
        assert not captured
    # --port 0: the banner names the port the system picked, the server listens on it
    r = CliRunner().invoke(app, ["serve", "--port", "0", "--max-upload-mb", "2",
                                 "--max-duration", "30"], env={"EMOVOX_MODEL": str(tiny_model)})
    assert r.exit_code == 0, r.output
    assert captured["host"] == "127.0.0.1" and captured["port"] > 0
    assert f"docs at http://127.0.0.1:{captured['port']}/docs (Ctrl-C to stop)" in r.output
    assert captured["api"].state.emovox_limits == {"max_bytes": 2 * 1024 * 1024,
                                                   "max_duration": 30.0}
    assert "WARNING" not in r.output
    bad = CliRunner().invoke(app, ["serve", "--model", str(tmp_path / "none")])
    assert bad.exit_code == 2 and "does not exist" in " ".join(bad.output.split())
    assert captured["log_level"] == "info"
    v4 = CliRunner().invoke(app, ["serve", "--host", "[127.0.0.1]"],  # brackets: IPv6 only
                            env={"EMOVOX_MODEL": str(tiny_model)})
    assert v4.exit_code == 2 and "cannot listen on [127.0.0.1]" in v4.output
    for args, said in ((["--port", "70000"], "Invalid value"), (["--port", "-1"], "Invalid value"),
                       (["--log-level", "bogus"], "--log-level must be one of:")):
        usage = CliRunner().invoke(app, ["serve", *args], env={"EMOVOX_MODEL": str(tiny_model)})
        assert usage.exit_code == 2 and said in usage.output, args
        assert "Traceback" not in usage.output
    for port in ("70000", "-1", "0"):  # the web app's port too (streamlit tracebacked)
        usage = CliRunner().invoke(app, ["app", "--port", port])
        assert usage.exit_code == 2 and "Invalid value" in usage.output, port
    # limits: inf was a traceback (exit 1), nan "should be >= 0.001" (API QA, stop 35)
    for env in ({"EMOVOX_MAX_UPLOAD_MB": "inf"}, {"EMOVOX_MAX_UPLOAD_MB": "1e400"},
                {"EMOVOX_MAX_DURATION_S": "nan"}, {"EMOVOX_MAX_UPLOAD_MB": "0"}):
        for command in ("serve", "app"):
            usage = CliRunner().invoke(app, [command], env={"EMOVOX_MODEL": str(tiny_model),
                                                            **env})
            said = " ".join(usage.output.split())
            assert usage.exit_code == 2 and "must be a finite number > 0" in said, (env, said)
            assert "Traceback" not in usage.output
    tiny = CliRunner().invoke(app, ["serve", "--max-upload-mb", "1e-9"],
                              env={"EMOVOX_MODEL": str(tiny_model)})  # a 0-byte limit
    assert tiny.exit_code == 2 and "must be at least 0.001 (MB)" in tiny.output
    blank = CliRunner().invoke(app, ["serve"], env={"EMOVOX_MODEL": str(tiny_model),
                                                    "EMOVOX_API_KEY": "  "})
    assert blank.exit_code == 2 and "is blank (only whitespace)" in blank.output
    empty = CliRunner().invoke(app, ["serve"], env={"EMOVOX_MODEL": str(tiny_model),
                                                    "EMOVOX_API_KEY": ""})  # served keyless
    assert empty.exit_code == 2 and "(EMOVOX_API_KEY) is empty" in empty.output, empty.output

    open_net = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0"],
                                  env={"EMOVOX_MODEL": str(tiny_model)})
    assert open_net.exit_code == 0, open_net.output
    assert "WARNING" in open_net.output and "WITHOUT an API key" in " ".join(
        open_net.output.split())
    keyed = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0"],
                               env={"EMOVOX_MODEL": str(tiny_model), "EMOVOX_API_KEY": "k"})
    assert keyed.exit_code == 0 and "WARNING" not in keyed.output
    with make_test_client(captured["api"]) as c:
        assert c.get("/v1/model").status_code == 401
        assert c.get("/v1/model", headers={"X-API-Key": "k"}).status_code == 200
    try:  # an IPv6 host in a URL one can open (it printed http://::1:PORT/docs)
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return  # no IPv6 loopback on this machine
    six = CliRunner().invoke(app, ["serve", "--host", "::1", "--port", "0"],
                             env={"EMOVOX_MODEL": str(tiny_model)})
    assert six.exit_code == 0 and f"docs at http://[::1]:{captured['port']}/docs" in six.output


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


@pytest.mark.slow
@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_a_stopped_server_answers_a_stalled_upload_503_and_exits_0(sig):
    """``emovox serve`` stopped by SIGTERM (what a service manager or container runtime
    sends) as by Ctrl-C: the open upload gets the JSON 503 ``shutting_down`` once the grace
    period (shortened here to 0.5 s) is over, and the server exits 0. Under SIGTERM the
    process died at once after uvicorn's shutdown and the client saw its connection close
    with no answer (API QA, stop 40)."""
    import signal
    import socket
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    boot = ("import emovox.cli.servers as s; s.GRACEFUL_SHUTDOWN_S = 0.5; "
            f"from emovox.cli import app; app(['serve', '--port', '{port}'])")
    proc = subprocess.Popen([sys.executable, "-c", boot], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(
                                ROOT / "src")})
    try:
        for _ in range(150):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.2)
        client = socket.create_connection(("127.0.0.1", port))
        part = (b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
                + b"\0" * 1000)
        client.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/"
                       b"form-data; boundary=b\r\nContent-Length: 500000\r\n\r\n" + part)
        time.sleep(1.0)  # the upload is open, its body unfinished
        proc.send_signal(getattr(signal, sig))
        client.settimeout(30)
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk
        client.close()
        assert proc.wait(30) == 0
    finally:
        proc.kill()
    assert answer.startswith(b"HTTP/1.1 503"), answer[:200]
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"] == "shutting_down"
