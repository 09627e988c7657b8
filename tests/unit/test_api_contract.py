"""The REST API's contract as an integrator reads it (review of stop 51), without a model:
one documented list of error codes, each route's error responses true for that route, the
OpenAPI types as tight as the shipped JSON Schemas, damaged files told from unsupported ones,
ffmpeg's noise kept out of the details, and one list of upload formats."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

pytest.importorskip("fastapi")

from emovox.audio.ffmpeg import says_damaged  # noqa: E402
from emovox.audio.header import _undecodable  # noqa: E402
from emovox.audio.sniff import Source  # noqa: E402
from emovox.errors import (  # noqa: E402
    ConfigError,
    DamagedAudio,
    DamagedContainer,
    UnsupportedCodec,
)
from emovox.serving.errcodes import ErrorCode, http_status  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "emovox"
#: the calls that put an error code into a body (their str-constant arguments are codes)
FACTORIES = {"ApiError", "error_response", "send_error", "_app_or_error", "code_response"}
CODE = re.compile(r"^[a-z]+(?:_[a-z]+)*$")


def _is_code(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and bool(
        CODE.match(node.value))


def _is_status(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) is int and 400 <= node.value < 600


def _call_name(call: ast.Call) -> str | None:
    f = call.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None


def codes_sent(path: Path) -> tuple[set[str], set[str]]:
    """``(code literals, ErrorCode member names)`` a module puts in error bodies: string
    constants passed to :data:`FACTORIES`, paired with a status (``return 413, "code"``,
    ``{404: "not_found"}``) or the key ``"error"`` (``{"error": "internal_error", ...}``),
    the default of ``.get`` on such a status map; and every ``ErrorCode.NAME``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    literals: set[str] = set()
    members: set[str] = set()
    status_maps: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict) and any(
                _is_status(k) for k in node.value.keys if k is not None):
            status_maps |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _call_name(node)
            if name in FACTORIES:
                literals |= {a.value for a in node.args if _is_code(a)}
                literals |= {k.value.value for k in node.keywords
                             if k.arg == "code" and _is_code(k.value)}
            if (name == "get" and len(node.args) == 2 and _is_code(node.args[1])
                    and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name)
                    and node.func.value.id in status_maps):
                literals.add(node.args[1].value)
        elif isinstance(node, ast.Tuple) and len(node.elts) == 2:
            a, b = node.elts
            if _is_status(a) and _is_code(b):
                literals.add(b.value)
        elif isinstance(node, ast.Dict):  # {404: "not_found"}, {"error": "internal_error"}
            literals |= {v.value for k, v in zip(node.keys, node.values, strict=True)
                         if k is not None and _is_code(v) and (
                             _is_status(k) or (isinstance(k, ast.Constant) and k.value == "error"))}
        elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
              and node.value.id == "ErrorCode" and node.attr.isupper()):
            members.add(node.attr)
    return literals, members


def _producers() -> list[Path]:
    return sorted([*(SRC / "api").glob("*.py"), *(SRC / "serving").glob("*.py")])


def test_every_error_code_the_sources_send_is_documented():
    """A new code in an error body, anywhere in the API or serving, fails here until it is
    in :class:`ErrorCode` (so in the OpenAPI enum and the README's table)."""
    known = {c.value for c in ErrorCode}
    seen: dict[str, str] = {}
    for path in _producers():
        literals, members = codes_sent(path)
        for code in literals:
            seen.setdefault(code, path.name)
        for name in members:
            assert name in ErrorCode.__members__, f"{path.name}: ErrorCode.{name}"
            seen.setdefault(ErrorCode[name].value, path.name)
    # the scan is not vacuous: it finds the codes of the middleware and the server
    assert {"unauthorized", "server_busy", "shutting_down", "upload_stalled", "not_found",
            "method_not_allowed", "http_error", "model_unavailable", "incomplete_upload",
            "unsupported_media_type", "client_closed_request", "upload_too_large"} <= set(seen)
    undocumented = {code: where for code, where in seen.items() if code not in known}
    assert not undocumented, f"error codes missing from ErrorCode: {undocumented}"


def test_every_documented_code_is_sent_somewhere():
    sent: set[str] = set()
    for path in _producers():
        if path.name in ("schemas.py", "docs.py"):  # documentation, not answers
            continue
        literals, members = codes_sent(path)
        sent |= literals | {ErrorCode[m].value for m in members}
    assert {c.value for c in ErrorCode} <= sent, {c.value for c in ErrorCode} - sent


