"""One runner per backend: normalised network input ``(B, ...)`` float32 -> logits ``(B, C)``.

* :class:`OnnxRunner`: ``model.onnx`` in ONNX Runtime (sessions are thread-safe);
* :class:`TorchRunner`: the network rebuilt from ``weights.safetensors`` (imports torch when
  constructed, never at import time); calls are serialised with a lock;
* :class:`SklearnRunner`: a scikit-learn pipeline; returns ``log p`` (floored at 1e-12) so the
  temperature applies to it like to logits.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from emovox.artifact import ONNX_FILE, Artifact, ArtifactError, weights_digest
from emovox.errors import ConfigError

if TYPE_CHECKING:
    from torch import nn

log = logging.getLogger(__name__)

__all__ = ["OnnxRunner", "Runner", "SklearnRunner", "TorchRunner", "build_network", "cpu_threads",
           "network_runner"]



def cpu_threads(threads: int) -> int:
    """``threads`` inference threads, at most one per CPU: `serve --threads 100000` never
    started and grew by 70 MB a second (a review, stop 47)."""
    return max(1, min(int(threads), os.cpu_count() or 1))

class Runner(Protocol):
    """Anything that maps network input to logits."""

    backend: str

    def __call__(self, x: np.ndarray) -> np.ndarray: ...


class OnnxRunner:
    """``model.onnx`` on the CPU execution provider."""

    backend = "onnx"

    def __init__(self, onnx_file: Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.log_severity_level = 3
        if threads:
            so.intra_op_num_threads = cpu_threads(threads)
            so.inter_op_num_threads = 1
        try:
            self._sess = ort.InferenceSession(str(onnx_file), sess_options=so,
                                              providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            msg = " ".join(str(exc).split())[:200]
            raise ArtifactError(f"{onnx_file}: cannot be loaded by onnxruntime: {msg}") from None
        self._in = self._sess.get_inputs()[0].name
        self._out = self._sess.get_outputs()[0].name
        #: the graph's input and output shapes, a name (str) for a dimension left free
        self.io_shapes = (tuple(self._sess.get_inputs()[0].shape),
                          tuple(self._sess.get_outputs()[0].shape))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self._sess.run([self._out], {self._in: x})[0]  # session.run is thread-safe


def _outputs_that_fit(build: Any, args: tuple[Any, ...], params: dict[str, Any],
                      have: dict[str, int], want: dict[str, int], key: str) -> int | None:
    """The number of classes the stored weights were trained for, when they fit the
    network built for that number and only the class count differs; else None."""
    import torch

    n_classes = args[0]
    if key not in have or not want.get(key) or (have[key] * n_classes) % want[key]:
        return None
    outputs = have[key] * n_classes // want[key]
    if outputs == n_classes or not 1 <= outputs <= 10 * n_classes:
        return None
    try:
        with torch.device("meta"):
            other = build(outputs, *args[1:], **params)
    except (TypeError, ValueError, RuntimeError, KeyError):
        return None
    sizes = {k: int(np.prod(v.shape)) for k, v in other.state_dict().items()}
    return outputs if sizes == have else None


def build_network(artifact: Artifact) -> nn.Module:
    """The torch network of a network artifact, weights loaded, in eval mode (imports torch
    and the network's ``emovox.models`` module)."""
    import torch

    meta = artifact.meta
    if meta.network is None:
        raise ArtifactError(f"{artifact.path}: not a network artifact")
    module = importlib.import_module(meta.network.module)  # checked by the reader
    build = getattr(module, "build_net", None)
    where = artifact.path / "model.json"
    if not callable(build):
        raise ArtifactError(f"{where}: network.module {meta.network.module!r} builds no network")
    args = (meta.n_classes, meta.network.input_shape)
    try:  # first on the meta device: no memory, so absurd sizes cannot allocate anything
        with torch.device("meta"):
            probe = build(*args, **meta.network.params)
    except (TypeError, ValueError, RuntimeError, KeyError, ConfigError) as exc:
        raise ArtifactError(f"{where}: network.params do not build the network: "
                            f"{' '.join(str(exc).split())[:200]}") from None
    # sizes, not shapes: a scalar buffer may be stored as (1,) (BatchNorm's counter)
    want = {k: int(np.prod(v.shape)) for k, v in probe.state_dict().items()}
    have = {k[4:]: int(np.size(v)) for k, v in artifact.tensors.items()}
    if want != have:
        diff = sorted(k for k in set(want) | set(have) if want.get(k) != have.get(k))
        outputs = _outputs_that_fit(build, args, meta.network.params, have, want, diff[0])
        if outputs is not None:  # re-check, stop 36: was "N tensors differ" for a labels slip
            raise ArtifactError(f"{artifact.path}: the model does not run: the network's "
                                f"weights give {outputs} outputs but model.json's \"labels\" "
                                f"lists {meta.n_classes}")
        k = diff[0]
        example = (f"{k} is not in weights.safetensors" if k not in have else
                   f"{k} is not in the network" if k not in want else
                   f"{k}: {have[k]} values against {want[k]}")
        raise ArtifactError(f"{artifact.path / 'weights.safetensors'}: does not fit the "
                            f"network of model.json ({len(diff)} tensors differ, e.g. "
                            f"{example})")
    kinds = {k: str(v.dtype).removeprefix("torch.") for k, v in probe.state_dict().items()}
    odd = sorted(k for k, v in artifact.tensors.items() if np.dtype(v.dtype).name != kinds[k[4:]])
    if odd:  # load_state_dict casts: int8 weights answered 12 % everywhere (QA, stop 38)
        k = odd[0]
        raise ArtifactError(f"{artifact.path / 'weights.safetensors'}: {k} is "
                            f"{np.dtype(artifact.tensors[k].dtype).name}, the network "
                            f"expects {kinds[k[4:]]} ({len(odd)} tensor(s) of another type)")
    net = build(*args, **meta.network.params)
    state = {k[4:]: torch.from_numpy(np.array(v)) for k, v in artifact.tensors.items()}
    try:
        net.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError) as exc:
        msg = " ".join(str(exc).split())[:200]
        raise ArtifactError(f"{artifact.path / 'weights.safetensors'}: does not fit the "
                            f"network: {msg}") from None
    net.eval()
    return net


