"""Speaker adaptation in the REST API: ``POST /v1/predict`` with ``references`` and
``POST /v1/timeline?adapt=self``, with FastAPI's TestClient on the tiny model (limits
MAX_BYTES, MAX_DURATION) and synthetic voice-like clips; one slow test on the bundled model."""

from __future__ import annotations

import numpy as np
import pytest
from api_helpers import MAX_BYTES, MAX_DURATION, SR, assert_error, encode, make_test_client, post

from signals import voice

pytest.importorskip("fastapi")
pytest.importorskip("multipart")
pytest.importorskip("httpx")

from emovox.labels import LABELS  # noqa: E402
from emovox.serving.schema import validate_document  # noqa: E402

F0S = (140.0, 190.0, 240.0, 300.0)


def _ref(seconds: float, i: int) -> bytes:
    return encode(voice(seconds, f0=F0S[i % len(F0S)]), "WAV")


def _post_refs(client, main: bytes, refs: list[tuple[str, bytes]], path: str = "/v1/predict"):
    files = [("file", ("main.wav", main, "audio/wav"))]
    files += [("references", (n, d, "application/octet-stream")) for n, d in refs]
    return client.post(path, files=files)


def test_adapted_answer_carries_adaptation_and_skips_bad_references(client, wav3, tiny_model):
    """Three good clips, a text file, a silent clip and an empty file: the answer is adapted
    to the three, the others are named in its warnings; the request body (about 0.4 MB of
    references on top of the clip) is above one upload's limit, which holds for the clip."""
    refs = [(f"r{i}.wav", _ref(2.0, i)) for i in range(3)]
    refs += [("notes.wav", b"not audio at all\n" * 40),
             ("quiet.wav", encode(np.zeros(SR, np.float32), "WAV")), ("empty.wav", b"")]
    r = _post_refs(client, wav3, refs)
    assert r.status_code == 200, r.text
    d = r.json()
    validate_document(d, "prediction")
    ad = d["adaptation"]
    assert {k: ad[k] for k in ("method", "applied", "reference_clips", "group", "reason")} == {
        "method": "speaker_prior", "applied": True, "reference_clips": 3,
        "group": "uploaded references", "reason": None}
    assert list(ad["prior"]) == list(LABELS)
    w = ad["warnings"]
    assert w[0].startswith("reference clip skipped: notes.wav: ") and "not audio" in w[0]
    assert w[1] == ("reference clip skipped: quiet.wav: the recording is silent (or a constant "
                    "offset)")  # in words, as predict says it (stop 54: "no speech (silence)")
    assert w[2].startswith("reference clip skipped: empty.wav: ") and "empty" in w[2]
    assert w[3].startswith("only 3 usable reference clips")
    plain = post(client, "/v1/predict", wav3, "main.wav").json()
    assert "adaptation" not in plain  # unadapted documents are unchanged
    assert d["probabilities"] != pytest.approx(plain["probabilities"], abs=1e-6)
    # the API is the serving layer's answer, nothing more
    from emovox.serving.adapt_uploads import predict_with_references
    from emovox.serving.predictor import Predictor

    want = predict_with_references(Predictor.from_artifact(tiny_model), wav3, "main.wav",
                                   [(data, n) for n, data in refs]).adapted.to_dict()
    assert d.keys() == want.keys() and d["label"] == want["label"]
    assert d["probabilities"] == pytest.approx(want["probabilities"], abs=1e-6)
    assert d["adaptation"]["prior"] == pytest.approx(want["adaptation"]["prior"], abs=1e-4)
    assert d["adaptation"]["warnings"] == want["adaptation"]["warnings"]


