"""What every model in :data:`emovox.models.MODELS` looks like to the experiment runner."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

import numpy as np


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


def sequence_shape(name: str, input_shape: tuple[int, ...], min_frames: int) -> tuple[int, int]:
    """Check a time-major ``(T, F)`` input shape for a network that pools time
    ``min_frames``-fold; returns ``(T, F)``."""
    if len(input_shape) != 2:
        raise ValueError(f"{name} expects input_shape (T, F), got {input_shape}")
    t, f = input_shape
    if t < min_frames:
        raise ValueError(f"{name} needs T >= {min_frames}, got T={t}")
    return t, f


@dataclass(frozen=True)
class Input:
    """One feature stream a model reads: feature name, its parameters, silence trimming."""

    feature: str
    params: dict[str, Any] = field(default_factory=dict)
    trim: bool = False


@dataclass(frozen=True)
class ModelSpec:
    name: str
    feature: str  #: key in :data:`emovox.features.FEATURES`
    build: Callable[..., Model]  #: ``build(n_classes=, seed=, **params) -> Model``
    family: Family
    description: str
    feature_params: dict[str, Any] = field(default_factory=dict)
    #: the seed project (or "ours") whose recipe this model follows
    origin: str = ""
    #: trim leading/trailing silence (top_db 40) before feature extraction
    trim: bool = False
    #: further feature streams for multi-input (fusion) models
    extra_inputs: tuple[Input, ...] = ()

    @property
    def inputs(self) -> tuple[Input, ...]:
        return (Input(self.feature, self.feature_params, self.trim), *self.extra_inputs)
