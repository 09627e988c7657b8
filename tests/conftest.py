"""Shared fixtures: a fake RAVDESS tree with real file names and learnable audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

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


@pytest.fixture(scope="session")
def tiny_model(fake_ravdess, fake_cache, tmp_path_factory) -> Path:
    """A crnn trained for one epoch on the fake tree, packaged like the bundled model
    (front end, ONNX). Worthless as a classifier; exercises the product path."""
    from emovox.bundle import train_bundle
    from emovox.config import DataConfig, ExperimentConfig, ModelConfig

    cfg = ExperimentConfig(
        data=DataConfig(root=str(fake_ravdess)),
        model=ModelConfig("crnn", {"epochs": 1, "n_frames": 64}),
        cache_dir=str(fake_cache), n_jobs=1,
    )
    return train_bundle(cfg, tmp_path_factory.mktemp("tiny") / "model").path
