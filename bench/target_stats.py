"""Target statistics (AdaBN): re-estimate a network's normalisation statistics on unlabelled
audio of the speaker or the recording source it is about to hear, and score the result on
cross-validation fold models (speaker-adapted rows only: it reads the test clips' audio).

    .venv/bin/python bench/target_stats.py --out runs/ts-emobox \
        --cv 'runs/parts/ch-crnn_cmvn-emobox-f?' --cv 'runs/parts/ch-ecapa_cmvn-emobox-f?' \
        --cv 'runs/parts/ch-reslstm_logmel-emobox-f?'
    .venv/bin/python bench/adapt.py runs/ts-emobox/speaker     # + the product's correction

``--cv PATTERN`` (one per network, each matching the same folds in the same order): parts run
with ``--save-models``, one fold each. Every fold's network scores that fold's test clips (the
rows of the part's ``predictions.csv``), each read as one training clip (as
``evaluate`` scores and :meth:`Predictor.wave_probabilities` reads), in three settings:

* ``none``: the fold model as trained (must reproduce the parts' own figures: a check of
  this script, printed as the largest probability difference);
* ``speaker``: for each test speaker, the statistics re-estimated on that speaker's clips;
* ``source``: re-estimated on all the fold's test clips (``emobox``: the fold's 4 actors, a
  batch of unseen speakers; ``loco``: the held-out corpus, one recording source).

"Re-estimated" means: the input normaliser's per-band mean and standard deviation are fitted
on the target clips' network input (as :meth:`Normaliser.fit` fits them on training clips),
and every ``BatchNorm`` layer's running mean and variance are re-accumulated over the target
clips (the layer in training mode, cumulative average, no gradient, dropout off; batches of
at most 128 clips drawn in a fixed random order). Nothing else changes: no label is read,
no weight is trained. A network without ``BatchNorm`` (the ResLSTM: ``LayerNorm`` only) gets
the new normaliser alone.

Each setting's probabilities (restricted to the clip's corpus classes per network, as
``evaluate`` stores them, then averaged over the networks as ``emovox fuse`` does) are
written as a run's ``predictions.csv`` under ``OUT/<setting>/``, so ``emovox report``-style
helpers and ``bench/adapt.py`` (the product's per-speaker prior correction) read them; UA per
fold and per corpus is printed.
"""

from __future__ import annotations

import argparse
import copy
import csv
import glob
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from emovox.audio import load_audio
from emovox.cli.common import ExitCode
from emovox.experiment.crosscorpus import shared_label_set
from emovox.experiment.rundir import Prediction, RunDirError, read_run, saved_fold_model
from emovox.metrics import compute_metrics
from emovox.preprocess import Normaliser
from emovox.serving.predictor import Predictor

SETTINGS = ("none", "speaker", "source")
#: most clips per BatchNorm statistics batch
STATS_BATCH = 128


def parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cv", action="append", required=True,
                    help="glob of one network's --save-models parts (repeat per network)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0, help="order of the statistics batches")
    return ap.parse_args()


def cv_groups(patterns: Sequence[str]) -> list[list[Path]]:
    """The parts each ``--cv`` glob matches, sorted; RunDirError naming a pattern that
    matches no folder, or when the patterns match different numbers of parts."""
    groups = [sorted(Path(p) for p in glob.glob(g)) for g in patterns]
    if empty := [g for g, parts in zip(patterns, groups, strict=True) if not parts]:
        raise RunDirError(f"--cv {empty[0]}: no such folder (a glob of cross-validation parts "
                          "run with --save-models)")
    if len({len(g) for g in groups}) != 1:
        raise RunDirError("--cv patterns match " + ", ".join(
            f"{len(g)} ({p})" for p, g in zip(patterns, groups, strict=True))
            + " parts: every network needs the same folds")
    return groups


def fold_predictor(part: Path, rows: Sequence[Prediction], backend: str = "torch"
                   ) -> Predictor:
    """The fold model the ``--save-models`` part ``part`` holds for its test clips ``rows``
    (one fold); RunDirError naming the folder when the rows span several folds or the part
    saved no model (:func:`~emovox.experiment.rundir.saved_fold_model`)."""
    folds = sorted({r.fold for r in rows}, key=str)
    if len(folds) != 1 or folds[0] is None:
        raise RunDirError(f"{part}: test clips of folds {folds or 'none'}, not one "
                          "cross-validation fold (evaluate --folds K --save-models)")
    return Predictor.from_artifact(saved_fold_model(part, folds[0]), backend=backend,
                                   threads=1)


def network_inputs(pred: Predictor, waves: Sequence[np.ndarray]) -> np.ndarray:
    """``(N, T, F)`` raw (un-normalised) network input of waves at the model's rate."""
    pp = pred.preprocess
    return np.stack([pp.cropped_features(pp.prepare(w, pred.sr).wave) for w in waves])


def refit_batchnorm(net: Any, x: np.ndarray, rng: np.random.Generator) -> None:
    """Every BatchNorm's running statistics of the torch module ``net`` re-accumulated over
    ``x`` (its normalised input), in batches of at most :data:`STATS_BATCH`; ``net`` is left
    in eval mode."""
    import torch

    kinds = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)
    bns = [m for m in net.modules() if isinstance(m, kinds)]
    if not bns:
        return
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches
        m.train()
    order = rng.permutation(len(x))
    n_batches = max(1, int(np.ceil(len(x) / STATS_BATCH)))
    with torch.no_grad():
        for idx in np.array_split(order, n_batches):
            if len(idx) > 1:  # BatchNorm cannot take statistics of one item
                net(torch.from_numpy(np.ascontiguousarray(x[idx])))
    net.eval()


