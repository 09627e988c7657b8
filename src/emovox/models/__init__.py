"""The model registry: every selectable model, its feature set, its builder and its typed
default parameters.

Owns the model architectures (one module each, with a frozen config dataclass whose fields
are that model's ``--param KEY=VALUE`` keys) and :class:`ModelSpec`, the single entry point
that validates parameters (:meth:`ModelSpec.validate`) and builds models
(:meth:`ModelSpec.build`). May import errors, labels, torch and scikit-learn (lazily); never
features, preprocess, training, experiment or anything above (checked by import-linter).
A neural model's trainer is passed in (:data:`~emovox.models.base.NetTrainer`):
:func:`emovox.training.build_model` supplies
:class:`~emovox.training.trainer.TorchClassifier`. Importing this package loads neither torch
nor scikit-learn: the configs live in :mod:`emovox.models.configs`.

Classical models are scikit-learn pipelines (:mod:`emovox.models.classical`); neural models
are a ``build_net`` from one module each (``cnn_bilstm`` ... ``crnn``) trained by the
trainer with that module's config.
"""

from __future__ import annotations

import dataclasses
import importlib
from functools import partial
from typing import Any

from emovox.errors import ConfigError
from emovox.models import configs
from emovox.models.base import Family, Input, Model, ModelSpec, NetTrainer
from emovox.models.configs import (
    CrnnConfig,
    EcapaConfig,
    FusionConfig,
    LogregConfig,
    ResLstmConfig,
)
from emovox.models.fusion import FusionModel
from emovox.models.params import ModelParams, Schedule, TrainConfig

#: our CRNN's registry settings on top of :class:`~emovox.models.configs.CrnnConfig`'s defaults
CRNN_REGISTRY: dict[str, Any] = {"schedule": Schedule.COSINE, "n_frames": 256, "epochs": 30}


def _build_torch(net_module: str, cfg: TrainConfig, *, n_classes: int, trainer: NetTrainer,
                 seed: int = 0, on_epoch: Any = None) -> Model:
    """``trainer`` around ``emovox.models.<net_module>.build_net`` (torch is imported here,
    at build time, never when the registry is loaded)."""
    build_net = importlib.import_module(f"emovox.models.{net_module}").build_net
    return trainer(build_net, n_classes=n_classes, seed=seed, on_epoch=on_epoch,
                   **cfg.to_params())


def _build_classical(builder: str, cfg: ModelParams, *, n_classes: int, seed: int = 0) -> Model:
    """``emovox.models.classical.<builder>`` (scikit-learn is imported at build time)."""
    from emovox.models import classical

    return getattr(classical, builder)(cfg, n_classes=n_classes, seed=seed)


def _neural(name: str, defaults: TrainConfig, feature: str, description: str, origin: str,
            trim: bool = False) -> ModelSpec:
    return ModelSpec(name, feature, partial(_build_torch, name), Family.NEURAL,
                     description, defaults, origin=origin, trim=trim)


def _classical(name: str, builder: str, defaults: ModelParams, feature: str, description: str,
               origin: str, trim: bool = False) -> ModelSpec:
    return ModelSpec(name, feature, partial(_build_classical, builder), Family.CLASSICAL,
                     description, defaults, origin=origin, trim=trim)


