"""Reference project 004: Conv1D front end + GRU + additive attention pooling on 40 MFCC
x 200 frames.

Recipe of the reference project (re-implemented in PyTorch):

* input: ``(200, 40)`` time-major MFCCs at a 20 ms hop, padded/cropped to 200 frames
  (:func:`emovox.features.reference.reference004_mfcc_frames`); any ``T >= 4`` works;
* two Conv1D blocks over time with 64 and 128 channels (kernel 3, BatchNorm, ReLU,
  max-pool /2): 200 -> 100 -> 50 frames;
* one GRU layer. We use a **bidirectional** GRU (64 units per direction, 128 in total):
  the whole clip is available at once, and attention pooling over a one-directional GRU
  gives early frames little context. ``bidirectional=False`` gives the uni-directional
  variant with 128 units;
* additive (Bahdanau) attention pooling: ``e_t = v^T tanh(W h_t + b)``,
  ``a = softmax_t(e)``, ``c = sum_t a_t h_t``;
* ``Dense(64, ReLU) -> Dropout -> Dense(n_classes)``.

Trained with Adam lr 1e-3, cross-entropy, up to 60 epochs, batch 32, early stopping with
patience 10.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from emovox.models.configs import CnnGruAttentionConfig
from emovox.models.layers import AdditiveAttentionPool

__all__ = ["CnnGruAttention", "CnnGruAttentionConfig", "build_net"]


class CnnGruAttention(nn.Module):
    """Conv1D blocks -> GRU -> additive attention pooling -> dense head."""

    def __init__(self, n_classes: int, n_features: int,
                 cfg: CnnGruAttentionConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or CnnGruAttentionConfig()
        kernel_size, gru_hidden, bidirectional = cfg.kernel_size, cfg.gru_hidden, cfg.bidirectional
        blocks: list[nn.Module] = []
        c_in = n_features
        for c_out in cfg.channels:
            blocks += [
                nn.Conv1d(c_in, c_out, kernel_size, padding=kernel_size // 2),
                nn.BatchNorm1d(c_out),
                nn.ReLU(),
                nn.MaxPool1d(2),
            ]
            c_in = c_out
        self.conv = nn.Sequential(*blocks)
        hidden = gru_hidden if bidirectional else 2 * gru_hidden
        self.gru = nn.GRU(c_in, hidden, batch_first=True, bidirectional=bidirectional)
        d = 2 * gru_hidden
        self.attention = AdditiveAttentionPool(d, cfg.attention_dim)
        self.head = nn.Sequential(
            nn.Dropout(cfg.dropout),
            nn.Linear(d, cfg.dense),
            nn.ReLU(),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.dense, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: (B, T, F) MFCC frames -> (B, n_classes) logits."""
        h = x.transpose(1, 2)  # (B, F, T)
        h = self.conv(h)  # (B, 128, T / 4)
        h = h.transpose(1, 2)  # (B, T', 128)
        h, _ = self.gru(h)  # (B, T', 2 * gru_hidden)
        h = self.attention(h)  # (B, 2 * gru_hidden)
        return self.head(h)  # (B, n_classes)


def build_net(n_classes: int, input_shape: tuple[int, ...], **params: Any) -> CnnGruAttention:
    """Reference-004 CNN-GRU-attention net for ``input_shape == (T, F)`` (200 x 40 in the
    reference project).

    ``params`` are :class:`CnnGruAttentionConfig` keys (unknown keys raise ConfigError).
    """
    cfg = CnnGruAttentionConfig.from_params(params)
    cfg.check_net(input_shape)  # what the load-time check of a model folder refuses too
    return CnnGruAttention(n_classes, input_shape[1], cfg)
