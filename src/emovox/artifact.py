"""Trained-model artifacts: a folder with ``model.json`` (what the model is: config,
label order, input shape, package version, metrics) and the weights as
``weights.safetensors`` (PyTorch; normalisation statistics included) or
``model.skops`` (scikit-learn). No pickle anywhere.

Writes are atomic (a temporary sibling folder renamed into place) and never replace
an existing artifact unless ``force=True``.
"""

from __future__ import annotations

import importlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from emovox import __version__
from emovox.errors import EmovoxError
from emovox.labels import LABELS

FORMAT = "emovox-model"
FORMAT_VERSION = 1


class ArtifactError(EmovoxError):
    """The artifact is missing, incomplete, or from an incompatible version."""


def save_model(
    model: Any, out: Path, config: dict[str, Any], *, metrics: dict | None = None,
    force: bool = False, extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` (a TorchClassifier or SklearnModel) to the folder ``out``."""
    from emovox.models.classical import SklearnModel
    from emovox.training.trainer import TorchClassifier

    out = Path(out)
    if out.exists() and not force:
        raise FileExistsError(f"{out} already exists; pass --force to overwrite it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp"))
    meta: dict[str, Any] = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "package_version": __version__,
        "labels": list(LABELS), "config": config, "metrics": metrics or {}, **(extra or {}),
    }
    try:
        if isinstance(model, TorchClassifier):
            from safetensors.torch import save_file

            assert model.net is not None and model.norm is not None, "model is not trained"
            tensors = {f"net.{k}": v.contiguous() for k, v in model.net.state_dict().items()}
            import torch

            tensors["norm.mean"] = torch.from_numpy(np.asarray(model.norm.mean, np.float32))
            tensors["norm.std"] = torch.from_numpy(np.asarray(model.norm.std, np.float32))
            if model.norm.keep is not None:
                tensors["norm.keep"] = torch.from_numpy(np.asarray(model.norm.keep, np.int64))
            save_file(tensors, str(tmp / "weights.safetensors"))
            meta |= {
                "kind": "torch",
                "net_module": model.build_net.__module__,
                "net_params": model.net_params,
                "train": {k: getattr(v, "value", v) for k, v in model.train_cfg.__dict__.items()},
                "input_shape": list(model.input_shape),
                "n_classes": model.n_classes,
                "history": model.history.as_dict(),
            }
        elif isinstance(model, SklearnModel):
            import skops.io as sio

            sio.dump(model.pipeline, tmp / "model.skops")
            meta |= {"kind": "sklearn", "n_classes": model.n_classes}
        else:
            raise TypeError(f"cannot save a {type(model).__name__}")
        (tmp / "model.json").write_text(json.dumps(meta, indent=2, default=json_default))
        make_readable(tmp)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def make_readable(folder: Path) -> None:
    """mkdtemp creates 0700 folders: open the artifact to other users (0755 / 0644), so a
    service running under another account can load it."""
    import os

    os.chmod(folder, 0o755)
    for p in Path(folder).rglob("*"):
        os.chmod(p, 0o755 if p.is_dir() else 0o644)


def read_meta(path: Path) -> dict[str, Any]:
    path = Path(path)
    f = path / "model.json"
    if not f.is_file():
        raise ArtifactError(f"{path} is not an emovox model folder (no model.json)")
    meta = json.loads(f.read_text())
    if meta.get("format") != FORMAT or int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise ArtifactError(f"{path}: unsupported artifact format {meta.get('format_version')}")
    return meta


def load_model(path: Path) -> tuple[Any, dict[str, Any]]:
    """Load an artifact written by :func:`save_model`: ``(model, meta)``."""
    path = Path(path)
    meta = read_meta(path)
    if meta["kind"] == "torch":
        from safetensors.torch import load_file

        from emovox.training.trainer import Normaliser, TorchClassifier

        mod_name = meta["net_module"]
        if not mod_name.startswith("emovox.models."):
            raise ArtifactError(f"{path}: refusing to import network module {mod_name!r}")
        module = importlib.import_module(mod_name)
        tensors = load_file(str(path / "weights.safetensors"))
        params = {**meta["train"], **meta["net_params"]}
        params.pop("seed", None)
        model = TorchClassifier(
            module.build_net, n_classes=meta["n_classes"], seed=meta["train"]["seed"], **params
        )
        model.input_shape = tuple(meta["input_shape"])
        model.net = module.build_net(meta["n_classes"], model.input_shape, **meta["net_params"])
        model.net.load_state_dict(
            {k[4:]: v for k, v in tensors.items() if k.startswith("net.")}, strict=True
        )
        model.net.eval()
        keep = tensors.get("norm.keep")
        model.norm = Normaliser(
            tensors["norm.mean"].numpy(), tensors["norm.std"].numpy(),
            None if keep is None else keep.numpy(),
        )
        return model, meta
    if meta["kind"] == "sklearn":
        import skops.io as sio

        from emovox.models.classical import SklearnModel

        f = path / "model.skops"
        untrusted = sio.get_untrusted_types(file=f)
        bad = [t for t in untrusted if not t.startswith(("sklearn.", "numpy.", "scipy."))]
        if bad:
            raise ArtifactError(f"{path}: model.skops holds unexpected types {bad}")
        return SklearnModel(sio.load(f, trusted=untrusted), meta["n_classes"]), meta
    raise ArtifactError(f"{path}: unknown model kind {meta.get('kind')!r}")


def json_default(o: Any) -> Any:
    """``json.dumps(default=...)`` for numpy values, paths and enums."""
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "value"):
        return o.value
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
