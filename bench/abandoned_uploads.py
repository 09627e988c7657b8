"""How much abandoned uploads delay the next client of a running `emovox serve`.

    .venv/bin/emovox serve --port 18003 &
    .venv/bin/python bench/abandoned_uploads.py --url http://127.0.0.1:18003 \
        --small clip.flac --abandon 6

Sends ``--abandon`` whole ``POST /v1/predict`` uploads of ``--big`` (a long recording; by
default ``--small`` repeated to 599 s, written to a temporary FLAC), each
on its own socket closed ``--after`` seconds after it was sent, then times one ordinary
request with ``--small``. Run once with ``--abandon 0`` for the baseline. Loopback only.
"""

from __future__ import annotations

import argparse
import socket
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

BOUNDARY = "emovoxbench"


def multipart(path: Path) -> bytes:
    head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{path.name}\"\r\nContent-Type: application/octet-stream\r\n\r\n")
    return head.encode() + path.read_bytes() + f"\r\n--{BOUNDARY}--\r\n".encode()


def abandon(host: str, port: int, body: bytes, after: float) -> None:
    with socket.create_connection((host, port)) as s:
        s.sendall(f"POST /v1/predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: "
                  f"multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {len(body)}"
                  "\r\n\r\n".encode() + body)
        time.sleep(after)


def timed_request(url: str, body: bytes) -> tuple[int, float]:
    req = urllib.request.Request(f"{url}/v1/predict", data=body, method="POST", headers={
        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=600) as r:
        r.read()
        return r.status, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="http://127.0.0.1:8000")
    ap.add_argument("--big", type=Path, help="the long recording abandoned (default: --small "
                    "repeated to 599 s)")
    ap.add_argument("--small", type=Path, required=True, help="the clip timed afterwards")
    ap.add_argument("--abandon", type=int, default=6)
    ap.add_argument("--after", type=float, default=0.2, help="seconds before hanging up")
    args = ap.parse_args()
    parts = urlsplit(args.url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"{args.url}: not a loopback address")
    if args.big is None:
        import numpy as np
        import soundfile as sf

        wave, sr = sf.read(args.small, dtype="float32", always_2d=True)
        args.big = Path(tempfile.mkdtemp()) / "speech599.flac"
        sf.write(args.big, np.resize(wave[:, 0], 599 * sr), sr, subtype="PCM_16")
    big = multipart(args.big)
    for _ in range(args.abandon):
        abandon(parts.hostname, parts.port or 80, big, args.after)
    status, seconds = timed_request(args.url, multipart(args.small))
    print(f"{args.small.name} after {args.abandon} abandoned uploads of {args.big.name}: "
          f"HTTP {status} in {seconds:.1f} s")


if __name__ == "__main__":
    main()
