"""CPU of the live channel mixer (``emovox listen --channels N``) per 0.5 s piece: the
whole window weighed again each piece (the mixer to stop 53, :class:`OldMixer` here) against
its running sums (:class:`emovox.serving.stream.ChannelMixer`), on the same stream, in the
same run, taking turns (stop 54)

    nice -n 19 .venv/bin/python bench/channel_mixer.py            # stereo and 8 channels
    nice -n 19 .venv/bin/python bench/channel_mixer.py --channels 2 --seconds 60

The stream: ``--seconds`` (40) of 16 kHz int16 frames read ``READ_BLOCK_S`` (0.1 s) at a
time, each channel a voice-like tone in syllables at its own gain and pitch over hiss at
-55 dBFS, the second channel in opposite polarity and the last one hiss alone. Printed per
channel count, once the window (READ_FRAMES frames) is full: the mean and median ms per
piece (its reads together) and the slowest read; and whether both mixers gave the same
samples. The load average is printed first and last: a loaded machine inflates both
figures alike.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from emovox.audio import READ_FRAMES, channel_weights, mix_channels
from emovox.serving.live import READ_BLOCK_S
from emovox.serving.stream import MIX_PIECE_S, ChannelMixer

SR = 16000


def stream(channels: int, seconds: float, seed: int = 54) -> np.ndarray:
    """int16 ``(n, channels)`` frames (see the module's docstring)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    syllables = (np.sin(2 * np.pi * 3.0 * t) > 0.2).astype(np.float64)
    cols = []
    for k in range(channels):
        f0 = 120.0 + 15.0 * k
        phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.1 * np.sin(2 * np.pi * 5 * t))) / SR
        tone = sum(np.sin(h * phase) / h for h in (1, 2, 3)) * syllables * (0.1 + 0.02 * k)
        tone = -tone if k == 1 else tone
        if k == channels - 1 and channels > 2:
            tone = 0.0 * tone  # hiss alone: left out
        cols.append(tone + 10 ** (-55 / 20) * rng.standard_normal(n))
    return (np.clip(np.stack(cols, 1), -1, 1) * 32767).astype(np.int16)


class OldMixer:
    """The mixer to stop 53: the window's frames weighed again for each piece."""

    def __init__(self, channels: int, sr: int) -> None:
        self.piece = max(1, int(round(MIX_PIECE_S * sr)))
        self.weights = np.ones(channels, np.float32)
        self.past: list[np.ndarray] = []
        self.into = 0

    def mix(self, frames: np.ndarray) -> np.ndarray:
        out = []
        while len(frames):
            if self.into == self.piece:
                past = np.concatenate(self.past)[-READ_FRAMES:]
                self.past, self.into = [past], 0
                self.weights = channel_weights(past)
            part, frames = frames[: self.piece - self.into], frames[self.piece - self.into :]
            self.past.append(part)
            self.into += len(part)
            out.append(mix_channels(part.astype(np.float32) / np.float32(32768.0),
                                    self.weights))
        return np.concatenate(out) if out else np.zeros(0, np.float32)


def run(channels: int, seconds: float) -> dict:
    frames = stream(channels, seconds)
    read = int(READ_BLOCK_S * SR)
    mixers = {"old": OldMixer(channels, SR), "new": ChannelMixer(channels, SR)}
    times: dict[str, list[float]] = {k: [] for k in mixers}
    outs: dict[str, list[np.ndarray]] = {k: [] for k in mixers}
    for a in range(0, len(frames), read):
        for name in (("old", "new") if (a // read) % 2 else ("new", "old")):  # take turns
            t = time.perf_counter()
            outs[name].append(mixers[name].mix(frames[a : a + read]))
            times[name].append(time.perf_counter() - t)
    piece = int(round(MIX_PIECE_S * SR))
    full = -(-READ_FRAMES // piece)  # pieces from there on are weighed on a full window
    res = {"same": bool(np.array_equal(np.concatenate(outs["old"]),
                                       np.concatenate(outs["new"])))}
    for name, ts in times.items():  # the reads of each piece (READ_BLOCK_S divides it)
        pieces = np.add.reduceat(np.array(ts), np.arange(0, len(ts), piece // read))[full:]
        res[name] = (1e3 * pieces.mean(), 1e3 * np.median(pieces),
                     1e3 * max(ts[full * (piece // read) :]))
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--channels", type=int, action="append", help="default: 2 and 8")
    ap.add_argument("--seconds", type=float, default=40.0)
    args = ap.parse_args()
    print(f"load average at the start: {os.getloadavg()}, {os.cpu_count()} CPUs")
    for c in args.channels or [2, 8]:
        r = run(c, args.seconds)
        for name in ("old", "new"):
            mean, med, worst = r[name]
            print(f"{c} channels, {name}: {mean:.2f} ms per 0.5 s piece (mean; median "
                  f"{med:.2f}), slowest read {worst:.1f} ms")
        print(f"{c} channels: the same samples: {r['same']}")
    print(f"load average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
