"""How much do a model's answers move when the microphone, the room or the line changes?

    .venv/bin/python bench/channel_robustness.py                      # bundled default, URDU
    .venv/bin/python bench/channel_robustness.py --data emovo=../shared/data/extra/emovo \
        --model default --model ravdess
    .venv/bin/python bench/channel_robustness.py --cv runs/parts/ch-ecapa_cmvn-emobox-f?
    .venv/bin/python bench/channel_robustness.py --cv runs/parts/ch-crnn_cmvn-emobox-f? \
        --cv runs/parts/ch-ecapa_cmvn-emobox-f? --cv runs/parts/ch-reslstm_logmel-emobox-f?

``--cv PART ...``: cross-validation parts run with ``--save-models`` (one fold each): every
fold's own model scores that fold's test clips (listed in the part's ``predictions.csv``),
clean and degraded, so the figures are on speakers the model never heard; UA over the
corpus's classes, pooled over the folds. Fold models carry no temperature, so there
``uncertain`` reads uncalibrated probabilities. ``--cv`` given several times (one list of
parts per network, the same folds in the same order): each fold's networks are averaged,
as ``emovox fuse`` and ``emovox ensemble`` average them.

Every labelled clip of the corpus is decoded at the model's rate (as ``emovox predict``
does), degraded in each of the conditions below, and read as one training clip
(:meth:`Predictor.wave_probabilities`: no speech check, the view of cross-validation and of
``emovox evaluate --artifact``). Per model and condition:

* ``UA``: unweighted accuracy over the classes the corpus shares with the model, the
  probabilities restricted to them and renormalised (as ``evaluate --artifact`` scores);
* ``kept``: % of clips whose top label (all of the model's classes) equals the clean clip's;
* ``uncertain``: % of answers whose calibrated top probability is below the product's
  threshold (:data:`emovox.serving.answer.UNCERTAIN_BELOW`);
* ``top answer``: the label given most often and its share (a collapse shows here).

Conditions (the degradations of :mod:`emovox.augment`, the training augmenter's own
functions, each with a fixed random generator per clip so reruns agree):

| name | what |
|---|---|
| clean | the file as decoded |
| telephone | band-pass 300-3400 Hz (4th-order Butterworth) |
| cheap mic | band-pass 150-7000 Hz and +8 dB peaking EQ at 2.5 kHz (a presence peak) |
| white noise 20 dB | white noise at 20 dB SNR |
| pink noise 10 dB | pink noise at 10 dB SNR |
| reverb 0.5 s | a synthetic room impulse response, RT60 0.5 s |
| hum 50 Hz -20 dB | a pure 50 Hz mains line 20 dB under the clip's mean power (stop 42) |
| buzz 60 Hz -20 dB | a 60 Hz buzz (every harmonic to 1 kHz, amplitude 1/k), 20 dB under |

and three real codecs (:mod:`emovox.audio.codec`: an ffmpeg encode + decode round trip; not
drawn from the augmenter's distribution, which has no codec; ``--skip-codecs`` leaves them
out):

| name | what |
|---|---|
| GSM phone | GSM 06.10 full rate, 13 kbit/s at 8 kHz (the 2G mobile phone codec) |
| Opus 12k VoIP | Opus at 12 kbit/s in VoIP mode (calls and messengers) |
| MP3 32k | MP3 at 32 kbit/s (LAME) |

Which corpus says what: URDU was never trained on by either bundled model, so its UA is an
unseen-corpus figure; EMOVO and RAVDESS are in the bundled models' training data, so there
only ``kept`` and ``uncertain`` say something (how stable the answers are), not ``UA``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
from target_stats import fold_predictor

from emovox import augment as aug
from emovox.audio import load_audio
from emovox.audio.codec import Codec, codec_round_trips
from emovox.cli.common import ExitCode
from emovox.corpora import scan_corpus
from emovox.errors import EmovoxError
from emovox.experiment.crosscorpus import shared_label_set
from emovox.experiment.rundir import RunDirError, read_run
from emovox.metrics import compute_metrics
from emovox.serving.answer import UNCERTAIN_BELOW
from emovox.serving.predictor import Predictor

#: the codec conditions (real codecs, outside the augmenter's distribution)
CODECS: dict[str, Codec] = {
    "GSM phone": Codec.GSM, "Opus 12k VoIP": Codec.OPUS_VOIP, "MP3 32k": Codec.MP3_32K,
}

Degrade = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]

CONDITIONS: dict[str, Degrade] = {
    "clean": lambda w, sr, rng: w,
    "telephone": lambda w, sr, rng: aug.band_limit(w, sr, 300.0, 3400.0),
    "cheap mic": lambda w, sr, rng: aug.peaking_eq(aug.band_limit(w, sr, 150.0, 7000.0), sr,
                                                   2500.0, 8.0),
    "white noise 20 dB": lambda w, sr, rng: aug.add_noise(w, rng, 20.0, 0.0),
    "pink noise 10 dB": lambda w, sr, rng: aug.add_noise(w, rng, 10.0, 1.0),
    "reverb 0.5 s": lambda w, sr, rng: aug.reverb(w, sr, rng, 0.5),
    "hum 50 Hz -20 dB": lambda w, sr, rng: aug.add_hum(w, sr, rng, -20.0, mains_hz=50.0,
                                                       buzz=False),
    "buzz 60 Hz -20 dB": lambda w, sr, rng: aug.add_hum(w, sr, rng, -20.0, mains_hz=60.0,
                                                        buzz=True),
}


def parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="urdu=../shared/data/extra/urdu",
                    help="CORPUS=DIR (a registered corpus reader and its folder)")
    ap.add_argument("--model", action="append",
                    help="bundled model name or model folder (repeatable; default: default)")
    ap.add_argument("--max-clips", type=int, default=0,
                    help="N labelled clips spread evenly over the sorted list (0: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-codecs", action="store_true",
                    help="leave out the codec conditions (ffmpeg round trips)")
    ap.add_argument("--cv", nargs="+", type=Path, metavar="PART", action="append",
                    help="CV part runs with saved fold models (instead of --data/--model); "
                         "repeat for an ensemble: one list per network, same folds")
    return ap.parse_args()


def load_clips(corpus: str, root: Path, max_clips: int, sr: int
               ) -> tuple[list[np.ndarray], list[str]]:
    """Decoded waves and labels of the corpus's labelled clips (unreadable ones skipped)."""
    utts = scan_corpus(corpus, root, detect_duplicates=False).labelled
    utts = sorted(utts, key=lambda u: str(u.path))
    if max_clips and len(utts) > max_clips:  # evenly spread, so every class stays in
        utts = [utts[int(i)] for i in np.linspace(0, len(utts) - 1, max_clips)]
    waves, labels = [], []
    for u in utts:
        try:
            waves.append(load_audio(u.path, sr=sr, trim=False).wave)
            labels.append(u.emotion.value)
        except EmovoxError as exc:
            print(f"skipped {u.path}: {exc}")
    return waves, labels


