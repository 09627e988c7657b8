"""`emovox ensemble`: trained networks reading the same input become one artifact (one ONNX
graph) whose probabilities are the mean of the members'."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import invoke, ok, text

from emovox.serving.predictor import Predictor
from signals import voice, write_clip

pytestmark = pytest.mark.slow


def _train(fake_ravdess: Path, root: Path, model: str) -> Path:
    out = root / model
    res = invoke(["train", "--data", fake_ravdess, "--out", out, "--model", model,
                  "-p", "epochs=1", "-p", "n_frames=64", "-j", "1", "--no-onnx"],
                 env={"EMOVOX_CACHE": str(root / "cache")})
    ok(res)
    return out


@pytest.fixture(scope="module")
def members(fake_ravdess, tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("ensemble")
    return [_train(fake_ravdess, root, m)
            for m in ("crnn_cmvn", "ecapa_cmvn", "ecapa_gain", "reslstm_logmel")]


def test_ensemble_averages_its_members_in_one_onnx_graph(members, tmp_path):
    out = tmp_path / "ens"
    res = invoke(["ensemble", members[0], members[1], "--out", out])
    ok(res)
    assert "fusion(crnn_cmvn+ecapa_cmvn)" in text(res)
    meta = json.loads((out / "model.json").read_text())
    assert meta["network"]["module"] == "emovox.models.ensemble" and meta["onnx"]
    clip = write_clip(tmp_path / "clip.wav", voice(3.0))
    probs = [Predictor.from_artifact(p).clip_probabilities(clip) for p in members[:2]]
    ens = Predictor.from_artifact(out)
    assert ens.backend == "onnx"
    got = ens.clip_probabilities(clip)
    np.testing.assert_allclose(got, (probs[0] + probs[1]) / 2, atol=1e-4)


def test_the_card_names_each_member_s_training_augmentation(members, tmp_path):
    """A member trained with augmentation (its saved config says so) is named with it."""
    import shutil

    aug_member = tmp_path / "ecapa_aug"
    shutil.copytree(members[1], aug_member)
    meta = json.loads((aug_member / "model.json").read_text())
    meta["experiment_config"]["augment"].update(variants=2, p_reverb=0.4)
    (aug_member / "model.json").write_text(json.dumps(meta))
    out = tmp_path / "ens"
    ok(invoke(["ensemble", members[0], aug_member, "--out", out]))
    card = (out / "MODEL_CARD.md").read_text()
    line = next(x for x in card.splitlines() if x.startswith("- members"))
    assert line.startswith("- members (probabilities averaged, one ONNX graph): crnn_cmvn, "
                           "ecapa_cmvn (2 augmented copies of each clip: reverb")
    trained_on = json.loads((out / "model.json").read_text())["trained_on"]
    assert trained_on["member_augment"][0] == "" and "reverb" in trained_on["member_augment"][1]
    # and where each member was trained (package versions, CPU)
    assert len(trained_on["member_environment"]) == 2 and "environment" not in trained_on
    assert "- crnn_cmvn trained with: torch " in card


def test_the_default_recipe_of_three_networks_exports_as_one_graph(members, tmp_path):
    """CRNN + ECAPA + the ResLSTM on the same log-mel (the bundled default's members): the
    LSTM exports inside the ensemble's ONNX graph and the graph averages the three."""
    out = tmp_path / "ens3"
    trio = [members[0], members[1], members[3]]
    ok(invoke(["ensemble", *trio, "--out", out]))
    clip = write_clip(tmp_path / "clip.wav", voice(3.5, f0=180.0))
    probs = [Predictor.from_artifact(p).clip_probabilities(clip) for p in trio]
    ens = Predictor.from_artifact(out)
    assert ens.backend == "onnx"
    assert ens.artifact_meta.name == "fusion(crnn_cmvn+ecapa_cmvn+reslstm_logmel)"
    np.testing.assert_allclose(ens.clip_probabilities(clip), sum(probs) / 3, atol=1e-4)
    torch_ens = Predictor.from_artifact(out, backend="torch")
    np.testing.assert_allclose(torch_ens.clip_probabilities(clip),
                               ens.clip_probabilities(clip), atol=1e-4)


def test_members_on_different_normalisations_read_their_own_block(members, tmp_path):
    """CMVN CRNN + gain-only ECAPA + CMVN ResLSTM: one Preprocess computes both
    normalisations side by side (``cmvn+gain``), each member reads the block it was trained
    on, and the ensemble's probabilities are still the mean of the members' own."""
    out = tmp_path / "mixed"
    trio = [members[0], members[2], members[3]]
    ok(invoke(["ensemble", *trio, "--out", out]))
    meta = json.loads((out / "model.json").read_text())
    assert meta["preprocess"]["feature_params"] == {"utt_norm": "cmvn+gain"}
    assert meta["network"]["params"]["inputs"] == [0, 1, 0]
    assert meta["network"]["input_shape"][1] == 128
    clip = write_clip(tmp_path / "clip.wav", voice(3.5, f0=160.0))
    probs = [Predictor.from_artifact(p).clip_probabilities(clip) for p in trio]
    ens = Predictor.from_artifact(out)
    assert ens.backend == "onnx"
    np.testing.assert_allclose(ens.clip_probabilities(clip), sum(probs) / 3, atol=1e-4)
    torch_ens = Predictor.from_artifact(out, backend="torch")
    np.testing.assert_allclose(torch_ens.clip_probabilities(clip), sum(probs) / 3, atol=1e-4)
    # a longer recording: every block normalised over the whole utterance, as in training
    long_clip = write_clip(tmp_path / "long.wav", voice(9.0, f0=140.0))
    probs = [Predictor.from_artifact(p).clip_probabilities(long_clip) for p in trio]
    np.testing.assert_allclose(ens.clip_probabilities(long_clip), sum(probs) / 3, atol=1e-4)
    # bench/split_ensemble.py gives each member back with its own normalisation
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    import split_ensemble

    parts = split_ensemble.split(out, tmp_path / "split")
    norms = [json.loads((p / "model.json").read_text())["preprocess"]["feature_params"]
             for p in parts]
    assert norms == [{"utt_norm": "cmvn"}, {"utt_norm": "gain"}, {"utt_norm": "cmvn"}]
    assert split_ensemble.check(out, parts) < 1e-5
    # split members do not know their training time: the re-joined card does not invent one
    assert "seconds" in json.loads((out / "model.json").read_text())["trained_on"]
    ok(invoke(["ensemble", *parts, "--out", tmp_path / "rejoined"]))
    assert "seconds" not in json.loads((tmp_path / "rejoined" / "model.json").read_text())[
        "trained_on"]
    assert "? s on CPU" in (tmp_path / "rejoined" / "MODEL_CARD.md").read_text()


@pytest.fixture(scope="module")
def functional(fake_ravdess, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("functional") / "prosody_logreg"
    ok(invoke(["train", "--data", fake_ravdess, "--out", out, "--model", "prosody_logreg",
               "-p", "C=0.001", "-j", "1"],  # strongly regularised: no saturated answers
              env={"EMOVOX_CACHE": str(out.parent / "cache")}))
    return out


def test_a_functional_member_joins_the_networks_in_one_graph(members, functional, tmp_path):
    """CRNN + ECAPA + prosody_logreg: the linear model on the untrimmed clip's functionals
    is one more member of the mean, inside the one ONNX graph, for short and long inputs."""
    out = tmp_path / "with-functional"
    trio = [members[0], members[1], functional]
    res = invoke(["ensemble", *trio, "--out", out])
    ok(res)
    assert "fusion(crnn_cmvn+ecapa_cmvn+prosody_logreg)" in text(res)
    meta = json.loads((out / "model.json").read_text())
    assert meta["preprocess"]["functional"] == "prosody"
    assert meta["network"]["params"]["functional"] == {"dim": 47}
    assert meta["network"]["input_shape"][1] == 64 + 47
    assert meta["trained_on"]["members"] == ["crnn_cmvn", "ecapa_cmvn", "prosody_logreg"]
    ens, torch_ens = Predictor.from_artifact(out), Predictor.from_artifact(out, backend="torch")
    assert ens.backend == "onnx"
    clip = write_clip(tmp_path / "clip.wav", voice(3.5, f0=170.0))
    probs = [Predictor.from_artifact(p).clip_probabilities(clip) for p in trio]
    assert probs[2].max() < 0.9  # the linear member's answer is not saturated
    np.testing.assert_allclose(ens.clip_probabilities(clip), sum(probs) / 3, atol=1e-4)
    np.testing.assert_allclose(torch_ens.clip_probabilities(clip), sum(probs) / 3, atol=1e-4)
    # a long recording is answered window by window: the functional of each window's wave
    long_clip = write_clip(tmp_path / "long.wav", voice(9.0, f0=150.0))
    pred = ens.predict_file(long_clip)
    assert pred.n_windows > 1
    np.testing.assert_allclose(ens.clip_probabilities(long_clip),
                               torch_ens.clip_probabilities(long_clip), atol=1e-4)
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    import split_ensemble

    with pytest.raises(SystemExit, match="functional"):
        split_ensemble.split(out, tmp_path / "split")
    # such an ensemble cannot teach a network: it reads more than the student's input
    from emovox.errors import ConfigError
    from emovox.experiment.distil import load_teacher_models
    from emovox.models import get_model_spec

    with pytest.raises(ConfigError, match="reads another input"):
        load_teacher_models([out], get_model_spec("crnn_cmvn"))
    # log-mel columns alone (without the functionals) are refused with the way to build them
    with pytest.raises(ValueError, match="window_features"):
        ens.predict_proba_features([np.zeros((64, 64), np.float32)])
    again = tmp_path / "functional-copy"  # the same folder twice is its own error
    shutil.copytree(functional, again)
    res = invoke(["ensemble", members[0], functional, again, "--out", tmp_path / "two"])
    ok(res, 2)
    assert "at most one functional" in text(res) and not (tmp_path / "two").exists()


@pytest.fixture(scope="module")
def robust(fake_ravdess, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("robust") / "prosody_robust_logreg"
    ok(invoke(["train", "--data", fake_ravdess, "--out", out, "--model",
               "prosody_robust_logreg", "-p", "C=0.001", "-j", "1"],
              env={"EMOVOX_CACHE": str(out.parent / "cache")}))
    return out


def test_a_narrow_band_member_answers_for_a_phone_line(members, functional, robust, tmp_path):
    """CRNN + ECAPA + prosody_logreg with prosody_robust_logreg as its narrow-band
    alternative: a full-band clip gets the mean with prosody_logreg, its telephone copy the
    mean with prosody_robust_logreg, in ONNX and torch alike."""
    from emovox import augment as aug

    out = tmp_path / "switch"
    res = invoke(["ensemble", members[0], members[1], functional, "--narrow-band", robust,
                  "--out", out])
    ok(res)
    assert "fusion(crnn_cmvn+ecapa_cmvn+prosody_logreg|prosody_robust_logreg)" in text(res)
    meta = json.loads((out / "model.json").read_text())
    assert meta["preprocess"]["band_floor_db"] == -35.3
    assert meta["network"]["params"]["functional"]["dim"] == 47
    assert len(meta["network"]["params"]["functional"]["narrow"]) == 41
    assert meta["network"]["input_shape"][1] == 64 + 47 + 1
    card = (out / "MODEL_CARD.md").read_text()
    assert ("prosody_logreg (for narrow-band input, a band ratio below -35.3 dB: "
            "prosody_robust_logreg)") in card
    ens, torch_ens = Predictor.from_artifact(out), Predictor.from_artifact(out, backend="torch")
    assert ens.backend == "onnx"
    rng = np.random.default_rng(0)
    wave = voice(3.5, f0=170.0) + rng.normal(0, 0.01, 56000).astype(np.float32)  # -21 dB
    for name, w, linear in (("full", wave, functional),
                            ("phone", aug.band_limit(wave, 16000, 300.0, 3400.0), robust)):
        clip = write_clip(tmp_path / f"{name}.wav", w)
        probs = [Predictor.from_artifact(p).clip_probabilities(clip)
                 for p in (members[0], members[1], linear)]
        np.testing.assert_allclose(ens.clip_probabilities(clip), sum(probs) / 3, atol=1e-4)
        np.testing.assert_allclose(torch_ens.clip_probabilities(clip), sum(probs) / 3,
                                   atol=1e-4)
    again = tmp_path / "functional-copy"
    shutil.copytree(functional, again)
    for args, message in (
            ([members[0], members[1], "--narrow-band", robust], "needs a functional"),
            ([members[0], functional, "--narrow-band", functional], "given twice"),
            ([members[0], functional, "--narrow-band", again], "columns of")):
        res = invoke(["ensemble", *args, "--out", tmp_path / "bad"])
        ok(res, 2)
        assert message in text(res) and not (tmp_path / "bad").exists()


def test_ensemble_refuses_members_that_read_another_input(members, tmp_path):
    import shutil

    untrimmed = tmp_path / "untrimmed"  # the same network, told it reads untrimmed audio
    shutil.copytree(members[1], untrimmed)
    meta = json.loads((untrimmed / "model.json").read_text())
    meta["preprocess"]["trim"] = False
    (untrimmed / "model.json").write_text(json.dumps(meta))
    res = invoke(["ensemble", members[0], untrimmed, "--out", tmp_path / "bad"])
    ok(res, 2)
    assert "reads another input" in text(res) and not (tmp_path / "bad").exists()
    res = invoke(["ensemble", members[0], "--out", tmp_path / "one"])
    ok(res, 2)
    assert "at least two" in text(res)
    flipped = []  # both members' labels reversed by hand: the ensemble was written with
    for i, m in enumerate(members[:2]):  # emovox's order, its answers mirrored (stop 46)
        shutil.copytree(m, tmp_path / f"flip{i}")
        meta = json.loads((tmp_path / f"flip{i}" / "model.json").read_text())
        meta["labels"] = meta["labels"][::-1]
        (tmp_path / f"flip{i}" / "model.json").write_text(json.dumps(meta))
        flipped.append(tmp_path / f"flip{i}")
    res = invoke(["ensemble", *flipped, "--out", tmp_path / "flipped"])
    ok(res, 2)
    assert "labels are not emovox's eight in their order" in text(res)


def test_ensemble_calibrate_also_needs_calibrate(members, tmp_path):
    res = invoke(["ensemble", members[0], members[1], "--calibrate-also", tmp_path,
                  "--out", tmp_path / "ens"])
    ok(res, 2)
    assert "--calibrate-also needs --calibrate" in text(res)
    assert not (tmp_path / "ens").exists()


def test_ensemble_calibrate_checks_each_fused_run_against_its_member(members, fake_ravdess,
                                                                     tmp_path):
    """A fused run has no config of its own: each run it fused is compared with the member of
    the same model (stop 33: a fused run of other recipes calibrated an ensemble silently)."""
    runs = []
    for model, epochs in (("crnn_cmvn", 2), ("ecapa_cmvn", 1)):  # the members: 1 epoch
        runs.append(tmp_path / model)
        ok(invoke(["evaluate", "--data", fake_ravdess, "--model", model, "--folds", "0",
                   "--val-speakers", "0", "-p", f"epochs={epochs}", "-p", "n_frames=64",
                   "-j", "1", "--out", runs[-1]],
                  env={"EMOVOX_CACHE": str(tmp_path / "cache")}))
    ok(invoke(["fuse", *runs, "--out", tmp_path / "fused"]))
    res = invoke(["ensemble", members[0], members[1], "--calibrate", tmp_path / "fused",
                  "--out", tmp_path / "ens"])
    ok(res)
    said = text(res)
    assert said.count("another recipe") == 1, said
    assert ("crnn_cmvn was run with another recipe than the members of "  # the run's path
            "fusion(crnn_cmvn+ecapa_cmvn) (model parameters epochs 2 vs 1") in said, said
