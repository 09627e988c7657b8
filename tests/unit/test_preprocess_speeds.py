"""``Preprocess.speeds`` (stop 45): a window read at several playback speeds."""

from __future__ import annotations

import numpy as np
import pytest

from emovox.preprocess import Preprocess

SR = 16000


def _peak_hz(x: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / SR)[int(np.argmax(spec))])


def test_views_play_the_wave_at_each_speed():
    """A 440 Hz tone of 1 s read at 0.9 / 1.0 / 1.1: 1.11 / 1.0 / 0.91 s long, at 396 /
    440 / 484 Hz; the 1.0 view is the prepared wave itself, and without speeds there is one
    view, the prepared wave."""
    t = np.arange(SR) / SR
    pre = Preprocess(sr=SR, trim=True, speeds=(0.9, 1.0, 1.1))
    prepared = pre.prepare((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), SR)
    views = pre.views(prepared)
    assert [len(v.wave) / SR for v in views] == pytest.approx([1 / 0.9, 1.0, 1 / 1.1],
                                                                abs=0.002)
    assert [_peak_hz(v.wave) for v in views] == pytest.approx([396, 440, 484], abs=2)
    assert views[1] is prepared
    assert [len(v.untrimmed) for v in views] == [len(v.wave) for v in views]
    assert pre.replace(speeds=()).views(prepared) == [prepared]


def test_speeds_round_trip_and_old_params_read_once():
    pre = Preprocess(trim=True, n_frames=256, speeds=[0.9, 1, 1.1])
    assert pre.speeds == (0.9, 1.0, 1.1)
    assert Preprocess.from_params(pre.to_params()) == pre
    plain = Preprocess(trim=True).to_params()
    assert "speeds" not in plain  # an existing model.json is written as before
    assert Preprocess.from_params(plain).speeds == ()


@pytest.mark.parametrize("bad", [(0.0,), (2.5,), (float("nan"),), (True,), ("1.1",),
                                 (0.9, 0.9), (0.8, 0.9, 1.0, 1.1, 1.2, 1.3), 1.1, "0.9"])
def test_speeds_out_of_range_or_malformed_are_refused(bad):
    with pytest.raises(ValueError, match="speeds must be"):
        Preprocess(speeds=bad)
    with pytest.raises(ValueError, match="speeds must be"):
        Preprocess.from_params({**Preprocess().to_params(), "speeds": bad})