def probabilities(pred: Predictor, waves: list[np.ndarray], seed: int, first: int = 0,
                  codecs: bool = True) -> dict[str, np.ndarray]:
    """``(n, n_labels)`` calibrated probabilities of ``waves`` in every condition; clip i
    is degraded with the generator ``[seed, first + i]``; each codec takes all clips in
    one ffmpeg round trip."""
    out = {name: np.stack([pred.wave_probabilities(
        degrade(w, pred.sr, np.random.default_rng([seed, first + i])), pred.sr)
        for i, w in enumerate(waves)]) for name, degrade in CONDITIONS.items()}
    for name, codec in CODECS.items() if codecs else ():
        out[name] = np.stack([pred.wave_probabilities(w, pred.sr)
                              for w in codec_round_trips(waves, pred.sr, codec)])
    return out


def rows_of(probs: dict[str, np.ndarray], labels: list[str], model_labels: list[str],
            classes: list[str]) -> list[dict[str, object]]:
    """One row per condition: UA on ``classes`` (probabilities restricted to them), kept %,
    uncertain %, top answer."""
    cols = [model_labels.index(c) for c in classes]
    keep = [i for i, lab in enumerate(labels) if lab in classes]
    y = np.array([classes.index(labels[i]) for i in keep])
    clean_top = probs["clean"].argmax(1)
    rows = []
    for name, p in probs.items():
        top = p.argmax(1)
        ua = compute_metrics(y, p[keep][:, cols].argmax(1), classes).ua
        label, n = Counter(model_labels[t] for t in top).most_common(1)[0]
        rows.append({"condition": name, "ua": ua, "kept": 100 * np.mean(top == clean_top),
                     "uncertain": 100 * np.mean(p.max(1) < UNCERTAIN_BELOW),
                     "top": f"{label} {100 * n / len(top):.0f} %"})
    return rows


