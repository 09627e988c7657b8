"""Known-answer tests of ``emovox.features.voice_quality`` on synthetic vowels: an impulse
train (known periods and amplitudes) through three resonators (known formants)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import lfilter

from emovox.features import FEATURES, extract
from emovox.features.prosody import analyse, prosody
from emovox.features.voice_quality import (
    FEATURE_NAMES,
    VQ_NAMES,
    formants,
    pitch_marks,
    prosody_vq,
)
from emovox.models import MODELS
from signals import SR, noise, silence

FORMANTS = (700.0, 1200.0, 2600.0)


def vowel(f0: float = 120.0, *, jitter: float = 0.0, shimmer: float = 0.0, seconds: float = 1.0,
          seed: int = 0) -> np.ndarray:
    """Glottal impulses every ``sr / f0`` samples (each period and amplitude scaled by
    ``1 + jitter * N(0, 1)`` / ``1 + shimmer * N(0, 1)``) through resonators at
    :data:`FORMANTS` (bandwidths 80, 90, 120 Hz); peak 0.5."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    x, t = np.zeros(n), 0.0
    while t < n:
        x[int(t)] = 1.0 + shimmer * rng.standard_normal()
        t += SR / f0 * (1.0 + jitter * rng.standard_normal())
    for f, bw in zip(FORMANTS, (80.0, 90.0, 120.0), strict=True):
        r, th = np.exp(-np.pi * bw / SR), 2 * np.pi * f / SR
        x = lfilter([1.0], [1.0, -2 * r * np.cos(th), r * r], x)
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


def named(wave: np.ndarray) -> dict[str, float]:
    return dict(zip(FEATURE_NAMES, prosody_vq(wave, SR).tolist(), strict=True))


def test_shape_names_registry_and_the_prosody_part() -> None:
    x = vowel()
    v = extract("prosody_vq", x, SR)
    assert v.shape == (len(FEATURE_NAMES),) == (75,) and len(VQ_NAMES) == 28
    assert v.dtype == np.float32 and len(set(FEATURE_NAMES)) == 75
    np.testing.assert_array_equal(v[:47], prosody(x, SR))  # the same analysis, reused
    assert FEATURES["prosody_vq"].kind == "vector"
    assert MODELS["prosody_vq_logreg"].feature == "prosody_vq"


def test_formants_of_a_synthetic_vowel() -> None:
    v = named(vowel())
    for k, f in enumerate(FORMANTS, start=1):
        assert v[f"f{k}_freq_mean"] == pytest.approx(f, rel=0.05)
        assert 0 < v[f"f{k}_bw_mean"] < 400
    # F1 is the strongest resonance, F3 the weakest: amplitudes relative to the F0 harmonic
    assert v["f1_amp_mean"] > v["f2_amp_mean"] > v["f3_amp_mean"]
    assert v["h1_a3_mean"] == pytest.approx(-v["f3_amp_mean"], abs=1e-3)


def test_formants_of_raw_frames_and_frames_without_any() -> None:
    frames = np.lib.stride_tricks.sliding_window_view(vowel(), 640)[::160][2:6]
    fq, bw = formants(frames.astype(np.float64), SR)
    np.testing.assert_allclose(fq, np.tile(FORMANTS, (4, 1)), rtol=0.05)
    fq0, _ = formants(np.zeros((2, 640)), SR)
    assert np.isnan(fq0).all()


def test_jitter_and_shimmer_follow_the_perturbation() -> None:
    clean, jit, shim = named(vowel()), named(vowel(jitter=0.02)), named(vowel(shimmer=0.1))
    assert clean["jitter_mean"] < 0.01 and clean["shimmer_db_mean"] < 0.2
    # |P2 - P1| / P of two N(P, 0.02 P) periods: 0.02 * sqrt(2) * sqrt(2 / pi) = 0.0226
    assert jit["jitter_mean"] == pytest.approx(0.0226, rel=0.25)
    # |20 log10(A2 / A1)| for A ~ N(1, 0.1): about 0.98 dB
    assert shim["shimmer_db_mean"] == pytest.approx(0.98, rel=0.25)
    assert shim["jitter_mean"] < 0.01


def test_pitch_marks_are_one_period_apart() -> None:
    a = analyse(vowel(f0=200.0), SR)
    marks, amps, runs = pitch_marks(a.x, a.voiced, a.f0, a.hop, a.length, a.sr)
    periods = np.diff(marks)[runs[1:] == runs[:-1]]
    assert len(periods) > 150 and np.median(periods) == SR / 200
    assert np.all(np.abs(periods - SR / 200) <= 1) and np.all(amps > 0)


def test_gain_does_not_move_the_new_values() -> None:
    x = vowel(jitter=0.01)
    np.testing.assert_allclose(prosody_vq(x * 0.01, SR)[47:], prosody_vq(x, SR)[47:],
                               rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("wave", [silence(1.0), noise(1.0), np.zeros(10, np.float32)],
                         ids=["silence", "noise", "tiny"])
def test_unvoiced_silent_and_tiny_inputs_give_finite_zeros(wave: np.ndarray) -> None:
    v = prosody_vq(wave, SR)
    assert v.shape == (75,) and np.isfinite(v).all()
    assert np.all(v[47:55] == 0)  # no voiced frame: no jitter, shimmer or harmonics
