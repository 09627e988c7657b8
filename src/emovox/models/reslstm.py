"""A residual BiLSTM with soft attention pooling on MFCC + chroma frames, trained from scratch.

After the "ResLSTM with soft attention" of the speech-emotion literature (MFCC and chroma
frames, stacked LSTM layers with residual connections, an attention-weighted sum over time);
sizes here are ours, chosen small for CPU training, not tuned on any test speaker.

* input ``(T, 72)``: 20 MFCC + Δ + ΔΔ and 12 chroma per 10 ms frame, each column normalised
  over the utterance (:func:`emovox.features.mfcc_chroma.mfcc_chroma` with ``utt_norm=cmvn``,
  gain-invariant by construction) and then by the training folds' mean/std;
* ``Conv1d(F, 2H, kernel = stride = stack)``: a linear projection of ``stack`` consecutive
  frames concatenated (20 ms steps with ``stack=2``: half the sequential LSTM work), then
  ``LayerNorm -> Dropout``;
* ``blocks`` residual BiLSTM blocks: ``h + Dropout(BiLSTM(LayerNorm(h)))`` (``H`` units per
  direction, so the output is as wide as the residual stream, ``2H``);
* ``LayerNorm``, soft attention pooling over time
  (:class:`~emovox.models.layers.AdditiveAttentionPool`:
  ``a = softmax_t(v^T tanh(W h_t + b))``, ``c = sum_t a_t h_t``) -> ``(B, 2H)``;
* ``Dropout -> Linear(2H, n_classes)``.

About 0.85 M parameters with ``H = 128`` and two blocks (848,264 on 72 features); a forward
+ backward pass of a 32 x 256 x 72 batch costs about what the CRNN's does on one CPU thread.
Any ``T >= stack`` works (the ONNX export keeps the time axis dynamic).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from emovox.models.configs import ResLstmConfig
from emovox.models.layers import AdditiveAttentionPool

__all__ = ["ResLstm", "ResLstmConfig", "build_net"]


class ResLstmBlock(nn.Module):
    """Pre-norm residual BiLSTM: ``h + Dropout(BiLSTM(LayerNorm(h)))``."""

    def __init__(self, hidden: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(2 * hidden)
        self.lstm = nn.LSTM(2 * hidden, hidden, batch_first=True, bidirectional=True)
        self.drop = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """``h``: (B, T, 2H) -> (B, T, 2H)."""
        out, _ = self.lstm(self.norm(h))  # (B, T, 2H)
        return h + self.drop(out)  # (B, T, 2H)


class ResLstm(nn.Module):
    """Frame-stacking projection -> residual BiLSTM blocks -> soft attention -> linear head."""

    def __init__(self, n_classes: int, n_features: int, cfg: ResLstmConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or ResLstmConfig()
        d = 2 * cfg.hidden
        self.proj = nn.Conv1d(n_features, d, kernel_size=cfg.stack, stride=cfg.stack)
        self.proj_out = nn.Sequential(nn.LayerNorm(d), nn.Dropout(cfg.dropout))
        self.blocks = nn.ModuleList(ResLstmBlock(cfg.hidden, cfg.dropout)
                                    for _ in range(cfg.blocks))
        self.norm = nn.LayerNorm(d)
        self.pool = AdditiveAttentionPool(d, cfg.attention_dim)
        self.head = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(d, n_classes))

    def frames(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: (B, T, F) -> the sequence the attention pools, (B, T / stack, 2H)."""
        h = self.proj(x.transpose(1, 2)).transpose(1, 2)  # (B, T / stack, 2H)
        h = self.proj_out(h)  # (B, T', 2H)
        for block in self.blocks:
            h = block(h)  # (B, T', 2H)
        return self.norm(h)  # (B, T', 2H)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: (B, T, F) MFCC + chroma frames -> (B, n_classes) logits."""
        z = self.pool(self.frames(x))  # (B, 2H)
        return self.head(z)  # (B, n_classes)


def build_net(n_classes: int, input_shape: tuple[int, ...], **params: Any) -> ResLstm:
    """The ResLSTM for ``input_shape == (T, F)`` frames; ``params`` are
    :class:`ResLstmConfig` keys (unknown keys raise ConfigError)."""
    cfg = ResLstmConfig.from_params(params)
    cfg.check_net(input_shape)  # what the load-time check of a model folder refuses too
    return ResLstm(n_classes, input_shape[1], cfg)
