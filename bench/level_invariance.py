"""Does a model's answer depend on how loud the clip is? (issue 10, "level invariance")

    .venv/bin/python bench/level_invariance.py                        # the bundled default
    .venv/bin/python bench/level_invariance.py --model runs/x/models/fold0 --model default
    .venv/bin/python bench/level_invariance.py --json li.json   # the figures in a file too

Each clip is decoded at 16 kHz (as ``emovox predict`` does), rescaled so that its peak sits at
every level from ``--min-db`` to ``--max-db`` dBFS in ``--step`` dB steps (-35 to -1 by 2:
18 levels, never clipping), and predicted. The figure is the share of (clip, level) pairs
whose top label equals the top label of the same clip at its original level (issue 10
target: >= 98 % for the bundled default). Also printed: the share per level, how often
each label is the answer at the quietest and the loudest level, and one ``flip:`` line per
(clip, level) pair whose top label changed: the clip, the level, and its two most probable
labels with their probabilities at its own level and at that level.

Clips: ``--n-ravdess`` (48) RAVDESS speech clips, two per actor with the emotion cycling so
every class appears six times (deterministic), plus the 8 clips of ``original-48k``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from pathlib import Path

import numpy as np

from emovox.audio import load_audio
from emovox.serving.answer import Prediction
from emovox.serving.predictor import Predictor

DATA = Path("../shared/data/ravdess")


def pick_clips(data: Path, n_ravdess: int) -> list[Path]:
    """``n_ravdess`` speech clips (``n_ravdess / 24`` per actor, emotions cycling) +
    the ``original-48k`` clips."""
    speech = data / "Audio_Speech_Actors_01-24"
    per_actor = max(1, n_ravdess // 24)
    clips: list[Path] = []
    for actor in range(1, 25):
        files = sorted((speech / f"Actor_{actor:02d}").glob("03-01-*"))
        for j in range(per_actor):
            emotion = (actor * per_actor + j) % 8 + 1
            cands = [f for f in files if f.name.split("-")[2] == f"{emotion:02d}"]
            if cands:
                clips.append(cands[(actor + j) % len(cands)])
    clips = clips[:n_ravdess]
    clips += sorted((data / "original-48k").glob("*.wav"))
    return clips


def top_two(p: Prediction) -> list[tuple[str, float]]:
    """The two most probable labels of an answer and their probabilities (none for
    ``no_speech``)."""
    return sorted((p.probabilities or {}).items(), key=lambda kv: -kv[1])[:2]


def measure(pred: Predictor, waves: list[np.ndarray], levels: np.ndarray) -> dict:
    """Reference labels at the original level, labels at every level, and each flip: a
    (clip, level) pair whose top label is not the clip's at its own level."""
    sr = pred.sr
    own = pred.predict_batch(waves, sr)
    ref = [p.label for p in own]
    answers: list[list[Prediction]] = []  # (levels, clips)
    for db in levels:
        target = 10.0 ** (db / 20.0)
        scaled = [(w * (target / np.abs(w).max())).astype(np.float32) for w in waves]
        answers.append(pred.predict_batch(scaled, sr))
    table = [[p.label for p in row] for row in answers]
    same = np.array([[lab == r for lab, r in zip(row, ref, strict=True)] for row in table])
    flips = [{"clip": i, "level": float(db), "own": top_two(own[i]), "at_level": top_two(p)}
             for db, row in zip(levels, answers, strict=True) for i, p in enumerate(row)
             if p.label != ref[i]]
    return {
        "agree": float(same.mean()),
        "per_level": {f"{db:g}": float(s) for db, s in zip(levels, same.mean(axis=1), strict=True)},
        "ref_counts": dict(Counter(ref)),
        "quietest_counts": dict(Counter(table[0])),
        "loudest_counts": dict(Counter(table[-1])),
        "clip_agree": {i: float(same[:, i].mean()) for i in range(len(waves))},
        "flips": flips,
    }


def flip_line(clip: Path, flip: dict) -> str:
    """One flip of :func:`measure` in words: the clip (its folder and name), the level, and
    the two most probable labels at its own level and at that level."""
    def two(pairs: list[tuple[str, float]]) -> str:
        return ", ".join(f"{lab} {p:.3f}" for lab, p in pairs) or "no speech"

    return (f"  flip: {clip.parent.name}/{clip.name} at {flip['level']:g} dBFS: own level "
            f"{two(flip['own'])}; at {flip['level']:g} dBFS {two(flip['at_level'])}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", help="bundled name or model folder (repeatable)")
    ap.add_argument("--data", type=Path, default=DATA, help="RAVDESS root (speech + original-48k)")
    ap.add_argument("--n-ravdess", type=int, default=48)
    ap.add_argument("--min-db", type=float, default=-35.0)
    ap.add_argument("--max-db", type=float, default=-1.0)
    ap.add_argument("--step", type=float, default=2.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    models = args.model or ["default"]
    levels = np.arange(args.min_db, args.max_db + 1e-9, args.step)
    clips = pick_clips(args.data, args.n_ravdess)
    waves = [load_audio(c).wave for c in clips]
    peaks = np.array([20 * np.log10(np.abs(w).max()) for w in waves])
    print(f"{len(clips)} clips, original peak median {np.median(peaks):.1f} dBFS "
          f"(range {peaks.min():.1f} .. {peaks.max():.1f}); {len(levels)} levels "
          f"{levels[0]:g} .. {levels[-1]:g} dBFS; load average {os.getloadavg()[0]:.2f}")
    out = {}
    for name in models:
        t0 = time.perf_counter()
        pred = Predictor.from_artifact(name, threads=args.threads)
        r = measure(pred, waves, levels)
        r["seconds"] = time.perf_counter() - t0
        out[name] = r
        print(f"\n{name}: top label kept on {100 * r['agree']:.1f} % of "
              f"{len(levels) * len(waves)} (clip, level) pairs  ({r['seconds']:.0f} s)")
        print("  per level: " + " ".join(f"{k}:{100 * v:.0f}" for k, v in r["per_level"].items()))
        print(f"  labels at original level: {r['ref_counts']}")
        print(f"  labels at {levels[0]:g} dBFS: {r['quietest_counts']}")
        print(f"  labels at {levels[-1]:g} dBFS: {r['loudest_counts']}")
        for flip in r["flips"]:
            print(flip_line(clips[flip["clip"]], flip))
    if args.json:
        args.json.write_text(json.dumps({"clips": [str(c) for c in clips],
                                         "levels": levels.tolist(), "models": out}, indent=1))


if __name__ == "__main__":
    main()
