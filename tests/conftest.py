"""Shared fixtures: a fake RAVDESS tree with real file names and learnable audio."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emovox.labels import LABELS

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "ravdess"
SR = 16000


def tone_for(emotion: int, actor: int, rep: int, rng: np.random.Generator) -> np.ndarray:
    """0.8 s of a harmonic tone whose pitch encodes the emotion (so it is learnable),
    shifted a little per actor, with noise."""
    t = np.arange(int(0.8 * SR)) / SR
    f0 = 120.0 * 2 ** (emotion / 4) * (1 + 0.02 * (actor % 3)) * (1 + 0.01 * rep)
    wave = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in (1, 2, 3))
    wave = 0.3 * wave / np.max(np.abs(wave)) + 0.01 * rng.standard_normal(len(t))
    return wave.astype(np.float32)


def make_fake_ravdess(root: Path, actors: tuple[int, ...] = (1, 2, 3, 4, 5, 6)) -> Path:
    rng = np.random.default_rng(0)
    for a in actors:
        d = root / f"Actor_{a:02d}"
        d.mkdir(parents=True, exist_ok=True)
        for e in range(1, 9):
            for rep in (1, 2):
                name = f"03-01-{e:02d}-01-01-{rep:02d}-{a:02d}.wav"
                sf.write(d / name, tone_for(e, a, rep, rng), SR, subtype="PCM_16")
    return root


@pytest.fixture(scope="session")
def fake_ravdess(tmp_path_factory) -> Path:
    """6 actors x 8 emotions x 2 repetitions = 96 wav files with official RAVDESS names."""
    return make_fake_ravdess(tmp_path_factory.mktemp("ravdess"))


@pytest.fixture(scope="session")
def shared_ravdess() -> Path:
    if not (SHARED / "Audio_Speech_Actors_01-24").is_dir():
        pytest.skip(f"real RAVDESS not found at {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def fake_cache(tmp_path_factory) -> Path:
    """One feature cache for every test that runs experiments on the fake tree."""
    return tmp_path_factory.mktemp("feature-cache")


@pytest.fixture(scope="session")
def ravdess_maker():
    """``make_fake_ravdess(root, actors)`` for tests that need their own tree."""
    return make_fake_ravdess


def build_tiny_model(base: Path) -> Path:
    """A 1-epoch crnn on 16 tones, packaged like the bundled model (front end, ONNX,
    MODEL_CARD.md) with a made-up cross-validation block for the model-card pages.
    Worthless as a classifier; it exercises the product path. Cached under ``base``."""
    out = base / "model"
    if (out / "MODEL_CARD.md").is_file():
        return out
    from emovox.artifact import attach_inference, read_meta, save_model
    from emovox.experiment.package import model_card
    from emovox.features import extract
    from emovox.models import crnn
    from emovox.training.export import export_onnx
    from emovox.training.trainer import TorchClassifier

    rng = np.random.default_rng(0)
    t = np.arange(int(0.6 * SR)) / SR
    feats, y = [], []
    for i in range(16):
        f0 = 120.0 * 2 ** ((i % 8) / 4)
        w = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in (1, 2, 3))
        w = 0.3 * w / np.max(np.abs(w)) + 0.01 * rng.standard_normal(len(t))
        feats.append(extract("logmel", w.astype(np.float32), SR))
        y.append(i % 8)
    model = TorchClassifier(crnn.build_net, n_classes=8, seed=0,
                            **{**crnn.DEFAULTS, "n_frames": 64, "epochs": 1})
    model.fit(feats, np.array(y), feats[:8], np.array(y[:8]))
    cv = {"protocol": "emobox",
          "summary": {k: {"mean": 50.0, "std": 5.0} for k in ("ua", "wa", "macro_f1",
                                                               "weighted_f1")},
          "pooled": {"labels": list(LABELS), "confusion": (np.eye(8, dtype=int) * 5 + 1).tolist(),
                     "recall": {lab: 40.0 + 5 * i for i, lab in enumerate(LABELS)}},
          "worst_class": {"label": "neutral", "recall": 40.0}}
    stage = Path(tempfile.mkdtemp(dir=base.parent, prefix=".tiny-model-"))
    m = save_model(model, stage / "model", {"model": {"name": "crnn", "params": {}}},
                   metrics=cv, extra={"name": "crnn", "cross_validation": cv})
    attach_inference(m)
    export_onnx(m)
    (m / "MODEL_CARD.md").write_text(model_card(read_meta(m).card_view()))
    base.mkdir(parents=True, exist_ok=True)
    m.rename(out)
    shutil.rmtree(stage, ignore_errors=True)
    return out


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.getbasetemp() / "emovox-web-tiny-model")
