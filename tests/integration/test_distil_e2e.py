"""Distillation inside cross-validation on the fake RAVDESS tree: teacher runs saved with
--save-models (one direct, one merged from fold parts, on another feature), a student run
with --teacher, and every refusal of a teacher that could have heard a test speaker."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from emovox.cli import app
from emovox.config import DataConfig, ExperimentConfig, ModelConfig, SplitConfig
from emovox.experiment import run_experiment
from emovox.experiment.fuse import merge_runs
from emovox.labels import LABELS

#: a crnn_cmvn of a few hundred weights, 2 epochs on 64 frames
TINY = ["channels=4,8", "time_pools=2,2", "d_model=8", "gru_hidden=8", "attention_dim=8",
        "dense=8", "epochs=2", "n_frames=64", "threads=1", "batch_size=16"]


def _params(items: list[str]) -> dict[str, str]:
    return dict(i.split("=", 1) for i in items)


def _cfg(root: Path, cache: Path, model: str, params: dict, folds=(0, 1), **kw) -> ExperimentConfig:
    return ExperimentConfig(
        data=DataConfig(root=str(root)), split=SplitConfig(folds=tuple(folds), n_val_speakers=1),
        model=ModelConfig(model, params), cache_dir=str(cache), n_jobs=1, **kw)


def _student_args(root: Path, cache: Path, out: Path, *teachers: Path, folds: str = "0,1",
                  model: str = "crnn_cmvn", extra: tuple[str, ...] = ()) -> list[str]:
    args = ["evaluate", "--data", str(root), "--model", model, "--folds", folds,
            "--val-speakers", "1", "--cache-dir", str(cache), "--jobs", "1", "--out", str(out)]
    for p in (TINY if model == "crnn_cmvn" else []):
        args += ["-p", p]
    for t in teachers:
        args += ["--teacher", str(t)]
    return args + list(extra)


@pytest.fixture(scope="module")
def teachers(fake_ravdess, fake_cache, tmp_path_factory) -> tuple[Path, Path]:
    """A tiny crnn_cmvn over folds 0-1 (models saved), and egemaps_logreg run as two fold
    parts (models saved) merged into one run."""
    base = tmp_path_factory.mktemp("teachers")
    net = _cfg(fake_ravdess, fake_cache, "crnn_cmvn", _params(TINY), save_models=True)
    run_experiment(net, base / "crnn")
    for k in (0, 1):
        part = _cfg(fake_ravdess, fake_cache, "egemaps_logreg", {}, folds=(k,),
                    save_models=True)
        run_experiment(part, base / "parts" / f"lr-f{k}")
    merge_runs([base / "parts" / "lr-f0", base / "parts" / "lr-f1"], base / "lr")
    return base / "crnn", base / "lr"


@pytest.mark.slow
def test_student_learns_from_fold_teachers_and_records_them(fake_ravdess, fake_cache, teachers,
                                                           tmp_path):
    crnn, lr = teachers
    out = tmp_path / "student"
    r = CliRunner().invoke(app, _student_args(fake_ravdess, fake_cache, out, crnn, lr))
    assert r.exit_code == 0, r.output
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["teachers"] == [str(crnn), str(lr)]
    m = json.loads((out / "metrics.json").read_text())
    assert m["teachers"] == [str(crnn), str(lr)]
    for f in m["folds"]:
        k = f["index"]
        assert f["teachers"] == [str(crnn / "models" / f"fold{k}"),
                                 str(lr.parent / "parts" / f"lr-f{k}" / "models" / f"fold{k}")]
        assert 0 <= f["teacher_train_ua"] <= 100
    from emovox.experiment.report import collect_report

    assert [r.model for r in collect_report([out, crnn]).rows] == [
        "crnn_cmvn (distilled)", "crnn_cmvn"]
    # the student's parts merge like any run; their teachers are kept
    parts = []
    for k in (0, 1):
        parts.append(tmp_path / f"s{k}")
        r = CliRunner().invoke(app, _student_args(fake_ravdess, fake_cache, parts[-1], crnn,
                                                  folds=str(k)))
        assert r.exit_code == 0, r.output
    merged = merge_runs(parts, tmp_path / "merged")
    assert merged["teachers"] == [str(crnn)]
    assert [f["teachers"] for f in merged["folds"]] == [
        [str(crnn / "models" / "fold0")], [str(crnn / "models" / "fold1")]]


@pytest.mark.slow
def test_alpha_zero_student_equals_the_plain_run(fake_ravdess, fake_cache, teachers, tmp_path):
    """With distil_alpha=0 the teachers change nothing: same predictions as without them;
    with alpha 0.5 they do."""
    crnn, _ = teachers
    plain, zero, half = tmp_path / "plain", tmp_path / "zero", tmp_path / "half"
    for out, extra, alpha in ((plain, [], 0), (zero, [crnn], 0), (half, [crnn], 0.5)):
        args = _student_args(fake_ravdess, fake_cache, out, *extra, folds="0",
                             extra=("-p", f"distil_alpha={alpha}"))
        assert CliRunner().invoke(app, args).exit_code == 0
    assert (plain / "predictions.csv").read_text() == (zero / "predictions.csv").read_text()
    assert (plain / "predictions.csv").read_text() != (half / "predictions.csv").read_text()


# -- refusals: hand-made teacher run folders (nothing is trained) ------------------------------

def _fake_teacher(root: Path, cache: Path, out: Path, *, folds=None, model_folds=(0, 1),
                  **config_changes) -> Path:
    """A run folder that looks like a crnn_cmvn teacher of folds 0-1 of the fake tree."""
    cfg = _cfg(root, cache, "crnn_cmvn", _params(TINY), save_models=True).to_dict()
    for key, value in config_changes.items():
        section, _, field = key.partition("__")
        if field:
            cfg[section][field] = value
        else:
            cfg[section] = value
    out.mkdir(parents=True)
    (out / "config.yaml").write_text(yaml.safe_dump(cfg))
    folds = folds or [
        {"index": 0, "test_speakers": ["ravdess:01"], "val_speakers": ["ravdess:04"]},
        {"index": 1, "test_speakers": ["ravdess:02"], "val_speakers": ["ravdess:06"]},
    ]
    (out / "metrics.json").write_text(json.dumps({"protocol": cfg["split"]["protocol"],
                                                  "folds": folds}))
    for k in model_folds:
        (out / "models" / f"fold{k}").mkdir(parents=True)
        (out / "models" / f"fold{k}" / "model.json").write_text("{}")
    return out


def _refused(args: list[str], *needles: str) -> str:
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2, r.output
    text = " ".join(r.output.split())
    for n in needles:
        assert n in text, text
    return text


@pytest.fixture(scope="module")
def real_fold_speakers(fake_ravdess, fake_cache, tmp_path_factory) -> list[dict]:
    """Folds 0-1's test and validation speakers of the fake tree (a classical run)."""
    out = tmp_path_factory.mktemp("speakers") / "run"
    run_experiment(_cfg(fake_ravdess, fake_cache, "egemaps_logreg", {}), out)
    return [{k: f[k] for k in ("index", "test_speakers", "val_speakers")}
            for f in json.loads((out / "metrics.json").read_text())["folds"]]