def probabilities(pred: Predictor, raw: np.ndarray, target: np.ndarray | None,
                  rng: np.random.Generator) -> np.ndarray:
    """``(N, n_labels)`` softmax probabilities (the fold model's temperature, 1) of raw
    inputs; ``target``: a group id per item (statistics re-estimated within each group), or
    ``None`` for the model as trained."""
    import torch

    net = pred.runner.net
    out = np.zeros((len(raw), len(pred.labels)))
    groups = np.zeros(len(raw), int) if target is None else target
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        if target is None:
            x, model = pred.preprocess.normalise(raw[idx]), net
        else:
            x = Normaliser.fit(raw[idx])(raw[idx])
            model = copy.deepcopy(net)
            refit_batchnorm(model, x, rng)
        with torch.no_grad():
            logits = model(torch.from_numpy(x)).numpy().astype(np.float64)
        z = np.exp(logits - logits.max(1, keepdims=True))
        out[idx] = z / z.sum(1, keepdims=True)
    return out


def restrict(p: np.ndarray, labels: list[str], corpora: list[str]) -> np.ndarray:
    """Each row restricted to its corpus's classes and renormalised (as evaluate stores)."""
    out = np.zeros_like(p)
    for c in set(corpora):
        rows = np.array([k == c for k in corpora])
        cols = [labels.index(lab) for lab in shared_label_set(c) if lab in labels]
        q = p[np.ix_(rows, cols)]
        out[np.ix_(rows, cols)] = q / q.sum(1, keepdims=True)
    return out


def fold_probabilities(parts: Sequence[Path], seed: int
                       ) -> tuple[list, list[str], dict[str, np.ndarray], float]:
    """One fold: its scored rows, the labels, each setting's network-averaged probabilities,
    and the largest difference between the unadapted networks and their stored answers."""
    rows = read_run(parts[0]).predictions.scored()
    waves: dict[int, list[np.ndarray]] = {}
    sums = {s: 0.0 for s in SETTINGS}
    labels: list[str] = []
    check = 0.0
    corpora = [r.corpus for r in rows]
    for part in parts:
        preds = read_run(part).predictions
        stored = preds.scored()
        if [r.path for r in stored] != [r.path for r in rows]:
            raise SystemExit(f"{part}: other test clips than {parts[0]} (not one fold)")
        pred = fold_predictor(part, stored)
        labels = list(pred.labels)
        if pred.sr not in waves:
            waves[pred.sr] = [load_audio(r.path, sr=pred.sr, trim=False).wave for r in rows]
        raw = network_inputs(pred, waves[pred.sr])
        targets = {"none": None, "speaker": np.unique([r.speaker for r in rows],
                                                       return_inverse=True)[1],
                   "source": np.zeros(len(rows), int)}
        for s in SETTINGS:
            p = restrict(probabilities(pred, raw, targets[s], np.random.default_rng(seed)),
                         labels, corpora)
            sums[s] = sums[s] + p / len(parts)
            if s == "none":
                kept = preds.probabilities()[:, [preds.labels.index(lab) for lab in labels]]
                check = max(check, float(np.abs(p - kept).max()))
    return rows, labels, sums, check


def write_predictions(path: Path, fold: int, rows: list, labels: list[str], p: np.ndarray,
                      header: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w" if header else "a", newline="") as fh:
        w = csv.writer(fh)
        if header:
            w.writerow(["fold", "path", "speaker", "corpus", "true", "pred",
                        *[f"p_{lab}" for lab in labels], "error"])
        for r, q in zip(rows, p, strict=True):
            w.writerow([fold, r.path, r.speaker, r.corpus, r.true, labels[int(q.argmax())],
                        *[f"{v:.6f}" for v in q], ""])


def ua(rows: list, labels: list[str], p: np.ndarray) -> float:
    classes = [lab for lab in labels if lab in {r.true for r in rows}]
    cols = [labels.index(c) for c in classes]
    y = np.array([classes.index(r.true) for r in rows])
    return compute_metrics(y, p[:, cols].argmax(1), classes).ua


def main() -> int:
    args = parse()
    try:
        bench(args)
    except RunDirError as exc:  # a missing part, or one without its fold model
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    return ExitCode.OK


def bench(args: argparse.Namespace) -> None:
    groups = cv_groups(args.cv)
    every: dict[str, list] = {s: [] for s in SETTINGS}
    for k, parts in enumerate(zip(*groups, strict=True)):
        t0 = time.perf_counter()
        rows, labels, probs, check = fold_probabilities(parts, args.seed)
        fold = int(read_run(parts[0]).predictions.scored()[0].fold)
        for s in SETTINGS:
            write_predictions(args.out / s / "predictions.csv", fold, rows, labels, probs[s],
                              header=k == 0)
            every[s].append((rows, probs[s]))
        print(f"fold {fold} ({len(rows)} clips, {time.perf_counter() - t0:.0f} s, max |p - "
              f"stored| {check:.2e}): " + ", ".join(
                  f"{s} {ua(rows, labels, probs[s]):.1f}" for s in SETTINGS), flush=True)
    for s in SETTINGS:
        rows = [r for rs, _ in every[s] for r in rs]
        p = np.concatenate([q for _, q in every[s]])
        by_corpus = {c: ua([r for r in rows if r.corpus == c],
                           labels, p[[r.corpus == c for r in rows]])
                     for c in sorted({r.corpus for r in rows})}
        print(f"{s}: pooled UA {ua(rows, labels, p):.1f}; per corpus " + ", ".join(
            f"{c} {v:.1f}" for c, v in by_corpus.items()))


if __name__ == "__main__":
    raise SystemExit(main())
