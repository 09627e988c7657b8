"""The live channel mixer from running sums (stop 54): ``emovox listen --channels N``
decided each 0.5 s piece's weights by :func:`~emovox.audio.channel_weights` over the
READ_FRAMES frames before it, weighed again every piece (19 ms for stereo, 116 ms for 8
channels); :class:`~emovox.serving.mixsums.WindowSums` keeps integer sums per block and
must give the very same weights and samples, whatever the reads' sizes."""

from __future__ import annotations

import numpy as np
import pytest

from emovox.audio import READ_FRAMES, channel_weights, mix_channels
from emovox.audio.mixdown import MIX_FRAME, frame_spread_db
from emovox.serving import mixsums
from emovox.serving.stream import MIX_PIECE_S, ChannelMixer
from signals import noise, voice

HISS = 10 ** (-55 / 20)


def s16(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, -1.0, 1.0) * 32767).astype(np.int16)


def reads(n: int, seed: int) -> list[tuple[int, int]]:
    """Uneven reads of ``n`` frames: single frames, a few hundred, several pieces at once."""
    rng = np.random.default_rng(seed)
    cuts = np.unique(np.concatenate([rng.integers(0, n, 40), [1, 2, 3], rng.integers(0, 500, 5)]))
    edges = [0, *[int(c) for c in cuts if 0 < c < n], n]
    return list(zip(edges[:-1], edges[1:], strict=True))


def old_mix(frames: np.ndarray, sr: int, keep: int, seed: int
            ) -> tuple[np.ndarray, list[np.ndarray]]:
    """The mixer to stop 53 (the whole window weighed each piece): its samples and the
    weights of each piece after the first."""
    piece = max(1, int(round(MIX_PIECE_S * sr)))
    past, into, w = [], 0, np.ones(frames.shape[1], np.float32)
    out, decided = [], []
    for a, b in reads(len(frames), seed):
        f = frames[a:b]
        while len(f):
            if into == piece:
                window = np.concatenate(past)[-keep:]
                past, into = [window], 0
                w = channel_weights(window)
                decided.append(w)
            part, f = f[: piece - into], f[piece - into :]
            past.append(part)
            into += len(part)
            out.append(mix_channels(part.astype(np.float32) / np.float32(32768.0), w))
    return np.concatenate(out), decided


def new_mix(frames: np.ndarray, sr: int, keep: int, seed: int
            ) -> tuple[np.ndarray, list[np.ndarray], ChannelMixer]:
    mixer = ChannelMixer(frames.shape[1], sr, keep)
    decided: list[np.ndarray] = []
    weigh = mixer.sums.weights

    def recorded(k: int) -> np.ndarray:
        decided.append(weigh(k))
        return decided[-1]

    mixer.sums.weights = recorded
    out = [mixer.mix(frames[a:b]) for a, b in reads(len(frames), seed)]
    return np.concatenate(out), decided, mixer


def assert_same(frames: np.ndarray, sr: int, keep: int = READ_FRAMES, seed: int = 0,
                unsure: int = 0) -> list[tuple[float, ...]]:
    """Both mixers give the same samples and per-piece weights; the window slid past
    ``keep`` (frames left it) and the running sums decided all but ``unsure`` pieces."""
    want, want_w = old_mix(frames, sr, keep, seed)
    got, got_w, mixer = new_mix(frames, sr, keep, seed)
    assert [tuple(w) for w in got_w] == [tuple(w) for w in want_w]
    np.testing.assert_array_equal(got, want)
    assert mixer.sums.base > 0  # frames left the window: their sums subtracted
    assert mixer.sums.unsure == unsure
    return [tuple(float(v) for v in w) for w in got_w]


def test_stereo_in_opposite_polarity_is_flipped_as_before_past_the_window():
    """left = -right (10 % gain mismatch, different hiss) at 16 kHz for 20 s: the window of
    READ_FRAMES (16.4 s) slides; every piece flipped the right channel, as the old mixer."""
    sr, secs = 16000, 20.0
    v = voice(secs, sr)
    frames = np.stack([s16(v + noise(secs, sr=sr, amp=HISS, seed=1)),
                       s16(-0.9 * v + noise(secs, sr=sr, amp=HISS, seed=2))], 1)
    weights = assert_same(frames, sr, seed=1)
    assert set(weights) == {(1.0, -1.0)}


def test_a_dead_channel_and_one_that_starts_late_with_odd_pieces():
    """Three channels at 22050 Hz (pieces of 11025 frames: frame edges fall inside the sums'
    blocks) over a short window that slides many times: the middle one dead until 4 s, the
    last one hiss alone; reads of uneven sizes."""
    sr, secs, keep = 22050, 9.0, 40000
    v, n = voice(secs, sr), int(secs * sr)
    late = np.concatenate([np.zeros(4 * sr, np.float32), voice(secs - 4, sr, f0=230)])[:n]
    frames = np.stack([s16(v + noise(secs, sr=sr, amp=HISS, seed=3)), s16(late),
                       s16(noise(secs, sr=sr, amp=HISS, seed=4))], 1)
    weights = assert_same(frames, sr, keep, seed=2)
    assert (1.0, 0.0, 0.0) in weights and (1.0, 1.0, 0.0) in weights  # it joined


