"""emovox.features.bandwidth and bench/bandwidth_gate.py: the bandwidth ratio on signals with
known spectra, and the floor."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import bandwidth_gate  # noqa: E402

from emovox import augment as aug  # noqa: E402
from emovox.features.bandwidth import NARROW_BAND_FLOOR_DB, band_ratio_db  # noqa: E402

SR = 16000


def tone(hz: float, amp: float = 1.0, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(SR * seconds)) / SR
    return (amp * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_two_tones_give_their_power_ratio_over_the_bands_widths():
    # one bin's power spread over the band's mean: ratio = amp^2 ratio * (low bins / high bins)
    x = tone(1000.0) + tone(5500.0, amp=0.1)
    freqs = np.fft.rfftfreq(512, 1 / SR)
    n_low = np.count_nonzero((freqs >= 300) & (freqs <= 3400))
    n_high = np.count_nonzero((freqs >= 4500) & (freqs <= 7000))
    want = 10 * np.log10(0.01 * n_low / n_high)
    assert band_ratio_db(x, SR) == pytest.approx(want, abs=0.5)


def test_gain_does_not_move_it_and_a_telephone_band_pass_drops_it():
    x = np.random.default_rng(0).standard_normal(2 * SR).astype(np.float32)
    white = band_ratio_db(x, SR)
    assert abs(white) < 0.5  # flat spectrum: equal densities
    assert band_ratio_db(x * 1e-3, SR) == pytest.approx(white, abs=1e-6)
    assert band_ratio_db(aug.band_limit(x, SR, 300.0, 3400.0), SR) < -30


def test_edge_cases_narrow_rates_silence_and_very_short_input():
    assert band_ratio_db(tone(440.0), 8000) == float("-inf")
    assert band_ratio_db(np.zeros(SR, np.float32), SR) == 0.0
    short = band_ratio_db(tone(6000.0, seconds=0.01), SR)  # 160 samples
    assert np.isfinite(short) and short > 10


def test_long_input_is_taken_in_chunks_with_the_same_answer():
    x = np.random.default_rng(1).standard_normal(40 * SR).astype(np.float32)  # > 1 chunk
    x[: 20 * SR] = aug.band_limit(x[: 20 * SR], SR, 300.0, 3400.0)
    whole = band_ratio_db(x, SR)
    assert -4.0 < whole < -2.0  # half the frames carry the high band: about -3 dB


def test_the_floor_is_the_training_side_lower_tail_minus_a_margin():
    clean = np.linspace(-30.0, -10.0, 1001)
    assert bandwidth_gate.floor_db(clean) == pytest.approx(-30.0 + 0.1 - 6.0, abs=1e-9)


def test_the_shipped_floor_separates_a_voice_from_its_telephone_copy():
    from signals import harmonic

    rng = np.random.default_rng(2)
    x = harmonic(150.0, 1.5, n_harmonics=50, vibrato=0.02, noise=0.01, rng=rng)
    assert band_ratio_db(x, SR) > NARROW_BAND_FLOOR_DB
    assert band_ratio_db(aug.band_limit(x, SR, 300.0, 3400.0), SR) < NARROW_BAND_FLOOR_DB
