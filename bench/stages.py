"""Where a warm ``predict_file`` spends its time, stage by stage; with ``--before`` the same
for another source tree, the two asked clip by clip in turn (a change of load hits both).

    .venv/bin/python bench/stages.py                          # this tree, 8 x 48 kHz + 24 x 16 kHz
    .venv/bin/python bench/stages.py --before /tmp/base/src   # old and new, interleaved
    .venv/bin/python bench/stages.py --reps 10 --n16 40

Each tree runs in its own process (ONNX Runtime and the BLAS on one thread). Per clip it
answers two warm calls of ``Predictor.predict_file``: one plain (the whole-clip time) and one
with timers wrapped around the module functions each stage is (the stage times: each
stage's own time, stages called inside it excluded; about 1 us per wrapped call). Clips: the
8 original 48 kHz RAVDESS clips (3.1-4.0 s, resampled on decoding) and ``--n16`` 16 kHz
clips of actor 01 (3-4 s), ``--reps`` times each; medians over all of them per set.
Stages: decode (libsndfile, header checks), resample (soxr), DC removal, silence check,
hum check, clipping count, the speech detector's frame levels, tonality, beep check
(``without_steady`` + ``without_tone_gaps``), voicing, pitch and the rest of
``speech_verdict``; trim (``Preprocess.prepare``), features (log-mel), normalise, network
(the ONNX run), calibration (softmax), answer (``_answer``, the heard span) and the rest of
``predict_file`` (other).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from predict import DEFAULT_CLIPS, SPEECH  # noqa: E402

#: (module, attribute, stage): functions timed where the pipeline looks them up
PATCHES = [
    ("emovox.audio.decode", "_decode", "decode"), ("emovox.audio.decode", "_check_header",
                                                   "decode"),
    ("emovox.audio.decode", "header_notes", "decode"),
    ("emovox.audio.decode", "resample", "resample"), ("emovox.audio.decode", "remove_dc", "DC"),
    ("emovox.audio.decode", "is_silent", "silence"), ("emovox.audio.decode", "hum_note", "hum"),
    ("emovox.features.vad", "frame_levels", "vad levels"),
    ("emovox.features.vad", "frame_tonality", "vad tonality"),
    ("emovox.features.vad", "without_steady", "beep check"),
    ("emovox.features.vad", "without_tone_gaps", "beep check"),
    ("emovox.features.vad", "voicing_scan", "vad voicing"),
    ("emovox.features.vad", "voice_flags", "vad pitch"),
    ("emovox.features.vad", "continuous_speech", "vad pitch"),
    ("emovox.serving.predictor", "speech_verdict", "vad other"),
]
#: (module, class, method, stage)
METHODS = [
    ("emovox.audio.clipping", "ClipCounter", "add", "clipping"),
    ("emovox.audio.clipping", "ClipCounter", "notes", "clipping"),
    ("emovox.preprocess", "Preprocess", "prepare", "trim"),
    ("emovox.preprocess", "Preprocess", "window_features", "features"),
    ("emovox.preprocess", "Preprocess", "normalise", "normalise"),
    ("emovox.serving.predictor", "Predictor", "_proba", "calibration"),
    ("emovox.serving.predictor", "Predictor", "_answer", "answer"),
]
ORDER = ["decode", "resample", "DC", "silence", "hum", "clipping", "vad levels",
         "vad tonality", "beep check", "vad voicing", "vad pitch", "vad other", "trim",
         "features", "normalise", "network", "calibration", "answer", "other"]


def worker() -> None:
    """Answer clip paths on stdin with one JSON line of seconds per stage and ``total``."""
    import functools
    import importlib
    import time

    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")
    from emovox.serving.predictor import Predictor

    pred = Predictor.from_artifact(None, backend="onnx", threads=1)
    spent: dict[str, float] = {}
    stack: list[float] = []

    def timed(stage, fn):
        @functools.wraps(fn)
        def run(*a, **k):
            t0 = time.perf_counter()
            stack.append(0.0)
            try:
                return fn(*a, **k)
            finally:
                dt, inner = time.perf_counter() - t0, stack.pop()
                spent[stage] = spent.get(stage, 0.0) + dt - inner
                if stack:
                    stack[-1] += dt
        return run

    plain = pred.predict_file
    originals = []
    for mod, attr, _ in PATCHES:
        m = importlib.import_module(mod)
        originals.append((m, attr, getattr(m, attr)))
    for mod, cls, attr, _ in METHODS:
        c = getattr(importlib.import_module(mod), cls)
        originals.append((c, attr, getattr(c, attr)))
    runner = type(pred.runner)
    originals.append((runner, "__call__", runner.__call__))
    stages = [s for *_, s in PATCHES] + [s for *_, s in METHODS] + ["network"]

    def patch(on: bool) -> None:
        for (owner, attr, fn), stage in zip(originals, stages, strict=True):
            setattr(owner, attr, timed(stage, fn) if on else fn)

    whole = timed("other", Predictor.predict_file)
    print("ready", flush=True)
    for line in sys.stdin:
        clip = line.strip()
        t0 = time.perf_counter()
        answer = plain(clip)
        total = time.perf_counter() - t0
        spent.clear()
        patch(True)
        whole(pred, clip)
        patch(False)
        print(json.dumps({**spent, "total": total, "label": answer.label}), flush=True)


def start(src: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(src)}
    p = subprocess.Popen([sys.executable, __file__, "--worker"], env=env, text=True,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    return p


def ask(p: subprocess.Popen, clip: Path) -> dict[str, float]:
    assert p.stdin is not None and p.stdout is not None
    p.stdin.write(f"{clip}\n")
    p.stdin.flush()
    return json.loads(p.stdout.readline())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", type=Path, help="src/ folder of the tree to compare with")
    ap.add_argument("--reps", type=int, default=5, help="times each clip is asked")
    ap.add_argument("--n16", type=int, default=24, help="16 kHz clips of actor 01")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        return worker()
    trees = {"now": HERE.parent / "src"} if a.before is None else {
        "before": a.before, "after": HERE.parent / "src"}
    sets = {"48 kHz": sorted(DEFAULT_CLIPS.glob("*.wav")),
            "16 kHz": sorted((SPEECH / "Actor_01").glob("*.flac"))[: a.n16]}
    procs = {k: start(v) for k, v in trees.items()}
    print(f"load average {os.getloadavg()[0]:.2f} at the start; {os.cpu_count()} CPUs")
    for name, clips in sets.items():
        for c in clips:  # warm-up
            for p in procs.values():
                ask(p, c)
        rows: dict[str, list[dict[str, float]]] = {k: [] for k in procs}
        same = True
        for _ in range(a.reps):
            for c in clips:
                got = {k: ask(p, c) for k, p in procs.items()}
                same &= len({g.pop("label") for g in got.values()}) == 1
                for k, g in got.items():
                    rows[k].append(g)
        print(f"\n{name}: {len(clips)} clips x {a.reps}, median ms per clip"
              + ("" if len(procs) == 1 else f" (same labels: {same})"))
        print(f"  {'stage':14s}" + "".join(f"{k:>10s}" for k in procs))
        for stage in [*ORDER, "total"]:
            meds = [float(np.median([r.get(stage, 0.0) for r in rows[k]])) * 1e3 for k in procs]
            print(f"  {stage:14s}" + "".join(f"{m:10.3f}" for m in meds))
    for p in procs.values():
        assert p.stdin is not None
        p.stdin.close()
        p.wait()
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
