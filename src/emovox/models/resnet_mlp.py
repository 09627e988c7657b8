"""Reference project 002: residual MLP on the SelectKBest-filtered 45-dim utterance summary.

Recipe of the reference project (re-implemented in PyTorch): the 45-dim summary
(:func:`emovox.features.reference.reference002_summary`) is standardised and reduced to the ``k``
best features by ``SelectKBest`` (ANOVA F; ``k = ResNetMlpConfig.select_k = 40``) -- the trainer
does that on the training fold, this module only sees ``input_shape == (k,)``. The net:

* an input projection ``Linear(k, 128) + BatchNorm + ReLU``;
* three residual dense blocks of widths 128, 64 and 32, each
  ``Linear + BN + ReLU + Dropout -> Linear + BN``, added to the shortcut (identity, or a
  ``Linear + BN`` projection when the width changes) and followed by ReLU;
* dropout and the head ``Linear(32, n_classes)``.

Trained with Adam lr 1e-3 and L2 regularisation 1e-3 (``weight_decay``), up to 100 epochs,
batch 32, early stopping with patience 15.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from emovox.models.configs import ResNetMlpConfig

__all__ = ["ResNetMlp", "ResNetMlpConfig", "ResidualBlock", "build_net"]


class ResidualBlock(nn.Module):
    """``ReLU(BN(Linear(Dropout(ReLU(BN(Linear(x)))))) + shortcut(x))``."""

    def __init__(self, d_in: int, d_out: int, dropout: float) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(d_in, d_out),
            nn.BatchNorm1d(d_out),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(d_out, d_out),
            nn.BatchNorm1d(d_out),
        )
        self.shortcut: nn.Module = (
            nn.Identity()
            if d_in == d_out
            else nn.Sequential(nn.Linear(d_in, d_out), nn.BatchNorm1d(d_out))
        )
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: (B, d_in) -> (B, d_out)."""
        return self.act(self.body(x) + self.shortcut(x))  # (B, d_out)


class ResNetMlp(nn.Module):
    """Input projection -> residual dense blocks -> dropout -> linear head."""

    def __init__(self, n_classes: int, n_features: int,
                 cfg: ResNetMlpConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or ResNetMlpConfig()
        widths, dropout = cfg.widths, cfg.dropout
        self.stem = nn.Sequential(
            nn.Linear(n_features, widths[0]), nn.BatchNorm1d(widths[0]), nn.ReLU()
        )
        blocks: list[nn.Module] = []
        d = widths[0]
        for w in widths:
            blocks.append(ResidualBlock(d, w, dropout))
            d = w
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(d, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: (B, k) selected features -> (B, n_classes) logits."""
        h = self.stem(x)  # (B, 128)
        h = self.blocks(h)  # (B, 32)
        return self.head(h)  # (B, n_classes)


def build_net(n_classes: int, input_shape: tuple[int, ...], **params: Any) -> ResNetMlp:
    """Reference-002 residual MLP for ``input_shape == (k,)``.

    ``params`` are :class:`ResNetMlpConfig` keys (unknown keys raise ConfigError);
    ``select_k`` is applied by the trainer, this net only sees the ``k`` kept columns.
    """
    cfg = ResNetMlpConfig.from_params(params)
    cfg.check_net(input_shape)  # what the load-time check of a model folder refuses too
    return ResNetMlp(n_classes, input_shape[0], cfg)
