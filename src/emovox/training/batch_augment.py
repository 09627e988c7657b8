"""Batch augmentations of the network input during training (moved out of
:mod:`emovox.training.trainer`, stop 45): SpecAugment, vocal-tract-length perturbation,
Freq-MixStyle and mixup, on normalised ``(B, T, F)`` batches."""

from __future__ import annotations

import numpy as np
import torch

from emovox.models.params import TrainConfig

__all__ = ["augment_batch", "freq_mixstyle", "freq_warp", "spec_augment", "warp_bands"]


def spec_augment(
    x: torch.Tensor, gen: torch.Generator, n_time: int = 2, max_t: int = 30, n_freq: int = 2,
    max_f: int = 8,
) -> torch.Tensor:
    """SpecAugment masks (time and frequency) on a normalised batch. # (B, T, F)"""
    x = x.clone()
    b, t, f = x.shape
    for i in range(b):
        for _ in range(n_time):
            w = int(torch.randint(0, max_t + 1, (1,), generator=gen))
            s = int(torch.randint(0, max(1, t - w), (1,), generator=gen))
            x[i, s : s + w, :] = 0.0
        for _ in range(n_freq):
            w = int(torch.randint(0, max_f + 1, (1,), generator=gen))
            s = int(torch.randint(0, max(1, f - w), (1,), generator=gen))
            x[i, :, s : s + w] = 0.0
    return x


def warp_bands(x: torch.Tensor, a: torch.Tensor, cut: float = 0.8) -> torch.Tensor:
    """Warp each clip's frequency axis by its factor ``a`` (B,) (piecewise linear, Jaitly and
    Hinton 2013): band ``f`` takes the value at ``f * a`` below ``cut`` of the axis, and the
    rest is stretched so the top band stays the top band. # (B, T, F)"""
    f = x.shape[2]
    bands = torch.arange(f, dtype=x.dtype).unsqueeze(0)  # (1, F)
    a = a.to(x.dtype).unsqueeze(1)  # (B, 1)
    knee, top = cut * (f - 1), f - 1
    low = bands * a  # (B, F): below the knee
    high = knee * a + (bands - knee) * (top - knee * a) / (top - knee)  # (B, F): above
    src = torch.where(bands <= knee, low, high).clamp(0, top)  # (B, F) source positions
    lo = src.floor().long().clamp(max=f - 2)  # (B, F)
    w = (src - lo).unsqueeze(1)  # (B, 1, F)
    g_lo = torch.gather(x, 2, lo.unsqueeze(1).expand(-1, x.shape[1], -1))  # (B, T, F)
    g_hi = torch.gather(x, 2, (lo + 1).unsqueeze(1).expand(-1, x.shape[1], -1))  # (B, T, F)
    return g_lo * (1 - w) + g_hi * w  # (B, T, F)


def freq_warp(x: torch.Tensor, gen: torch.Generator, max_warp: float) -> torch.Tensor:
    """Vocal-tract-length perturbation of a batch: :func:`warp_bands` with a factor drawn
    uniformly from ``1 +- max_warp`` per clip. # (B, T, F)"""
    a = 1 + (torch.rand(x.shape[0], generator=gen) * 2 - 1) * max_warp  # (B,)
    return warp_bands(x, a)


def freq_mixstyle(x: torch.Tensor, lam: torch.Tensor, perm: torch.Tensor,
                  eps: float = 1e-6) -> torch.Tensor:
    """Freq-MixStyle (Kim et al. 2022; Schmid et al. 2022): each clip's per-band mean and std
    over time (its spectral envelope: speaker, microphone, room) are replaced by a mix of its
    own and those of clip ``perm[i]``, weights ``lam`` (B,); the normalised content is kept.
    A train-time analogue of per-speaker normalisation. # (B, T, F)"""
    mu = x.mean(dim=1, keepdim=True)  # (B, 1, F)
    sig = (x.var(dim=1, keepdim=True) + eps).sqrt()  # (B, 1, F)
    w = lam.to(x.dtype).view(-1, 1, 1)  # (B, 1, 1)
    mu_mix = w * mu + (1 - w) * mu[perm]
    sig_mix = w * sig + (1 - w) * sig[perm]
    return (x - mu) / sig * sig_mix + mu_mix  # (B, T, F)


def augment_batch(tc: TrainConfig, gen: torch.Generator, np_rng: np.random.Generator,
                  xb: torch.Tensor, yb: torch.Tensor, qb: torch.Tensor | None,
                  sb: torch.Tensor | None, halves: list[int]
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None,
                             torch.Tensor | None]:
    """The batch augmentations (VTLP, Freq-MixStyle, SpecAugment, mixup) on a batch
    whose rows are ``halves`` consecutive parts (the labelled clips, then any unlabelled
    ones: every row is augmented alike, so the adversary cannot tell the parts apart by
    their augmentation; a code review, stop 45), mixing rows within a part only; ``gen``
    draws the permutations and masks, ``np_rng`` the mixing weights. ``yb``
    and ``qb`` (labels, teacher) cover the first part, ``sb`` (groups) every row."""
    n = len(xb)

    def within() -> torch.Tensor:  # a permutation of the rows inside each part
        parts, start = [], 0
        for h in halves:
            parts.append(start + torch.randperm(h, generator=gen))
            start += h
        return torch.cat(parts)

    if tc.vtlp > 0 and xb.ndim == 3:
        xb = freq_warp(xb, gen, tc.vtlp)
    if tc.mixstyle > 0 and xb.ndim == 3 and np_rng.random() < tc.mixstyle:
        lam = torch.from_numpy(np_rng.beta(tc.mixstyle_alpha, tc.mixstyle_alpha, n))
        xb = freq_mixstyle(xb, lam, within())
    if tc.specaugment and xb.ndim == 3:
        xb = spec_augment(xb, gen)
    if tc.mixup_alpha > 0:
        lam = float(np_rng.beta(tc.mixup_alpha, tc.mixup_alpha))
        j = within()
        xb = lam * xb + (1 - lam) * xb[j]
        first = j[: halves[0]]  # the labelled part's partners are labelled clips
        yb = lam * yb + (1 - lam) * yb[first]
        if qb is not None:
            qb = lam * qb + (1 - lam) * qb[first]
        if sb is not None:
            sb = lam * sb + (1 - lam) * sb[j]
    return xb, yb, qb, sb
