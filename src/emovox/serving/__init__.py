"""Serving trained models: the :class:`~emovox.serving.predictor.Predictor` (waveform ->
prediction) and one runner per backend (:mod:`emovox.serving.runners`: onnx, torch, sklearn).

Importing any module here imports neither torch nor librosa (the torch runner imports torch
when constructed). May import: emovox.artifact, emovox.preprocess, emovox.audio,
emovox.calibration, emovox.affect, emovox.labels, emovox.errors. Never training or
experiment.
"""
