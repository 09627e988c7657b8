"""Network layers shared by several architectures (PyTorch)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["AdditiveAttentionPool"]


class AdditiveAttentionPool(nn.Module):
    """Softmax-weighted mean over time with scores ``v^T tanh(W h_t + b)`` (additive, or
    "soft", attention pooling)."""

    def __init__(self, d_in: int, d_att: int) -> None:
        super().__init__()
        self.proj = nn.Linear(d_in, d_att)
        self.score = nn.Linear(d_att, 1, bias=False)

    def weights(self, h: torch.Tensor) -> torch.Tensor:
        """``h``: (B, T, D) -> attention weights (B, T), each row summing to 1."""
        e = self.score(torch.tanh(self.proj(h))).squeeze(2)  # (B, T)
        return torch.softmax(e, dim=1)  # (B, T)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """``h``: (B, T, D) -> (B, D)."""
        a = self.weights(h).unsqueeze(2)  # (B, T, 1)
        return (a * h).sum(dim=1)  # (B, D)
