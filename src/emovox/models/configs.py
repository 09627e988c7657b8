"""The frozen config dataclasses of the networks and classical models: their fields are the
``-p KEY=VALUE`` keys, their defaults the models' defaults, written once.

Kept apart from the architectures (and free of torch and scikit-learn) so that the registry
and parameter validation load in a blink: a bad ``-p`` fails before any heavy import.
Each network module re-exports its config (``emovox.models.crnn.CrnnConfig``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import Enum

from emovox.errors import ConfigError
from emovox.models.params import Loss, ModelParams, TrainConfig


@dataclass(frozen=True)
class LogMelRecipe(TrainConfig):
    """The training recipe our log-mel networks share (CRNN, ECAPA-TDNN): AdamW, label
    smoothing, SpecAugment and mixup, early stopping on validation UA."""

    # training (overrides of TrainConfig defaults)
    #: peak learning rate of AdamW
    lr: float = 2e-3
    #: AdamW decoupled weight decay
    weight_decay: float = 1e-2
    #: label smoothing of the cross-entropy targets (fraction of mass spread, 0..1)
    label_smoothing: float = 0.1
    #: epochs without validation-UA gain before early stopping
    patience: int = 8
    #: SpecAugment time/frequency masks on training batches
    specaugment: bool = True
    #: mixup Beta(alpha, alpha) parameter (0 = no mixup)
    mixup_alpha: float = 0.2


@dataclass(frozen=True)
class CrnnConfig(LogMelRecipe):
    """The CRNN's training recipe and network size (``-p`` keys of ``crnn``)."""

    # training (overrides of TrainConfig defaults)
    #: passes over the training clips (upper bound with early stopping)
    epochs: int = 40
    # network
    #: output channels of the 2-D conv blocks (one block each; each halves the mel axis)
    channels: tuple[int, ...] = (16, 32, 64, 128)
    #: time pooling factor of each conv block (frames; product = time reduction)
    time_pools: tuple[int, ...] = (2, 2, 2, 1)
    #: width of the per-frame projection fed to the GRU (units)
    d_model: int = 128
    #: GRU units per direction
    gru_hidden: int = 96
    #: hidden size of the attention scorer (units)
    attention_dim: int = 64
    #: width of the hidden dense layer of the head (units)
    dense: int = 128
    #: dropout probability of the projection and the head (0..1)
    dropout: float = 0.3
    #: channel (Dropout2d) probability in the conv blocks (0..1)
    conv_dropout: float = 0.1
    #: length of the optional utterance-level auxiliary vector (0 = none)
    n_aux: int = 0


@dataclass(frozen=True)
class EcapaConfig(LogMelRecipe):
    """A small ECAPA-TDNN's training recipe and size (``-p`` keys of ``ecapa``); the training
    recipe is the CRNN's so the two compare like for like."""

    # training (overrides of TrainConfig defaults)
    #: passes over the training clips (upper bound with early stopping)
    epochs: int = 30
    # network
    #: channels of every TDNN / SE-Res2 block
    channels: int = 96
    #: time stride of the first convolution (frames; 2 = 20 ms frames, half the CPU cost)
    stride: int = 2
    #: dilation of each SE-Res2 block (frames; one block each)
    dilations: tuple[int, ...] = (2, 3, 4)
    #: Res2Net scale: the block's channels are split into this many groups
    scale: int = 4
    #: squeeze-excitation bottleneck width (units)
    se_dim: int = 32
    #: hidden size of the attention scorer (units)
    attention_dim: int = 64
    #: utterance embedding width before the classifier (units)
    embedding: int = 128
    #: dropout probability before the classifier (0..1)
    dropout: float = 0.3


@dataclass(frozen=True)
class ResLstmConfig(LogMelRecipe):
    """The residual-BiLSTM-with-soft-attention network's size (``-p`` keys of ``reslstm``);
    the training recipe is the CRNN's (AdamW, one-cycle cosine, label smoothing, SpecAugment,
    mixup, early stopping on validation UA) so the three compare like for like."""

    # training (overrides of TrainConfig defaults)
    #: passes over the training clips (upper bound with early stopping)
    epochs: int = 30
    # network
    #: frames merged into one LSTM step (their features concatenated; 2 = 20 ms steps at a
    #: 10 ms hop: half the sequential LSTM work)
    stack: int = 2
    #: LSTM units per direction (the residual stream is twice this wide)
    hidden: int = 128
    #: residual BiLSTM blocks (each: LayerNorm -> BiLSTM -> dropout, plus its input)
    blocks: int = 2
    #: hidden size of the soft-attention scorer (units)
    attention_dim: int = 64
    #: dropout probability of the input projection, each block's output and the head (0..1)
    dropout: float = 0.3


