"""The REST API's contract on the wire (review of the API as an integrator, stop 51), with
FastAPI's TestClient on the tiny model: damaged files are 422 ``bad_audio`` and what cannot
be decoded here 415 ``unsupported_codec``, without ffmpeg's noise; a large file part sent
without ``filename=`` says how to send a file; every answer validates against both the
OpenAPI document's schema and the shipped JSON Schema."""

from __future__ import annotations

import shutil
import struct
import subprocess

import numpy as np
import pytest
from api_helpers import SR, assert_error, encode, post

from signals import voice

pytest.importorskip("fastapi")
pytest.importorskip("multipart")
pytest.importorskip("httpx")
jsonschema = pytest.importorskip("jsonschema")

from emovox.serving.errcodes import ErrorCode  # noqa: E402
from emovox.serving.schema import validate_document  # noqa: E402

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")


def _patched(wav: bytes, *patches: tuple[int, str, int]) -> bytes:
    out = bytearray(wav)
    for offset, fmt, value in patches:
        struct.pack_into(fmt, out, offset, value)
    return bytes(out)


def _half_m4a(tmp_path) -> bytes:
    (tmp_path / "c.wav").write_bytes(encode(voice(2.0), "WAV"))
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(tmp_path / "c.wav"), "-c:a", "aac",
                    str(tmp_path / "c.m4a")], capture_output=True, check=True)
    m4a = (tmp_path / "c.m4a").read_bytes()  # its index (moov) at the end: cut, it is lost
    return m4a[: len(m4a) // 2]


def _damaged(tmp_path) -> dict[str, bytes]:
    """Stop 51's review files: each was a 415 ``unsupported_codec``."""
    wav = encode(voice(2.0), "WAV")
    assert wav[12:16] == b"fmt " and wav[36:40] == b"data"  # 44-byte header
    return {
        "brokenfmt.wav": wav[:20] + b"\xff" * 16 + wav[36:],  # the fmt chunk's body
        "nodata.wav": wav[:36],  # a WAV header without its data chunk
        "nochannels.wav": _patched(wav, (22, "<H", 0)),
        "hugerate.wav": _patched(wav, (24, "<I", 0xFFFFFFFF)),
        "half.m4a": _half_m4a(tmp_path),
    }


@needs_ffmpeg
def test_damaged_files_of_known_formats_are_422_bad_audio(client, tmp_path):
    for name, data in _damaged(tmp_path).items():
        for route in ("/v1/predict", "/v1/timeline"):
            body = assert_error(post(client, route, data, name), 422, "bad_audio")
            detail = body["detail"]
            assert name in detail, detail
            assert "Last message repeated" not in detail and "pipe:0" not in detail, detail
            assert "Cannot allocate memory" not in detail, detail


@needs_ffmpeg
def test_a_codec_nothing_here_decodes_stays_415_unsupported_codec(client):
    wav = encode(voice(2.0), "WAV")
    unknown = _patched(wav, (20, "<H", 0x1234))  # a format tag no decoder knows
    for route in ("/v1/predict", "/v1/timeline"):
        body = assert_error(post(client, route, unknown, "tag.wav"), 415, "unsupported_codec")
        assert "tag.wav" in body["detail"]


def _cut(tmp_path) -> dict[str, bytes]:
    """Files cut short that ffmpeg refuses in words a list of damage phrases lacked ("End of
    file", "Input/output error"): 415 ``unsupported_codec`` until its review (stop 51)."""
    w = voice(2.0)
    flac, ogg = encode(w, "FLAC"), encode(w, "OGG")
    (tmp_path / "c.wav").write_bytes(encode(w, "WAV"))
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(tmp_path / "c.wav"), "-c:a", "libopus",
                    str(tmp_path / "c.webm")], capture_output=True, check=True)
    return {"cut50.flac": flac[:50], "cut200.flac": flac[:200], "cut1000.ogg": ogg[:1000],
            "cut.webm": (tmp_path / "c.webm").read_bytes()[:200]}


@needs_ffmpeg
def test_files_cut_short_are_422_bad_audio(client, tmp_path):
    for name, data in _cut(tmp_path).items():
        for route in ("/v1/predict", "/v1/timeline"):
            body = assert_error(post(client, route, data, name), 422, "bad_audio")
            assert name in body["detail"], (route, body)


#: names a verdict was read from when it was parsed back out of the message (review, 51)
_VERDICT_NAMES = ("ffmpeg: invalid header", "Decoder (codec none) not found", "unknown codec")


