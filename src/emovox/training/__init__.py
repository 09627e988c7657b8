"""Training: owns the PyTorch training loop (:mod:`emovox.training.trainer`,
:class:`~emovox.training.trainer.TorchClassifier`), building a registry model with its trainer
(:func:`emovox.training.build.build_model`, re-exported here) and ONNX export
(:mod:`emovox.training.export`).

May import serving, artifact, models, preprocess, features, metrics, calibration and the
layers below them; never experiment, cli, api or web (checked by import-linter). Importing
this package does not import torch.
"""

from emovox.training.build import build_model, check_device

__all__ = ["build_model", "check_device"]
