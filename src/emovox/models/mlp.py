"""Reference project 003: a 512-256-128 MLP on 340 frame statistics.

Recipe of the reference project (re-implemented in PyTorch): the 340-dim vector of
mean/std/min/max over 85 frame-level features
(:func:`emovox.features.reference.reference003_frame_stats`), standardised by the trainer, through
three hidden layers ``Linear -> BatchNorm -> ReLU -> Dropout`` of 512, 256 and 128 units
with dropout 0.5, 0.5 and 0.4, then a linear head. Trained with Adam lr 1e-3, L2 1e-4
(``weight_decay``), up to 100 epochs, batch 32, early stopping with patience 15.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from emovox.models.configs import MlpConfig

__all__ = ["Mlp", "MlpConfig", "build_net"]


class Mlp(nn.Module):
    """Stack of ``Linear -> BN -> ReLU -> Dropout`` layers and a linear head."""

    def __init__(self, n_classes: int, n_features: int, cfg: MlpConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or MlpConfig()
        hidden, dropouts = cfg.hidden, cfg.dropouts
        layers: list[nn.Module] = []
        d = n_features
        for h, p in zip(hidden, dropouts, strict=True):
            layers += [nn.Linear(d, h), nn.BatchNorm1d(h), nn.ReLU(), nn.Dropout(p)]
            d = h
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(d, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: (B, D) feature vector -> (B, n_classes) logits."""
        h = self.body(x)  # (B, hidden[-1])
        return self.head(h)  # (B, n_classes)


def build_net(n_classes: int, input_shape: tuple[int, ...], **params: Any) -> Mlp:
    """Reference-003 MLP for ``input_shape == (D,)`` (340 with the reference features).

    ``params`` are :class:`MlpConfig` keys (unknown keys raise ConfigError).
    """
    cfg = MlpConfig.from_params(params)
    cfg.check_net(input_shape)  # what the load-time check of a model folder refuses too
    return Mlp(n_classes, input_shape[0], cfg)
