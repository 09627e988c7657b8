"""Prediction with a trained model: one :class:`Predictor` for the CLI, the REST API and the
web app.

::

    from emovox.inference import Predictor
    pred = Predictor.from_artifact("runs/crnn/model")      # or None: the bundled model
    pred.predict_file("clip.wav").to_dict()
    # {"label": "angry", "confidence": 0.71, "probabilities": {...}, "arousal": 0.52, ...}

What a prediction does, exactly as in training (:func:`emovox.audio.load_audio` with the
model's ``trim``/``top_db`` and the feature of its :class:`~emovox.models.ModelSpec`):

1. mono, resampled to 16 kHz with soxr (:func:`emovox.audio.resample`);
2. leading/trailing silence trimmed (``top_db`` 40) unless the whole signal is silent;
3. log-mel ``(T, 64)`` by :class:`emovox.frontend.LogMelFrontEnd` (NumPy; its filterbank is
   stored in the artifact), centre-cropped or zero-padded at the end to ``n_frames``;
4. standardised with the training mean/std stored in the artifact (NumPy);
5. the network: ONNX Runtime (``model.onnx``, written by ``emovox export`` /
   :func:`emovox.export.export_onnx`) or PyTorch (same probabilities within 1e-4);
6. ``softmax(logits / T)`` with the temperature ``T`` fitted on the cross-validation's
   out-of-fold predictions (:mod:`emovox.calibration`) and stored in the artifact
   (``T = 1`` when the artifact has none).

Importing this module imports neither torch nor librosa: the ONNX backend needs NumPy,
soundfile, soxr and onnxruntime only. PyTorch is imported by the ``"torch"`` backend, librosa
only when an artifact lacks its stored front end (a warning says so).

``arousal`` and ``valence`` of a :class:`Prediction` are *derived* from the class
probabilities with the fixed mapping of :mod:`emovox.affect`; the model does not predict them.

Silent input (the loudest 64 ms frame below -60 dBFS) is not an error: the prediction is
still computed (on the untrimmed signal, it is meaningless) and flagged ``silent=True`` so
callers can show "silence" instead of a label.

A :class:`Predictor` is safe to share between threads: ONNX Runtime sessions support
concurrent ``run`` calls, and the PyTorch backend serialises calls with a lock.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from emovox.affect import DERIVED_NOTE, prototype_matrix
from emovox.artifact import ArtifactError, json_default, read_meta
from emovox.audio import (
    TARGET_SR,
    AudioSource,
    is_silent,
    load_audio,
    resample,
    to_mono,
    trim_silence,
)
from emovox.calibration import softmax
from emovox.errors import EmptyAudio, InvalidSamples
from emovox.frontend import LogMelFrontEnd, pad_or_crop
from emovox.labels import LABELS

log = logging.getLogger(__name__)

__all__ = [
    "BACKENDS",
    "DEFAULT_MODEL_DIR",
    "Prediction",
    "Predictor",
    "attach_inference_metadata",
    "default_model_path",
    "pad_or_crop",
    "read_weights",
    "weights_digest",
    "write_json_atomic",
]

BACKENDS = ("auto", "onnx", "torch")
#: the bundled model, relative to the ``emovox`` package
DEFAULT_MODEL_DIR = "data/default_model"
WEIGHTS_FILE = "weights.safetensors"
ONNX_FILE = "model.onnx"
_MAX_BATCH = 64  # items per network call in predict_batch / predict_proba_features


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prediction:
    """The model's answer for one clip.

    Attributes:
        label: the most probable emotion.
        confidence: its (calibrated) probability.
        probabilities: calibrated probability of every label, in the model's label order.
        arousal, valence: **derived** from ``probabilities`` (probability-weighted circumplex
            prototypes, :mod:`emovox.affect`), each in [-1, 1]; not predicted by the model.
        duration: length of the input in seconds (at 16 kHz, before silence trimming).
        silent: the input is silent; the label is then meaningless (show "silence").
        source: file name, ``"<bytes>"`` or ``"<array>"``.
    """

    label: str
    confidence: float
    probabilities: dict[str, float]
    arousal: float
    valence: float
    duration: float
    silent: bool
    source: str

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types; ``derived`` names the fields that are not model outputs."""
        return {
            "label": self.label,
            "confidence": self.confidence,
            "probabilities": dict(self.probabilities),
            "arousal": self.arousal,
            "valence": self.valence,
            "derived": ["arousal", "valence"],
            "derived_note": DERIVED_NOTE,
            "duration": self.duration,
            "silent": self.silent,
            "source": self.source,
        }


