"""Within-speaker label propagation before the product's prior correction, measured on a run's
cross-validation predictions (a negative result: not in the product).

    .venv/bin/python bench/adapt_neighbours.py select runs/ch1-loco3-fusion --corpus emovo
    .venv/bin/python bench/adapt_neighbours.py apply runs/ch1-fusion3-emobox --k 8 --a 0.75
    .venv/bin/python bench/adapt_neighbours.py apply runs/ch1-loco3-fusion --corpus urdu \
        --k 8 --a 0.75

Each clip's calibrated answer ``p_i`` (temperature fitted on the other folds, as
``bench/adapt.py``) is smoothed with its ``k`` nearest other clips of the same speaker,
``q_i = (1 - a) p_i + a mean_{j in kNN(i)} p_j``, then corrected by the speaker's mean answer
(all clips, alpha 1: what ``emovox batch --speaker-from`` does). Neighbours: cosine similarity
of eGeMAPS functionals (88) z-scored over the speaker's own clips (no labels). ``select``
prints the grid k in {3, 5, 8} x a in {0.25, 0.5, 0.75} on one corpus (the rule chose on
EMOVO's held-out predictions); ``apply`` prints one setting. The eGeMAPS vectors are cached in
``--cache`` (default ``/tmp/emovox-egemaps.npz``) keyed by path.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from emovox.audio import load_audio
from emovox.cli.common import ExitCode
from emovox.experiment.rundir import RunDirError
from emovox.features.smile import egemaps

sys.path.insert(0, str(Path(__file__).resolve().parent))
from adapt import Run, adapt_all, calibrate, load_run, recalls  # noqa: E402

GRID_K = (3, 5, 8)
GRID_A = (0.25, 0.5, 0.75)


def run_paths(folder: Path) -> np.ndarray:
    """The clip paths of ``predictions.csv`` in :func:`adapt.load_run`'s row order."""
    df = pd.read_csv(folder / "predictions.csv")
    if "error" in df:
        df = df[df["error"].isna() | (df["error"] == "")]
    return df["path"].astype(str).to_numpy()


def egemaps_of(paths: np.ndarray, cache: Path) -> np.ndarray:
    """``(N, 88)`` eGeMAPS functionals of ``paths``, decoded by emovox, cached by path."""
    known: dict[str, np.ndarray] = {}
    if cache.exists():
        with np.load(cache) as f:
            known = dict(zip(f["paths"].tolist(), f["X"], strict=True))
    todo = [p for p in dict.fromkeys(paths.tolist()) if p not in known]
    for i, p in enumerate(todo):
        a = load_audio(p)
        known[p] = egemaps(a.wave, a.sr)
        if i % 200 == 0:
            print(f"  eGeMAPS {i}/{len(todo)}", file=sys.stderr, flush=True)
    if todo:
        np.savez(cache, paths=np.array(list(known)), X=np.stack(list(known.values())))
    return np.stack([known[p] for p in paths]).astype(np.float64)


def speaker_z(x: np.ndarray, speaker: np.ndarray) -> np.ndarray:
    """``x`` (N, D) z-scored per speaker over the speaker's own rows (std floored at 1e-6)."""
    z = np.empty_like(x)
    for s in np.unique(speaker):
        m = speaker == s
        z[m] = (x[m] - x[m].mean(0)) / np.maximum(x[m].std(0), 1e-6)
    return z


def smooth(p: np.ndarray, z: np.ndarray, speaker: np.ndarray, k: int, a: float) -> np.ndarray:
    """``(1 - a) p_i + a`` * the mean answer of clip i's k most similar other clips."""
    q = p.copy()
    for s in np.unique(speaker):
        idx = np.flatnonzero(speaker == s)
        if len(idx) < 2:
            continue
        u = z[idx] / np.maximum(np.linalg.norm(z[idx], axis=1, keepdims=True), 1e-12)
        sim = u @ u.T
        np.fill_diagonal(sim, -np.inf)
        nn = np.argsort(-sim, axis=1)[:, : min(k, len(idx) - 1)]
        q[idx] = (1 - a) * p[idx] + a * p[idx][nn].mean(1)
    return q


def ua(y: np.ndarray, q: np.ndarray) -> float:
    return float(np.nanmean(recalls(y, q.argmax(1), q.shape[1])))


def settings(run: Run, paths: np.ndarray, corpus: str | None, cache: Path,
             grid: list[tuple[int, float]]) -> None:
    m = np.ones(len(run.y), bool) if corpus is None else run.corpus == corpus
    if not m.any():
        raise SystemExit(f"{run.name}: no clip of corpus {corpus!r}")
    p, y, spk = calibrate(run, "cv")[m], run.y[m], run.speaker[m]
    z = speaker_z(egemaps_of(paths[m], cache), spk)
    print(f"### {run.name}" + (f", {corpus}" if corpus else "") + f" ({m.sum()} clips)")
    print(f"unadapted {ua(y, p):.1f}; correction only {ua(y, adapt_all(p, spk, 1.0)[0]):.1f}")
    print("| k | a | smoothed | smoothed + correction | recalls (+ correction) |")
    print("|---|---|---|---|---|")
    for k, a in grid:
        q = smooth(p, z, spk, k, a)
        qc = adapt_all(q, spk, 1.0)[0]
        rec = " / ".join(f"{r:.1f}" for r in recalls(y, qc.argmax(1), len(run.labels))
                         if not np.isnan(r))
        print(f"| {k} | {a} | {ua(y, q):.1f} | {ua(y, qc):.1f} | {rec} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("stage", choices=["select", "apply"])
    ap.add_argument("run", type=Path, help="run folder with predictions.csv")
    ap.add_argument("--corpus", help="only this corpus's clips (leave-one-corpus-out runs)")
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--a", type=float, default=0.75)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/emovox-egemaps.npz"))
    args = ap.parse_args(argv)
    grid = ([(k, a) for k in GRID_K for a in GRID_A] if args.stage == "select"
            else [(args.k, args.a)])
    try:
        run = load_run(args.run)
    except RunDirError as exc:  # as bench/adapt.py says it
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    settings(run, run_paths(args.run), args.corpus, args.cache, grid)
    return ExitCode.OK


if __name__ == "__main__":
    raise SystemExit(main())
