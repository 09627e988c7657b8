"""Transitional alias of :mod:`emovox.serving.predictor` (removed at merge)."""
from emovox.artifact import BUNDLED_MODELS, default_model_path, resolve_model_path  # noqa: F401
from emovox.serving.predictor import BACKENDS, Prediction, Predictor  # noqa: F401
