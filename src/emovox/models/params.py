"""Typed model parameters: the frozen config dataclasses behind ``-p KEY=VALUE``.

Every registered model has one config class (a subclass of :class:`ModelParams`); its field
defaults are the model's defaults, written once. :meth:`ModelParams.coerce` turns a mapping
of user values (CLI strings, YAML scalars, JSON lists) into typed field values and refuses
unknown keys (with "did you mean") and values that do not parse, with a
:class:`~emovox.errors.ConfigError`.

Neural configs subclass :class:`TrainConfig`, the hyper-parameters of the training loop
(:mod:`emovox.training.trainer`), and add the network's own fields.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar, TypeVar

from emovox.errors import ConfigError

P = TypeVar("P", bound="ModelParams")

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


class Loss(str, Enum):
    CE = "ce"  #: (class-weighted, optionally label-smoothed) cross-entropy
    FOCAL = "focal"  #: categorical focal loss (Lin et al., 2017)


class AdversaryOn(str, Enum):
    SPEAKER = "speaker"  #: the adversary names each clip's speaker
    CORPUS = "corpus"  #: the adversary names each clip's corpus


class Device(str, Enum):
    """Where a network trains (PyTorch device type). Batches are drawn and augmented on
    the CPU either way; dropout draws from the device's own generator and GPU kernels are
    not bit-for-bit repeatable, so a ``cuda`` run is not reproducible as a ``cpu`` one is."""

    CPU = "cpu"  #: the CPU (``threads`` of it)
    CUDA = "cuda"  #: the first CUDA GPU PyTorch sees (research sweeps; CI has none)


class Schedule(str, Enum):
    PLATEAU = "plateau"  #: reduce LR when validation UA stalls (reference 000 style)
    COSINE = "cosine"  #: one-cycle cosine with warm-up
    CONSTANT = "constant"


def _type_name(tp: Any) -> str:
    """A readable name of an annotation: ``int``, ``list of int``, ``float or scale|auto``."""
    if isinstance(tp, type) and issubclass(tp, Enum):
        return "|".join(str(m.value) for m in tp)
    origin = typing.get_origin(tp)
    if origin is tuple:
        return f"list of {_type_name(typing.get_args(tp)[0])}"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    return getattr(tp, "__name__", None) or str(tp)


def _scalar(value: Any, tp: Any) -> Any:
    """``value`` as the scalar type ``tp``; ValueError when it does not parse."""
    if isinstance(tp, type) and issubclass(tp, Enum):
        try:
            return tp(value.value if isinstance(value, Enum) else value)
        except ValueError:
            raise ValueError(f"expected one of {_type_name(tp)}") from None
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ValueError("expected true or false")
    if tp is int:
        if isinstance(value, bool):
            raise ValueError("expected an integer")
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise ValueError("expected an integer")
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError("expected a number")
        try:
            out = float(value.strip() if isinstance(value, str) else value)
        except ValueError:
            raise ValueError("expected a number") from None
        if not math.isfinite(out):
            raise ValueError("expected a finite number")
        return out
    if tp is str:
        if isinstance(value, str):
            return value
        raise ValueError("expected a string")
    raise TypeError(f"unsupported parameter type {tp!r}")


def coerce_value(value: Any, tp: Any) -> Any:
    """``value`` converted to the annotation ``tp`` (int, float, bool, str, an Enum,
    ``tuple[T, ...]`` or a union of those); ValueError with the reason when it does not."""
    origin = typing.get_origin(tp)
    if origin is tuple:
        args = typing.get_args(tp)
        if isinstance(value, str):
            value = [v for v in value.strip().strip("()[]").split(",") if v.strip()]
        elif isinstance(value, int | float) and len(args) == 2 and args[1] is Ellipsis:
            value = [value]  # `-p grid=0.5`, already parsed as a number: one value
        if not isinstance(value, list | tuple):
            raise ValueError(f"expected a {_type_name(tp)}, e.g. 1,2,3")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_scalar(v, args[0]) for v in value)
        if len(args) != len(value):
            raise ValueError(f"expected {len(args)} values")
        return tuple(_scalar(v, a) for v, a in zip(value, args, strict=True))
    if origin in (typing.Union, types.UnionType):
        reasons = []
        for arg in typing.get_args(tp):  # in declaration order: the first that parses wins
            try:
                return coerce_value(value, arg)
            except ValueError as exc:
                reasons.append(str(exc))
        raise ValueError(" or ".join(reasons))
    return _scalar(value, tp)


@dataclass(frozen=True)
class ModelParams:
    """Base of every model config. Subclasses are frozen dataclasses whose fields are the
    ``-p KEY=VALUE`` keys of a model; :data:`HIDDEN` names fields the user may not set."""

    #: fields that exist but are not user parameters (set by the caller, e.g. the RNG seed)
    HIDDEN: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        """The parameter names a user may set, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.name not in cls.HIDDEN)

    @classmethod
    def coerce(cls, params: typing.Mapping[str, Any], *, model: str = "") -> dict[str, Any]:
        """``params`` with every value converted to its field's type. Raises ConfigError
        naming the valid keys for an unknown key, and the expected type for a bad value."""
        hints = typing.get_type_hints(cls)
        valid = cls.keys()
        what = f"model {model!r}" if model else cls.__name__
        out: dict[str, Any] = {}
        for key, value in params.items():
            if key not in valid:
                near = ([k for k in valid if k.lower() == str(key).lower()]
                        or difflib.get_close_matches(str(key), valid, n=1))
                hint = f" (did you mean {near[0]!r}?)" if near else ""
                raise ConfigError(
                    f"unknown parameter {key!r} for {what}{hint}; valid keys: {', '.join(valid)}"
                )
            try:
                out[key] = coerce_value(value, hints[key])
            except ValueError as exc:
                raise ConfigError(
                    f"parameter {key}={value!r} for {what}: {exc} "
                    f"({key} is {_type_name(hints[key])})"
                ) from None
        return out

    def with_params(self: P, params: typing.Mapping[str, Any], *, model: str = "") -> P:
        """A copy with ``params`` (validated and typed by :meth:`coerce`) applied."""
        return dataclasses.replace(self, **self.coerce(params, model=model))

    @classmethod
    def from_params(cls: type[P], params: typing.Mapping[str, Any]) -> P:
        """Defaults of ``cls`` with ``params`` applied (validated and typed)."""
        return cls(**cls.coerce(params))

    def to_params(self) -> dict[str, Any]:
        """The user-settable fields and their values."""
        return {k: getattr(self, k) for k in self.keys()}


