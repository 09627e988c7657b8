"""Shared fixtures: the real data in ``../shared`` (``shared_data``, ``shared_ravdess``), a fake
RAVDESS tree with real file names and learnable audio, and a tiny packaged model.

Layout: ``tests/unit`` (fast, synthetic) and ``tests/integration`` (real corpora, CLI runs end
to end, API/web servers, the browser). ``pytest -m "not slow"`` is the quick loop."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from emovox.labels import LABELS
from signals import SR, emotion_tone, write_clip

# Tables are checked at the width a pipe gets (120 columns); pytest-xdist workers inherit the
# controller terminal's COLUMNS (often 80), which wraps table cells mid-phrase.
os.environ["COLUMNS"] = "120"

SHARED_DATA_ENV = "EMOVOX_SHARED_DATA"
DEFAULT_SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def shared_data_root() -> Path:
    """``$EMOVOX_SHARED_DATA`` when set, else ``../shared/data`` next to the repository."""
    env = os.environ.get(SHARED_DATA_ENV)
    return Path(env).expanduser() if env else DEFAULT_SHARED_DATA


def require_shared(path: Path) -> Path:
    """``path`` (inside the shared data), or skip the test naming it and the variable."""
    if not path.exists():
        pytest.skip(f"shared data not found: {path} (set {SHARED_DATA_ENV} to the folder "
                    "holding ravdess/)")
    return path


def make_fake_ravdess(root: Path, actors: tuple[int, ...] = (1, 2, 3, 4, 5, 6)) -> Path:
    rng = np.random.default_rng(0)
    for a in actors:
        d = root / f"Actor_{a:02d}"
        d.mkdir(parents=True, exist_ok=True)
        for e in range(1, 9):
            for rep in (1, 2):
                name = f"03-01-{e:02d}-01-01-{rep:02d}-{a:02d}.wav"
                write_clip(d / name, emotion_tone(e, rng, actor=a, rep=rep))
    return root


@pytest.fixture(scope="session")
def fake_ravdess(tmp_path_factory) -> Path:
    """6 actors x 8 emotions x 2 repetitions = 96 wav files with official RAVDESS names."""
    return make_fake_ravdess(tmp_path_factory.mktemp("ravdess"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Root of the shared data (``../shared/data`` or ``$EMOVOX_SHARED_DATA``); skips if absent."""
    return require_shared(shared_data_root())


@pytest.fixture(scope="session")
def shared_ravdess(shared_data) -> Path:
    """The real RAVDESS folder (``Audio_Speech_Actors_01-24``, ``original-48k``); skips if
    its speech set is absent."""
    require_shared(shared_data / "ravdess" / "Audio_Speech_Actors_01-24")
    return shared_data / "ravdess"


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
    feats, y = [], []
    for i in range(16):
        feats.append(extract("logmel", emotion_tone(i % 8, rng, seconds=0.6), SR))
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


@pytest.fixture
def app_env(tiny_model, monkeypatch):
    """The web app's environment: the tiny model, a 1 MB / 20 s upload limit."""
    monkeypatch.setenv("EMOVOX_MODEL", str(tiny_model))
    monkeypatch.setenv("EMOVOX_MAX_UPLOAD_MB", "1")
    monkeypatch.setenv("EMOVOX_MAX_DURATION_S", "20")
    monkeypatch.delenv("EMOVOX_BACKEND", raising=False)
    return monkeypatch


@pytest.fixture
def python_sigint():
    """Python's own Ctrl-C handler during the test: a CI runner's background job inherits
    SIGINT ignored, and a test of what Ctrl-C does then sees nothing (clean-clone CI, 48)."""
    import signal

    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)
