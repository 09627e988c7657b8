"""Where models are: the bundled models by name, file names inside a model folder, and
the digests that identify a model (``model_id``)."""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path

import numpy as np

from emovox.artifact.meta import ArtifactMeta, json_default
from emovox.fileio import file_sha256

__all__ = [
    "BUNDLED_MODELS",
    "DEFAULT_MODEL_DIR",
    "MODEL_FILES",
    "MODEL_JSON",
    "ONNX_FILE",
    "SKOPS_FILE",
    "WEIGHTS_FILE",
    "default_model_path",
    "file_digest",
    "model_digest",
    "model_folder",
    "resolve_model_path",
    "weights_digest",
]

MODEL_JSON = "model.json"
WEIGHTS_FILE = "weights.safetensors"
ONNX_FILE = "model.onnx"
SKOPS_FILE = "model.skops"
#: every file a predictor may read besides model.json
MODEL_FILES: tuple[str, ...] = (WEIGHTS_FILE, ONNX_FILE, SKOPS_FILE)

#: the bundled default model, relative to the ``emovox`` package
DEFAULT_MODEL_DIR = "data/default_model"
#: Models shipped inside the package, by name: ``default`` (crnn: numpy front end + ONNX,
#: fast) and ``accurate`` (compare_lrcv: ComParE functionals + logistic regression; more
#: accurate on unseen speakers, ~20x slower per clip).
BUNDLED_MODELS: dict[str, str] = {
    "default": DEFAULT_MODEL_DIR,
    "accurate": "data/accurate_model",
}


def default_model_path() -> Path:
    """Folder of the bundled default model (it may not exist)."""
    return Path(str(resources.files("emovox"))) / DEFAULT_MODEL_DIR


def resolve_model_path(path: str | Path | None) -> Path:
    """``None`` or a bundled name -> the packaged folder; anything else is a path."""
    if path is None:
        return default_model_path()
    if str(path) in BUNDLED_MODELS and not Path(path).exists():
        return Path(str(resources.files("emovox"))) / BUNDLED_MODELS[str(path)]
    return Path(path)


def model_folder(path: str | Path) -> Path:
    """A bundled model name or a folder -> the absolute model folder.

    Raises:
        FileNotFoundError: the folder has no ``model.json``.
    """
    folder = resolve_model_path(path)
    if not (folder / MODEL_JSON).is_file():
        raise FileNotFoundError(f"{folder} is not a model folder (no model.json)")
    return folder.resolve()


def weights_digest(tensors: dict[str, np.ndarray]) -> str:
    """SHA-256 of the network weights and normalisation statistics (``net.*``, ``norm.*``),
    independent of what else the safetensors file holds (the front end, say). Recorded in
    the ONNX export so a ``model.onnx`` left over from other weights is detected."""
    h = hashlib.sha256()
    for k in sorted(tensors):
        if not k.startswith(("net.", "norm.")):
            continue
        a = np.ascontiguousarray(tensors[k])
        h.update(f"{k}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def file_digest(file: Path) -> str:
    """SHA-256 of a file's bytes."""
    return file_sha256(file)


def model_digest(folder: Path, meta: ArtifactMeta) -> str:
    """SHA-256 over everything a predictor uses: the prediction-relevant part of
    ``model.json`` (kind, labels, preprocessing, network, calibration) and the bytes of
    every model file present (weights, ``model.onnx``, ``model.skops``)."""
    h = hashlib.sha256()
    doc = json.dumps(meta.prediction_fields(), sort_keys=True, default=json_default)
    h.update(b"model.json|" + doc.encode())
    for name in MODEL_FILES:
        f = Path(folder) / name
        if f.is_file():
            h.update(f"|{name}|{file_digest(f)}".encode())
    return h.hexdigest()