def test_teacher_without_saved_fold_model_is_refused(fake_ravdess, fake_cache, tmp_path):
    t = _fake_teacher(fake_ravdess, fake_cache, tmp_path / "t", model_folds=(0,))
    _refused(_student_args(fake_ravdess, fake_cache, tmp_path / "s", t),
             "no saved model of fold 1", "--save-models")
    assert not (tmp_path / "s").exists()


def test_a_teacher_started_from_another_folder_is_the_same_data(fake_ravdess, fake_cache,
                                                                tmp_path):
    """A teacher's relative data root was resolved against the student's folder, so a run
    started elsewhere was "another corpus" (a review, stop 47); the data folders are now
    compared as merge compares them, by their last two parts."""
    import os

    rel = os.path.relpath(fake_ravdess, Path(fake_ravdess).parents[2] / "a" / "b")
    assert rel.startswith("../../") and not os.path.isdir(rel)  # (not from here)
    t = _fake_teacher(fake_ravdess, fake_cache, tmp_path / "t", model_folds=(0,),
                      data__root=rel)
    _refused(_student_args(fake_ravdess, fake_cache, tmp_path / "s", t),
             "no saved model of fold 1")  # not "differs from this run in corpora"


@pytest.mark.parametrize(("change", "needle"), [
    ({"split__protocol": "loso"}, "differs from this run in protocol"),
    ({"seed": 3}, "differs from this run in seed"),
    ({"data__speakers": ["01", "02", "03"]}, "differs from this run in speakers"),
    ({"data__root": "/elsewhere"}, "differs from this run in corpora"),
    ({"split__n_val_speakers": 2}, "differs from this run in validation speakers"),
    # the random protocol's folds name no test speakers: its split must match (stop 31)
    ({"split__seed": 1}, "differs from this run in split seed"),
    ({"split__test_size": 0.3}, "differs from this run in test size"),
])
def test_teacher_of_another_protocol_seed_or_data_is_refused(fake_ravdess, fake_cache, tmp_path,
                                                             change, needle):
    t = _fake_teacher(fake_ravdess, fake_cache, tmp_path / "t", **change)
    _refused(_student_args(fake_ravdess, fake_cache, tmp_path / "s", t), needle,
             "never on this run's test speakers")


