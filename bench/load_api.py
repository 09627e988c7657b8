"""Load test of the REST API: N concurrent clients, a bounded number of requests,
throughput and p50/p99 latency. Loopback only.

    # start `emovox serve` on a free loopback port with this model, load it, stop it:
    .venv/bin/python bench/load_api.py --model runs/crnn/model --clients 50 --requests 500
    # or load a server that is already running on this machine:
    .venv/bin/python bench/load_api.py --url http://127.0.0.1:8000 --clients 50

Every client is one keep-alive connection sending ``POST /v1/predict`` (or
``/v1/timeline``) with the same clip (``--file``, default a 3 s synthetic voice-like
tone) until ``--requests`` have been sent in all. Any non-200 answer or transport error
counts as an error; the exit code is 1 when there was any (target: 50 clients, 0 errors).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import ipaddress
import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

MAX_REQUESTS = 100_000
MAX_CLIENTS = 1_000


def synthetic_clip(seconds: float = 3.0, sr: int = 16000) -> bytes:
    """A WAV of a harmonic tone with a little vibrato and noise (RAVDESS clip length)."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 180.0 * (1 + 0.03 * np.sin(2 * np.pi * 5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    w = sum(np.sin(k * phase) / k for k in (1, 2, 3, 4))
    w = 0.3 * w / np.max(np.abs(w)) + 0.005 * rng.standard_normal(len(t))
    buf = io.BytesIO()
    sf.write(buf, w.astype(np.float32), sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def require_loopback(url: str) -> None:
    """Refuse any URL whose host does not resolve to loopback addresses only."""
    host = urlsplit(url).hostname
    if not host:
        raise SystemExit(f"error: {url!r} has no host")
    try:
        addrs = {ai[4][0] for ai in socket.getaddrinfo(host, None)}
    except socket.gaierror as exc:
        raise SystemExit(f"error: cannot resolve {host!r}: {exc}") from None
    if not addrs or not all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addrs):
        raise SystemExit(f"error: {host} is not a loopback address; this tool only loads "
                         "servers on this machine")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(url: str, proc: subprocess.Popen | None, timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"error: the server exited with code {proc.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"error: {url}/health did not answer 200 within {timeout:g} s")


def start_server(model: Path | None, concurrency: int | None) -> tuple[str, subprocess.Popen]:
    port = free_port()
    cmd = [sys.executable, "-m", "emovox.cli", "serve", "--host", "127.0.0.1",
           "--port", str(port), "--log-level", "warning"]
    if concurrency:
        cmd += ["--concurrency", str(concurrency)]
    if model is not None:
        cmd += ["--model", str(model)]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
    return f"http://127.0.0.1:{port}", proc


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


async def _load(url: str, endpoint: str, clip: bytes, filename: str, clients: int,
                requests: int, timeout: float, warmup: int = 0) -> dict:
    import httpx

    async with httpx.AsyncClient(timeout=timeout) as client:  # untimed warm-up
        for _ in range(warmup):
            await client.post(f"{url}/v1/{endpoint}", files={"file": (filename, clip)})

    latencies: list[float] = []
    errors: Counter[str] = Counter()
    remaining = [requests]
    target = f"{url}/v1/{endpoint}"

    async def client_loop(client: httpx.AsyncClient) -> None:
        while remaining[0] > 0:
            remaining[0] -= 1
            t0 = time.perf_counter()
            try:
                r = await client.post(target, files={"file": (filename, clip, "audio/wav")})
                if r.status_code != 200:
                    errors[f"HTTP {r.status_code}"] += 1
                    continue
            except httpx.HTTPError as exc:
                errors[type(exc).__name__] += 1
                continue
            latencies.append(time.perf_counter() - t0)

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    t0 = time.perf_counter()
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:
        await asyncio.gather(*(client_loop(client) for _ in range(clients)))
    wall = time.perf_counter() - t0
    ms = [1000 * x for x in latencies]
    return {
        "url": target, "clients": clients, "requests": requests, "ok": len(latencies),
        "errors": sum(errors.values()), "error_kinds": dict(errors),
        "clip_bytes": len(clip), "wall_s": round(wall, 3),
        "throughput_rps": round(len(latencies) / wall, 2) if wall > 0 else 0.0,
        "latency_ms": {"p50": round(percentile(ms, 50), 1), "p90": round(percentile(ms, 90), 1),
                       "p99": round(percentile(ms, 99), 1),
                       "max": round(max(ms), 1) if ms else float("nan")},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", help="a running server on this machine (default: start one)")
    ap.add_argument("--model", type=Path, help="model folder for the started server "
                    "(default: $EMOVOX_MODEL or the bundled model)")
    ap.add_argument("--clients", type=int, default=50, help="concurrent clients (50)")
    ap.add_argument("--requests", type=int, default=500, help="requests in all (500)")
    ap.add_argument("--endpoint", choices=("predict", "timeline"), default="predict")
    ap.add_argument("--file", type=Path, help="audio clip to send (default: 3 s synthetic)")
    ap.add_argument("--concurrency", type=int,
                    help="--concurrency of the started server (default: its own)")
    ap.add_argument("--timeout", type=float, default=120.0, help="per-request timeout (s)")
    ap.add_argument("--warmup", type=int, default=4,
                    help="untimed requests sent first, one at a time (4)")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    a = ap.parse_args(argv)
    if not 1 <= a.clients <= MAX_CLIENTS:
        ap.error(f"--clients must be 1..{MAX_CLIENTS}")
    if not 1 <= a.requests <= MAX_REQUESTS:
        ap.error(f"--requests must be 1..{MAX_REQUESTS}")
    clip = a.file.read_bytes() if a.file else synthetic_clip()
    filename = a.file.name if a.file else "synthetic.wav"

    proc = None
    if a.url:
        url = a.url.rstrip("/")
        require_loopback(url)
    else:
        model = a.model or (Path(os.environ["EMOVOX_MODEL"]) if os.environ.get("EMOVOX_MODEL")
                            else None)
        url, proc = start_server(model, a.concurrency)
    try:
        wait_healthy(url, proc, timeout=120.0)
        result = asyncio.run(_load(url, a.endpoint, clip, filename, a.clients, a.requests,
                                   a.timeout, warmup=max(0, min(a.warmup, 100))))
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    if a.json:
        print(json.dumps(result, indent=2))
    else:
        lat = result["latency_ms"]
        print(f"{result['url']}: {result['clients']} clients, {result['ok']}/{a.requests} ok, "
              f"{result['errors']} errors {result['error_kinds'] or ''}\n"
              f"throughput {result['throughput_rps']} req/s over {result['wall_s']} s; latency "
              f"p50 {lat['p50']} ms, p90 {lat['p90']} ms, p99 {lat['p99']} ms, "
              f"max {lat['max']} ms")
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
