"""Where the commands that write model folders write (audit, stop 56): a run's fold model is
never replaced or recalibrated (rescore refused the run for good after), calibrate follows a
link to a model folder, a full disk is one line (safetensors' error is no OSError; a failed
copy was a Python list), the current folder is refused before any work, and an empty folder
is taken as ``evaluate`` takes one."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from cli_io import invoke
from emovox.config import DataConfig, ExperimentConfig, ModelConfig
from emovox.errors import ConfigError
from emovox.labels import LABELS


def _logreg_model(folder: Path) -> Path:
    from emovox.artifact import save_model
    from emovox.models.classical import logreg

    rng = np.random.default_rng(0)
    m = logreg(n_classes=8).fit(rng.standard_normal((16, 47)), np.arange(16) % 8, [], [])
    return save_model(m, folder, {"model": {"name": "prosody_logreg"}})


def _cv_run(path: Path, model: str = "prosody_logreg") -> Path:
    """A finished CV run of ``model`` that calibrate accepts: metrics.json and 16 rows of
    out-of-fold predictions."""
    from emovox.experiment.rundir import Prediction, Predictions, write_predictions
    from emovox.metrics import compute_metrics

    path.mkdir(parents=True, exist_ok=True)
    summary = {k: {"mean": 50.0, "std": 1.0} for k in ("ua", "wa", "macro_f1", "weighted_f1")}
    pooled = compute_metrics(np.arange(16) % 8, np.arange(16) % 8, list(LABELS)).to_dict()
    (path / "metrics.json").write_text(json.dumps({
        "model": model, "speaker_independent": True, "protocol": "emobox", "summary": summary,
        "pooled": pooled, "worst_class": {"label": "sad", "recall": 1.0}}))
    rows = []
    for i in range(16):
        q = np.full(len(LABELS), 0.05)
        q[i % 8] = 0.65
        rows.append(Prediction(f"/d/c{i}.wav", "ravdess:01", LABELS[i % 8], LABELS[i % 8],
                               tuple(q), 0, "ravdess"))
    write_predictions(path / "predictions.csv", Predictions(list(LABELS), rows))
    return path


def _files(folder: Path) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in sorted(folder.iterdir()) if f.is_file()}


def _no_data(monkeypatch: pytest.MonkeyPatch) -> None:
    """train_bundle fails on reading its data: what is refused before is refused before
    any work."""
    from emovox.experiment import package

    def no_data(_cfg):
        raise ConfigError("data read")

    monkeypatch.setattr(package, "load_dataset", no_data)


def _cfg(tmp_path: Path) -> ExperimentConfig:
    return ExperimentConfig(data=DataConfig(root=str(tmp_path / "corpus")),
                            model=ModelConfig(name="prosody_logreg"))


@pytest.fixture
def run_with_fold(tmp_path: Path) -> tuple[Path, Path]:
    """A run whose models/fold0 is a model folder, saved as the runner saves it: the fold
    model first (the run's files do not exist yet while it works), its files at the end."""
    run = tmp_path / "run"
    fold = _logreg_model(run / "models" / "fold0")
    return _cv_run(run), fold


# -- D5: a run's fold model is no ordinary model folder --------------------------------------


def test_a_runs_fold_model_is_not_replaced_by_train_or_ensemble(tmp_path, monkeypatch,
                                                                 run_with_fold):
    from emovox.artifact import check_replaceable
    from emovox.experiment.package import ensemble_bundle, train_bundle

    run, fold = run_with_fold
    before = _files(fold)
    _no_data(monkeypatch)
    want = r"fold0 is in the models/ folder of the run .*run: its fold models are what"
    with pytest.raises(ConfigError, match=want):
        train_bundle(_cfg(tmp_path), fold, calibrate=run, force=True)
    with pytest.raises(ConfigError, match=want):
        ensemble_bundle([tmp_path / "a", tmp_path / "b"], fold, force=True)
    with pytest.raises(ConfigError, match="models/ folder of the run"):  # nor a new one
        check_replaceable(run / "models" / "fold9", force=False)
    with pytest.raises(ConfigError, match="models/ folder of the run"):  # by another way
        check_replaceable(run / "models" / "x" / ".." / "fold0", force=True)
    assert _files(fold) == before
    assert sorted(p.name for p in (run / "models").iterdir()) == ["fold0"]
    stage = tmp_path / ".run.staging-1-ab"  # a run being written has no run files yet
    assert _logreg_model(stage / "models" / "fold0").is_dir()


def test_calibrate_refuses_a_runs_fold_model_before_the_fit(run_with_fold):
    from emovox.experiment.calibrate import calibrate_bundle

    run, fold = run_with_fold
    before = _files(fold)
    with pytest.raises(ConfigError, match=r"fold0 is a fold model of the run .*run \(in its "
                       r"models/ folder\).*calibrate a copy of it \(cp -r\) instead"):
        calibrate_bundle(fold, run)
    link = run.parent / "link"
    os.symlink(fold, link)
    with pytest.raises(ConfigError, match="is a fold model of the run"):
        calibrate_bundle(link, run)
    assert _files(fold) == before
    copy = run.parent / "copy"  # a copy may be calibrated
    shutil.copytree(fold, copy)
    calibrate_bundle(copy, run)
    assert _files(copy)["model.json"] != before["model.json"]


def test_export_still_rewrites_a_runs_fold_model(tiny_model, tmp_path):
    """Its weights and probabilities stay: export of a fold model is no harm (the check
    that refuses train and calibrate is made before the work, not as a folder moves in)."""
    from emovox.artifact import read_meta
    from emovox.training.export import export_onnx

    fold = tmp_path / "run" / "models" / "fold0"
    shutil.copytree(tiny_model, fold)
    _cv_run(tmp_path / "run", "crnn")
    weights = (fold / "weights.safetensors").read_bytes()
    assert export_onnx(fold) == fold / "model.onnx"
    assert (fold / "weights.safetensors").read_bytes() == weights
    assert read_meta(fold).onnx is not None


# -- D8: calibrate LINK RUN ------------------------------------------------------------------


def test_calibrate_rewrites_the_folder_a_link_points_to(tmp_path):
    """It fitted, then failed "exists and is not an emovox model folder; --force only
    replaces model folders", an option calibrate has not."""
    from emovox.experiment.calibrate import calibrate_bundle

    model, run = _logreg_model(tmp_path / "m"), _cv_run(tmp_path / "run")
    before = _files(model)
    link = tmp_path / "link"
    os.symlink(model, link)
    report = calibrate_bundle(link, run)
    assert report["temperature"] > 0
    assert link.is_symlink() and os.readlink(link) == str(model)
    assert _files(model)["model.json"] != before["model.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "m", "run"]


# -- D9: a full disk is one line -------------------------------------------------------------


def _no_space(*_args, **_kwargs):
    from safetensors import SafetensorError

    raise SafetensorError("No space left on device (os error 28)")


def test_a_weights_file_that_cannot_be_written_is_an_oserror(tiny_model, tmp_path,
                                                             monkeypatch):
    import safetensors.numpy

    from emovox.artifact import read_artifact, update_artifact, write_artifact

    model = tmp_path / "m"
    shutil.copytree(tiny_model, model)
    art = read_artifact(model)
    before = _files(model)
    monkeypatch.setattr(safetensors.numpy, "save_file", _no_space)
    with pytest.raises(OSError, match=r"\[Errno 28\] No space left on device: '.*"
                       r"weights\.safetensors") as info:
        update_artifact(model, art.meta, tensors=art.tensors)
    assert info.value.errno == 28 and "\n" not in str(info.value)
    assert _files(model) == before
    with pytest.raises(OSError, match="No space left on device") as info:
        write_artifact(tmp_path / "new", art.meta, tensors=art.tensors)
    assert info.value.errno == 28
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_calibrate_on_a_full_disk_says_one_line(tiny_model, tmp_path, monkeypatch):
    """A traceback and exit 1 (SafetensorError), or a Python list of failed copies."""
    import safetensors.numpy

    model, run = tmp_path / "m", _cv_run(tmp_path / "run", "crnn")
    shutil.copytree(tiny_model, model)
    before = _files(model)
    with monkeypatch.context() as m:
        m.setattr(safetensors.numpy, "save_file", _no_space)
        res = invoke(["calibrate", model, run])
    said = " ".join(res.output.split())
    assert res.exit_code == 2, res.output
    assert "error: [Errno 28] No space left on device:" in said and "Traceback" not in said
    assert _files(model) == before

    def no_copy(src, dst, **_kwargs):
        raise OSError(28, "No space left on device", str(dst))

    with monkeypatch.context() as m:
        m.setattr(shutil, "copyfile", no_copy)
        res = invoke(["calibrate", model, run])
    said = " ".join(res.output.split())
    assert res.exit_code == 2, res.output
    assert "error: [Errno 28] cannot copy" in said and "No space left on device (and" in said
    assert "[(" not in said
    assert _files(model) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m", "run"]


def test_export_on_a_full_disk_says_one_line(tiny_model, tmp_path, monkeypatch):
    from emovox.training.export import export_onnx

    model = tmp_path / "m"
    shutil.copytree(tiny_model, model)

    def no_copy(src, dst, **_kwargs):
        raise OSError(28, "No space left on device", str(dst))

    monkeypatch.setattr(shutil, "copyfile", no_copy)
    with pytest.raises(OSError) as info:
        export_onnx(model)
    assert type(info.value) is OSError and info.value.errno == 28
    assert str(info.value).startswith(f"[Errno 28] cannot copy {model}: ")
    assert "No space left on device" in str(info.value) and "[(" not in str(info.value)


# -- D7: the current folder, refused before any work -----------------------------------------


def test_the_current_folder_is_refused_before_any_work(tiny_model, tmp_path, monkeypatch):
    from emovox.experiment.calibrate import calibrate_bundle
    from emovox.experiment.package import ensemble_bundle, train_bundle
    from emovox.training.export import export_onnx

    model, run = tmp_path / "m", _cv_run(tmp_path / "run", "crnn")
    shutil.copytree(tiny_model, model)
    before = _files(model)
    _no_data(monkeypatch)
    monkeypatch.chdir(model)
    want = r"is the current folder or holds it; "
    for out in (".", "..", "../m"):
        with pytest.raises(ConfigError, match=want + r"choose another --out \(or run from"):
            train_bundle(_cfg(tmp_path), Path(out), force=True)
        with pytest.raises(ConfigError, match=want + "choose another"):
            ensemble_bundle([tmp_path / "a", tmp_path / "b"], Path(out), force=True)
    with pytest.raises(ConfigError, match=want + "calibrate rewrites the model folder whole"):
        calibrate_bundle(Path("."), run)
    with pytest.raises(ConfigError, match=want + "export rewrites the model folder whole"):
        export_onnx(".")
    os.symlink(model, tmp_path / "link")  # a link to it too
    with pytest.raises(ConfigError, match="is the current folder or holds it"):
        export_onnx(tmp_path / "link")
    assert _files(model) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "m", "run"]
    assert sorted(p.name for p in model.iterdir()) == sorted(before)


# -- D14: an empty folder is taken ---------------------------------------------------------


@pytest.mark.parametrize("force", [False, True])
def test_an_empty_folder_is_written_into(tmp_path, force):
    """`train --force` said "no model.json" of an empty folder, `train` "already exists";
    `evaluate --out` takes one."""
    from emovox.artifact import check_replaceable, read_meta, save_model
    from emovox.models.classical import logreg

    empty = tmp_path / "empty"
    empty.mkdir()
    check_replaceable(empty, force)
    rng = np.random.default_rng(0)
    m = logreg(n_classes=8).fit(rng.standard_normal((16, 47)), np.arange(16) % 8, [], [])
    save_model(m, empty, {"model": {"name": "prosody_logreg"}}, force=force)
    assert read_meta(empty).name == "prosody_logreg"
    with pytest.raises(FileExistsError):  # not empty now: --force and a model folder only
        check_replaceable(empty, False)