def test_teacher_with_other_test_speakers_is_refused(fake_ravdess, fake_cache, tmp_path,
                                                     real_fold_speakers):
    folds = [dict(f) for f in real_fold_speakers]
    folds[0]["test_speakers"] = ["ravdess:03"]
    t = _fake_teacher(fake_ravdess, fake_cache, tmp_path / "t", folds=folds)
    _refused(_student_args(fake_ravdess, fake_cache, tmp_path / "s", t),
             "fold 0 has other test speakers (ravdess:03)", "never on this fold's test speakers")
    folds = [dict(f) for f in real_fold_speakers]
    folds[0]["val_speakers"] = ["ravdess:05"]
    t2 = _fake_teacher(fake_ravdess, fake_cache, tmp_path / "t2", folds=folds)
    _refused(_student_args(fake_ravdess, fake_cache, tmp_path / "s", t2),
             "fold 0 has other validation speakers")


def test_fold_model_from_another_run_is_refused(fake_ravdess, fake_cache, tmp_path,
                                               real_fold_speakers, tiny_model):
    """A model folder copied in from elsewhere: its model.json names another training."""
    t = _fake_teacher(fake_ravdess, fake_cache, tmp_path / "t", folds=real_fold_speakers,
                      model_folds=())
    for k in (0, 1):
        shutil.copytree(tiny_model, t / "models" / f"fold{k}")
    _refused(_student_args(fake_ravdess, fake_cache, tmp_path / "s", t),
             "models/fold0 was not trained in fold 0 of")


def test_teacher_lacking_a_fold_is_refused(fake_ravdess, fake_cache, tmp_path,
                                           real_fold_speakers):
    t = _fake_teacher(fake_ravdess, fake_cache, tmp_path / "t", folds=real_fold_speakers[:1])
    _refused(_student_args(fake_ravdess, fake_cache, tmp_path / "s", t), "has no fold 1")


def test_merged_teacher_whose_part_saved_no_model_is_refused(fake_ravdess, fake_cache,
                                                             tmp_path):
    part = _fake_teacher(fake_ravdess, fake_cache, tmp_path / "parts" / "p0", model_folds=())
    merged = _fake_teacher(fake_ravdess, fake_cache, tmp_path / "m", model_folds=())
    m = json.loads((merged / "metrics.json").read_text())
    (merged / "metrics.json").write_text(json.dumps({**m, "merged_runs": [str(part)]}))
    _refused(_student_args(fake_ravdess, fake_cache, tmp_path / "s", merged),
             f"teacher part {part} ran fold 0 but saved no model")
    (merged / "metrics.json").write_text(json.dumps({**m, "merged_runs": ["gone/p9"]}))
    _refused(_student_args(fake_ravdess, fake_cache, tmp_path / "s", merged),
             "was merged from gone/p9, which is not found")


