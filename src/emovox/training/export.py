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
import os
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
    foreign_files,
    model_file_mode,
    read_artifact,
    read_meta,
    replace_folder,
    update_artifact,
    weights_digest,
)
from emovox.artifact.dest import checked_destination, copy_folder
from emovox.calibration import softmax
from emovox.fileio import atomic_path, claimed_folder, mode_of

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

    The folder is rewritten whole, as ``calibrate`` rewrites it: a copy beside it, in a
    claim (:func:`~emovox.fileio.claimed_folder`), gets the front end, the graph and
    ``model.json`` and replaces it. Updated in place, a kill between its files left a
    folder neither backend loads (a new graph with the old ``model.json``; new weights
    with the old one, which even the re-export it recommended refused), and an export
    finishing while ``calibrate`` or ``train --force`` rewrote the folder was lost (code
    review, stop 48).

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
            with an auxiliary input, files emovox did not write in the folder, another
            emovox process writing it now, or ONNX Runtime disagreeing with PyTorch.
        ConfigError: the folder is the current folder or holds it.
    """
    path = checked_destination(artifact_dir, "export rewrites the model folder whole: "
                               "run it from elsewhere")  # (it left the shell in a deleted
    # folder: audit, stop 56); a folder's claim and copy go beside it, by name
    meta = read_meta(path)
    if meta.kind is not ModelKind.TORCH or meta.network is None:
        raise ArtifactError(
            f"{path}: only neural models export to ONNX; this is a {meta.kind.value!r} model"
        )
    if int(meta.network.params.get("n_aux", 0) or 0) > 0:
        raise ArtifactError(f"{path}: networks with an auxiliary input cannot be exported")
    read_artifact(path, skip=(ONNX_FILE,))  # its files checked before anything is written
    if foreign := foreign_files(path):
        raise ArtifactError(f"{path} also holds {', '.join(foreign[:5])}, which emovox did "
                            "not write; export rewrites the model folder whole: move them "
                            "out first")
    real = path.resolve() if path.is_symlink() else path  # the folder, not the link to it
    with claimed_folder(real) as (tmp, others):  # a "build" claim, as calibrate and train
        if others:
            raise ArtifactError(f"another emovox process (PID {others[0]}) is writing {path} "
                                "now; wait for it to end, then export")
        stage = tmp / real.name
        copy_folder(real, stage)  # a full disk said in one line (audit, stop 56)
        worst = _export_into(stage, path, opset, atol,
                             attach_frontend and meta.preprocess.feature == "logmel"
                             and not meta.preprocess.frontend_params)
        mode = model_file_mode(real / ONNX_FILE)  # a new graph: model.json's bits (stop 48)
        replace_folder(stage, real, force=True)
    if mode_of(real / ONNX_FILE) != mode:
        os.chmod(real / ONNX_FILE, mode)
    log.info("exported %s (opset %d, max |dp| %.1e)", path / ONNX_FILE, opset, worst)
    return path / ONNX_FILE


def _export_into(stage: Path, name: Path, opset: int, atol: float, attach: bool) -> float:
    """Export the network of the model folder ``stage`` (a copy of ``name``, which
    messages name) into it, its front end attached first when ``attach``, and record the
    graph in its ``model.json``; returns the largest |p_onnx - p_torch|."""
    (stage / ONNX_FILE).unlink(missing_ok=True)  # replaced: a damaged one stops no attach
    if attach:
        attach_inference(stage)

    from emovox.serving.runners import build_network

    art = read_artifact(stage, skip=(ONNX_FILE,))  # the graph it replaces may be stale or
    net = build_network(art)  # damaged: export refused to repair it (code review, stop 46)
    shape = tuple(int(s) for s in art.meta.network.input_shape)  # type: ignore[union-attr]
    out = stage / ONNX_FILE
    with atomic_path(out, mode=model_file_mode(out)) as tmp:  # renamed in only when verified
        dynamic_time, worst = _export_and_verify(net, shape, opset, tmp)
        if not worst <= atol:
            raise ArtifactError(
                f"{name}: ONNX Runtime and PyTorch disagree (max |dp| = {worst:.2e} > {atol:g}); "
                "model.onnx was not written"
            )

    norm = art.meta.preprocess.norm
    digest = weights_digest({**art.tensors, **(norm.arrays() if norm else {})})
    update_artifact(stage, read_meta(stage).replace(
        onnx=_onnx_record(opset, dynamic_time, worst, digest)), written=(ONNX_FILE,))
    return worst


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
