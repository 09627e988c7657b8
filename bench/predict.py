"""How fast is emovox? Every speed figure of the README against its target, in one run.

    .venv/bin/python bench/predict.py                # full run (a few minutes on 2 cores)
    .venv/bin/python bench/predict.py --quick        # fewer repeats, 200 batch clips
    .venv/bin/python bench/predict.py --model runs/crnn/model --skip batch,timeline

Measured, each from the audio file on disk:

1. **warm single clip**: ``Predictor.predict_file`` (ONNX, 1 thread) on the 8 original 48 kHz
   RAVDESS clips (3.1-4.0 s) repeated to ``-n``, one at a time after a warm-up: median and
   p95, and the median split into decode / speech detector / front end / network;
2. **seed-style**: ``librosa.load(sr=22050)`` + the seed-001 162-dim feature vector + an
   UNTRAINED conv1d forward in PyTorch (random weights: only the time matters), same clips,
   alternating with ours every 8 clips so a change of machine load hits both alike; the
   speed-up is the ratio of the medians;
3. **batch**: the real ``emovox batch`` code path (:func:`emovox.serving.batch.run_batch`,
   ``--workers`` worker processes, results written to a CSV) over ``--batch-n`` RAVDESS
   speech clips (16 kHz FLAC) from disk, model loading and process start included;
   ``--batch-threads`` also times the thread pool for comparison; then the floor: each stage
   a worker runs, per clip, on 160 of those clips (the network with 16 windows per call) and
   the rate ``--workers`` processes could reach if nothing else cost anything;
4. **timeline**: ``build_timeline`` over a 10-minute recording (RAVDESS clips of actors 01-24
   with 0.5 s pauses, written to a temporary WAV), warm predictor;
5. **cold start** of each bundled model: ``emovox predict CLIP --model NAME`` as a new
   process (``--cold-runs``: min / median wall) and its peak RSS (``/usr/bin/time -f %M``,
   else ``ru_maxrss``), measured first, while this process is small.

Every pipeline runs on ``--threads`` threads (ONNX Runtime, PyTorch and the BLAS: on the
shared 2-core machine OpenBLAS's default of one thread per core made librosa's features 5x
slower, 90 ms instead of 18, and our mel projection 50x). Figures mean something only on an
otherwise idle machine: the load average is printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("EMOVOX_SHARED_DATA", ROOT.parent / "shared" / "data"))
DEFAULT_CLIPS = DATA / "ravdess" / "original-48k"
SPEECH = DATA / "ravdess" / "Audio_Speech_Actors_01-24"

# targets printed beside the figures
T_WARM_MS = 3.0  # median, one 3-4 s clip, warm
T_SPEEDUP = 10.0  # vs the seed-style pipeline, same run
T_BATCH = 400.0  # clips/s, emovox batch on 2 cores, 1,000 RAVDESS clips
T_TIMELINE_S = 3.0  # a 10-minute recording
T_COLD_S = 1.5
T_COLD_MB = 400.0
PARTS = ("cold", "seed", "batch", "timeline")


def mark(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def ms(x: list[float] | np.ndarray) -> tuple[float, float]:
    a = np.asarray(x)
    return float(np.median(a) * 1e3), float(np.percentile(a, 95) * 1e3)


# -- pipelines ------------------------------------------------------------------------------


def ours(model: Path | None, threads: int):
    from emovox.serving.predictor import Predictor

    return Predictor.from_artifact(model, backend="onnx", threads=threads)


def stages(pred, clips: list[Path]) -> dict[str, float]:
    """Median ms of decode (+ resample), speech detector, front end (+ trim), network."""
    from emovox.audio import load_audio
    from emovox.features.vad import speech_verdict

    t: dict[str, list[float]] = {k: [] for k in ("decode", "speech", "front end", "network")}
    for c in clips:
        t0 = time.perf_counter()
        a = load_audio(c, sr=pred.sr, trim=False)
        t1 = time.perf_counter()
        speech_verdict(a.wave, pred.sr)
        t2 = time.perf_counter()
        f = pred.preprocess.window_features(pred.preprocess.prepare(a.wave, a.sr))
        t3 = time.perf_counter()
        pred.predict_proba_features([f])
        t4 = time.perf_counter()
        for k, d in zip(t, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            t[k].append(d)
    return {k: float(np.median(v) * 1e3) for k, v in t.items()}


def batch_floor(pred, files: list[Path], batch: int = 16) -> dict[str, float]:
    """Per-clip ms of what one batch worker does, stage by stage, on ``files`` (the batch's
    16 kHz clips): decode, speech detector, trim + front end (medians), and the network per
    clip when it classifies ``batch`` windows per call (total / clips)."""
    from emovox.audio import load_audio

    st = stages(pred, files)
    pp = pred.preprocess
    feats = [pp.window_features(pp.prepare(load_audio(f, sr=pred.sr, trim=False).wave,
                                           pred.sr)) for f in files]
    pred.predict_proba_features(feats[:batch])  # warm
    t0 = time.perf_counter()
    for i in range(0, len(feats), batch):
        pred.predict_proba_features(feats[i : i + batch])
    st["network"] = (time.perf_counter() - t0) * 1e3 / len(feats)
    return st


def seed_style(threads: int) -> Callable[[Path], int]:
    import librosa
    import torch

    from emovox.features.reference import reference001_vector
    from emovox.models.conv1d import build_net

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = build_net(8, (162,)).eval()  # untrained: random weights

    def run(p: Path) -> int:
        y, sr = librosa.load(p, sr=22050)
        x = reference001_vector(y, sr)
        with torch.inference_mode():
            logits = net(torch.from_numpy(x[None].astype(np.float32)))
        return int(logits.argmax())

    return run


def interleaved(fns: dict[str, Callable[[Path], object]], clips: list[Path], block: int = 8
                ) -> dict[str, list[float]]:
    """Seconds of each ``fn(clip)``, the pipelines taking turns every ``block`` clips (a
    change of machine load hits both alike), with a pause at each turn: the seed-style
    pipeline leaves PyTorch/OpenMP threads spinning for a while after its calls, which took
    the second core from ours and slowed it ~1.7x when they alternated without one."""
    out: dict[str, list[float]] = {k: [] for k in fns}
    for b in range(0, len(clips), block):
        for k, fn in fns.items():
            time.sleep(0.5)
            for c in clips[b : b + block]:
                t0 = time.perf_counter()
                fn(c)
                out[k].append(time.perf_counter() - t0)
    return out


# -- batch, timeline, cold start ------------------------------------------------------------


def batch_rate(model: Path | None, files: list[Path], workers: int, processes: bool
               ) -> tuple[float, int]:
    """(clips/s, error rows) of ``run_batch`` over ``files`` into a new CSV."""
    from emovox.serving.batch import run_batch

    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "results.csv"
        s = run_batch([str(f) for f in files], out, artifact=model, workers=workers,
                      processes=processes)
        with open(out, encoding="utf-8") as f:
            rows = sum(1 for _ in f) - 1
        assert rows == len(files), (rows, len(files))
    return len(files) / s.seconds, s.errors


def long_recording(path: Path, seconds: float) -> float:
    """Write RAVDESS clips of every actor, 0.5 s apart, to ``path`` (16 kHz); its length."""
    import soundfile as sf

    from emovox.audio import load_audio

    clips = sorted(SPEECH.glob("Actor_*/*.*"))[::7]
    pause = np.zeros(8000, np.float32)
    parts, n, i = [], 0, 0
    while n < seconds * 16000:
        w = load_audio(clips[i % len(clips)], sr=16000).wave
        parts += [w, pause]
        n += len(w) + len(pause)
        i += 1
    x = np.concatenate(parts)[: int(seconds * 16000)]
    sf.write(path, x, 16000, subtype="PCM_16")
    return len(x) / 16000


def timeline_seconds(pred, seconds: float) -> tuple[float, int, float]:
    """(wall s, speech windows, recording s) of ``build_timeline`` on a new recording."""
    from emovox.serving.timeline import build_timeline

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "long.wav"
        dur = long_recording(path, seconds)
        t0 = time.perf_counter()
        tl = build_timeline(pred, path)
        return time.perf_counter() - t0, len(tl.speech), dur


TIME = Path("/usr/bin/time")


def run_child(cmd: list[str]) -> tuple[float, float, int]:
    """(wall s, peak RSS MB, exit code) of one child process."""
    timer = TIME.is_file()
    full = [str(TIME), "-f", "%M", *cmd] if timer else cmd
    t0 = time.perf_counter()
    p = subprocess.Popen(full, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    err = p.stderr.read().decode(errors="replace") if p.stderr else ""
    if p.stderr:
        p.stderr.close()
    kib = usage.ru_maxrss  # KiB on Linux
    if timer:
        lines = err.strip().splitlines()
        kib = int(lines[-1]) if lines and lines[-1].strip().isdigit() else kib
        err = "\n".join(lines[:-1])
    if code != 0:
        print(f"  warning: {' '.join(cmd)} exited {code}: {err.strip()[-300:]}")
    return wall, kib / 1024, code


def cold(clip: Path, model: str | None, runs: int) -> tuple[list[float], float, bool]:
    """(walls, peak RSS MB, all runs succeeded) of ``emovox predict clip --model model``."""
    exe = shutil.which("emovox", path=str(Path(sys.executable).parent)) or shutil.which("emovox")
    cmd = [exe] if exe else [sys.executable, "-m", "emovox.cli"]
    cmd += ["predict", str(clip)] + (["--model", model] if model else [])
    res = [run_child(cmd) for _ in range(runs)]
    return [w for w, _, _ in res], max(r for _, r, _ in res), all(c == 0 for _, _, c in res)


def bundled_models() -> list[str]:
    from emovox.artifact import BUNDLED_MODELS, resolve_model_path

    return [n for n in BUNDLED_MODELS if (resolve_model_path(n) / "model.json").is_file()]


# -- main -----------------------------------------------------------------------------------


def parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None,
                    help="model folder (default: the bundled default model)")
    ap.add_argument("--clips", type=Path, default=DEFAULT_CLIPS, help="folder of clips")
    ap.add_argument("-n", type=int, default=200, help="single clips timed (repeated)")
    ap.add_argument("--batch-n", type=int, default=1000, help="RAVDESS clips for batch")
    ap.add_argument("--workers", type=int, default=2, help="batch worker processes")
    ap.add_argument("--batch-threads", action="store_true",
                    help="also time batch with a thread pool (the old way)")
    ap.add_argument("--timeline-s", type=float, default=600.0, help="timeline length (s)")
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads (ORT, torch)")
    ap.add_argument("--cold-runs", type=int, default=3)
    ap.add_argument("--skip", default="", help=f"comma-separated parts to skip: {PARTS}")
    ap.add_argument("--quick", action="store_true",
                    help="-n 40, --batch-n 200, --cold-runs 1")
    a = ap.parse_args()
    if a.quick:
        a.n, a.batch_n, a.cold_runs = min(a.n, 40), min(a.batch_n, 200), 1
    a.skip = {s.strip() for s in a.skip.split(",") if s.strip()}
    if a.skip - set(PARTS):
        ap.error(f"--skip takes {PARTS}")
    return a


def report_cold(a: argparse.Namespace, clip: Path) -> list[str]:
    names = [str(a.model)] if a.model else bundled_models()
    lines = []
    for name in names:
        walls, rss, ok = cold(clip, None if name == "default" else name, a.cold_runs)
        med = statistics.median(walls)
        lines.append(
            f"cold `emovox predict --model {name}`: median {med:.2f} s (min {min(walls):.2f}, "
            f"{len(walls)} runs; target <= {T_COLD_S:g} s {mark(med <= T_COLD_S and ok)}), "
            f"peak RSS {rss:.0f} MB (target <= {T_COLD_MB:g} MB {mark(rss <= T_COLD_MB)})"
            + ("" if ok else "  [the command FAILED]"))
    return lines


def main() -> None:
    a = parse()
    from threadpoolctl import threadpool_limits

    # every pipeline on --threads BLAS threads: OpenBLAS's default (all cores) made the
    # seed-style features 5x slower on the shared 2-core machine (90 ms instead of 18)
    threadpool_limits(a.threads, user_api="blas")
    base = sorted(p for p in a.clips.iterdir() if p.suffix.lower() in (".wav", ".flac")) \
        if a.clips.is_dir() else []
    if not base:
        sys.exit(f"no clips in {a.clips}")
    import soundfile as sf

    durs = [sf.info(p).duration for p in base]
    clips = [base[i % len(base)] for i in range(a.n)]
    load0 = os.getloadavg()[0]
    lines = report_cold(a, base[0]) if "cold" not in a.skip else []

    pred = ours(a.model, a.threads)
    fns: dict[str, Callable[[Path], object]] = {"ours": pred.predict_file}
    if "seed" not in a.skip:
        fns["seed"] = seed_style(a.threads)
    interleaved(fns, base)  # warm-up (librosa's numba JIT, torch, ORT)
    t = interleaved(fns, clips)
    st = stages(pred, clips[: min(len(clips), 50)])
    print(f"emovox speed bench · model {pred.model_id} · {len(base)} clips "
          f"({min(durs):.1f}-{max(durs):.1f} s, {sf.info(base[0]).samplerate} Hz) repeated "
          f"to N={a.n} · {a.threads} intra-op thread(s) · {os.cpu_count()} CPUs · load avg "
          f"{load0:.2f} at the start")
    m, p95 = ms(t["ours"])
    print(f"warm single clip (predict_file): median {m:.1f} ms, p95 {p95:.1f} ms (target <= "
          f"{T_WARM_MS:g} ms {mark(m <= T_WARM_MS)})")
    print("  split (median ms): " + " · ".join(f"{k} {v:.1f}" for k, v in st.items()))
    if "seed" in t:
        s, s95 = ms(t["seed"])
        print(f"seed-style (librosa 22.05k + seed-001 features + untrained conv1d): median "
              f"{s:.1f} ms, p95 {s95:.1f} ms -> ours is {s / m:.1f}x faster (target >= "
              f"{T_SPEEDUP:g}x {mark(s / m >= T_SPEEDUP)})")
    if "batch" not in a.skip:
        files = sorted(SPEECH.glob("Actor_*/*.*"))[: a.batch_n]
        rate, errors = batch_rate(a.model, files, a.workers, True)
        print(f"emovox batch, {a.workers} worker processes, {len(files)} RAVDESS clips from "
              f"disk, CSV written: {rate:.0f} clips/s, {errors} errors (target >= "
              f"{T_BATCH:g} clips/s {mark(rate >= T_BATCH)})")
        fl = batch_floor(pred, files[:160])
        per = sum(fl.values())
        print("  per clip in a worker (ms; network: batches of 16): " + " · ".join(
            f"{k} {v:.2f}" for k, v in fl.items()) + f" = {per:.1f} -> at most "
            f"{a.workers * 1e3 / per:.0f} clips/s with {a.workers} processes and no other "
            f"cost; the network alone caps it at {a.workers * 1e3 / fl['network']:.0f}")
        if a.batch_threads:
            rate_t, _ = batch_rate(a.model, files, a.workers, False)
            print(f"  same with a {a.workers}-thread pool (one shared predictor): "
                  f"{rate_t:.0f} clips/s")
    if "timeline" not in a.skip:
        secs, n_win, dur = timeline_seconds(pred, a.timeline_s)
        print(f"timeline of a {dur / 60:.0f}-minute recording: {secs:.2f} s, {n_win} speech "
              f"windows (target <= {T_TIMELINE_S:g} s {mark(secs <= T_TIMELINE_S)})")
    for line in lines:
        print(line)
    print(f"load avg at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
