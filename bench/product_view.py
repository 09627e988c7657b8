"""What the product says on a corpus, next to what evaluation scores (stop 31 audit).

    .venv/bin/python bench/product_view.py --data urdu=../shared/data/extra/urdu

Evaluation (`evaluate --artifact`, every CV protocol) restricts a clip's probabilities to
the classes its corpus holds and renormalises them before the argmax; the product answers
over all eight classes. This prints both views from the same per-clip probabilities
(`Predictor.clip_probabilities`, as `evaluate --artifact`): accuracy, UA over the corpus's
classes, ECE, the share of answers under the 50 % "uncertain" line, and (8 classes) the
share of answers naming an emotion the corpus does not hold. Only a corpus the model never
heard says anything about new voices: the bundled `default` was trained on RAVDESS and
EMOVO, never on URDU.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from emovox.corpora import scan_corpus
from emovox.experiment.crosscorpus import shared_label_set
from emovox.metrics import compute_metrics, expected_calibration_error
from emovox.serving.answer import UNCERTAIN_BELOW
from emovox.serving.predictor import Predictor


def views(pred: Predictor, corpus: str, root: Path) -> dict[str, dict[str, float]]:
    utts = [u for u in scan_corpus(corpus, root, detect_duplicates=False).labelled]
    classes = [c for c in shared_label_set(corpus) if c in pred.labels
               and any(u.emotion.value == c for u in utts)]
    utts = [u for u in utts if u.emotion.value in classes]
    labels = list(pred.labels)
    p8 = np.stack([np.asarray(pred.clip_probabilities(u.path), np.float64) for u in utts])
    y8 = np.array([labels.index(u.emotion.value) for u in utts])
    cols = [labels.index(c) for c in classes]
    pr = p8[:, cols] / p8[:, cols].sum(1, keepdims=True)
    yr = np.array([cols.index(y) for y in y8])
    out = {}
    for name, p, y, lab in (("restricted (evaluation)", pr, yr, classes),
                            ("8 classes (product)", p8, y8, labels)):
        top = p.argmax(1)
        m = compute_metrics(y, top, lab)
        out[name] = {
            "n": len(y), "accuracy": 100 * float((top == y).mean()), "ua": m.ua,
            "ece": float(expected_calibration_error(p, y)),
            "uncertain": 100 * float((p.max(1) < UNCERTAIN_BELOW).mean()),
            "outside": 100 * float(np.isin(top, cols, invert=True).mean())
            if p.shape[1] == len(labels) else 0.0,
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default", help="bundled name or model folder")
    ap.add_argument("--data", action="append", required=True, metavar="NAME=DIR")
    args = ap.parse_args()
    pred = Predictor.from_artifact(args.model, threads=1)
    t0 = time.perf_counter()
    for spec in args.data:
        corpus, _, root = spec.partition("=")
        for view, r in views(pred, corpus, Path(root)).items():
            print(f"{corpus:8s} {view:24s} n {r['n']}  accuracy {r['accuracy']:.1f}  UA "
                  f"{r['ua']:.1f}  ECE {r['ece']:.3f}  uncertain {r['uncertain']:.1f} %  "
                  f"emotions the corpus lacks {r['outside']:.1f} %")
    print(f"({time.perf_counter() - t0:.0f} s, model {pred.model_id})")


if __name__ == "__main__":
    main()
