"""Which is faster on this machine: one training process with 2 threads running two
folds one after the other, or two processes with 1 thread each running one fold each?

    .venv/bin/python bench/threads.py --data ../shared/data/ravdess/Audio_Speech_Actors_01-24 \
        --model crnn --epochs 3

Prints the wall-clock seconds of both strategies (features must be cached or are
extracted first, outside the timing).
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from emovox.config import DataConfig, ExperimentConfig, ModelConfig, SplitConfig
from emovox.experiment.dataset import featurise, gather, load_dataset
from emovox.labels import LABELS
from emovox.models import get_model_spec
from emovox.splits import make_folds
from emovox.training import build_model


def _load(data: str, model: str):
    cfg = ExperimentConfig(data=DataConfig(root=data), split=SplitConfig(),
                           model=ModelConfig(model))
    spec = get_model_spec(model)
    ds = load_dataset(cfg.data)
    items, errors, _, _ = featurise(cfg, spec, [u.path for u in ds.utts], ds.content_ids)
    assert not errors, errors
    folds = make_folds(ds.utts, cfg.split.protocol)
    return spec, items, ds.y, folds


def train_fold(data: str, model: str, fold: int, epochs: int, threads: int) -> float:
    spec, items, y, folds = _load(data, model)
    f = folds[fold]
    t0 = time.perf_counter()
    m = build_model(spec, n_classes=len(LABELS), seed=0, epochs=epochs, threads=threads,
                    patience=epochs + 1)
    m.fit(gather(items, f.train), y[f.train], gather(items, f.val), y[f.val])
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--model", default="crnn")
    ap.add_argument("--epochs", type=int, default=3)
    a = ap.parse_args()
    data = str(a.data)
    _load(data, a.model)  # warm the feature cache outside the timings

    t0 = time.perf_counter()
    fits = [train_fold(data, a.model, k, a.epochs, threads=2) for k in (0, 1)]
    seq = time.perf_counter() - t0
    t0 = time.perf_counter()
    with ProcessPoolExecutor(2) as pool:
        par_fits = list(pool.map(train_fold, [data] * 2, [a.model] * 2, [0, 1],
                                 [a.epochs] * 2, [1, 1]))
    par = time.perf_counter() - t0
    print(f"model {a.model}, {a.epochs} epochs per fold, 2 folds")
    print(f"  1 process x 2 threads, folds in sequence: {seq:7.1f} s wall "
          f"(training {np.sum(fits):.1f} s)")
    print(f"  2 processes x 1 thread, folds in parallel: {par:7.1f} s wall "
          f"(training {np.max(par_fits):.1f} s per fold)")
    print(f"  faster: {'parallel folds' if par < seq else 'one process, 2 threads'} "
          f"({max(seq, par) / min(seq, par):.2f}x)")


if __name__ == "__main__":
    main()
