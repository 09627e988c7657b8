"""What every model in :data:`emovox.models.MODELS` looks like to the experiment runner."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

import numpy as np

from emovox.errors import ConfigError
from emovox.models.configs import NetConfig
from emovox.models.params import ModelParams


class Family(str, Enum):
    CLASSICAL = "classical"  #: scikit-learn pipeline on utterance-level vectors
    NEURAL = "neural"  #: PyTorch network


class Model(Protocol):
    """A classifier over a fixed label set of ``n_classes`` (indices 0..n_classes-1)."""

    def fit(
        self,
        x_train: list[np.ndarray] | np.ndarray,
        y_train: np.ndarray,
        x_val: list[np.ndarray] | np.ndarray,
        y_val: np.ndarray,
    ) -> Model: ...

    def predict_proba(self, x: list[np.ndarray] | np.ndarray) -> np.ndarray:
        """(N, n_classes) probabilities, rows summing to 1."""
        ...


@dataclass(frozen=True)
class Input:
    """One feature stream a model reads: feature name, its parameters, silence trimming."""

    feature: str
    params: dict[str, Any] = field(default_factory=dict)
    trim: bool = False


#: ``builder(config, n_classes=, seed=, **extra) -> Model``; neural builders also take
#: ``on_epoch=`` (a progress callback) and ``trainer=`` (a :data:`NetTrainer`)
Builder = Callable[..., Model]

#: ``trainer(build_net, *, n_classes, seed, on_epoch, **train_params) -> Model``: wraps a
#: network builder into a trainable model. :func:`emovox.training.build_model` passes
#: :class:`emovox.training.trainer.TorchClassifier`, so that models never imports training.
NetTrainer = Callable[..., Model]


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: its inputs, its builder and its typed default parameters.

    Every ``-p KEY=VALUE`` goes through :meth:`validate` (or :meth:`configure`), which
    refuses unknown keys and ill-typed values with a :class:`~emovox.errors.ConfigError`
    before any feature is extracted."""

    name: str
    feature: str  #: key in :data:`emovox.features.FEATURES`
    builder: Builder
    family: Family
    description: str
    #: this model's default parameters (a frozen config; its fields are the ``-p`` keys)
    defaults: ModelParams
    feature_params: dict[str, Any] = field(default_factory=dict)
    #: the reference project (or "ours") whose recipe this model follows
    origin: str = ""
    #: trim leading/trailing silence (top_db 40) before feature extraction
    trim: bool = False
    #: further feature streams for multi-input (fusion) models
    extra_inputs: tuple[Input, ...] = ()
    #: chooses something on validation speakers, so needs ``--val-speakers`` >= 1
    needs_validation: bool = False

    @property
    def inputs(self) -> tuple[Input, ...]:
        return (Input(self.feature, self.feature_params, self.trim), *self.extra_inputs)

    @property
    def param_keys(self) -> tuple[str, ...]:
        """The ``-p`` keys this model accepts."""
        return self.defaults.keys()

    def validate(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``params`` typed (CLI strings coerced to each field's type); ConfigError naming
        the valid keys for an unknown key or a value that does not parse."""
        typed = self.defaults.coerce(params, model=self.name)
        config = self.defaults.with_params(typed, model=self.name)  # ranges: at construction
        if isinstance(config, NetConfig):  # sizes that must agree (mlp's hidden and dropouts)
            try:  # were refused only by build_net, after extraction (review, stop 52)
                config.check_params()
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
        return typed

    def configure(self, params: Mapping[str, Any]) -> ModelParams:
        """The full config: :attr:`defaults` with ``params`` (validated) applied."""
        return self.defaults.with_params(params, model=self.name)

    def build(self, *, n_classes: int, seed: int = 0, trainer: NetTrainer | None = None,
              **params: Any) -> Model:
        """An untrained model for ``n_classes`` classes. ``params`` are ``-p`` keys, plus
        ``on_epoch`` (progress callback) for neural models. A neural model needs ``trainer``
        (use :func:`emovox.training.build_model`, which passes it)."""
        extra: dict[str, Any] = {"on_epoch": params.pop("on_epoch")} if "on_epoch" in params else {}
        if self.family is Family.NEURAL:
            if trainer is None:
                raise TypeError(f"{self.name} is a neural model: build it with "
                                "emovox.training.build_model (it supplies the trainer)")
            extra["trainer"] = trainer
        return self.builder(self.configure(params), n_classes=n_classes, seed=seed, **extra)