class Pooling(str, Enum):
    MEAN = "mean"  #: mean of the BiLSTM outputs over time
    LAST = "last"  #: the BiLSTM output at the last time step


@dataclass(frozen=True)
class CnnBiLstmConfig(TrainConfig):
    """Reference project 000's recipe (``-p`` keys of ``cnn_bilstm``)."""

    # training (overrides of TrainConfig defaults)
    #: passes over the training clips (upper bound with early stopping)
    epochs: int = 60
    #: AdamW decoupled weight decay (0: plain Adam as in the reference project)
    weight_decay: float = 0.0
    #: training loss
    loss: Loss = Loss.FOCAL
    #: ReduceLROnPlateau epochs without validation-UA gain before reducing
    lr_plateau_patience: int = 5
    # network
    #: output channels of the Conv1D blocks over time (each block halves time)
    channels: tuple[int, ...] = (64, 128, 128)
    #: Conv1D kernel length (frames)
    kernel_size: int = 5
    #: LSTM units per direction
    lstm_hidden: int = 64
    #: stacked bidirectional LSTM layers
    lstm_layers: int = 2
    #: width of the hidden dense layer of the head (units)
    dense: int = 128
    #: dropout probability in conv blocks, between LSTM layers and in the head (0..1)
    dropout: float = 0.3
    #: how the BiLSTM outputs are pooled over time
    pooling: Pooling = Pooling.MEAN


@dataclass(frozen=True)
class Conv1dConfig(TrainConfig):
    """Reference project 001's recipe (``-p`` keys of ``conv1d``)."""

    # training (overrides of TrainConfig defaults)
    #: passes over the training clips (upper bound with early stopping)
    epochs: int = 50
    #: clips per optimisation step
    batch_size: int = 64
    #: AdamW decoupled weight decay (0: plain Adam as in the reference project)
    weight_decay: float = 0.0
    #: ReduceLROnPlateau factor the LR is multiplied by when validation UA stalls
    lr_plateau_factor: float = 0.4
    #: ReduceLROnPlateau epochs without validation-UA gain before reducing
    lr_plateau_patience: int = 2
    # network
    #: output channels of the Conv1D blocks (each followed by a /2 max-pool)
    channels: tuple[int, ...] = (256, 256, 128, 64)
    #: Conv1D kernel length (feature positions)
    kernel_size: int = 5
    #: width of the hidden dense layer (units)
    dense: int = 32
    #: dropout probability before the last conv block (0..1)
    conv_dropout: float = 0.2
    #: dropout probability in the head (0..1)
    dropout: float = 0.3


@dataclass(frozen=True)
class ResNetMlpConfig(TrainConfig):
    """Reference project 002's recipe (``-p`` keys of ``resnet_mlp``)."""

    # training (overrides of TrainConfig defaults)
    #: passes over the training clips (upper bound with early stopping)
    epochs: int = 100
    #: AdamW decoupled weight decay (the reference project's L2 1e-3)
    weight_decay: float = 1e-3
    #: epochs without validation-UA gain before early stopping
    patience: int = 15
    #: SelectKBest(f_classif) columns kept, fitted on the training fold (0 = keep all)
    select_k: int = 40
    # network
    #: widths of the residual dense blocks (units); the first is also the stem's width
    widths: tuple[int, ...] = (128, 64, 32)
    #: dropout probability inside the blocks and before the head (0..1)
    dropout: float = 0.3


@dataclass(frozen=True)
class MlpConfig(TrainConfig):
    """Reference project 003's recipe (``-p`` keys of ``mlp``)."""

    # training (overrides of TrainConfig defaults)
    #: passes over the training clips (upper bound with early stopping)
    epochs: int = 100
    #: epochs without validation-UA gain before early stopping
    patience: int = 15
    # network
    #: widths of the hidden layers (units)
    hidden: tuple[int, ...] = (512, 256, 128)
    #: dropout probability after each hidden layer (0..1; one per layer)
    dropouts: tuple[float, ...] = (0.5, 0.5, 0.4)


