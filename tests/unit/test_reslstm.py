"""The ResLSTM (``reslstm_cmvn``): its MFCC + chroma input (layout, per-utterance
normalisation, gain invariance), its config, its shapes, attention and residual paths, and a
tiny trained model exported to ONNX and served."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from emovox.errors import ConfigError
from emovox.features import extract, spectral
from emovox.features.mfcc_chroma import MFCC_CHROMA_MIN_STD, mfcc_chroma
from emovox.features.uttnorm import standardise_columns
from emovox.models import get_model_spec, reslstm
from emovox.models.layers import AdditiveAttentionPool
from emovox.models.reslstm import ResLstmConfig
from signals import harmonic, sine, write_clip

SR = 16000
A_PITCH_CLASS = 9
N_CEPS = 60  # 20 MFCC + deltas + delta-deltas (the defaults)


def gliding_vowel(seconds: float = 1.5, seed: int = 0) -> np.ndarray:
    """A harmonic tone gliding around 180 Hz with a slow envelope and a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    phase = 2 * np.pi * 180.0 * (t + 0.05 * np.sin(2 * np.pi * 1.5 * t))
    w = sum(np.sin(k * phase) / k for k in range(1, 6)) * (0.6 + 0.4 * np.sin(2 * np.pi * t))
    return (0.05 * w / np.abs(w).max() + 0.002 * rng.standard_normal(len(t))).astype(np.float32)


# -- the input ---------------------------------------------------------------------------


def test_columns_are_the_cepstra_then_the_chroma() -> None:
    w = gliding_vowel()
    x = mfcc_chroma(w, SR)
    t = 1 + len(w) // 160
    assert x.shape == (t, N_CEPS + 12) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, :N_CEPS], spectral.mfcc(w, SR, deltas=2).T, atol=1e-5)
    np.testing.assert_allclose(x[:, N_CEPS:], spectral.chroma(w, SR, tuning=0.0).T, atol=1e-6)
    a440 = mfcc_chroma(sine(440.0, 1.0), SR)
    assert np.argmax(a440[:, N_CEPS:].mean(axis=0)) == A_PITCH_CLASS