def test_the_api_sends_its_codes_through_the_enum():
    """The enum is the source of the codes: no module of the API writes one as a string
    (handlers, middleware, server and windows did, so only this scan kept them listed), and
    a string that is no code is refused when the error is made."""
    from emovox.api.errors import ApiError, error_response

    for path in sorted((SRC / "api").glob("*.py")):
        literals, _ = codes_sent(path)
        assert not literals, f"{path.name} writes codes as strings: {sorted(literals)}"
    with pytest.raises(ValueError):
        ApiError(422, "invalid_reqest", "x")
    with pytest.raises(ValueError):
        error_response(400, "no_such_code", "x")
    assert ApiError.of(ErrorCode.BAD_AUDIO, "x").status == 422


def test_each_code_has_a_status_a_meaning_and_advice():
    assert len({c.value for c in ErrorCode}) == len(ErrorCode)
    for code in ErrorCode:
        assert CODE.match(code.value) and 400 <= code.status < 600
        assert code.meaning and code.action and "\n" not in code.meaning
        assert code == code.value and str(code) == code.value  # a str in JSON and f-strings
    assert ErrorCode("bad_audio").status == 422 and ErrorCode.NOT_AUDIO.status == 415


# ------------------------------------------------------------------ damaged vs unsupported

#: the first bytes of a file of each kind (the sniffer's kind is all the verdict reads)
HEADS = {"wav": b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(32),
         "m4a": b"\x00\x00\x00\x20ftypM4A " + bytes(32), "flac": b"fLaC" + bytes(40),
         "ogg": b"OggS" + bytes(40), "webm": b"\x1a\x45\xdf\xa3" + bytes(40),
         "xi": b"Extended Instrument: " + bytes(40)}
#: ffmpeg's words (as header.py keeps them: clean_stderr) for stop 51's review files, and for
#: the files cut short its review found still 415
DAMAGED = {
    "fmt.wav": "[wav] Invalid sample rate: -1; Invalid data found when processing input",
    "nodata.wav": "[wav] no 'data' tag found; Invalid data found when processing input",
    "zero.wav": "[pcm_s16le] Decoder requires channel count but channels not set; Error "
                "while opening decoder for input stream #0:0 : Invalid argument",
    "rate.wav": "[wav] Invalid sample rate: -1; Invalid data found when processing input",
    "half.m4a": "[mov,mp4,m4a,3gp,3g2,mj2] moov atom not found; half.m4a: Invalid data found "
                "when processing input",
    "cut50.flac": "Input/output error",
    "cut200.flac": "Input/output error",
    "cut1000.ogg": "End of file",
    "cut.webm": "[matroska,webm] File ended prematurely; Input/output error",
}


def _source(name: str) -> Source:
    return Source(HEADS[name.rsplit(".", 1)[1]], name)


@pytest.mark.parametrize("name", sorted(DAMAGED))
def test_a_damaged_file_of_a_known_format_is_422_bad_audio(name):
    """Decided where ffmpeg's words are a value of their own (header.py), as a typed error:
    a FLAC or an Ogg cut short ("Input/output error", "End of file") was 415, missing from
    a list of damage phrases matched against the formatted message (review, stop 51)."""
    exc = _undecodable(_source(name), ValueError("Malformed"), DAMAGED[name])
    assert isinstance(exc, DamagedContainer) and isinstance(exc, UnsupportedCodec)
    assert name in str(exc) and exc.detail == DAMAGED[name]
    assert http_status(exc) == (422, "bad_audio")


def test_what_cannot_be_decoded_here_stays_415_unsupported_codec():
    wav, xi = _source("x.wav"), _source("x.xi")
    for exc in (_undecodable(wav, ValueError("Malformed 'fmt ' chunk"),  # an unknown tag
                             "Decoder (codec none) not found for input stream #0:0"),
                _undecodable(wav, ValueError("Malformed 'fmt ' chunk"), None),  # no ffmpeg
                _undecodable(_source("x.m4a"), None, None),
                _undecodable(wav, None, "could not run ffmpeg ([Errno 13] Permission denied)"),
                _undecodable(xi, ValueError("x"), "Invalid data found when processing input"),
                _undecodable(Source(b"\xff\xfb" + bytes(40), "x.mp3"), None,  # a sync
                             "[mp3] Invalid frame size (1880); Invalid argument"),  # by chance
                UnsupportedCodec("x")):
        assert type(exc) is UnsupportedCodec, exc  # ffmpeg has no say on XI: libsndfile's
        assert http_status(exc) == (415, "unsupported_codec"), exc
    tagged = _undecodable(Source(b"ID3\x04" + bytes(40), "x.mp3"), None,
                          "[mp3] Invalid frame size (1880); Invalid argument")
    assert isinstance(tagged, DamagedContainer)  # an ID3 tag says it is an MP3
    assert http_status(DamagedAudio("x")) == (422, "bad_audio")
    assert http_status(ConfigError("x")) == (422, "invalid_request")  # not "bad_request"


