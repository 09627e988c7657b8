""":class:`ArtifactMeta`: the typed, versioned content of an artifact's ``model.json``.

:func:`parse_meta` is the one place that turns the JSON of ``model.json`` into an
:class:`ArtifactMeta`; it validates every field and raises :class:`ArtifactError` with a
one-line message naming the file and the field. Version-1 files (everything written before
the renovation, including the bundled models) are read by :func:`_migrate_v1`.
:meth:`ArtifactMeta.to_json` is the one serialisation.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from emovox.errors import EmovoxError
from emovox.labels import LABELS
from emovox.preprocess import TRIM_TOP_DB, Preprocess

__all__ = [
    "SCHEMA",
    "SCHEMA_VERSION",
    "ArtifactError",
    "ArtifactMeta",
    "Calibration",
    "ModelKind",
    "NetworkState",
    "OnnxInfo",
    "json_default",
    "parse_meta",
]

SCHEMA = "emovox-model"
SCHEMA_VERSION = 2
#: the calibration temperatures a model.json may carry: any real fit lies far inside (the
#: bundled models' are 1.2-1.5); outside it, softmax(z / T) overflows or means nothing
TEMPERATURE_RANGE: tuple[float, float] = (1e-3, 1e3)


class ArtifactError(EmovoxError):
    """The artifact is missing, incomplete, malformed, or from an incompatible version."""


class ModelKind(str, Enum):
    TORCH = "torch"  #: a network: weights.safetensors (+ model.onnx)
    SKLEARN = "sklearn"  #: a scikit-learn pipeline: model.skops


@dataclass(frozen=True)
class Calibration:
    """Temperature scaling fitted on out-of-fold predictions (1.0 = none)."""

    temperature: float = 1.0
    report: dict[str, Any] | None = None


@dataclass(frozen=True)
class NetworkState:
    """What rebuilds a network (torch artifacts): ``build_net`` of ``module`` with
    ``params``, for ``input_shape``; ``train`` and ``history`` document the training."""

    module: str
    params: dict[str, Any]
    input_shape: tuple[int, ...]
    train: dict[str, Any] = field(default_factory=dict)
    history: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OnnxInfo:
    """The verified ONNX export next to the weights (``model.onnx``)."""

    opset: int
    weights_sha256: str
    dynamic_time: bool = False
    max_abs_diff: float = 0.0
    input: str = "features"
    output: str = "logits"
    file: str = "model.onnx"
    torch_version: str = ""
    onnxruntime_version: str = ""


@dataclass(frozen=True)
class ArtifactMeta:
    """Everything ``model.json`` says about a trained model.

    Attributes:
        kind: torch or sklearn.
        name: registered model name (``config.model.name``), ``"model"`` when unknown.
        params: the model's ``-p`` parameters as trained.
        labels: output order (known emotion labels, no duplicates).
        preprocess: the :class:`~emovox.preprocess.Preprocess` (arrays attached on read).
        calibration: temperature (+ report).
        network: torch only: module, network params, input shape, training config/history.
        trained_on: corpora, speakers, clip count of the final training.
        metrics: cross-validation metrics (``{}`` when none were attached).
        n_params: number of trainable parameters.
        experiment_config: the ``ExperimentConfig`` dict it was trained with.
        package_version: emovox version that wrote it.
        onnx: the ONNX export record, if any.
        digests: SHA-256 of each model file at writing time (checked when the folder is
            read: a file that differs is refused).
        schema_version: :data:`SCHEMA_VERSION`.
    """

    kind: ModelKind
    labels: tuple[str, ...]
    preprocess: Preprocess
    name: str = "model"
    params: dict[str, Any] = field(default_factory=dict)
    calibration: Calibration = field(default_factory=Calibration)
    network: NetworkState | None = None
    trained_on: dict[str, Any] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    n_params: int | None = None
    experiment_config: dict[str, Any] = field(default_factory=dict)
    package_version: str = ""
    onnx: OnnxInfo | None = None
    digests: dict[str, str] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    @property
    def n_classes(self) -> int:
        return len(self.labels)

    @property
    def temperature(self) -> float:
        return self.calibration.temperature

    def unseen_labels(self) -> tuple[int, ...]:
        """Indices of :attr:`labels` that the training data held no clip of
        (``trained_on.emotions``, counted since stop 34): a network's output for them is
        whatever training left it, not evidence (a model trained for one epoch without calm
        gave calm 0.13, and answered "surprised" for 18 clips once adapted: QA, stop 37), so
        the Predictor gives them none: the labels counted 0, as the card lists them. Empty
        when no counts are recorded, or none was seen."""
        counts = (self.trained_on or {}).get("emotions")
        if not isinstance(counts, dict):
            return ()
        unseen = tuple(i for i, lab in enumerate(self.labels)  # a label not counted is not
                       if lab in counts and not counts[lab])  # known unseen (the card agrees)
        return unseen if len(unseen) < len(self.labels) else ()

    def replace(self, **changes: Any) -> ArtifactMeta:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """The ``model.json`` document (plain JSON types)."""
        return {
            "format": SCHEMA, "format_version": self.schema_version,
            "package_version": self.package_version, "kind": self.kind.value,
            "name": self.name, "params": self.params, "labels": list(self.labels),
            "preprocess": self.preprocess.to_params(),
            "calibration": {"temperature": self.calibration.temperature,
                            "report": self.calibration.report},
            "network": None if self.network is None else dataclasses.asdict(self.network),
            "trained_on": self.trained_on, "metrics": self.metrics, "n_params": self.n_params,
            "experiment_config": self.experiment_config,
            "onnx": None if self.onnx is None else dataclasses.asdict(self.onnx),
            "digests": self.digests,
        }

    def card_view(self) -> dict[str, Any]:
        """The flat view model cards and the web/API model page read (v1 key names)."""
        return {
            "name": self.name, "package_version": self.package_version,
            "n_params": self.n_params, "labels": list(self.labels),
            "trained_on": self.trained_on, "metrics": self.metrics,
            "cross_validation": self.metrics or None,
            "calibration": self.calibration.report, "temperature": self.temperature,
            "config": self.experiment_config, "kind": self.kind.value,
            "input": self._input(),
        }

    def _input(self) -> dict[str, Any]:
        """What the card says a clip is read as: rate, window (None: the model's own way)
        and the playback speeds each window is also read at."""
        pre = self.preprocess
        hop = int((pre.frontend_params or {}).get("hop_length", 160))
        return {"sr": pre.sr, "window_s": pre.n_frames * hop / pre.sr if pre.n_frames else None,
                "speeds": list(pre.speeds)}

    def prediction_fields(self) -> dict[str, Any]:
        """The part of ``model.json`` that changes predictions (hashed into ``model_id``)."""
        doc = self.to_json()
        return {k: doc[k] for k in ("kind", "labels", "preprocess", "network", "calibration")}


def json_default(o: Any) -> Any:
    """``json.dumps(default=...)`` for numpy values, paths and enums."""
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, Enum):
        return o.value
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------


class _Bad(Exception):
    """A malformed field: (field, message)."""

    def __init__(self, fld: str, msg: str) -> None:
        super().__init__(fld, msg)
        self.field, self.msg = fld, msg


def _get(d: dict[str, Any], key: str, types: type | tuple[type, ...], default: Any = ...,
         where: str = "") -> Any:
    name = f"{where}{key}"
    if key not in d or d[key] is None:
        if default is ...:
            raise _Bad(name, "is missing")
        return default
    v = d[key]
    if isinstance(v, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise _Bad(name, f"must be {_tname(types)}, got {v!r}")
    if not isinstance(v, types):
        raise _Bad(name, f"must be {_tname(types)}, got {type(v).__name__}")
    return v


def _tname(types: type | tuple[type, ...]) -> str:
    ts = types if isinstance(types, tuple) else (types,)
    names = {dict: "an object", list: "a list", str: "a string", int: "an integer",
             float: "a number", bool: "true or false"}
    return " or ".join(names.get(t, t.__name__) for t in ts)


def _labels(raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw or not all(isinstance(x, str) for x in raw):
        raise _Bad("labels", f"must be a non-empty list of strings, got {raw!r}")
    unknown = sorted(set(raw) - set(LABELS))
    if unknown:
        raise _Bad("labels", f"unknown label(s) {unknown}")
    dup = sorted({x for x in raw if raw.count(x) > 1})
    if dup:
        raise _Bad("labels", f"duplicate label(s) {dup}")
    return tuple(raw)


#: the keys of a version-2 document and of its sections that are read: any other is a typo
#: or another program's (``calibration.temprature`` loaded with T = 1: code review, stop 47)
_V2_KEYS = frozenset({"format", "format_version", "package_version", "kind", "name", "params",
                      "labels", "preprocess", "calibration", "network", "trained_on",
                      "metrics", "n_params", "experiment_config", "onnx", "digests"})
_SECTION_KEYS = {"calibration": frozenset({"temperature", "report"}),
                 "network": frozenset({"module", "params", "input_shape", "train", "history"})}


def _only(raw: dict[str, Any], known: frozenset[str], where: str) -> None:
    unknown = sorted(str(k) for k in raw if k not in known)
    if unknown:
        raise _Bad(f"{where}{unknown[0]}", f"is not a field emovox reads (known: "
                   f"{', '.join(sorted(known))})")


def _calibration(raw: Any) -> Calibration:
    if not isinstance(raw, dict):
        raise _Bad("calibration", f"must be an object, got {type(raw).__name__}")
    _only(raw, _SECTION_KEYS["calibration"], "calibration.")
    t = _get(raw, "temperature", (int, float), 1.0, "calibration.")
    try:
        t = float(t)
    except OverflowError:  # a JSON integer of hundreds of digits
        t = math.inf
    lo, hi = TEMPERATURE_RANGE
    if not (math.isfinite(t) and lo <= t <= hi):
        raise _Bad("calibration.temperature", f"must be a number from {lo:g} to {hi:g}, "
                   f"got {_short_repr(raw.get('temperature'))}")
    return Calibration(t, _get(raw, "report", dict, None, "calibration."))


def _short_repr(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else f"{text[:20]}...({len(text)} characters)"


def _network(raw: Any) -> NetworkState:
    if not isinstance(raw, dict):
        raise _Bad("network", f"must be an object, got {type(raw).__name__}")
    _only(raw, _SECTION_KEYS["network"], "network.")
    module = _get(raw, "module", str, where="network.")
    if not module.startswith("emovox.models."):
        raise _Bad("network.module", f"refusing to import network module {module!r}")
    import importlib.util

    if "." in module[len("emovox.models."):] or importlib.util.find_spec(module) is None:
        raise _Bad("network.module", f"no such emovox network module: {module!r}")
    shape = _get(raw, "input_shape", list, where="network.")
    if not shape or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0
                            for s in shape):
        raise _Bad("network.input_shape", f"must be a list of positive integers, got {shape}")
    return NetworkState(module, _get(raw, "params", dict, where="network."), tuple(shape),
                        _get(raw, "train", dict, {}, "network."),
                        _get(raw, "history", dict, {}, "network."))


def _onnx(raw: Any) -> OnnxInfo | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise _Bad("onnx", f"must be an object, got {type(raw).__name__}")
    fields = {f.name for f in dataclasses.fields(OnnxInfo)}
    needed = {f.name for f in dataclasses.fields(OnnxInfo) if f.default is dataclasses.MISSING}
    if set(raw) - fields or not needed <= set(raw):
        raise _Bad("onnx", f"must have the keys {sorted(fields)}, got {sorted(raw)}")
    info = OnnxInfo(**raw)
    if not isinstance(info.weights_sha256, str) or not isinstance(info.opset, int):
        raise _Bad("onnx", "weights_sha256 must be a string and opset an integer")
    return info


def _preprocess(raw: Any) -> Preprocess:
    if not isinstance(raw, dict):
        raise _Bad("preprocess", f"must be an object, got {type(raw).__name__}")
    try:
        return Preprocess.from_params(raw)
    except (ValueError, TypeError) as exc:
        raise _Bad("preprocess", str(exc)) from None


#: the shape of ``trained_on``'s fields that model cards and ensembles read: a hand-edited
#: one (``speakers: 5``) was a traceback in ``ensemble`` and ``calibrate`` (code review, 46)
_TRAINED_ON_SHAPES: dict[str, tuple[type, type | None]] = {
    "speakers": (list, str), "channels": (list, str), "members": (list, str),
    "corpora": (dict, int), "emotions": (dict, int), "clip_digests": (dict, None),
    "teacher_speakers": (list, str), "teacher_clip_digests": (dict, None),
    "teachers_unlisted": (list, str)}


def _trained_on(d: dict[str, Any]) -> dict[str, Any] | None:
    raw = _get(d, "trained_on", dict, None)
    for key, (outer, inner) in _TRAINED_ON_SHAPES.items():
        v = (raw or {}).get(key)
        items = v.values() if isinstance(v, dict) else v
        if v is not None and (not isinstance(v, outer) or inner is not None and not all(
                isinstance(x, inner) and not isinstance(x, bool) for x in items)):
            want = f"a list of {inner.__name__}s" if outer is list else (
                f"an object of {inner.__name__}s" if inner else "an object")
            raise _Bad(f"trained_on.{key}", f"must be {want}, got {v!r:.60}")
    return raw


def _parse_v2(d: dict[str, Any]) -> ArtifactMeta:
    _only(d, _V2_KEYS, "")
    try:
        kind = ModelKind(_get(d, "kind", str))
    except ValueError:
        raise _Bad("kind", f"unknown model kind {d.get('kind')!r}") from None
    network = _network(d.get("network")) if kind is ModelKind.TORCH else None
    n_params = _get(d, "n_params", int, None)
    return ArtifactMeta(
        kind=kind, labels=_labels(d.get("labels")), preprocess=_preprocess(d.get("preprocess")),
        name=_get(d, "name", str, "model"), params=_get(d, "params", dict, {}),
        calibration=_calibration(d.get("calibration") or {}), network=network,
        trained_on=_trained_on(d), metrics=_get(d, "metrics", dict, {}),
        n_params=n_params, experiment_config=_get(d, "experiment_config", dict, {}),
        package_version=_get(d, "package_version", str, ""), onnx=_onnx(d.get("onnx")),
        digests=_get(d, "digests", dict, {}),
    )


def _migrate_v1(d: dict[str, Any]) -> dict[str, Any]:
    """A version-1 ``model.json`` (flat keys; ``inference`` + ``frontend``; ``net_module``,
    ``net_params``, ``train``, ``input_shape``; ``temperature``) as a version-2 document."""
    config = _get(d, "config", dict, {})
    model = config.get("model") if isinstance(config.get("model"), dict) else {}
    name = d.get("name") if isinstance(d.get("name"), str) else model.get("name")
    info = d.get("inference")
    if info is not None and not isinstance(info, dict):
        raise _Bad("inference", f"must be an object, got {type(info).__name__}")
    pre = _v1_preprocess(info, name, d)
    kind = d.get("kind")
    network = None
    if kind == "torch":
        network = {"module": d.get("net_module"), "params": d.get("net_params"),
                   "input_shape": d.get("input_shape"), "train": d.get("train") or {},
                   "history": d.get("history") or {}}
    cv = d.get("cross_validation")
    metrics = d.get("metrics") or (cv if isinstance(cv, dict) else {})
    n_classes = d.get("n_classes")
    labels = d.get("labels")
    if isinstance(n_classes, int) and isinstance(labels, list) and n_classes != len(labels):
        raise _Bad("n_classes", f"{n_classes} does not match the {len(labels)} labels")
    return {
        "kind": kind, "labels": labels, "preprocess": pre, "name": name or "model",
        "params": model.get("params") or {}, "network": network,
        "calibration": {"temperature": d.get("temperature", 1.0),
                        "report": d.get("calibration")},
        "trained_on": d.get("trained_on"), "metrics": metrics, "n_params": d.get("n_params"),
        "experiment_config": config, "package_version": d.get("package_version", ""),
        "onnx": d.get("onnx"),
    }


def _v1_preprocess(info: dict[str, Any] | None, name: str | None,
                   d: dict[str, Any]) -> dict[str, Any]:
    n_frames = int((d.get("train") or {}).get("n_frames", 0) or 0)
    normaliser = d.get("kind") == "torch"
    if info:
        keys = ("sr", "trim", "top_db", "feature", "feature_params")
        pre = {k: info[k] for k in keys if k in info}
        return pre | {"n_frames": int(info.get("n_frames", n_frames) or 0),
                      "frontend": d.get("frontend"), "normaliser": normaliser}
    # v1 artifacts written by save_model alone: the registry entry of the model says it
    return {"feature": None, "trim": False, "top_db": TRIM_TOP_DB, "n_frames": n_frames,
            "normaliser": normaliser, "registry_name": name}


def parse_meta(doc: Any, source: Path | str) -> ArtifactMeta:
    """Validate the decoded ``model.json`` ``doc`` of the file ``source``.

    Raises:
        ArtifactError: ``"<source>: field <name> <what is wrong>"`` for any malformed field,
            an unknown format or a newer version.
    """
    try:
        if not isinstance(doc, dict):
            raise _Bad("(top level)", f"must be a JSON object, got {type(doc).__name__}")
        if doc.get("format") != SCHEMA:
            raise _Bad("format", f"is {doc.get('format')!r}, not {SCHEMA!r}")
        version = doc.get("format_version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise _Bad("format_version", f"must be a positive integer, got {version!r}")
        if version > SCHEMA_VERSION:
            raise _Bad("format_version", f"{version} is newer than this emovox reads "
                       f"({SCHEMA_VERSION}); upgrade emovox")
        if version == 1:
            try:  # a field of another type was a traceback here (code review, stop 47)
                v2 = _migrate_v1(doc)
            except (TypeError, ValueError, AttributeError) as exc:
                raise _Bad("(version 1)", f"cannot be read ({exc})") from None
            registry_name = v2["preprocess"].pop("registry_name", None)
            meta = _parse_v2(v2)
            if registry_name is not None:
                meta = meta.replace(preprocess=_from_registry(registry_name, meta.preprocess))
            return meta.replace(schema_version=SCHEMA_VERSION)
        return _parse_v2(doc)
    except _Bad as bad:
        raise ArtifactError(f"{source}: field {bad.field} {bad.msg}") from None


def _from_registry(name: str, pre: Preprocess) -> Preprocess:
    """The feature of the registered model ``name`` (v1 artifacts that did not store it).
    Imports the model registry (torch); an unknown name leaves ``feature=None``."""
    from emovox.models import MODELS

    spec = MODELS.get(name)
    if spec is None or len(spec.inputs) != 1:
        return pre
    inp = spec.inputs[0]
    return pre.replace(feature=inp.feature, feature_params=dict(inp.params), trim=bool(inp.trim))
