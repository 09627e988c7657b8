"""What a network's ``build_net`` would refuse, decided without torch: the one check of a
model folder's ``network`` section (``module``, ``params``, ``input_shape``) that both serving
backends run at load (:func:`emovox.artifact.read_artifact`), so that the PyTorch backend,
which builds the network from it, and the ONNX backend, which runs the exported graph and
never builds anything, refuse the same folders with the same message (code review: ONNX
answered with ``network.params`` PyTorch refused).

:func:`check_network_params` validates a network's parameters with its config class
(:mod:`emovox.models.configs`: unknown keys and bad values are a
:class:`~emovox.errors.ConfigError`, as ``build_net`` raises them), then what its
``build_net`` refuses for the sizes and the input shape with the config's
:meth:`~emovox.models.configs.NetConfig.check_net`, which that ``build_net`` itself calls
first (code review: a CRNN's time pools pooling more frames than ``T``, a ResLSTM's
``stack=0``, a vector network given a sequence shape passed here and failed in PyTorch);
an ensemble's layout with :func:`ensemble_layout`, which
:func:`emovox.models.ensemble.build_net` itself uses.
Importing this module imports neither torch nor scikit-learn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from emovox.errors import ConfigError
from emovox.models.configs import (
    CnnBiLstmConfig,
    CnnGruAttentionConfig,
    Conv1dConfig,
    CrnnConfig,
    EcapaConfig,
    MlpConfig,
    NetConfig,
    ResLstmConfig,
    ResNetMlpConfig,
)
from emovox.models.params import TrainConfig

__all__ = ["ENSEMBLE_MODULE", "NETWORK_MODULES", "EnsembleLayout", "check_network_params",
           "ensemble_layout", "functional_dim"]

#: the module of :func:`emovox.models.ensemble.build_net` (several networks as one)
ENSEMBLE_MODULE = "emovox.models.ensemble"
_PREFIX = "emovox.models."
#: every single network's module and the config its ``build_net`` reads its params with (a
#: test checks that every ``emovox.models`` module with a ``build_net`` is listed)
NETWORK_CONFIGS: dict[str, type[NetConfig]] = {
    f"{_PREFIX}cnn_bilstm": CnnBiLstmConfig,
    f"{_PREFIX}cnn_gru_attention": CnnGruAttentionConfig,
    f"{_PREFIX}conv1d": Conv1dConfig,
    f"{_PREFIX}crnn": CrnnConfig,
    f"{_PREFIX}ecapa": EcapaConfig,
    f"{_PREFIX}mlp": MlpConfig,
    f"{_PREFIX}reslstm": ResLstmConfig,
    f"{_PREFIX}resnet_mlp": ResNetMlpConfig,
}
#: the modules a model folder's ``network.module`` may name
NETWORK_MODULES: frozenset[str] = frozenset({*NETWORK_CONFIGS, ENSEMBLE_MODULE})
#: an ensemble's own parameters (its training keys are accepted too, and ignored)
_ENSEMBLE_KEYS = ("members", "inputs", "functional")


@dataclass(frozen=True)
class EnsembleLayout:
    """How an ensemble's input ``(T, n_blocks * width [+ dim [+ 1]])`` is read: member ``k``
    reads block ``blocks[k]`` (``width`` columns each); a functional member the next ``dim``
    columns (0: none), its narrow-band alternative their ``narrow`` columns."""

    blocks: tuple[int, ...]
    width: int
    dim: int
    narrow: tuple[int, ...]


def check_network_params(module: str, params: Mapping[str, Any],
                         input_shape: Sequence[int]) -> None:
    """Raise what ``build_net`` of ``module`` raises for ``params`` before it builds anything:
    :class:`~emovox.errors.ConfigError` for an unknown key or a bad value (its config's
    message), ValueError for a module that builds no network, for sizes or an
    ``input_shape`` its network refuses (:meth:`~emovox.models.configs.NetConfig.check_net`)
    or an ensemble whose members, ``inputs`` or ``functional`` do not fit ``input_shape``."""
    if not isinstance(params, Mapping):
        raise ValueError(f"params must be an object, got {type(params).__name__}")
    if module == ENSEMBLE_MODULE:
        train = {k: v for k, v in params.items() if k not in _ENSEMBLE_KEYS}
        valid = (*_ENSEMBLE_KEYS, *TrainConfig.keys())
        unknown = sorted(str(k) for k in train if k not in valid)
        if unknown:
            raise ConfigError(f"unknown parameter {unknown[0]!r} for the ensemble; valid "
                              f"keys: {', '.join(_ENSEMBLE_KEYS)} (and training keys)")
        TrainConfig.from_params(train)
        ensemble_layout(input_shape, params.get("members", ()), params.get("inputs"),
                        params.get("functional"))
        return
    config = NETWORK_CONFIGS.get(module)
    if config is None:
        raise ValueError(f"module {module!r} builds no network")
    config.from_params(params).check_net(input_shape)


def ensemble_layout(input_shape: Sequence[int], members: Any, inputs: Any,
                    functional: Any) -> EnsembleLayout:
    """The layout of an ensemble of ``members`` (each ``{"module": ..., "params": {...}}``,
    its params checked by :func:`check_network_params`) for ``input_shape``; ValueError (or
    a member's ConfigError) when they do not make one."""
    dim, narrow = functional_dim(functional)
    if not isinstance(members, list | tuple):
        raise ValueError(f"members must be a list, got {type(members).__name__}")
    if len(members) + (dim > 0) < 2:
        raise ValueError("an ensemble needs at least two members")
    if len(input_shape) != 2:
        raise ValueError(f"ensemble expects input_shape (T, M), got {tuple(input_shape)}")
    blocks = list(inputs) if isinstance(inputs, list | tuple) else (
        [0] * len(members) if inputs is None else None)
    if blocks is None or not all(isinstance(b, int) and not isinstance(b, bool)
                                 for b in blocks):
        raise ValueError(f"inputs must be a list of block numbers, got {inputs!r:.60}")
    n_blocks = max(blocks) + 1 if blocks else 1
    cols = input_shape[1] - dim - (1 if narrow else 0)
    if (not members or len(blocks) != len(members) or cols <= 0 or cols % n_blocks
            or set(blocks) != set(range(n_blocks))):
        raise ValueError(f"inputs {blocks} do not split input_shape {tuple(input_shape)} "
                         "into blocks every one of which is read")
    width = cols // n_blocks
    for k, m in enumerate(members):
        if not (isinstance(m, dict) and isinstance(m.get("params", {}), dict)):
            raise ValueError(f"member {k} must be {{'module': ..., 'params': {{...}}}}, got "
                             f"{str(m)[:80]!r}")  # it was an AttributeError (code review, 47)
        module = str(m.get("module", ""))
        if not module.startswith(_PREFIX) or module == ENSEMBLE_MODULE:
            raise ValueError(f"refusing to build ensemble member from module {module!r}")
        if module not in NETWORK_CONFIGS:
            raise ValueError(f"member {k}: module {module!r} builds no network")
        try:
            check_network_params(module, m.get("params", {}), (input_shape[0], width))
        except (ConfigError, ValueError) as exc:  # a size too: which member says it
            raise type(exc)(f"member {k} ({module.removeprefix(_PREFIX)}): {exc}") from None
    return EnsembleLayout(tuple(blocks), width, dim, tuple(narrow))


def functional_dim(functional: Any) -> tuple[int, list[int]]:
    """``functional["dim"]`` and ``functional.get("narrow", [])`` checked (``(0, [])``
    without a functional member)."""
    if functional is None:
        return 0, []
    if not isinstance(functional, dict):
        raise ValueError(f"functional must be {{'dim': D[, 'narrow': columns]}}, got "
                         f"{functional!r:.60}")
    dim, narrow = functional.get("dim"), functional.get("narrow", [])
    if (not set(functional) <= {"dim", "narrow"} or not isinstance(dim, int)
            or isinstance(dim, bool) or dim < 1):
        raise ValueError(f"functional must be {{'dim': D[, 'narrow': columns]}} with D >= 1, "
                         f"got {functional!r}")
    ok = (isinstance(narrow, list)
          and all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c < dim
                  for c in narrow)
          and len(set(narrow)) == len(narrow) and ("narrow" not in functional or narrow))
    if not ok:
        raise ValueError(f"functional 'narrow' must list distinct columns of 0..{dim - 1}, "
                         f"got {narrow!r}")
    return dim, list(narrow)
