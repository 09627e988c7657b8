"""How fast is `emovox predict`? Our Predictor beside two reference pipelines, same clips.

    .venv/bin/python bench/predict.py                      # bundled model, 8 clips -> N=200
    .venv/bin/python bench/predict.py --model runs/crnn/model -n 100
    .venv/bin/python bench/predict.py --clips DIR --skip-smile

Measured, each from the audio file on disk, warm (every clip is run once before timing):

1. ours: ``Predictor.predict_file`` with the ONNX backend (decode, resample to 16 kHz, trim,
   NumPy log-mel, ONNX Runtime, calibrated softmax): latency of one clip at a time (median,
   p95 over N), the same split into decode / front end / network, and throughput with a pool
   of ``--workers`` threads sharing one predictor (as ``emovox batch`` does).
2. seed-style: ``librosa.load(path, sr=22050)``, the seed-001 162-dim feature vector
   (:func:`emovox.features.reference.reference001_vector`) and an UNTRAINED
   :func:`emovox.models.conv1d.build_net` forward in PyTorch (random weights: only the time
   matters).
3. openSMILE eGeMAPSv02 functionals (88 dims) + a scikit-learn RBF SVC fitted on RANDOM
   88-dim data with 8 classes (only the time matters).

Plus the cold start: ``emovox predict CLIP`` as a fresh process (3 runs: min / median wall
time) and its peak resident memory (``/usr/bin/time -f %M``, else ``ru_maxrss`` of the child).

Figures are printed beside the targets; they mean something only on an otherwise idle
machine. ``--threads`` sets the intra-op threads of ONNX Runtime and PyTorch (default 1).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CLIPS = ROOT.parent / "shared" / "data" / "ravdess" / "original-48k"

# targets printed beside the figures
T_WARM_MS = 5.0  # per 3 s clip, warm, one at a time
T_SPEEDUP = 10.0  # vs the seed-style pipeline
T_THROUGHPUT = 400.0  # clips/s on 2 cores
T_COLD_S = 1.5
T_COLD_MB = 400.0


def timed(fn: Callable[[Path], object], clips: list[Path]) -> np.ndarray:
    """Seconds of ``fn(clip)`` for each clip, run one after the other."""
    out = np.empty(len(clips))
    for i, c in enumerate(clips):
        t0 = time.perf_counter()
        fn(c)
        out[i] = time.perf_counter() - t0
    return out


def ms(x: np.ndarray) -> tuple[float, float]:
    return float(np.median(x) * 1e3), float(np.percentile(x, 95) * 1e3)


def mark(ok: bool) -> str:
    return "ok" if ok else "MISS"


# -- the three pipelines ---------------------------------------------------------------------


def ours(model: Path | None, threads: int):
    from emovox.serving.predictor import Predictor

    pred = Predictor.from_artifact(model, backend="onnx", threads=threads)
    return pred, lambda p: pred.predict_file(p)


def stages(pred, clips: list[Path]) -> dict[str, float]:
    """Median ms of decode (+ resample), front end (+ trim), network (+ softmax)."""
    from emovox.audio import load_audio

    t_dec, t_fe, t_net = [], [], []
    for c in clips:
        t0 = time.perf_counter()
        a = load_audio(c, sr=pred.sr)
        t1 = time.perf_counter()
        w = pred.preprocess.prepare_wave(a.wave, a.sr)
        f = pred.features(w)
        t2 = time.perf_counter()
        pred.predict_proba_features([f])
        t3 = time.perf_counter()
        t_dec.append(t1 - t0)
        t_fe.append(t2 - t1)
        t_net.append(t3 - t2)
    return {k: float(np.median(v) * 1e3) for k, v in
            (("decode", t_dec), ("front end", t_fe), ("network", t_net))}


def seed_style(threads: int):
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


def smile_svc():
    import opensmile
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                            feature_level=opensmile.FeatureLevel.Functionals)
    rng = np.random.default_rng(0)
    svc = make_pipeline(StandardScaler(), SVC(kernel="rbf"))
    svc.fit(rng.standard_normal((800, 88)), rng.integers(0, 8, 800))  # random: timing only

    def run(p: Path) -> int:
        x = smile.process_file(str(p)).to_numpy(np.float64)
        return int(svc.predict(x)[0])

    return run


# -- throughput and cold start ---------------------------------------------------------------


def throughput(fn: Callable[[Path], object], clips: list[Path], workers: int) -> float:
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(fn, clips[: 2 * workers]))  # start the threads
        t0 = time.perf_counter()
        list(pool.map(fn, clips))
        return len(clips) / (time.perf_counter() - t0)


TIME = Path("/usr/bin/time")


def run_child(cmd: list[str]) -> tuple[float, float, int]:
    """(wall s, peak RSS MB, exit code) of one child process.

    Peak RSS comes from ``/usr/bin/time -f %M`` when it exists, else from ``os.wait4``; the
    latter also counts the pages the child shared with this process between fork and exec,
    which is why :func:`main` measures the cold start before loading any pipeline."""
    timer = TIME.is_file()
    full = [str(TIME), "-f", "%M", *cmd] if timer else cmd
    t0 = time.perf_counter()
    p = subprocess.Popen(full, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    err = p.stderr.read().decode(errors="replace") if p.stderr else ""
    if p.stderr:
        p.stderr.close()
    kib = usage.ru_maxrss  # KiB on Linux
    if timer:
        lines = err.strip().splitlines()
        kib = int(lines[-1]) if lines and lines[-1].strip().isdigit() else kib
        err = "\n".join(lines[:-1])
    if p.returncode != 0:
        print(f"  warning: {' '.join(cmd)} exited {p.returncode}: {err.strip()[-300:]}")
    return wall, kib / 1024, p.returncode


def cold(clip: Path, model: Path | None, runs: int) -> tuple[list[float], float]:
    exe = shutil.which("emovox", path=str(Path(sys.executable).parent)) or shutil.which("emovox")
    cmd = [exe] if exe else [sys.executable, "-m", "emovox.cli"]
    cmd += ["predict", str(clip)] + (["--model", str(model)] if model else [])
    walls, rss = [], []
    for _ in range(runs):
        w, r, _ = run_child(cmd)
        walls.append(w)
        rss.append(r)
    return walls, max(rss)


# -- main -----------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None,
                    help="model folder (default: the bundled model)")
    ap.add_argument("--clips", type=Path, default=DEFAULT_CLIPS, help="folder of clips")
    ap.add_argument("-n", type=int, default=200, help="clips timed per pipeline (repeated)")
    ap.add_argument("--n-ref", type=int, default=None,
                    help="clips for the two slow reference pipelines (default: -n)")
    ap.add_argument("--workers", type=int, default=2, help="threads for the throughput")
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads (ORT, torch)")
    ap.add_argument("--cold-runs", type=int, default=3)
    ap.add_argument("--skip-seed", action="store_true")
    ap.add_argument("--skip-smile", action="store_true")
    a = ap.parse_args()

    import soundfile as sf

    base = sorted(p for p in a.clips.iterdir() if p.suffix.lower() in (".wav", ".flac")) \
        if a.clips.is_dir() else []
    if not base:
        sys.exit(f"no clips in {a.clips}")
    clips = [base[i % len(base)] for i in range(a.n)]
    ref_clips = clips[: a.n_ref or a.n]
    durs = [sf.info(p).duration for p in base]

    from emovox.artifact import default_model_path

    if a.model is None and not (default_model_path() / "model.json").is_file():
        sys.exit(f"no bundled model at {default_model_path()}; pass --model FOLDER")
    walls, rss = cold(base[0], a.model, a.cold_runs)  # first: this process is still small
    cmin, cmed = min(walls), statistics.median(walls)

    pred, ours_fn = ours(a.model, a.threads)
    for c in base:  # warm-up
        ours_fn(c)
    print(f"emovox predict bench · {len(base)} clips ({np.mean(durs):.1f} s mean, "
          f"{sf.info(base[0]).samplerate} Hz) repeated to N={a.n} · model {pred.model_id} "
          f"(n_frames {pred.n_frames}) · {a.threads} intra-op thread(s) · "
          f"{os.cpu_count()} CPUs, load avg {os.getloadavg()[0]:.2f}")
    lat = timed(ours_fn, clips)
    st = stages(pred, clips[: min(len(clips), 50)])
    tput = throughput(ours_fn, clips, a.workers)

    rows: list[tuple[str, str, str, str, str]] = []
    m, p95 = ms(lat)
    rows.append(("ours: Predictor.predict_file, ONNX", f"{m:.1f}", f"{p95:.1f}",
                 f"{1 / np.median(lat):.0f}",
                 f"<= {T_WARM_MS:g} ms per 3 s clip {mark(m <= T_WARM_MS)}"))
    rows.append((f"  split: decode {st['decode']:.1f} · front end {st['front end']:.1f} · "
                 f"network {st['network']:.1f} ms", "", "", "", ""))
    rows.append((f"ours: {a.workers}-thread pool over predict_file", "", "", f"{tput:.0f}",
                 f">= {T_THROUGHPUT:g} clips/s {mark(tput >= T_THROUGHPUT)}"))

    seed_med = None
    if not a.skip_seed:
        fn = seed_style(a.threads)
        for c in base:
            fn(c)  # warm-up (librosa's numba JIT, torch)
        t = timed(fn, ref_clips)
        seed_med, s95 = ms(t)
        rows.append(("seed-style: librosa 22.05k + seed001 + conv1d*", f"{seed_med:.1f}",
                     f"{s95:.1f}", f"{1 / np.median(t):.0f}", ""))
    if not a.skip_smile:
        fn = smile_svc()
        for c in base:
            fn(c)
        t = timed(fn, ref_clips)
        sm, s95 = ms(t)
        rows.append(("openSMILE eGeMAPSv02 + SVC**", f"{sm:.1f}", f"{s95:.1f}",
                     f"{1 / np.median(t):.0f}", ""))

    w = max(len(r[0]) for r in rows)
    print(f"\n{'pipeline (per clip, one at a time)':<{w}}  {'med ms':>7}  {'p95 ms':>7}  "
          f"{'clips/s':>7}  target")
    for name, a1, a2, a3, tgt in rows:
        print(f"{name:<{w}}  {a1:>7}  {a2:>7}  {a3:>7}  {tgt}")
    if seed_med is not None:
        speedup = seed_med / m
        print(f"\nspeed-up ours vs seed-style (median latency): {speedup:.1f}x  "
              f"(target >= {T_SPEEDUP:g}x {mark(speedup >= T_SPEEDUP)})")
    print(f"cold `emovox predict {base[0].name}`: min {cmin:.2f} s, median {cmed:.2f} s over "
          f"{len(walls)} runs (target <= {T_COLD_S:g} s {mark(cmed <= T_COLD_S)}); peak RSS "
          f"{rss:.0f} MB (target <= {T_COLD_MB:g} MB {mark(rss <= T_COLD_MB)})")
    print()
    if not a.skip_seed:
        print("*  untrained conv1d (random weights): only its time matters.")
    if not a.skip_smile:
        print("** SVC fitted on random 88-dim data with 8 classes: only its time matters.")
    print("Latency is from the file on disk (decode + resample included) for every pipeline; "
          f"the clips are {min(durs):.1f}-{max(durs):.1f} s long.")


if __name__ == "__main__":
    main()
