"""Export a trained neural artifact's network to ONNX (``emovox export``).

:func:`export_onnx` writes ``model.onnx`` next to ``model.json``: the network alone, from the
*normalised* feature tensor ``features`` ``(batch, time, n_mels)`` float32 to ``logits``
``(batch, n_classes)``. Normalisation (training mean/std), the front end, the temperature
and the softmax stay outside the graph and are applied in NumPy by
:class:`emovox.serving.predictor.Predictor`. The batch axis is dynamic, and so is the time axis when
the network accepts other lengths than the one it was trained on (the CRNN does).

Every export is verified before it is kept: ONNX Runtime and PyTorch must give the same
probabilities (max abs difference <= 1e-4) on random input of another batch size (and
another length, for a dynamic time axis). ``model.json`` then records
``onnx`` (:class:`emovox.artifact.OnnxInfo`: opset, dynamic_time, max_abs_diff,
weights_sha256, ...; rewritten atomically by the artifact writer), so a ``model.onnx`` left
over from other weights is detected.

Needs torch and the ``onnx`` package (``pip install emovox[export]``); uses the TorchScript
exporter (``dynamo=False``), which needs no extra packages and handles the GRU.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from emovox.artifact import (
    ONNX_FILE,
    ArtifactError,
    ModelKind,
    OnnxInfo,
    attach_inference,
    model_file_mode,
    read_artifact,
    read_meta,
    update_artifact,
    weights_digest,
)
from emovox.calibration import softmax
from emovox.fileio import atomic_path

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_OPSET", "export_onnx"]

DEFAULT_OPSET = 17
INPUT_NAME = "features"
OUTPUT_NAME = "logits"


def export_onnx(
    artifact_dir: str | Path,
    *,
    opset: int = DEFAULT_OPSET,
    atol: float = 1e-4,
    attach_frontend: bool = True,
) -> Path:
    """Export the network of the torch artifact ``artifact_dir`` to ``model.onnx`` in it.

    Args:
        artifact_dir: folder written by :func:`emovox.artifact.save_model`.
        opset: ONNX opset version.
        atol: largest accepted |p_onnx - p_torch| in the verification.
        attach_frontend: when a log-mel network has no stored front end yet, add it first
            (:func:`emovox.artifact.attach_inference`, temperature untouched).

    Returns:
        The path of ``model.onnx``.

    Raises:
        ArtifactError: not a neural artifact ("only neural models export to ONNX"), a network
            with an auxiliary input, or ONNX Runtime disagreeing with PyTorch.
    """
    path = Path(artifact_dir)
    meta = read_meta(path)
    if meta.kind is not ModelKind.TORCH or meta.network is None:
        raise ArtifactError(
            f"{path}: only neural models export to ONNX; this is a {meta.kind.value!r} model"
        )
    if int(meta.network.params.get("n_aux", 0) or 0) > 0:
        raise ArtifactError(f"{path}: networks with an auxiliary input cannot be exported")
    if (attach_frontend and meta.preprocess.feature == "logmel"
            and not meta.preprocess.frontend_params):
        attach_inference(path)

    from emovox.serving.runners import build_network

    art = read_artifact(path, skip=(ONNX_FILE,))  # the graph it replaces may be stale or
    net = build_network(art)  # damaged: export refused to repair it (code review, stop 46)
    shape = tuple(int(s) for s in art.meta.network.input_shape)  # type: ignore[union-attr]
    out = path / ONNX_FILE
    with atomic_path(out, mode=model_file_mode(out)) as tmp:  # renamed in only when verified
        dynamic_time, worst = _export_and_verify(net, shape, opset, tmp)
        if not worst <= atol:
            raise ArtifactError(
                f"{path}: ONNX Runtime and PyTorch disagree (max |dp| = {worst:.2e} > {atol:g}); "
                "model.onnx was not written"
            )

    norm = art.meta.preprocess.norm
    digest = weights_digest({**art.tensors, **(norm.arrays() if norm else {})})
    update_artifact(path, read_meta(path).replace(
        onnx=_onnx_record(opset, dynamic_time, worst, digest)), written=(ONNX_FILE,))
    log.info("exported %s (opset %d, max |dp| %.1e)", out, opset, worst)
    return out


def _export_and_verify(net: Any, shape: tuple[int, ...], opset: int,
                       tmp: Path) -> tuple[bool, float]:
    """Write ``net`` to ``tmp`` as ONNX and compare ONNX Runtime with PyTorch on random input
    of other batch sizes (and another length, for a dynamic time axis):
    ``(dynamic_time, max |dp|)``."""
    import onnxruntime as ort
    import torch

    sequence = len(shape) == 2
    gen = torch.Generator().manual_seed(0)
    dynamic_time = False
    if sequence:  # does the network accept another length than the training one?
        try:
            with torch.inference_mode():
                net(torch.randn(1, shape[0] + 24, shape[1], generator=gen))
            dynamic_time = True
        except (RuntimeError, ValueError):
            dynamic_time = False
    axes: dict[int, str] = {0: "batch", 1: "time"} if dynamic_time else {0: "batch"}

    dummy = torch.randn(2, *shape, generator=gen)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # legacy-exporter deprecation and GRU batch notes
        torch.onnx.export(
            net, (dummy,), str(tmp), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: {0: "batch"}},
            opset_version=opset, do_constant_folding=True, dynamo=False,
        )
    try:
        import onnx

        onnx.checker.check_model(str(tmp))
    except ImportError:  # pragma: no cover - onnx is installed with the export extra
        log.info("onnx not installed; skipping the ONNX checker")

    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(tmp), sess_options=so, providers=["CPUExecutionProvider"])
    worst = 0.0
    checks = [(3, shape[0] + 40 if dynamic_time else shape[0]), (1, shape[0])]
    for batch, t in checks:
        x = torch.randn(batch, t, *shape[1:], generator=gen) if sequence else torch.randn(
            batch, *shape, generator=gen)
        with torch.inference_mode():
            p_torch = torch.softmax(net(x), -1).numpy().astype(np.float64)
        logits = sess.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0]
        worst = max(worst, float(np.abs(softmax(logits.astype(np.float64)) - p_torch).max()))
    del sess
    return dynamic_time, worst


def _onnx_record(opset: int, dynamic_time: bool, worst: float, digest: str) -> OnnxInfo:
    import onnxruntime
    import torch

    return OnnxInfo(
        file=ONNX_FILE, opset=int(opset), input=INPUT_NAME, output=OUTPUT_NAME,
        dynamic_time=bool(dynamic_time), max_abs_diff=float(worst), weights_sha256=digest,
        torch_version=str(torch.__version__), onnxruntime_version=onnxruntime.__version__,
    )
