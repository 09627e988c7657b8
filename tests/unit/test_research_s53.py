"""The research command line after the stop-53 review: ``--val-speakers`` refused before any
feature is extracted (``train`` and ``evaluate``), the model card naming a ``--speakers``
restriction as ``report`` does, ``fuse`` refusing a copied run folder, and what is taken for
a run folder (a copied config.yaml, someone else's metrics.json and an empty models/ was)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_switch_member import one_hot_run
from typer.testing import CliRunner

from emovox.cli import app
from emovox.config import DataConfig, ExperimentConfig, ModelConfig
from emovox.errors import ConfigError
from emovox.experiment.fuse import fuse_runs
from emovox.experiment.report import collect_report, markdown_table
from emovox.experiment.rundest import check_run_destination, is_run_dir
from emovox.experiment.rundir import (
    Prediction,
    Predictions,
    RunDirError,
    read_cv_run,
    read_run,
    write_predictions,
)
from emovox.labels import LABELS
from emovox.metrics import compute_metrics

PARTS = Path(__file__).resolve().parents[2] / "results" / "parts"


def _said(res) -> str:
    return " ".join(res.output.split())


# -- 1. --val-speakers is checked before any feature is extracted ------------------------------

@pytest.fixture
def four_actors(tmp_path, ravdess_maker, monkeypatch) -> Path:
    """4 actors; extraction made to fail loudly, so a refusal after it shows."""
    import emovox.experiment.package as package
    import emovox.experiment.runner as runner

    def extraction(*_a, **_k):
        raise AssertionError("features were extracted before --val-speakers was checked")

    monkeypatch.setattr(package, "featurise", extraction)
    monkeypatch.setattr(runner, "featurise", extraction)
    monkeypatch.setenv("EMOVOX_CACHE", str(tmp_path / "cache"))
    return ravdess_maker(tmp_path / "corpus", (1, 2, 3, 4))


def test_train_refuses_too_many_validation_speakers_before_extraction(four_actors, tmp_path):
    res = CliRunner().invoke(app, ["train", "--data", str(four_actors), "--model", "mlp",
                                   "--val-speakers", "4", "-j", "1", "-o", str(tmp_path / "m")])
    assert res.exit_code == 2, res.output
    assert ("cannot hold out 4 validation speakers from 4 training speakers: give "
            "--val-speakers 3 or fewer") in _said(res)
    assert not (tmp_path / "m").exists()


def test_evaluate_refuses_too_many_validation_speakers_before_extraction(four_actors,
                                                                         tmp_path):
    """A network needs them (a classical model holds none out instead: unchanged)."""
    res = CliRunner().invoke(app, ["evaluate", "--data", str(four_actors), "--model", "mlp",
                                   "--protocol", "loso", "--val-speakers", "4", "-j", "1",
                                   "--out", str(tmp_path / "run")])
    assert res.exit_code == 2, res.output
    assert ("cannot hold out 4 validation speakers from 3 training speakers of fold 0: "
            "give --val-speakers 2 or fewer") in _said(res)
    assert not (tmp_path / "run").exists()


# -- 2. the model card names a --speakers restriction ------------------------------------------

def _cv_run(path: Path, speakers: tuple[str, ...] = (), model: str = "prosody_logreg",
            lean: float = 0.6, **metrics) -> Path:
    """A finished CV run of ``model`` on 4 clips (``speakers``: its ``--speakers``)."""
    path.mkdir(parents=True)
    truth = ["angry", "sad", "happy", "sad"]
    rows = []
    for i, true in enumerate(truth):
        p = np.full(len(LABELS), (1 - lean) / (len(LABELS) - 1))
        p[LABELS.index(true)] = lean
        rows.append(Prediction(f"/r/c{i}.wav", f"ravdess:0{i % 2 + 1}", true, true,
                               tuple(p), fold=i % 2, corpus="ravdess"))
    write_predictions(path / "predictions.csv", Predictions(list(LABELS), rows))
    y = np.array([LABELS.index(t) for t in truth])
    pooled = compute_metrics(y, y, list(LABELS)).to_dict()
    summary = {k: {"mean": 100.0, "std": 0.0} for k in ("ua", "wa", "macro_f1", "weighted_f1")}
    (path / "metrics.json").write_text(json.dumps({
        "model": model, "protocol": "emobox", "speaker_independent": True, "adapt": "none",
        "summary": summary, "pooled": pooled, "worst_class": {"label": "sad", "recall": 1.0},
        "folds": [{"index": k, "fit_seconds": 1.0, "n_params": 10} for k in (0, 1)],
        **metrics}))
    if "fused_runs" not in metrics:
        ExperimentConfig(data=DataConfig(root="/r", speakers=speakers),
                         model=ModelConfig(model)).save_yaml(path / "config.yaml")
    return path


def _card(run: Path, model: str = "prosody_logreg") -> str:
    from emovox.experiment.card import model_card

    card = model_card({"name": "m", "cross_validation": read_cv_run(run, model).metrics})
    return " ".join(card.split())


def test_the_card_s_cross_validation_line_names_the_speakers_as_report_does(tmp_path):
    some = _cv_run(tmp_path / "some", ("01", "02"))
    assert "Protocol `emobox`, speakers 01,02 only; mean ± std over folds:" in _card(some)
    (row,) = markdown_table(collect_report([some]).rows)[2:]
    assert row.endswith("· speakers 01,02 only |")  # the words report uses
    every = _cv_run(tmp_path / "every")
    assert "Protocol `emobox`; mean ± std over folds:" in _card(every)
    many = _cv_run(tmp_path / "many", tuple(f"{i:02d}" for i in range(1, 21)))
    assert "20 speakers only (01,02,03,04,05,06,07,08,…)" in _card(many)


def test_a_fused_run_names_the_speakers_of_the_runs_it_fused(tmp_path):
    """A fused run has no config of its own: its runs' (as their validation hold-out)."""
    a = _cv_run(tmp_path / "a", ("01", "02"))
    b = _cv_run(tmp_path / "b", ("01", "02"), lean=0.7)
    name = "fusion(prosody_logreg+prosody_logreg)"
    fused = _cv_run(tmp_path / "f", model=name, fused_runs=[str(a), str(b)])
    assert ", speakers 01,02 only;" in _card(fused, name)
    assert collect_report([fused]).rows[0].recipe.endswith("speakers 01,02 only")


