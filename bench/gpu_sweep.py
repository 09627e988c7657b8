"""A hyper-parameter sweep on a CUDA GPU, over features made here (stop 49).

    # here (CPU): the training and validation clips of a run's first fold, as the harness
    # hands them to the network (test clips are never written, so nothing can be chosen on
    # them), each sequence cut to at most --max-frames around its centre and stored in
    # steps of 1/16 over -4..12 (uint8: the device takes at most 64 MiB with the repository)
    .venv/bin/python bench/gpu_sweep.py dump --config runs/s47/rnd-ecapa-s0/config.yaml \\
        --out .sweep/rnd.npz
    # on a machine with a CUDA GPU (no audio, no feature extraction there): every grid point
    # trained with `-p device=cuda`, its validation UA written as one JSON line
    python3 bench/gpu_sweep.py run --features .sweep/rnd.npz --grid bench/sweeps/rnd49.json \\
        --out sweep.jsonl --procs 12

A grid file is a JSON object: ``{"seeds": [..], "points": {LABEL: {-p params}}}``; every
point runs once per seed, with the dump's model or the one its ``"model"`` key names (a
network that reads the same input). Each output line holds the point, the seed,
the best validation UA and its epoch, the last epoch's training loss and the seconds. The
figures choose a recipe only through validation clips (the training side's 10 %); a
recipe so chosen is then measured on the CPU with ``emovox evaluate`` like any other row.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import time
from pathlib import Path
from typing import Any

import numpy as np

#: the stored sequences' resolution and lowest value (the CMVN log-mel is in standard
#: deviations: 0.1 % of its values lie beyond -3.2..2.8)
STEP, LOW = 1 / 16, -4.0


def dump(config: Path, out: Path, max_frames: int) -> None:
    """Write fold 0's training clips (augmented copies included, as configured) and
    validation clips of ``config``'s run: ragged sequences (:data:`STEP`-quantised uint8),
    labels, the model's name."""
    from emovox.config import ExperimentConfig
    from emovox.experiment.runner import prepare_data, select_folds, training_sources
    from emovox.models import get_model_spec
    from emovox.preprocess import pad_or_crop

    cfg = ExperimentConfig.load_yaml(config)
    spec = get_model_spec(cfg.model.name)
    data = prepare_data(cfg, spec)
    fold = select_folds(cfg, data)[0]
    x_tr, y_tr, _ = training_sources(cfg, spec, data.utts, data.feats, data.y,
                                     data.content_ids, fold.train)
    x_va = [data.feats[i] for i in fold.val]
    arrays: dict[str, np.ndarray] = {"model": np.array(cfg.model.name)}
    for name, xs, y in (("train", x_tr, y_tr), ("val", x_va, data.y[fold.val])):
        cut = [pad_or_crop(s, min(len(s), max_frames)) for s in xs]
        q = np.rint((np.concatenate(cut) - LOW) / STEP)  # (sum T, F)
        arrays[f"{name}_x"] = np.clip(q, 0, 255).astype(np.uint8)
        arrays[f"{name}_len"] = np.array([len(s) for s in cut], np.int32)
        arrays[f"{name}_y"] = np.asarray(y, np.int64)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays)
    print(f"{out}: {len(y_tr)} training, {len(fold.val)} validation clips, "
          f"{out.stat().st_size / 2**20:.1f} MiB")


def _ragged(z: Any, name: str) -> list[np.ndarray]:
    x = z[f"{name}_x"].astype(np.float32) * STEP + LOW
    ends = np.cumsum(z[f"{name}_len"])
    return np.split(x, ends[:-1])


def _one(job: tuple[str, str, dict[str, Any], int, str]) -> dict[str, Any]:
    """Train one grid point on ``device``; its validation figures."""
    features, label, params, seed, device = job
    from emovox.labels import LABELS
    from emovox.models import get_model_spec
    from emovox.training import build_model

    z = np.load(features)
    params = dict(params)
    spec = get_model_spec(params.pop("model", str(z["model"])))  # another network, same input
    model = build_model(spec, n_classes=len(LABELS), seed=seed,
                        **{"threads": 1, **params, "device": device})
    t0 = time.perf_counter()
    model.fit(_ragged(z, "train"), z["train_y"], _ragged(z, "val"), z["val_y"])
    h = model.history
    return {"point": label, "model": spec.name, "params": params, "seed": seed,
            "val_ua": max(h.val_ua), "best_epoch": h.best_epoch, "epochs_run": len(h.val_ua),
            "train_loss": h.train_loss[-1], "seconds": round(time.perf_counter() - t0, 1)}


def run(features: Path, grid: Path, out: Path, procs: int, device: str) -> None:
    g = json.loads(grid.read_text())
    jobs = [(str(features), label, params, seed, device)  # every point's first seed first
            for seed in g["seeds"] for label, params in g["points"].items()]
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
    r = sub.add_parser("run")
    r.add_argument("--features", type=Path, required=True)
    r.add_argument("--grid", type=Path, required=True)
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--procs", type=int, default=8)
    r.add_argument("--device", default="cuda", help="cpu: a smoke test of the grid here")
    a = ap.parse_args()
    if a.cmd == "dump":
        dump(a.config, a.out, a.max_frames)
    else:
        run(a.features, a.grid, a.out, a.procs, a.device)


if __name__ == "__main__":
    main()
