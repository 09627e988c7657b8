"""Running sums of a live multichannel stream for its channel rule (:class:`WindowSums`): the
measures :func:`~emovox.audio.mixdown.channel_weights` decides on (each channel's frame
levels, every pair's moments and the frame levels of its sum and difference, all without
the channels' means over the window) computed from integer sums kept per :data:`BLOCK`
frames, so a piece's weights cost the piece's frames x channels^2 and not the whole window
again (116 ms per 0.5 s piece for 8 channels before: review, stop 53).

The sums of int16 samples and of their products are exact in int64, and the measures are
derived from them with a few roundings, so they are the exact values to about 1e-15; the
window's floats of :func:`~emovox.audio.mixdown.channel_weights` differ from those by their
own roundings (at most about 1e-4 dB for a spread, 1e-10 of the energies for a moment). A
measure closer than :data:`GUARD_DB` / :data:`GUARD_REL` to the threshold it is compared
with could fall on either side of it, and the piece is then decided by
:func:`~emovox.audio.mixdown.channel_weights` on the window's frames themselves
(:attr:`WindowSums.unsure` counts them): the decision is that of the window, always."""

from __future__ import annotations

import math

import numpy as np

from emovox.audio.mixdown import (
    CANCELLED,
    MIX_FRAME,
    STEADY_DB,
    channel_weights,
    frame_spread_db,
    weights_from_measures,
)

__all__ = ["BLOCK", "GUARD_DB", "GUARD_REL", "WindowMeasures", "WindowSums"]

#: frames per block of the running sums (a divisor of MIX_FRAME); a frame edge inside a
#: block adds the sums of its first frames, read from the frames kept
BLOCK = 64
#: a spread within this many dB of STEADY_DB is decided on the window's frames
GUARD_DB = 0.01
#: a moment test within this share of the energies (and sqrt(n) x their roots) of its
#: threshold is decided on the window's frames
GUARD_REL = 1e-8
#: the running sums are taken back to 0 at the oldest block kept past this (int64 headroom)
_REBASE = 1 << 60
_INITIAL_ROWS = 1024


class _Unsure(Exception):
    """A measure too near its threshold to be sure the window's floats fall on its side."""


class _Rows:
    """A 2-D array grown at the end and cut at the front, amortised O(rows moved)."""

    def __init__(self, width: int, dtype: type) -> None:
        self.buf = np.zeros((_INITIAL_ROWS, width), dtype)
        self.lo = self.hi = 0

    def __len__(self) -> int:
        return self.hi - self.lo

    @property
    def rows(self) -> np.ndarray:
        return self.buf[self.lo : self.hi]

    def append(self, new: np.ndarray) -> None:
        n, size = len(new), len(self)
        if self.hi + n > len(self.buf):  # move the rows to the front, in a larger buffer if
            buf = self.buf  # they would fill more than half of it
            if 2 * (size + n) > len(buf):
                buf = np.zeros((2 * (size + n), self.buf.shape[1]), self.buf.dtype)
            buf[:size] = self.buf[self.lo : self.hi]
            self.buf, self.lo, self.hi = buf, 0, size
        self.buf[self.hi : self.hi + n] = new
        self.hi += n

    def drop(self, n: int) -> None:
        self.lo += min(n, len(self))