def test_calibrate_writes_a_card_that_names_the_speakers(tmp_path):
    """The card written into a model folder (`emovox calibrate`, as `train --calibrate`)."""
    from emovox.artifact import save_model
    from emovox.models.classical import logreg

    rng = np.random.default_rng(0)
    fitted = logreg(n_classes=8).fit(rng.standard_normal((16, 47)), np.arange(16) % 8, [], [])
    model = save_model(fitted, tmp_path / "model", {"model": {"name": "prosody_logreg"}})
    run = _cv_run(tmp_path / "run", ("01", "02"))
    res = CliRunner().invoke(app, ["calibrate", str(model), str(run)])
    assert res.exit_code == 0, res.output
    card = " ".join((model / "MODEL_CARD.md").read_text().split())
    assert "Protocol `emobox`, speakers 01,02 only; mean ± std" in card


# -- 3. fuse refuses a copied run folder -------------------------------------------------------

def test_fuse_refuses_a_copied_run_folder_naming_both(tmp_path):
    a = one_hot_run(tmp_path, "runA", ["angry", "sad", "angry", "sad"], "m")
    b = one_hot_run(tmp_path, "other", ["sad"] * 4, "n")
    shutil.copytree(a, tmp_path / "runB")
    res = CliRunner().invoke(app, ["fuse", str(a), str(b), str(tmp_path / "runB"), "--out",
                                   str(tmp_path / "f")])
    assert res.exit_code == 2, res.output
    said = _said(res)
    assert f"{a} and {tmp_path / 'runB'} hold the same predictions" in said
    assert "weighed twice" in said and not (tmp_path / "f").exists()
    # however saved: rows in another order, CRLF line ends
    lines = (a / "predictions.csv").read_text().splitlines()
    (tmp_path / "runB" / "predictions.csv").write_text(
        "\r\n".join([lines[0], *reversed(lines[1:])]) + "\r\n")
    with pytest.raises(ConfigError, match="runB hold the same predictions"):
        fuse_runs([a, tmp_path / "runB"], tmp_path / "f")
    assert fuse_runs([a, b], tmp_path / "f")["model"] == "fusion(m+n)"  # other runs: fused


# -- 4. what is taken for a run folder ---------------------------------------------------------

def _lookalike(path: Path, metrics: dict) -> Path:
    """A copied emovox config.yaml, a metrics.json of ``metrics`` and an empty models/."""
    (path / "models").mkdir(parents=True)
    ExperimentConfig(data=DataConfig(root="/r"), model=ModelConfig("mlp")).save_yaml(
        path / "config.yaml")
    (path / "metrics.json").write_text(json.dumps(metrics))
    return path


