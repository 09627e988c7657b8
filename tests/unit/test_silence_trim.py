"""silent_and_trimmed (one pass over the samples, what Preprocess.prepare uses) gives exactly
is_silent and trim_silence."""

from __future__ import annotations

import numpy as np
import pytest

from emovox.audio import (
    frame_rms,
    is_silent,
    remove_dc,
    silent_and_trimmed,
    trim_bounds,
    trim_silence,
)
from emovox.audio import signal as signal_module
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


def _running_sum_answers(x: np.ndarray, sr: int, top_db: float, thr: float
                         ) -> tuple[bool, tuple[int, int]]:
    """is_silent and trim_bounds by their definition: frame_rms's running energy sum."""
    peak = float(frame_rms(x, 1024, 512).max())
    silent = (20 * np.log10(peak) if peak > 0 else -np.inf) < thr
    frame, hop = round(0.032 * sr), round(0.008 * sr)
    rms = frame_rms(x, frame, hop)
    loud = np.flatnonzero(rms > rms.max() * 10.0 ** (-top_db / 20.0)) if rms.max() > 0 else []
    if len(loud) == 0:
        return bool(silent), (0, 0)
    starts = np.arange(0, len(x) - frame + 1, hop)
    if starts[-1] + frame < len(x):
        starts = np.append(starts, len(x) - frame)
    return bool(silent), (int(starts[loud[0]]), int(min(len(x), starts[loud[-1]] + frame)))


@pytest.mark.parametrize("sr", [8000, 16000, 22050, 48000])
def test_block_sum_levels_answer_as_the_running_sum(sr):
    """The levels summed over blocks (no running sum) decide exactly as the running sum,
    at levels placed on the silence threshold and frames on the trim threshold."""
    rng = np.random.default_rng(sr)
    base = [voice(2.2, sr), np.concatenate([silence(0.4, sr), voice(1.1, sr), noise(0.3, sr,
            amp=1e-3)]), noise(1.7, sr, amp=0.2), silence(0.9, sr)]
    for k, w in enumerate(base):
        peak = float(frame_rms(w, 1024, 512).max())
        gains = [1.0, float(rng.uniform(1e-4, 1.0))]
        if peak > 0:  # the loudest frame at -60 dBFS, and a hair either side
            gains += [1e-3 / peak * (1 + d) for d in (0.0, 1e-7, -1e-7, 1e-5)]
        for g in gains:
            x = (w * np.float32(g)).astype(np.float32)
            for top_db in (20.0, 40.0):
                want = _running_sum_answers(x, sr, top_db, -60.0)
                assert is_silent(x) == want[0], (k, g)
                assert trim_bounds(x, sr, top_db) == want[1], (k, g, top_db)
                s, t = silent_and_trimmed(x, sr, top_db=top_db)
                a, b = want[1]
                assert s == want[0] and np.array_equal(t, x[a:b] if b > a else x)


def test_a_clip_needs_no_running_sum(monkeypatch):
    """A 3 s clip's silence check and trim bounds come from block sums: the running sum
    over every sample (0.25 ms a call, three calls a clip) is not taken."""
    x = np.concatenate([silence(0.5), voice(2.0), silence(0.5)]).astype(np.float32)
    want = is_silent(x), trim_bounds(x, SR, 40.0), silent_and_trimmed(x, SR, top_db=40.0)

    def refused(*_a, **_k):
        raise AssertionError("the running sum was taken")

    monkeypatch.setattr(signal_module, "_energy_prefix_at", refused)
    got = is_silent(x), trim_bounds(x, SR, 40.0), silent_and_trimmed(x, SR, top_db=40.0)
    assert got[:2] == want[:2] and got[2][0] == want[2][0]
    assert np.array_equal(got[2][1], want[2][1])


@pytest.mark.parametrize("bad", [0, -1, -1024])
def test_a_frame_length_or_hop_that_is_not_positive_is_named(bad: int) -> None:
    """``is_silent(loud noise, frame_length=0)`` said True, -1024 said False of silence,
    ``frame_rms`` with a hop of 0 raised ZeroDivisionError and of -1 IndexError (code review,
    stop 56): a ValueError names the parameter and its value."""
    x = noise(1.0, amp=0.1)
    with pytest.raises(ValueError, match=rf"frame_length must be .* got {bad}$"):
        is_silent(x, frame_length=bad)
    with pytest.raises(ValueError, match=rf"frame_length must be .* got {bad}$"):
        signal_module.peak_frame_dbfs(x, frame_length=bad)
    with pytest.raises(ValueError, match=rf"^frame must be .* got {bad}$"):
        frame_rms(x, bad, 512)
    with pytest.raises(ValueError, match=rf"^hop must be .* got {bad}$"):
        frame_rms(x, 1024, bad)
    assert is_silent(silence(1.0), frame_length=1) and not is_silent(x, frame_length=1)
