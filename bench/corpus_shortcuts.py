"""How much of a corpus's labels does the recording alone tell? (stop 36)

    .venv/bin/python bench/corpus_shortcuts.py --data urdu=../shared/data/extra/urdu \
        --data emovo=../shared/data/extra/emovo \
        --data ravdess=../shared/data/ravdess/Audio_Speech_Actors_01-24

A corpus whose emotions were gathered from different recordings (talk shows, studios) can
carry its labels in the recording itself: its gain, a constant offset of the line. A model
that reads absolute level or the offset then scores on that corpus without hearing emotion.
This prints, per corpus, the unweighted accuracy (UA, over the corpus's classes) of a
class-balanced logistic regression (standardised inputs, scikit-learn) that sees only a few
numbers per clip, cross-validated with **speakers disjoint** (``GroupKFold`` over the
corpus's speaker ids, at most 6 folds), so it cannot learn a speaker's level either:

* ``absolute level``: the clip's RMS level and the 95th percentile of its 25 ms frame levels,
  in dB re full scale (both move with the recording's gain);
* ``level spread``: the 95th minus the 10th percentile of the frame levels, in dB (gain does
  not move it: how much the voice's loudness varies);
* ``DC offset``: the clip's mean sample value in dB re full scale (what the decoder removes
  since stop 30; read here from the raw samples).

Samples come straight from soundfile, before emovox's decoder: the point is what the files
hold. A diagnostic of the data, not a model: no emovox model reads these numbers (the
networks normalise each clip's level away; issue 10 requires level invariance).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import soundfile as sf
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from emovox.corpora import scan_corpus
from emovox.corpora.base import is_unknown_speaker

FRAME_S = 0.025  # frame length of the level percentiles (s), at the file's own rate
VIEWS = {"absolute level": [0, 1], "level spread": [2], "DC offset": [3],
         "absolute level + DC offset": [0, 1, 3]}


def clip_numbers(path: str) -> list[float]:
    """``[rms dBFS, p95 frame dBFS, p95 - p10 frame dB, |mean| dBFS]`` of one file (mono mix;
    25 ms frames at the file's own sample rate)."""
    x, sr = sf.read(path, dtype="float64", always_2d=True)
    x = x.mean(1)
    m = float(x.mean())
    xc = x - m
    frame = max(1, round(FRAME_S * sr))
    if len(xc) < frame:
        raise ValueError(f"{path}: shorter than one 25 ms frame")
    fr = xc[: len(xc) // frame * frame].reshape(-1, frame)
    lv = 20 * np.log10(np.sqrt((fr**2).mean(1)) + 1e-9)
    rms = 20 * np.log10(np.sqrt(np.mean(xc**2)) + 1e-9)
    p95, p10 = np.percentile(lv, 95), np.percentile(lv, 10)
    return [rms, p95, p95 - p10, 20 * np.log10(abs(m) + 1e-9)]


def unweighted_accuracy(y: np.ndarray, p: np.ndarray) -> float:
    return 100 * float(np.mean([np.mean(p[y == c] == c) for c in np.unique(y)]))


def corpus_report(name: str, root: str) -> bool:
    utts = [u for u in scan_corpus(name, root, detect_duplicates=False).labelled
            if not is_unknown_speaker(u.speaker)]
    groups = np.array([u.speaker for u in utts])
    n_folds = min(6, len(set(groups)))
    if n_folds < 2 or len({u.emotion for u in utts}) < 2:
        print(f"{name}: skipped: {len(utts)} labelled clips with known speakers, "
              f"{len(set(groups))} speakers (needs two emotions and two speakers)")
        return False
    rows, kept = [], []
    for u in utts:
        try:
            rows.append(clip_numbers(str(u.path)))
            kept.append(u)
        except (ValueError, RuntimeError) as exc:  # one bad clip, not the corpus
            print(f"  skipped: {exc}")
    utts, x = kept, np.array(rows)
    groups = np.array([u.speaker for u in utts])
    y = np.array([u.emotion.value for u in utts])
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000,
                                                             class_weight="balanced"))
    classes = sorted(set(y))
    print(f"{name}: {len(utts)} clips, {len(set(groups))} speakers, {len(classes)} classes "
          f"(chance UA {100 / len(classes):.1f}); {n_folds} speaker-disjoint folds")
    for view, cols in VIEWS.items():
        p = cross_val_predict(clf, x[:, cols], y, groups=groups, cv=GroupKFold(n_folds))
        print(f"  {view:28s} UA {unweighted_accuracy(y, p):5.1f}")
    med = {c: np.median(x[y == c], axis=0) for c in classes}
    print("  median per class: " + "; ".join(
        f"{c} rms {m[0]:.1f} dBFS, offset {m[3]:.1f} dBFS" for c, m in med.items()))
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", action="append", required=True, metavar="READER=DIR")
    args = ap.parse_args()
    t0 = time.perf_counter()
    reported = 0
    for spec in args.data:
        name, sep, root = spec.partition("=")
        if not sep:
            ap.error(f"--data {spec}: READER=DIR (e.g. urdu=../shared/data/extra/urdu)")
        try:
            reported += corpus_report(name, root)
        except (ValueError, OSError, RuntimeError) as exc:  # a reader, a folder, a file
            print(f"{name}: skipped: {exc}")
    print(f"({time.perf_counter() - t0:.0f} s)")
    if not reported:
        raise SystemExit("no corpus could be reported")


if __name__ == "__main__":
    main()