@pytest.mark.parametrize("name", ["Decoder (codec none) not found.ogg", "unknown codec.ogg",
                                  "ffmpeg: invalid header.ogg"])
def test_the_verdict_does_not_depend_on_the_files_name(name, tmp_path):
    """The verdict was read back out of the message, so the file's name could decide it: a
    file named ``ffmpeg: invalid header.wav`` refused on a server without ffmpeg was 422."""
    plain = _source("clip.ogg")
    assert says_damaged(plain, "End of file")
    assert says_damaged(_source(name), f"{name}: End of file")
    path = tmp_path / name.replace(":", "_")  # a path, as ffmpeg names it: file:/...
    path.write_bytes(HEADS["ogg"])
    src = Source(path)
    assert says_damaged(src, f"file:{path.resolve()}: End of file")
    assert not says_damaged(src, f"file:{path.resolve()}: Decoder (codec x) not found")
    no_ffmpeg = UnsupportedCodec(f"{name}: looks like Ogg (Vorbis/Opus), which cannot be "
                                 "decoded without ffmpeg (libsndfile: malformed). To read it, "
                                 "install ffmpeg")
    assert http_status(no_ffmpeg) == (415, "unsupported_codec")


def test_ffmpegs_noise_is_kept_out_of_its_message():
    from emovox.audio.ffmpeg import clean_stderr

    raw = ("[pcm_s16le @ 0x555e518ebac0] Too many channels: 65535\n"
           "    Last message repeated 1 times\n"
           "[pcm_s16le @ 0x555e518fc200] Too many channels: 65535\n"
           "pipe:0: Cannot allocate memory\n"
           "pipe:0: Invalid data found when processing input\n\n")
    assert clean_stderr(raw) == ["[pcm_s16le] Too many channels: 65535",
                                 "Invalid data found when processing input"]
    assert clean_stderr("Last message repeated 3 times\npipe:0: Cannot allocate memory") == []


# ------------------------------------------------------------------ a file sent as a field


def test_a_large_part_without_filename_says_how_to_send_a_file():
    from emovox.api.errors import form_limit_error

    r = form_limit_error("Part exceeded maximum size of 64KB.")
    assert r is not None and r.status_code == 422
    body = r.body.decode()
    assert '"error":"invalid_request"' in body and "exceeded maximum size" in body
    assert "text field unless" in body and 'filename=\\"...\\"' in body
    assert 'file=@clip.wav' in body and "file=<clip.wav" in body


# ------------------------------------------------------------------ the OpenAPI document


@pytest.fixture(scope="module")
def spec(tmp_path_factory) -> dict:
    from emovox.api.server import create_app

    app = create_app(tmp_path_factory.mktemp("no-model") / "missing")  # no lifespan: no load
    return app.openapi()


def test_error_body_error_is_the_enum(spec):
    schemas = spec["components"]["schemas"]
    prop = schemas["ErrorBody"]["properties"]["error"]
    target = schemas[prop["$ref"].rsplit("/", 1)[1]]
    assert target["enum"] == [c.value for c in ErrorCode]


def _codes_of(description: str) -> set[str]:
    return set(re.findall(r"`([a-z_]+)`", description))


ROUTES = {("get", "/v1/model"): {"unauthorized", "invalid_request", "internal_error",
                                  "model_unavailable"}}


