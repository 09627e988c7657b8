"""Stop 53's bench fixes: ``--cv`` / run-folder benches stop with one line (exit 2) on a missing
part or one without its fold model; ``level_invariance`` names every flip with its two top
probabilities; ``split_ensemble`` writes its members' data section, so the recipe check of
``emovox ensemble --calibrate`` compares corpora with the corpora they were trained on."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from emovox.experiment.rundir import Prediction, Predictions, RunDirError, write_predictions

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import adapt  # noqa: E402
import level_invariance  # noqa: E402


@pytest.fixture(autouse=True)
def _logging_left_as_found():
    """Bench mains quiet the ``emovox`` logger for their own output (multicrop, hum,
    resolution); run in-process here, they left it quiet for every later test of the worker,
    whose ``caplog`` then read nothing (the full suite, stop 53)."""
    import logging

    log = logging.getLogger("emovox")
    level, disabled = log.level, logging.root.manager.disable
    yield
    log.setLevel(level)
    logging.disable(disabled)


#: what the default's members were trained on, as its ``trained_on`` records it
TRAINED_ON = {"clips": 16, "speakers": ["emovo:f1", "ravdess:01"], "corpus": "ravdess+emovo",
              "corpora": {"ravdess": 10, "emovo": 6}, "balance_corpora": False,
              "channels": ["speech"]}


def _run_folder(path: Path, folds: tuple[int, ...] = (0,)) -> Path:
    """A cross-validation part without saved models: metrics.json and predictions.csv."""
    path.mkdir(parents=True)
    (path / "metrics.json").write_text(json.dumps(
        {"protocol": "emobox", "folds": [{"index": f} for f in folds]}))
    rows = [Prediction(path=f"/x/{i}.wav", speaker="ravdess:01", true="sad", pred="sad",
                       proba=(0.2, 0.8), fold=folds[i % len(folds)], corpus="ravdess")
            for i in range(4)]
    write_predictions(path / "predictions.csv", Predictions(["happy", "sad"], rows))
    return path


# -- item 3: one-line errors, exit 2 ---------------------------------------------------------


def _one_error_line(capsys: pytest.CaptureFixture[str], *words: str) -> None:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert all(w in err[0] for w in words), err


def test_target_stats_names_a_pattern_that_matches_nothing(tmp_path, capsys, monkeypatch):
    pytest.importorskip("torch")
    import target_stats

    missing = str(tmp_path / "nope-f?")
    monkeypatch.setattr(sys, "argv", ["target_stats.py", "--cv", missing,
                                      "--out", str(tmp_path / "out")])
    assert target_stats.main() == 2
    _one_error_line(capsys, missing, "no such folder")


def test_a_part_without_its_fold_model_says_save_models(tmp_path, capsys, monkeypatch):
    pytest.importorskip("torch")
    import multicrop

    part = _run_folder(tmp_path / "p-f0")
    monkeypatch.setattr(sys, "argv", ["multicrop.py", "--cv", str(part),
                                      "--out", str(tmp_path / "out")])
    assert multicrop.main() == 2
    _one_error_line(capsys, str(part), "--save-models")


def test_a_merged_run_is_not_taken_for_one_folds_part(tmp_path):
    pytest.importorskip("torch")
    import target_stats

    from emovox.experiment.rundir import read_run

    run = _run_folder(tmp_path / "merged", folds=(0, 1))
    with pytest.raises(RunDirError, match=r"folds \[0, 1\], not one"):
        target_stats.fold_predictor(run, read_run(run).predictions.scored())


def test_channel_robustness_names_a_missing_cv_part(tmp_path, capsys, monkeypatch):
    pytest.importorskip("torch")
    import channel_robustness

    missing = tmp_path / "gone"
    monkeypatch.setattr(sys, "argv", ["channel_robustness.py", "--cv", str(missing)])
    assert channel_robustness.main() == 2
    _one_error_line(capsys, str(missing), "no such folder")


def test_adapt_names_a_missing_run_and_one_without_predictions(tmp_path, capsys):
    assert adapt.main([str(tmp_path / "gone")]) == 2
    _one_error_line(capsys, str(tmp_path / "gone"), "no such folder")
    assert adapt.main([str(tmp_path)]) == 2
    _one_error_line(capsys, str(tmp_path), "no predictions.csv")


# -- item 2: each flip of level_invariance in words ---------------------------------------


class _LoudnessPredictor:
    """Answers ``sad`` for a quiet (peak under 0.05) negative wave, ``happy`` otherwise."""

    sr = 16000

    def predict_batch(self, waves: list[np.ndarray], sr: int) -> list[SimpleNamespace]:
        return [self.answer(float(w[0]) < 0 and float(np.abs(w).max()) < 0.05) for w in waves]

    @staticmethod
    def answer(flip: bool) -> SimpleNamespace:
        probs = ({"happy": 0.3, "sad": 0.45, "angry": 0.25} if flip
                 else {"happy": 0.5, "sad": 0.2, "angry": 0.3})
        return SimpleNamespace(label=max(probs, key=probs.__getitem__), probabilities=probs)


def test_every_flip_is_listed_with_the_two_top_probabilities():
    waves = [np.full(100, 0.5, np.float32), np.full(100, -0.5, np.float32)]
    levels = np.array([-35.0, -33.0, -1.0])
    r = level_invariance.measure(_LoudnessPredictor(), waves, levels)
    assert [(f["clip"], f["level"]) for f in r["flips"]] == [(1, -35.0), (1, -33.0)]
    assert r["flips"][0]["own"] == [("happy", 0.5), ("angry", 0.3)]
    assert r["flips"][0]["at_level"] == [("sad", 0.45), ("happy", 0.3)]
    line = level_invariance.flip_line(Path("/d/Actor_15/03-01-08-01-01-01-15.flac"),
                                      r["flips"][0])
    assert line == ("  flip: Actor_15/03-01-08-01-01-01-15.flac at -35 dBFS: own level "
                    "happy 0.500, angry 0.300; at -35 dBFS sad 0.450, happy 0.300")
    assert r["agree"] == pytest.approx(4 / 6)


# -- item 4: split members carry the ensemble's data ----------------------------------------


def test_member_data_is_the_recorded_data_and_none_when_members_differ():
    import split_ensemble

    data = split_ensemble.member_data(TRAINED_ON)
    assert data is not None
    assert (data["corpus"], data["corpora"], data["vocal_channels"]) == (
        "ravdess", ["emovo="], ["speech"])
    own = split_ensemble.member_data({"corpora": {"folder": 8}, "own_data": ["folder=mine"]})
    assert own is not None and (own["corpus"], own["root"]) == ("folder", "mine")
    assert split_ensemble.member_data({**TRAINED_ON, "member_data": ["a", "b"]}) is None
    assert split_ensemble.member_data({}) is None


def _tiny_member(dest: Path, seed: int) -> Path:
    """An untrained-to-speak-of 1-epoch CRNN on 8 tones, ``trained_on`` as the default's."""
    from emovox.artifact import attach_inference, save_model
    from emovox.features import extract
    from emovox.models import crnn
    from emovox.training.trainer import TorchClassifier
    from signals import SR, emotion_tone

    rng = np.random.default_rng(seed)
    feats = [extract("logmel", emotion_tone(i, rng, seconds=0.5), SR) for i in range(8)]
    y = np.arange(8)
    model = TorchClassifier(crnn.build_net, n_classes=8, seed=seed,
                            **{**crnn.DEFAULTS, "n_frames": 32, "epochs": 1})
    model.fit(feats, y, feats, y)
    save_model(model, dest, {"model": {"name": "crnn", "params": {}}},
               extra={"name": "crnn", "trained_on": TRAINED_ON})
    attach_inference(dest)
    return dest


