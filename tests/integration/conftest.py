"""Fixtures for the integration tests: one tiny model trained once per session with
``emovox train`` on the fake RAVDESS tree (1 epoch: barely better than chance, which is all
these tests need), a few good clips, real clips and a folder of awkward inputs."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from api_helpers import MAX_BYTES, MAX_DURATION, encode, make_test_client
from cli_helpers import DECODABLE, ERRORS, SR, invoke, ok, text, tone

from signals import voice


@pytest.fixture(scope="session")
def cli_model(fake_ravdess, tmp_path_factory) -> Path:
    """``emovox train`` (crnn, 1 epoch, 64 frames) -> a model folder with model.onnx."""
    root = tmp_path_factory.mktemp("cli-model")
    out = root / "model"
    res = invoke(["train", "--data", fake_ravdess, "--out", out, "-p", "epochs=1",
                  "-p", "n_frames=64", "-j", "1"],
                 env={"EMOVOX_CACHE": str(root / "cache")})
    ok(res)
    assert "trained crnn on 96 clips of 6 speakers" in text(res)
    assert {"model.json", "weights.safetensors", "model.onnx"} <= {p.name for p in out.iterdir()}
    return out


@pytest.fixture(scope="session")
def good_clips(fake_ravdess) -> list[Path]:
    return sorted(fake_ravdess.glob("Actor_01/*.wav"))[:2]


@pytest.fixture(scope="session")
def real_clips(shared_data) -> list[Path]:
    folder = shared_data / "ravdess" / "original-48k"
    clips = sorted(folder.glob("*.wav"))[:2]
    if len(clips) < 2:
        pytest.skip(f"no real clips in {folder} (set EMOVOX_SHARED_DATA)")
    return clips


@pytest.fixture(scope="session")
def bad_dir(tmp_path_factory) -> Path:
    """Awkward input, one file each (see ERRORS and DECODABLE)."""
    d = tmp_path_factory.mktemp("bad-input")
    (d / "empty.wav").write_bytes(b"")
    buf = io.BytesIO()
    sf.write(buf, tone(2.0), SR, format="WAV", subtype="PCM_16")
    data = buf.getvalue()
    assert data[36:40] == b"data"  # 44-byte header: the cut below lands mid-sample
    (d / "truncated.wav").write_bytes(data[: 44 + (len(data) - 44) // 2 + 1])
    (d / "notaudio.wav").write_text("this is a text file, not a recording\n" * 20)
    sf.write(d / "short.wav", tone(0.1), SR, subtype="PCM_16")
    sf.write(d / "silent.wav", np.zeros(2 * SR, np.float32), SR, subtype="PCM_16")
    stereo = np.stack([tone(1.5, 48000), tone(1.5, 48000, f0=330.0, seed=1)], axis=1)
    sf.write(d / "stereo48k.wav", stereo, 48000, subtype="PCM_16")
    sf.write(d / "rate8k.wav", tone(1.5, 8000), 8000, subtype="PCM_16")
    sf.write(d / "float64.wav", tone(1.5).astype(np.float64), SR, subtype="DOUBLE")
    buf = io.BytesIO()
    sf.write(buf, tone(1.5), SR, format="AIFF", subtype="PCM_16")
    (d / "aiff_as.wav").write_bytes(buf.getvalue())
    assert sorted(p.name for p in d.iterdir()) == sorted([*ERRORS, *DECODABLE])
    return d


@pytest.fixture(scope="module")
def wav3() -> bytes:
    """3 s of a voice-like tone as WAV bytes (the API tests' usual upload)."""
    return encode(voice(3.0), "WAV")


@pytest.fixture(scope="module")
def client(tiny_model):
    """FastAPI's TestClient on the tiny model, with small upload and duration limits."""
    pytest.importorskip("fastapi")
    from emovox.api.server import create_app

    app = create_app(tiny_model, max_bytes=MAX_BYTES, max_duration=MAX_DURATION)
    with make_test_client(app) as c:
        yield c


@pytest.fixture
def fits(monkeypatch) -> list:
    """``(n training items, speakers given, unlabelled given)`` of every TorchClassifier.fit,
    as it trains."""
    from emovox.training.trainer import TorchClassifier

    seen: list = []
    real = TorchClassifier.fit

    def spy(self, x, y, xv, yv, soft_targets=None, speakers=None, unlabelled=None):
        seen.append((len(y), speakers, unlabelled))
        return real(self, x, y, xv, yv, soft_targets, speakers, unlabelled)

    monkeypatch.setattr(TorchClassifier, "fit", spy)
    return seen