def test_each_routes_error_responses_are_its_own(spec):
    model_422 = spec["paths"]["/v1/model"]["get"]["responses"]["422"]["description"]
    assert "audio" not in model_422 and "reads none" in model_422  # stop 51's review
    assert _codes_of(model_422) == {"invalid_request"}
    from emovox.api.schemas import ROUTE_ERRORS

    for (method, path), entries in ROUTE_ERRORS.items():
        responses = spec["paths"][path][method]["responses"]
        codes = [e[0] if isinstance(e, tuple) else e for e in entries]
        errors = {k: v for k, v in responses.items() if k[0] in "45"}
        assert set(errors) == {str(c.status) for c in codes}, path
        for status, doc in errors.items():
            assert _codes_of(doc["description"]) == {c.value for c in codes
                                                     if str(c.status) == status}, (path, status)
            assert doc["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
    model = {e[0] if isinstance(e, tuple) else e for e in ROUTE_ERRORS[("get", "/v1/model")]}
    assert {c.value for c in model} == ROUTES[("get", "/v1/model")]
    timeline = ROUTE_ERRORS[("post", "/v1/timeline")]
    assert ErrorCode.TOO_FEW_REFERENCES not in timeline  # it takes no references


def test_the_formats_are_one_list(spec):
    described = spec["info"]["description"]
    assert "opus" in described and "webm" in described  # stop 51's review: left out
    from emovox.api.schemas import UPLOAD_FORMATS

    want = ", ".join(UPLOAD_FORMATS)
    assert "opus" in want and "webm" in want
    assert f"({want};" in spec["info"]["description"]
    for body in ("Body_predict_v1_predict_post", "Body_timeline_v1_timeline_post"):
        assert f"({want})" in spec["components"]["schemas"][body]["properties"]["file"][
            "description"]


def test_the_document_is_built_from_the_routes_not_rewritten(tmp_path):
    """The docs hook rewrote the built document: every list of formats in any description
    by a regular expression, and each route's errors patched in afterwards (review, stop
    51). FastAPI's own document of the routes has each route's errors now, and text that
    names formats for another reason is left as it is."""
    from fastapi.openapi.utils import get_openapi

    from emovox.api.schemas import ROUTE_ERRORS
    from emovox.api.server import create_app

    app = create_app(tmp_path / "missing")

    @app.get("/other", description="converts wav, flac to mp3")
    async def other() -> None:
        return None

    built = get_openapi(title=app.title, version=app.version, routes=app.routes)
    for (method, path), entries in ROUTE_ERRORS.items():
        codes = [e[0] if isinstance(e, tuple) else e for e in entries]
        declared = {k: v for k, v in built["paths"][path][method]["responses"].items()
                    if k[0] in "45"}
        assert set(declared) == {str(c.status) for c in codes}, path
        for status, doc in declared.items():
            assert _codes_of(doc["description"]) == {c.value for c in codes
                                                     if str(c.status) == status}, (path, status)
    assert app.openapi()["paths"]["/other"]["get"]["description"] == "converts wav, flac to mp3"


def _enum_of(spec: dict, node: dict) -> list | None:
    """The enum a property allows (its ``null`` dropped), following ``$ref`` and ``anyOf``."""
    schemas = spec["components"]["schemas"]
    if "$ref" in node:
        return _enum_of(spec, schemas[node["$ref"].rsplit("/", 1)[1]])
    for alt in node.get("anyOf", []):
        if alt.get("type") != "null":
            return _enum_of(spec, alt)
    if "enum" in node:
        return [v for v in node["enum"] if v is not None]
    if "const" in node:
        return [node["const"]]
    return None


def _keys_of(spec: dict, node: dict) -> list | None:
    for alt in node.get("anyOf", node.get("oneOf", [node])):
        if alt.get("type") == "object":
            return _enum_of(spec, alt.get("propertyNames", {}))
    return None


FIELDS = {  # (OpenAPI model, JSON Schema file and $defs entry): fields whose values agree
    ("PredictResponse", "prediction", "prediction"): ("status", "reason", "label",
                                                      "confidence_level", "schema_version"),
    ("Evidence", "prediction", "evidence"): ("label",),
    ("TimelineSummary", "timeline", "summary"): ("status", "dominant"),
    ("Segment", "timeline", "segment"): ("kind", "label", "status"),
}
KEYED = {
    ("PredictResponse", "prediction", "prediction"): ("probabilities",),
    ("TimelineSummary", "timeline", "summary"): ("share", "mean_probabilities"),
    ("Segment", "timeline", "segment"): ("probabilities",),
    ("AdaptationRecord", "prediction", "adaptation"): ("prior",),
}


def test_the_openapi_types_are_the_json_schemas(spec):
    """label, reason, dominant, probabilities... were plain strings and string-keyed maps in
    the OpenAPI document while the shipped JSON Schemas name the emotions and reasons."""
    from emovox.labels import LABELS
    from emovox.serving.schema import load_schema

    schemas = spec["components"]["schemas"]
    for (model, kind, part), fields in FIELDS.items():
        js = load_schema(kind)["$defs"][part]["properties"]
        for f in fields:
            ours, theirs = _enum_of(spec, schemas[model]["properties"][f]), _enum_of(spec, js[f])
            assert ours is not None and ours == theirs, (model, f, ours, theirs)
    for (model, kind, part), fields in KEYED.items():
        js = load_schema(kind)["$defs"][part]["properties"]
        for f in fields:
            ours = _keys_of(spec, schemas[model]["properties"][f])
            assert ours == list(LABELS) == _keys_of(spec, js[f]), (model, f)
    # Segment.status is always sent (null for a gap): required, and nullable
    seg = schemas["Segment"]
    assert "status" in seg["required"]
    assert {"type": "null"} in seg["properties"]["status"]["anyOf"]
    reason = _enum_of(spec, schemas["PredictResponse"]["properties"]["reason"])
    assert reason == ["silence", "steady_sound", "pure_tone", "not_voiced", "too_short"]


def test_the_readme_tables_every_code():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("#### Error codes"):]
    section = section[:section.index("\n## ")]
    rows = dict(re.findall(r"^\| `([a-z_]+)` \| (\d{3}) \|", section, re.M))
    assert rows == {c.value: str(c.status) for c in ErrorCode}
