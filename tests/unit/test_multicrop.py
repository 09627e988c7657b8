"""bench/multicrop.py: which windows cover a clip."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import multicrop  # noqa: E402


def test_a_clip_that_fits_keeps_its_one_window():
    assert multicrop.window_starts(100, 256) == [0]
    assert multicrop.window_starts(256, 256) == [0]


def test_windows_every_half_window_and_one_ending_at_the_last_frame():
    assert multicrop.window_starts(257, 256) == [0, 1]
    assert multicrop.window_starts(384, 256) == [0, 128]
    assert multicrop.window_starts(500, 256) == [0, 128, 244]
    for total in (300, 511, 512, 1000):
        starts = multicrop.window_starts(total, 256)
        assert starts[-1] + 256 == total and starts == sorted(set(starts))
        assert all(b - a <= 128 for a, b in zip(starts, starts[1:], strict=False))
