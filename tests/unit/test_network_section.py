"""model.json's network section, read the same way by both backends (code review): the
PyTorch backend builds the network from ``network.params``, the ONNX backend runs the
exported graph and never reads them, so ONNX served params PyTorch refused, and an edit the
weights still fit (other time pools, an ECAPA's dilations) changed PyTorch's answers but
not ONNX's, without a word. Now both validate the params with one torch-free check, and the
weights' header records the SHA-256 of the section the model was saved with."""

from __future__ import annotations

import importlib
import json
import logging
import pkgutil
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors import safe_open

import emovox.models
from emovox.artifact import (
    MODEL_JSON,
    NETWORK_DIGEST_KEY,
    WEIGHTS_FILE,
    ArtifactError,
    network_digest,
    read_artifact,
    read_meta,
    update_artifact,
)
from emovox.models.netcheck import NETWORK_MODULES
from emovox.serving.predictor import Predictor
from old_folders import saved_before_network_digest

BACKENDS = ("onnx", "torch")
EDITED = "model.json's network section was edited after the model was saved"


def _copy(src: Path, tmp_path: Path, *, old: bool = False) -> Path:
    """A copy of the model folder ``src`` (as written before the digest when ``old``)."""
    folder = tmp_path / ("old" if old else "new")
    shutil.copytree(src, folder)
    return saved_before_network_digest(folder) if old else folder


def _edit(folder: Path, edit: Callable[[dict[str, Any]], Any]) -> None:
    doc = json.loads((folder / MODEL_JSON).read_text())
    edit(doc["network"])
    (folder / MODEL_JSON).write_text(json.dumps(doc, indent=2))


def _refusals(folder: Path) -> list[str]:
    """What each backend says loading ``folder`` (each must refuse it)."""
    said = []
    for backend in BACKENDS:
        with pytest.raises(ArtifactError) as err:
            Predictor.from_artifact(folder, backend=backend)
        said.append(str(err.value))
    return said


def _header(folder: Path) -> dict[str, str]:
    with safe_open(str(folder / WEIGHTS_FILE), framework="numpy") as fh:
        return dict(fh.metadata() or {})


def _probabilities(folder: Path, backend: str) -> np.ndarray:
    wave = 0.1 * np.sin(2 * np.pi * 220 * np.arange(16000) / 16000).astype(np.float32)
    return Predictor.from_artifact(folder, backend=backend).wave_probabilities(wave, 16000)


def test_the_weights_record_the_digest_of_the_network_section(tiny_model):
    meta = read_meta(tiny_model)
    assert _header(tiny_model) == {NETWORK_DIGEST_KEY: network_digest(meta.network)}


@pytest.mark.parametrize("edit", [
    lambda n: n["params"].update(time_pools=[1, 2, 2, 2]),  # the weights still fit it
    lambda n: n["params"].update(dropout=0.5),  # no effect in eval, but not the model's
    lambda n: n["params"].pop("n_aux"),  # its default, left out: still not as saved
], ids=["time_pools", "dropout", "default-left-out"])
def test_an_edited_network_section_is_refused_by_both_backends_alike(tiny_model, tmp_path,
                                                                     edit):
    """PyTorch built the edited network (other answers), ONNX ran the saved graph."""
    folder = _copy(tiny_model, tmp_path)
    doc = (folder / MODEL_JSON).read_text()
    _edit(folder, edit)
    onnx, torch = _refusals(folder)
    assert onnx == torch and onnx.startswith(f"{folder}: {EDITED}")
    assert "\n" not in onnx
    # restored, even written otherwise (keys sorted, other spacing): both load it, and agree
    (folder / MODEL_JSON).write_text(json.dumps(json.loads(doc), sort_keys=True, indent=1))
    np.testing.assert_allclose(_probabilities(folder, "onnx"), _probabilities(folder, "torch"),
                               atol=1e-4)


