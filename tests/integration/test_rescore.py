"""``emovox rescore``: a CV run's saved fold models read its test clips again at several
playback speeds; fuse, merge and calibrate keep the speeds (stop 46)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from cli_helpers import invoke, text

from emovox.errors import ConfigError
from emovox.experiment.rundir import Prediction, Predictions, read_run, write_predictions
from emovox.labels import LABELS
from run_variants import another_run
from signals import SR, voice, write_clip

pytestmark = pytest.mark.slow  # the bundled default reads each clip several times

SPEEDS = (0.9, 1.0, 1.1)


def _reader(model: Path, speeds: tuple[float, ...] = ()):
    import dataclasses

    from emovox.serving.predictor import Predictor

    p = Predictor.from_artifact(model, backend="torch")
    return dataclasses.replace(p, preprocess=p.preprocess.replace(speeds=speeds))


@pytest.fixture(scope="module")
def fold_model(tmp_path_factory) -> Path:
    """The bundled default at temperature 1, as a fold model (the tiny test CRNN answers
    the same whatever the speed: no test of speeds could fail with it)."""
    from emovox.artifact import attach_inference
    from emovox.serving.folders import model_folder

    out = tmp_path_factory.mktemp("fold") / "model"
    shutil.copytree(model_folder(None), out)
    attach_inference(out, temperature=1.0)
    return out


@pytest.fixture(scope="module")
def made_run(fold_model, tmp_path_factory) -> Path:
    """A one-fold CV run: 4 clips, each stored as ``fold_model`` answers it read once, that
    model saved in ``models/fold0``, and one unreadable clip."""
    from emovox.audio import load_audio
    from emovox.metrics import compute_metrics

    tmp_path = tmp_path_factory.mktemp("cv")
    run = tmp_path / "run"
    shutil.copytree(fold_model, run / "models" / "fold0")
    once = _reader(fold_model)
    assert list(once.labels) == list(LABELS)
    rows = []
    for i, lab in enumerate(LABELS[2:6]):
        clip = write_clip(tmp_path / "clips" / f"c{i}.wav", voice(1.2, f0=120.0 + 50 * i))
        p = once.wave_probabilities(load_audio(clip, sr=SR, trim=False).wave, SR)
        rows.append(Prediction(str(clip), f"ravdess:{i % 2 + 1:02d}", lab,
                               LABELS[int(np.argmax(p))], tuple(map(float, p)), 0, "ravdess"))
    rows.append(Prediction(str(tmp_path / "bad.wav"), "ravdess:01", "sad", "", None, 0,
                           "ravdess", "not audio"))
    write_predictions(run / "predictions.csv", Predictions(list(LABELS), rows))
    summary = {k: {"mean": 12.5, "std": 0.0} for k in ("ua", "wa", "macro_f1", "weighted_f1")}
    y = np.array([LABELS.index(r.true) for r in rows[:-1]])
    pooled = compute_metrics(y, np.array([LABELS.index(r.pred) for r in rows[:-1]]),
                             list(LABELS)).to_dict()
    (run / "metrics.json").write_text(json.dumps({
        "model": _name(fold_model), "protocol": "emobox", "speaker_independent": True,
        "adapt": "none",
        "summary": summary, "pooled": pooled, "worst_class": {"label": "sad", "recall": 0.0},
        "folds": [{"index": 0, "fit_seconds": 1.0, "n_params": 10, "val_ua": 50.0}]}))
    (run / "config.yaml").write_text(yaml.safe_dump({"model": {"name": _name(fold_model)}}))
    return run


@pytest.fixture
def cv_run(made_run, tmp_path) -> Path:
    """A copy of :func:`made_run` of the test's own (its clips stay where they are)."""
    shutil.copytree(made_run, tmp_path / "run")
    return tmp_path / "run"


@pytest.fixture(scope="module")
def tta(made_run, tmp_path_factory) -> Path:
    """:func:`made_run` rescored at :data:`SPEEDS` by the command."""
    out = tmp_path_factory.mktemp("tta") / "tta"
    r = invoke(["rescore", str(made_run), "--out", str(out)])
    assert r.exit_code == 0, text(r)
    assert "read at speeds [0.9, 1.0, 1.1]" in text(r)
    return out


def _name(model: Path) -> str:
    return json.loads((model / "model.json").read_text())["name"]


