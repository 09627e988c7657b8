"""Speaker adaptation by the speaker's mean posterior, measured on a run's cross-validation
predictions (no audio, no retraining): UA, per-class recall and ECE unadapted vs adapted.

    .venv/bin/python bench/adapt.py runs/fusion_nets-emobox [runs/fusion_3-emobox ...]

Reads ``predictions.csv`` (columns fold, path, speaker, true, p_<label>...): every clip was
scored by a model that never heard its speaker. The probabilities are first calibrated with a
temperature fitted, for each fold, on the **other** folds' predictions (``--temperature cv``,
the default; ``none`` keeps them as stored; a number applies that temperature), then adapted
with :func:`emovox.adaptation.adapt` (alpha 1, fixed a priori):

* ``all clips``: each speaker's prior is the mean posterior of all of its test clips (the
  clip itself included): what ``emovox batch --speaker-from`` does;
* ``k refs``: for each clip, ``k`` reference clips drawn at random from the **other** clips of
  its speaker (the clip itself excluded): what ``emovox predict --reference`` does with k
  clips; mean +- std over ``--seeds`` draws;
* ``k refs, one emotion``: the k references all carry one emotion (drawn at random for each
  clip): the case the method assumes away (a speaker heard in one emotion only).

ECE is reported for the adapted probabilities as they come (the old temperature) and with a
temperature re-fitted on adapted predictions of the other folds only (``ECE T'``).
``warned``: % of clips whose prior is mostly one emotion (top class >= ``DOMINANT_PRIOR``),
where the product warns that the references may all carry one emotion.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from emovox.adaptation import DOMINANT_PRIOR, adapt, references_mean, speaker_prior
from emovox.calibration import apply_temperature, fit_temperature
from emovox.cli.common import ExitCode
from emovox.experiment.rundir import PREDICTIONS_FILE, RunDirError
from emovox.metrics import expected_calibration_error

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Run:
    """One run's out-of-fold predictions."""

    name: str
    labels: list[str]
    probs: np.ndarray  # (N, C) as stored
    y: np.ndarray  # (N,) class indices
    fold: np.ndarray  # (N,)
    speaker: np.ndarray  # (N,)
    corpus: np.ndarray  # (N,) corpus of each clip ("" when the run has no corpus column)


@dataclass(frozen=True)
class Row:
    setting: str
    ua: list[float]  # one value per seed (pooled UA, %)
    fold_ua: list[float]  # mean over folds of the per-fold UA, per seed
    each_fold: list[float]  # per-fold UA (first seed), in np.unique(fold) order
    recall: np.ndarray  # (C,) pooled recall (%), mean over seeds
    ece: list[float]
    ece_refit: list[float]
    warned: list[float]  # % of clips whose prior is mostly one emotion (the product warns)


def load_run(folder: Path) -> Run:
    """The scored rows of ``folder``'s predictions.csv; RunDirError naming the folder when
    it is missing or holds none."""
    if not (folder / PREDICTIONS_FILE).is_file():
        raise RunDirError(f"{folder}: " + (f"no {PREDICTIONS_FILE} (a run folder of emovox "
                                            "evaluate or fuse, or bench/target_stats.py --out)"
                                            if folder.is_dir() else "no such folder"))
    df = pd.read_csv(folder / PREDICTIONS_FILE)
    if "error" in df:
        df = df[df["error"].isna() | (df["error"] == "")]
    cols = [c for c in df.columns if c.startswith("p_")]
    labels = [c[2:] for c in cols]
    y = df["true"].map({lab: i for i, lab in enumerate(labels)})
    if y.isna().any():
        raise SystemExit(f"{folder}: a true label is not among the probability columns")
    corpus = (df["corpus"].fillna("").astype(str) if "corpus" in df
              else pd.Series([""] * len(df))).to_numpy()
    return Run(folder.name, labels, df[cols].to_numpy(np.float64), y.to_numpy(int),
               df["fold"].to_numpy(), df["speaker"].astype(str).to_numpy(), corpus)


def per_fold(fold: np.ndarray, fn: Callable[[np.ndarray], np.ndarray], out: np.ndarray
             ) -> np.ndarray:
    """``out[fold == f] = fn(fold != f)`` for every fold (cross-fitting)."""
    res = np.empty_like(out)
    for f in np.unique(fold):
        res[fold == f] = fn(fold != f)[fold == f]
    return res


def calibrate(run: Run, how: str) -> np.ndarray:
    if how == "none":
        return run.probs / run.probs.sum(1, keepdims=True)
    if how != "cv":
        return apply_temperature(run.probs, float(how))
    out = np.empty_like(run.probs)
    for f in np.unique(run.fold):
        train = run.fold != f
        t = fit_temperature(run.probs[train], run.y[train])
        out[run.fold == f] = apply_temperature(run.probs[run.fold == f], t)
    return out


