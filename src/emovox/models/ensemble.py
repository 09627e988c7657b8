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

Members trained on different per-utterance normalisations of the same log-mel (e.g. per-band
CMVN and gain-only, :func:`emovox.features.uttnorm.utt_norm_modes`) read different column
blocks of one input: the ensemble's ``Preprocess`` computes every normalisation the members
need, side by side (``utt_norm="cmvn+gain"``: ``(T, 2 n_mels)``), and ``inputs[k]`` says which
block member ``k`` reads; each block's standardisation is the first reader's, the affine map
above bridges the others.

A linear model on utterance functionals (``prosody_logreg``: standardisation + multinomial
logistic regression) can join as one more member (``functional``): the ensemble's
``Preprocess`` appends the functional vector of the whole wave to every frame
(:attr:`emovox.preprocess.Preprocess.functional`), and :class:`FunctionalMember` reads it from
the first frame, after the log-mel blocks. It counts as one member in the equal-weight mean.

That member may have a narrow-band alternative (``functional={"dim": D, "narrow": [...]}``):
a second linear model on some of the functional's columns (``prosody_robust_logreg`` reads
the 41 of ``prosody``'s 47 that a telephone line moves least). The ``Preprocess`` then appends
one more column, 1.0 for a full-band wave and 0.0 for a narrow-band one
(:attr:`emovox.preprocess.Preprocess.band_floor_db`), and the functional member's
probabilities are the full-band model's or the narrow-band model's accordingly: still one
member of the mean.

Members are rebuilt from ``emovox.models.<name>`` modules only (the artifact reader's rule for
a network module, applied to each member).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from emovox.models.netcheck import ensemble_layout

__all__ = ["Ensemble", "FunctionalMember", "build_net"]



class FunctionalMember(nn.Module):
    """``softmax(W (v - mean) / std + b)``: a fitted standardiser and multinomial logistic
    regression on a functional vector ``v`` ``(B, D)``, as a module (weights from the
    scikit-learn pipeline: :func:`emovox.experiment.functional.functional_state`)."""

    def __init__(self, dim: int, n_classes: int) -> None:
        super().__init__()
        self.dim = int(dim)
        self.register_buffer("mean", torch.zeros(self.dim))
        self.register_buffer("std", torch.ones(self.dim))
        self.linear = nn.Linear(self.dim, n_classes)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        """``v``: (B, D) -> (B, C) logits."""
        return self.linear((v - self.mean) / self.std)


class Ensemble(nn.Module):
    """Equal-weight probability average of member networks over one input.

    Args:
        members: the member networks, each reading ``(B, T, n_mels)``.
        n_mels: columns of one block of the input.
        inputs: the block each member reads (``None``: all block 0, a one-block input).
        functional: a linear member on the functional columns that follow the blocks.
        narrow: its narrow-band alternative, reading ``narrow_columns`` of those columns;
            the column after them says which of the two answers (1 full band, 0 narrow).
    """

    def __init__(self, members: Sequence[nn.Module], n_mels: int,
                 inputs: Sequence[int] | None = None,
                 functional: FunctionalMember | None = None,
                 narrow: FunctionalMember | None = None,
                 narrow_columns: Sequence[int] = ()) -> None:
        super().__init__()
        if narrow is not None and (functional is None or len(narrow_columns) != narrow.dim):
            raise ValueError("a narrow-band member needs a functional member and one column "
                             "of it per input")
        self.functional = functional
        self.narrow = narrow
        # no buffer without a narrow member: earlier ensembles' weights keep their keys
        self.register_buffer("narrow_columns", torch.as_tensor(list(narrow_columns),
                                                               dtype=torch.long)
                             if narrow is not None else None)
        self.members = nn.ModuleList(members)
        k = len(members)
        self.inputs = tuple(int(i) for i in (inputs or [0] * k))
        if len(self.inputs) != k or min(self.inputs) < 0:
            raise ValueError(f"inputs must give one block (>= 0) per member, got {inputs}")
        self.n_mels = int(n_mels)
        self.register_buffer("scale", torch.ones(k, n_mels))
        self.register_buffer("shift", torch.zeros(k, n_mels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: (B, T, n_blocks * M [+ D [+ 1]]) -> (B, n_classes) log of the mean
        probability."""
        m = self.n_mels
        probs = [
            torch.softmax(net(x[..., b * m : (b + 1) * m] * self.scale[k]  # (B, T, M)
                              + self.shift[k]), dim=-1)  # (B, C)
            for k, (net, b) in enumerate(zip(self.members, self.inputs, strict=True))
        ]
        if self.functional is not None:
            start = (max(self.inputs) + 1) * m
            dim = self.functional.dim
            v = x[:, 0, start : start + dim]  # (B, D): the same on every frame
            p = torch.softmax(self.functional(v), dim=-1)  # (B, C)
            if self.narrow is not None:
                full = x[:, 0, start + dim : start + dim + 1]  # (B, 1): 1 full band, 0 narrow
                q = torch.softmax(self.narrow(v[:, self.narrow_columns]), dim=-1)  # (B, C)
                p = full * p + (1.0 - full) * q
            probs.append(p)
        return torch.log(torch.stack(probs).mean(dim=0).clamp_min(1e-12))  # (B, C)


def build_net(n_classes: int, input_shape: tuple[int, ...],
              members: Sequence[dict[str, Any]] = (), inputs: Sequence[int] | None = None,
              functional: dict[str, Any] | None = None, **train_keys: Any) -> Ensemble:
    """An (untrained) ensemble of ``members`` (each ``{"module": "emovox.models.X",
    "params": {...}}``) for ``input_shape == (T, n_blocks * M [+ D])``, member ``k`` reading
    block ``inputs[k]`` (default: every member block 0 of a one-block input), plus a
    :class:`FunctionalMember` on the last ``D`` columns when ``functional == {"dim": D}``
    (with ``"narrow": [columns]``: and its narrow-band alternative on those of the ``D``
    columns, the input then ending with the band column); training keys are ignored."""
    del train_keys
    layout = ensemble_layout(input_shape, members, inputs, functional)  # the load-time check
    nets = [importlib.import_module(str(m["module"])).build_net(
        n_classes, (input_shape[0], layout.width), **dict(m.get("params", {})))
        for m in members]
    return Ensemble(nets, layout.width, list(layout.blocks),
                    FunctionalMember(layout.dim, n_classes) if layout.dim else None,
                    FunctionalMember(len(layout.narrow), n_classes) if layout.narrow else None,
                    list(layout.narrow))