def test_each_clip_is_read_at_every_speed_and_the_speeds_recorded(made_run, tta,
                                                                  fold_model):
    from emovox.audio import load_audio
    from emovox.metrics import compute_metrics

    got = read_run(tta)
    rows = got.predictions.scored()
    assert len(rows) == 4 and len(got.predictions.rows) == 5  # the unreadable clip kept
    singles = [_reader(fold_model, (s,)) for s in SPEEDS]  # the known answer: the mean of
    stored = read_run(made_run).predictions.scored()  # each speed read alone (T = 1)
    for row, before in zip(rows, stored, strict=True):
        wave = load_audio(row.path, sr=SR, trim=False).wave
        want = np.mean([m.wave_probabilities(wave, SR) for m in singles], axis=0)
        np.testing.assert_allclose(row.proba, want, atol=2e-6)
        assert np.abs(np.subtract(row.proba, before.proba)).max() > 0.005  # not read once
    m = got.metrics
    assert m["speeds"] == list(SPEEDS) and m["rescored_from"] == str(made_run)
    y = np.array([LABELS.index(x.true) for x in rows])
    ua = compute_metrics(y, np.array([np.argmax(x.proba) for x in rows]), list(LABELS)).ua
    assert m["pooled"]["ua"] == pytest.approx(ua) and m["folds"][0]["val_ua"] == 50.0
    assert (tta / "config.yaml").read_text() == (made_run / "config.yaml").read_text()


def test_rescore_refuses_what_it_cannot_read_honestly(cv_run, tmp_path):
    from emovox.experiment.rescore import rescore_run

    with pytest.raises(ConfigError, match="two or more speeds"):
        rescore_run(cv_run, tmp_path / "o1", speeds=[1.0])
    with pytest.raises(ConfigError, match="up to 5 distinct"):
        rescore_run(cv_run, tmp_path / "o1", speeds=[0.9, 3.0])
    with pytest.raises(ConfigError, match="is the run being rescored"):
        rescore_run(cv_run, cv_run, speeds=SPEEDS)
    other = tmp_path / "other"  # stored answers the saved model does not give
    shutil.copytree(cv_run, other)
    text_ = (other / "predictions.csv").read_text().splitlines()
    cells = text_[1].split(",")
    cells[6:8] = cells[7], cells[6]  # neutral and calm swapped in the first row
    text_[1] = ",".join(cells)
    (other / "predictions.csv").write_text("\n".join(text_) + "\n")
    with pytest.raises(ConfigError, match="fold 0's saved model read once differs"):
        rescore_run(other, tmp_path / "o2", speeds=SPEEDS)
    assert not (tmp_path / "o2").exists()
    shutil.rmtree(other / "models")
    with pytest.raises(ConfigError, match="no saved model for fold 0.*--save-models"):
        rescore_run(other, tmp_path / "o3", speeds=SPEEDS)
    m = json.loads((cv_run / "metrics.json").read_text())
    (cv_run / "metrics.json").write_text(json.dumps({**m, "adapt": "speaker"}))
    with pytest.raises(ConfigError, match="--adapt speaker"):
        rescore_run(cv_run, tmp_path / "o4", speeds=SPEEDS)


def test_fuse_merge_and_calibrate_keep_the_speeds(cv_run, tta, fold_model, tmp_path):
    from emovox.artifact import read_meta
    from emovox.experiment.calibrate import calibrate_bundle
    from emovox.experiment.fuse import fuse_runs, merge_runs
    from emovox.experiment.rescore import rescore_run

    with pytest.raises(ConfigError, match="already read at speeds"):
        rescore_run(tta, tmp_path / "again", speeds=SPEEDS)
    twin = another_run(tta, tmp_path / "twin")  # a copy is refused (stop 53)
    assert fuse_runs([tta, twin], tmp_path / "fused")["speeds"] == list(SPEEDS)
    metrics = json.loads((twin / "metrics.json").read_text())
    (twin / "metrics.json").write_text(json.dumps({**metrics, "speeds": [1.0, 1.2]}))
    with pytest.raises(ConfigError, match="different speeds"):
        merge_runs([tta, twin], tmp_path / "merged")
    with pytest.raises(ConfigError, match=r"read at different speeds \(.*tta: \[0.9, 1.0, "
                       r"1.1\], .*run: once\)"):
        fuse_runs([tta, cv_run], tmp_path / "mixed")
    model = tmp_path / "model"
    shutil.copytree(fold_model, model)
    calibrate_bundle(model, tta)
    meta = read_meta(model)
    assert meta.preprocess.speeds == SPEEDS  # the model reads as its calibration run read
    assert meta.calibration.report["source"] == str(tta / "predictions.csv")
    before = (model / "model.json").read_bytes()
    with pytest.raises(ConfigError, match="different speeds"):
        calibrate_bundle(model, tta, also=[cv_run])
    assert (model / "model.json").read_bytes() == before
    calibrate_bundle(model, cv_run)  # a run read once: the model reads once again
    assert read_meta(model).preprocess.speeds == ()