def test_eight_channels_with_different_gains_past_the_window():
    """8 channels at 88.2 kHz (READ_FRAMES is 3 s: the window slides), each its own gain,
    one in opposite polarity, one hiss alone, one digital silence."""
    sr, secs = 88200, 5.0
    v, n = voice(secs, sr), int(secs * sr)
    cols = [g * v + noise(secs, sr=sr, amp=HISS, seed=10 + k)
            for k, g in enumerate((0.3, -0.5, 1.0, 0.1, 0.7, 0.05))]
    cols += [noise(secs, sr=sr, amp=HISS, seed=20), np.zeros(n, np.float32)]
    frames = np.stack([s16(c) for c in cols], 1)
    weights = assert_same(frames, sr, seed=3)
    assert weights[-1][6:] == (0.0, 0.0)


def window_spread(x: np.ndarray, chans: list[int], signs: list[float]) -> float:
    """The spread of ``sum(sign * channel)`` of the int16 window ``x`` in plain float64."""
    y = sum(s * (x[:, k].astype(np.float64) - x[:, k].mean(dtype=np.float64))
            for s, k in zip(signs, chans, strict=True))
    frames = y[: len(y) // MIX_FRAME * MIX_FRAME].reshape(-1, MIX_FRAME)
    return frame_spread_db((frames**2).sum(1) / MIX_FRAME)


@pytest.mark.parametrize(("sr", "keep"), [(22050, 30000), (8000, 9000), (16000, 20480)])
def test_the_running_measures_are_those_of_the_window(sr, keep):
    """Every spread and moment from the sums, after reads of uneven sizes, at every piece's
    edge (the window sliding, frame edges inside blocks and not): those of the window's frames
    in float64, to rounding (a frame's first frames left out moved them by far more)."""
    secs, piece = 4.0, int(round(MIX_PIECE_S * sr))
    v = voice(secs, sr)
    frames = np.stack([s16(v + noise(secs, sr=sr, amp=HISS, seed=8)), s16(-0.7 * v),
                       s16(noise(secs, sr=sr, amp=0.003, seed=9) + 0.01)], 1)
    sums, done, checked = mixsums.WindowSums(3), 0, 0
    for a, b in reads(len(frames), seed=6):
        while a < b:
            step = min(b, (done // piece + 1) * piece) - a
            sums.push(frames[a : a + step])
            a, done = a + step, done + step
            if done % piece or done < MIX_FRAME * 8:
                continue
            window = frames[max(0, done - keep) : done]
            m = sums.measures(keep)
            for chans, signs in [([0], [1.0]), ([1], [1.0]), ([2], [1.0]),
                                 ([0, 1], [1.0, 1.0]), ([0, 1], [1.0, -1.0]),
                                 ([1, 2], [1.0, -1.0])]:
                assert m.spread_db(chans, signs) == pytest.approx(
                    window_spread(window, chans, signs), abs=1e-6)
            for k, j in [(0, 1), (0, 2), (1, 2)]:
                u = window[:, k] - window[:, k].mean(dtype=np.float64)
                w = window[:, j] - window[:, j].mean(dtype=np.float64)
                want = np.array([u @ w, u @ u, w @ w])
                got = np.array(m.energies(k, j), dtype=np.float64) / len(window)
                np.testing.assert_allclose(got, want, rtol=1e-9)
            sums.weights(keep)  # forgets the frames before the window
            checked += 1
    assert checked >= 4 and sums.base > 0


def test_a_measure_at_its_threshold_is_decided_on_the_frames(monkeypatch):
    """A measure within the guard of its threshold (every one here) is decided by
    channel_weights on the window's frames: the same weights still."""
    monkeypatch.setattr(mixsums, "GUARD_DB", 100.0)
    monkeypatch.setattr(mixsums, "GUARD_REL", 1.0)
    sr, secs, keep = 8000, 6.0, 20000
    v = voice(secs, sr)
    frames = np.stack([s16(v), s16(-v + noise(secs, sr=sr, amp=HISS, seed=5)),
                       s16(noise(secs, sr=sr, amp=HISS, seed=6))], 1)
    pieces = int(secs / MIX_PIECE_S) - 1
    assert_same(frames, sr, keep, seed=4, unsure=pieces)


def test_the_running_sums_never_weigh_the_window_again(monkeypatch):
    """20 s of stereo: every piece decided from the sums alone (the window's frames weighed
    by channel_weights each piece before), and the sums taken back to 0 when large."""

    def weighed(x: np.ndarray) -> np.ndarray:
        raise AssertionError("the window was weighed again")

    monkeypatch.setattr(mixsums, "channel_weights", weighed)
    monkeypatch.setattr(mixsums, "_REBASE", 1 << 36)  # taken back to 0 every piece or so
    sr, secs, keep = 16000, 20.0, 3 * 16000
    v = voice(secs, sr)
    frames = np.stack([s16(v), s16(0.5 * v + noise(secs, sr=sr, amp=0.01, seed=7))], 1)
    got, _, mixer = new_mix(frames, sr, keep, seed=5)
    monkeypatch.undo()
    want, _ = old_mix(frames, sr, keep, seed=5)
    np.testing.assert_array_equal(got, want)
    since_start = int((frames.astype(np.int64) ** 2).sum(0).max())  # without a rebase
    assert int(np.abs(mixer.sums.cum.rows).max()) < since_start // 4


def test_the_mixer_takes_int16_frames():
    with pytest.raises(TypeError, match="int16"):
        ChannelMixer(2, 16000).mix(np.zeros((10, 2), np.float32))