def test_other_sizes_change_the_width() -> None:
    x = mfcc_chroma(gliding_vowel(0.5), SR, n_mfcc=13, deltas=1, hop_length=320)
    assert x.shape == (1 + 8000 // 320, 13 * 2 + 12)


def test_cmvn_standardises_every_column() -> None:
    x = extract("mfcc_chroma", gliding_vowel(), SR, utt_norm="cmvn")
    np.testing.assert_allclose(x.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(x.std(axis=0), 1.0, atol=1e-4)


@pytest.mark.parametrize("gain", [10.0, 0.5])
def test_normalised_input_does_not_depend_on_gain(gain: float) -> None:
    w = gliding_vowel(seed=1)
    base = extract("mfcc_chroma", w, SR, utt_norm="cmvn")
    scaled = extract("mfcc_chroma", (gain * w).astype(np.float32), SR, utt_norm="cmvn")
    np.testing.assert_allclose(scaled, base, atol=2e-3)


def test_served_input_does_not_depend_on_gain() -> None:
    """The model's whole preprocessing (trim at 40 dB below the peak, then the feature)
    gives the same frames for a clip and the clip x 10 (the trim threshold follows the peak)."""
    from emovox.artifact.build import preprocess_for_model

    pre = preprocess_for_model("reslstm_cmvn")
    assert pre.trim and pre.feature == "mfcc_chroma"
    silence = np.zeros(SR // 4, np.float32)
    w = np.concatenate([silence, gliding_vowel(seed=3), silence])
    base = pre.features(pre.prepare_wave(w, SR))
    loud = pre.features(pre.prepare_wave(10 * w, SR))
    assert base.shape == loud.shape and base.shape[0] < 1 + len(w) // 160  # trimmed
    np.testing.assert_allclose(loud, base, atol=2e-3)


def test_without_normalisation_gain_moves_c0_only() -> None:
    """The control: 20 dB of gain moves c_0 by 20 dB x sqrt(64 bands) = 160 and nothing
    else (orthonormal DCT; chroma frames are peak-normalised)."""
    w = gliding_vowel(seed=2)
    diff = extract("mfcc_chroma", 10 * w, SR) - extract("mfcc_chroma", w, SR)
    assert 155.0 < float(np.median(diff[:, 0])) < 165.0
    assert np.abs(diff[:, 1:]).max() < 0.05


def test_constant_columns_become_zeros_not_nan() -> None:
    x = np.zeros((50, 3), np.float32)
    x[:, 1] = 7.0
    x[:, 2] = np.linspace(0, 1, 50)
    z = standardise_columns(x, MFCC_CHROMA_MIN_STD)
    assert np.array_equal(z[:, :2], np.zeros((50, 2), np.float32))
    assert abs(float(z[:, 2].std()) - 1.0) < 1e-5
    s = extract("mfcc_chroma", np.zeros(SR, np.float32), SR, utt_norm="cmvn")
    # digital silence: every column constant up to float32 rounding of the deltas of c_0
    assert np.isfinite(s).all() and np.abs(s).max() < 0.05


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="cmvn"):
        mfcc_chroma(gliding_vowel(0.3), SR, utt_norm="loudness")
    with pytest.raises(ValueError, match="deltas"):
        mfcc_chroma(gliding_vowel(0.3), SR, deltas=3)
    with pytest.raises(ValueError, match="n_mfc"):
        extract("mfcc_chroma", gliding_vowel(0.3), SR, n_mfc=13)


def test_registered_model_reads_the_normalised_trimmed_input() -> None:
    spec = get_model_spec("reslstm_cmvn")
    assert (spec.feature, spec.feature_params, spec.trim) == ("mfcc_chroma",
                                                             {"utt_norm": "cmvn"}, True)
    assert spec.defaults.n_frames == 256 and spec.defaults.schedule.value == "cosine"


# -- the config and the network ----------------------------------------------------------


def test_config_rejects_unknown_keys() -> None:
    with pytest.raises(ConfigError, match="did you mean 'hidden'"):
        ResLstmConfig.from_params({"hiden": 64})
    with pytest.raises(TypeError):
        ResLstmConfig(hiden=64)  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="blocks"):
        reslstm.build_net(8, (64, 72), blocks="two")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ResLstmConfig().hidden = 3  # type: ignore[misc]
    with pytest.raises(ValueError, match=">= 1"):
        reslstm.build_net(8, (64, 72), blocks=0)
    with pytest.raises(ValueError, match="T >= 4"):
        reslstm.build_net(8, (3, 72), stack=4)


@pytest.mark.parametrize(("stack", "t", "steps"), [(2, 101, 50), (1, 101, 101), (3, 64, 21)])
def test_forward_shapes(stack: int, t: int, steps: int) -> None:
    torch.manual_seed(0)
    net = reslstm.build_net(8, (t, 30), hidden=16, attention_dim=8, stack=stack).eval()
    x = torch.randn(5, t, 30)
    with torch.no_grad():
        assert net.frames(x).shape == (5, steps, 32)
        out = net(x)
    assert out.shape == (5, 8) and torch.isfinite(out).all()


def test_attention_weights_sum_to_one_and_pool_is_their_weighted_mean() -> None:
    torch.manual_seed(0)
    pool = AdditiveAttentionPool(12, 6)
    h = torch.randn(3, 17, 12)
    a = pool.weights(h)
    assert a.shape == (3, 17) and bool((a >= 0).all())
    torch.testing.assert_close(a.sum(dim=1), torch.ones(3))
    assert float(a.detach().std()) > 0  # not a plain mean
    torch.testing.assert_close(pool(h), torch.einsum("bt,btd->bd", a, h))


def test_blocks_are_residual() -> None:
    """A block whose LSTM has all-zero weights outputs h = 0 (o = 1/2, c = 0), so the block
    is the identity: its input reaches the output unchanged."""
    torch.manual_seed(0)
    net = reslstm.build_net(8, (40, 20), hidden=8).eval()
    block = net.blocks[0]
    with torch.no_grad():
        for p in block.lstm.parameters():
            p.zero_()
        h = torch.randn(2, 20, 16)
        torch.testing.assert_close(block(h), h)


# -- trained, exported, served -----------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_artifact(tmp_path_factory):
    """A 2-epoch ResLSTM (hidden 16) on 24 tones, saved as ``reslstm_cmvn`` and exported."""
    from emovox.artifact import save_model
    from emovox.training.export import export_onnx
    from emovox.training.trainer import TorchClassifier

    pre = get_model_spec("reslstm_cmvn")
    rng = np.random.default_rng(0)
    feats, y = [], []
    for i in range(24):
        w = harmonic(120.0 * 2 ** ((i % 8) / 4), 0.5, SR, noise=0.01, rng=rng)
        feats.append(extract("mfcc_chroma", w, SR, **pre.feature_params))
        y.append(i % 8)
    params = {**pre.defaults.to_params(), "hidden": 16, "attention_dim": 8, "epochs": 2,
              "n_frames": 48, "threads": 1}
    model = TorchClassifier(reslstm.build_net, n_classes=8, seed=0, **params)
    model.fit(feats, np.array(y), feats[:8], np.array(y[:8]))
    out = save_model(model, tmp_path_factory.mktemp("reslstm") / "m",
                     {"model": {"name": "reslstm_cmvn", "params": {"hidden": 16}}})
    export_onnx(out)
    return out


def test_onnx_export_matches_torch_and_keeps_time_dynamic(tiny_artifact, tmp_path) -> None:
    from emovox.serving.predictor import Predictor

    meta = json.loads((tiny_artifact / "model.json").read_text())
    assert meta["onnx"]["dynamic_time"] is True and meta["onnx"]["max_abs_diff"] <= 1e-4
    assert meta["preprocess"]["feature"] == "mfcc_chroma"
    assert meta["preprocess"]["feature_params"] == {"utt_norm": "cmvn"}
    clip = write_clip(tmp_path / "clip.wav", harmonic(150.0, 1.2, SR, noise=0.01))
    onnx = Predictor.from_artifact(tiny_artifact, backend="onnx", threads=1)
    ref = Predictor.from_artifact(tiny_artifact, backend="torch")
    assert onnx.backend == "onnx"
    p_onnx, p_torch = onnx.clip_probabilities(clip), ref.clip_probabilities(clip)
    assert p_onnx.shape == (8,) and abs(float(p_onnx.sum()) - 1.0) < 1e-5
    np.testing.assert_allclose(p_onnx, p_torch, atol=1e-4)
