"""The CV run's validation hold-out is recorded and checked against the trained model's."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import yaml

from emovox.experiment.package import model_card
from emovox.experiment.recipe import check_recipe
from emovox.experiment.rundir import CvRun, run_val_speakers


def _run(path: Path, n_val: int | None) -> Path:
    path.mkdir(parents=True)
    (path / "metrics.json").write_text(json.dumps({"model": "m"}))
    if n_val is not None:
        (path / "config.yaml").write_text(yaml.safe_dump({"split": {"n_val_speakers": n_val}}))
    return path


def _fused(path: Path, runs: list[Path]) -> Path:
    path.mkdir(parents=True)
    (path / "metrics.json").write_text(json.dumps({"protocol": "emobox",
                                                    "fused_runs": [str(r) for r in runs]}))
    return path


def test_val_speakers_of_a_run_and_of_a_fused_run(tmp_path):
    a, b = _run(tmp_path / "a", 0), _run(tmp_path / "b", 0)
    assert run_val_speakers(a) == 0
    assert run_val_speakers(_fused(tmp_path / "f", [a, b])) == 0
    c = _run(tmp_path / "c", 2)
    assert run_val_speakers(_fused(tmp_path / "mixed", [a, c])) is None  # they disagree
    assert run_val_speakers(_fused(tmp_path / "moved", [tmp_path / "gone", a])) is None
    assert run_val_speakers(_run(tmp_path / "noconfig", None)) is None
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.yaml").write_text("split: [")
    assert run_val_speakers(tmp_path / "bad") is None


def test_a_different_hold_out_is_warned_about(tmp_path, caplog):
    cv = CvRun({"val_speakers": 2}, tmp_path / "predictions.csv")
    with caplog.at_level(logging.WARNING, logger="emovox.experiment.recipe"):
        assert check_recipe(tmp_path, cv, 2, "crnn_cmvn")
        assert check_recipe(tmp_path, cv, None, "crnn_cmvn")  # cannot be told
        assert not caplog.records
        assert not check_recipe(tmp_path, cv, 0, "crnn_cmvn")
    assert "held out 2 validation speaker(s) per fold but crnn_cmvn was trained with 0" in (
        caplog.text) and "--val-speakers 0" in caplog.text
    assert check_recipe(tmp_path, CvRun({}, tmp_path), 0, "m")  # an older run: not recorded


def test_the_card_says_how_the_folds_used_their_speakers():
    pooled = {"labels": ["neutral"], "recall": {"neutral": 50.0}}
    summary = {k: {"mean": 50.0, "std": 1.0} for k in ("ua", "wa", "macro_f1", "weighted_f1")}
    cv = {"protocol": "emobox", "summary": summary, "pooled": pooled}
    assert "Protocol `emobox`; mean" in model_card({"cross_validation": cv})
    card = model_card({"cross_validation": {**cv, "val_speakers": 0}})
    assert "every training speaker trained (no validation speakers)" in card
    card = model_card({"cross_validation": {**cv, "val_speakers": 2}})
    assert "2 training speaker(s) per fold held out for validation" in card


def test_the_card_states_training_augmentation_when_there_was_some():
    plain = model_card({"trained_on": {"clips": 10, "speakers": ["a"]}})
    assert "augment" not in plain
    card = model_card({"trained_on": {"clips": 10, "speakers": ["a"],
                                      "augment": "2 augmented copies of each clip: noise"}})
    assert "- training augmentation: 2 augmented copies of each clip: noise" in card
