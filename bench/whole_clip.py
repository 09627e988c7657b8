"""Warm ``Predictor.predict_file`` time per clip of one source tree (no timers inside).

    .venv/bin/python bench/whole_clip.py /tmp/base/src     # an older tree (git archive)
    .venv/bin/python bench/whole_clip.py src                # this one

Run the two in turn a few times: one process per tree, the bundled model on ONNX Runtime
with one thread, every clip answered once to warm up, then ``--reps`` times; prints the
median ms. Clips: the 8 ``original-48k`` clips and the first 24 of actor 03 (16 kHz).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ravdess"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", type=Path, help="the src/ folder of the tree to time")
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    sys.path.insert(0, str(a.src.resolve()))
    import numpy as np

    from emovox.serving.predictor import Predictor

    p = Predictor.from_artifact(None, backend="onnx", threads=1)
    files = sorted((DATA / "original-48k").glob("*"))
    files += sorted((DATA / "Audio_Speech_Actors_01-24" / "Actor_03").glob("*.flac"))[:24]
    for f in files:
        p.predict_file(f)
    ms = []
    for _ in range(a.reps):
        for f in files:
            t = time.perf_counter()
            p.predict_file(f)
            ms.append((time.perf_counter() - t) * 1000)
    print(f"{a.src}: predict_file median {float(np.median(ms)):.2f} ms over {len(ms)} answers")


if __name__ == "__main__":
    main()