def test_a_lookalike_folder_is_not_replaced_by_a_command_writing_a_run(tmp_path):
    """`fuse/merge/rescore/evaluate --out F` replaced it whole (its metrics.json lost)."""
    a = one_hot_run(tmp_path, "a", ["angry"] * 4, "m")
    b = one_hot_run(tmp_path, "b", ["sad"] * 4, "n")
    mine = _lookalike(tmp_path / "mine", {"accuracy": 0.9, "epochs": 30})
    res = CliRunner().invoke(app, ["fuse", str(a), str(b), "--out", str(mine)])
    assert res.exit_code == 2, res.output
    assert (f"{mine} exists and is not an emovox run folder ({mine / 'metrics.json'}: not the "
            "metrics of an emovox run; no predictions.csv)") in _said(res)
    assert json.loads((mine / "metrics.json").read_text()) == {"accuracy": 0.9, "epochs": 30}
    assert sorted(p.name for p in mine.iterdir()) == ["config.yaml", "metrics.json", "models"]
    (mine / "metrics.json").unlink()  # a config beside an empty models/: no run either
    with pytest.raises(RunDirError, match="nothing a run writes beside its config.yaml"):
        check_run_destination(mine)
    (mine / "models" / "fold0").mkdir()  # an older run interrupted after fold 0: one
    check_run_destination(mine)


def test_a_metrics_json_naming_a_protocol_without_predictions_is_no_run(tmp_path):
    other = _lookalike(tmp_path / "other", {"protocol": "holdout", "accuracy": 0.9})
    assert not is_run_dir(other)
    with pytest.raises(RunDirError, match=r"not an emovox run folder \(no predictions\.csv\)"):
        check_run_destination(other)
    copied = tmp_path / "copied"  # another run's metrics.json beside a copied config
    _cv_run(tmp_path / "real")
    _lookalike(copied, json.loads((tmp_path / "real" / "metrics.json").read_text()))
    for read in (lambda: read_run(copied, predictions=False),  # report
                 lambda: read_cv_run(copied, "prosody_logreg")):  # calibrate, train, ensemble
        with pytest.raises(RunDirError, match=rf"{copied} is not an emovox run folder: no "
                           r"predictions\.csv \(a run folder holds metrics\.json and "
                           r"predictions\.csv\)"):
            read()
    rep = collect_report([copied])
    assert not rep.rows and "no predictions.csv" in rep.problems[0].reason


def test_a_lookalike_folder_is_no_teacher_and_one_without_fold_models_is_refused_early(
        tmp_path):
    """`evaluate --teacher F` took it for a teacher run and extracted every feature first."""
    from emovox.experiment.distil import open_teacher

    cfg = ExperimentConfig(data=DataConfig(root="/r"), model=ModelConfig("mlp"))
    mine = _lookalike(tmp_path / "mine", {"accuracy": 0.9})
    with pytest.raises(ConfigError, match=rf"teacher {mine} is not a run directory of `emovox "
                       r"evaluate --save-models` \(.*metrics\.json: not the metrics of an "
                       r"emovox run\)"):
        open_teacher(mine, cfg)
    (mine / "metrics.json").write_text(json.dumps({"protocol": "emobox", "folds": [
        {"index": 0}, {"index": 1}]}))
    with pytest.raises(ConfigError, match=r"no saved model of fold 0 .*--save-models"):
        open_teacher(mine, cfg)  # without --folds: before extraction too


@pytest.mark.skipif(not PARTS.is_dir(), reason="results/parts not in this checkout")
def test_every_stored_run_part_is_still_a_run_folder():
    """The parts of many stops: read as report, fuse, merge, calibrate read them, and
    replaceable as runs."""
    parts = sorted(p for p in PARTS.iterdir() if p.is_dir())
    assert len(parts) > 100
    for part in parts:
        rec = read_run(part, unlinked=True)
        assert rec.predictions is not None and rec.predictions.rows, part
        assert is_run_dir(part), part
        if rec.speaker_independent and rec.metrics.get("adapt", "none") == "none":
            assert read_cv_run(part, rec.model).metrics["protocol"] == rec.protocol
    rep = collect_report(parts)
    assert len(rep.rows) == len(parts) and not rep.problems


def test_an_empty_folder_is_named_once_in_the_run_folder_error(tmp_path):
    from emovox.experiment.runfiles import check_run_folder

    with pytest.raises(RunDirError) as err:
        check_run_folder(tmp_path)
    assert str(err.value).count(str(tmp_path)) == 1
    assert "no metrics.json; no predictions.csv" in str(err.value)