@dataclass(frozen=True)
class CnnGruAttentionConfig(TrainConfig):
    """Reference project 004's recipe (``-p`` keys of ``cnn_gru_attention``)."""

    # training (overrides of TrainConfig defaults)
    #: passes over the training clips (upper bound with early stopping)
    epochs: int = 60
    #: AdamW decoupled weight decay (0: plain Adam as in the reference project)
    weight_decay: float = 0.0
    # network
    #: output channels of the Conv1D blocks over time (each block halves time)
    channels: tuple[int, ...] = (64, 128)
    #: Conv1D kernel length (frames)
    kernel_size: int = 3
    #: GRU units per direction when bidirectional (the one-directional GRU gets twice as many)
    gru_hidden: int = 64
    #: bidirectional GRU (False: one direction with 2 x gru_hidden units)
    bidirectional: bool = True
    #: hidden size of the attention scorer (units)
    attention_dim: int = 64
    #: width of the hidden dense layer of the head (units)
    dense: int = 64
    #: dropout probability in the head (0..1)
    dropout: float = 0.3


@dataclass(frozen=True)
class FusionConfig(CrnnConfig):
    """``-p`` keys of ``fusion``: the CRNN member's keys plus the logistic regression's C."""

    #: inverse L2 strength of the ComParE logistic-regression member (dimensionless, > 0)
    C: float = 1.0  # noqa: N815 - scikit-learn's name

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive(self, "C")

    def crnn(self) -> CrnnConfig:
        """The CRNN member's config (every field but ``C``)."""
        return CrnnConfig(**{k: getattr(self, k) for k in (f.name for f in fields(CrnnConfig))})


def _positive(cfg: ModelParams, *keys: str) -> None:
    """ConfigError unless every field ``keys`` of ``cfg`` is > 0 (research re-check, stop
    32: ``C=0`` failed in scikit-learn after the features were extracted)."""
    for key in keys:
        if not getattr(cfg, key) > 0:
            raise ConfigError(f"{key} must be > 0, got {getattr(cfg, key)}")


@dataclass(frozen=True)
class LogregConfig(ModelParams):
    """``-p`` keys of the logistic-regression baselines (``egemaps_logreg``, ...)."""

    #: inverse L2 regularisation strength (dimensionless, > 0; larger = weaker penalty)
    C: float = 1.0  # noqa: N815 - scikit-learn's name
    #: maximum L-BFGS iterations
    max_iter: int = 3000

    def __post_init__(self) -> None:
        _positive(self, "C", "max_iter")


@dataclass(frozen=True)
class LogregCvConfig(ModelParams):
    """``-p`` keys of ``compare_lrcv``: C chosen on the validation speakers."""

    #: candidate values of C (inverse L2 strength), tried in order; ties pick the smaller
    grid: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
    #: maximum L-BFGS iterations of each fit
    max_iter: int = 3000

    def __post_init__(self) -> None:
        _positive(self, "max_iter")
        if not self.grid or min(self.grid) <= 0:
            raise ConfigError(f"grid must hold values of C > 0, got {self.grid}")


class Gamma(str, Enum):
    """scikit-learn's named RBF kernel widths."""

    SCALE = "scale"  #: 1 / (n_features * X.var())
    AUTO = "auto"  #: 1 / n_features


@dataclass(frozen=True)
class SvmConfig(ModelParams):
    """``-p`` keys of the RBF-SVM baseline (``egemaps_svm``)."""

    #: penalty of margin violations (dimensionless, > 0)
    C: float = 10.0  # noqa: N815 - scikit-learn's name
    #: RBF kernel coefficient (1 / feature-space distance squared), or scale / auto
    gamma: float | Gamma = Gamma.SCALE

    def __post_init__(self) -> None:
        _positive(self, "C")
        if not isinstance(self.gamma, Gamma) and not self.gamma > 0:
            raise ConfigError(f"gamma must be > 0, scale or auto, got {self.gamma}")
