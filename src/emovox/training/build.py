"""Build an untrained model of the registry (:data:`emovox.models.MODELS`) for training.

The registry describes models and validates their parameters; a neural model also needs the
trainer that fits it (:class:`~emovox.training.trainer.TorchClassifier`), which lives here, one
layer above the registry. PyTorch is imported only when a neural model is built.
"""

from __future__ import annotations

from typing import Any

from emovox.models import Family, Model, ModelSpec
from emovox.models.params import Device


def build_model(spec: ModelSpec, *, n_classes: int, seed: int = 0, **params: Any) -> Model:
    """An untrained ``spec`` model for ``n_classes`` classes (``params``: ``-p`` keys, plus
    ``on_epoch`` for neural models); neural models are wrapped in a TorchClassifier."""
    if spec.family is Family.NEURAL:
        from emovox.training.trainer import TorchClassifier

        return spec.build(n_classes=n_classes, seed=seed, trainer=TorchClassifier, **params)
    return spec.build(n_classes=n_classes, seed=seed, **params)


def check_device(params: dict[str, Any]) -> None:
    """ConfigError now, before any feature is extracted, when validated ``-p`` params ask
    for a device this PyTorch cannot reach (:func:`emovox.training.trainer.torch_device`)."""
    if params.get("device") is Device.CUDA:
        from emovox.training.trainer import torch_device

        torch_device(Device.CUDA)