MODELS: dict[str, ModelSpec] = {
    "egemaps_logreg": _classical(
        "egemaps_logreg", "logreg", LogregConfig(), "egemaps",
        "eGeMAPSv02 functionals (88) + standardisation + logistic regression", "baseline",
    ),
    "egemaps_svm": _classical(
        "egemaps_svm", "svm", configs.SvmConfig(), "egemaps",
        "eGeMAPSv02 functionals (88) + standardisation + RBF SVM", "baseline",
    ),
    "prosody_logreg": _classical(
        "prosody_logreg", "logreg", LogregConfig(), "prosody",
        "eGeMAPS-like functionals in NumPy (47: pitch, loudness, HNR, spectral balance, "
        "MFCC 1-4, timing) + standardisation + logistic regression (can join an ensemble of "
        "log-mel networks)", "ours",
    ),
    "prosody_band_logreg": _classical(
        "prosody_band_logreg", "logreg", LogregConfig(), "prosody_band",
        "prosody_logreg on the telephone band (300-3400 Hz) only: reads a phone call as it "
        "reads a studio clip", "ours",
    ),
    "prosody_robust_logreg": _classical(
        "prosody_robust_logreg", "logreg", LogregConfig(), "prosody_robust",
        "prosody_logreg without the 6 functionals a telephone line moves most (41: no MFCC "
        "means, no 0-500 Hz slopes)", "ours",
    ),
    "prosody_vq_logreg": _classical(
        "prosody_vq_logreg", "logreg", LogregConfig(), "prosody_vq",
        "prosody_logreg + eGeMAPS's voice-quality and formant functionals (75: jitter, "
        "shimmer, H1-H2, H1-A3, F1-F3)", "ours",
    ),
    "compare_logreg": _classical(
        "compare_logreg", "logreg", LogregConfig(), "compare",
        "ComParE_2016 functionals (6373) + standardisation + logistic regression", "baseline",
    ),
    "compare_lrcv": _classical(
        "compare_lrcv", "logreg_cv", configs.LogregCvConfig(), "compare",
        "ComParE_2016 functionals + logistic regression, C chosen on the validation speakers",
        "ours",
    ),
    # feature names "seed000".."seed004" are registry keys (cache keys, run configs): kept
    "cnn_bilstm": _neural(
        "cnn_bilstm", configs.CnnBiLstmConfig(), "seed000",
        "60 MFCC x 3 s; Conv1D+BN+Dropout blocks, 2 BiLSTM layers, dense; focal loss",
        "reference 000",
    ),
    "conv1d": _neural(
        # the reference project trained 50 epochs without early stopping; we stop after 10
        # epochs without validation-UA gain (validation speakers only) to fit the 2-core CPU
        "conv1d", configs.Conv1dConfig(patience=10), "seed001",
        "162-dim ZCR/chroma/MFCC/RMS/mel vector; Conv1D 256-256-128-64, dense 32",
        "reference 001",
    ),
    "resnet_mlp": _neural(
        "resnet_mlp", configs.ResNetMlpConfig(), "seed002",
        "45-feature summary, SelectKBest(40) in-fold, residual dense blocks 128/64/32",
        "reference 002",
    ),
    "mlp": _neural(
        "mlp", configs.MlpConfig(), "seed003",
        "MFCC+deltas+spectral+chroma frame statistics (340); MLP 512-256-128, BN, dropout",
        "reference 003",
    ),
    "cnn_gru_attention": _neural(
        "cnn_gru_attention", configs.CnnGruAttentionConfig(), "seed004",
        "40 MFCC x 200 frames; two Conv1D, BiGRU, attention pooling, dense",
        "reference 004",
    ),
    "crnn": _neural(
        "crnn", CrnnConfig(**CRNN_REGISTRY), "logmel",
        "ours: silence-trimmed log-mel 64 x 2.56 s; 2-D CNN, BiGRU, attentive statistics "
        "pooling; SpecAugment, mixup, label smoothing, one-cycle cosine LR",
        "ours", trim=True,
    ),
}


def _build_fusion(cfg: ModelParams, *, n_classes: int, trainer: NetTrainer, seed: int = 0,
                  on_epoch: Any = None, validated_c: bool = False) -> Model:
    """CRNN on log-mel (input 0) + ComParE logistic regression (input 1), equal weights.
    ``cfg`` is the CRNN's config; a :class:`FusionConfig`'s ``C`` goes to the logistic
    regression (with ``validated_c``, C is chosen on the validation speakers as in
    ``compare_lrcv``)."""
    net_cfg = cfg.crnn() if isinstance(cfg, FusionConfig) else cfg
    assert isinstance(net_cfg, CrnnConfig)
    net = _build_torch("crnn", net_cfg, n_classes=n_classes, trainer=trainer, seed=seed,
                       on_epoch=on_epoch)
    lr = (_build_classical("logreg_cv", configs.LogregCvConfig(), n_classes=n_classes, seed=seed)
          if validated_c else
          _build_classical("logreg", LogregConfig(C=getattr(cfg, "C", 1.0)),
                           n_classes=n_classes, seed=seed))
    return FusionModel([(net, 0), (lr, 1)], [0.5, 0.5])


MODELS["fusion"] = ModelSpec(
    "fusion", "logmel", _build_fusion, Family.NEURAL,
    "ours: crnn (silence-trimmed log-mel) + compare_logreg, probabilities averaged",
    FusionConfig(**CRNN_REGISTRY), origin="ours", trim=True, extra_inputs=(Input("compare"),),
)
MODELS["crnn_cmvn"] = ModelSpec(
    "crnn_cmvn", "logmel", partial(_build_torch, "crnn"), Family.NEURAL,
    "ours: the crnn on per-utterance mean/variance-normalised log-mel (each band minus its "
    "mean over time, over its std): gain-invariant input", CrnnConfig(**CRNN_REGISTRY),
    feature_params={"utt_norm": "cmvn"}, origin="ours", trim=True,
)


