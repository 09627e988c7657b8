"""A linear model on utterance functionals as one member of a network ensemble.

``emovox ensemble NET... FUNCTIONAL`` accepts, besides the networks, one trained scikit-learn
model folder whose pipeline is a ``StandardScaler`` followed by a multinomial
``LogisticRegression`` on a registered *vector* feature (``prosody_logreg``). Its numbers
become a :class:`~emovox.models.ensemble.FunctionalMember` (``softmax(W (v - mean) / std +
b)``, exactly the pipeline's ``predict_proba``), so the ensemble stays one network and one ONNX
graph; the ensemble's ``Preprocess`` appends the feature to every frame
(:attr:`emovox.preprocess.Preprocess.functional`).

The member reads the wave *before* silence trimming (as ``prosody_logreg`` is trained), at the
networks' sample rate and loudness handling: the vector it sees at serving time is then the
one it was trained on.

``emovox ensemble ... --narrow-band FOLDER`` adds the member's narrow-band alternative: a
second such pipeline on a feature registered as columns of the first's (``prosody_robust``
of ``prosody``), which answers instead of it when the wave is narrow-band
(:attr:`emovox.preprocess.Preprocess.band_floor_db`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emovox.errors import ConfigError

__all__ = ["ABSENT_LOGIT", "FunctionalMemberSpec", "functional_member", "functional_state",
           "is_functional_folder", "narrow_member"]

#: logit of a class the logistic regression never saw in training (probability ~1e-13
#: against the others): it then never wins, as in the pipeline's own ``predict_proba``
ABSENT_LOGIT: float = -30.0


@dataclass(frozen=True)
class FunctionalMemberSpec:
    """A functional member ready to join an ensemble.

    Attributes:
        feature: the registered vector feature it reads (``"prosody"``).
        dim: the feature's length ``D``.
        state: the :class:`~emovox.models.ensemble.FunctionalMember` tensors (``mean``,
            ``std``, ``linear.weight``, ``linear.bias``) as float32 arrays.
        meta: the member's :class:`~emovox.artifact.ArtifactMeta`.
    """

    feature: str
    dim: int
    state: dict[str, np.ndarray]
    meta: Any


def is_functional_folder(path: Path) -> bool:
    """Whether the model folder ``path`` holds a scikit-learn model (not a network)."""
    from emovox.artifact import ModelKind, read_meta

    return read_meta(Path(path)).kind is ModelKind.SKLEARN


def functional_state(pipeline: Any, n_classes: int) -> dict[str, np.ndarray]:
    """The tensors of a :class:`~emovox.models.ensemble.FunctionalMember` equal to a fitted
    ``StandardScaler`` + multinomial ``LogisticRegression`` pipeline over ``n_classes``
    labels (classes it never saw get :data:`ABSENT_LOGIT`).

    Raises:
        ConfigError: another pipeline, or a two-class (sigmoid, not softmax) regression.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    steps = [s for _, s in getattr(pipeline, "steps", [])]
    if (len(steps) != 2 or not isinstance(steps[0], StandardScaler)
            or not isinstance(steps[1], LogisticRegression)):
        raise ConfigError("a functional ensemble member must be StandardScaler + "
                          "LogisticRegression (e.g. prosody_logreg)")
    scaler, clf = steps
    classes = np.asarray(clf.classes_, int)
    if len(classes) < 3 or clf.coef_.shape[0] != len(classes):
        raise ConfigError("a functional ensemble member needs a softmax over 3 or more classes")
    dim = clf.coef_.shape[1]
    weight = np.zeros((n_classes, dim))
    bias = np.full(n_classes, ABSENT_LOGIT)
    weight[classes], bias[classes] = clf.coef_, clf.intercept_
    mean = scaler.mean_ if scaler.with_mean else np.zeros(dim)
    std = scaler.scale_ if scaler.with_std else np.ones(dim)
    return {k: np.asarray(v, np.float32) for k, v in
            {"mean": mean, "std": std, "linear.weight": weight, "linear.bias": bias}.items()}


def functional_member(path: Path, network_meta: Any) -> FunctionalMemberSpec:
    """The functional member at ``path``, checked against the ensemble's first network.

    Raises:
        ConfigError: not a scikit-learn model on a vector feature, other labels, or prepared
            otherwise than the networks (sample rate, trimming, loudness).
    """
    from emovox.training.trainer import load_trained

    model, meta = load_trained(Path(path))
    pre, net = meta.preprocess, network_meta.preprocess
    spec = _vector_spec(path, pre)
    if meta.labels != network_meta.labels:
        raise ConfigError(f"{path}: other labels than the networks")
    if pre.trim or (pre.sr, pre.loudness) != (net.sr, net.loudness):
        raise ConfigError(f"{path}: prepared otherwise than an ensemble feeds it (it reads the "
                          f"untrimmed wave at the networks' rate and loudness: trim "
                          f"{pre.trim}, sample rate {pre.sr} / {net.sr}, loudness "
                          f"{pre.loudness.value} / {net.loudness.value})")
    state = functional_state(model.pipeline, meta.n_classes)
    return FunctionalMemberSpec(spec.name, int(state["mean"].shape[0]), state, meta)


def narrow_member(path: Path, network_meta: Any,
                  wide: FunctionalMemberSpec) -> tuple[FunctionalMemberSpec, list[int]]:
    """The narrow-band alternative at ``path`` of the functional member ``wide``, and the
    columns of ``wide``'s feature it reads (its feature must be registered as columns of
    ``wide``'s: ``prosody_robust`` of ``prosody``).

    Raises:
        ConfigError: as :func:`functional_member`, or a feature that is not columns of
            ``wide``'s.
    """
    from emovox.features import FEATURES

    narrow = functional_member(path, network_meta)
    of = FEATURES[narrow.feature].columns_of
    if of is None or of[0] != wide.feature or len(of[1]) != narrow.dim:
        raise ConfigError(f"{path}: a narrow-band member must read columns of the functional "
                          f"member's feature {wide.feature!r}, not {narrow.feature!r}")
    return narrow, list(of[1])


def _vector_spec(path: Path, pre: Any) -> Any:
    """The registered vector feature ``pre`` reads with its default parameters."""
    from emovox.features import FEATURES

    spec = FEATURES.get(pre.feature or "")
    if spec is None or spec.kind != "vector" or pre.feature_params:
        raise ConfigError(f"{path}: a functional member must read a registered vector feature "
                          f"with its default parameters, not {pre.feature!r}")
    return spec
