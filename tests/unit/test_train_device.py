"""Training on a GPU (``-p device=cuda``, stop 49): refused clearly where PyTorch has none;
where it has one, the network trains there and comes back to the CPU to be saved and
served. CI has no GPU: the CUDA tests run on a machine that has one."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from emovox.artifact import save_model
from emovox.errors import ConfigError
from emovox.models import MODELS
from emovox.models.params import Device
from emovox.training import build_model, check_device
from emovox.training.trainer import load_trained, torch_device

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here")


def _sequences(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, 64, 16) noise whose band ``label`` is raised by 2: each class is told by one
    band, so a network that learns anything gets most of them."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 8
    x = rng.normal(size=(n, 64, 16)).astype(np.float32)
    x[np.arange(n), :, y] += 2.0
    return x, y


def test_cuda_without_a_gpu_is_refused_before_training(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="device=cuda: this PyTorch sees no CUDA GPU"):
        torch_device(Device.CUDA)
    x, y = _sequences(16, 0)
    model = build_model(MODELS["ecapa_cmvn"], n_classes=8, seed=0, epochs=1, n_frames=64,
                        threads=1, device="cuda")
    with pytest.raises(ConfigError, match="device=cuda"):
        model.fit(x, y, x[:8], y[:8])
    assert model.net is None  # nothing was built, nothing trained
    assert torch_device(Device.CPU) == torch.device("cpu")


def test_the_harness_refuses_cuda_without_a_gpu_before_extraction(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    params = MODELS["ecapa_cmvn"].validate({"device": "cuda"})
    with pytest.raises(ConfigError, match="device=cuda"):
        check_device(params)  # run_experiment calls it before any feature is extracted
    check_device(MODELS["ecapa_cmvn"].validate({"device": "cpu"}))
    check_device({})


def test_a_model_trained_on_cuda_loads_and_predicts_without_one(tmp_path, monkeypatch):
    """A model folder whose record says it trained on a GPU answers on a CPU-only machine
    as it did; only training it again there is refused."""
    x, y = _sequences(64, 2)
    model = build_model(MODELS["ecapa_cmvn"], n_classes=8, seed=0, epochs=1, n_frames=64,
                        threads=1, channels=16, se_dim=4)
    model.fit(x[:48], y[:48], x[48:], y[48:])
    out = save_model(model, tmp_path / "m", {"model": {"name": "ecapa_cmvn"}})
    meta_path = out / "model.json"
    doc = json.loads(meta_path.read_text())
    assert doc["network"]["train"]["device"] == "cpu"
    doc["network"]["train"]["device"] = "cuda"  # as a GPU run writes it
    meta_path.write_text(json.dumps(doc))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    again, meta = load_trained(out)
    assert meta.network.train["device"] == "cuda"
    np.testing.assert_allclose(again.predict_proba(x[48:]), model.predict_proba(x[48:]),
                               atol=1e-6)
    with pytest.raises(ConfigError, match="device=cuda"):
        again.fit(x[:48], y[:48], x[48:], y[48:])


def test_an_unknown_device_is_refused_at_construction():
    with pytest.raises(ConfigError, match="device"):
        build_model(MODELS["ecapa_cmvn"], n_classes=8, seed=0, device="gpu")


@needs_cuda
def test_a_network_trained_on_cuda_comes_back_to_the_cpu(tmp_path):
    x, y = _sequences(256, 1)
    model = build_model(MODELS["ecapa_cmvn"], n_classes=8, seed=0, epochs=8, n_frames=64,
                        threads=1, device="cuda", channels=32, se_dim=8)
    model.fit(x[:192], y[:192], x[192:], y[192:])
    assert {p.device.type for p in model.net.parameters()} == {"cpu"}
    assert max(model.history.val_ua) > 60  # it learnt (chance: 12.5)
    p = model.predict_proba(x[192:])
    np.testing.assert_allclose(p.sum(1), 1, atol=1e-5)
    out = save_model(model, tmp_path / "m", {"model": {"name": "ecapa_cmvn"}})
    again, meta = load_trained(out)
    np.testing.assert_allclose(again.predict_proba(x[192:]), p, atol=1e-6)
    assert meta.network.train["device"] == "cuda"  # where it trained, on record
