"""Clipping and coarse resolution, measured on the file as recorded.

Clipping: runs of samples stuck at full scale.
A clean peak touches full scale for a sample or two; a clipped one stays there. The decoder
counts the runs of at least :data:`CLIP_RUN` samples at or above :data:`CLIP_LEVEL` in every
channel of every block it reads (:class:`ClipCounter`, before any mixing or resampling, which
would smear them), so that every answer, from the CLI, the API or the web app, says that a
recording is clipped in the same words (:func:`clip_note`; the web page alone said it before
stop 39). Coarse resolution: an integer PCM file whose loudest sample is only a few
steps of its format (16-bit at -50 dBFS, any 8-bit file) leaves the quiet parts of a voice
to rounding, which the models never trained on (:func:`coarse_note`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["CLIP_LEVEL", "CLIP_RUN", "COARSE_STEPS", "PCM_BITS", "ClipCounter", "clip_note",
           "coarse_note"]

#: A sample at or above this magnitude (-0.009 dBFS; 16-bit full scale is 32767/32768) is at
#: full scale.
CLIP_LEVEL = 0.999
#: Full-scale samples count as clipping when at least this many follow each other.
CLIP_RUN = 3


#: A recording whose loudest sample is fewer steps of its integer format than this is coarse
#: (16-bit: below -48.2 dBFS; 8-bit: always). RAVDESS clips requantised to 16 bits kept the
#: answer they had as float samples on 36/40 clips at -48 dBFS, 34/40 at -50, 32/40 at -55
#: (40/40 at -45; float samples: 40/40 at every level; stop 39).
COARSE_STEPS = 128
#: bits of libsndfile's integer PCM subtypes (companded, ADPCM and lossy formats: none)
PCM_BITS = {"PCM_S8": 8, "PCM_U8": 8, "PCM_16": 16, "PCM_24": 24, "PCM_32": 32,
            "DPCM_8": 8, "DPCM_16": 16, "ALAC_16": 16, "ALAC_20": 20, "ALAC_24": 24,
            "ALAC_32": 32}


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


class ClipCounter:
    """Samples in runs of at least :data:`CLIP_RUN` full-scale samples, per channel, a run
    followed across the blocks given to :meth:`add` in order.

    Attributes:
        n_samples: samples seen (every channel's).
    """

    def __init__(self) -> None:
        self.n_samples = 0
        self.peak = 0.0  #: the largest magnitude seen
        self._done = 0
        self._carry: list[int] = []

    def add(self, block: np.ndarray) -> None:
        """Count one ``(n,)`` or ``(n, channels)`` block (full scale 1.0)."""
        b = np.asarray(block)
        b = b[:, None] if b.ndim == 1 else b.reshape(len(b), -1)
        if len(self._carry) != b.shape[1]:
            self._done += self._open()
            self._carry = [0] * b.shape[1]
        self.n_samples += b.size
        hi, lo = (float(b.max()), float(b.min())) if b.size else (0.0, 0.0)
        self.peak = max(self.peak, hi, -lo)
        if hi < CLIP_LEVEL and lo > -CLIP_LEVEL:  # the usual block (no scratch): only a
            self._done += self._open()  # run left open before can end here
            self._carry = [0] * b.shape[1]
            return
        at = np.abs(b) >= CLIP_LEVEL
        for c in range(b.shape[1]):
            got, self._carry[c] = _clipped_runs(at[:, c], self._carry[c])
            self._done += got

    def _open(self) -> int:
        return sum(c for c in self._carry if c >= CLIP_RUN)

    @property
    def clipped(self) -> int:
        """Samples in runs of full-scale samples so far (a run still open included)."""
        return self._done + self._open()

    def notes(self, name: str, bits: int | None) -> list[str]:
        """The warnings of what was counted: clipping, and coarse resolution for an
        integer format of ``bits`` (None: a float, companded or lossy format)."""
        out = [clip_note(name, self.clipped, self.n_samples)] if self.clipped else []
        steps = self.peak * 2 ** (bits - 1) if bits else 0.0
        if 0.5 <= steps < COARSE_STEPS:  # (digital silence has its own note)
            out.append(coarse_note(name, int(round(steps)), bits or 0, self.peak))
        return out


def clip_note(name: str, clipped: int, n_samples: int) -> str:
    """The warning of a recording with ``clipped`` of its ``n_samples`` samples (every
    channel's) in full-scale runs, in the words of every answer."""
    share = clipped / max(1, n_samples)
    part = f"{share:.2%}" if share >= 5e-5 else "under 0.01%"
    return (f"{name}: the recording is clipped: {clipped:,} samples ({part}) sit at full "
            "scale, so the loudest parts are distorted and the answer may suffer; record "
            "with a lower input level.")


def coarse_note(name: str, steps: int, bits: int, peak: float) -> str:
    """The warning of an integer PCM recording whose loudest sample is ``steps`` steps of
    its ``bits``-bit scale (peak ``peak`` at full scale 1.0)."""
    return (f"{name}: the recording is coarse: its loudest sample is {steps} steps of its "
            f"{bits}-bit scale ({20 * np.log10(peak):.1f} dBFS), so the quiet parts of the "
            "voice are lost to rounding and the answer is less reliable; record at a higher "
            "level or with more bits.")
