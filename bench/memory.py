"""Peak memory of `emovox predict` and of one API request on hostile and maximal inputs.

    .venv/bin/python bench/memory.py              # all cases (about 2 minutes, ~500 MB of temp)
    .venv/bin/python bench/memory.py --quick      # skip the 1 h WAV

Run by hand (not a test). Generates, in a temporary folder:

* ``hr.flac``: 599 s at 655,350 Hz, the FLAC maximum (about 1.5 MB of silence; 392 M
  samples once decoded). Must be refused from its header.
* ``hr.wv``: 60 s of WavPack at 4 MHz (needs ffmpeg). Must be refused from its header.
* ``max.flac``: 599 s of 48 kHz stereo, the longest input the default limits accept.
* ``hour.wav``: 1 h of 48 kHz mono 16-bit WAV (345 MB), run with ``--max-duration 4000``.

Each ``emovox predict FILE`` runs in a fresh process; its peak RSS is ``ru_maxrss`` from
``os.wait4`` on that child. For the API, ``emovox serve`` starts on a free loopback port, one
file is POSTed to ``/v1/predict`` with httpx, and the server's peak RSS is ``VmHWM`` from
``/proc/PID/status`` (one fresh server per file, so each figure is that request's). Every
figure is printed beside the 400 MB target of issue 9, with the command that produced it.
The commands use the sources of this checkout (``src/`` first on ``PYTHONPATH``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

TARGET_MB = 400.0
SRC = Path(__file__).resolve().parents[1] / "src"


def env() -> dict[str, str]:
    """Environment for the children: this checkout's sources first."""
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(SRC), *filter(None, [e.get("PYTHONPATH")])])
    return e


def emovox_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("emovox")
    if exe.is_file():
        return [str(exe)]
    return [sys.executable, "-c", "from emovox.cli import main; main()"]


def write_tone(path: Path, sr: int, seconds: float, channels: int = 1, amp: float = 0.1,
               **kw: object) -> Path:
    """A 440 Hz tone written block by block (the bench itself stays small)."""
    n, step = int(round(seconds * sr)), 1 << 20
    with sf.SoundFile(path, "w", sr, channels, **kw) as f:  # type: ignore[arg-type]
        for start in range(0, n, step):
            t = (start + np.arange(min(step, n - start))) / sr
            x = (amp * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
            f.write(np.repeat(x[:, None], channels, axis=1))
    return path


def make_inputs(d: Path, quick: bool) -> list[tuple[str, Path, list[str]]]:
    """-> [(case, file, extra predict options)]."""
    cases = [
        ("655 kHz FLAC, 599 s", write_tone(d / "hr.flac", 655350, 599.0, amp=0.0,
                                             format="FLAC", subtype="PCM_16"), []),
    ]
    ff = shutil.which("ffmpeg")
    if ff:
        wv = d / "hr.wv"
        subprocess.run([ff, "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                        "anullsrc=r=4000000:cl=mono", "-t", "60", "-c:a", "wavpack", str(wv)],
                       check=True)
        cases.append(("4 MHz WavPack, 60 s", wv, []))
    else:
        print("ffmpeg not found: skipping the WavPack case")
    cases.append(("48 kHz stereo FLAC, 599 s", write_tone(d / "max.flac", 48000, 599.0, 2,
                                                           format="FLAC", subtype="PCM_16"), []))
    if not quick:
        hour = write_tone(d / "hour.wav", 48000, 3600.0, subtype="PCM_16")
        cases.append(("1 h 48 kHz WAV, --max-duration 4000", hour, ["--max-duration", "4000"]))
        cases.append(("1 h 48 kHz WAV, default limit", hour, []))
    return cases


def predict_peak(path: Path, extra: list[str]) -> tuple[float, int, str, str]:
    """-> (peak RSS MB, exit code, command, last output line) of `emovox predict`."""
    cmd = [*emovox_cmd(), "predict", "--json", *extra, str(path)]
    proc = subprocess.Popen(cmd, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    out = proc.stdout.read().decode("utf-8", "replace")
    _, status, usage = os.wait4(proc.pid, 0)
    rc = proc.returncode = os.waitstatus_to_exitcode(status)
    err = next((ln.strip() for ln in out.splitlines() if '"error"' in ln), "")
    return usage.ru_maxrss / 1024.0, rc, " ".join(cmd), err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def api_peak(path: Path) -> tuple[float, float, int, str, str]:
    """-> (server peak RSS MB after startup, after the request, HTTP status, command, detail)."""
    import httpx

    port = free_port()
    cmd = [*emovox_cmd(), "serve", "--port", str(port), "--log-level", "warning"]
    server = subprocess.Popen(cmd, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(base + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None:
                raise RuntimeError(f"server exited with {server.returncode}: {' '.join(cmd)}")
            time.sleep(0.2)
        idle = vm_hwm_mb(server.pid)
        with open(path, "rb") as fh:
            r = httpx.post(base + "/v1/predict", files={"file": (path.name, fh)}, timeout=600)
        detail = r.text[:160].replace("\n", " ")
        return idle, vm_hwm_mb(server.pid), r.status_code, " ".join(cmd), detail
    finally:
        server.terminate()
        server.wait(timeout=30)


def verdict(mb: float) -> str:
    return "ok  " if mb <= TARGET_MB else "OVER"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="skip the 1 h WAV (345 MB)")
    ap.add_argument("--no-api", action="store_true", help="skip the API measurements")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="emovox-memory-") as tmp:
        cases = make_inputs(Path(tmp), args.quick)
        print(f"target: peak RSS <= {TARGET_MB:.0f} MB\n\n== emovox predict (fresh process each)")
        for name, path, extra in cases:
            mb, rc, cmd, err = predict_peak(path, extra)
            print(f"[{verdict(mb)}] {name:40s} {mb:7.1f} MB  exit {rc}  "
                  f"({path.stat().st_size / 1e6:.1f} MB file)\n       $ {cmd}")
            if err:
                print(f"       {err[:200]}")
        if args.no_api:
            return
        print("\n== API: one POST /v1/predict per fresh `emovox serve` (VmHWM of the server)")
        for name, path, extra in cases:
            if extra or path.stat().st_size > 25 * 2**20:
                continue  # the API has fixed limits (25 MB, 600 s)
            idle, mb, status, cmd, detail = api_peak(path)
            print(f"[{verdict(mb)}] {name:40s} {mb:7.1f} MB  (idle {idle:.1f} MB)  HTTP {status}"
                  f"\n       $ {cmd}; curl -F file=@{path.name} .../v1/predict\n       {detail}")


if __name__ == "__main__":
    main()
