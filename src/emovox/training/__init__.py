"""Training: owns the PyTorch training loop (:mod:`emovox.training.trainer`,
:class:`~emovox.training.trainer.TorchClassifier`) and ONNX export.

May import models, preprocess, features, metrics, artifact, serving (and the layers below
them); never experiment, cli, api or web.
"""
