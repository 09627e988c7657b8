"""Signal helpers on decoded waveforms: sample conversion, mono, resampling, levels, silence.

These are the single home in emovox for "mix to mono", "resample to 16 kHz", "how loud is it"
and "is this silent": every other module calls them instead of re-implementing them, so the
same clip gets the same answer everywhere (training, CLI, API, web, timeline).

Shapes: a mono signal is ``(n_samples,)``; a multichannel one ``(n_samples, n_channels)``
(soundfile layout) unless a function takes ``channel_axis``. Samples are ``float32`` at full
scale 1.0 (see :func:`to_float32`). Memory: the level functions work block by block, so a
one-hour signal needs a few MB of scratch space on top of the signal itself.
"""

from __future__ import annotations

import math

import numpy as np
import soxr

from emovox.audio.mixdown import channel_weights, mix_channels

__all__ = ["TARGET_SR", "SILENCE_DBFS", "WINDOW_SILENCE_DBFS", "RESAMPLE_QUALITY",
           "to_float32", "to_mono", "remove_dc", "resample", "frame_rms", "peak_frame_dbfs",
           "is_silent", "trim_bounds", "trim_silence", "silent_and_trimmed"]

#: Sample rate (Hz) every model in emovox expects.
TARGET_SR: int = 16000
#: THE silence threshold of emovox, in dBFS (RMS 1.0 = 0 dBFS; a full-scale sine is -3 dBFS,
#: speech is typically -35 to -15 dBFS). A signal is silent when even its loudest 64 ms frame
#: (1024 samples at 16 kHz, half-overlapping) is below it. -60 dBFS is the value the Predictor
#: has always used (``Prediction.silent``); changing it changes which clips are called "silence".
SILENCE_DBFS: float = -60.0
#: The silence threshold of one timeline window, in dBFS (same peak-frame measure as
#: :data:`SILENCE_DBFS`). Higher than :data:`SILENCE_DBFS` on purpose: between utterances a
#: long recording holds room tone and hiss (typically -60 to -45 dBFS) that a whole clip would
#: not be called silent for, but a 2 s window of it has no speech to classify. It is what
#: ``emovox timeline`` has always used; changing it changes which windows are "silence".
WINDOW_SILENCE_DBFS: float = -45.0
#: Default soxr quality for every resampling in emovox.
RESAMPLE_QUALITY: str = "HQ"
#: Frame length (samples) of the silence decision: 64 ms at 16 kHz.
SILENCE_FRAME: int = 1024

#: :func:`remove_dc` leaves a mean below this (full scale 1.0: -120 dBFS) as it is
DC_NEGLIGIBLE: float = 1e-6

# Samples squared and summed per block by the level functions (2 MB of float64 scratch).
_LEVEL_BLOCK = 1 << 18


def to_float32(x: np.ndarray) -> np.ndarray:
    """Convert samples of any numeric dtype to ``float32`` at full scale 1.0.

    Signed integers are divided by ``2**(bits-1)`` (int16 32767 -> ~1.0), unsigned integers are
    centred first (uint8 128 -> 0.0), floats are cast. Shape is unchanged.
    """
    x = np.asarray(x)
    if x.dtype == np.float32:
        return x
    if np.issubdtype(x.dtype, np.floating):
        return x.astype(np.float32)
    if np.issubdtype(x.dtype, np.signedinteger):
        scale = float(2 ** (8 * x.dtype.itemsize - 1))
        return (x.astype(np.float64) / scale).astype(np.float32)
    if np.issubdtype(x.dtype, np.unsignedinteger):
        half = float(2 ** (8 * x.dtype.itemsize - 1))
        return ((x.astype(np.float64) - half) / half).astype(np.float32)
    if x.dtype == np.bool_:
        return x.astype(np.float32)
    raise TypeError(f"cannot convert samples of dtype {x.dtype} to float32 audio")


