"""Multi-crop scoring: is a clip better judged on all of its frames than on its centre crop?

    .venv/bin/python bench/multicrop.py --out runs/mc-emobox \
        --cv 'runs/parts/ch-crnn_cmvn-emobox-f?' --cv 'runs/parts/ch-ecapa_cmvn-emobox-f?' \
        --cv 'runs/parts/ch-reslstm_logmel-emobox-f?'

Networks with a fixed input length (``n_frames``, 256 frames = 2.56 s for the default's) read
a clip's **centre crop** in ``evaluate`` and in the product (up to two model windows); frames
beyond it are never heard. Here every fold model of ``--cv`` parts (run with
``--save-models``, one glob per network, as in ``bench/target_stats.py``) scores its fold's
test clips twice: ``centre`` (today's reading, a check: it must reproduce the parts' stored
probabilities) and ``crops``: the trimmed, utterance-normalised log-mel cut into windows of
``n_frames`` starting every ``n_frames / 2`` frames plus one ending at the last frame (a clip
of at most ``n_frames`` keeps its one window), each network's softmax averaged over the
windows. Probabilities are restricted to the corpus's classes per network and averaged over
networks (as ``emovox fuse``); each setting is written as a run's ``predictions.csv`` under
``OUT/<setting>/``. No test-speaker information is used.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time
from pathlib import Path

import numpy as np
from target_stats import cv_groups, fold_predictor, restrict, ua, write_predictions

from emovox.audio import load_audio
from emovox.cli.common import ExitCode
from emovox.experiment.rundir import RunDirError, read_run
from emovox.serving.predictor import Predictor

SETTINGS = ("centre", "crops", "speeds")
#: playback speeds averaged by the ``speeds`` setting (the channel recipe's speed range)
TTA_SPEEDS = (0.9, 1.0, 1.1)


def window_starts(total: int, n: int) -> list[int]:
    """Starts of the ``n``-frame windows of a ``total``-frame clip: every ``n // 2`` frames
    and one ending at the last frame; ``[0]`` when the clip fits one window."""
    if total <= n:
        return [0]
    starts = list(range(0, total - n + 1, max(1, n // 2)))
    return starts if starts[-1] == total - n else [*starts, total - n]


def clip_probabilities(pred: Predictor, tta: Predictor, decoded: np.ndarray,
                       feats: np.ndarray) -> dict[str, np.ndarray]:
    """``{setting: (n_labels,)}`` softmax of one clip decoded at the model's rate, given its
    trimmed full ``(T, F)`` features; ``tta`` is ``pred`` reading at :data:`TTA_SPEEDS` (the
    product's own path, :meth:`Predictor.wave_probabilities`)."""
    pp, n = pred.preprocess, pred.preprocess.n_frames
    windows = [feats[s : s + n] for s in window_starts(len(feats), n)]
    return {"centre": pred.predict_proba_features([pp.fit_length(feats)])[0],
            "crops": pred.predict_proba_features(windows).mean(axis=0),
            "speeds": tta.wave_probabilities(decoded, pred.sr)}


def fold_probabilities(parts: list[Path]) -> tuple[list, list[str], dict[str, np.ndarray],
                                                   float, float]:
    """One fold: rows, labels, each setting's network average, the largest difference of
    ``centre`` from the stored answers, and the mean number of windows per clip."""
    rows = read_run(parts[0]).predictions.scored()
    sums: dict[str, np.ndarray] = {}
    labels: list[str] = []
    check, n_win = 0.0, 0.0
    corpora = [r.corpus for r in rows]
    for part in parts:
        preds = read_run(part).predictions
        if [Path(r.path).resolve() for r in preds.scored()] != [Path(r.path).resolve()
                                                                 for r in rows]:
            raise SystemExit(f"{part}: other test clips than {parts[0]} (not one fold)")
        pred = fold_predictor(part, preds.scored())
        labels = list(pred.labels)
        pp = pred.preprocess
        tta = dataclasses.replace(pred, preprocess=pp.replace(speeds=TTA_SPEEDS))
        got: dict[str, list[np.ndarray]] = {s: [] for s in SETTINGS}
        wins = []
        for r in rows:
            decoded = load_audio(r.path, sr=pred.sr, trim=False).wave
            feats = pp.features(pp.prepare(decoded, pred.sr).wave)
            wins.append(len(window_starts(len(feats), pp.n_frames)))
            for s, p in clip_probabilities(pred, tta, decoded, feats).items():
                got[s].append(p)
        n_win = float(np.mean(wins))
        for s in SETTINGS:
            p = restrict(np.array(got[s]), labels, corpora)
            sums[s] = sums.get(s, 0.0) + p / len(parts)
        kept = preds.probabilities()[:, [preds.labels.index(lab) for lab in labels]]
        check = max(check, float(np.abs(restrict(np.array(got["centre"]), labels, corpora)
                                        - kept).max()))
    return rows, labels, sums, check, n_win


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cv", action="append", required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    logging.getLogger("emovox").setLevel(logging.ERROR)  # each clip's hum / clipping note
    try:
        bench(cv_groups(args.cv), args.out)
    except RunDirError as exc:  # a missing part, or one without its fold model
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    return ExitCode.OK


def bench(groups: list[list[Path]], out: Path) -> None:
    every: dict[str, list] = {s: [] for s in SETTINGS}
    labels: list[str] = []
    for k, parts in enumerate(zip(*groups, strict=True)):
        t0 = time.perf_counter()
        rows, labels, probs, check, n_win = fold_probabilities(list(parts))
        fold = int(rows[0].fold)
        for s in SETTINGS:
            write_predictions(out / s / "predictions.csv", fold, rows, labels, probs[s],
                              header=k == 0)
            every[s].append((rows, probs[s]))
        print(f"fold {fold} ({len(rows)} clips, {n_win:.2f} windows per clip, "
              f"{time.perf_counter() - t0:.0f} s, max |p - stored| {check:.1e}): "
              + ", ".join(f"{s} {ua(rows, labels, probs[s]):.1f}" for s in SETTINGS),
              flush=True)
    for s in SETTINGS:
        rows = [r for rs, _ in every[s] for r in rs]
        p = np.concatenate([q for _, q in every[s]])
        per = {c: ua([r for r in rows if r.corpus == c], labels,
                     p[[r.corpus == c for r in rows]]) for c in sorted({r.corpus for r in rows})}
        print(f"{s}: pooled UA {ua(rows, labels, p):.1f}; per corpus "
              + ", ".join(f"{c} {v:.1f}" for c, v in per.items()))


if __name__ == "__main__":
    raise SystemExit(main())
