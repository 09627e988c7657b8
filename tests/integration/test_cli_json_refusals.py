"""A refusal of the whole command under ``--json``: each file's failure document on stdout,
the same words on stderr, exit 2. A model that cannot be loaded printed nothing on stdout,
where a file that cannot be read is a failure document: a script parsing stdout got a JSON
parse error (review, stop 57). A bad option value blames no file: stderr alone, as for
timeline's --window (re-check, stop 35). Nothing here loads a model: each refusal comes
before one is read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import invoke, ok, text, tone, write_clip

from emovox.serving.schema import validate_document


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_clip(tmp_path_factory.mktemp("refusals") / "clip.wav", tone(1.5))


def _model_args(kind: str, tmp_path: Path) -> tuple[list[str], str]:
    """The options of a refusal ``kind``, and the words its error holds."""
    if kind == "no model folder":
        return ["-m", str(tmp_path / "no" / "such")], "does not exist"
    if kind == "broken model folder":
        broken = tmp_path / "broken"
        broken.mkdir()
        (broken / "model.json").write_text("{not json")
        return ["-m", str(broken)], "model.json: not valid JSON"
    assert kind.startswith("--")
    option, value = kind.split("=")
    return ["-m", "default", option, value], f"{option} must be"


def _refused(res, kind: str, words: str, n: int) -> list[dict]:
    """The failure documents of a refused run: exit 2, stdout JSON (one document for one
    file, an array for several), each document's error the one said on stderr."""
    ok(res, 2)
    doc = json.loads(res.stdout)
    docs = doc if n > 1 else [doc]
    assert isinstance(docs, list) and len(docs) == n, kind
    errors = {d["error"] for d in docs}
    assert len(errors) == 1 and words in errors.pop(), (kind, docs)
    assert docs[0]["error"] in " ".join(res.stderr.split())  # the same words on stderr
    assert "Traceback" not in text(res)
    return docs


MODEL_KINDS = ["no model folder", "broken model folder"]
OPTION_KINDS = ["--max-duration=0", "--max-duration=-3", "--max-duration=nan"]
PREDICT_KINDS = MODEL_KINDS + OPTION_KINDS


@pytest.mark.parametrize("kind", OPTION_KINDS)
def test_predict_json_bad_option_blames_no_file(kind: str, clip: Path,
                                                tmp_path: Path) -> None:
    args, words = _model_args(kind, tmp_path)
    res = invoke(["predict", clip, "--json", *args])
    ok(res, 2)
    assert res.stdout == "" and words in text(res)
    assert "Traceback" not in text(res)


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_predict_json_refusal_prints_a_failure_document_per_file(kind: str, clip: Path,
                                                                 tmp_path: Path) -> None:
    args, words = _model_args(kind, tmp_path)
    one = invoke(["predict", clip, "--json", *args])
    (doc,) = _refused(one, kind, words, 1)
    validate_document(doc, "prediction")
    assert doc["source"] == str(clip)
    gone = tmp_path / "gone.wav"  # a missing file among them: the command's error too
    two = _refused(invoke(["predict", clip, gone, "--json", *args]), kind, words, 2)
    for d in two:
        validate_document(d, "prediction")
    assert [d["source"] for d in two] == [str(clip), str(gone)]
    table = invoke(["predict", clip, *args])  # without --json: nothing on stdout, as before
    ok(table, 2)
    assert table.stdout == "" and words in text(table)


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_timeline_json_refusal_prints_its_failure_document(kind: str, clip: Path,
                                                           tmp_path: Path) -> None:
    """timeline has no --max-duration; a bad --window or --hop is still said on stderr
    alone (no document blames the file: test_timeline_of_a_refused_file)."""
    args, words = _model_args(kind, tmp_path)
    (doc,) = _refused(invoke(["timeline", clip, "--json", *args]), kind, words, 1)
    validate_document(doc, "timeline")  # the timeline schema's failure document
    assert doc["source"] == str(clip)
    csv = invoke(["timeline", clip, "--csv", *args])  # CSV: no document, nothing on stdout
    ok(csv, 2)
    assert csv.stdout == "" and words in text(csv)


@pytest.mark.parametrize("kind", PREDICT_KINDS)
def test_batch_refusal_writes_no_output(kind: str, clip: Path, tmp_path: Path) -> None:
    """batch writes its documents to --out, not stdout: a refused batch writes no --out
    (a row would be taken as the file's answer on resume) and nothing on stdout; stderr
    says why, exit 2."""
    args, words = _model_args(kind, tmp_path)
    out = tmp_path / "rows.jsonl"
    res = invoke(["batch", clip, "--out", out, *args])
    ok(res, 2)
    assert res.stdout == "" and not out.exists()
    assert words.removeprefix("--") in text(res)
