"""Noise before and after the speech of a clip: the product's reading against a cut to the speech.

    .venv/bin/python bench/noise_leadin.py --data urdu=../shared/data/extra/urdu
    .venv/bin/python bench/noise_leadin.py --model ravdess \
        --data emovo=../shared/data/extra/emovo --data urdu=../shared/data/extra/urdu

A clip is trimmed at 40 dB below its loudest frame, as in training; under background noise
less than 40 dB below the speech the trim keeps the noise-only lead-in and tail, which the
training clips (studio takes, noise added after their trim) never had. A review as a user
(stop 53) found that this costs confidence on clips of training actors (a RAVDESS clip with
pink noise 30 dB under it: "angry 82 %" -> "angry ? 37 %"). This compares, per clip and
condition, the product's answer (``Predictor.predict_wave``) with the clip cut ``--pad``
seconds around the speech detector's segments before that trim (only where the cut keeps
less than the trim would; an input over two model windows whose cut speech fits in two is
read as one clip). Conditions: the clip as recorded; pink noise 30 and 20 dB under its
speech (the power of its trimmed part); 2 s of -70 dBFS pink room tone each side.
Accuracy is over the corpus's classes (probabilities restricted to them, as ``evaluate``
scores); ``ok`` is the share answered at >= 50 % over the eight. Only corpora the model never
heard speak for new voices (the bundled ``default`` never heard URDU; ``ravdess`` never
heard EMOVO or URDU).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from emovox.audio import load_audio, trim_bounds
from emovox.augment import coloured_noise
from emovox.corpora import scan_corpus
from emovox.experiment.crosscorpus import shared_label_set
from emovox.features.vad import speech_verdict
from emovox.serving.answer import UNCERTAIN_BELOW
from emovox.serving.predictor import Predictor
from emovox.serving.speech import LONG_INPUT_WINDOWS, model_window_s

SR = 16000
CONDITIONS = ("clean", "noise30", "noise20", "tone2s")


def conditions(x: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    s, e = trim_bounds(x, SR, 40.0)
    power = float(np.mean(x[s:e] ** 2)) if e > s else float(np.mean(x**2))
    pink = coloured_noise(len(x), rng, 1.0)
    pink /= np.sqrt(np.mean(pink**2))
    tone = coloured_noise(len(x) + 4 * SR, rng, 1.0)
    tone *= 10 ** (-70 / 20) / np.sqrt(np.mean(tone**2))
    pad = np.zeros(2 * SR, np.float32)
    return {"clean": x, "noise30": x + pink * np.sqrt(power / 1e3),
            "noise20": x + pink * np.sqrt(power / 1e2),
            "tone2s": np.concatenate([pad, x, pad]) + tone}


def cut_probabilities(pred: Predictor, w: np.ndarray, pad_s: float) -> np.ndarray | None:
    """Probabilities of ``w`` cut to its speech (None: the product's reading stands)."""
    n_long = LONG_INPUT_WINDOWS * model_window_s(pred.preprocess) * SR
    v = speech_verdict(w, SR, by_pitch=len(w) > n_long)
    if not v.is_speech or not len(v.segments):
        return None
    a = max(0, int(np.floor((v.segments[:, 0].min() - pad_s) * SR)))
    b = min(len(w), int(np.ceil((v.segments[:, 1].max() + pad_s) * SR)))
    s, e = trim_bounds(w, SR, pred.top_db)
    if (a <= s and e <= b) or b - a > n_long:
        return None
    return pred.window_probabilities([w[a:b]])[0]


def run(pred: Predictor, corpus: str, root: Path, pad_s: float, step: int) -> None:
    utts = scan_corpus(corpus, root, detect_duplicates=False).labelled
    classes = [c for c in shared_label_set(corpus) if c in pred.labels]
    utts = [u for u in utts if u.emotion.value in classes][::step]
    cols = [pred.labels.index(c) for c in classes]
    rng = np.random.default_rng(0)
    hits = {(c, r): [] for c in CONDITIONS for r in ("product", "cut")}
    oks = {k: [] for k in hits}
    n_cut = dict.fromkeys(CONDITIONS, 0)
    for u in utts:
        x = load_audio(u.path, sr=SR).wave
        for cond, w in conditions(x, rng).items():
            w = w.astype(np.float32)
            ans = pred.predict_wave(w, SR)
            p = (np.array([ans.probabilities[k] for k in pred.labels])
                 if ans.probabilities else None)
            q = cut_probabilities(pred, w, pad_s) if p is not None else None
            n_cut[cond] += q is not None
            for reading, r in (("product", p), ("cut", q if q is not None else p)):
                right = r is not None and classes[int(np.argmax(r[cols]))] == u.emotion.value
                hits[(cond, reading)].append(right)
                oks[(cond, reading)].append(r is not None and r.max() >= UNCERTAIN_BELOW)
    print(f"\n{corpus}: {len(utts)} clips, {len(classes)} classes, pad {pad_s} s")
    print(f"{'condition':10} {'cut':>5} {'acc product':>12} {'acc cut':>8} {'ok product':>11} "
          f"{'ok cut':>7}")
    for c in CONDITIONS:
        print(f"{c:10} {n_cut[c]:5d} {100 * np.mean(hits[(c, 'product')]):12.1f} "
              f"{100 * np.mean(hits[(c, 'cut')]):8.1f} {100 * np.mean(oks[(c, 'product')]):11.1f} "
              f"{100 * np.mean(oks[(c, 'cut')]):7.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="model folder or bundled name (default)")
    ap.add_argument("--data", action="append", required=True, help="corpus=ROOT, repeatable")
    ap.add_argument("--pad", type=float, default=0.25, help="seconds kept around the speech")
    ap.add_argument("--step", type=int, default=1, help="every STEP-th clip")
    args = ap.parse_args()
    pred = Predictor.from_artifact(args.model)
    t0 = time.perf_counter()
    for spec in args.data:
        name, _, root = spec.partition("=")
        run(pred, name, Path(root), args.pad, max(1, args.step))
    print(f"\n{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
