"""Reference project 001: 1-D CNN over the 162-dim "mean of everything" vector.

Recipe of the reference project (a Keras model re-implemented in PyTorch): the 162-dim
vector (:func:`emovox.features.reference.reference001_vector`) is read as a 1-channel
sequence of length 162 and passed through

``Conv1D(256, 5) -> MaxPool(5, /2) -> Conv1D(256, 5) -> MaxPool -> Conv1D(128, 5) -> MaxPool
-> Dropout(0.2) -> Conv1D(64, 5) -> MaxPool -> Flatten -> Dense(32, ReLU) -> Dropout(0.3)
-> Dense(n_classes)``

with ReLU after each convolution, "same" padding everywhere (so each pool halves the length,
rounding up: 162 -> 81 -> 41 -> 21 -> 11) and no batch normalisation. Trained with Adam
lr 1e-3 and categorical cross-entropy for 50 epochs, batch 64, with ReduceLROnPlateau
(factor 0.4, patience 2) and no early stopping.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from emovox.models.configs import Conv1dConfig

__all__ = ["Conv1dConfig", "Conv1dNet", "build_net"]


class Conv1dNet(nn.Module):
    """The reference-001 stack of four Conv1D + MaxPool blocks and a small dense head."""

    def __init__(self, n_classes: int, length: int, cfg: Conv1dConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or Conv1dConfig()
        channels, kernel_size = cfg.channels, cfg.kernel_size
        layers: list[nn.Module] = []
        c_in = 1
        for i, c_out in enumerate(channels):
            if i == len(channels) - 1 and i > 0:
                layers.append(nn.Dropout(cfg.conv_dropout))  # before the last conv, as there
            layers += [
                nn.Conv1d(c_in, c_out, kernel_size, padding=kernel_size // 2),
                nn.ReLU(),
                nn.MaxPool1d(5, stride=2, padding=2),  # Keras pool 5 / stride 2 / "same"
            ]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        out_len = length
        for _ in channels:
            out_len = (out_len + 1) // 2
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c_in * out_len, cfg.dense),
            nn.ReLU(),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.dense, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: (B, D) feature vector -> (B, n_classes) logits."""
        h = x.unsqueeze(1)  # (B, 1, D)
        h = self.features(h)  # (B, C_last, ceil(D / 2^n_blocks))
        return self.head(h)  # (B, n_classes)


def build_net(n_classes: int, input_shape: tuple[int, ...], **params: Any) -> Conv1dNet:
    """Reference-001 Conv1D net for ``input_shape == (D,)`` (162 with the reference features).

    ``params`` are :class:`Conv1dConfig` keys (unknown keys raise ConfigError).
    """
    cfg = Conv1dConfig.from_params(params)
    cfg.check_net(input_shape)  # what the load-time check of a model folder refuses too
    return Conv1dNet(n_classes, input_shape[0], cfg)
