"""The REST API's review of stop 53, without a model (a stand-in predictor: no request here
reaches one): a part header over the multipart parser's limit (a file name of 5,000
characters) was a bare 400 ``http_error``; the middleware layers' error bodies were written
apart from the routes' (spaced, ``\\u``-escaped, every one with ``Connection: close``); and
the two request-id layers repeated their pass-through of non-HTTP scopes."""

from __future__ import annotations

import asyncio
import json
import warnings
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("multipart")
pytest.importorskip("httpx")

from emovox.api.errors import code_response, error_response  # noqa: E402
from emovox.serving.errcodes import ErrorCode  # noqa: E402

KEY = "k" * 24
ORIGIN = "https://app.example.com"
MAX_BYTES = 1000  # the body limit: 1000 bytes and 64 KiB of multipart slack
API = Path(__file__).resolve().parents[2] / "src" / "emovox" / "api"


def _client(**kw):
    from emovox.api.server import create_app

    with warnings.catch_warnings():  # starlette's notice about httpx vs httpx2
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    return TestClient(create_app(predictor=object(), max_bytes=MAX_BYTES, max_duration=10.0,
                                 **kw))


@pytest.fixture(scope="module")
def plain():
    with _client() as c:
        yield c


@pytest.fixture(scope="module")
def keyed():
    with _client(api_key=KEY, cors_origins=[ORIGIN]) as c:
        yield c


def _upload(name: str = "clip.wav", data: bytes = b"RIFF") -> dict:
    return {"file": (name, data, "audio/wav")}


def assert_route_shape(status: int, headers, body: bytes, code: ErrorCode) -> dict:
    """An error answered as the routes answer theirs: the body, byte for byte, and the
    content type of :func:`~emovox.api.errors.error_response` for its code and detail."""
    assert status == code.status, body
    doc = json.loads(body)
    assert set(doc) == {"error", "detail"} and doc["error"] == code.value, doc
    made = error_response(status, code, doc["detail"])
    assert body == bytes(made.body), body
    assert headers["content-type"] == made.headers["content-type"] == "application/json"
    assert headers["content-length"] == str(len(body))
    return doc


def _check(r, code: ErrorCode) -> dict:
    return assert_route_shape(r.status_code, r.headers, r.content, code)


# ----------------------------------------------------------- 1. a file name of 5,000 characters


def test_a_file_name_of_5000_characters_is_a_structured_422_that_names_it(plain):
    """The part's header line passes python-multipart's limit (4,224 bytes): Starlette said
    "Invalid multipart data.", a 400 ``http_error`` that named nothing. Now a 422
    ``invalid_request`` that names the file name and the limit, and says what to do."""
    r = plain.post("/v1/predict", files=_upload("a" * 5000 + ".wav"))
    detail = _check(r, ErrorCode.INVALID_REQUEST)["detail"]
    assert "file name" in detail and "4,224 bytes" in detail, detail
    assert "shorter name" in detail and 'curl -F "file=@clip.wav;filename=clip.wav"' in detail
    r = plain.post("/v1/timeline", files=_upload("é" * 5000 + ".wav"))  # 10,000 bytes
    assert "file name" in _check(r, ErrorCode.INVALID_REQUEST)["detail"]


def test_a_long_name_within_the_parsers_limit_is_read_and_cut_short(plain):
    """Up to the parser's limit a long name is read, and shortened in what the API says, as
    every odd name is (:func:`emovox.serving.uploads.display_name`)."""
    r = plain.post("/v1/predict", files=_upload("b" * 1000 + ".wav", b""))
    detail = _check(r, ErrorCode.BAD_AUDIO)["detail"]
    assert detail.startswith("b" * 120 + ": the upload is empty") and "b" * 121 not in detail


def test_a_part_with_too_many_header_lines_is_a_structured_422(plain):
    """The parser's other limit on a part's headers (8 lines) was the same bare 400."""
    head = "".join(f"X-Pad-{i}: {i}\r\n" for i in range(9))
    body = (f"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n"
            f"{head}\r\nRIFF\r\n--B--\r\n").encode()
    r = plain.post("/v1/predict", content=body,
                   headers={"content-type": "multipart/form-data; boundary=B"})
    detail = _check(r, ErrorCode.INVALID_REQUEST)["detail"]
    assert "more header lines than 8 lines" in detail, detail


def test_a_malformed_multipart_body_stays_a_400_http_error(plain):
    """Only the parser's limits on a part's headers changed: a body that is no multipart
    (text before its first boundary) is still the documented 400 ``http_error``."""
    r = plain.post("/v1/predict", content=b"garbage\r\n--B--\r\n",
                   headers={"content-type": "multipart/form-data; boundary=B"})
    assert _check(r, ErrorCode.HTTP_ERROR)["detail"] == "Invalid multipart data."


# -------------------------------------------------- 2. the middleware's errors, as the routes'


def test_the_api_keys_401_is_a_route_shaped_body_closing_only_an_unread_body(keyed):
    """The 401 was ``json.dumps``'s (``{"error": "unauthorized", ...}``, spaced) with
    ``Connection: close`` on every request; a GET has no body to leave unread."""
    r = keyed.get("/v1/model")
    assert r.content.startswith(b'{"error":"unauthorized","detail":')
    _check(r, ErrorCode.UNAUTHORIZED)
    assert r.headers["www-authenticate"] == "Bearer" and "connection" not in r.headers
    r = keyed.post("/v1/predict", files=_upload())  # its body is never read
    _check(r, ErrorCode.UNAUTHORIZED)
    assert r.headers["connection"] == "close"
    route = keyed.get("/nope", headers={"X-API-Key": KEY})  # a route's error, for comparison
    _check(route, ErrorCode.NOT_FOUND)
    assert set(keyed.get("/v1/model").headers) - set(route.headers) == {"www-authenticate"}


