"""Known-answer tests of the eGeMAPS-like functionals (``emovox.features.prosody``) on
synthetic signals: pitch of harmonic tones, voicing of noise, loudness steps, spectral
balance, timing of bursts, gain invariance, tiny and silent inputs."""

from __future__ import annotations

import numpy as np
import pytest

from emovox.features import FEATURES, extract
from emovox.features.prosody import (
    FEATURE_NAMES,
    ROBUST_NAMES,
    prosody,
    prosody_band,
    prosody_robust,
)
from emovox.models import MODELS
from signals import SR, harmonic, noise, silence, sine


def _named(wave: np.ndarray, sr: int = SR) -> dict[str, float]:
    return dict(zip(FEATURE_NAMES, prosody(wave, sr).tolist(), strict=True))


def _semitones(f0: float) -> float:
    return 12 * np.log2(f0 / 27.5)


def test_shape_names_and_registry_agree() -> None:
    x = extract("prosody", harmonic(150.0, 1.0), SR)
    assert x.shape == (len(FEATURE_NAMES),) == (47,)
    assert x.dtype == np.float32
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
    assert FEATURES["prosody"].kind == "vector"
    assert MODELS["prosody_logreg"].feature == "prosody"


@pytest.mark.parametrize("f0", [70.0, 110.0, 200.0, 320.0, 450.0])
def test_pitch_of_a_harmonic_tone_without_octave_errors(f0: float) -> None:
    d = _named(harmonic(f0, 1.0, vibrato=0.0))
    assert d["f0_semitone_p50"] == pytest.approx(_semitones(f0), abs=0.3)
    assert d["f0_semitone_range2080"] < 0.3
    assert d["voiced_fraction"] == pytest.approx(1.0)
    assert d["hnr_mean"] > 15.0


def test_pitch_follows_a_glide_up_and_reports_rising_steps() -> None:
    t = np.arange(SR) / SR
    f = np.linspace(120.0, 240.0, SR)  # one octave up in 1 s
    wave = 0.3 * np.sin(2 * np.pi * np.cumsum(f) / SR)
    d = _named(wave.astype(np.float32))
    assert d["f0_semitone_range2080"] == pytest.approx(0.6 * 12, abs=1.0)  # p80 - p20
    assert d["f0_rise_mean"] > 0.05 > d["f0_fall_mean"]
    assert t.shape == f.shape


def test_white_noise_is_mostly_unvoiced() -> None:
    d = _named(noise(1.0, amp=0.1, seed=3))
    assert d["voiced_fraction"] < 0.2


def test_a_20_db_step_gives_a_20_db_loudness_range() -> None:
    quiet, loud = harmonic(150.0, 1.0, amp=0.03), harmonic(150.0, 1.0, amp=0.3)
    d = _named(np.concatenate([quiet, loud]))
    assert d["loudness_range2080"] == pytest.approx(20.0, abs=1.0)
    assert d["loudness_p80"] == pytest.approx(0.0, abs=0.5)


def test_alpha_ratio_is_high_for_low_sounds_and_low_for_high_ones() -> None:
    low = _named(sine(300.0, 1.0, amp=0.3) + 0.001 * noise(1.0, amp=1.0, seed=1))
    high = _named(sine(3000.0, 1.0, amp=0.3) + 0.001 * noise(1.0, amp=1.0, seed=1))
    alpha_low = low["voiced_alpha_ratio_mean"] or low["unvoiced_alpha_ratio_mean"]
    alpha_high = high["voiced_alpha_ratio_mean"] or high["unvoiced_alpha_ratio_mean"]
    assert alpha_low > 20.0
    assert alpha_high < -20.0


def test_timing_of_three_voiced_bursts() -> None:
    burst, gap = harmonic(180.0, 0.3), silence(0.2)
    d = _named(np.concatenate([gap, burst, gap, burst, gap, burst, gap]))
    assert d["voiced_segment_mean_s"] == pytest.approx(0.3, abs=0.05)
    assert d["voiced_segments_per_s"] == pytest.approx(3 / 0.9, rel=0.15)
    assert d["voiced_fraction"] > 0.85


@pytest.mark.parametrize("gain", [0.01, 0.3, 30.0])
def test_gain_does_not_change_the_functionals(gain: float) -> None:
    rng = np.random.default_rng(0)
    wave = harmonic(160.0, 1.5, vibrato=0.03, noise=0.01, rng=rng)
    np.testing.assert_allclose(prosody(wave * gain, SR), prosody(wave, SR), rtol=1e-3, atol=2e-3)


@pytest.mark.parametrize("wave", [np.zeros(0, np.float32), np.zeros(100, np.float32),
                                  silence(1.0), np.full(SR, 0.2, np.float32)],
                         ids=["empty", "tiny", "silence", "dc"])