def test_references_share_one_uploads_byte_and_duration_limits(client, wav3):
    refs = [(f"r{i}.wav", _ref(3.0, i)) for i in range(4)]  # 4 x 3 s, 4 x 96 kB
    assert sum(len(x) for _, x in refs) < MAX_BYTES < len(wav3) + sum(len(x) for _, x in refs)
    r = _post_refs(client, wav3, refs)
    assert r.status_code == 200, r.text
    ad = r.json()["adaptation"]
    assert ad["reference_clips"] == 3  # 9 s; the 4th would make 12 s > 10 s
    assert ad["warnings"][0] == ("reference clip skipped: r3.wav: the reference clips "
                                 f"together are longer than the {MAX_DURATION:g} s limit")
    big = [(f"r{i}.wav", b"RIFF" + b"\0" * (MAX_BYTES // 4)) for i in range(5)]
    body = assert_error(_post_refs(client, wav3, big), 413, "upload_too_large")
    assert "5 reference clips together" in body["detail"]


def test_too_many_references_is_422(client, wav3):
    refs = [(f"r{i}.wav", b"RIFF") for i in range(33)]
    body = assert_error(_post_refs(client, wav3, refs), 422, "too_many_references")
    assert "at most 32" in body["detail"]
    # refused by the parser at the 34th part (Starlette's 1,000 parts were all kept first:
    # code review, stop 46), as are many or large text fields
    assert "too many file parts" in body["detail"]
    r = client.post("/v1/predict", files=[("file", ("main.wav", wav3, "audio/wav"))],
                    data={f"x{i}": "1" for i in range(9)})
    assert "Too many fields" in assert_error(r, 422, "invalid_request")["detail"]
    r = client.post("/v1/predict", files=[("file", ("main.wav", wav3, "audio/wav"))],
                    data={"x": "1" * 70_000})
    assert "exceeded maximum size" in assert_error(r, 422, "invalid_request")["detail"]


def test_too_few_usable_references_is_422(client, wav3):
    refs = [("r0.wav", _ref(1.0, 0)), ("r1.wav", _ref(1.0, 1)),
            ("notes.wav", b"this is text\n" * 40)]
    body = assert_error(_post_refs(client, wav3, refs), 422, "too_few_references")
    assert "2 usable clip(s) of 3" in body["detail"] and "notes.wav" in body["detail"]
    # the main upload's own problems come first, with their own codes
    assert_error(_post_refs(client, b"not audio\n" * 50, refs), 415, "not_audio")


def test_timeline_adapts_to_itself(client):
    long = encode(voice(6.0), "WAV")
    plain = post(client, "/v1/timeline?window=2&hop=1", long, "long.wav").json()
    assert "adaptation" not in plain
    assert post(client, "/v1/timeline?window=2&hop=1&adapt=none", long).json() == {
        **plain, "source": "clip.wav"}
    r = post(client, "/v1/timeline?window=2&hop=1&adapt=self", long, "long.wav")
    assert r.status_code == 200, r.text
    d = r.json()
    validate_document(d, "timeline")
    ad = d["adaptation"]
    assert (ad["applied"], ad["reference_clips"], ad["group"]) == (True, 5, "self")
    speech = [s for s in d["segments"] if s["kind"] == "speech"]
    before = [s for s in plain["segments"] if s["kind"] == "speech"]
    assert [s["start"] for s in speech] == [s["start"] for s in before]
    assert [s["probabilities"] for s in speech] != [s["probabilities"] for s in before]
    short = post(client, "/v1/timeline?adapt=self", encode(voice(2.0), "WAV")).json()
    assert short["adaptation"]["applied"] is False and "at least 3" in \
        short["adaptation"]["reason"]


def test_unknown_adapt_value_is_422(client, wav3):
    body = assert_error(post(client, "/v1/timeline?adapt=speaker", wav3), 422,
                        "invalid_request")
    assert "adapt" in body["detail"]


def test_openapi_documents_references_and_adapt(client):
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/v1/predict"]["post"]["requestBody"]["content"]
    schema_ref = body["multipart/form-data"]["schema"]["$ref"].split("/")[-1]
    props = spec["components"]["schemas"][schema_ref]["properties"]
    assert "references" in props and "32" in props["references"]["description"]
    params = {p["name"]: p for p in spec["paths"]["/v1/timeline"]["post"]["parameters"]}
    assert "self" in params["adapt"]["description"]
    record = spec["components"]["schemas"]["AdaptationRecord"]["properties"]
    assert {"applied", "reference_clips", "prior", "warnings"} <= set(record)
    assert "too_few_references" in str(spec["paths"]["/v1/predict"]["post"]["responses"])


@pytest.mark.slow  # the bundled ensemble: several predictions (> 2 s)
def test_bundled_model_adapts_to_uploaded_references():
    from emovox.api.server import create_app

    with make_test_client(create_app()) as c:
        refs = [(f"r{i}.wav", _ref(1.5, i)) for i in range(4)]
        r = _post_refs(c, encode(voice(2.0, f0=210.0), "WAV"), refs)
        assert r.status_code == 200, r.text
        d = r.json()
        validate_document(d, "prediction")
        assert d["adaptation"]["applied"] and d["adaptation"]["reference_clips"] == 4
        assert d["model_id"] and d["label"] in LABELS


def test_no_speech_is_never_adapted(client):
    """As in the CLI: a no_speech answer is not adapted, even with good references; its
    record says why and keeps the references' warnings."""
    refs = [(f"r{i}.wav", _ref(1.0, i)) for i in range(3)]
    r = _post_refs(client, encode(np.zeros(2 * SR, np.float32), "WAV"), refs)
    assert r.status_code == 200, r.text
    d = r.json()
    validate_document(d, "prediction")
    assert d["status"] == "no_speech" and d["probabilities"] is None
    a = d["adaptation"]
    assert a["applied"] is False and "no speech" in a["reason"] and a["reference_clips"] == 3
    assert any(w.startswith("only 3 usable reference clips") for w in a["warnings"])