def _ecapa_on(name: str, utt_norm: str | None, input_text: str) -> ModelSpec:
    """The small ECAPA-TDNN with the cosine recipe on the log-mel normalised per utterance by
    ``utt_norm`` (``None``: the raw log-mel)."""
    return ModelSpec(
        name, "logmel", partial(_build_torch, "ecapa"), Family.NEURAL, f"ours: {input_text}",
        EcapaConfig(schedule=Schedule.COSINE, n_frames=256),
        feature_params={"utt_norm": utt_norm} if utt_norm else {}, origin="ours", trim=True,
    )


MODELS["ecapa_cmvn"] = _ecapa_on(
    "ecapa_cmvn", "cmvn", "a small ECAPA-TDNN (1-D dilated SE-Res2 blocks, 0.23 s receptive "
    "field, attentive statistics) on per-utterance mean/variance-normalised log-mel")
MODELS["ecapa_gain"] = _ecapa_on(
    "ecapa_gain", "gain", "ecapa_cmvn's network on the log-mel minus its mean over all bands "
    "and frames (gain-invariant; spectral tilt and each band's level kept)")
MODELS["ecapa_cmn"] = _ecapa_on(
    "ecapa_cmn", "cmn", "ecapa_cmvn's network on the log-mel with each band's mean over time "
    "removed, not its scale (gain-invariant; each band's dynamic range kept)")
MODELS["ecapa"] = _ecapa_on(
    "ecapa", None, "ecapa_cmvn's network on the raw log-mel (no per-utterance normalisation: "
    "level and spectral tilt kept), for --adapt speaker, which normalises per speaker instead")
MODELS["reslstm_cmvn"] = ModelSpec(
    "reslstm_cmvn", "mfcc_chroma", partial(_build_torch, "reslstm"), Family.NEURAL,
    "ours: residual BiLSTM blocks with soft attention pooling on 20 MFCC + deltas + 12 chroma "
    "frames, each column normalised per utterance (gain-invariant input)",
    ResLstmConfig(schedule=Schedule.COSINE, n_frames=256),
    feature_params={"utt_norm": "cmvn"}, origin="ours", trim=True,
)
MODELS["reslstm_logmel"] = ModelSpec(
    "reslstm_logmel", "logmel", partial(_build_torch, "reslstm"), Family.NEURAL,
    "ours: the residual BiLSTM with soft attention on per-utterance mean/variance-normalised "
    "log-mel (the input of crnn_cmvn and ecapa_cmvn, so it can join their ensemble), 4 frames "
    "(40 ms) per LSTM step",
    ResLstmConfig(schedule=Schedule.COSINE, n_frames=256, stack=4),
    feature_params={"utt_norm": "cmvn"}, origin="ours", trim=True,
)
MODELS["fusion_lrcv"] = ModelSpec(
    "fusion_lrcv", "logmel", partial(_build_fusion, validated_c=True), Family.NEURAL,
    "ours: crnn + compare_lrcv (C chosen on validation speakers), probabilities averaged",
    CrnnConfig(**CRNN_REGISTRY), origin="ours", trim=True,
    extra_inputs=(Input("compare"),),
)


# C is chosen on the validation speakers: without them they fail after extraction
for _name in ("compare_lrcv", "fusion_lrcv"):
    MODELS[_name] = dataclasses.replace(MODELS[_name], needs_validation=True)


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


def validation_matters(name: str) -> bool:
    """Does holding out validation speakers change what model ``name`` learns? Not for a
    classical model, which trains on them too (only ``compare_lrcv`` chooses C on them
    first): its CV runs with and without them are one recipe, and were called two (own-data
    QA, stop 33). Unknown names (fusions, ensembles): yes."""
    spec = MODELS.get(name)
    return spec is None or spec.family is Family.NEURAL or spec.needs_validation


def validate_params(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` for model ``name``, typed; ConfigError for an unknown key or a bad value
    (and ValueError for an unknown model). Call it before extracting any feature."""
    spec = get_model_spec(name)
    typed = spec.validate(params)
    if typed.get("adversary", 0) and getattr(spec.builder, "func", spec.builder) is _build_fusion:
        raise ConfigError(f"adversary trains one network on its own; '{name}' trains its "
                          "network inside a fusion (use the network's own model, e.g. "
                          "crnn_cmvn, then `emovox fuse`)")
    if "adversary_on" in typed and not typed.get("adversary", 0):
        raise ConfigError("adversary_on says what the adversary names; it needs adversary=W "
                          "> 0 to train one")
    return typed


__all__ = [
    "MODELS", "Family", "Input", "Model", "ModelParams", "ModelSpec", "NetTrainer", "TrainConfig",
    "count_parameters", "get_model_spec", "validate_params",
]
