"""REST API (emovox.api.server) with FastAPI's TestClient on a tiny model: success and
error paths, the documentation pages."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from api_helpers import MAX_BYTES, MAX_DURATION, SR, assert_error, encode, make_test_client, post

from signals import NON_SPEECH_SET as NON_SPEECH
from signals import voice

pytest.importorskip("fastapi")
pytest.importorskip("multipart")
pytest.importorskip("httpx")

from emovox.labels import LABELS  # noqa: E402
from emovox.serving.schema import validate_document  # noqa: E402

# ------------------------------------------------------------------------------ success paths


def test_predict(client, wav3):
    r = post(client, "/v1/predict", wav3, "voice.wav")
    assert r.status_code == 200, r.text
    d = r.json()
    validate_document(d, "prediction")
    assert d["label"] in LABELS and d["model_id"].startswith("crnn-")
    assert d["status"] in ("ok", "uncertain") and d["reason"] is None
    assert list(d["probabilities"]) == list(LABELS)
    assert sum(d["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)
    assert d["confidence"] == pytest.approx(max(d["probabilities"].values()))
    level = "high" if d["confidence"] >= 0.7 else "medium" if d["confidence"] >= 0.5 else "low"
    assert d["confidence_level"] == level
    assert -1 <= d["arousal"] <= 1 and -1 <= d["valence"] <= 1
    assert d["derived"] == ["arousal", "valence"]
    assert d["duration"] == pytest.approx(3.0, abs=0.01)
    assert d["source"] == "voice.wav" and d["schema_version"] == "1"
    # 3 s is longer than two windows of the tiny model (64 frames): windows over the speech
    assert d["n_windows"] == len(d["evidence"]) > 1 and 2.0 < d["speech_seconds"] <= 3.0
    assert sum(e["contribution"] for e in d["evidence"]) == pytest.approx(1.0, abs=1e-3)
    assert sum(e["weight"] for e in d["evidence"]) == pytest.approx(1.0, abs=1e-3)


def test_predict_formats_agree(client, wav3, tmp_path):
    """flac/ogg/mp3 (and m4a when ffmpeg is there) decode; lossless ones agree with wav."""
    w = voice(3.0)
    ref = post(client, "/v1/predict", wav3).json()["probabilities"]
    for fmt, ext in (("FLAC", "flac"), ("OGG", "ogg"), ("MP3", "mp3")):
        r = post(client, "/v1/predict", encode(w, fmt), f"clip.{ext}")
        assert r.status_code == 200, (ext, r.text)
        if ext == "flac":
            assert r.json()["probabilities"] == pytest.approx(ref, abs=1e-4)
    if shutil.which("ffmpeg"):
        (tmp_path / "c.wav").write_bytes(wav3)
        subprocess.run(["ffmpeg", "-v", "error", "-i", str(tmp_path / "c.wav"), "-c:a", "aac",
                        str(tmp_path / "c.m4a")], capture_output=True, check=True)
        m4a = (tmp_path / "c.m4a").read_bytes()
        assert post(client, "/v1/predict", m4a, "clip.m4a").status_code == 200


def test_timeline(client):
    r = post(client, "/v1/timeline?window=2&hop=1", encode(voice(6.0), "WAV"), "long.wav")
    assert r.status_code == 200, r.text
    d = r.json()
    validate_document(d, "timeline")
    assert d["source"] == "long.wav" and d["window"] == 2 and d["hop"] == 1
    assert d["duration"] == pytest.approx(6.0, abs=0.01)
    speech = [s for s in d["segments"] if s["kind"] == "speech"]
    assert [s["start"] for s in speech[:4]] == pytest.approx([0.03, 1.03, 2.03, 3.03])
    assert speech[-1]["end"] == pytest.approx(5.95) == d["segments"][-1]["start"]  # the tail
    assert all(s["label"] in LABELS for s in speech)
    assert [s["kind"] for s in d["segments"]] == ["gap", *["speech"] * 5, "gap"]
    summ = d["summary"]
    assert summ["n_windows"] == 5 and summ["dominant"] in LABELS
    assert summ["speech_seconds"] == pytest.approx(5.92, abs=0.01)
    assert sum(summ["share"].values()) == pytest.approx(1.0)


def test_timeline_of_silence(client):
    d = post(client, "/v1/timeline", encode(np.zeros(4 * SR, np.float32), "WAV")).json()
    validate_document(d, "timeline")
    assert [(s["kind"], s["label"]) for s in d["segments"]] == [("gap", None)]
    assert d["summary"]["dominant"] is None and d["summary"]["status"] == "no_speech"
    assert d["summary"]["reason"] == "silence"  # a code, as predict's (text before stop 29)


@pytest.mark.parametrize("name", sorted(NON_SPEECH))
def test_non_speech_gets_no_emotion(client, name):
    """White and pink noise, a 440 Hz tone, silence, DC, a square wave, a 0.1 s clip: 0
    emotions, status no_speech with a reason; the timeline has no speech window."""
    body = encode(NON_SPEECH[name], "WAV")
    d = post(client, "/v1/predict", body, f"{name}.wav").json()
    validate_document(d, "prediction")
    assert d["status"] == "no_speech" and d["reason"] and d["label"] is None, d
    assert d["probabilities"] is None and d["arousal"] is None and d["valence"] is None
    assert d["evidence"] == [] and d["n_windows"] == 0
    t = post(client, "/v1/timeline", body, f"{name}.wav").json()
    assert all(s["kind"] == "gap" for s in t["segments"]) and t["summary"]["dominant"] is None


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
    r = client.get("/v1/model?x=1&x=2")  # answered as if none were given (re-check, stop 40)
    assert r.status_code == 422 and r.json() == {
        "error": "invalid_request",
        "detail": "unknown query parameter(s) 'x': this endpoint reads none"}


def test_health_docs_openapi(client):
    h = client.get("/health")
    assert h.status_code == 200
    assert h.json()["status"] == "ok" and h.json()["model_loaded"] is True
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert {"/v1/predict", "/v1/timeline", "/v1/model", "/health"} <= set(spec["paths"])
    assert "413" in spec["paths"]["/v1/predict"]["post"]["responses"]
    for path, method in (("/v1/predict", "post"), ("/v1/timeline", "post"),
                         ("/v1/model", "get")):  # every status sent is declared (API QA, 40)
        declared = set(spec["paths"][path][method]["responses"])
        assert {"401", "500", "503"} <= declared, (path, declared)
        assert path == "/v1/model" or "408" in declared
    params = {p["name"]: p["schema"] for p in spec["paths"]["/v1/timeline"]["post"]["parameters"]}
    assert params["window"]["exclusiveMinimum"] == 0.25 and params["window"]["maximum"] == 30
    assert params["hop"]["exclusiveMinimum"] == 0.05  # ranges a client can read (stop 46)
    card = spec["components"]["schemas"]["ModelCard"]["properties"]  # all 17 (stop 35)
    assert set(client.get("/v1/model").json()) <= set(card) and "limits" in card


# ------------------------------------------------------------------------------ error paths


def test_not_audio_is_415(client):
    body = assert_error(post(client, "/v1/predict", b"just some text\n" * 20, "notes.wav"),
                         415, "not_audio")
    assert "notes.wav" in body["detail"]
    rng = np.random.default_rng(1)
    r = post(client, "/v1/predict", rng.bytes(5000), "x.mp3")  # named mp3: "damaged mp3"
    assert r.status_code == 415 and r.json()["error"] in ("not_audio", "unsupported_codec")
    assert_error(post(client, "/v1/timeline", b"<html></html>" * 50, "page.wav"),
                  415, "not_audio")


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")
def test_an_uploaded_playlist_reads_no_server_file(client, tmp_path):
    """An HLS playlist listing a file on the server, uploaded as a recording (stop 31: the
    timeline, which spools uploads to disk, answered for the listed file)."""
    from signals import ffmpeg_encode, write_clip

    seg = ffmpeg_encode(write_clip(tmp_path / "s.wav", voice(2.0), SR), tmp_path / "s.aac",
                        "-c:a", "aac")
    body = (f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n{seg}\n#EXT-X-ENDLIST\n"
            ).encode() + b"\x00\x01"
    for route in ("/v1/predict", "/v1/timeline"):
        body_ = assert_error(post(client, route, body, "call.wav"), 415, "not_audio")
        assert str(tmp_path) not in body_["detail"]


def test_empty_and_broken_are_422(client, wav3):
    assert_error(post(client, "/v1/predict", b"", "empty.wav"), 422, "bad_audio")
    header_only = wav3[:44]
    r = post(client, "/v1/predict", header_only, "cut.wav")
    assert r.status_code in (415, 422), r.text
    assert r.json()["error"] in ("bad_audio", "unsupported_codec", "not_audio")


def test_too_long_is_422(client):
    long_flac = encode(voice(MAX_DURATION + 2), "FLAC")
    body = assert_error(post(client, "/v1/predict", long_flac, "long.flac"),
                         422, "audio_too_long")
    assert "long.flac" in body["detail"] and "10 s" in body["detail"]
    # in a client's words: the server's limit, not `emovox timeline` or --max-duration as
    # the user's own option, nor /v1/timeline, which keeps the same limit (re-checks, 39)
    for path in ("/v1/predict", "/v1/timeline"):
        body = assert_error(post(client, path, long_flac, "long.flac"), 422,
                            "audio_too_long")
        assert body["detail"].endswith("Cut it into shorter pieces: the limit is the "
                                       "server's (emovox serve --max-duration).")
        assert "`emovox timeline`" not in body["detail"] and "/v1/" not in body["detail"]


def test_a_raw_audio_body_is_415_and_says_how_to_upload(client):
    """A recording sent as the raw body (not multipart) was a 422 "file: Field required"
    (QA stop 30)."""
    wav = encode(voice(1.0), "WAV")
    for path in ("/v1/predict", "/v1/timeline"):
        r = client.post(path, content=wav, headers={"content-type": "audio/wav"})
        body = assert_error(r, 415, "unsupported_media_type")
        assert "multipart/form-data" in body["detail"] and "'file'" in body["detail"]
    r = client.post("/v1/predict", data={"x": "1"})  # a form without the file part: still 422
    assert "curl -F" in assert_error(r, 422, "invalid_request")["detail"]  # curl --data-binary
    r = client.post("/v1/predict", content=b"{}", headers={"content-type": "application/json"})
    assert_error(r, 415, "unsupported_media_type")


def test_a_multipart_body_cut_before_its_closing_boundary_says_so(client, wav3):
    """A body cut short on the way was "file: Field required" (stop 36's list): the closing
    boundary is looked for in the body's last bytes."""
    b = "XyZ123"
    head = (f"--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"c.wav\"\r\n"
            "Content-Type: audio/wav\r\n\r\n").encode()
    body = head + wav3 + f"\r\n--{b}--\r\n".encode()
    for path in ("/v1/predict", "/v1/timeline"):
        for ctype in (f"multipart/form-data; boundary={b}", f'multipart/form-data; boundary="{b}"'):
            assert client.post(path, content=body, headers={"content-type": ctype}
                               ).status_code == 200
            for cut in (len(body) - 4, len(body) // 2, len(head) - 3):
                r = client.post(path, content=body[:cut], headers={"content-type": ctype})
                detail = assert_error(r, 422, "incomplete_upload")["detail"]
                assert "ends before its closing boundary" in detail and "curl -F" in detail
    refs = (f"\r\n--{b}\r\nContent-Disposition: form-data; name=\"references\"; "
            "filename=\"r.wav\"\r\nContent-Type: audio/wav\r\n\r\n").encode() + wav3
    cut_ref = head + wav3 + refs  # the file whole, a reference cut: not answered without
    r = client.post("/v1/predict", content=cut_ref[:-1000],  # it (re-check, stop 37: 200)
                    headers={"content-type": f"multipart/form-data; boundary={b}"})
    assert_error(r, 422, "incomplete_upload")
    epilogue = ("epilogue " * 400).encode()  # 3.6 KB after the closing boundary (RFC 2046):
    r = client.post("/v1/predict", content=body + epilogue,  # a 422 past 1 KiB until stop 46
                    headers={"content-type": f"multipart/form-data; boundary={b}"})
    assert r.status_code == 200, r.text
    other = (f"--{b}\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n1\r\n--{b}--\r\n"
             + "epilogue " * 40)  # an epilogue beyond 128 bytes: still complete
    r = client.post("/v1/predict", content=other.encode(),  # complete, but no file part
                    headers={"content-type": f"multipart/form-data; boundary={b}"})
    assert "file: Field required" in assert_error(r, 422, "invalid_request")["detail"]


def test_a_cut_short_wav_says_so_in_the_answer(client, tmp_path):
    """The decoder's notes reach the API's answer as ``warnings`` (QA stop 30: the cut-short
    warning went to the server log only); absent when there are none."""
    from signals import write_clip

    path = write_clip(tmp_path / "cut.wav", voice(2.0), SR)
    whole = path.read_bytes()
    cut = whole[: len(whole) - 32000]  # the header still declares 2 s
    r = post(client, "/v1/predict", cut, name="cut.wav")
    assert r.status_code == 200, r.text
    doc = r.json()
    validate_document(doc, "prediction")
    assert any("holds 1.00 s of the 2.00 s" in w for w in doc["warnings"])
    assert "warnings" not in post(client, "/v1/predict", whole, name="whole.wav").json()
    # the timeline too (stop 31), named after the upload
    tl = post(client, "/v1/timeline", cut, name="cut.wav").json()
    validate_document(tl, "timeline")
    assert any(w.startswith("cut.wav: the file holds 1.00 s") for w in tl["warnings"]), tl
    assert "warnings" not in post(client, "/v1/timeline", whole, name="whole.wav").json()


def test_warnings_of_a_large_upload_name_the_upload_not_its_copy(tiny_model, tmp_path,
                                                                 caplog):
    """Uploads over 1 MB are decoded from a private temporary copy, whose path the
    decoder's notes (here: mains hum) named in the API's answer (re-check 2, stop 32) and
    in the server's log (stop 33)."""
    import logging
    import tempfile

    from emovox.api.server import create_app
    from signals import write_clip

    t = np.arange(22 * SR) / SR
    w = (np.resize(voice(3.0), len(t)) + 0.02 * np.sin(2 * np.pi * 50.02 * t)).astype(np.float32)
    data = write_clip(tmp_path / "big.wav", w, SR, subtype="FLOAT").read_bytes()
    assert len(data) > 1 << 20
    with caplog.at_level(logging.WARNING, logger="emovox"), \
            make_test_client(create_app(tiny_model, max_bytes=4_000_000, max_duration=60)) as c:
        doc = post(c, "/v1/predict", data, name="big hum.wav").json()
    notes = [n for n in doc["warnings"] if "mains hum at 50 Hz" in n]
    assert notes and all(n.startswith("big hum.wav: ") for n in notes), doc["warnings"]
    assert "emovox-upload" not in str(doc) and str(tmp_path) not in str(doc)
    logged = [r.getMessage() for r in caplog.records if "mains hum" in r.getMessage()]
    assert logged and all(m.startswith("big hum.wav: ") for m in logged), logged
    assert not any(tempfile.gettempdir() in r.getMessage() for r in caplog.records), logged


def test_too_large_is_413(client):
    big = b"RIFF" + b"\0" * (MAX_BYTES + 200_000)
    body = assert_error(post(client, "/v1/predict", big), 413, "upload_too_large")
    assert "limit" in body["detail"]
    # within the multipart slack of the body limit: rejected by the exact file-size check
    assert_error(post(client, "/v1/timeline", b"\0" * (MAX_BYTES + 10)), 413,
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
    assert_error(r, 413, "upload_too_large")


def test_a_405_names_the_allowed_methods(client):
    """RFC 9110: a 405 carries Allow (the error handler dropped it: API QA, stop 37)."""
    r = client.put("/v1/predict")
    assert_error(r, 405, "method_not_allowed")
    assert r.headers["allow"] == "POST"


def test_bad_requests_are_422(client, wav3):
    assert_error(client.post("/v1/predict"), 422, "invalid_request")
    assert_error(post(client, "/v1/timeline?window=1&hop=2", wav3), 422, "invalid_request")
    assert_error(post(client, "/v1/timeline?window=0", wav3), 422, "invalid_request")
    assert_error(client.get("/nowhere"), 404, "not_found")
    text_field = assert_error(client.post("/v1/predict", data={"file": "hello"}), 422,
                              "invalid_request")
    assert "expected an uploaded file" in text_field["detail"]
    assert "UploadFile" not in text_field["detail"] and "class" not in text_field["detail"]
    for route in ("/v1/predict", "/v1/timeline"):  # two 'file' parts: one was dropped
        two = [("file", ("a.wav", wav3, "audio/wav")), ("file", ("b.wav", wav3, "audio/wav"))]
        err = assert_error(client.post(route, files=two), 422, "invalid_request")
        assert "one file per request" in err["detail"]


def test_form_fields_an_endpoint_does_not_read_are_422(client, wav3):
    """`-F window=10` on /v1/timeline and a misspelt `-F reference=@...` were ignored: the
    client got the defaults, unadapted, with HTTP 200 (API QA, stop 35)."""
    err = assert_error(client.post("/v1/timeline", files={"file": ("a.wav", wav3)},
                                   data={"window": "10", "adapt": "self"}),
                       422, "invalid_request")
    assert err["detail"].startswith("adapt, window: a query parameter (POST /v1/timeline?"
                                    "adapt=...&window=...), not a form field; unknown form")
    refs = [("file", ("a.wav", wav3, "audio/wav")), ("reference", ("r.wav", wav3, "audio/wav"))]
    err = assert_error(client.post("/v1/predict", files=refs), 422, "invalid_request")
    assert err["detail"] == ("unknown form field(s) 'reference': this endpoint reads 'file' "
                             "and 'references'")
    # /v1/predict reads no query parameter: no hint sending the client to one (README QA,
    # stop 38: the hint's advice was then refused as an unknown query parameter)
    err = assert_error(client.post("/v1/predict", files={"file": ("a.wav", wav3)},
                                   data={"window": "10"}), 422, "invalid_request")
    assert err["detail"] == ("unknown form field(s) 'window': this endpoint reads 'file' and "
                             "'references'")
    assert post(client, "/v1/timeline?window=2&hop=1", wav3).json()["window"] == 2.0
    # query parameters an endpoint does not read too (re-check, stop 35); names cut
    err = assert_error(post(client, "/v1/predict?window=2", wav3), 422, "invalid_request")
    assert err["detail"] == "unknown query parameter(s) 'window': this endpoint reads none"
    err = assert_error(post(client, f"/v1/timeline?hop=1&{'x' * 3000}=1", wav3), 422,
                       "invalid_request")
    assert err["detail"] == (f"unknown query parameter(s) '{'x' * 40}...': this endpoint "
                             "reads 'window' and 'hop' and 'adapt'")
    # a repeated one: the last won without a word (API QA, stop 40)
    err = assert_error(post(client, "/v1/timeline?adapt=self&adapt=none&window=3&window=2",
                            wav3), 422, "invalid_request")
    assert err["detail"] == ("query parameter(s) 'adapt' and 'window' given more than once: "
                             "give each once")


def test_every_get_route_answers_head_requests(client):
    """Uptime monitors and link checkers send HEAD: /health's was added by hand (it was
    405) and /docs, /v1/model stayed 405 (stop 37's list). Same status and headers as GET,
    no body; a 405 names HEAD wherever GET is allowed."""
    for path in ("/health", "/docs", "/v1/model", "/openapi.json"):
        get, head = client.get(path), client.head(path)
        assert (head.status_code, head.content) == (200, b""), path
        assert head.headers["content-type"] == get.headers["content-type"], path
        assert head.headers["content-length"] == get.headers["content-length"], path
    r = client.head("/v1/nothing")
    assert (r.status_code, r.content) == (404, b"")
    r = client.head("/v1/predict")
    assert r.status_code == 405 and r.content == b"" and r.headers["allow"] == "POST"
    r = client.delete("/v1/model")
    assert_error(r, 405, "method_not_allowed")
    assert r.headers["allow"] == "GET, HEAD"


def test_unexpected_error_is_500_without_details(tiny_model, wav3, monkeypatch):
    from emovox.api.server import create_app
    from emovox.serving.predictor import Predictor

    pred = Predictor.from_artifact(tiny_model)

    def boom(*a, **k):
        raise RuntimeError("secret internals /etc/shadow")

    monkeypatch.setattr(pred, "predict_file", boom)
    with make_test_client(create_app(predictor=pred)) as c:
        body = assert_error(post(c, "/v1/predict", wav3), 500, "internal_error")
    assert "secret" not in body["detail"]


def test_no_model_is_503(tmp_path, wav3):
    from emovox.api.server import create_app

    with make_test_client(create_app(tmp_path / "missing")) as c:
        h = c.get("/health")
        assert h.status_code == 503 and h.json()["status"] == "unavailable"
        assert "does not exist" in h.json()["detail"]
        assert_error(post(c, "/v1/predict", wav3), 503, "model_unavailable")
        assert_error(c.get("/v1/model"), 503, "model_unavailable")


def test_error_details_never_leak_object_reprs(client):
    """libsndfile names the in-memory file by its repr (<_io.BytesIO object at 0x...>); the
    API says the upload's name instead."""
    rng = np.random.default_rng(3)
    for head, name in ((b"fLaC", "x.flac"), (b"RIFF\0\0\0\0WAVE", "x.wav"), (b"OggS", "x.ogg")):
        r = post(client, "/v1/predict", head + rng.bytes(3000), name)
        assert r.status_code in (415, 422), r.text
        detail = r.json()["detail"]
        assert " at 0x" not in detail and "<_io" not in detail and name in detail


def test_timeline_params_validated_like_the_cli(client, wav3):
    for query, msg in (("window=1&hop=2", "hop (2 s) must not exceed window (1 s)"),
                       ("window=inf", "window must be a finite number"),
                       ("hop=nan", "hop must be a finite number"),
                       ("window=0.2", "window must be more than 0.25 s")):
        body = assert_error(post(client, f"/v1/timeline?{query}", wav3), 422,
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


def test_a_large_upload_is_named_after_the_upload(tiny_model):
    """Uploads over 1 MiB are decoded from a private temporary copy: the answer still names
    the upload, never the temporary path."""
    import io

    from emovox.serving import service
    from emovox.serving.predictor import Predictor
    from signals import clip_bytes, harmonic, syllables

    data = clip_bytes(syllables(harmonic(180.0, 7.0, 48000), 48000), 48000, "WAV", "FLOAT")
    assert len(data) > 1 << 20
    p = service.predict_upload(Predictor.from_artifact(tiny_model), io.BytesIO(data),
                               "dir/talk.wav")
    assert p.source == "talk.wav" and p.to_dict()["source"] == "talk.wav"


def test_the_factory_refuses_a_malformed_setting_in_one_line(monkeypatch):
    """`uvicorn --factory` printed a traceback for EMOVOX_MAX_UPLOAD_MB=abc (API QA, stop
    37), and took a limit `emovox serve` refuses."""
    from emovox.api.server import create_app_from_env

    for name, value, said in (("EMOVOX_MAX_UPLOAD_MB", "abc", "is not a number"),
                              ("EMOVOX_MAX_UPLOAD_MB", "0.0001", "must be at least 0.001"),
                              ("EMOVOX_API_KEY", "", "EMOVOX_API_KEY is empty")):
        monkeypatch.setenv(name, value)
        with pytest.raises(SystemExit, match=f"^emovox: .*{said}"):
            create_app_from_env()
        monkeypatch.delenv(name)