def to_mono(x: np.ndarray, *, channel_axis: int = -1) -> np.ndarray:
    """Mix a signal down to mono: the average of its channels, weighted by
    :func:`~emovox.audio.mixdown.channel_weights` (a channel of steady noise left out, one in
    opposite polarity flipped; the plain average whenever all channels carry a signal alike).

    Args:
        x: shape ``(n_samples,)`` (returned as float32) or ``(n_samples, n_channels)``
            (soundfile layout; pass ``channel_axis=0`` for ``(n_channels, n_samples)``).
            Any numeric dtype; integers are scaled to full scale 1.0 (see :func:`to_float32`).
        channel_axis: which axis holds the channels when ``x`` is 2-D.

    Returns:
        ``float32`` array of shape ``(n_samples,)``.
    """
    x = to_float32(x)
    if x.ndim == 1:
        return x
    if x.ndim != 2:
        raise ValueError(f"expected a 1-D or 2-D signal, got shape {x.shape}")
    if x.shape[channel_axis] == 1:  # a slice copy: ``np.take`` took ~12x longer (0.27 ms)
        return (x[0] if channel_axis % 2 == 0 else x[:, 0]).copy()
    xs = x.T if channel_axis % 2 == 0 else x  # (n_samples, n_channels)
    return mix_channels(xs, channel_weights(xs))



def remove_dc(wave: np.ndarray, *, in_place: bool = False) -> np.ndarray:
    """``wave`` (1-D float32) minus its mean: a constant offset (a cheap sound card's, a
    talk show's line) carries no sound, but it fills the lowest bands of a spectrogram and
    changed answers (QA, stop 30). Offsets under :data:`DC_NEGLIGIBLE` are left alone, so
    a wave already centred is returned as it is (no copy); ``in_place`` subtracts into
    ``wave`` itself (for a wave the caller owns)."""
    m = float(np.mean(wave, dtype=np.float64)) if wave.size else 0.0
    if abs(m) < DC_NEGLIGIBLE:
        return wave
    if in_place:
        wave -= np.float32(m)
        return wave
    return (wave - np.float32(m)).astype(np.float32, copy=False)


def resample(
    x: np.ndarray, orig_sr: int, sr: int, *, quality: str = RESAMPLE_QUALITY
) -> np.ndarray:
    """Resample with soxr.

    Args:
        x: ``(n_samples,)`` or ``(n_samples, n_channels)``, any numeric dtype.
        orig_sr: rate of ``x`` in Hz.
        sr: wanted rate in Hz.
        quality: soxr quality, one of ``"QQ", "LQ", "MQ", "HQ", "VHQ"``.

    Returns:
        ``float32`` array with ``round(n_samples * sr / orig_sr)`` samples (same channel layout).
    """
    x = to_float32(x)
    if int(orig_sr) <= 0 or int(sr) <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_sr} -> {sr}")
    if int(orig_sr) == int(sr) or x.shape[0] == 0:
        return x
    y = soxr.resample(x, int(orig_sr), int(sr), quality=quality)
    return np.asarray(y, dtype=np.float32)


def _check_frames(**sizes: int) -> None:
    """A ValueError naming the frame length or hop (in samples) that is not positive: a
    zero or negative one gave meaningless answers (``is_silent`` of loud noise with
    ``frame_length=0`` was True) or an IndexError (code review, stop 56)."""
    for name, value in sizes.items():
        if not value > 0:
            raise ValueError(f"{name} must be a positive number of samples, got {value!r}")


def _frame_starts(n: int, frame: int, hop: int) -> np.ndarray:
    """Starts of the frames ``[s, s+frame)`` covering ``n > frame`` samples, tail included."""
    starts = np.arange(0, n - frame + 1, hop)
    if starts[-1] + frame < n:  # cover the tail
        starts = np.append(starts, n - frame)
    return starts