def test_degenerate_inputs_give_finite_values(wave: np.ndarray) -> None:
    x = prosody(wave, SR)
    assert x.shape == (47,)
    assert np.isfinite(x).all()


def test_other_sampling_rates_give_the_same_pitch() -> None:
    for sr in (8000, 22050, 48000):
        d = _named(harmonic(150.0, 1.0, sr=sr), sr)
        assert d["f0_semitone_p50"] == pytest.approx(_semitones(150.0), abs=0.3), sr


def _telephone(wave: np.ndarray) -> np.ndarray:
    from scipy.signal import butter, sosfiltfilt

    sos = butter(8, [300, 3400], btype="bandpass", fs=SR, output="sos")
    return sosfiltfilt(sos, wave).astype(np.float32)


def test_the_band_variant_reads_a_phone_line_as_the_studio_clip() -> None:
    """Through a 300-3400 Hz band-pass, ``prosody`` moves (its 1-5 kHz balance, its MFCCs
    up to 8 kHz) and ``prosody_band`` hardly does."""
    rng = np.random.default_rng(2)
    wave = harmonic(140.0, 1.5, n_harmonics=40, vibrato=0.02, noise=0.002, rng=rng)
    full, band = prosody(wave, SR), prosody_band(wave, SR)
    full_tel, band_tel = prosody(_telephone(wave), SR), prosody_band(_telephone(wave), SR)
    names = ["voiced_alpha_ratio_mean", "voiced_hammarberg_mean", "mfcc1_mean"]
    idx = [FEATURE_NAMES.index(n) for n in names]
    assert np.abs(full_tel[idx] - full[idx]).max() > 10.0
    assert np.abs(band_tel[idx] - band[idx]).max() < 2.0
    pitch = FEATURE_NAMES.index("f0_semitone_p50")
    assert band_tel[pitch] == pytest.approx(_semitones(140.0), abs=0.3)  # the missing fundamental


def test_the_band_variant_keeps_the_pitch_of_tones() -> None:
    d = dict(zip(FEATURE_NAMES, prosody_band(harmonic(200.0, 1.0, n_harmonics=12), SR).tolist(),
                 strict=True))
    assert d["f0_semitone_p50"] == pytest.approx(_semitones(200.0), abs=0.3)
    assert d["voiced_fraction"] > 0.9


def test_the_robust_variant_is_prosody_without_the_low_band_columns() -> None:
    wave = harmonic(170.0, 1.2, n_harmonics=30, vibrato=0.02, noise=0.002,
                    rng=np.random.default_rng(3))
    full, rob = prosody(wave, SR), prosody_robust(wave, SR)
    assert rob.shape == (41,) and rob.dtype == np.float32
    assert extract("prosody_robust", wave, SR).shape == (41,)
    assert FEATURES["prosody_robust"].kind == "vector"
    assert MODELS["prosody_robust_logreg"].feature == "prosody_robust"
    np.testing.assert_array_equal(rob, full[[FEATURE_NAMES.index(n) for n in ROBUST_NAMES]])
    dropped = set(FEATURE_NAMES) - set(ROBUST_NAMES)
    assert dropped == {"mfcc1_mean", "mfcc2_mean", "mfcc3_mean", "mfcc4_mean",
                       "voiced_slope0_500_mean", "unvoiced_slope0_500_mean"}


def test_the_robust_variant_moves_less_over_a_phone_line_than_prosody() -> None:
    """On a harmonic voice, the largest band-pass shift among the kept columns is below the
    largest among the dropped ones (the MFCC means and 0-500 Hz slopes)."""
    wave = harmonic(120.0, 1.5, n_harmonics=50, vibrato=0.02, noise=0.002,
                    rng=np.random.default_rng(4))
    phone = _telephone(wave)
    moved = np.abs(prosody(phone, SR) - prosody(wave, SR))
    keep = np.array([n in ROBUST_NAMES for n in FEATURE_NAMES])
    mfcc = [FEATURE_NAMES.index(f"mfcc{k}_mean") for k in (1, 2)]
    assert moved[mfcc].max() > 5.0
    kept = np.abs(prosody_robust(phone, SR) - prosody_robust(wave, SR))  # what it gives
    np.testing.assert_array_equal(kept, moved[keep])
    assert (~keep).any(), "the robust variant drops no column"
    assert kept.max() < moved[~keep].max()
    # and each dropped MFCC mean moves more than any kept column (keeping one is caught)
    assert kept.max() < moved[[FEATURE_NAMES.index(f"mfcc{k}_mean") for k in (1, 2, 3, 4)]].min()
    assert moved[keep & np.array([n.startswith(("f0_semitone_p", "loudness_p"))
                                  for n in FEATURE_NAMES])].max() < 1.0