# --------------------------------------------------------------------------------------------
# Small helpers (NumPy only)
# --------------------------------------------------------------------------------------------


def weights_digest(tensors: dict[str, np.ndarray]) -> str:
    """SHA-256 of the network weights and normalisation statistics (``net.*``, ``norm.*``),
    independent of what else the safetensors file holds (the front end, say)."""
    h = hashlib.sha256()
    for k in sorted(tensors):
        if not k.startswith(("net.", "norm.")):
            continue
        a = np.ascontiguousarray(tensors[k])
        h.update(f"{k}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def default_model_path() -> Path:
    """Folder of the bundled default model (it may not exist)."""
    return Path(str(resources.files("emovox"))) / DEFAULT_MODEL_DIR


#: Models shipped inside the package, by name: ``default`` (crnn: numpy front end + ONNX,
#: fast) and ``accurate`` (compare_lrcv: ComParE functionals + logistic regression; more
#: accurate on unseen speakers, ~20x slower per clip).
BUNDLED_MODELS: dict[str, str] = {
    "default": "data/default_model",
    "accurate": "data/accurate_model",
}


def resolve_model_path(path: str | Path | None) -> Path:
    """``None`` or a bundled name -> the packaged folder; anything else is a path."""
    if path is None:
        return default_model_path()
    if str(path) in BUNDLED_MODELS and not Path(path).exists():
        return Path(str(resources.files("emovox"))) / BUNDLED_MODELS[str(path)]
    return Path(path)


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON to a temporary sibling, then rename it over ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        tmp.write_text(json.dumps(obj, indent=2, default=json_default))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_weights(path: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    f = path / WEIGHTS_FILE
    if not f.is_file():
        raise ArtifactError(f"{path}: {WEIGHTS_FILE} is missing")
    return load_file(str(f))


def _feature_info(meta: dict[str, Any], path: Path) -> dict[str, Any]:
    """``{"feature", "feature_params", "sr", "trim", "top_db", "n_frames"}`` of an artifact:
    stored by :func:`attach_inference_metadata`, else looked up in the model registry by the
    artifact's ``config.model.name`` (imports torch)."""
    info = meta.get("inference")
    if info:
        return dict(info)
    name = (meta.get("config") or {}).get("model", {}).get("name")
    if not name:
        raise ArtifactError(
            f"{path}: model.json says neither which feature the model reads ('inference') nor "
            "which registered model it is (config.model.name)"
        )
    from emovox.models import get_model_spec

    try:
        spec = get_model_spec(name)
    except ValueError as exc:
        raise ArtifactError(f"{path}: {exc}") from None
    if spec.extra_inputs:
        raise ArtifactError(f"{path}: multi-input model {name!r} is not supported for inference")
    return {
        "feature": spec.feature,
        "feature_params": dict(spec.feature_params),
        "sr": TARGET_SR,
        "trim": bool(spec.trim),
        "top_db": 40.0,
        "n_frames": int((meta.get("train") or {}).get("n_frames", 0) or 0),
    }


def _logmel_params(feature_params: dict[str, Any]) -> dict[str, Any]:
    """Registered ``logmel`` defaults merged with the artifact's overrides (imports librosa)."""
    from emovox.features import FEATURES

    defaults = dict(FEATURES["logmel"].params)
    unknown = set(feature_params) - set(defaults)
    if unknown:
        raise ArtifactError(f"unknown logmel parameter(s) {sorted(unknown)}")
    return {**defaults, **feature_params}


# --------------------------------------------------------------------------------------------
# Writing inference metadata into an artifact
# --------------------------------------------------------------------------------------------


def attach_inference_metadata(
    artifact_dir: str | Path,
    *,
    temperature: float | None,
    calibration: dict[str, Any] | None,
    feature: str | None = None,
    feature_params: dict[str, Any] | None = None,
    trim: bool | None = None,
    top_db: float = 40.0,
) -> Path:
    """Add what inference needs to an existing torch artifact, in place.

    * ``model.json["inference"]``: feature name and parameters, sample rate, trimming,
      ``n_frames`` -- by default from the registry entry named by ``config.model.name``
      (``feature``, ``feature_params`` and ``trim`` override it);
    * for log-mel models the front end: arrays ``frontend.mel_basis`` / ``frontend.window``
      in ``weights.safetensors`` and the parameters in ``model.json["frontend"]``;
    * ``model.json["temperature"]`` (when ``temperature`` is given; else left as it is) and
      ``model.json["calibration"]`` (e.g. :func:`emovox.calibration.calibration_report`).

    Both files are rewritten atomically (temporary sibling + rename; the weights first).
    Needs librosa (for the filterbank) and, without ``feature``, the model registry.
    """
    path = Path(artifact_dir)
    meta = read_meta(path)
    if meta.get("kind") != "torch":
        raise ArtifactError(f"{path}: inference metadata is for neural (torch) artifacts only")
    if temperature is not None and not (temperature > 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature must be a positive number, got {temperature}")
    info = meta.get("inference") or ({} if feature is not None else _feature_info(meta, path))
    if feature is not None:
        info["feature"] = feature
    if feature_params is not None:
        info["feature_params"] = dict(feature_params)
    if trim is not None:
        info["trim"] = bool(trim)
    info.setdefault("feature_params", {})
    info.setdefault("sr", TARGET_SR)
    info.setdefault("trim", False)
    info["top_db"] = float(info.get("top_db", top_db))
    info["n_frames"] = int((meta.get("train") or {}).get("n_frames", 0) or 0)

    if info["feature"] == "logmel":
        fe = LogMelFrontEnd.from_params(int(info["sr"]), **_logmel_params(info["feature_params"]))
        from safetensors import safe_open
        from safetensors.numpy import save_file

        wf = path / WEIGHTS_FILE
        with safe_open(str(wf), framework="numpy") as f:
            st_meta = f.metadata()
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        tensors.update(fe.arrays())
        tmp = wf.with_name(f".{wf.name}.{os.getpid()}.tmp")
        try:
            save_file(tensors, str(tmp), metadata=st_meta)
            os.replace(tmp, wf)
        finally:
            tmp.unlink(missing_ok=True)
        meta["frontend"] = fe.params()
    meta["inference"] = info
    if temperature is not None:
        meta["temperature"] = float(temperature)
    if calibration is not None:
        meta["calibration"] = dict(calibration)
    write_json_atomic(path / "model.json", meta)
    return path


# --------------------------------------------------------------------------------------------
# The predictor
# --------------------------------------------------------------------------------------------

Runner = Callable[[np.ndarray], np.ndarray]  # normalised (B, T, D) float32 -> logits (B, C)


@dataclass(eq=False)
class Predictor:
    """A loaded model ready to predict; build it with :meth:`from_artifact`.

    Attributes:
        labels: output label order.
        meta: the artifact's ``model.json``.
        temperature: calibration temperature applied to the logits (1.0 = none stored).
        model_id: ``"<model name>-<first 12 hex of the weights' SHA-256>"``.
        backend: ``"onnx"`` or ``"torch"``.
        path: the artifact folder.
        sr: sample rate the model reads (16 kHz).
        n_frames: frames every clip is padded/cropped to (0 = unchanged).
    """

    labels: tuple[str, ...]
    meta: dict[str, Any]
    temperature: float
    model_id: str
    backend: str
    path: Path
    sr: int
    n_frames: int
    trim: bool
    top_db: float
    features: Callable[[np.ndarray], np.ndarray] = field(repr=False)
    mean: np.ndarray = field(repr=False)
    std: np.ndarray = field(repr=False)
    keep: np.ndarray | None = field(repr=False)
    run_net: Runner = field(repr=False)
    _protos: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._protos = prototype_matrix(self.labels)

    # -- loading ------------------------------------------------------------------------
    @classmethod
    def from_artifact(
        cls, path: str | Path | None = None, *, backend: str = "auto", threads: int | None = None
    ) -> Predictor:
        """Load the artifact folder ``path`` (``None``: the bundled default model).

        Args:
            path: folder with ``model.json`` (+ ``weights.safetensors``, ``model.onnx``).
            backend: ``"onnx"`` (needs ``model.onnx``), ``"torch"``, or ``"auto"`` (ONNX when
                ``model.onnx`` exists, else PyTorch).
            threads: intra-op threads of ONNX Runtime / PyTorch (``None``: library default;
                note ``torch.set_num_threads`` is process-wide).

        Raises:
            ArtifactError: missing or unusable artifact, or ``model.onnx`` missing/stale
                for ``backend="onnx"``.
        """
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if path is None or str(path) in BUNDLED_MODELS:
            path = resolve_model_path(path)
            if not (path / "model.json").is_file():
                raise ArtifactError(
                    "no bundled default model is installed with this version of emovox "
                    f"(expected {path}); pass the folder of a trained model instead (an "
                    "artifact saved by 'emovox evaluate --save-models' or save_model)"
                )
        path = Path(path)
        if not path.exists():
            raise ArtifactError(f"model folder {path} does not exist")
        meta = read_meta(path)
        if meta.get("kind") == "sklearn":
            return cls._from_sklearn(path, meta)
        if meta.get("kind") != "torch":
            raise ArtifactError(f"{path}: unknown model kind {meta.get('kind')!r}")
        labels = tuple(meta.get("labels") or ())
        unknown = set(labels) - set(LABELS)
        if not labels or unknown:
            raise ArtifactError(f"{path}: bad label list {list(labels)}")
        tensors = read_weights(path)
        digest = weights_digest(tensors)
        name = (meta.get("config") or {}).get("model", {}).get("name") or "model"
        model_id = f"{name}-{digest[:12]}"
        temperature = float(meta.get("temperature", 1.0))
        if not (temperature > 0 and math.isfinite(temperature)):
            raise ArtifactError(f"{path}: invalid temperature {temperature}")

        info = _feature_info(meta, path)
        features = _build_features(meta, info, tensors, path)
        mean = np.asarray(tensors["norm.mean"], np.float32)
        std = np.asarray(tensors["norm.std"], np.float32)
        keep = tensors.get("norm.keep")

        onnx_file = path / ONNX_FILE
        onnx_meta = meta.get("onnx") or {}
        chosen = backend
        if backend == "auto":
            chosen = "onnx" if onnx_file.is_file() else "torch"
        if chosen == "onnx":
            problem = None
            if not onnx_file.is_file():
                problem = f"{path}: {ONNX_FILE} is missing; run 'emovox export {path}' first"
            elif onnx_meta.get("weights_sha256") not in (None, digest):
                problem = (f"{path}: {ONNX_FILE} was exported from other weights; re-run "
                           f"'emovox export {path}'")
            if problem:
                if backend == "onnx":
                    raise ArtifactError(problem)
                log.warning("%s; using PyTorch instead", problem)
                chosen = "torch"
        run_net = (_onnx_runner(onnx_file, threads) if chosen == "onnx"
                   else _torch_runner(path, threads))
        return cls(
            labels=labels, meta=meta, temperature=temperature, model_id=model_id,
            backend=chosen, path=path, sr=int(info.get("sr", TARGET_SR)),
            n_frames=int(info.get("n_frames", 0) or 0), trim=bool(info.get("trim", False)),
            top_db=float(info.get("top_db", 40.0)), features=features, mean=mean, std=std,
            keep=None if keep is None else np.asarray(keep, np.int64), run_net=run_net,
        )

    @classmethod
    def _from_sklearn(cls, path: Path, meta: dict[str, Any]) -> Predictor:
        """A classical artifact (e.g. ``compare_lrcv``): utterance functionals computed
        with emovox.features (opensmile), the scikit-learn pipeline loaded with skops.
        Slower than the neural path (the functionals dominate), often more accurate."""
        from emovox.artifact import load_model

        labels = tuple(meta.get("labels") or ())
        if not labels or set(labels) - set(LABELS):
            raise ArtifactError(f"{path}: bad label list {list(labels)}")
        model, _ = load_model(path)
        info = _feature_info(meta, path)
        digest = hashlib.sha256((path / "model.skops").read_bytes()).hexdigest()
        name = (meta.get("config") or {}).get("model", {}).get("name") or "model"
        temperature = float(meta.get("temperature", 1.0))
        lock = threading.Lock()

        def run(x: np.ndarray) -> np.ndarray:
            with lock:
                p = model.predict_proba(np.asarray(x, np.float64))
            return np.log(np.clip(p, 1e-12, 1.0))

        return cls(
            labels=labels, meta=meta, temperature=temperature, model_id=f"{name}-{digest[:12]}",
            backend="sklearn", path=path, sr=int(info.get("sr", TARGET_SR)), n_frames=0,
            trim=bool(info.get("trim", False)), top_db=float(info.get("top_db", 40.0)),
            features=_build_features(meta, info, {}, path),
            mean=np.zeros(1, np.float32), std=np.ones(1, np.float32), keep=None,
            run_net=run,
        )

    def describe(self) -> dict[str, Any]:
        """What the API/web app show about the model (plain JSON types)."""
        return {
            "model_id": self.model_id,
            "backend": self.backend,
            "labels": list(self.labels),
            "temperature": self.temperature,
            "calibration": self.meta.get("calibration"),
            "sr": self.sr,
            "n_frames": self.n_frames,
            "trim": self.trim,
            "package_version": self.meta.get("package_version"),
            "metrics": self.meta.get("metrics") or {},
            "derived_note": DERIVED_NOTE,
        }

    # -- prediction ---------------------------------------------------------------------
    def predict_proba_features(self, feats: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """Calibrated probabilities ``(B, n_labels)`` (float64) of raw (un-normalised)
        features: ``(B, T, D)`` log-mel dB, or a list of ``(T, D)`` arrays. Each item is
        padded/cropped to :attr:`n_frames` first."""
        items = list(feats) if not isinstance(feats, np.ndarray) else feats
        if len(items) == 0:
            return np.zeros((0, len(self.labels)))
        if self.n_frames:
            items = [pad_or_crop(np.asarray(f, np.float32), self.n_frames) for f in items]
        shapes = {np.shape(f) for f in items}
        if len(shapes) == 1:
            groups = [np.asarray(items, np.float32)]
        else:  # variable-length input to a model without n_frames: one at a time
            groups = [np.asarray(f, np.float32)[None] for f in items]
        out = []
        for g in groups:
            for s in range(0, len(g), _MAX_BATCH):
                out.append(self._proba(self._normalise(g[s : s + _MAX_BATCH])))
        return np.concatenate(out)

    def predict_wave(self, wave: np.ndarray, sr: int, *, source: str = "<array>") -> Prediction:
        """Predict one waveform: ``(n_samples,)`` or ``(n_samples, n_channels)``, any rate
        (resampled to 16 kHz), full scale 1.0."""
        return self.predict_batch([wave], sr, sources=[source])[0]

    def predict_batch(
        self, waves: Sequence[np.ndarray], sr: int, *, sources: Sequence[str] | None = None
    ) -> list[Prediction]:
        """Predict several waveforms at sample rate ``sr`` with one network call per
        64 clips (all clips are padded/cropped to the same length)."""
        if sources is not None and len(sources) != len(waves):
            raise ValueError(f"{len(waves)} waves but {len(sources)} sources")
        prepared = [self._prepare_wave(w, sr) for w in waves]
        probs = self.predict_proba_features([self.features(w) for w, _, _ in prepared])
        return [
            self._make_prediction(p, dur, silent, sources[i] if sources else "<array>")
            for i, (p, (_, dur, silent)) in enumerate(zip(probs, prepared, strict=True))
        ]

    def predict_file(
        self,
        path_or_bytes: AudioSource,
        *,
        filename: str | None = None,
        max_duration: float | None = None,
    ) -> Prediction:
        """Decode a file (or its bytes) with :func:`emovox.audio.load_audio` and predict it.

        Raises:
            emovox.errors.AudioError: the typed decoding errors of ``load_audio``
                (AudioFileNotFound, NotAudio, EmptyAudio, AudioTooLong, ...).
        """
        audio = load_audio(path_or_bytes, sr=self.sr, trim=False, max_duration=max_duration,
                           filename=filename)
        return self.predict_wave(audio.wave, audio.sr, source=audio.source)

    # -- internals ----------------------------------------------------------------------
    def _prepare_wave(self, wave: np.ndarray, sr: int) -> tuple[np.ndarray, float, bool]:
        """-> (wave for the features, duration before trimming in s, silent)."""
        x = np.asarray(wave)
        if x.ndim == 2 and x.shape[0] < x.shape[1] and x.shape[0] <= 8:
            x = to_mono(x, channel_axis=0)  # (n_channels, n_samples)
        else:
            x = to_mono(x)
        if x.size == 0:
            raise EmptyAudio("the waveform has no samples")
        if not np.all(np.isfinite(x)):
            bad = int(np.count_nonzero(~np.isfinite(x)))
            raise InvalidSamples(f"the waveform contains {bad} non-finite (NaN/inf) samples")
        if int(sr) != self.sr:
            x = resample(x, int(sr), self.sr)
        duration = len(x) / self.sr
        silent = is_silent(x)
        if self.trim and not silent:
            t = trim_silence(x, self.sr, top_db=self.top_db)
            if 0 < len(t) < len(x):
                x = np.ascontiguousarray(t)
        return x, duration, silent

    def _normalise(self, x: np.ndarray) -> np.ndarray:
        if self.keep is not None:
            x = x[..., self.keep]
        return np.ascontiguousarray((x - self.mean) / self.std, dtype=np.float32)

    def _proba(self, x: np.ndarray) -> np.ndarray:
        logits = np.asarray(self.run_net(x), np.float64)
        return softmax(logits / self.temperature)

    def _make_prediction(self, p: np.ndarray, duration: float, silent: bool,
                         source: str) -> Prediction:
        k = int(np.argmax(p))
        a, v = (p / p.sum()) @ self._protos
        return Prediction(
            label=self.labels[k], confidence=float(p[k]),
            probabilities={lab: float(q) for lab, q in zip(self.labels, p, strict=True)},
            arousal=float(a), valence=float(v), duration=float(duration), silent=bool(silent),
            source=source,
        )


def _build_features(
    meta: dict[str, Any], info: dict[str, Any], tensors: dict[str, np.ndarray], path: Path
) -> Callable[[np.ndarray], np.ndarray]:
    """The artifact's feature function ``wave -> (T, D)`` (or ``(D,)``)."""
    feature = info.get("feature")
    sr = int(info.get("sr", TARGET_SR))
    if feature == "logmel":
        fe_meta = meta.get("frontend")
        if fe_meta and "frontend.mel_basis" in tensors and "frontend.window" in tensors:
            try:
                return LogMelFrontEnd.from_saved(fe_meta, tensors)
            except (KeyError, ValueError) as exc:
                raise ArtifactError(f"{path}: bad stored front end: {exc}") from None
        log.warning(
            "%s: the artifact has no stored log-mel front end; building it with librosa "
            "(run emovox.inference.attach_inference_metadata or 'emovox export' to store it)",
            path,
        )
        return LogMelFrontEnd.from_params(sr, **_logmel_params(info.get("feature_params") or {}))
    log.info("%s: feature %r is computed with emovox.features", path, feature)
    from emovox.features import extract

    params = dict(info.get("feature_params") or {})

    def features(wave: np.ndarray) -> np.ndarray:
        return extract(feature, wave, sr, **params)

    return features


def _onnx_runner(onnx_file: Path, threads: int | None) -> Runner:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    if threads:
        so.intra_op_num_threads = int(threads)
        so.inter_op_num_threads = 1
    try:
        sess = ort.InferenceSession(str(onnx_file), sess_options=so,
                                    providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ArtifactError(f"{onnx_file}: cannot be loaded by onnxruntime: {exc}") from None
    in_name = sess.get_inputs()[0].name
    out_name = sess.get_outputs()[0].name

    def run(x: np.ndarray) -> np.ndarray:
        return sess.run([out_name], {in_name: x})[0]  # session.run is thread-safe

    return run


def _torch_runner(path: Path, threads: int | None) -> Runner:
    import torch

    from emovox.artifact import load_model

    model, _ = load_model(path)
    net = model.net
    net.eval()
    if threads:
        torch.set_num_threads(int(threads))
    lock = threading.Lock()

    def run(x: np.ndarray) -> np.ndarray:
        with lock, torch.inference_mode():
            return net(torch.from_numpy(x)).numpy()

    return run
