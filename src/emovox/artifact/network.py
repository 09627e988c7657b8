"""A network folder's ``network`` section checked at load, the same way for both backends.

The PyTorch backend builds the network from ``model.json``'s ``network`` section
(``module``, ``params``, ``input_shape``) and loads the weights into it; the ONNX backend runs
``model.onnx`` and never reads that section. Two ways the same folder answered differently
(code review): ``network.params`` that PyTorch refuses (an unknown key, a value of another
type) were served by ONNX, and a valid edit the weights still fit (an ECAPA's dilations)
changed PyTorch's answers but not ONNX's, without a word. So :func:`check_network`, called
by :func:`emovox.artifact.read_artifact` for every network folder whichever backend reads it,

* validates the section with :func:`emovox.models.netcheck.check_network_params` (what
  ``build_net`` refuses, decided without torch), and
* compares it with the SHA-256 of its canonical JSON (:func:`network_digest`) that the
  writer recorded in ``weights.safetensors``' header (:data:`NETWORK_DIGEST_KEY`; the
  weights file is itself covered by ``model.json``'s ``digests``, which cannot cover
  ``model.json``). A folder whose weights record none (written before this check, the
  bundled models among them) is read as before, with a debug note; the next rewrite of
  such a folder (``calibrate``, ``export``) records the section it finds, so a hand edit
  made before then is recorded as the model's own (nothing recorded the original).

Only what builds the network is hashed: ``network.train`` and ``network.history`` document
the training, and ``preprocess`` is applied by NumPy, the same for both backends (its
fields are validated one by one in :mod:`emovox.artifact.meta`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from emovox.artifact.meta import ArtifactError, ArtifactMeta, NetworkState, json_default
from emovox.artifact.paths import MODEL_JSON, WEIGHTS_FILE
from emovox.errors import ConfigError

log = logging.getLogger(__name__)

__all__ = ["NETWORK_DIGEST_KEY", "check_network", "network_digest", "weights_metadata"]

#: the key of ``weights.safetensors``' header metadata that holds :func:`network_digest`
NETWORK_DIGEST_KEY = "emovox.network_sha256"


def network_digest(net: NetworkState) -> str:
    """SHA-256 (hex) of the canonical JSON of what builds the network: ``module``,
    ``params`` and ``input_shape``, as ``model.json`` holds them (keys sorted, no spaces; a
    value is first written and read back as JSON, so a tuple and its list, an enum and its
    value hash alike)."""
    built: dict[str, Any] = {"module": net.module, "params": net.params,
                             "input_shape": list(net.input_shape)}
    as_read = json.loads(json.dumps(built, default=json_default))
    text = json.dumps(as_read, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def weights_metadata(meta: ArtifactMeta) -> dict[str, str] | None:
    """The header metadata ``weights.safetensors`` is written with for ``meta``: the digest
    of its network section (None for a model without one)."""
    if meta.network is None:
        return None
    return {NETWORK_DIGEST_KEY: network_digest(meta.network)}


def check_network(path: Path, meta: ArtifactMeta, metadata: dict[str, str] | None) -> None:
    """Raise :class:`ArtifactError` unless the ``network`` section of the folder ``path``
    builds a network (the message PyTorch's loader gives) and is the one its weights were
    saved with (``metadata``: their header's; no digest there: not checked, said at debug
    level)."""
    net = meta.network
    if net is None:
        return
    where = Path(path) / MODEL_JSON
    _check_params(where, net)
    recorded = (metadata or {}).get(NETWORK_DIGEST_KEY)
    if recorded is None:
        log.debug("%s: %s records no digest of the network section (written before emovox "
                  "recorded one): the section is not checked against the weights", path,
                  WEIGHTS_FILE)
        return
    if recorded != network_digest(net):
        raise ArtifactError(
            f"{path}: model.json's network section was edited after the model was saved "
            f"(its module, params or input_shape are not those {WEIGHTS_FILE} was written "
            "with: their SHA-256 differs): the network built from it is not the one the "
            "weights and model.onnx were made for; restore model.json, or re-train the model")


def _check_params(where: Path, net: NetworkState) -> None:
    """The torch loader's refusal of a section that builds no network, without torch."""
    from emovox.models.netcheck import NETWORK_MODULES, check_network_params

    if net.module not in NETWORK_MODULES:
        raise ArtifactError(f"{where}: network.module {net.module!r} builds no network")
    try:
        check_network_params(net.module, net.params, net.input_shape)
    except (ConfigError, ValueError, TypeError, KeyError) as exc:
        raise ArtifactError(f"{where}: network.params do not build the network: "
                            f"{' '.join(str(exc).split())[:200]}") from None
