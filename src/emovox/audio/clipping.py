"""Clipping and coarse resolution, measured on the file as recorded.

Clipping: runs of samples stuck at full scale.
A clean peak touches full scale for a sample or two; a clipped one stays there. The decoder
counts the runs of at least :data:`CLIP_RUN` samples at or above :data:`CLIP_LEVEL` in every
channel of every block it reads (:class:`ClipCounter`, before any mixing or resampling, which
would smear them), so that every answer, from the CLI, the API or the web app, says that a
recording is clipped in the same words (:func:`clip_note`; the web page alone said it before
stop 39). Coarse resolution: an integer PCM file whose loudest sample is only a few
steps of its format (16-bit at -50 dBFS, any 8-bit file) leaves the quiet parts of a voice
to rounding, which the models never trained on (:func:`coarse_note`). Over full scale: a
float file (:data:`FLOAT_SUBTYPES`) may hold samples beyond 1.0, which its answer does not
mind (the model reads the level-normalised sound) but which clip wherever the file is
converted to integer PCM or played; only the web page's meter and waveform, clamped, showed
it (:func:`over_note`, review stop 53).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["CLIP_LEVEL", "CLIP_RUN", "COARSE_MIN_STEPS", "COARSE_STEPS", "FLOAT_SUBTYPES",
           "FULL_SCALE", "LOSSY_CLIP_SHARE", "LOSSY_SUBTYPES", "OVER_LEVEL", "PCM_BITS",
           "ClipCounter", "clip_note", "coarse_note", "over_note"]

#: A sample at or above this magnitude (-0.009 dBFS; 16-bit full scale is 32767/32768) is at
#: full scale.
CLIP_LEVEL = 0.999
#: Full-scale samples count as clipping when at least this many follow each other.
CLIP_RUN = 3
#: A sample of larger magnitude is over full scale (a float format's; 1.0 itself is full
#: scale, and a float32 rounding step above it is not worth a word).
OVER_LEVEL = 1.0 + 1e-6
#: libsndfile's float subtypes: the only formats whose samples can lie beyond full scale
#: (an integer or companded format cannot; a lossy codec's ringing over it is clipping,
#: :data:`LOSSY_CLIP_SHARE`)
FLOAT_SUBTYPES = frozenset({"FLOAT", "DOUBLE"})


#: A recording whose loudest sample is fewer steps of its integer format than this is coarse
#: (16-bit: below -48.2 dBFS; 8-bit: always). RAVDESS clips requantised to 16 bits kept the
#: answer they had as float samples on 36/40 clips at -48 dBFS, 34/40 at -50, 32/40 at -55
#: (38/40 at -40, 40/40 at -45; float samples: 40/40 at every level; bench/resolution.py).
COARSE_STEPS = 128
#: bits of libsndfile's integer PCM subtypes (companded, ADPCM and lossy formats: none)
PCM_BITS = {"PCM_S8": 8, "PCM_U8": 8, "PCM_16": 16, "PCM_24": 24, "PCM_32": 32,
            "DPCM_8": 8, "DPCM_16": 16, "ALAC_16": 16, "ALAC_20": 20, "ALAC_24": 24,
            "ALAC_32": 32}
#: the largest magnitude of companded G.711 telephone audio (it never reaches 0.999: clipped
#: mu-law and A-law files were never warned, re-check, stop 39)
FULL_SCALE = {"ULAW": 32124 / 32768, "ALAW": 32256 / 32768}
#: a coarse note needs at least this many steps (16-bit: -60.2 dBFS; 8-bit files always get
#: it): below, near-silence, dither or room tone is said by the near-silence note (a 1-step
#: dither file was told the quiet parts of its voice were lost: re-check, stop 39)
COARSE_MIN_STEPS = 32
#: libsndfile's lossy subtypes (ffmpeg's output is treated alike: it decodes MP3, AAC, ...)
LOSSY_SUBTYPES = frozenset({"MPEG_LAYER_I", "MPEG_LAYER_II", "MPEG_LAYER_III", "VORBIS",
                            "OPUS"})


def _runs(at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start indices and lengths of the runs of True in ``at``."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], at.astype(np.int8), [0]])))
    return edges[0::2], edges[1::2] - edges[0::2]


def _clipped_runs(at_full: np.ndarray, carry: int) -> tuple[int, int]:
    """Samples in finished runs of at least :data:`CLIP_RUN` full-scale samples in one
    channel's block ``at_full`` (bool), given the run ``carry`` left open by the block
    before; returns ``(clipped, the run left open at this block's end)``."""
    starts, lengths = _runs(at_full)
    clipped = 0
    open_end = len(starts) > 0 and starts[-1] + lengths[-1] == len(at_full)
    if len(starts) and starts[0] == 0:
        lengths[0] += carry  # the open run goes on
    elif carry >= CLIP_RUN:
        clipped += carry  # the open run ended at the block's edge
    carry = 0
    if open_end:
        carry, lengths = int(lengths[-1]), lengths[:-1]
    return clipped + int(lengths[lengths >= CLIP_RUN].sum()), carry


#: a lossy codec's ringing breaks a clipped flat top into single samples over full scale:
#: in lossy-decoded audio samples at full scale are counted one by one, and said from this
#: share on (24 RAVDESS clips peak-normalised, no clipping: at most 0.005 % in MP3, AAC or
#: Opus; clipped x3: MP3 0.22-0.95 %, Opus 0.56-4.8 %, AAC 0-0.04 %: mostly missed;
#: bench/resolution.py, stop 39)
LOSSY_CLIP_SHARE = 2e-4


class ClipCounter:
    """Clipped samples, per channel, and the peak, over blocks given to :meth:`add` in
    order: runs of at least :data:`CLIP_RUN` samples at full scale, a run followed across
    blocks (``lossy``: every sample at full scale, see :data:`LOSSY_CLIP_SHARE`). Full scale
    is :data:`CLIP_LEVEL` up to 1.0 (a float file's samples over 1.0 are not clipped in the
    file: its answer was the unclipped one, QA stop 39; they are counted in :attr:`over` and
    said by :func:`over_note`), or the format's own largest value:
    127/128 for 8-bit audio (its positive half was never counted), :data:`FULL_SCALE` for
    G.711. ``subtype``: libsndfile's (``"PCM_16"``, ``"ULAW"``, ...; None: unknown).

    Attributes:
        n_samples: samples seen (every channel's).
        peak: the largest magnitude seen.
        over: samples seen beyond full scale (magnitude above :data:`OVER_LEVEL`, every
            channel's).
    """

    def __init__(self, subtype: str | None = None, *, lossy: bool = False) -> None:
        self.n_samples = 0
        self.peak = 0.0
        self.bits = PCM_BITS.get(subtype or "")
        self.lossy = lossy or subtype in LOSSY_SUBTYPES
        self.float_format = subtype in FLOAT_SUBTYPES
        self.over = 0
        top = FULL_SCALE.get(subtype or "", 1.0 - 2.0 ** (1 - self.bits) if self.bits else 1.0)
        self.level = min(CLIP_LEVEL, top - 1e-6)
        self._done: list[int] = []  # per channel
        self._carry: list[int] = []

    def add(self, block: np.ndarray) -> None:
        """Count one ``(n,)`` or ``(n, channels)`` block (full scale 1.0)."""
        b = np.asarray(block)
        b = b[:, None] if b.ndim == 1 else b.reshape(len(b), -1)
        if len(self._carry) != b.shape[1]:  # the first block (a file keeps its channels)
            self._close()
            kept = sum(self._done)
            self._done, self._carry = [kept] + [0] * (b.shape[1] - 1), [0] * b.shape[1]
        self.n_samples += b.size
        hi, lo = (float(b.max()), float(b.min())) if b.size else (0.0, 0.0)
        self.peak = max(self.peak, hi, -lo)
        if hi < self.level and lo > -self.level:  # the usual block (no scratch): only a
            self._close()  # run left open before can end here
            return
        m = np.abs(b)
        over = m > OVER_LEVEL
        self.over += int(over.sum())
        at = (m >= self.level) & (self.lossy | ~over)
        for c in range(b.shape[1]):
            if self.lossy:
                self._done[c] += int(at[:, c].sum())
                continue
            got, self._carry[c] = _clipped_runs(at[:, c], self._carry[c])
            self._done[c] += got

    def _close(self) -> None:
        """End the runs left open (a block without full-scale samples came)."""
        self._done = self._per_channel()
        self._carry = [0] * len(self._carry)

    def _per_channel(self) -> list[int]:
        return [d + (n if n >= CLIP_RUN else 0)
                for d, n in zip(self._done, self._carry, strict=True)]

    @property
    def clipped(self) -> int:
        """Clipped samples so far, every channel's (a run still open included)."""
        return sum(self._per_channel())

    def share(self) -> float:
        """The clipped share of the most clipped channel (one clipped channel of two was
        said at half its share: QA, stop 39)."""
        per = self._per_channel()
        return max(per) / max(1, self.n_samples // max(1, len(per))) if per else 0.0

    def notes(self, name: str) -> list[str]:
        """The warnings of what was counted: clipping, coarse resolution for an integer
        format (:attr:`bits`; None: a float, companded or lossy format), and samples over
        full scale for a float format."""
        clipped, share = self.clipped, self.share()
        out = ([clip_note(name, clipped, share, len(self._done))] if clipped and (
            not self.lossy or share >= LOSSY_CLIP_SHARE) else [])
        steps = self.peak * 2 ** (self.bits - 1) if self.bits else 0.0
        eight = (self.bits or 99) <= 8  # every 8-bit file with a signal (truth check, 39)
        if (eight and steps >= 0.5) or COARSE_MIN_STEPS <= steps < COARSE_STEPS:
            out.append(coarse_note(name, int(round(steps)), self.bits or 0, self.peak))
        if self.float_format and self.over:
            out.append(over_note(name, self.over, self.over / max(1, self.n_samples),
                                 self.peak))
        return out


def _share_text(share: float) -> str:
    """A share of samples as a warning writes it: two decimals of a percent, or "under
    0.01%" (a few samples are not "0.00%")."""
    return f"{share:.2%}" if share >= 5e-5 else "under 0.01%"


def clip_note(name: str, clipped: int, share: float, channels: int = 1) -> str:
    """The warning of a recording with ``clipped`` samples at full scale, ``share`` of the
    samples of its most clipped channel, in the words of every answer."""
    part = _share_text(share)
    of = " of its most clipped channel" if channels > 1 else ""
    return (f"{name}: the recording is clipped: {clipped:,} samples ({part}{of}) sit at full "
            "scale, so the loudest parts are distorted and the answer may suffer; record "
            "with a lower input level.")


def coarse_note(name: str, steps: int, bits: int, peak: float) -> str:
    """The warning of an integer PCM recording whose loudest sample is ``steps`` steps of
    its ``bits``-bit scale (peak ``peak`` at full scale 1.0)."""
    advice = ("record with more bits (16 or 24)" if bits <= 8 else
              "record at a higher level or with more bits")
    return (f"{name}: the recording is coarse: its loudest sample is {steps} steps of its "
            f"{bits}-bit scale ({20 * np.log10(peak):.1f} dBFS), so the quiet parts of the "
            f"voice are lost to rounding and the answer is less reliable; {advice}.")


def over_note(name: str, over: int, share: float, peak: float) -> str:
    """The warning of a float recording with ``over`` samples beyond full scale, ``share``
    of its samples (every channel's), the loudest of magnitude ``peak`` (full scale 1.0)."""
    part = _share_text(share)
    db = 20 * math.log10(peak)
    level = f"{db:+.1f} dBFS" if db >= 0.05 else "under +0.05 dBFS"
    cut = max(0.1, math.ceil(db * 10) / 10)
    return (f"{name}: the recording goes over full scale: {over:,} samples ({part}) of this "
            f"float file lie beyond 1.0, the loudest at {level}; the answer does not suffer "
            "(the model reads the level-normalised sound), but they clip wherever the file "
            "is converted to integer PCM (16- or 24-bit) or played: lower its gain by at "
            f"least {cut:.1f} dB first.")