# (key, (lowest value, whether it is excluded), highest or None) of TrainConfig's numbers
_TRAIN_RANGES: tuple[tuple[str, tuple[float, bool], float | None], ...] = (
    ("epochs", (1, False), None), ("batch_size", (1, False), None), ("lr", (0, True), None),
    ("weight_decay", (0, False), None), ("focal_gamma", (0, False), None),
    ("label_smoothing", (0, False), 0.99), ("patience", (0, False), None),
    ("lr_plateau_factor", (0, True), 1.0), ("lr_plateau_patience", (0, False), None),
    ("grad_clip", (0, False), None), ("vtlp", (0, False), 0.5),
    ("mixup_alpha", (0, False), None), ("n_frames", (0, False), None),
    ("select_k", (0, False), None), ("threads", (1, False), None),
    ("distil_alpha", (0, False), 1.0), ("distil_temperature", (0, True), None),
    ("adversary", (0, False), 10.0),
)


@dataclass(frozen=True)
class TrainConfig(ModelParams):
    """Hyper-parameters of the PyTorch training loop (:mod:`emovox.training.trainer`).

    A network's config subclasses this and overrides the defaults its recipe uses."""

    HIDDEN: ClassVar[frozenset[str]] = frozenset({"seed"})

    #: passes over the training clips (upper bound with early stopping)
    epochs: int = 40
    #: clips per optimisation step
    batch_size: int = 32
    #: peak learning rate of AdamW (per step, dimensionless)
    lr: float = 1e-3
    #: AdamW decoupled weight decay (per step, dimensionless)
    weight_decay: float = 1e-4
    #: training loss
    loss: Loss = Loss.CE
    #: focusing exponent of the focal loss (``loss=focal`` only)
    focal_gamma: float = 2.0
    #: label smoothing of the targets, cross-entropy or focal (fraction of mass spread, 0..1)
    label_smoothing: float = 0.0
    #: weight each class by the inverse of its training frequency ("balanced")
    class_weights: bool = True
    #: epochs without validation-UA gain before early stopping (needs validation speakers)
    patience: int = 10
    #: learning-rate schedule
    schedule: Schedule = Schedule.PLATEAU
    #: ``schedule=plateau``: factor the LR is multiplied by when validation UA stalls
    lr_plateau_factor: float = 0.5
    #: ``schedule=plateau``: epochs without gain before reducing (0 = a third of patience)
    lr_plateau_patience: int = 0
    #: maximum gradient L2 norm (0 = no clipping)
    grad_clip: float = 5.0
    #: SpecAugment time/frequency masks on sequence training batches
    specaugment: bool = False
    #: vocal-tract-length perturbation: warp each training clip's frequency axis by a factor
    #: in 1 +- vtlp (0 = off; 0.1 is usual), on sequence training batches
    vtlp: float = 0.0
    #: Freq-MixStyle: probability that a sequence training batch has each clip's per-band
    #: statistics mixed with another clip's (0 = off; 0.4-0.8 in the papers)
    mixstyle: float = 0.0
    #: Freq-MixStyle's Beta(alpha, alpha) mixing weights
    mixstyle_alpha: float = 0.3
    #: mixup Beta(alpha, alpha) parameter (0 = no mixup)
    mixup_alpha: float = 0.0
    #: sequences padded/cropped to this many frames (0 = keep the feature's own length)
    n_frames: int = 0
    #: SelectKBest(f_classif) columns kept, fitted on training data (0 = keep all)
    select_k: int = 0
    #: PyTorch CPU threads for training and prediction
    threads: int = 2
    #: where the network trains (``cuda``: a GPU, for sweeps; the trained network is
    #: moved back to the CPU, so what is saved and served does not depend on it)
    device: Device = Device.CPU
    #: knowledge distillation (``evaluate --teacher``; ignored without teachers): weight of
    #: the teacher term, ``loss = (1 - a) * hard-label loss + a * T^2 * KL(teacher_T||student_T)``
    distil_alpha: float = 0.5
    #: distillation temperature T: the teacher's probabilities become p^(1/T) renormalised
    #: and the student's softmax(logits / T)
    distil_temperature: float = 2.0
    #: speaker-adversarial training (:mod:`emovox.training.adversary`): final weight of the
    #: term that trains the network's embedding to leave a classifier of the training
    #: clips' speakers (or corpora: ``adversary_on``) guessing (0 = off; ramped up from 0)
    adversary: float = 0.0
    #: what the adversary learns to name: each clip's speaker or its corpus; under
    #: ``evaluate --adapt``, the fold's unlabelled test clips join its batches with theirs
    #: (domain-adversarial adaptation: the network learns to hide which side a clip is from)
    adversary_on: AdversaryOn = AdversaryOn.SPEAKER
    #: RNG seed (set from ``--seed``, not a ``-p`` key)
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.mixstyle <= 1.0:
            raise ConfigError(f"mixstyle is a probability (0..1), got {self.mixstyle}")
        if not self.mixstyle_alpha > 0:
            raise ConfigError(f"mixstyle_alpha must be positive, got {self.mixstyle_alpha}")
        # research QA, stop 32: batch_size=0 or threads=0 failed after feature extraction
        for key, low, high in _TRAIN_RANGES:
            v = getattr(self, key)
            if not (low[0] < v if low[1] else low[0] <= v) or (high is not None and v > high):
                where = f"{'>' if low[1] else '>='} {low[0]:g}" + (
                    f" and <= {high:g}" if high is not None else "")
                raise ConfigError(f"{key} must be {where}, got {v}")

    @classmethod
    def split(cls, params: typing.Mapping[str, Any]) -> tuple[TrainConfig, dict[str, Any]]:
        """Split ``params`` into a :class:`TrainConfig` (training keys, typed) and the rest
        (network keys, returned unchanged for the network's own config to validate)."""
        names = {f.name for f in dataclasses.fields(TrainConfig)}
        train = {k: v for k, v in params.items() if k in names}
        seed = train.pop("seed", 0)
        tc = dataclasses.replace(TrainConfig(**TrainConfig.coerce(train)),
                                 seed=_scalar(seed, int))
        return tc, {k: v for k, v in params.items() if k not in names}

    @classmethod
    def net_keys(cls) -> tuple[str, ...]:
        """The fields ``cls`` adds to :class:`TrainConfig`: the network's own parameters."""
        train = {f.name for f in dataclasses.fields(TrainConfig)}
        return tuple(k for k in cls.keys() if k not in train)

    def net_params(self) -> dict[str, Any]:
        """Values of :meth:`net_keys`."""
        return {k: getattr(self, k) for k in self.net_keys()}


__all__ = ["AdversaryOn", "Device", "Loss", "ModelParams", "Schedule", "TrainConfig",
           "coerce_value"]