def refit(q: np.ndarray, y: np.ndarray, fold: np.ndarray) -> np.ndarray:
    """``q`` re-calibrated with a temperature fitted on the other folds' ``q`` only."""
    out = np.empty_like(q)
    for f in np.unique(fold):
        t = fit_temperature(q[fold != f], y[fold != f])
        out[fold == f] = apply_temperature(q[fold == f], t)
    return out


def recalls(y: np.ndarray, pred: np.ndarray, c: int) -> np.ndarray:
    return np.array([100 * np.mean(pred[y == k] == k) if np.any(y == k) else np.nan
                     for k in range(c)])


def score(setting: str, adapted: list[tuple[np.ndarray, np.ndarray]], run: Run) -> Row:
    """``adapted``: per seed, (probabilities, each clip's prior max)."""
    c = len(run.labels)
    ua, fua, rec, ece, ece2, warned, each = [], [], [], [], [], [], []
    for q, top in adapted:
        warned.append(100 * float(np.mean(top >= DOMINANT_PRIOR)))
        pred = q.argmax(1)
        r = recalls(run.y, pred, c)
        rec.append(r)
        ua.append(float(np.nanmean(r)))
        folds = [float(np.nanmean(recalls(run.y[run.fold == f], pred[run.fold == f], c)))
                 for f in np.unique(run.fold)]
        each = each or folds
        fua.append(float(np.mean(folds)))
        ece.append(100 * expected_calibration_error(q, run.y))
        ece2.append(100 * expected_calibration_error(refit(q, run.y, run.fold), run.y))
    return Row(setting, ua, fua, each, np.mean(rec, axis=0), ece, ece2, warned)


def adapt_all(p: np.ndarray, speaker: np.ndarray, alpha: float
              ) -> tuple[np.ndarray, np.ndarray]:
    q, top = np.empty_like(p), np.empty(len(p))
    for s in np.unique(speaker):
        m = speaker == s
        prior = speaker_prior(p[m])
        q[m], top[m] = adapt(p[m], prior, alpha), references_mean(prior, m.sum()).max()
    return q, top


