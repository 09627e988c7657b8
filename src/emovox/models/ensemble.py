"""An ensemble of trained networks as one network: the mean of their class probabilities.

Built from trained member artifacts by ``emovox ensemble`` (:func:`emovox.experiment.package.
ensemble_bundle`), saved as one artifact and exported as one ONNX graph, so an ensemble keeps
the fast single-model serving path. Every member reads the same network input (the same
:class:`~emovox.preprocess.Preprocess`); a member whose training standardisation differs from
the first member's gets the affine map between the two (``x_k = a_k x + b_k``, buffers of the
ensemble), so each member sees exactly the input it was trained on.

The output is ``log(mean_k softmax(logits_k))``: the serving path's softmax turns it back into
the averaged probabilities (late fusion with equal weights, as ``emovox fuse`` computes from
cross-validation runs).

Members are rebuilt from ``emovox.models.<name>`` modules only (the artifact reader's rule for
a network module, applied to each member).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

__all__ = ["Ensemble", "build_net"]

_PREFIX = "emovox.models."


class Ensemble(nn.Module):
    """Equal-weight probability average of member networks over one input."""

    def __init__(self, members: Sequence[nn.Module], n_mels: int) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        k = len(members)
        self.register_buffer("scale", torch.ones(k, n_mels))
        self.register_buffer("shift", torch.zeros(k, n_mels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: (B, T, M) -> (B, n_classes) log of the mean probability."""
        probs = [
            torch.softmax(net(x * self.scale[k] + self.shift[k]), dim=-1)  # (B, C)
            for k, net in enumerate(self.members)
        ]
        return torch.log(torch.stack(probs).mean(dim=0).clamp_min(1e-12))  # (B, C)


def build_net(n_classes: int, input_shape: tuple[int, ...],
              members: Sequence[dict[str, Any]] = (), **train_keys: Any) -> Ensemble:
    """An (untrained) ensemble of ``members`` (each ``{"module": "emovox.models.X",
    "params": {...}}``) for ``input_shape == (T, M)``; training keys are ignored."""
    del train_keys
    if len(members) < 2:
        raise ValueError("an ensemble needs at least two members")
    if len(input_shape) != 2:
        raise ValueError(f"ensemble expects input_shape (T, M), got {input_shape}")
    nets = []
    for m in members:
        module = str(m.get("module", ""))
        if not module.startswith(_PREFIX) or module == __name__:
            raise ValueError(f"refusing to build ensemble member from module {module!r}")
        nets.append(importlib.import_module(module).build_net(
            n_classes, tuple(input_shape), **dict(m.get("params", {}))))
    return Ensemble(nets, input_shape[1])
