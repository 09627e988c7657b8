"""``trained_on.clip_digests``: which recordings a model was trained on, by content (stop 35),
and a model.json read bounded."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from emovox.artifact import BUNDLED_MODELS, read_meta, resolve_model_path
from emovox.artifact.clips import (
    CLIP_DIGESTS,
    clip_digests,
    heard_clips,
    public_trained_on,
    trained_digests,
)
from emovox.artifact.meta import ArtifactError


def _files(tmp_path: Path, n: int) -> list[Path]:
    out = []
    for i in range(n):
        p = tmp_path / f"clip{i}.wav"
        p.write_bytes(f"bytes of clip {i}".encode())
        out.append(p)
    return out


def test_digests_round_trip_and_find_the_same_bytes_under_any_name(tmp_path):
    files = _files(tmp_path, 5)
    ids = [hashlib.sha256(p.read_bytes()).hexdigest() for p in files[:3]]
    rec = clip_digests([*ids, ids[0]])  # a clip twice is one digest
    text = rec[CLIP_DIGESTS]["digests"]
    assert len(text) == 3 * 12 and rec[CLIP_DIGESTS]["algorithm"] == "sha256"
    assert trained_digests(rec) == {i[:12] for i in ids}
    copy = tmp_path / "sub" / "renamed.flac"
    copy.parent.mkdir()
    shutil.copy(files[1], copy)
    assert heard_clips(rec, [files[3], copy, files[0], tmp_path / "missing.wav"]) == [1, 2]
    assert heard_clips({"clips": 3}, files) is None  # a model that records none
    assert public_trained_on({"clips": 3, **rec}) == {"clips": 3}


@pytest.mark.parametrize("bad", [
    "not a dict", {"algorithm": "md5", "hex": 12, "digests": "a" * 12},
    {"algorithm": "sha256", "hex": 12, "digests": "a" * 13},
    {"algorithm": "sha256", "hex": 12, "digests": "G" * 12},
    {"algorithm": "sha256", "hex": 4, "digests": "a" * 12},
    {"algorithm": "sha256", "hex": "12", "digests": "a" * 12},
])
def test_malformed_digests_are_ignored_with_a_warning(bad, caplog):
    with caplog.at_level("WARNING"):
        assert trained_digests({CLIP_DIGESTS: bad}) is None
    assert "malformed" in caplog.text


@pytest.mark.parametrize("name", sorted(BUNDLED_MODELS))
def test_every_bundled_model_records_one_digest_per_training_clip(name):
    meta = read_meta(resolve_model_path(name))
    assert len(trained_digests(meta.trained_on)) == meta.trained_on["clips"] > 1000


def test_the_api_card_leaves_the_digests_out():
    from emovox.serving.predictor import Predictor
    from emovox.serving.service import model_card

    doc = model_card(Predictor.from_artifact(resolve_model_path("default")))
    assert doc["trained_on"]["clips"] == 2027 and CLIP_DIGESTS not in json.dumps(doc)


def test_a_huge_model_json_is_refused_unread(tmp_path, monkeypatch):
    from emovox.artifact import io

    folder = tmp_path / "m"
    shutil.copytree(resolve_model_path("ravdess"), folder)
    monkeypatch.setattr(io, "MAX_META_BYTES", 1000)
    with pytest.raises(ArtifactError, match=r"model.json: larger than 1,000 bytes: not a "
                       "model.json this package wrote"):
        read_meta(folder)


def test_a_calibration_run_on_other_own_data_of_the_same_name_is_said(tmp_path, caplog):
    """The recipe check compares own data by name (`csv=own.csv`): a run on another
    own.csv passed. Its clips are now compared with the model's by content (stop 35)."""
    from types import SimpleNamespace

    from emovox.experiment.recipe import warn_other_clips

    files = _files(tmp_path, 4)
    preds = tmp_path / "predictions.csv"
    rows = [f"0,{files[0]},csv:a,csv", f"0,{files[1]},csv:a,csv", f"0,{files[2]},csv:b,csv",
            f"0,{files[3]},ravdess:01,ravdess", f"0,{tmp_path / 'gone.wav'},csv:b,csv"]
    preds.write_text("fold,path,speaker,corpus\n" + "\n".join(rows) + "\n")
    cv = SimpleNamespace(predictions=preds)
    ids = [hashlib.sha256(p.read_bytes()).hexdigest() for p in files[:2]]
    with caplog.at_level("WARNING"):
        assert warn_other_clips(Path("run"), cv, ids) == 1  # files[2]; ravdess, gone: not
    assert "run tested 1 clip(s) that the model was not trained on (of 3)" in caplog.text
    caplog.clear()  # a corpus the model was trained on counts too: a run on other actors of
    with caplog.at_level("WARNING"):  # RAVDESS was attached silently (QA, stop 40)
        assert warn_other_clips(Path("run"), cv, ids, {"ravdess", "emovo"}) == 2
    assert "run tested 2 clip(s) that the model was not trained on (of 4)" in caplog.text
    caplog.clear()
    assert warn_other_clips(Path("run"), cv, [*ids, hashlib.sha256(
        files[2].read_bytes()).hexdigest()[:12]]) == 0 and not caplog.text
    assert warn_other_clips(Path("run"), cv, None) == 0  # a model without digests


