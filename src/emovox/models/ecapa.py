"""A small ECAPA-TDNN (Desplanques et al., 2020) on log-mel frames, trained from scratch.

A 1-D (time-delay) network: the 64 mel bands are the input channels and every layer
convolves over time only, so the convolution path of each frame spans a bounded window
(3 (2 + 3 + 4) = 27 frames of 20 ms to each side, about 1.1 s in all, before pooling: three
Res2 groups of 3-tap convolutions in cascade per block); the squeeze-excitation gates add
one global per-channel context (a mean over all frames). The architecture of speaker
verification, where it learns from few speakers.

* input ``(T, 64)`` log-mel frames (10 ms hop); ``BatchNorm1d`` over the bands;
* ``Conv1d(64, C, 5, stride 2) -> ReLU -> BN`` (20 ms frames from here on);
* three SE-Res2 blocks (``C`` channels, dilations 2, 3, 4, Res2Net scale 4, a squeeze-
  excitation gate of width 32), each with a residual connection;
* multi-layer feature aggregation: the three blocks' outputs concatenated, ``Conv1d(3C, 3C, 1)
  -> ReLU -> BN``;
* attentive statistics pooling over time (:class:`emovox.models.crnn.AttentiveStatsPool`)
  -> ``(B, 6C)``, ``BN``, ``Linear(6C, 128)``, ``BN`` = the utterance embedding;
* ``Dropout -> Linear(128, n_classes)``.

About 0.30 M parameters with ``C = 96``; forward + backward of a 32 x 256 x 64 batch costs
about what the crnn's does.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from emovox.models.configs import EcapaConfig
from emovox.models.crnn import AttentiveStatsPool

__all__ = ["Ecapa", "EcapaConfig", "build_net"]


class _ConvBnRelu(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, dilation: int = 1,
                 stride: int = 1) -> None:
        pad = dilation * (kernel - 1) // 2
        super().__init__(nn.Conv1d(c_in, c_out, kernel, stride=stride, dilation=dilation,
                                   padding=pad),
                         nn.ReLU(), nn.BatchNorm1d(c_out))


class SERes2Block(nn.Module):
    """1x1 conv -> Res2Net dilated convs over channel groups -> 1x1 conv -> SE gate, plus
    the input (residual)."""

    def __init__(self, channels: int, dilation: int, scale: int, se_dim: int) -> None:
        super().__init__()
        if channels % scale:  # EcapaConfig.check_net refuses such a config first
            raise ValueError(f"channels ({channels}) must be divisible by scale ({scale})")
        width = channels // scale
        self.scale = scale
        self.pre = _ConvBnRelu(channels, channels, 1)
        self.convs = nn.ModuleList(
            _ConvBnRelu(width, width, 3, dilation) for _ in range(scale - 1))
        self.post = _ConvBnRelu(channels, channels, 1)
        self.se = nn.Sequential(nn.Linear(channels, se_dim), nn.ReLU(),
                                nn.Linear(se_dim, channels), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: (B, C, T) -> (B, C, T)."""
        parts = torch.chunk(self.pre(x), self.scale, dim=1)  # scale x (B, C / s, T)
        out, prev = [parts[0]], None
        for conv, part in zip(self.convs, parts[1:], strict=True):
            prev = conv(part if prev is None else part + prev)  # (B, C / s, T)
            out.append(prev)
        h = self.post(torch.cat(out, dim=1))  # (B, C, T)
        gate = self.se(h.mean(dim=2)).unsqueeze(2)  # (B, C, 1)
        return x + h * gate  # (B, C, T)


class Ecapa(nn.Module):
    """TDNN stem -> SE-Res2 blocks -> multi-layer aggregation -> attentive stats -> head."""

    def __init__(self, n_classes: int, n_mels: int, cfg: EcapaConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or EcapaConfig()
        c = cfg.channels
        self.input_norm = nn.BatchNorm1d(n_mels)
        self.stem = _ConvBnRelu(n_mels, c, 5, stride=cfg.stride)
        self.blocks = nn.ModuleList(
            SERes2Block(c, d, cfg.scale, cfg.se_dim) for d in cfg.dilations)
        c_mfa = c * len(cfg.dilations)
        self.mfa = _ConvBnRelu(c_mfa, c_mfa, 1)
        self.pool = AttentiveStatsPool(c_mfa, cfg.attention_dim)
        self.embed = nn.Sequential(nn.BatchNorm1d(2 * c_mfa), nn.Linear(2 * c_mfa, cfg.embedding),
                                   nn.BatchNorm1d(cfg.embedding))
        self.head = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(cfg.embedding, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: (B, T, M) log-mel frames -> (B, n_classes)."""
        h = self.stem(self.input_norm(x.transpose(1, 2)))  # (B, C, T / stride)
        outs = []
        for block in self.blocks:
            h = block(h)  # (B, C, T)
            outs.append(h)
        h = self.mfa(torch.cat(outs, dim=1))  # (B, 3 C, T)
        z = self.pool(h.transpose(1, 2))  # (B, 6 C): attentive mean ++ std
        return self.head(self.embed(z))  # (B, n_classes)


def build_net(n_classes: int, input_shape: tuple[int, ...], **params: Any) -> Ecapa:
    """A small ECAPA-TDNN for ``input_shape == (T, M)`` log-mel frames; ``params`` are
    :class:`EcapaConfig` keys (unknown keys raise ConfigError)."""
    cfg = EcapaConfig.from_params(params)
    cfg.check_net(input_shape)  # what the load-time check of a model folder refuses too
    return Ecapa(n_classes, input_shape[1], cfg)
