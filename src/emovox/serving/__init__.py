"""Serving: prediction for every front end (CLI, REST API, web app).

Owns the service layer (:mod:`emovox.serving.service`: settings, errors -> HTTP status and
user wording, uploads, timelines of uploads, the model card), batch prediction
(:mod:`emovox.serving.batch`) and emotion timelines (:mod:`emovox.serving.timeline`).
The Predictor itself lives in :mod:`emovox.inference` for now (moving to
``emovox.serving.predictor``).

May import: artifact, preprocess, models (lazily, for the torch runner), features, audio,
calibration, affect, labels, errors, corpora (file walking). Never imports training,
experiment, cli, api or web, and never imports torch or librosa at import time.
"""
