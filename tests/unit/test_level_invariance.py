"""Gain invariance of the normalised log-mel (issue 10): a constant gain must not change the
network input, by construction."""

from __future__ import annotations

import numpy as np
import pytest

from emovox.features import extract
from emovox.features.frontend import (
    CMVN_MIN_STD_DB,
    LogMelFrontEnd,
    UtteranceNorm,
    utterance_normalise,
)
from emovox.models import get_model_spec

SR = 16000


def vowel(seconds: float = 2.0, f0: float = 180.0, seed: int = 0) -> np.ndarray:
    """A gliding harmonic tone with a slow amplitude envelope and a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    phase = 2 * np.pi * f0 * (t + 0.05 * np.sin(2 * np.pi * 1.5 * t))
    w = sum(np.sin(k * phase) / k for k in range(1, 6)) * (0.6 + 0.4 * np.sin(2 * np.pi * t))
    return (0.1 * w / np.abs(w).max() + 0.002 * rng.standard_normal(len(t))).astype(np.float32)


@pytest.fixture(scope="module")
def cmvn_frontend() -> LogMelFrontEnd:
    return LogMelFrontEnd.from_params(SR, utt_norm="cmvn")


@pytest.mark.parametrize("peak_dbfs", [-35.0, -20.0, -6.0, -1.0])
def test_cmvn_input_does_not_depend_on_gain(cmvn_frontend, peak_dbfs):
    w = vowel()
    scaled = (w * (10 ** (peak_dbfs / 20) / np.abs(w).max())).astype(np.float32)
    np.testing.assert_allclose(cmvn_frontend(scaled), cmvn_frontend(w), atol=1e-4)


def test_plain_logmel_does_depend_on_gain():
    """The control: without utt_norm, 20 dB of gain moves every bin by about 20 dB."""
    fe = LogMelFrontEnd.from_params(SR)
    w = vowel()
    diff = fe(10 * w) - fe(w)
    assert 19.0 < float(np.median(diff)) < 21.0


def test_cmvn_bands_are_standardised(cmvn_frontend):
    x = cmvn_frontend(vowel())
    np.testing.assert_allclose(x.mean(axis=0), 0.0, atol=1e-4)
    std = x.std(axis=0)
    assert np.all(std <= 1.0 + 1e-4) and np.median(std) > 0.99


def test_flat_band_is_not_blown_up():
    """A band that barely moves keeps its small spread (std floored at CMVN_MIN_STD_DB)."""
    db = np.zeros((100, 2), np.float32)
    db[:, 0] = np.linspace(-50, -49.9, 100)  # 0.1 dB of movement
    db[:, 1] = np.linspace(-60, -20, 100)
    out = utterance_normalise(db, UtteranceNorm.CMVN)
    assert out[:, 0].std() < 0.1 / CMVN_MIN_STD_DB and abs(out[:, 1].std() - 1) < 1e-5


def test_librosa_feature_matches_numpy_frontend(cmvn_frontend):
    w = vowel(seed=3)
    np.testing.assert_allclose(extract("logmel", w, SR, utt_norm="cmvn"), cmvn_frontend(w),
                               atol=1e-3)


def test_frontend_params_round_trip_and_old_artifacts_read_as_none(cmvn_frontend):
    p, a = cmvn_frontend.params(), cmvn_frontend.arrays()
    assert p["utt_norm"] == "cmvn"
    again = LogMelFrontEnd.from_saved(p, a)
    assert again.utt_norm is UtteranceNorm.CMVN
    old = {k: v for k, v in p.items() if k != "utt_norm"}  # written before utt_norm existed
    assert LogMelFrontEnd.from_saved(old, a).utt_norm is UtteranceNorm.NONE
    assert "utt_norm" not in LogMelFrontEnd.from_params(SR).params()


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError):
        utterance_normalise(np.zeros((4, 2)), "loudest")


def test_crnn_cmvn_is_registered_with_the_normalised_input():
    spec = get_model_spec("crnn_cmvn")
    assert spec.feature == "logmel" and spec.feature_params == {"utt_norm": "cmvn"}
    assert spec.trim and spec.param_keys == get_model_spec("crnn").param_keys


@pytest.mark.parametrize("top_db", [80.0, None])
def test_cropped_cmvn_frames_use_whole_utterance_statistics(top_db):
    """The predictor's crop path (``frames=``) gathers the normalisation statistics of the
    whole utterance block by block: the same input as normalising everything, then cropping."""
    fe = LogMelFrontEnd.from_params(SR, utt_norm="cmvn", top_db=top_db)
    w = np.concatenate([vowel(20.0, seed=1), 0.3 * vowel(30.0, f0=120.0, seed=2)])  # > 1 block
    full = fe(w)
    for lo, hi in [(100, 356), (4000, 4256), (full.shape[0] - 256, full.shape[0])]:
        np.testing.assert_allclose(fe(w, frames=(lo, hi)), full[lo:hi], atol=1e-4)


@pytest.mark.parametrize("peak_dbfs", [-35.0, -1.0])
def test_gain_mode_removes_the_gain_and_keeps_the_spectral_shape(peak_dbfs):
    fe = LogMelFrontEnd.from_params(SR, utt_norm="gain")
    plain = LogMelFrontEnd.from_params(SR)
    w = vowel()
    scaled = (w * (10 ** (peak_dbfs / 20) / np.abs(w).max())).astype(np.float32)
    out = fe(scaled)
    np.testing.assert_allclose(out, fe(w), atol=1e-3)  # dB units: 1e-3 dB
    assert abs(float(out.mean())) < 1e-3
    # one number removed: the input minus its overall mean, band differences in dB kept
    raw = plain(w).astype(np.float64)
    np.testing.assert_allclose(fe(w), raw - raw.mean(), atol=1e-3)
    assert float(np.ptp(out.mean(axis=0))) > 10.0  # a harmonic tone is far from flat


def test_gain_mode_function_subtracts_one_mean():
    x = np.array([[0.0, 10.0], [2.0, 12.0]])
    np.testing.assert_allclose(utterance_normalise(x, "gain"), x - 6.0)
    np.testing.assert_allclose(utterance_normalise(x + 37.5, UtteranceNorm.GAIN), x - 6.0)


@pytest.mark.parametrize("top_db", [80.0, None])
def test_cropped_gain_frames_use_whole_utterance_statistics(top_db):
    fe = LogMelFrontEnd.from_params(SR, utt_norm="gain", top_db=top_db)
    w = np.concatenate([vowel(20.0, seed=1), 0.3 * vowel(30.0, f0=120.0, seed=2)])  # > 1 block
    full = fe(w)
    for lo, hi in [(100, 356), (full.shape[0] - 256, full.shape[0])]:
        np.testing.assert_allclose(fe(w, frames=(lo, hi)), full[lo:hi], atol=1e-3)


def test_ecapa_gain_is_registered_with_the_gain_input_and_mfcc_refuses_it():
    spec = get_model_spec("ecapa_gain")
    assert spec.feature == "logmel" and spec.feature_params == {"utt_norm": "gain"}
    assert spec.param_keys == get_model_spec("ecapa_cmvn").param_keys
    with pytest.raises(ValueError, match="utt_norm"):
        extract("mfcc_chroma", vowel(0.5), SR, utt_norm="gain")


def test_cmn_mode_removes_each_band_mean_and_keeps_its_range():
    fe = LogMelFrontEnd.from_params(SR, utt_norm="cmn")
    plain = LogMelFrontEnd.from_params(SR)
    w = vowel()
    raw = plain(w).astype(np.float64)
    out = fe(w)
    np.testing.assert_allclose(out, raw - raw.mean(axis=0), atol=1e-3)
    np.testing.assert_allclose(out.std(axis=0), raw.std(axis=0), rtol=1e-4)
    np.testing.assert_allclose(fe((0.05 * w).astype(np.float32)), out, atol=1e-3)
    x = np.array([[0.0, 10.0], [2.0, 14.0]])
    np.testing.assert_allclose(utterance_normalise(x, "cmn"), [[-1.0, -2.0], [1.0, 2.0]])
    lo, hi = 50, 150
    np.testing.assert_allclose(fe(w, frames=(lo, hi)), out[lo:hi], atol=1e-3)
    assert get_model_spec("ecapa_cmn").feature_params == {"utt_norm": "cmn"}