def _fast_energies(w: np.ndarray, sizes: list[tuple[int, int]]
                   ) -> list[tuple[np.ndarray, float]] | None:
    """Per ``(frame, hop)``, the energies (float64) of :func:`frame_rms`'s frames summed
    over blocks of the sizes' common divisor (3 s at 16 kHz: 0.05 ms, the running sum 0.25),
    each with a bound on their distance to the running sum's (float64 rounding of sums of
    ``n`` squares of total ``T``: ``4 (n + n / g + 64) 2^-53 T``): decisions that hold
    within it are the exact path's, bit for bit. None: the exact path (blocks under 16
    samples, over ``_LEVEL_BLOCK`` samples, not longer than a frame, non-finite samples)."""
    n, g = len(w), math.gcd(*[v for fh in sizes for v in fh])
    if w.ndim != 1 or g < 16 or n > _LEVEL_BLOCK or any(n <= f for f, _ in sizes):
        return None
    m, sq = n // g, np.square(w, dtype=np.float64)
    cum = np.concatenate([[0.0], np.cumsum(sq[: m * g].reshape(m, g).sum(axis=1))])
    total, out = float(cum[-1] + sq[m * g :].sum()), []
    for frame, hop in sizes:
        starts = _frame_starts(n, frame, hop)
        e, grid = np.empty(len(starts)), starts + frame <= m * g  # all but a tail frame
        e[grid] = cum[starts[grid] // g + frame // g] - cum[starts[grid] // g]
        e[~grid] = [sq[s : s + frame].sum() for s in starts[~grid]]
        out.append((e, 4.0 * (n + m + 64) * 2.0**-53 * total * (1 + 1e-9)))
    return out if math.isfinite(total) else None


def _rms_range(e: np.ndarray, delta: float, frame: int) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest frame RMS of energies ``e`` +- ``delta`` (1e-12: rounding)."""
    return (np.sqrt(np.maximum(e - delta, 0.0) / frame) * (1 - 1e-12),
            np.sqrt((e + delta) / frame) * (1 + 1e-12))


def _sure_silent(e: np.ndarray, delta: float, frame: int, thr_dbfs: float) -> bool | None:
    """:func:`is_silent` from :func:`_fast_energies`; None when too close to call."""
    lo, hi = (20.0 * math.log10(v) if v > 0 else -math.inf
              for v in (float(r.max()) for r in _rms_range(e, delta, frame)))
    return True if hi + 1e-9 < thr_dbfs else False if lo - 1e-9 >= thr_dbfs else None


def _sure_bounds(n: int, e: np.ndarray, delta: float, frame: int, hop: int,
                 top_db: float) -> tuple[int, int] | None:
    """:func:`trim_bounds` from :func:`_fast_energies`; None when too close to call."""
    lo, hi = _rms_range(e, delta, frame)
    if float(hi.max()) <= 0.0:
        return 0, 0  # every sample zero (delta is 0 only then)
    c = 10.0 ** (-top_db / 20.0)
    t_lo, t_hi = float(lo.max()) * c * (1 - 1e-12), float(hi.max()) * c * (1 + 1e-12)
    loud = np.flatnonzero(lo > t_hi)
    if t_lo <= 0.0 or len(loud) + np.count_nonzero(hi <= t_lo) < len(e):
        return None
    starts = _frame_starts(n, frame, hop)
    return (int(starts[loud[0]]), int(min(n, starts[loud[-1]] + frame))) if len(loud) else (0, 0)


def _energy_prefix_at(w: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``concatenate([[0], cumsum(w**2)])[idx]`` (float64) for sorted ``idx``, block by block.

    Bit-identical to the whole-signal cumsum (the running sum is carried into each block and
    accumulated in the same order), but needs only ``_LEVEL_BLOCK`` samples of scratch space.
    """
    out = np.zeros(len(idx), dtype=np.float64)  # idx == 0 -> 0.0
    carry = 0.0
    for lo in range(0, len(w), _LEVEL_BLOCK):
        sq = np.square(w[lo : lo + _LEVEL_BLOCK], dtype=np.float64)
        sq[0] += carry
        np.cumsum(sq, out=sq)  # sq[j] = prefix energy at lo + j + 1
        a = int(np.searchsorted(idx, lo, side="left"))
        b = int(np.searchsorted(idx, lo + len(sq), side="right"))
        k = idx[a:b] - lo
        out[a:b] = np.where(k == 0, carry, sq[np.maximum(k - 1, 0)])
        carry = float(sq[-1])
    return out


def frame_rms(wave: np.ndarray, frame: int, hop: int) -> np.ndarray:
    """RMS of non-centred frames ``[i*hop, i*hop+frame)`` of a 1-D signal; shape ``(n_frames,)``.

    The last frame is aligned to the end so the tail is covered. A signal shorter than one
    frame gives a single frame over the whole signal. ValueError: ``frame`` or ``hop`` is not
    positive.
    """
    _check_frames(frame=frame, hop=hop)
    w = np.asarray(wave, dtype=np.float32)
    if len(w) <= frame:
        return np.array([math.sqrt(float(np.mean(np.square(w, dtype=np.float64))))])
    starts = _frame_starts(len(w), frame, hop)
    idx = np.union1d(starts, starts + frame)
    prefix = _energy_prefix_at(w, idx)
    lo = prefix[np.searchsorted(idx, starts)]
    hi = prefix[np.searchsorted(idx, starts + frame)]
    return np.sqrt(np.maximum((hi - lo) / frame, 0.0))


def peak_frame_dbfs(wave: np.ndarray, *, frame_length: int = SILENCE_FRAME) -> float:
    """Level of the loudest half-overlapping frame of ``wave`` in dBFS (``-inf`` when silent).

    ``wave`` may be ``(n_samples,)`` or ``(n_samples, n_channels)`` (mixed to mono first).
    Returns ``nan`` when the signal has non-finite samples, ``-inf`` for an empty signal.
    ValueError: ``frame_length`` is not positive.
    """
    _check_frames(frame_length=frame_length)
    w = to_mono(np.asarray(wave))
    if w.size == 0:
        return -math.inf
    if not np.all(np.isfinite(w)):
        return math.nan
    peak = float(np.max(frame_rms(w, frame_length, max(1, frame_length // 2))))
    return 20.0 * math.log10(peak) if peak > 0.0 else -math.inf


def is_silent(
    wave: np.ndarray, *, threshold_dbfs: float = SILENCE_DBFS, frame_length: int = SILENCE_FRAME
) -> bool:
    """True when even the loudest frame of ``wave`` is below ``threshold_dbfs``.

    Args:
        wave: ``(n_samples,)`` (or ``(n_samples, n_channels)``, mixed to mono first).
        threshold_dbfs: level in dB relative to full scale; default :data:`SILENCE_DBFS`.
        frame_length: frame length in samples (64 ms at 16 kHz), half-overlapping frames;
            ValueError unless positive.

    An empty signal is silent; one with NaN/inf samples is not. Using the *peak* frame RMS
    means a mostly silent clip with a short utterance is not silent, while steady low-level
    hiss (e.g. -80 dBFS) is.
    """
    _check_frames(frame_length=frame_length)
    fast = _fast_energies(w := to_mono(np.asarray(wave)), [(frame_length, frame_length // 2)])
    if fast and (sure := _sure_silent(*fast[0], frame_length, threshold_dbfs)) is not None:
        return sure  # the running sum's answer, from block sums
    level = peak_frame_dbfs(w, frame_length=frame_length)
    if math.isnan(level):
        return False
    return level < threshold_dbfs


def faint_note(name: str, threshold_dbfs: float = SILENCE_DBFS, *, digital: bool = False
               ) -> str:
    """The warning of an input whose loudest frame is below ``threshold_dbfs`` (:func:`is_silent`),
    in the words of a prediction and of a timeline alike; ``digital``: every sample has one
    value (a muted input: moving closer to the microphone does not help, QA stop 39). Such
    input is answered ``no_speech``, its reason (``silence``) saying that it is silent: its
    warning gives the cause and what to do without saying so a second time (the two said it
    twice: review, stop 53)."""
    if digital:
        return (f"{name}: every sample has the same value, as a muted or disconnected input "
                "records: check that the microphone is not muted and that the right input "
                "device is chosen.")
    return (f"{name}: the audio is silent or nearly so (loudest frame below "
            f"{threshold_dbfs:.0f} dBFS): too faint to judge reliably; record closer to the "
            "microphone.")


def trim_bounds(wave: np.ndarray, sr: int, top_db: float) -> tuple[int, int]:
    """Sample range ``[start, end)`` whose 32 ms frames are within ``top_db`` of the loudest.

    ``(0, 0)`` when the signal is all zeros. ``wave`` is 1-D.
    """
    frame = max(1, int(round(0.032 * sr)))  # 32 ms
    hop = max(1, int(round(0.008 * sr)))  # 8 ms
    fast = _fast_energies(np.asarray(wave, dtype=np.float32), [(frame, hop)])
    if fast and (sure := _sure_bounds(len(wave), *fast[0], frame, hop, top_db)) is not None:
        return sure  # the running sum's bounds, from block sums
    rms = frame_rms(wave, frame, hop)
    peak = float(rms.max()) if rms.size else 0.0
    if peak <= 0.0:
        return 0, 0
    loud = np.flatnonzero(rms > peak * 10.0 ** (-top_db / 20.0))
    if loud.size == 0:
        return 0, 0
    n = len(wave)
    if n <= frame:
        return 0, n
    starts = _frame_starts(n, frame, hop)
    return int(starts[loud[0]]), int(min(n, starts[loud[-1]] + frame))


def trim_silence(wave: np.ndarray, sr: int, *, top_db: float = 40.0) -> np.ndarray:
    """Cut leading and trailing stretches more than ``top_db`` below the loudest frame.

    Args:
        wave: ``(n_samples,)`` float signal.
        sr: its sample rate in Hz (sets the 32 ms frame / 8 ms hop; edges are exact to ~32 ms).
        top_db: threshold in dB below the peak frame RMS.

    Returns:
        A view ``wave[start:end]``; the untouched ``wave`` when trimming would remove
        everything (all-zero input).
    """
    w = to_mono(np.asarray(wave))
    if w.size == 0:
        return w
    start, end = trim_bounds(w, sr, top_db)
    if end <= start:
        return w
    return w[start:end]


def _rms_of_prefix(prefix: np.ndarray, idx: np.ndarray, starts: np.ndarray,
                   frame: int) -> np.ndarray:
    lo = prefix[np.searchsorted(idx, starts)]
    hi = prefix[np.searchsorted(idx, starts + frame)]
    return np.sqrt(np.maximum((hi - lo) / frame, 0.0))


def silent_and_trimmed(wave: np.ndarray, sr: int, *, top_db: float,
                       threshold_dbfs: float = SILENCE_DBFS) -> tuple[bool, np.ndarray]:
    """``(is_silent(wave), trim_silence(wave, sr, top_db=top_db))`` of a finite mono 1-D
    signal, with the same numbers, from one pass over the samples: both read the running
    energy sum (:func:`_energy_prefix_at`) at their own frame edges, so it is summed once.
    The trimmed wave is ``wave`` itself when trimming would remove everything."""
    w = np.asarray(wave, dtype=np.float32)
    n = len(w)
    trim_frame, trim_hop = max(1, int(round(0.032 * sr))), max(1, int(round(0.008 * sr)))
    sil_frame = SILENCE_FRAME
    if n == 0 or n <= max(trim_frame, sil_frame):  # short: the plain functions
        return is_silent(w, threshold_dbfs=threshold_dbfs), trim_silence(w, sr, top_db=top_db)
    fast = _fast_energies(w, [(sil_frame, sil_frame // 2), (trim_frame, trim_hop)])
    if fast:  # the running sum's answers from block sums, when sure (nearly always)
        silent = _sure_silent(*fast[0], sil_frame, threshold_dbfs)
        bounds = _sure_bounds(n, *fast[1], trim_frame, trim_hop, top_db)
        if silent is not None and bounds is not None:
            return silent, (w[bounds[0] : bounds[1]] if bounds[1] > bounds[0] else w)
    s_starts = _frame_starts(n, sil_frame, max(1, sil_frame // 2))
    t_starts = _frame_starts(n, trim_frame, trim_hop)
    idx = np.unique(np.concatenate([s_starts, s_starts + sil_frame, t_starts,
                                    t_starts + trim_frame]))
    prefix = _energy_prefix_at(w, idx)
    peak = float(np.max(_rms_of_prefix(prefix, idx, s_starts, sil_frame)))
    level = 20.0 * math.log10(peak) if peak > 0.0 else -math.inf
    rms = _rms_of_prefix(prefix, idx, t_starts, trim_frame)
    top = float(rms.max())
    if top <= 0.0:
        return level < threshold_dbfs, w
    loud = np.flatnonzero(rms > top * 10.0 ** (-top_db / 20.0))
    if loud.size == 0:
        return level < threshold_dbfs, w
    start, end = int(t_starts[loud[0]]), int(min(n, t_starts[loud[-1]] + trim_frame))
    return level < threshold_dbfs, (w[start:end] if end > start else w)