@needs_ffmpeg
def test_the_code_does_not_depend_on_the_files_name(client, tmp_path, monkeypatch):
    """The same bytes get the same code whatever they are called, with ffmpeg and without
    (where libsndfile alone cannot tell a broken header from a codec it lacks: 415)."""
    ogg = _cut(tmp_path)["cut1000.ogg"]
    unknown = _patched(encode(voice(2.0), "WAV"), (20, "<H", 0x1234))
    with monkeypatch.context() as m:  # a server without ffmpeg
        m.setenv("EMOVOX_FFMPEG", "emovox-no-such-ffmpeg")
        m.setenv("EMOVOX_FFPROBE", "emovox-no-such-ffprobe")
        for name in ("clip", *_VERDICT_NAMES):
            for data, suffix in ((unknown, "wav"), (ogg, "ogg")):
                for route in ("/v1/predict", "/v1/timeline"):
                    body = assert_error(post(client, route, data, f"{name}.{suffix}"), 415,
                                        "unsupported_codec")
                    assert "without ffmpeg" in body["detail"], body
    for name in ("clip", *_VERDICT_NAMES):
        for route in ("/v1/predict", "/v1/timeline"):
            assert_error(post(client, route, ogg, f"{name}.ogg"), 422, "bad_audio")
            assert_error(post(client, route, unknown, f"{name}.wav"), 415, "unsupported_codec")


def _multipart(disposition: str, data: bytes) -> tuple[bytes, dict[str, str]]:
    b = "emovoxboundary51"
    body = (f"--{b}\r\nContent-Disposition: form-data; {disposition}\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + data + (
        f"\r\n--{b}--\r\n").encode()
    return body, {"content-type": f"multipart/form-data; boundary={b}"}


def test_a_large_file_part_without_filename_says_how_to_send_a_file(client):
    """``curl -F "file=<clip.wav"`` and a part with only ``filename*=``: a text field; over
    64 KiB Starlette's "Part exceeded maximum size of 64KB." was all a client read."""
    wav = encode(voice(3.0), "WAV")
    assert len(wav) > 64 * 1024
    for disposition in ('name="file"', "name=\"file\"; filename*=UTF-8''clip.wav"):
        body, headers = _multipart(disposition, wav)
        for route in ("/v1/predict", "/v1/timeline"):
            r = client.post(route, content=body, headers=headers)
            detail = assert_error(r, 422, "invalid_request")["detail"]
            assert "text field unless" in detail and 'filename="..."' in detail
            assert 'curl -F "file=@clip.wav"' in detail
    body, headers = _multipart('name="file"; filename="clip.wav"', wav)  # the same, a file
    assert client.post("/v1/predict", content=body, headers=headers).status_code == 200


# ------------------------------------------------------------------ answers and schemas


@pytest.fixture(scope="module")
def openapi(client) -> dict:
    r = client.get("/openapi.json")
    assert r.status_code == 200
    return r.json()


def _validate_openapi(spec: dict, doc: dict, model: str) -> None:
    """``doc`` against the OpenAPI document's component ``model`` (OpenAPI 3.1 schemas are
    JSON Schema 2020-12)."""
    schema = {"$ref": f"#/components/schemas/{model}", "components": spec["components"]}
    jsonschema.Draft202012Validator(schema).validate(doc)


def _examples(client, wav3) -> list[tuple[str, dict]]:
    refs = [("references", (f"r{i}.wav", encode(voice(2.0, f0=f0), "WAV"),
                            "application/octet-stream"))
            for i, f0 in enumerate((140.0, 190.0, 240.0))]
    answers = {
        "prediction": [post(client, "/v1/predict", wav3, "voice.wav"),
                       post(client, "/v1/predict", encode(np.zeros(2 * SR, np.float32),
                                                          "WAV"), "quiet.wav"),
                       client.post("/v1/predict", files=[
                           ("file", ("main.wav", wav3, "audio/wav")), *refs])],
        "timeline": [post(client, "/v1/timeline?window=2&hop=1", encode(voice(6.0), "WAV")),
                     post(client, "/v1/timeline?window=2&hop=1&adapt=self",
                          encode(voice(6.0), "WAV")),
                     post(client, "/v1/timeline", encode(np.zeros(2 * SR, np.float32),
                                                         "WAV"))],
    }
    out = []
    for kind, rs in answers.items():
        for r in rs:
            assert r.status_code == 200, r.text
            out.append((kind, r.json()))
    return out


def test_every_answer_validates_against_openapi_and_the_json_schema(client, openapi, wav3):
    docs = _examples(client, wav3)
    statuses = {d["status"] if k == "prediction" else d["summary"]["status"] for k, d in docs}
    assert "no_speech" in statuses and statuses - {"no_speech"}
    assert any("adaptation" in d for _, d in docs)
    gaps = [s for k, d in docs if k == "timeline" for s in d["segments"] if s["kind"] == "gap"]
    assert gaps and all("status" in s and s["status"] is None for s in gaps)
    for kind, doc in docs:
        validate_document(doc, kind)
        _validate_openapi(openapi, doc, {"prediction": "PredictResponse",
                                         "timeline": "TimelineResponse"}[kind])
    bad = dict(docs[0][1], label="bored")  # the OpenAPI type is no longer any string
    with pytest.raises(jsonschema.ValidationError):
        _validate_openapi(openapi, bad, "PredictResponse")


def test_error_bodies_validate_against_error_body(client, openapi):
    for r in (post(client, "/v1/predict", b"just text\n" * 20, "notes.wav"),
              client.get("/v1/model?x=1"), client.get("/nowhere")):
        assert r.status_code >= 400
        _validate_openapi(openapi, r.json(), "ErrorBody")
        assert ErrorCode(r.json()["error"]).status == r.status_code