def test_the_body_limit_and_the_query_precheck_answer_as_the_routes_and_close(plain):
    """A body over the limit by its Content-Length, and a wrong query parameter refused
    before the body is read: both leave the body unread, so both close the connection."""
    r = plain.post("/v1/predict", files=_upload(data=b"x" * (MAX_BYTES + 2 * 64 * 1024)))
    _check(r, ErrorCode.UPLOAD_TOO_LARGE)
    assert r.headers["connection"] == "close"
    r = plain.post("/v1/timeline?wïndow=2", files=_upload())
    detail = _check(r, ErrorCode.INVALID_REQUEST)["detail"]  # UTF-8, not "\u00ef"
    assert "wïndow" in detail and b"\\u00ef" not in r.content
    assert r.headers["connection"] == "close"


def test_a_refused_preflight_is_a_route_shaped_body_with_its_cors_headers(keyed):
    r = keyed.options("/v1/predict", headers={"Origin": "https://evil.example",
                                              "Access-Control-Request-Method": "POST"})
    _check(r, ErrorCode.CORS_REFUSED)
    assert "connection" not in r.headers and r.headers["access-control-allow-methods"]


def _asgi(mw, scope: dict) -> tuple[int, dict, bytes]:
    sent: list = []

    async def send(msg):
        sent.append(msg)

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    asyncio.run(mw(scope, receive, send))
    head = sent[0]
    return (head["status"], {k.decode(): v.decode() for k, v in head["headers"]},
            b"".join(m.get("body", b"") for m in sent[1:]))


def test_the_unhandled_500_and_the_busy_503_are_route_shaped():
    """The 500 of a bug (:class:`~emovox.api.requestid.UnhandledErrors`) and the 503 of a
    full upload queue (:class:`~emovox.api.middleware.UploadSlots`): the routes' body; the
    503 closes only a connection whose body it leaves unread."""
    from emovox.api.middleware import UploadSlots
    from emovox.api.requestid import UnhandledErrors

    async def broken(scope, receive, send):
        raise RuntimeError("a bug")

    status, headers, body = _asgi(UnhandledErrors(broken), {"type": "http", "method": "GET",
                                                            "path": "/x", "headers": []})
    assert_route_shape(status, headers, body, ErrorCode.INTERNAL_ERROR)
    assert "connection" not in headers

    async def never(scope, receive, send):  # never reached: the queue is full
        raise AssertionError

    post = {"type": "http", "method": "POST", "path": "/v1/predict"}
    for given, close in (([(b"content-length", b"5000")], True),
                         ([(b"transfer-encoding", b"chunked")], True),
                         ([(b"content-length", b"0")], False), ([], False)):
        busy = UploadSlots(never, slots=1, paths=("/v1/predict",), max_waiting=0)
        busy.slots = asyncio.Semaphore(0)  # every slot taken
        status, headers, body = _asgi(busy, {**post, "headers": given})
        assert_route_shape(status, headers, body, ErrorCode.SERVER_BUSY)
        assert headers["retry-after"] and ("connection" in headers) is close, given


def test_one_function_builds_every_error_body():
    """No module of the API writes an error body itself (``json.dumps(...)``) or sets
    ``Connection: close`` by hand: :func:`~emovox.api.errors.send_error` sends
    :func:`~emovox.api.errors.code_response`'s."""
    for path in sorted(API.glob("*.py")):
        text = path.read_text(encoding="utf-8")
        assert "json.dumps(" not in text, path.name
        assert 'b"connection"' not in text, path.name
        if path.name not in ("errors.py", "server.py"):  # server.py: /health's Health 503
            assert "JSONResponse(" not in text, path.name


def test_send_error_sends_code_response_with_its_headers():
    from emovox.api.errors import send_error

    sent: list = []

    async def send(msg):
        sent.append(msg)

    asyncio.run(send_error(send, ErrorCode.SERVER_BUSY, "büsy", {"retry-after": "10"},
                           close=True))
    made = code_response(ErrorCode.SERVER_BUSY, "büsy")
    assert sent[0]["status"] == 503 and sent[1]["body"] == bytes(made.body)
    assert sent[0]["headers"] == [*made.raw_headers, (b"retry-after", b"10"),
                                  (b"connection", b"close")]


# ------------------------------------------------------- 3. one pass-through of other scopes


def test_the_request_id_layers_share_one_pass_through_of_other_scopes():
    """:class:`RequestId` and :class:`UnhandledErrors` repeated the same seven lines (the
    duplicate-code checker's block): one base class now; a lifespan scope still passes both
    untouched, without an id."""
    from emovox.api.requestid import RequestId, UnhandledErrors, current_request_id

    assert RequestId.__call__ is UnhandledErrors.__call__
    seen: list = []

    async def app(scope, receive, send):
        seen.append((scope["type"], current_request_id.get()))

    asyncio.run(RequestId(UnhandledErrors(app))({"type": "lifespan"}, None, None))
    assert seen == [("lifespan", None)]
