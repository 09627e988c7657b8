"""The frozen config dataclasses of the networks and classical models: their fields are the
``-p KEY=VALUE`` keys, their defaults the models' defaults, written once.

Kept apart from the architectures (and free of torch and scikit-learn) so that the registry
and parameter validation load in a blink: a bad ``-p`` fails before any heavy import.
Each network module re-exports its config (``emovox.models.crnn.CrnnConfig``).

A network's config also says what its ``build_net`` refuses beyond the parameters' own
validation (:meth:`NetConfig.check_net`: sizes, the input shape): ``build_net`` calls it
before it builds anything, and so does the torch-free load-time check of a model folder
(:func:`emovox.models.netcheck.check_network_params`), so that the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from enum import Enum

from emovox.errors import ConfigError
from emovox.models.params import Loss, ModelParams, TrainConfig


def sequence_shape(name: str, input_shape: tuple[int, ...], min_frames: int) -> tuple[int, int]:
    """Check a time-major ``(T, F)`` input shape for a network that pools time
    ``min_frames``-fold; returns ``(T, F)``."""
    if len(input_shape) != 2:
        raise ValueError(f"{name} expects input_shape (T, F), got {input_shape}")
    t, f = input_shape
    if t < min_frames:
        raise ValueError(f"{name} needs T >= {min_frames}, got T={t}")
    return t, f


def _rank(name: str, input_shape: tuple[int, ...], rank: int, form: str) -> None:
    """ValueError unless ``input_shape`` has ``rank`` axes (``form``: their names)."""
    if len(input_shape) != rank:
        raise ValueError(f"{name} expects input_shape {form}, got {input_shape}")


def _sizes(cfg: ModelParams, low: int, *keys: str) -> None:
    """ValueError unless every field ``keys`` of ``cfg`` (a number or a list) is >= ``low``:
    a width, a count or a kernel torch refuses (or builds into a network of empty layers)."""
    for key in keys:
        value = getattr(cfg, key)
        if any(v < low for v in (value if isinstance(value, tuple) else (value,))):
            raise ValueError(f"{key} must be >= {low}, got {value}")


def _probabilities(cfg: ModelParams, *keys: str) -> None:
    """ValueError unless every field ``keys`` of ``cfg`` (a number or a list) is in 0..1."""
    for key in keys:
        value = getattr(cfg, key)
        if any(not 0.0 <= v <= 1.0 for v in (value if isinstance(value, tuple) else (value,))):
            raise ValueError(f"{key} must be a probability (0..1), got {value}")


def _positive_shape(name: str, input_shape: tuple[int, ...]) -> None:
    if any(n < 1 for n in input_shape):
        raise ValueError(f"{name} needs input_shape of positive sizes, got {input_shape}")


@dataclass(frozen=True)
class NetConfig(TrainConfig):
    """A network's config: :class:`TrainConfig` plus the network's own fields."""

    def check_net(self, input_shape: Sequence[int]) -> None:
        """Raise ValueError for what ``build_net`` refuses for these parameters and
        ``input_shape`` before it builds anything (their values are already valid each)."""
        raise NotImplementedError

    def check_params(self) -> None:
        """Raise ValueError for what :meth:`check_net` refuses from the parameters alone
        (values valid each, together not): :meth:`ModelSpec.validate
        <emovox.models.base.ModelSpec.validate>` calls it, so ``-p`` fails before feature
        extraction (review, stop 52); ``check_net`` calls it too. Nothing by default."""


@dataclass(frozen=True)
class LogMelRecipe(NetConfig):
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

    def check_net(self, input_shape: Sequence[int]) -> None:
        shape = tuple(input_shape)
        _rank("crnn", shape, 2, "(T, M)")
        t, m = shape
        reduction = 1
        for p in self.time_pools:
            reduction *= p
        if t < reduction:
            raise ValueError(f"crnn needs T >= {reduction}, got T={t}")
        if len(self.time_pools) != len(self.channels):
            raise ValueError(f"{len(self.channels)} conv blocks but {len(self.time_pools)} "
                             "time pools")
        if m < 2 ** len(self.channels):
            raise ValueError(f"crnn needs at least {2 ** len(self.channels)} mel bands, got {m}")
        _sizes(self, 1, "channels", "time_pools", "d_model", "gru_hidden", "attention_dim",
               "dense")
        _sizes(self, 0, "n_aux")
        _probabilities(self, "dropout", "conv_dropout")
        _positive_shape("crnn", shape)


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

    def check_net(self, input_shape: Sequence[int]) -> None:
        shape = tuple(input_shape)
        _rank("ecapa", shape, 2, "(T, M)")
        _sizes(self, 1, "channels", "stride", "dilations", "scale", "se_dim", "attention_dim",
               "embedding")
        if not self.dilations:
            raise ValueError("ecapa needs at least one dilation (one SE-Res2 block each)")
        if self.channels % self.scale:
            raise ValueError(f"channels ({self.channels}) must be divisible by scale "
                             f"({self.scale})")
        _probabilities(self, "dropout")
        _positive_shape("ecapa", shape)


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

    def check_net(self, input_shape: Sequence[int]) -> None:
        if self.stack < 1 or self.hidden < 1 or self.blocks < 1:
            raise ValueError(f"stack, hidden and blocks must be >= 1, got {self.stack}, "
                             f"{self.hidden}, {self.blocks}")
        shape = tuple(input_shape)
        sequence_shape("reslstm", shape, self.stack)
        _sizes(self, 1, "attention_dim")
        _probabilities(self, "dropout")
        _positive_shape("reslstm", shape)


class Pooling(str, Enum):
    MEAN = "mean"  #: mean of the BiLSTM outputs over time
    LAST = "last"  #: the BiLSTM output at the last time step


@dataclass(frozen=True)
class CnnBiLstmConfig(NetConfig):
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

    def check_net(self, input_shape: Sequence[int]) -> None:
        _conv_sequence_check(self, "cnn_bilstm", input_shape, "lstm_hidden", "lstm_layers")


@dataclass(frozen=True)
class Conv1dConfig(NetConfig):
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

    def check_net(self, input_shape: Sequence[int]) -> None:
        shape = tuple(input_shape)
        _rank("conv1d", shape, 1, "(D,)")
        _sizes(self, 1, "channels", "kernel_size", "dense")
        if self.kernel_size % 2 == 0:  # "same" padding: the flattened length assumes it
            raise ValueError(f"conv1d needs an odd kernel_size, got {self.kernel_size}")
        _probabilities(self, "conv_dropout", "dropout")
        _positive_shape("conv1d", shape)


@dataclass(frozen=True)
class ResNetMlpConfig(NetConfig):
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

    def check_net(self, input_shape: Sequence[int]) -> None:
        shape = tuple(input_shape)
        _rank("resnet_mlp", shape, 1, "(D,)")
        if not self.widths:
            raise ValueError("resnet_mlp needs at least one block width")
        _sizes(self, 1, "widths")
        _probabilities(self, "dropout")
        _positive_shape("resnet_mlp", shape)


@dataclass(frozen=True)
class MlpConfig(NetConfig):
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

    def check_params(self) -> None:
        # one dropout rate per hidden layer; checked at -p validation too (ModelSpec.validate):
        # build_net refused it only after the features were extracted, naming neither
        # option (review, stop 52)
        if len(self.hidden) != len(self.dropouts):
            n, k = len(self.hidden), len(self.dropouts)
            example = ",".join(["0.3"] * max(n, 1))
            raise ValueError(
                f"-p hidden has {n} layer{'' if n == 1 else 's'} but -p dropouts has {k} "
                f"rate{'' if k == 1 else 's'}: give one dropout rate per hidden layer, "
                f"e.g. -p dropouts=[{example}]")

    def check_net(self, input_shape: Sequence[int]) -> None:
        shape = tuple(input_shape)
        _rank("mlp", shape, 1, "(D,)")
        self.check_params()
        _sizes(self, 1, "hidden")
        _probabilities(self, "dropouts")
        _positive_shape("mlp", shape)


@dataclass(frozen=True)
class CnnGruAttentionConfig(NetConfig):
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

    def check_net(self, input_shape: Sequence[int]) -> None:
        _conv_sequence_check(self, "cnn_gru_attention", input_shape, "gru_hidden",
                             "attention_dim")


def _conv_sequence_check(cfg: ModelParams, name: str, input_shape: Sequence[int],
                         *sizes: str) -> None:
    """``check_net`` of a Conv1D stack (each block halves time) under a recurrent head:
    enough frames, ``channels``/``kernel_size``/``dense`` and ``sizes`` >= 1, ``dropout``
    in 0..1."""
    shape = tuple(input_shape)
    sequence_shape(name, shape, 2 ** len(cfg.channels))
    _sizes(cfg, 1, "channels", "kernel_size", *sizes, "dense")
    _probabilities(cfg, "dropout")
    _positive_shape(name, shape)


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
