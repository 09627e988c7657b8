"""A hyper-parameter sweep on a CUDA GPU, over features made here (stop 49).

    # here (CPU): the clips the chosen folds of a run train and validate on, as the harness
    # hands them to the network (a clip that is only a test clip is never written, and a
    # fold's test clips are never read, so nothing can be chosen on them), each sequence
    # cut to at most --max-frames around its centre and stored in steps of 1/16 from -4
    # (uint8: the device takes at most 64 MiB with the repository)
    .venv/bin/python bench/gpu_sweep.py dump --config runs/s47/rnd-ecapa-s0/config.yaml \\
        --out .sweep/rnd.npz
    # on a machine with a CUDA GPU (no audio, no feature extraction there): every grid point
    # trained with `-p device=cuda`, its validation UA written as one JSON line
    python3 bench/gpu_sweep.py run --features .sweep/rnd.npz --grid bench/sweeps/rnd49.json \\
        --out sweep.jsonl --procs 12

A grid file is a JSON object: ``{"seeds": [..], "folds": [..], "points": {LABEL: {-p
params}}}``; every point runs once per seed and fold (``folds``: dumped ones, default 0),
with the dump's model or the one its ``"model"`` key names (a network that reads the same
input), on top of the run's own ``-p`` params. Each output line (appended to ``--out``)
holds the point, the model, the seed, the fold, the best validation UA and its epoch, the
last epoch's training loss and the seconds. The figures choose a recipe only through
validation clips (the training side's: 10 % of its clips on the random protocol, two of its
speakers on EmoBox); a recipe so chosen is then measured on the CPU with ``emovox
evaluate`` like any other row.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import time
from pathlib import Path
from typing import Any

import numpy as np

#: the stored sequences' resolution and lowest value, also written into each dump: the
#: CMVN log-mel is in standard deviations, and on stop 49's two dumps it spans about
#: -6.6..7.8 (0.2 % beyond -3.2..2.8); codes 0..255 cover -4..11.94, so 0.017 % (random
#: protocol) and 0.008 % (EmoBox) of the values, all below -4, are clipped
STEP, LOW = 1 / 16, -4.0


def dump(config: Path, out: Path, max_frames: int, folds: list[int]) -> None:
    """Write the clips that ``folds`` of ``config``'s run train and validate on, as the
    harness hands them to the network (ragged :data:`STEP`-quantised uint8 sequences and
    labels), each fold's training and validation indices into them, and the model's name.
    A clip that is only ever a test clip is not written; augmented copies are refused."""
    from emovox.config import ExperimentConfig
    from emovox.experiment.runner import prepare_data, select_folds
    from emovox.models import get_model_spec
    from emovox.preprocess import pad_or_crop

    cfg = ExperimentConfig.load_yaml(config)
    spec = get_model_spec(cfg.model.name)
    params = spec.validate(cfg.model.params)
    unlike = {"--augment": cfg.augment.variants > 0, "--adapt": cfg.adapt.value != "none",
              "--teacher": bool(cfg.teachers), "--balance-corpora": cfg.data.balance_corpora,
              "-p adversary": params.get("adversary", 0) > 0}
    if any(unlike.values()):  # what the harness would add to the network's input or loss
        raise SystemExit(f"the sweep does not reproduce {[k for k, v in unlike.items() if v]}")
    data = prepare_data(cfg, spec)
    every = select_folds(cfg, data)
    if missing := sorted(set(folds) - {f.index for f in every}):
        raise SystemExit(f"folds {missing}: this run's folds are {[f.index for f in every]}")
    chosen = [f for f in every if f.index in folds]
    keep = np.unique(np.concatenate([np.concatenate([f.train, f.val]) for f in chosen]))
    where = {int(i): j for j, i in enumerate(keep)}
    cut = [pad_or_crop(data.feats[i], min(len(data.feats[i]), max_frames)) for i in keep]
    q = np.rint((np.concatenate(cut) - LOW) / STEP)  # (sum T, F)
    arrays: dict[str, np.ndarray] = {
        "model": np.array(cfg.model.name), "x": np.clip(q, 0, 255).astype(np.uint8),
        "len": np.array([len(c) for c in cut], np.int32), "y": data.y[keep].astype(np.int64),
        "folds": np.array([f.index for f in chosen], np.int64), "step": np.array(STEP),
        "low": np.array(LOW), "params": np.array(json.dumps(cfg.model.params))}
    for f in chosen:
        arrays[f"fold{f.index}_train"] = np.array([where[int(i)] for i in f.train], np.int64)
        arrays[f"fold{f.index}_val"] = np.array([where[int(i)] for i in f.val], np.int64)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays)
    print(f"{out}: {len(keep)} clips, folds {[f.index for f in chosen]}, "
          f"{out.stat().st_size / 2**20:.1f} MiB")


def _clips(z: Any) -> list[np.ndarray]:
    x = z["x"].astype(np.float32) * float(z["step"]) + float(z["low"])
    return np.split(x, np.cumsum(z["len"])[:-1])


def _one(job: tuple[str, str, dict[str, Any], int, int, str]) -> dict[str, Any]:
    """Train one grid point on one fold on ``device``; its validation figures."""
    features, label, params, seed, fold, device = job
    from emovox.labels import LABELS
    from emovox.models import get_model_spec
    from emovox.training import build_model

    z = np.load(features)
    params = dict(params)
    spec = get_model_spec(params.pop("model", str(z["model"])))  # another network, same input
    model = build_model(spec, n_classes=len(LABELS), seed=seed, **{
        **json.loads(str(z["params"])), "threads": 1, **params, "device": device})
    clips, y = _clips(z), z["y"]
    tr, va = z[f"fold{fold}_train"], z[f"fold{fold}_val"]
    t0 = time.perf_counter()
    model.fit([clips[i] for i in tr], y[tr], [clips[i] for i in va], y[va])
    h = model.history
    return {"point": label, "model": spec.name, "params": params, "seed": seed, "fold": fold,
            "val_ua": max(h.val_ua), "best_epoch": h.best_epoch, "epochs_run": len(h.val_ua),
            "train_loss": h.train_loss[-1], "seconds": round(time.perf_counter() - t0, 1)}


def run(features: Path, grid: Path, out: Path, procs: int, device: str) -> None:
    g = json.loads(grid.read_text())
    folds = g.get("folds", [0])
    dumped = set(np.load(features)["folds"].tolist())
    if missing := sorted(set(folds) - dumped):
        raise SystemExit(f"folds {missing} are not in {features} (it holds {sorted(dumped)})")
    jobs = [(str(features), label, params, seed, k, device)  # every point's first seed first
            for seed in g["seeds"] for label, params in g["points"].items() for k in folds]
    with mp.get_context("spawn").Pool(procs) as pool, out.open("a") as f:
        for row in pool.imap_unordered(_one, jobs):
            f.write(json.dumps(row) + "\n")
            f.flush()
            print(json.dumps(row), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dump")
    d.add_argument("--config", type=Path, required=True)
    d.add_argument("--out", type=Path, required=True)
    d.add_argument("--max-frames", type=int, default=256)
    d.add_argument("--folds", type=int, nargs="+", default=[0])
    r = sub.add_parser("run")
    r.add_argument("--features", type=Path, required=True)
    r.add_argument("--grid", type=Path, required=True)
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--procs", type=int, default=8)
    r.add_argument("--device", default="cuda", choices=["cuda", "cpu"],
                   help="cpu: a smoke test of the grid here")
    a = ap.parse_args()
    if a.cmd == "dump":
        dump(a.config, a.out, a.max_frames, a.folds)
    else:
        run(a.features, a.grid, a.out, a.procs, a.device)


if __name__ == "__main__":
    main()
