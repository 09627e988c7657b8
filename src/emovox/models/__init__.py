"""The model registry: every selectable model, its feature set and its builder.

Classical models are scikit-learn pipelines; neural models are a ``build_net`` from
one module each (``cnn_bilstm`` ... ``crnn``) trained by :class:`emovox.train.TorchClassifier`
with that module's ``DEFAULTS`` (overridable with ``--param KEY=VALUE``).
"""

from __future__ import annotations

from functools import partial
from types import ModuleType
from typing import Any

from emovox.models import (
    classical,
    cnn_bilstm,
    cnn_gru_attention,
    conv1d,
    crnn,
    mlp,
    resnet_mlp,
)
from emovox.models.base import Family, Input, Model, ModelSpec
from emovox.models.fusion import FusionModel

#: our CRNN's registry settings on top of ``crnn.DEFAULTS``
CRNN_OVERRIDES: dict[str, Any] = {"schedule": "cosine", "n_frames": 256, "epochs": 30}


def _build_torch(module: ModuleType, overrides: dict[str, Any], *, n_classes: int, seed: int = 0,
                 **params: Any) -> Model:
    from emovox.train import TorchClassifier

    return TorchClassifier(
        module.build_net, n_classes=n_classes, seed=seed,
        **{**module.DEFAULTS, **overrides, **params},
    )


def _neural(name: str, module: ModuleType, feature: str, description: str, origin: str,
            trim: bool = False, **overrides: Any) -> ModelSpec:
    return ModelSpec(name, feature, partial(_build_torch, module, overrides), Family.NEURAL,
                     description, origin=origin, trim=trim)


MODELS: dict[str, ModelSpec] = {
    "egemaps_logreg": ModelSpec(
        "egemaps_logreg", "egemaps", classical.logreg, Family.CLASSICAL,
        "eGeMAPSv02 functionals (88) + standardisation + logistic regression", origin="baseline",
    ),
    "egemaps_svm": ModelSpec(
        "egemaps_svm", "egemaps", classical.svm, Family.CLASSICAL,
        "eGeMAPSv02 functionals (88) + standardisation + RBF SVM", origin="baseline",
    ),
    "compare_logreg": ModelSpec(
        "compare_logreg", "compare", classical.logreg, Family.CLASSICAL,
        "ComParE_2016 functionals (6373) + standardisation + logistic regression",
        origin="baseline",
    ),
    "compare_lrcv": ModelSpec(
        "compare_lrcv", "compare", classical.logreg_cv, Family.CLASSICAL,
        "ComParE_2016 functionals + logistic regression, C chosen on the validation speakers",
        origin="ours",
    ),
    "cnn_bilstm": _neural(
        "cnn_bilstm", cnn_bilstm, "seed000",
        "60 MFCC x 3 s; Conv1D+BN+Dropout blocks, 2 BiLSTM layers, dense; focal loss",
        "seed 000", schedule="plateau",
    ),
    "conv1d": _neural(
        "conv1d", conv1d, "seed001",
        "162-dim ZCR/chroma/MFCC/RMS/mel vector; Conv1D 256-256-128-64, dense 32",
        # the seed trained 50 epochs without early stopping; we stop after 10 epochs without
        # validation-UA gain (validation speakers only) to fit the 2-core CPU budget
        "seed 001", schedule="plateau", patience=10,
    ),
    "resnet_mlp": _neural(
        "resnet_mlp", resnet_mlp, "seed002",
        "45-feature summary, SelectKBest(40) in-fold, residual dense blocks 128/64/32",
        "seed 002", schedule="plateau",
    ),
    "mlp": _neural(
        "mlp", mlp, "seed003",
        "MFCC+deltas+spectral+chroma frame statistics (340); MLP 512-256-128, BN, dropout",
        "seed 003", schedule="plateau",
    ),
    "cnn_gru_attention": _neural(
        "cnn_gru_attention", cnn_gru_attention, "seed004",
        "40 MFCC x 200 frames; two Conv1D, BiGRU, attention pooling, dense",
        "seed 004", schedule="plateau",
    ),
    "crnn": _neural(
        "crnn", crnn, "logmel",
        "ours: silence-trimmed log-mel 64 x 2.56 s; 2-D CNN, BiGRU, attentive statistics "
        "pooling; SpecAugment, mixup, label smoothing, one-cycle cosine LR",
        "ours", trim=True, **CRNN_OVERRIDES,
    ),
}


def _build_fusion(*, n_classes: int, seed: int = 0, validated_c: bool = False,
                  **params: Any) -> Model:
    """CRNN on log-mel (input 0) + ComParE logistic regression (input 1), equal weights.
    ``params`` go to the CRNN; ``C`` goes to the logistic regression (or, with
    ``validated_c``, C is chosen on the validation speakers as in ``compare_lrcv``)."""
    c = params.pop("C", 1.0)
    net = _build_torch(crnn, CRNN_OVERRIDES, n_classes=n_classes, seed=seed, **params)
    lr = (classical.logreg_cv(n_classes=n_classes, seed=seed) if validated_c
          else classical.logreg(n_classes=n_classes, seed=seed, C=c))
    return FusionModel([(net, 0), (lr, 1)], [0.5, 0.5])


MODELS["fusion"] = ModelSpec(
    "fusion", "logmel", _build_fusion, Family.NEURAL,
    "ours: crnn (silence-trimmed log-mel) + compare_logreg, probabilities averaged",
    origin="ours", trim=True, extra_inputs=(Input("compare"),),
)
MODELS["fusion_lrcv"] = ModelSpec(
    "fusion_lrcv", "logmel", partial(_build_fusion, validated_c=True), Family.NEURAL,
    "ours: crnn + compare_lrcv (C chosen on validation speakers), probabilities averaged",
    origin="ours", trim=True, extra_inputs=(Input("compare"),),
)


def count_parameters(model: Any) -> int:
    """Learned numbers in a trained model: network weights, or a pipeline's coefficients
    (logistic regression) / support vectors and dual coefficients (SVM)."""
    if hasattr(model, "members"):
        return sum(count_parameters(m) for m, _ in model.members)
    net = getattr(model, "net", None)
    if net is not None:
        return int(sum(p.numel() for p in net.parameters()))
    pipe = getattr(model, "pipeline", None)
    clf = pipe[-1] if pipe is not None else None
    if hasattr(clf, "calibrated_classifiers_"):  # CalibratedClassifierCV(SVC, ensemble=False)
        clf = clf.calibrated_classifiers_[0].estimator
    if hasattr(clf, "coef_") and not hasattr(clf, "support_vectors_"):
        return int(clf.coef_.size + clf.intercept_.size)
    if hasattr(clf, "support_vectors_"):
        return int(clf.support_vectors_.size + clf.dual_coef_.size + clf.intercept_.size)
    return 0


def get_model_spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}") from None


__all__ = [
    "MODELS", "Family", "Input", "Model", "ModelSpec", "count_parameters", "get_model_spec",
]