@pytest.mark.parametrize(("args", "needle"), [
    (("--model", "egemaps_logreg"), "needs a single neural student model"),
    (("-p", "distil_alpha=1.5"), "distil_alpha must be >= 0 and <= 1"),
    (("-p", "distil_temperature=0"), "distil_temperature must be > 0"),
    (("--adapt", "speaker"), "cannot be combined with --adapt"),
])
def test_bad_students_are_refused(fake_ravdess, fake_cache, tmp_path, args, needle):
    t = _fake_teacher(fake_ravdess, fake_cache, tmp_path / "t")
    base = _student_args(fake_ravdess, fake_cache, tmp_path / "s", t)
    if args[0] == "--model":
        base = _student_args(fake_ravdess, fake_cache, tmp_path / "s", t, model=args[1])
        args = ()
    _refused(base + list(args), needle)


def test_a_folder_that_is_no_run_is_refused(fake_ravdess, fake_cache, tmp_path):
    (tmp_path / "empty").mkdir()
    _refused(_student_args(fake_ravdess, fake_cache, tmp_path / "s", tmp_path / "empty"),
             "is not a run directory")


def test_merging_distilled_with_plain_parts_is_refused(fake_ravdess, fake_cache, tmp_path):
    from emovox.errors import ConfigError

    a = _fake_teacher(fake_ravdess, fake_cache, tmp_path / "a", teachers=["x"])
    b = _fake_teacher(fake_ravdess, fake_cache, tmp_path / "b")
    shutil.copy(a / "metrics.json", b / "metrics.json")
    for run in (a, b):
        (run / "predictions.csv").write_text(
                "fold,path,speaker,corpus,true,pred," + ",".join(f"p_{lab}" for lab in LABELS)
                + "\n")
    with pytest.raises(ConfigError, match="distilled from teachers"):
        merge_runs([a, b], tmp_path / "m")


# -- the final model: train --teacher MODEL_DIR ---------------------------------------------

def _train_args(root: Path, cache_out: Path, model: str, *teachers: Path) -> list[str]:
    args = ["train", "--data", str(root), "--model", model, "--out", str(cache_out),
            "--no-onnx", "--jobs", "1"]
    for p in TINY:
        args += ["-p", p]
    for t in teachers:
        args += ["--teacher", str(t)]
    return args


@pytest.mark.slow
def test_train_distils_the_final_model_from_a_trained_model(fake_ravdess, tiny_model, tmp_path):
    """tiny_model is a crnn (silence-trimmed plain log-mel): it teaches a crnn student."""
    out = tmp_path / "student"
    r = CliRunner().invoke(app, _train_args(fake_ravdess, out, "crnn", tiny_model))
    assert r.exit_code == 0, r.output
    meta = json.loads((out / "model.json").read_text())
    assert meta["trained_on"]["teachers"] == [str(tiny_model)]
    assert meta["experiment_config"]["teachers"] == [str(tiny_model)]
    # what the teacher heard is the student's too (research audit, stop 51); this hand-made
    # teacher lists nothing, so the student cannot be called independent anywhere
    assert json.loads((tiny_model / "model.json").read_text())["trained_on"] is None
    assert meta["trained_on"]["teacher_speakers"] == []
    assert meta["trained_on"]["teachers_unlisted"] == [str(tiny_model)]


def test_train_teacher_reading_another_input_is_refused(fake_ravdess, tiny_model, tmp_path):
    """crnn_cmvn reads per-utterance normalised log-mel; tiny_model plain log-mel."""
    _refused(_train_args(fake_ravdess, tmp_path / "s", "crnn_cmvn", tiny_model),
             f"teacher model {tiny_model} reads another input")
    (tmp_path / "empty").mkdir()
    _refused(_train_args(fake_ravdess, tmp_path / "s", "crnn", tmp_path / "empty"),
             "model.json")
    assert not (tmp_path / "s").exists()
