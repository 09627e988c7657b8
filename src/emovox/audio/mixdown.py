"""How a multichannel signal is mixed down to mono (:func:`~emovox.audio.signal.to_mono`):
a weight of 1, -1 (polarity flipped) or 0 (left out) per channel, decided on the channels'
frame levels and moments (:func:`channel_weights`), or from running sums of them by the live
input's mixer (:func:`weights_from_measures`, see :mod:`emovox.serving.mixsums`), then
applied (:func:`mix_channels`). Moved out of :mod:`emovox.audio.signal` (stop 56) to make
room there; samples are float32 at full scale 1.0, ``(n_samples, n_channels)``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["MIX_FRAME", "STEADY_DB", "CANCELLED", "MAX_PAIRED", "MIN_MIX_SAMPLES", "SpreadOf",
           "MomentsOf", "channel_weights", "weights_from_measures", "frame_spread_db",
           "mix_channels"]

#: Frame (samples) over which :func:`channel_weights` measures each channel's level.
MIX_FRAME: int = 1024
#: A channel whose frame levels never rise this many dB above their 10th percentile is
#: steady (hiss, hum, digital silence) and left out of the mix (speech at 0 dB SNR rises more).
STEADY_DB: float = 6.0
#: Two kept channels whose sum holds less than this share of their difference's energy
#: (-20 dB) are in opposite polarity: the later one is flipped (QA: left = -right through
#: AAC, Vorbis or Opus, or with a 10 % gain mismatch, sat at -25 to -80 dB; matrix-surround
#: soundtracks, speech in phase over a bed in opposite phase, at -12 to -14 dB).
CANCELLED: float = 0.01
#: Polarity is checked between the first this many kept channels (the rest are averaged).
MAX_PAIRED: int = 8
#: Fewer samples than this are averaged as they are.
MIN_MIX_SAMPLES: int = 256

#: :func:`weights_from_measures`' spread of ``sum(sign * channel)``: (channels, signs) -> dB
SpreadOf = Callable[[list[int], list[float]], float]
#: :func:`weights_from_measures`' moments of two channels: (k, j) -> (ab, aa, bb)
MomentsOf = Callable[[int, int], tuple[float, float, float]]

# Samples per chunk of :func:`_moments` (256 kB of float64 scratch space).
_MOMENT_CHUNK = 1 << 14


def channel_weights(x: np.ndarray) -> np.ndarray:
    """How :func:`~emovox.audio.signal.to_mono` mixes the channels of ``x``
    ``(n_samples, n_channels)``: a weight of 1, -1 (polarity flipped) or 0 (left out) per
    channel, shape ``(n_channels,)``.

    Averaging every channel loses speech in two common recordings: a pair wired in opposite
    polarity (left = -right) cancels to silence, and a channel holding only hiss, hum or
    digital silence buries the speech of another. Each channel's offset is left out of every
    measure, and levels are those of :data:`MIX_FRAME`-sample frames. A channel whose loudest
    frame is less than :data:`STEADY_DB` above its 10th percentile is steady and left out,
    unless every channel is. Of two kept channels in opposite phase (negative covariance),
    the later one is flipped when their sum holds under :data:`CANCELLED` of their
    difference's energy (left = -right, also through a lossy codec, a 10 % gain mismatch or
    a one-sample delay at 48 kHz), or, in a block of 8 frames or more, when their sum is steady and
    their difference is not (left = -right under noise as loud as the speech): speech in
    phase over a bed in opposite phase up to 20 dB louder (a matrix-surround soundtrack) is
    not flipped. Otherwise the plain average. Pairs are tested among the first
    :data:`MAX_PAIRED` kept channels only (cost: channels^2 x samples).
    """
    x = np.asarray(x)
    n, c = x.shape
    if c < 2 or n < MIN_MIX_SAMPLES:
        return np.ones(c, dtype=np.float32)
    means = x.mean(axis=0, dtype=np.float64)
    return weights_from_measures(
        c, n, lambda chans, signs: _spread_db(x, chans, signs, means),
        lambda k, j: _moments(x[:, k], x[:, j], means[k], means[j]))


def weights_from_measures(c: int, n: int, spread: SpreadOf, moments: MomentsOf) -> np.ndarray:
    """The decision of :func:`channel_weights` on ``n`` frames of ``c`` channels from its
    measures, each asked for when the rule needs it: ``spread(chans, signs)``, the dB by
    which the loudest :data:`MIX_FRAME`-frame frame of ``sum(sign * channel)`` (each channel
    without its mean over the ``n`` frames) rises above the 10th percentile of its frames
    (:func:`frame_spread_db`), and ``moments(k, j)``, ``(sum (a-ma)(b-mb), sum (a-ma)^2,
    sum (b-mb)^2)`` of channels ``k`` and ``j``. Shared by :func:`channel_weights` (measured
    on the whole block) and the live mixer (from running sums, so a stream is mixed as a file
    is without weighing its whole past again each piece)."""
    w = np.ones(c, dtype=np.float32)
    if c < 2 or n < MIN_MIX_SAMPLES:
        return w
    long = n >= 8 * MIX_FRAME
    if long:
        steady = np.array([spread([k], [1.0]) < STEADY_DB for k in range(c)])
        if not steady.all():
            w[steady] = 0.0
    # pairs among the first MAX_PAIRED kept channels only (front left/right come first in
    # every layout): the pair tests cost channels^2 x samples, and a 13 KB 64-channel upload
    # took 40 s per 5 s of audio (security QA, stop 31)
    kept = [int(k) for k in np.flatnonzero(w)][:MAX_PAIRED]
    for i, k in enumerate(kept):
        for j in kept[i + 1 :]:
            ab, aa, bb = moments(k, j)
            if ab >= 0.0:
                continue  # not in opposite phase at all
            flip = aa + bb + 2 * ab < CANCELLED * (aa + bb - 2 * ab)
            if long and not flip:
                flip = spread([k, j], [1.0, 1.0]) < STEADY_DB <= spread([k, j], [1.0, -1.0])
            if flip:
                w[j] = -w[k]
    return w


def frame_spread_db(power: np.ndarray) -> float:
    """How far the loudest of the frame powers ``power`` rises above their 10th percentile,
    in dB (powers floored at 1e-10): the measure of a steady channel (:data:`STEADY_DB`)."""
    db = 10.0 * np.log10(np.maximum(power, 1e-10))
    return float(db.max() - np.percentile(db, 10.0))


def _spread_db(x: np.ndarray, chans: list[int], signs: list[float],
               means: np.ndarray) -> float:
    """How far the loudest :data:`MIX_FRAME`-sample frame of ``sum(sign * channel)`` (each
    channel without its mean) rises above the 10th percentile of its frame levels, in dB;
    16 frames at a time (a few hundred kB of scratch space)."""
    m = len(x) // MIX_FRAME
    power = np.zeros(m)
    for r0 in range(0, m, 16):
        r1 = min(m, r0 + 16)
        f = [x[r0 * MIX_FRAME : r1 * MIX_FRAME, k].astype(np.float64).reshape(-1, MIX_FRAME)
             - means[k] for k in chans]
        mix = sum(sk * fk for sk, fk in zip(signs, f, strict=True))
        power[r0:r1] = np.einsum("ij,ij->i", mix, mix) / MIX_FRAME
    return frame_spread_db(power)


def _moments(a: np.ndarray, b: np.ndarray, ma: float, mb: float) -> tuple[float, float, float]:
    """``(sum (a-ma)(b-mb), sum (a-ma)^2, sum (b-mb)^2)`` over two equal-length 1-D signals,
    in float64 over chunks of ``_MOMENT_CHUNK`` samples (256 kB of scratch space)."""
    ab = aa = bb = 0.0
    for lo in range(0, len(a), _MOMENT_CHUNK):
        u = a[lo : lo + _MOMENT_CHUNK].astype(np.float64) - ma
        v = b[lo : lo + _MOMENT_CHUNK].astype(np.float64) - mb
        ab += float(np.einsum("i,i->", u, v))  # not u @ v: BLAS threads stalled the
        aa += float(np.einsum("i,i->", u, u))  # loaded 2-core machine (stereo decoding
        bb += float(np.einsum("i,i->", v, v))  # 10x slower than mono: QA stop 30)
    return ab, aa, bb


def mix_channels(xs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """float32 mono ``(n_samples,)`` of float32 ``xs`` ``(n_samples, n_channels)`` mixed with
    :func:`channel_weights`' ``weights`` (each 0, 1 or -1): the mean of the kept channels,
    flipped where -1 (the plain mean when all are 1). Shared by
    :func:`~emovox.audio.signal.to_mono` and the live input's per-piece mixer, so a stream
    is mixed as a file is."""
    if np.all(weights == 1.0):
        return xs.mean(axis=1, dtype=np.float32)
    mixed = np.einsum("ij,j->i", xs, weights)  # not xs @ w: no BLAS threads (see _moments)
    return (mixed / np.float32(np.count_nonzero(weights))).astype(np.float32)
