"""Serving: prediction for every front end (CLI, REST API, web app).

Owns the :class:`~emovox.serving.predictor.Predictor` (waveform -> prediction) with one
runner per backend (:mod:`emovox.serving.runners`: onnx, torch, sklearn), the service layer
(:mod:`emovox.serving.service`: settings, errors -> HTTP status and user wording, uploads,
timelines of uploads, the model card), batch prediction (:mod:`emovox.serving.batch`),
emotion timelines (:mod:`emovox.serving.timeline`), live input (:mod:`emovox.serving.live`:
raw PCM or microphone streams, a rolling emotion per hop; the microphone in
:mod:`emovox.serving.mic`, sounddevice imported only when it is opened), the answer and
its status/evidence (:mod:`emovox.serving.answer`), the
speech windows a recording is read in (:mod:`emovox.serving.speech`), the versioned JSON
documents (:mod:`emovox.serving.schema`, schemas in ``emovox/data/schema``) and speaker
adaptation of answers (:mod:`emovox.serving.adapt`: reference clips, speaker groups of a
batch, a recording adapting to itself; uploaded reference clips of the API and the web app:
:mod:`emovox.serving.adapt_uploads`; the maths in :mod:`emovox.adaptation`).

May import: artifact, preprocess, models (lazily, for the torch runner), features, audio,
calibration, affect, adaptation, labels, errors, fileio, corpora (file walking). Never
imports training, experiment, cli, api or web, and never imports torch or librosa itself (the
torch runner imports torch when constructed): both are import-linter contracts; a subprocess
test checks that predicting with the bundled ONNX model loads neither.
"""
