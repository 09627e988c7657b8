"""silent_and_trimmed (one pass over the samples, what Preprocess.prepare uses) gives exactly
is_silent and trim_silence."""

from __future__ import annotations

import numpy as np
import pytest

from emovox.audio import is_silent, remove_dc, silent_and_trimmed, trim_silence
from emovox.preprocess import Preprocess
from signals import SR, noise, silence, sine, voice


def _signals() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    padded = np.concatenate([silence(0.7), voice(1.3), noise(0.4, amp=1e-4), silence(0.2)])
    out = {
        "voice": voice(2.0),
        "padded voice": padded,
        "quiet": voice(1.0) * 1e-4,
        "silence": silence(1.0),
        "hiss": noise(1.0, amp=1e-5),
        "tone in silence": np.concatenate([silence(0.3), sine(300.0, 0.5), silence(0.9)]),
        "short": voice(0.05),
        "one frame": voice(1024 / SR),
        "just over": voice(1025 / SR),
        "single sample": np.ones(1, np.float32) * 0.1,
    }
    for i in range(6):  # odd lengths, loud spikes at the edges
        x = noise(float(rng.uniform(0.1, 3.0)), amp=0.01, seed=i)
        x[rng.integers(0, len(x))] = 0.9
        out[f"random {i}"] = x
    return out


@pytest.mark.parametrize("name", sorted(_signals()))
@pytest.mark.parametrize("top_db", [20.0, 40.0, 60.0])
def test_one_pass_equals_the_two_functions(name, top_db):
    x = _signals()[name].astype(np.float32)
    silent, trimmed = silent_and_trimmed(x, SR, top_db=top_db)
    assert silent == is_silent(x)
    assert np.array_equal(trimmed, trim_silence(x, SR, top_db=top_db))


def test_prepare_matches_the_two_step_definition():
    pre = Preprocess(sr=SR, trim=True, top_db=40.0)
    for name, x in _signals().items():
        x = remove_dc(x.astype(np.float32))  # prepare removes a constant offset first
        got = pre.prepare(x, SR)
        silent = is_silent(x)
        t = trim_silence(x, SR, top_db=40.0)
        want = t if 0 < len(t) < len(x) else x  # faint input trimmed too (stop 39)
        assert got.silent == silent and np.array_equal(got.wave, want), name
        assert np.array_equal(pre.at_rate(x, SR), x)
