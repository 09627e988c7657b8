"""emovox's own model: a small CRNN with attentive statistics pooling on log-mel frames.

Designed for speaker-independent speech emotion recognition on a 2-core CPU budget:

* input: ``(T, 64)`` log-mel frames (10 ms hop, ``T ~ 300`` for 3 s; the trainer pads or
  crops, but any ``T >= 8`` works). A ``BatchNorm1d`` over the 64 bands standardises them
  with training-set statistics;
* 2-D CNN front end on ``(1, T, 64)``: four blocks of ``Conv2d 3x3 -> MaxPool -> BatchNorm
  -> GELU -> Dropout2d`` with 16-32-64-128 channels. Every block halves the frequency axis
  (64 -> 4 bands); the first three halve time (10 ms -> 80 ms frames, ``T' = T // 8``).
  Pooling right after the convolution (before BN and GELU) and channels-last tensors keep
  the elementwise work on the small maps -- the front end dominates the CPU cost;
* the remaining 4 bands x 128 channels are flattened per frame and projected to 128 dims
  (``Linear -> GELU -> Dropout``) -> ``(B, T', 128)``;
* one bidirectional GRU layer (96 units per direction);
* attentive statistics pooling: frame scores ``v^T tanh(W h_t + b)``, softmax over time, the
  attention-weighted mean **and** standard deviation, concatenated -> ``(B, 384)``;
* optional utterance-level auxiliary vector (``n_aux > 0``, e.g. 88 eGeMAPS functionals):
  standardised by a ``BatchNorm1d`` and concatenated to the pooled vector;
* head ``Dropout -> Linear(., 128) -> GELU -> Dropout -> Linear(128, n_classes)``.

About 0.36 M parameters; forward + backward of a 32 x 300 x 64 batch takes about
0.15 s on 2 CPU threads. Trained with AdamW (lr 2e-3, weight decay 1e-2), cross-entropy
with label smoothing 0.1, SpecAugment and mixup (alpha 0.2) applied by the trainer, up to 40
epochs, batch 32, early stopping with patience 8.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from emovox.models.configs import CrnnConfig

__all__ = ["DEFAULTS", "AttentiveStatsPool", "Crnn", "CrnnConfig", "build_net"]


#: plain-dict view of :class:`CrnnConfig`'s defaults (derived, not a second copy)
DEFAULTS: dict[str, Any] = CrnnConfig().to_params()


class AttentiveStatsPool(nn.Module):
    """Attention-weighted mean and standard deviation over time, concatenated.

    ``e_t = v^T tanh(W h_t + b)``, ``a = softmax_t(e)``, ``mu = sum_t a_t h_t``,
    ``sigma = sqrt(sum_t a_t h_t^2 - mu^2)``.
    """

    def __init__(self, d_in: int, d_att: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.proj = nn.Linear(d_in, d_att)
        self.score = nn.Linear(d_att, 1, bias=False)
        self.eps = eps

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """``h``: (B, T, D) -> (B, 2 D)."""
        e = self.score(torch.tanh(self.proj(h)))  # (B, T, 1)
        a = torch.softmax(e, dim=1)  # (B, T, 1)
        mu = (a * h).sum(dim=1)  # (B, D)
        var = (a * h * h).sum(dim=1) - mu * mu  # (B, D)
        sigma = torch.sqrt(var.clamp(min=self.eps))  # (B, D)
        return torch.cat([mu, sigma], dim=1)  # (B, 2 D)


class Crnn(nn.Module):
    """2-D CNN -> per-frame projection -> BiGRU -> attentive stats pooling -> dense head."""

    def __init__(self, n_classes: int, n_mels: int, cfg: CrnnConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or CrnnConfig()
        channels, time_pools, dropout = cfg.channels, cfg.time_pools, cfg.dropout
        gru_hidden, n_aux = cfg.gru_hidden, cfg.n_aux
        self.n_aux = n_aux
        self.time_reduction = 1
        for p in time_pools:
            self.time_reduction *= p
        self.input_norm = nn.BatchNorm1d(n_mels)
        blocks: list[nn.Module] = []
        c_in = 1
        for c_out, tp in zip(channels, time_pools, strict=True):
            blocks += [
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                nn.MaxPool2d((tp, 2)),  # pool first: BN and GELU then run on 1/4 of the map
                nn.BatchNorm2d(c_out),
                nn.GELU(),
                nn.Dropout2d(cfg.conv_dropout),
            ]
            c_in = c_out
        self.cnn = nn.Sequential(*blocks)
        n_bands = n_mels // 2 ** len(channels)
        self.frame_proj = nn.Sequential(
            nn.Linear(c_in * n_bands, cfg.d_model), nn.GELU(), nn.Dropout(dropout)
        )
        self.gru = nn.GRU(cfg.d_model, gru_hidden, batch_first=True, bidirectional=True)
        self.pool = AttentiveStatsPool(2 * gru_hidden, cfg.attention_dim)
        self.aux_norm = nn.BatchNorm1d(n_aux) if n_aux > 0 else None
        self.head = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(4 * gru_hidden + n_aux, cfg.dense),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(cfg.dense, n_classes),
        )

    def forward(self, x: torch.Tensor, aux: torch.Tensor | None = None) -> torch.Tensor:
        """``x``: (B, T, M) log-mel frames, ``aux``: (B, n_aux) or None -> (B, n_classes)."""
        h = self.input_norm(x.transpose(1, 2))  # (B, M, T), standardised per band
        h = h.transpose(1, 2).unsqueeze(1)  # (B, 1, T, M)
        h = h.contiguous(memory_format=torch.channels_last)  # (B, 1, T, M), NHWC: faster on CPU
        h = self.cnn(h)  # (B, C, T', M / 16) with T' = T // time_reduction
        b, c, t, f = h.shape
        h = h.permute(0, 2, 1, 3).reshape(b, t, c * f)  # (B, T', C * M / 16)
        h = self.frame_proj(h)  # (B, T', d_model)
        h, _ = self.gru(h)  # (B, T', 2 H)
        z = self.pool(h)  # (B, 4 H): attentive mean ++ std
        if self.aux_norm is not None:
            if aux is None:
                raise ValueError(f"this crnn was built with n_aux={self.n_aux}: pass aux")
            if aux.shape != (b, self.n_aux):
                raise ValueError(f"aux must be ({b}, {self.n_aux}), got {tuple(aux.shape)}")
            z = torch.cat([z, self.aux_norm(aux)], dim=1)  # (B, 4 H + n_aux)
        elif aux is not None:
            raise ValueError("this crnn was built with n_aux=0 but got aux")
        return self.head(z)  # (B, n_classes)


def build_net(n_classes: int, input_shape: tuple[int, ...], **params: Any) -> Crnn:
    """emovox CRNN for ``input_shape == (T, M)`` (about 300 x 64 log-mel).

    ``params`` are :class:`CrnnConfig` keys (unknown keys raise ConfigError; training keys
    are accepted and do not affect the network). ``n_aux > 0`` adds an utterance-level
    input: call ``net(x, aux)`` with ``aux`` of shape ``(B, n_aux)``.
    """
    cfg = CrnnConfig.from_params(params)
    cfg.check_net(input_shape)  # what the load-time check of a model folder refuses too
    return Crnn(n_classes, input_shape[1], cfg)
