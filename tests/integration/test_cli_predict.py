"""`emovox predict`, `export` and `train` guards end to end through the real CLI (the
model comes from the ``cli_model`` fixture in ``conftest.py``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import (
    ANSI,
    DECODABLE,
    ERRORS,
    NO_SPEECH,
    check_prediction,
    invoke,
    ok,
    predict_json,
    text,
)

from emovox.labels import LABELS
from emovox.serving.schema import validate_document

# the session's cli_model is trained with `emovox train`; some tests read real RAVDESS
pytestmark = pytest.mark.slow

# -- predict -------------------------------------------------------------------------------


def test_predict_real_clips(cli_model, real_clips):
    res = invoke(["predict", *real_clips, "-m", cli_model, "--top", "2"])
    ok(res)
    out = ANSI.sub("", res.stdout)
    for clip in real_clips:
        row = next(line for line in out.splitlines() if clip.name in line)
        assert row.count("%") == 3  # confidence + the top 2
    assert "derived from the class probabilities" in text(res)

    one = invoke(["predict", real_clips[0], "--json", "-m", cli_model])
    ok(one)
    doc = json.loads(one.stdout)
    assert isinstance(doc, dict) and doc["source"] == str(real_clips[0])  # one file: no list
    check_prediction(doc)
    assert "path" not in doc and 3.0 < doc["duration"] < 4.0 and doc["n_windows"] >= 1
    assert 1.0 < doc["speech_seconds"] < doc["duration"]

    both = predict_json(cli_model, real_clips, "--top", "2")
    assert [r["source"] for r in both] == [str(c) for c in real_clips]
    for r in both:
        check_prediction(r)  # --top only shortens the table; JSON has all 8
    ok(invoke(["predict", real_clips[0], "-m", cli_model, "--top", "9"]), 2)


def test_predict_bad_inputs(cli_model, bad_dir, good_clips):
    files = [*sorted(bad_dir.iterdir()), good_clips[0]]
    res = invoke(["predict", *files, "--json", "-m", cli_model])
    ok(res, 1)  # some files failed
    by_name = {Path(r["source"]).name: r for r in json.loads(res.stdout)}
    assert len(by_name) == len(files)
    for name, words in ERRORS.items():
        validate_document(by_name[name], "prediction")
        assert set(by_name[name]) == {"schema_version", "source", "error"}
        assert words in by_name[name]["error"] and name in by_name[name]["error"]
    for name, duration in {**DECODABLE, good_clips[0].name: 0.8}.items():
        r = by_name[name]
        assert r["duration"] == pytest.approx(duration, abs=0.01), name
        if name in NO_SPEECH:
            validate_document(r, "prediction")
            assert r["status"] == "no_speech" and r["reason"] == NO_SPEECH[name], r
            assert r["label"] is None and r["probabilities"] is None
        else:
            check_prediction(r)
    assert "silent" in res.stderr  # the warning names the silent file

    table = invoke(["predict", *files, "-m", cli_model])
    ok(table, 1)
    rows = {line.split("│")[1].strip(): line for line in ANSI.sub("", table.stdout).splitlines()
            if line.count("│") > 2}
    assert "error" in rows["empty.wav"] and "error" in rows["notaudio.wav"]
    assert "no speech" in rows["silent.wav"] and "%" not in rows["silent.wav"]
    assert "error" not in rows["short.wav"] and "no speech" in rows["short.wav"]


def test_predict_backends_agree(cli_model, good_clips, bad_dir):
    files = [*good_clips, bad_dir / "stereo48k.wav", bad_dir / "rate8k.wav"]
    onnx = predict_json(cli_model, files, "--backend", "onnx")
    torch = predict_json(cli_model, files, "--backend", "torch")
    for a, b in zip(onnx, torch, strict=True):
        assert a["source"] == b["source"]
        pa, pb = np.array(list(a["probabilities"].values())), np.array(
            list(b["probabilities"].values()))
        assert np.abs(pa - pb).max() <= 1e-4, a["source"]
        assert a["label"] == b["label"] or abs(a["confidence"] - b["confidence"]) <= 1e-4


def test_predict_backends_agree_real(cli_model, real_clips):
    onnx = predict_json(cli_model, real_clips, "--backend", "onnx")
    torch = predict_json(cli_model, real_clips, "--backend", "torch")
    for a, b in zip(onnx, torch, strict=True):
        for lab in LABELS:
            assert a["probabilities"][lab] == pytest.approx(b["probabilities"][lab], abs=1e-4)


# -- export / train guards -----------------------------------------------------------------


def test_export(cli_model, good_clips, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(cli_model, model)
    (model / "model.onnx").unlink()
    res = invoke(["export", model])
    ok(res)
    assert "wrote" in text(res) and (model / "model.onnx").is_file()
    ok(invoke(["predict", good_clips[0], "-m", model, "--backend", "onnx"]))

    empty = tmp_path / "empty"
    empty.mkdir()
    res = invoke(["export", empty])
    ok(res, 2)
    assert "no model.json" in text(res)


def snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(folder.iterdir())}


def test_train_refuses_existing_folder(cli_model, fake_ravdess, tmp_path):
    before = snapshot(cli_model)
    res = invoke(["train", "--data", fake_ravdess, "--out", cli_model, "-p", "epochs=1"],
                 env={"EMOVOX_CACHE": str(tmp_path / "cache")})
    ok(res, 2)
    assert "already exists" in text(res) and "--force" in text(res)
    assert snapshot(cli_model) == before
    assert not (tmp_path / "cache").exists()  # refused before any feature extraction


@pytest.mark.slow
def test_train_with_channel_augmentation_records_the_recipe(fake_ravdess, tmp_path, monkeypatch):
    """`train --augment 1 --augment-recipe channel` augments the training clips (one variant
    each: the cache gains a second log-mel entry per clip) and the artifact records it."""
    from emovox import augment as aug

    calls: list[int] = []
    real = aug.augment
    monkeypatch.setattr(aug, "augment", lambda w, sr, cfg, rng, **kw: calls.append(1) or real(
        w, sr, cfg, rng, **kw))
    out = tmp_path / "model"
    res = invoke(["train", "--data", fake_ravdess, "--out", out, "-p", "epochs=1",
                  "-p", "n_frames=64", "-j", "1", "--augment", "1", "--augment-recipe",
                  "channel", "--no-onnx"], env={"EMOVOX_CACHE": str(tmp_path / "cache")})
    ok(res)
    assert "trained crnn on 96 clips of 6 speakers" in text(res)
    assert len(calls) == 96  # every training clip once (no validation speakers by default)
    config = json.loads((out / "model.json").read_text())["experiment_config"]
    assert config["augment"]["variants"] == 1 and config["augment"]["p_speed"] == 0.6


@pytest.mark.parametrize(("args", "said"), [
    (["--folds", "7"], "fold indices [7]"),
    (["--protocol", "loco"], "needs at least two corpora"),
])
def test_evaluate_refuses_bad_folds_before_any_feature_extraction(fake_ravdess, tmp_path, args,
                                                                  said):
    """A fold index out of range and a one-corpus loco were refused only after every clip's
    features had been computed (code review, stop 47)."""
    res = invoke(["evaluate", "--data", fake_ravdess, "--model", "prosody_logreg", *args,
                  "--out", tmp_path / "run"], env={"EMOVOX_CACHE": str(tmp_path / "cache")})
    ok(res, 2)
    assert said in text(res)
    assert not (tmp_path / "cache").exists() and not (tmp_path / "run").exists()
