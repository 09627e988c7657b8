"""Test helpers for the command line and streams: ``emovox`` run in-process with the root
logger restored (the CLI sets it up), and a stream that trickles like a pipe."""

from __future__ import annotations

import io
import logging
from typing import Any


def invoke(args: list[Any], **kw: Any) -> Any:
    """``emovox ARGS`` in-process through Typer's runner; the root logger's handlers and
    level, which the CLI's ``setup_logging`` replaces, are restored afterwards."""
    from typer.testing import CliRunner

    from emovox.cli import app

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        return CliRunner().invoke(app, [str(a) for a in args], **kw)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


class Trickle(io.RawIOBase):
    """A stream whose reads return a few bytes at a time, like a pipe."""

    def __init__(self, data: bytes, sizes: list[int]) -> None:
        self.data, self.sizes, self.pos, self.k = data, sizes, 0, 0

    def readable(self) -> bool:
        return True

    def read1(self, n: int = -1) -> bytes:
        size = min(n, self.sizes[self.k % len(self.sizes)])
        self.k += 1
        out = self.data[self.pos : self.pos + size]
        self.pos += len(out)
        return out