@pytest.mark.parametrize("old", [False, True], ids=["saved-now", "saved-before"])
@pytest.mark.parametrize(("edit", "said"), [
    (lambda n: n["params"].update(time_pool=[2, 2, 2, 1]),
     "unknown parameter 'time_pool' for CrnnConfig (did you mean 'time_pools'?)"),
    (lambda n: n["params"].update(time_pools="x"), "parameter time_pools='x' for CrnnConfig"),
    (lambda n: n["params"].update(dropout="high"), "parameter dropout='high' for CrnnConfig"),
    (lambda n: n["params"].update(epochs=0), "epochs must be >= 1, got 0"),
    (lambda n: n.update(module="emovox.models.layers"),
     "network.module 'emovox.models.layers' builds no network"),
    # what build_net refuses for the sizes and the shape (PyTorch refused them, ONNX served)
    (lambda n: n["params"].update(time_pools=[8, 8, 8, 1]), "crnn needs T >= 512, got T=64"),
    (lambda n: n["params"].update(channels=[16, 32, 64]), "3 conv blocks but 4 time pools"),
    (lambda n: n.update(input_shape=[64]), "crnn expects input_shape (T, M), got (64,)"),
    (lambda n: n["params"].update(gru_hidden=0), "gru_hidden must be >= 1, got 0"),
    (lambda n: n["params"].update(dropout=1.5),
     "dropout must be a probability (0..1), got 1.5"),
    (lambda n: n.update(module="emovox.models.reslstm", params={"stack": 0}),
     "stack, hidden and blocks must be >= 1, got 0, 128, 2"),
    (lambda n: n.update(module="emovox.models.resnet_mlp", params={"widths": []},
                        input_shape=[64]), "resnet_mlp needs at least one block width"),
    (lambda n: n.update(module="emovox.models.mlp", params={}),
     "mlp expects input_shape (D,), got (64, 64)"),
    (lambda n: n.update(module="emovox.models.ecapa", params={}, input_shape=[64]),
     "ecapa expects input_shape (T, M), got (64,)"),
], ids=["unknown-key", "not-a-list", "not-a-number", "out-of-range", "not-a-network",
        "time-pools-over-T", "blocks-not-pools", "rank", "zero-width",
        "dropout-over-1", "reslstm-stack-0", "resnet-no-widths", "mlp-rank", "ecapa-rank"])
def test_invalid_network_params_are_refused_by_both_backends_alike(tiny_model, tmp_path,
                                                                   old, edit, said):
    """ONNX loaded them and answered; PyTorch raised a ConfigError traceback. Now one
    line, the same from both, whether or not the weights record the section's digest."""
    folder = _copy(tiny_model, tmp_path, old=old)
    _edit(folder, edit)
    onnx, torch = _refusals(folder)
    assert onnx == torch and said in onnx and onnx.startswith(f"{folder / MODEL_JSON}: ")


def test_an_ensemble_member_s_params_are_checked_as_the_member_s_own():
    from emovox.errors import ConfigError
    from emovox.models.netcheck import check_network_params

    member = {"module": "emovox.models.ecapa", "params": {"dilations": [2, 3, 4]}}
    check_network_params("emovox.models.ensemble", {"members": [member, member]}, (64, 64))
    bad = {**member, "params": {"dilatoins": [2, 3, 5]}}
    with pytest.raises(ConfigError, match=r"member 1 \(ecapa\): unknown parameter 'dilatoins'"):
        check_network_params("emovox.models.ensemble", {"members": [member, bad]}, (64, 64))
    small = {**member, "params": {"se_dim": 0}}  # a size: ValueError, the member named too
    with pytest.raises(ValueError, match=r"member 0 \(ecapa\): se_dim must be >= 1"):
        check_network_params("emovox.models.ensemble", {"members": [small, member]}, (64, 64))
    with pytest.raises(ConfigError, match="unknown parameter 'member' for the ensemble"):
        check_network_params("emovox.models.ensemble", {"members": [member, member],
                                                        "member": []}, (64, 64))


#: per network module, (params, input_shape) its build_net refuses (and one it builds)
REFUSED: dict[str, list[tuple[dict[str, Any], tuple[int, ...]]]] = {
    "crnn": [({}, (300, 64)), ({"time_pools": [8, 8, 8, 1]}, (300, 64)), ({}, (300,)),
             ({"channels": [16, 32]}, (300, 64)), ({}, (300, 8)), ({"d_model": 0}, (300, 64)),
             ({"gru_hidden": -1}, (300, 64)), ({"time_pools": [2, 2, 0, 1]}, (300, 64)),
             ({"n_aux": -1}, (300, 64)), ({"conv_dropout": -0.1}, (300, 64))],
    "ecapa": [({}, (256, 64)), ({}, (256,)), ({"scale": 0}, (256, 64)),
              ({"channels": 10}, (256, 64)), ({"dilations": []}, (256, 64)),
              ({"se_dim": -1}, (256, 64)), ({"dropout": 1.5}, (256, 64))],
    "reslstm": [({}, (256, 72)), ({"stack": 0}, (256, 72)), ({"stack": 8}, (4, 72)),
                ({}, (256,)), ({"attention_dim": -1}, (256, 72)), ({"dropout": -1.0}, (256, 72))],
    "cnn_bilstm": [({}, (94, 60)), ({}, (4, 60)), ({}, (94,)), ({"lstm_layers": 0}, (94, 60)),
                   ({"channels": [0]}, (94, 60)), ({"kernel_size": -1}, (94, 60)),
                   ({"dropout": 1.5}, (94, 60))],
    "cnn_gru_attention": [({}, (200, 40)), ({}, (2, 40)), ({}, (200, 40, 1)),
                          ({"gru_hidden": 0}, (200, 40)), ({"dense": -1}, (200, 40))],
    "mlp": [({}, (340,)), ({}, (340, 2)), ({"hidden": [8]}, (340,)),
            ({"hidden": [8, 0], "dropouts": [0.5, 0.5]}, (340,)),
            ({"dropouts": [0.5, 0.5, 1.5]}, (340,))],
    "conv1d": [({}, (162,)), ({}, (162, 1)), ({"channels": [-1]}, (162,)),
               ({"kernel_size": 4}, (162,)), ({"conv_dropout": 2.0}, (162,))],
    "resnet_mlp": [({}, (40,)), ({}, (40, 1)), ({"widths": []}, (40,)),
                   ({"widths": [8, -1]}, (40,)), ({"dropout": -0.5}, (40,))],
}


