"""bench/feature_shift.py: a channel's shift of each functional in clean-std units."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import feature_shift  # noqa: E402


def test_shift_is_the_mean_move_over_the_clean_spread_and_constant_columns_give_zero():
    rng = np.random.default_rng(0)
    clean = np.column_stack([rng.normal(0, 2, 4000), rng.normal(5, 1, 4000), np.ones(4000)])
    moved = clean + np.array([6.0, -0.5, 3.0])
    s = feature_shift.shifts(clean, moved)
    np.testing.assert_allclose(s[:2], [3.0, -0.5], atol=0.1)
    assert s[2] == 0.0
