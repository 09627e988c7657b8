"""``Preprocess.heard_span``: the samples a clip's network input is computed from (its
trimmed sound, centre-cropped to the model's input), which a one-window answer shows as
its evidence (web review, stop 52: a 5 s clip was shaded whole while 2.56 s were read)."""

from __future__ import annotations

import numpy as np
import pytest

from emovox.features.frontend import LogMelFrontEnd
from emovox.preprocess import Preprocess

SR = 16000
N_FRAMES = 100  # 1 s at the 10 ms hop


def _pre(**kw) -> Preprocess:
    fe = LogMelFrontEnd.from_params(SR, top_db=None)  # no floor: outside samples reach nothing
    return Preprocess(sr=SR, feature="logmel", frontend=fe, n_frames=N_FRAMES, **kw)


def _noise(seconds: float, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(int(seconds * SR))).astype(
        np.float32)


def test_outside_the_span_nothing_reaches_the_input_and_its_edges_do():
    pre = _pre(trim=False)
    x = _noise(3.0)
    s, e = pre.heard_span(x)
    assert 0 < s < e < len(x)
    assert (e - s) / SR == pytest.approx(N_FRAMES * 0.01, abs=0.04)  # one input, centred
    assert (s + e) / 2 / SR == pytest.approx(1.5, abs=0.01)
    y = x.copy()
    y[:s] = _noise(s / SR, seed=1)
    y[e:] = _noise((len(x) - e) / SR, seed=2)
    assert np.array_equal(pre.cropped_features(x), pre.cropped_features(y))
    for edge in (s, e - 1):  # the bound is tight: the edge samples are read
        z = x.copy()
        z[edge] += 0.5
        assert not np.array_equal(pre.cropped_features(x), pre.cropped_features(z))


def test_trimmed_edges_are_not_heard_and_a_short_clip_is_heard_whole():
    pre = _pre(trim=True)
    x = np.concatenate([np.zeros(SR, np.float32), _noise(0.6), np.zeros(SR, np.float32)])
    s, e = pre.heard_span(x)
    assert abs(s - SR) <= 0.032 * SR and abs(e - int(1.6 * SR)) <= 0.032 * SR
    assert pre.replace(trim=False).heard_span(x[SR: int(1.6 * SR)]) == (0, int(0.6 * SR))
    long = np.concatenate([np.zeros(SR, np.float32), _noise(3.0)])
    s, e = pre.heard_span(long)
    assert (s + e) / 2 / SR == pytest.approx(2.5, abs=0.05)  # the middle of the sound
    assert (e - s) / SR == pytest.approx(1.0, abs=0.04)


def test_silence_a_functional_member_and_speeds():
    pre = _pre(trim=True)
    silent = np.zeros(SR, np.float32)
    assert pre.heard_span(silent) == (0, SR)  # trimming everything keeps the wave
    assert pre.heard_span(silent[:0]) == (0, 0)
    x = _noise(3.0)
    assert _pre(trim=True, functional="prosody").heard_span(x) == (0, len(x))
    one = pre.heard_span(x)
    slow, fast = (pre.replace(speeds=(f,)).heard_span(x) for f in (0.9, 1.1))
    assert slow[1] - slow[0] < one[1] - one[0] < fast[1] - fast[0]  # 1.1x: more seconds
    both = pre.replace(speeds=(0.9, 1.0, 1.1)).heard_span(x)
    assert both == (min(slow[0], one[0], fast[0]), max(slow[1], one[1], fast[1]))