def _said(call: Callable[[], Any]) -> str | None:
    try:
        call()
    except (ValueError, TypeError, RuntimeError, ZeroDivisionError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


@pytest.mark.parametrize("name", sorted(m.removeprefix("emovox.models.") for m in NETWORK_MODULES
                                         if m != "emovox.models.ensemble"))
def test_the_shared_check_refuses_what_build_net_refuses(name):
    """Sizes and shapes too: on a folder that records no digest, PyTorch refused a CRNN whose
    time pools pool more than T frames, a ResLSTM's stack=0, a vector network given a (T, M)
    shape, while the torch-free check passed them and ONNX served them."""
    from emovox.models.netcheck import check_network_params

    module = f"emovox.models.{name}"
    build_net = importlib.import_module(module).build_net
    for k, (params, shape) in enumerate(REFUSED[name]):
        built = _said(lambda p=params, s=shape: build_net(3, s, **p))
        checked = _said(lambda p=params, s=shape: check_network_params(module, p, s))
        assert checked == built, (params, shape)
        assert (built is None) == (k == 0), (params, shape)  # the first one builds


def test_a_folder_saved_before_the_digest_still_loads(tiny_model, tmp_path, caplog):
    """The bundled models among them (never re-saved): read as before, said at debug."""
    folder = _copy(tiny_model, tmp_path, old=True)
    assert _header(folder) == {}
    with caplog.at_level(logging.DEBUG, logger="emovox.artifact.network"):
        p = {backend: _probabilities(folder, backend) for backend in BACKENDS}
    np.testing.assert_allclose(p["onnx"], p["torch"], atol=1e-4)
    np.testing.assert_allclose(p["onnx"], _probabilities(tiny_model, "onnx"), atol=1e-6)
    assert "records no digest of the network section" in caplog.text


def test_update_artifact_records_the_digest_of_a_folder_saved_before_it(tiny_model, tmp_path):
    """``calibrate`` and ``export`` rewrite model.json: the weights get the digest too."""
    folder = _copy(tiny_model, tmp_path, old=True)
    meta = read_meta(folder)
    update_artifact(folder, meta.replace(metrics={"ua": 1.0}))
    assert _header(folder) == {NETWORK_DIGEST_KEY: network_digest(meta.network)}
    assert read_artifact(folder).meta.metrics == {"ua": 1.0}  # its file digests updated


def test_update_artifact_neither_records_a_hand_edit_nor_makes_one(tiny_model, tmp_path):
    folder = _copy(tiny_model, tmp_path)
    meta = read_meta(folder)
    edited = meta.network.params | {"time_pools": [1, 2, 2, 2]}
    with pytest.raises(ValueError, match="keeps the network section"):
        update_artifact(folder, meta.replace(network=meta.network.__class__(
            meta.network.module, edited, meta.network.input_shape)))
    _edit(folder, lambda n: n["params"].update(time_pools=[1, 2, 2, 2]))
    with pytest.raises(ArtifactError, match=EDITED):  # a later calibrate or export
        update_artifact(folder, read_meta(folder).replace(metrics={"ua": 1.0}))
    with pytest.raises(ArtifactError, match=EDITED):
        read_artifact(folder)


def test_every_network_module_is_known_to_the_shared_check():
    """A network module added without its config would be refused at load."""
    found = {f"emovox.models.{m.name}" for m in pkgutil.iter_modules(emovox.models.__path__)
             if callable(getattr(importlib.import_module(f"emovox.models.{m.name}"),
                                 "build_net", None))}
    assert found == set(NETWORK_MODULES)