def cv_rows(groups: list[list[Path]], seed: int, codecs: bool
            ) -> tuple[str, int, list[dict[str, object]]]:
    """Every fold's model (the mean of its networks' probabilities: one part list per
    network) on that fold's test clips (its predictions.csv), pooled over the folds."""
    if len({len(g) for g in groups}) != 1:
        raise SystemExit("every --cv list needs the same folds")
    probs: dict[str, list[np.ndarray]] = {}
    labels: list[str] = []
    model_labels: list[str] = []
    names: list[str] = []
    for parts in zip(*groups, strict=True):
        scored = [read_run(p).predictions.scored() for p in parts]
        if any([r.path for r in s] != [r.path for r in scored[0]] for s in scored):
            raise SystemExit(f"{', '.join(map(str, parts))}: other test clips (not one fold)")
        rows = scored[0]
        per_net = []
        decoded: dict[int, list[np.ndarray]] = {}  # the fold's clips, once per sample rate
        for part, own in zip(parts, scored, strict=True):
            pred = fold_predictor(part, own, backend="auto")
            model_labels = list(pred.labels)
            if not labels:  # the first fold names the networks
                names.append(pred.model_id)
            if pred.sr not in decoded:
                decoded[pred.sr] = [load_audio(r.path, sr=pred.sr, trim=False).wave
                                    for r in rows]
            waves = decoded[pred.sr]
            per_net.append(probabilities(pred, waves, seed, first=len(labels), codecs=codecs))
        for c in per_net[0]:
            probs.setdefault(c, []).append(np.mean([p[c] for p in per_net], axis=0))
        labels += [r.true for r in rows]
    classes = [c for c in model_labels if c in set(labels)]
    pooled = {c: np.concatenate(v) for c, v in probs.items()}
    return " + ".join(names), len(labels), rows_of(pooled, labels, model_labels, classes)


def print_rows(title: str, rows: list[dict[str, object]]) -> None:
    print(f"\n{title}")
    print("| condition | UA | kept % | uncertain % | top answer |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['condition']} | {r['ua']:.1f} | {r['kept']:.1f} | {r['uncertain']:.1f} | "
              f"{r['top']} |")


def main() -> int:
    a = parse()
    try:
        bench(a)
    except RunDirError as exc:  # a missing --cv part, or one without its fold model
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    return ExitCode.OK


def bench(a: argparse.Namespace) -> None:
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    t0 = time.perf_counter()
    if a.cv:
        name, n, rows = cv_rows(a.cv, a.seed, not a.skip_codecs)
        print_rows(f"{name} and its sibling folds, each on its own test speakers "
                   f"({len(a.cv[0])} folds, {n} clips)", rows)
    corpus, _, root = a.data.partition("=")
    for m in [] if a.cv else (a.model or ["default"]):
        pred = Predictor.from_artifact(m, backend="onnx", threads=1)
        waves, labels = load_clips(corpus, Path(root), a.max_clips, pred.sr)
        classes = [c for c in shared_label_set(corpus)
                   if c in pred.labels and c in set(labels)]
        probs = probabilities(pred, waves, a.seed, codecs=not a.skip_codecs)
        rows = rows_of(probs, labels, list(pred.labels), classes)
        print_rows(f"{pred.model_id} on {corpus}: {len(waves)} clips, "
                   f"chance UA {100 / len(classes):.1f}", rows)
    print(f"load average at end: {os.getloadavg()[0]:.2f}; {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    raise SystemExit(main())
