"""Write each member of an ensemble artifact as its own model folder, the input of
``emovox ensemble`` (e.g. to swap one member of the bundled ``default`` without retraining the
others), and check that joining the written members again gives the ensemble's
probabilities back.

    .venv/bin/python bench/split_ensemble.py src/emovox/data/default_model /tmp/default-members

Member ``k`` gets the ensemble's ``Preprocess`` with its own block's ``utt_norm``, and its own
input standardisation, recovered from the ensemble's (block ``b``'s normaliser and member
``k``'s affine map ``x_k = a_k x + b_k``: ``std_k = std_b / a_k``, ``mean_k = mean_b - b_k
std_k``). Its training augmentation is written back when the ensemble's recorded summary for
the member is one of the named recipes' (``AugmentRecipe``), so a new ensemble's card names
it again; what the ensemble did not record (the member's validation split, training seconds)
is left out. Its ``data`` section is the ensemble's data as its ``trained_on`` records it
(:func:`member_data`), so that ``emovox ensemble --calibrate`` compares the corpora of the
members' CV runs with the corpora they were trained on, not with RAVDESS alone (the default
of a config without one). Nothing is retrained: the weights are the ensemble's, copied.

The check: an ensemble of the written folders (``ensemble_bundle``, no ONNX) must read the
same ``Preprocess`` as the original, and on 64 random network inputs the largest probability
difference from the original is printed and must be below 1e-5 (exit status 1 otherwise).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import importlib
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emovox.artifact import attach_inference, save_model
from emovox.augment import AugmentRecipe, augment_summary, recipe_config
from emovox.config import DataConfig, ExperimentConfig
from emovox.corpora import canonical_name
from emovox.experiment.package import ensemble_bundle
from emovox.features.uttnorm import UtteranceNorm, utt_norm_modes
from emovox.preprocess import Normaliser
from emovox.training.trainer import TorchClassifier, load_trained


def member_augment(summary: str) -> dict[str, Any] | None:
    """The ``augment`` config of the named recipe (and copy count) whose summary is
    ``summary``, or ``None``."""
    for recipe in AugmentRecipe:
        for n in range(1, 9):
            cfg = dataclasses.asdict(recipe_config(recipe, n))
            if augment_summary(cfg) == summary:
                return cfg
    return None


def member_data(trained_on: dict[str, Any]) -> dict[str, Any] | None:
    """The ``data`` section of the members' experiment config, as a run's ``config.yaml``
    writes it (:meth:`ExperimentConfig.to_dict`), from what the ensemble's ``trained_on``
    records: its corpora (in their order), vocal channels and corpus balance. Data folders
    are not recorded: a public corpus gets an empty root, one's own data (``own_data``:
    ``READER=NAME``) its folder's name, what the recipe check compares. ``None`` when the
    members were trained on different data (``member_data``) or no corpus is recorded."""
    if "member_data" in trained_on:
        return None
    counts = trained_on.get("corpora")
    names = list(counts) if isinstance(counts, dict) else [
        c for c in str(trained_on.get("corpus") or "").split("+") if c]
    if not names:
        return None
    own = dict(str(o).partition("=")[::2] for o in trained_on.get("own_data") or ())
    roots = [own.get(canonical_name(n), "") for n in names]
    data = DataConfig(corpus=names[0], root=roots[0],
                      corpora=tuple(f"{n}={r}" for n, r in zip(names[1:], roots[1:],
                                                                strict=True)),
                      vocal_channels=tuple(trained_on.get("channels") or ("speech",)),
                      balance_corpora=bool(trained_on.get("balance_corpora", False)))
    return ExperimentConfig(data=data).to_dict()["data"]


def member_classifier(ens: Any, meta: Any, k: int) -> TorchClassifier:
    """Member ``k`` of the loaded ensemble ``ens`` as a trained classifier."""
    net = ens.net
    spec = meta.network.params["members"][k]
    width = net.n_mels
    b = net.inputs[k]
    n0 = ens.norm
    mean_b, std_b = (np.asarray(a[b * width : (b + 1) * width], np.float64)
                     for a in (n0.mean, n0.std))
    scale = net.scale[k].detach().double().numpy()
    shift = net.shift[k].detach().double().numpy()
    std_k = std_b / scale
    mean_k = mean_b - shift * std_k
    module = importlib.import_module(spec["module"])
    clf = TorchClassifier(module.build_net, n_classes=meta.n_classes, **dict(spec["params"]),
                          n_frames=ens.train_cfg.n_frames, threads=ens.train_cfg.threads)
    clf.input_shape = (int(meta.network.input_shape[0]), width)
    clf.net = copy.deepcopy(net.members[k]).eval()
    clf.norm = Normaliser(mean_k.astype(np.float32), std_k.astype(np.float32))
    return clf


def split(path: Path, out: Path) -> list[Path]:
    """Write every member of the ensemble at ``path`` under ``out`` (``<k>-<name>``)."""
    ens, meta = load_trained(path)
    if meta.network.module != "emovox.models.ensemble":
        raise SystemExit(f"{path}: not an ensemble ({meta.network.module})")
    if meta.network.params.get("functional"):
        raise SystemExit(f"{path}: has a functional (linear) member; splitting writes "
                         "networks only: keep that member's own folder")
    modes = utt_norm_modes(meta.preprocess.feature_params.get("utt_norm", "none"))
    names = list(meta.trained_on.get("members") or [])
    augs = list(meta.trained_on.get("member_augment") or [""] * len(names))
    trained_on = {k: v for k, v in meta.trained_on.items()
                  if k not in ("members", "member_augment", "seconds")}
    data = member_data(meta.trained_on)
    written = []
    for k, name in enumerate(names):
        clf = member_classifier(ens, meta, k)
        mode = modes[ens.net.inputs[k]]
        params = {key: v for key, v in meta.preprocess.feature_params.items()
                  if key != "utt_norm"}
        if mode is not UtteranceNorm.NONE:
            params["utt_norm"] = mode.value
        pre = meta.preprocess.replace(feature_params=params, frontend=None,
                                      frontend_params=None, norm=None)
        config: dict[str, Any] = {"model": {"name": name, "params": {}},
                                  **({"data": data} if data is not None else {})}
        aug = member_augment(augs[k]) if augs[k] else None
        if aug is not None:
            config["augment"] = aug
        dest = out / f"{k}-{name}"
        save_model(clf, dest, config, extra={"name": name, "trained_on": trained_on},
                   preprocess=pre)
        attach_inference(dest)
        written.append(dest)
        print(f"{dest}: {name}, utt_norm {mode.value}, augmentation: {augs[k] or 'none'}"
              f"{'' if aug is not None or not augs[k] else ' (not a named recipe: dropped)'}")
    return written


def check(path: Path, members: list[Path]) -> float:
    """Largest probability difference between the ensemble at ``path`` and the ensemble of
    ``members`` on 64 random inputs (network input, standardised)."""
    orig, meta = load_trained(path)
    with tempfile.TemporaryDirectory() as tmp:
        ensemble_bundle(members, Path(tmp) / "again", onnx=False)
        again, meta_again = load_trained(Path(tmp) / "again")
    if meta_again.preprocess != meta.preprocess:
        raise SystemExit(f"re-joined preprocessing differs: {meta_again.preprocess}")
    x = torch.from_numpy(np.random.default_rng(0).standard_normal(
        (64, *orig.input_shape)).astype(np.float32))
    with torch.no_grad():
        a = orig.net.eval()(x).exp().numpy()
        b = again.net.eval()(x).exp().numpy()
    return float(np.abs(a - b).max())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("ensemble", type=Path)
    ap.add_argument("out", type=Path)
    args = ap.parse_args(argv)
    if args.out.exists() and any(args.out.iterdir()):
        raise SystemExit(f"{args.out}: exists and is not empty")
    members = split(args.ensemble, args.out)
    diff = check(args.ensemble, members)
    print(f"largest probability difference, re-joined vs original: {diff:.2e}")
    return 0 if diff < 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main())
