"""A/B speed of two emovox source trees on the same machine at the same time, in alternation,
so a change of machine load hits both alike (how the README's speed A/B was measured).

    git archive 83f6a43 src | tar -x -C /tmp/base          # the "before" tree
    .venv/bin/python bench/ab.py --before /tmp/base/src [--clips 80] [--batch 200]

1. warm ``predict_file``: one long-lived process per tree, asked clip by clip in turn (the
   8 original 48 kHz RAVDESS clips repeated); medians, p95 and whether the answers agree;
2. ``run_batch`` (each tree's default for 2 workers) over ``--batch`` RAVDESS clips, CSV
   written, alternated twice;
3. ``build_timeline`` over a 10-minute recording (``bench/predict.py``'s), alternated twice.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
AFTER = HERE.parent / "src"
sys.path.insert(0, str(HERE))
from predict import DEFAULT_CLIPS, SPEECH, long_recording  # noqa: E402

WORKER = """
import sys, time
from emovox.serving.predictor import Predictor
pred = Predictor.from_artifact(None, backend="onnx", threads=1)
print("ready", flush=True)
for line in sys.stdin:
    t0 = time.perf_counter(); r = pred.predict_file(line.strip())
    print(time.perf_counter() - t0, r.label, f"{r.confidence:.6f}", flush=True)
"""
BATCH = """
import sys
from pathlib import Path
from emovox.serving.batch import run_batch
files = sorted(Path(sys.argv[1]).glob("Actor_*/*.*"))[: int(sys.argv[2])]
s = run_batch([str(f) for f in files], Path(sys.argv[3]), workers=2)
print(len(files) / s.seconds)
"""
TIMELINE = """
import json, sys, time
from emovox.serving.predictor import Predictor
from emovox.serving.timeline import build_timeline
pred = Predictor.from_artifact(None, backend="onnx", threads=1)
build_timeline(pred, sys.argv[2])
t0 = time.perf_counter(); tl = build_timeline(pred, sys.argv[1])
print(json.dumps([time.perf_counter() - t0, [s.label for s in tl.speech]]))
"""


def child(src: Path, code: str, *args: str, **kw) -> subprocess.Popen | str:
    env = {**os.environ, "PYTHONPATH": str(src)}
    cmd = [sys.executable, "-c", code, *args]
    if kw.get("stream"):
        return subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                text=True)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout


def per_clip(trees: dict[str, Path], n: int) -> None:
    clips = sorted(DEFAULT_CLIPS.iterdir())
    procs = {k: child(v, WORKER, stream=True) for k, v in trees.items()}
    for p in procs.values():
        assert p.stdout.readline().strip() == "ready"
    t: dict[str, list[float]] = {k: [] for k in trees}
    same = True
    for i in range(len(clips) + n):  # the first round warms up
        answers = set()
        for k, p in procs.items():
            p.stdin.write(f"{clips[i % len(clips)]}\n")
            p.stdin.flush()
            dt, label, conf = p.stdout.readline().split()
            if i >= len(clips):
                t[k].append(float(dt))
            answers.add((label, conf))
        same &= len(answers) == 1
    for p in procs.values():
        p.stdin.close()
        p.wait()
    for k, v in t.items():
        print(f"predict_file {k}: median {np.median(v) * 1e3:.1f} ms, "
              f"p95 {np.percentile(v, 95) * 1e3:.1f} ms")
    print(f"  ratio {np.median(t['before']) / np.median(t['after']):.2f}x, same answers: {same}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", type=Path, required=True, help="src/ folder of the old tree")
    ap.add_argument("--clips", type=int, default=80)
    ap.add_argument("--batch", type=int, default=200)
    a = ap.parse_args()
    trees = {"before": a.before, "after": AFTER}
    print(f"load average {os.getloadavg()[0]:.2f}")
    per_clip(trees, a.clips)
    with tempfile.TemporaryDirectory() as d:
        long = Path(d) / "long.wav"
        long_recording(long, 600.0)
        labels = {}
        for r in range(2):
            for k, src in trees.items():
                rate = float(child(src, BATCH, str(SPEECH), str(a.batch), f"{d}/{k}{r}.csv"))
                secs, labels[k] = json.loads(child(src, TIMELINE, str(long),
                                                   str(sorted(DEFAULT_CLIPS.iterdir())[0])))
                print(f"round {r + 1} {k}: batch {rate:.1f} clips/s, 10-minute timeline "
                      f"{secs:.2f} s ({len(labels[k])} windows)")
        print(f"timeline labels the same: {labels['before'] == labels['after']}")
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
