"""Files written whole or not at all, and file digests: the one implementation used by the
feature cache, the artifact writer, ONNX export and batch output.

Owns :func:`atomic_path` and :func:`file_sha256`. May import only the standard library (it
is on the lowest floor, beside labels and errors).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "file_sha256"]


@contextmanager
def atomic_path(path: str | Path, *, mode: int | None = 0o644) -> Iterator[Path]:
    """A fresh temporary sibling of ``path`` to write; when the block ends without an
    exception it is fsynced, given ``mode`` (``None``: keep mkstemp's 0600) and renamed over
    ``path``, so readers see the old file or the new one, never a part. On an exception the
    temporary file is removed and ``path`` is untouched."""
    path = Path(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def file_sha256(path: str | Path) -> str:
    """SHA-256 (hex) of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