def test_split_members_pass_the_recipe_check_of_a_run_on_their_corpora(tmp_path):
    pytest.importorskip("torch")
    import split_ensemble

    from emovox.config import DataConfig, ExperimentConfig, ModelConfig
    from emovox.experiment.package import ensemble_bundle
    from emovox.experiment.recipe import recipe_differences

    members = [_tiny_member(tmp_path / f"m{k}", k) for k in range(2)]
    ensemble_bundle(members, tmp_path / "ens", onnx=False)
    split = split_ensemble.split(tmp_path / "ens", tmp_path / "split")
    run = tmp_path / "cv-run"  # a CV run of the members' recipe on RAVDESS + EMOVO
    run.mkdir()
    ExperimentConfig(data=DataConfig(root="/data/ravdess", corpora=("emovo=/data/emovo",)),
                     model=ModelConfig("crnn")).save_yaml(run / "config.yaml")
    for m in split:
        config = json.loads((m / "model.json").read_text())["experiment_config"]
        assert recipe_differences(run, config) == []  # was "corpora emovo+ravdess vs ravdess"
    ravdess_only = tmp_path / "cv-ravdess"
    ravdess_only.mkdir()
    ExperimentConfig(data=DataConfig(root="/data/ravdess"), model=ModelConfig("crnn")
                     ).save_yaml(ravdess_only / "config.yaml")
    config = json.loads((split[0] / "model.json").read_text())["experiment_config"]
    assert recipe_differences(ravdess_only, config) == ["corpora ravdess vs emovo+ravdess"]
