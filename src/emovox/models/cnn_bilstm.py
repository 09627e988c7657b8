"""Reference project 000: 1-D CNN over time + 2-layer BiLSTM on a 60-MFCC x 3 s sequence.

Recipe of the reference project (re-implemented in PyTorch):

* input: ``(T, 60)`` time-major MFCCs of the clip padded/cropped to 3 s
  (``T = 94`` at 16 kHz, hop 512; see :func:`emovox.features.reference.reference000_mfcc_sequence`);
* three Conv1D blocks over time (kernel 5, BatchNorm, ReLU, dropout, max-pool /2) with
  64-128-128 channels;
* two stacked bidirectional LSTM layers (hidden 64 per direction), pooled over time
  (mean by default, ``pooling="last"`` for the last step);
* a dense layer of 128 units (ReLU, dropout) and the class head;
* trained with focal loss (gamma 2), Adam lr 1e-3 reduced on plateau, early stopping with
  patience 10, up to 60 epochs, batch 32.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from emovox.models.configs import CnnBiLstmConfig, Pooling

__all__ = ["CnnBiLstm", "CnnBiLstmConfig", "Pooling", "build_net"]


class CnnBiLstm(nn.Module):
    """Conv1D blocks over time -> stacked BiLSTM -> temporal pooling -> dense head."""

    def __init__(self, n_classes: int, n_features: int,
                 cfg: CnnBiLstmConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or CnnBiLstmConfig()
        self.pooling = Pooling(cfg.pooling)
        dropout, kernel_size = cfg.dropout, cfg.kernel_size
        blocks: list[nn.Module] = []
        c_in = n_features
        for c_out in cfg.channels:
            blocks += [
                nn.Conv1d(c_in, c_out, kernel_size, padding=kernel_size // 2),
                nn.BatchNorm1d(c_out),
                nn.ReLU(),
                nn.Dropout(dropout),
                nn.MaxPool1d(2),
            ]
            c_in = c_out
        self.conv = nn.Sequential(*blocks)
        self.lstm = nn.LSTM(
            c_in,
            cfg.lstm_hidden,
            num_layers=cfg.lstm_layers,
            batch_first=True,
            bidirectional=True,
            dropout=dropout if cfg.lstm_layers > 1 else 0.0,
        )
        self.head = nn.Sequential(
            nn.Linear(2 * cfg.lstm_hidden, cfg.dense),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(cfg.dense, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: (B, T, F) MFCC sequence -> (B, n_classes) logits."""
        h = x.transpose(1, 2)  # (B, F, T)
        h = self.conv(h)  # (B, C, T / 2^n_blocks)
        h = h.transpose(1, 2)  # (B, T', C)
        h, _ = self.lstm(h)  # (B, T', 2H)
        h = h.mean(dim=1) if self.pooling is Pooling.MEAN else h[:, -1]  # (B, 2H)
        return self.head(h)  # (B, n_classes)


def build_net(n_classes: int, input_shape: tuple[int, ...], **params: Any) -> CnnBiLstm:
    """Reference-000 CNN-BiLSTM for ``input_shape == (T, F)``; T must be >= 2^len(channels).

    ``params`` are :class:`CnnBiLstmConfig` keys (unknown keys raise ConfigError).
    """
    cfg = CnnBiLstmConfig.from_params(params)
    cfg.check_net(input_shape)  # what the load-time check of a model folder refuses too
    return CnnBiLstm(n_classes, input_shape[1], cfg)
