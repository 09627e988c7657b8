"""Building artifacts from trained models: :func:`save_model` (a trained model's exposed state
-> :func:`~emovox.artifact.io.write_artifact`) and :func:`attach_inference` (store the NumPy
front end and the calibration in an existing folder).

The format does not import the trainers: a network model exposes ``state()`` (tensors +
config, see :func:`save_model`), a scikit-learn model its ``pipeline``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from emovox import __version__
from emovox.artifact.io import read_artifact, read_meta, update_artifact, write_artifact
from emovox.artifact.meta import ArtifactError, ArtifactMeta, Calibration, ModelKind, NetworkState
from emovox.labels import LABELS
from emovox.preprocess import Preprocess

__all__ = ["attach_inference", "preprocess_for_input", "preprocess_for_model", "save_model"]

_EXTRA_KEYS = {"name", "trained_on", "n_params", "cross_validation"}


def preprocess_for_input(inp: Any) -> Preprocess:
    """The :class:`Preprocess` of one model input (:class:`emovox.models.base.Input`:
    feature, params, trim); the rest (rate, ``top_db``) are the Preprocess defaults."""
    return Preprocess(feature=inp.feature, feature_params=dict(inp.params), trim=bool(inp.trim))


def preprocess_for_model(name: str | None) -> Preprocess:
    """The :class:`Preprocess` of the registered single-input model ``name``;
    ``feature=None`` for an unknown name."""
    from emovox.models import MODELS

    spec = MODELS.get(name or "")
    if spec is None or len(spec.inputs) != 1:
        return Preprocess(feature=None)
    return preprocess_for_input(spec.inputs[0])


def save_model(
    model: Any, out: str | Path, config: dict[str, Any], *, metrics: dict | None = None,
    force: bool = False, extra: dict[str, Any] | None = None,
    preprocess: Preprocess | None = None,
) -> Path:
    """Write the trained ``model`` to the new folder ``out``.

    ``model`` is either a network trainer exposing ``state() -> dict`` with ``tensors``
    (``net.*`` NumPy arrays), ``module``, ``params``, ``input_shape``, ``train``,
    ``history``, ``n_frames`` and ``normaliser`` (a :class:`~emovox.preprocess.Normaliser`),
    or a scikit-learn model exposing ``pipeline``. ``config`` is the experiment config dict
    (``config["model"]["name"]`` names the model); ``extra`` may set ``name``,
    ``trained_on``, ``n_params`` and ``cross_validation``. ``preprocess`` defaults to the
    registry entry's feature (:func:`preprocess_for_model`).
    """
    extra = dict(extra or {})
    unknown = set(extra) - _EXTRA_KEYS
    if unknown:
        raise ValueError(f"unknown artifact field(s) {sorted(unknown)}")
    model_cfg = config.get("model") if isinstance(config.get("model"), dict) else {}
    name = extra.get("name") or model_cfg.get("name") or "model"
    pre = preprocess or preprocess_for_model(model_cfg.get("name") or extra.get("name"))
    common: dict[str, Any] = {
        "labels": tuple(LABELS), "name": name, "params": dict(model_cfg.get("params") or {}),
        "trained_on": extra.get("trained_on"), "n_params": extra.get("n_params"),
        "metrics": dict(metrics or extra.get("cross_validation") or {}),
        "experiment_config": dict(config), "package_version": __version__,
    }
    state = getattr(model, "state", None)
    if callable(state):
        st = state()
        pre = pre.replace(n_frames=int(st["n_frames"]), norm=st["normaliser"])
        network = NetworkState(st["module"], dict(st["params"]),
                               tuple(int(s) for s in st["input_shape"]), dict(st["train"]),
                               dict(st["history"]))
        meta = ArtifactMeta(kind=ModelKind.TORCH, preprocess=pre, network=network, **common)
        return write_artifact(out, meta, tensors=st["tensors"], force=force)
    if hasattr(model, "pipeline"):
        meta = ArtifactMeta(kind=ModelKind.SKLEARN, preprocess=pre, **common)
        return write_artifact(out, meta, pipeline=model.pipeline, force=force)
    raise TypeError(f"cannot save a {type(model).__name__}")


def attach_inference(
    path: str | Path, *, temperature: float | None = None,
    calibration: dict[str, Any] | None = None, preprocess: Preprocess | None = None,
) -> ArtifactMeta:
    """Complete an existing folder for serving, in place (both files rewritten atomically):

    * ``preprocess`` replaces the stored one's feature settings (normaliser kept);
    * a network reading ``logmel`` gets its NumPy front end (filterbank + window arrays in
      ``weights.safetensors``, parameters in ``model.json``), built with librosa;
    * ``temperature`` (when given) and the calibration ``report``.
    """
    path = Path(path)
    if temperature is not None and not (temperature > 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature must be a positive number, got {temperature}")
    meta = read_meta(path)
    cal = meta.calibration
    if temperature is not None or calibration is not None:
        cal = Calibration(cal.temperature if temperature is None else float(temperature),
                          dict(calibration) if calibration is not None else cal.report)
    if meta.kind is ModelKind.SKLEARN:
        if preprocess is not None:
            meta = meta.replace(preprocess=preprocess.replace(norm=None))
        return _updated(path, meta.replace(calibration=cal))
    art = read_artifact(path)
    pre = art.meta.preprocess
    if preprocess is not None:
        pre = preprocess.replace(norm=pre.norm, n_frames=pre.n_frames, frontend=None)
    if pre.feature is None:
        raise ArtifactError(f"{path / 'model.json'}: field preprocess.feature is missing and "
                            "the model is not registered; pass the preprocessing")
    if pre.feature == "logmel":
        try:
            pre = pre.with_logmel_frontend()
        except ValueError as e:
            raise ArtifactError(f"{path}: {e}") from None
    new = art.meta.replace(preprocess=pre, calibration=cal)
    update_artifact(path, new, tensors=art.tensors)
    return new


def _updated(path: Path, meta: ArtifactMeta) -> ArtifactMeta:
    update_artifact(path, meta)
    return meta