class TorchRunner:
    """The PyTorch network (one call at a time)."""

    backend = "torch"

    def __init__(self, artifact: Artifact, threads: int | None = None) -> None:
        import torch

        self._torch = torch
        self.net = build_network(artifact)
        if threads:
            torch.set_num_threads(cpu_threads(threads))
        self._lock = threading.Lock()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        with self._lock, self._torch.inference_mode():
            return self.net(self._torch.from_numpy(x)).numpy()


class SklearnRunner:
    """A fitted scikit-learn pipeline; ``log`` of its probabilities, every class present."""

    backend = "sklearn"

    def __init__(self, pipeline: Any, n_classes: int) -> None:
        self.pipeline = pipeline
        self.n_classes = n_classes
        self._lock = threading.Lock()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        with self._lock:
            p = self.pipeline.predict_proba(np.asarray(x, np.float64))
        out = np.zeros((len(p), self.n_classes))
        out[:, self.pipeline.classes_] = p
        return np.log(np.clip(out, 1e-12, 1.0))


def network_runner(art: Artifact, backend: str, threads: int | None) -> Runner:
    """ONNX when asked for (or ``auto`` and ``model.onnx`` exists and matches the weights),
    else PyTorch."""
    path = art.path
    onnx_file = path / ONNX_FILE
    chosen = backend
    if backend == "auto":
        chosen = "onnx" if onnx_file.is_file() else "torch"
    if chosen == "onnx":
        problem = None
        norm = art.meta.preprocess.norm
        digest = weights_digest({**art.tensors, **(norm.arrays() if norm else {})})
        recorded = art.meta.onnx.weights_sha256 if art.meta.onnx else None
        if not onnx_file.is_file():
            problem = f"{path}: {ONNX_FILE} is missing; run 'emovox export {path}' first"
        elif art.meta.onnx is None:  # a graph model.json does not record: someone else's
            problem = (f"{path}: {ONNX_FILE} was not exported for this model (model.json "  # (46)
                       f"does not record it); run 'emovox export {path}'")
        elif recorded not in (None, digest):
            problem = (f"{path}: {ONNX_FILE} was exported from other weights; re-run "
                       f"'emovox export {path}'")
        if problem:
            if backend == "onnx":
                raise ArtifactError(problem)
            log.warning("%s; using PyTorch instead", problem)
            chosen = "torch"
    if chosen == "onnx":
        runner = OnnxRunner(onnx_file, threads)
        _check_onnx_io(runner.io_shapes, art, onnx_file)
        return runner
    return TorchRunner(art, threads)


def _check_onnx_io(io: tuple[tuple[Any, ...], tuple[Any, ...]], art: Artifact,
                   onnx_file: Path) -> None:
    """``model.onnx`` takes ``(batch, *network.input_shape)`` and gives ``(batch,
    n_classes)``, as ``model.json`` says (a dimension the graph leaves free matches any):
    the PyTorch backend refused a ``network`` section the graph did not fit, ONNX answered
    with it (QA, stop 40)."""
    meta = art.meta
    if meta.network is None:
        return
    (got_in, got_out), want_in = io, (None, *meta.network.input_shape)

    def fits(got: tuple[Any, ...], want: tuple[Any, ...]) -> bool:
        return len(got) == len(want) and all(
            not isinstance(g, int) or w is None or g == w for g, w in zip(got, want, strict=True))

    def said(shape: tuple[Any, ...]) -> str:
        return "(" + ", ".join("batch" if s is None else str(s) for s in shape) + ")"

    if not fits(got_in, want_in):
        raise ArtifactError(f"{onnx_file}: takes input {said(got_in)}, model.json's network "
                            f"says {said(want_in)}; re-run 'emovox export {art.path}'")
    if not fits(got_out, (None, meta.n_classes)):
        raise ArtifactError(f"{onnx_file}: gives {got_out[-1]} outputs but model.json's "
                            f"\"labels\" lists {meta.n_classes}")
