"""How much memory does the REST API take while many clients upload at once? (stop 37)

    emovox serve --port 8850 &
    .venv/bin/python bench/upload_memory.py --port 8850 --pid $! --clip CLIP --clients 20

Each client opens its own connection and POSTs to ``/v1/predict`` one multipart body: the
clip as ``file`` and 24 ``references`` parts of 1,000 KiB of random bytes (each part under
Starlette's former 1 MiB in-memory limit, so a server that reads every body as it arrives
keeps them all in memory; the references are no audio, so each answer is a quick 422). The
server's resident memory is sampled every 0.2 s (``ps``) while they run; the script prints
the body size, the status lines received and the RSS at rest and at its peak. Loopback
only.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import threading
import time

BOUNDARY = "emovoxbench"


def body_of(clip: bytes, parts: int, part_bytes: int) -> bytes:
    head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
            "filename=\"clip.flac\"\r\n\r\n").encode()
    out = [head, clip, b"\r\n"]
    for i in range(parts):
        out += [(f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"references\"; "
                 f"filename=\"r{i}.wav\"\r\n\r\n").encode(), os.urandom(part_bytes), b"\r\n"]
    out.append(f"--{BOUNDARY}--\r\n".encode())
    return b"".join(out)


def rss_mb(pid: int) -> float:
    out = subprocess.run(["ps", "-o", "rss=", "-p", str(pid)], capture_output=True, text=True)
    return int(out.stdout.strip() or 0) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True, help="the server's process id")
    ap.add_argument("--clip", required=True, help="an audio file sent as `file`")
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--parts", type=int, default=24)
    ap.add_argument("--part-kib", type=int, default=1000)
    args = ap.parse_args()
    with open(args.clip, "rb") as f:
        body = body_of(f.read(), args.parts, args.part_kib * 1024)
    request = (f"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
               f"multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {len(body)}\r\n"
               "Connection: close\r\n\r\n").encode() + body
    statuses: list[str] = []

    def client() -> None:
        with socket.create_connection(("127.0.0.1", args.port), timeout=600) as s:
            s.sendall(request)
            statuses.append(s.recv(200).split(b"\r\n")[0].decode(errors="replace"))

    rest = rss_mb(args.pid)
    peak, threads = rest, [threading.Thread(target=client) for _ in range(args.clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        peak = max(peak, rss_mb(args.pid))
        time.sleep(0.2)
    print(f"body {len(body) / 2**20:.1f} MB x {args.clients} clients in "
          f"{time.perf_counter() - t0:.1f} s; answers: {sorted(set(statuses))}")
    print(f"server RSS: {rest:.0f} MB at rest, peak {peak:.0f} MB")


if __name__ == "__main__":
    main()
