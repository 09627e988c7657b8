"""`reslstm_cmvn` end to end on the fake RAVDESS tree: one cross-validation fold, and
`emovox train` (ONNX export included) followed by a prediction."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_helpers import invoke, ok

from emovox.config import DataConfig, ExperimentConfig, ModelConfig, SplitConfig
from emovox.experiment import run_experiment
from emovox.serving.predictor import Predictor
from signals import voice, write_clip

pytestmark = pytest.mark.slow

TINY = {"epochs": 2, "n_frames": 64, "hidden": 16, "attention_dim": 8}


def test_one_fold_trains_and_scores(fake_ravdess, fake_cache, tmp_path):
    cfg = ExperimentConfig(data=DataConfig(root=str(fake_ravdess)),
                           split=SplitConfig(folds=(0,), n_val_speakers=1),
                           model=ModelConfig("reslstm_cmvn", dict(TINY)),
                           cache_dir=str(fake_cache), n_jobs=1)
    res = run_experiment(cfg, tmp_path / "r")
    assert res.extraction["feature"] == "mfcc_chroma"
    fold = res.folds[0]
    assert fold.n_test == 16 and 0.0 <= fold.metrics.ua <= 100.0 and fold.val_ua is not None
    history = json.loads((tmp_path / "r" / "history_fold0.json").read_text())
    assert len(history["val_ua"]) == 2 and np.isfinite(history["train_loss"]).all()


def test_train_exports_onnx_and_predicts(fake_ravdess, tmp_path):
    out = tmp_path / "m"
    args = [x for k, v in TINY.items() for x in ("-p", f"{k}={v}")]
    res = invoke(["train", "--data", fake_ravdess, "--out", out, "--model", "reslstm_cmvn",
                  *args, "-j", "1"], env={"EMOVOX_CACHE": str(tmp_path / "cache")})
    ok(res)
    meta = json.loads((out / "model.json").read_text())
    assert meta["onnx"]["dynamic_time"] is True
    assert meta["preprocess"]["feature"] == "mfcc_chroma" and meta["preprocess"]["trim"]
    pred = Predictor.from_artifact(out)
    assert pred.backend == "onnx"
    p = pred.clip_probabilities(write_clip(tmp_path / "clip.wav", voice(2.0)))
    assert p.shape == (8,) and abs(float(p.sum()) - 1.0) < 1e-5