def adapt_loo(p: np.ndarray, speaker: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each clip adapted with all the other clips of its speaker (itself excluded)."""
    q, top = np.empty_like(p), np.empty(len(p))
    for s in np.unique(speaker):
        idx = np.flatnonzero(speaker == s)
        total = p[idx].sum(0)
        for i in idx:
            prior = speaker_prior(((total - p[i]) / (len(idx) - 1))[None],
                                  n_clips=len(idx) - 1)
            q[i], top[i] = adapt(p[i], prior), references_mean(prior, len(idx) - 1).max()
    return q, top


def adapt_k(p: np.ndarray, run: Run, k: int, seed: int, one_emotion: bool
            ) -> tuple[np.ndarray, np.ndarray]:
    """Each clip adapted with k references drawn from the other clips of its speaker (all of
    one randomly drawn emotion when ``one_emotion``)."""
    rng = np.random.default_rng(seed)
    q, top = np.empty_like(p), np.empty(len(p))
    for i in range(len(p)):
        pool = np.flatnonzero((run.speaker == run.speaker[i]) & (np.arange(len(p)) != i))
        if one_emotion:
            emotions = [e for e in np.unique(run.y[pool]) if np.sum(run.y[pool] == e) >= 2]
            if emotions:  # else (a speaker with 1 clip per emotion) its other clips as they are
                pool = pool[run.y[pool] == rng.choice(emotions)]
        refs = rng.choice(pool, size=min(k, len(pool)), replace=False)
        prior = speaker_prior(p[refs])
        q[i], top[i] = adapt(p[i], prior), references_mean(prior, len(refs)).max()
    return q, top


def source_rows(p: np.ndarray, run: Run) -> list[Row]:
    """The correction with one prior per source: the held-out corpus when the run has one
    corpus per fold (leave one corpus out), else the test fold (what one batch of unseen
    speakers would give); alone, and followed by the per-speaker correction."""
    folds = np.unique(run.fold)
    by_corpus = (len(np.unique(run.corpus)) == len(folds) > 1
                 and all(len(np.unique(run.corpus[run.fold == f])) == 1 for f in folds))
    source = run.corpus if by_corpus else run.fold.astype(str)
    q, top = adapt_all(p, source, 1.0)
    name = "corpus" if by_corpus else "test fold"
    return [score(f"adapted, all clips of the {name} (not chosen)", [(q, top)], run),
            score(f"adapted, all clips of the {name}, then of the speaker (not chosen)",
                  [adapt_all(q, run.speaker, 1.0)], run)]


def bench_run(run: Run, temperature: str, ks: list[int], seeds: int, source: bool = False
              ) -> list[Row]:
    p = calibrate(run, temperature)
    rows = [score("unadapted", [(p, np.zeros(len(p)))], run),
            score("adapted, all clips of the speaker", [adapt_all(p, run.speaker, 1.0)], run),
            score("adapted, all clips, alpha 0.5 (not chosen)",
                  [adapt_all(p, run.speaker, 0.5)], run),
            score("adapted, all OTHER clips of the speaker", [adapt_loo(p, run.speaker)], run)]
    for k in ks:
        rows.append(score(f"adapted, {k} refs (clip excluded)",
                          [adapt_k(p, run, k, s, False) for s in range(seeds)], run))
    for k in ks:
        rows.append(score(f"adapted, {k} refs all of ONE emotion (at most all of it)",
                          [adapt_k(p, run, k, s, True) for s in range(seeds)], run))
    return rows + (source_rows(p, run) if source else [])


def _pm(v: list[float]) -> str:
    return f"{np.mean(v):.1f}" if len(v) == 1 else f"{np.mean(v):.1f} ± {np.std(v):.1f}"


def refit_temperatures(run: Run, q: np.ndarray) -> list[float]:
    """The temperature ``T'`` fitted on adapted predictions, per fold (other folds only)."""
    return [fit_temperature(q[run.fold != f], run.y[run.fold != f]) for f in np.unique(run.fold)]


def print_table(run: Run, rows: list[Row]) -> None:
    short = [lab[:4] for lab in run.labels]
    print(f"\n### {run.name} ({len(run.y)} clips, {len(np.unique(run.speaker))} speakers, "
          f"{len(np.unique(run.fold))} folds)\n")
    print("| setting | UA (pooled) | UA (fold mean) | worst class | ECE | ECE T' | warned | "
          + " | ".join(short) + " |")
    print("|---|---|---|---|---|---|---|" + "---|" * len(short))
    for r in rows:
        w = int(np.nanargmin(r.recall))
        print(f"| {r.setting} | {_pm(r.ua)} | {_pm(r.fold_ua)} | {run.labels[w]} "
              f"({r.recall[w]:.1f}) | {_pm(r.ece)} | {_pm(r.ece_refit)} | {_pm(r.warned)} | "
              + " | ".join(f"{x:.1f}" for x in r.recall) + " |")
    names = []
    for f in np.unique(run.fold):  # a fold of one corpus (leave-one-corpus-out) is named by it
        corpora = np.unique(run.corpus[run.fold == f])
        names.append(f"fold {f}" + (f" ({corpora[0]})" if len(corpora) == 1 and corpora[0]
                                    else ""))
    print("\nUA per fold: " + ", ".join(names))
    for r in rows:
        if len(r.ua) == 1:  # the settings without random reference draws
            print(f"  {r.setting}: " + " / ".join(f"{x:.1f}" for x in r.each_fold))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="run folders with predictions.csv")
    ap.add_argument("--temperature", default="cv",
                    help="cv (fitted on the other folds), none, or a number")
    ap.add_argument("--k", type=int, nargs="+", default=[4, 8, 16], help="reference clips")
    ap.add_argument("--seeds", type=int, default=5, help="draws of the k references")
    ap.add_argument("--source", action="store_true",
                    help="also the correction over all clips of a corpus / test fold")
    args = ap.parse_args(argv)
    print("command: bench/adapt.py " + " ".join(sys.argv[1:] if argv is None else argv))
    print(f"temperature: {args.temperature}; UA and recall in %, ECE in % (15 bins); "
          "± = std over seeds of the reference draw")
    try:
        runs = [load_run(folder) for folder in args.runs]  # every one before the first table
    except RunDirError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    for run in runs:
        print_table(run, bench_run(run, args.temperature, args.k, args.seeds, args.source))
        ts = refit_temperatures(run, adapt_all(calibrate(run, args.temperature), run.speaker,
                                               1.0)[0])
        how = "under" if max(ts) < 1 else "over" if min(ts) > 1 else "under/over"
        print(f"\nT' of 'adapted, all clips' per fold: {min(ts):.2f}-{max(ts):.2f}: the "
              f"adapted probabilities are {how}-confident (T' < 1 sharpens, > 1 softens)")
    return ExitCode.OK


if __name__ == "__main__":
    raise SystemExit(main())