class WindowSums:
    """The frames of a live ``channels``-channel int16 stream from the oldest window still to
    be weighed on, and per :data:`BLOCK` frames the running sums of each channel and of each
    product of two channels (int64): :meth:`weights` gives
    :func:`~emovox.audio.mixdown.channel_weights` of the last frames from them. Memory: the
    window's frames (as the mixer held before) and ``channels * (channels + 3) / 2`` int64
    per :data:`BLOCK` frames (1.5 MB for 8 channels and READ_FRAMES), each in a buffer of up
    to twice that."""

    def __init__(self, channels: int) -> None:
        self.c = channels
        self.pi, self.pj = np.triu_indices(channels)
        self.slot = np.zeros((channels, channels), np.intp)  # column of x_i x_j in the sums
        self.slot[self.pi, self.pj] = self.slot[self.pj, self.pi] = (
            channels + np.arange(len(self.pi)))
        self.raw = _Rows(channels, np.int16)  # the frames from ``base`` on
        self.cum = _Rows(channels + len(self.pi), np.int64)  # row b: sums to base + b*BLOCK
        self.cum.append(np.zeros((1, channels + len(self.pi)), np.int64))
        self.base = 0  # the stream's frame of raw's first row, a multiple of BLOCK
        self.total = 0  # frames pushed
        self.unsure = 0  # weights decided on the window's frames (a measure at a threshold)

    def _sums(self, x: np.ndarray) -> np.ndarray:
        """``(..., K)`` int64 sums over axis -2 of int64 ``x`` ``(..., frames, channels)``:
        each channel, then each product ``x_i x_j`` (``i <= j``)."""
        products = np.einsum("...gi,...gj->...ij", x, x)  # int64 einsum: exact, no BLAS
        return np.concatenate([x.sum(-2), products[..., self.pi, self.pj]], -1)

    def push(self, frames: np.ndarray) -> None:
        """Add int16 ``frames`` ``(n, channels)``, the next of the stream."""
        self.raw.append(frames)
        self.total += len(frames)
        done = self.base + (len(self.cum) - 1) * BLOCK  # frames summed so far
        full = self.total - self.total % BLOCK
        if full <= done:
            return
        x = self.raw.rows[done - self.base : full - self.base].astype(np.int64)
        sums = np.cumsum(self._sums(x.reshape(-1, BLOCK, self.c)), axis=0)
        last = self.cum.rows[-1]
        if int(np.abs(last).max()) > _REBASE:
            self.cum.rows[:] -= self.cum.rows[0].copy()
            last = self.cum.rows[-1]
        self.cum.append(sums + last)

    def _prefix(self, pos: np.ndarray) -> np.ndarray:
        """``(len(pos), K)`` sums over the frames ``[base, p)`` for each ``p`` of ``pos``."""
        q, r = np.divmod(pos, BLOCK)
        out = self.cum.rows[q - self.base // BLOCK].copy()
        for rv in np.unique(r[r > 0]):  # an edge inside a block: its first ``rv`` frames
            sel = np.flatnonzero(r == rv)
            idx = (q[sel] * BLOCK - self.base)[:, None] + np.arange(rv)
            out[sel] += self._sums(self.raw.rows[idx].astype(np.int64))
        return out

    def measures(self, keep: int) -> WindowMeasures:
        """The measures of the last ``keep`` frames pushed (all when fewer)."""
        end = self.total
        start = max(0, end - keep)
        n, m = end - start, (end - start) // MIX_FRAME
        pos = np.append(start + MIX_FRAME * np.arange(m + 1), end)
        sums = self._prefix(pos)
        return WindowMeasures(n, np.diff(sums[:-1], axis=0), sums[-1] - sums[0], self.slot)

    def weights(self, keep: int) -> np.ndarray:
        """:func:`~emovox.audio.mixdown.channel_weights` of the last ``keep`` frames pushed (all
        when fewer); the frames before them are forgotten."""
        start = max(0, self.total - keep)
        measures = self.measures(keep)
        try:
            w = weights_from_measures(self.c, measures.n, measures.spread, measures.moments)
        except _Unsure:
            self.unsure += 1
            w = channel_weights(self.raw.rows[start - self.base : self.total - self.base])
        drop = (start - self.base) // BLOCK
        self.raw.drop(drop * BLOCK)
        self.cum.drop(drop)
        self.base += drop * BLOCK
        return w


class WindowMeasures:
    """The measures of :func:`~emovox.audio.mixdown.weights_from_measures` of a window of
    ``n`` frames from its sums: ``frames`` ``(m, K)`` over its :data:`MIX_FRAME`-frame
    frames, ``total`` ``(K,)`` over all of it (columns as :meth:`WindowSums._sums`).
    :meth:`spread` and :meth:`moments` are those the rule asks for, refusing a value near its
    threshold; :meth:`spread_db` and :meth:`energies` the values themselves."""

    def __init__(self, n: int, frames: np.ndarray, total: np.ndarray, slot: np.ndarray) -> None:
        self.n, self.frames, self.total, self.slot = n, frames, total, slot

    def spread_db(self, chans: list[int], signs: list[float]) -> float:
        """The spread of ``y = sum(sign * channel)``: each frame's ``sum (y - mean)^2``, the
        mean that of the window, is ``(F s2 - s1^2) / F + (n s1 - F t)^2 / (F n^2)`` (``s1``,
        ``s2``: the frame's sums of y and y^2, ``t``: the window's sum of y, F frames), two
        sums of exact integers below 2^53 and positive terms."""
        sg = [int(s) for s in signs]
        s1 = sum(s * self.frames[:, k] for s, k in zip(sg, chans, strict=True))
        s2 = sum(a * b * self.frames[:, self.slot[k, j]]
                 for a, k in zip(sg, chans, strict=True) for b, j in zip(sg, chans, strict=True))
        t = sum(s * int(self.total[k]) for s, k in zip(sg, chans, strict=True))
        f = MIX_FRAME
        energy = (f * s2 - s1 * s1) / f + ((self.n * s1 - f * t) / self.n) ** 2 / f
        return frame_spread_db(energy / f)

    def spread(self, chans: list[int], signs: list[float]) -> float:
        db = self.spread_db(chans, signs)
        if abs(db - STEADY_DB) <= GUARD_DB:
            raise _Unsure
        return db

    def energies(self, k: int, j: int) -> tuple[int, int, int]:
        """``n`` times ``(ab, aa, bb)`` of channels ``k`` and ``j``, exact: ``n * ab = n *
        sum(a b) - sum(a) sum(b)`` in Python integers."""
        n, tk, tj = self.n, int(self.total[k]), int(self.total[j])
        return (n * int(self.total[self.slot[k, j]]) - tk * tj,
                n * int(self.total[self.slot[k, k]]) - tk * tk,
                n * int(self.total[self.slot[j, j]]) - tj * tj)

    def moments(self, k: int, j: int) -> tuple[float, float, float]:
        nab, naa, nbb = self.energies(k, j)
        n = self.n
        aa, bb = naa / n, nbb / n
        if naa == 0 or nbb == 0:  # a constant channel: its samples less their mean are all
            return 0.0, aa, bb  # exactly 0 in the window's floats too
        ab = nab / n
        tol = GUARD_REL * (math.sqrt(n) * (math.sqrt(aa) + math.sqrt(bb)) + aa + bb)
        if abs(ab) <= tol:
            raise _Unsure
        if ab < 0.0 and abs(CANCELLED * (aa + bb - 2 * ab) - (aa + bb + 2 * ab)) <= 4 * tol:
            raise _Unsure
        return ab, aa, bb