def _teachers(*trained_on: dict) -> object:
    from emovox.experiment.distil import TeacherModels

    return TeacherModels([object()] * len(trained_on), list(trained_on))


def test_a_distilled_model_heard_what_its_teachers_heard(tmp_path):
    """``train --teacher`` kept only the teachers' paths: a student trained on RAVDESS,
    taught by a model that heard EMOVO, was called speaker-independent on EMOVO and on the
    teacher's own clips (research audit, stop 51)."""
    from emovox.artifact.clips import TEACHER_DIGESTS
    from emovox.experiment.distil import teachers_heard

    files = _files(tmp_path, 4)
    ids = [hashlib.sha256(p.read_bytes()).hexdigest() for p in files]
    own = {"speakers": ["ravdess:01"], **clip_digests(ids[:1])}
    emovo = {"speakers": ["emovo:f1", "emovo:m1"], **clip_digests(ids[1:3])}
    # a teacher distilled in turn passes on what its own teachers heard
    taught = {"speakers": ["ravdess:02"], **clip_digests(ids[:1]),
              "teacher_speakers": ["urdu:SM1"],
              TEACHER_DIGESTS: clip_digests(ids[3:])[CLIP_DIGESTS]}
    heard = teachers_heard(_teachers(emovo, taught), ["t1", "t2"])
    assert heard["teacher_speakers"] == ["emovo:f1", "emovo:m1", "ravdess:02", "urdu:SM1"]
    assert "teachers_unlisted" not in heard
    student = {**own, **heard}
    assert heard_clips(student, files) == [0, 1, 2, 3]
    assert heard_clips(own, files) == [0]  # without the teachers: only its own clip
    assert TEACHER_DIGESTS not in public_trained_on(student)
    # a teacher that lists no speakers or no digests: what the student heard is unknown
    bare = teachers_heard(_teachers(emovo, {"clips": 3}, {"speakers": ["x:1"]}), ["a", "b", "c"])
    assert bare["teachers_unlisted"] == ["b", "c"]


def test_teachers_digests_count_alone_and_a_malformed_record_is_unknown(tmp_path):
    """Review of stop 51: teacher digests were ignored when the model had none of its own,
    and a malformed teacher record read as "the teachers heard nothing"."""
    from types import SimpleNamespace

    from emovox.artifact.clips import TEACHER_DIGESTS
    from emovox.cli.truth import truth_report
    from emovox.experiment.crosscorpus import _speakers_unheard
    from emovox.experiment.distil import teachers_heard

    files = _files(tmp_path, 2)
    ids = [hashlib.sha256(p.read_bytes()).hexdigest() for p in files]
    taught = {TEACHER_DIGESTS: clip_digests(ids[1:])[CLIP_DIGESTS]}
    assert heard_clips(taught, files) == [1]
    bad = {**clip_digests(ids[:1]), TEACHER_DIGESTS: {"algorithm": "md5"}}
    assert heard_clips(bad, files) is None
    assert teachers_heard(_teachers({"speakers": ["a:1"], **bad}), ["t"])[
        "teachers_unlisted"] == ["t"]
    # an ensemble of members on other data lists no speakers of its own: its teachers'
    # speakers do not make it speaker-independent on anyone else
    utt = SimpleNamespace(speaker="ravdess:01")
    for on in ({"teacher_speakers": ["emovo:f1"]}, {}):
        model = SimpleNamespace(artifact_meta=SimpleNamespace(trained_on=on))
        assert _speakers_unheard(model, [utt]) == (False, [])
    model = SimpleNamespace(artifact_meta=SimpleNamespace(trained_on={
        "speakers": ["ravdess:02"], "teacher_speakers": ["ravdess:01"]}))
    assert _speakers_unheard(model, [utt]) == (False, ["ravdess:01"])
    # predict --truth names the teachers' voices too
    clip = SimpleNamespace(path="03-01-05-01-01-01-01.wav", prediction=None, error="x")
    report = truth_report([clip], {"speakers": ["ravdess:02"],
                                   "teacher_speakers": ["ravdess:01"]})
    assert report.training_speakers == ["ravdess:01"] and report.speakers_known
