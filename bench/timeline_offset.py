"""The same audio at another offset of a long file: how much does its timeline move?

    .venv/bin/python bench/timeline_offset.py --out /tmp/h5/offset.wav
    .venv/bin/python bench/timeline_offset.py --minutes 10 --copies 3 --model ravdess

A recording is built from one actor's RAVDESS clips (every clip in name order, repeated as
needed, each followed by a pause drawn from ``--pause`` seconds, seed ``--seed``) up to
``--minutes``; the file is that recording ``--copies`` times in a row. ``emovox timeline``'s
code (``build_timeline`` on the file written, as the command reads it) windows each copy;
for each pair of copies, each window of the later one is paired with the earlier one's
window whose start, less the offset between them, is nearest. Printed: windows per copy; per
pair, how far the paired bounds lie apart (and how many windows more than 20 ms), label
changes, ok/uncertain flips and the largest confidence move; then ``replay``: the first
copy's audio cut at a later copy's bounds (less the offset) and predicted alone
(``span_probabilities``, as the timeline does), and how many of the later copy's answers
that gives back (all of them: the bounds alone move the answers). A review as a user (stop
54) measured a 10-minute recording of Actor_05 three times: 109 windows per copy, 2 labels
changed, 6 ok/uncertain flips, confidence moved up to 0.164, bounds 3-17 ms apart.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from emovox.audio import TARGET_SR, load_audio
from emovox.serving.answer import UNCERTAIN_BELOW
from emovox.serving.predictor import Predictor
from emovox.serving.timeline import build_timeline
from emovox.serving.timeline_doc import Segment, SegmentKind

ACTOR = Path("../shared/data/ravdess/Audio_Speech_Actors_01-24/Actor_05")


def recording(actor: Path, minutes: float, pause: tuple[float, float], seed: int
              ) -> np.ndarray:
    """The actor's clips with pauses between them, up to ``minutes`` (16 kHz mono)."""
    clips = [load_audio(p, sr=TARGET_SR).wave for p in sorted(actor.glob("*.*"))]
    if not clips:
        raise SystemExit(f"no clips in {actor}")
    rng = np.random.default_rng(seed)
    parts: list[np.ndarray] = []
    n = k = 0
    while n < minutes * 60 * TARGET_SR:
        gap = np.zeros(int(rng.uniform(*pause) * TARGET_SR), np.float32)
        parts += [clips[k % len(clips)], gap]
        n += len(parts[-2]) + len(gap)
        k += 1
    return np.concatenate(parts)


def compare(first: list[Segment], later: list[Segment], offset: float) -> dict[str, float]:
    """Each window of ``later`` against ``first``'s nearest (start less ``offset``)."""
    starts = np.array([s.start for s in first])
    shift, labels, flips, moved = [], 0, 0, 0.0
    for s in later:
        f = first[int(np.argmin(np.abs(starts - (s.start - offset))))]
        shift += [abs(s.start - offset - f.start), abs(s.end - offset - f.end)]
        labels += s.label != f.label
        flips += s.status != f.status
        moved = max(moved, abs((s.confidence or 0.0) - (f.confidence or 0.0)))
    return {"labels": labels, "flips": flips, "moved": moved,
            "shift_min_ms": 1e3 * min(shift), "shift_max_ms": 1e3 * max(shift),
            "far": sum(max(shift[k], shift[k + 1]) > 0.02 for k in range(0, len(shift), 2))}


def replay(pred: Predictor, x: np.ndarray, later: list[Segment], offset: float) -> int:
    """How many of ``later``'s labels and confidences (to 1e-3) the first copy's audio,
    cut at ``later``'s bounds less ``offset``, gives back."""
    o = round(offset * TARGET_SR)
    waves = [x[round(s.start * TARGET_SR) - o: round(s.end * TARGET_SR) - o] for s in later]
    probs = pred.span_probabilities(waves)
    labels = list(pred.labels)
    return sum(labels[int(np.argmax(p))] == s.label
               and abs(float(np.max(p)) - (s.confidence or 0.0)) < 1e-3
               for p, s in zip(probs, later, strict=True))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--actor", type=Path, default=ACTOR)
    ap.add_argument("--minutes", type=float, default=3.0, help="one copy's length")
    ap.add_argument("--copies", type=int, default=2)
    ap.add_argument("--pause", type=float, nargs=2, default=(0.5, 3.0), metavar=("MIN", "MAX"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", default=None, help="model folder or bundled name")
    ap.add_argument("--out", type=Path, default=Path("/tmp/timeline_offset.wav"))
    a = ap.parse_args()
    one = recording(a.actor, a.minutes, tuple(a.pause), a.seed)
    sf.write(a.out, np.tile(one, a.copies), TARGET_SR, subtype="PCM_16")
    x = sf.read(a.out, dtype="float32")[0]  # as the timeline reads it (16-bit)
    pred = Predictor.from_artifact(a.model)
    t0 = time.perf_counter()
    tl = build_timeline(pred, a.out)
    took = time.perf_counter() - t0
    length = len(one) / TARGET_SR
    copies: list[list[Segment]] = [[] for _ in range(a.copies)]
    for s in tl.segments:
        if s.kind is SegmentKind.SPEECH:
            copies[min(a.copies - 1, int(s.start // length))].append(s)
    print(f"{a.out}: {a.copies} copies of {length:.1f} s ({a.actor.name}, pauses "
          f"{a.pause[0]:g}-{a.pause[1]:g} s, seed {a.seed}), model {pred.model_id}, "
          f"timeline {took:.1f} s, uncertain below {UNCERTAIN_BELOW:g}")
    print("windows per copy: " + ", ".join(str(len(c)) for c in copies))
    for i in range(a.copies):
        for j in range(i + 1, a.copies):
            off = (j - i) * length
            c = compare(copies[i], copies[j], off)
            print(f"copy {j + 1} vs {i + 1}: bounds {c['shift_min_ms']:.0f}-"
                  f"{c['shift_max_ms']:.0f} ms apart ({c['far']} windows over 20 ms), "
                  f"{c['labels']} labels changed, {c['flips']} ok/uncertain flips, "
                  f"confidence moved up to {c['moved']:.3f}")
    for j in range(1, a.copies):
        back = replay(pred, x, copies[j], j * length)
        print(f"replay: copy 1's audio cut at copy {j + 1}'s bounds gives back {back} of "
              f"its {len(copies[j])} answers")

if __name__ == "__main__":
    main()
