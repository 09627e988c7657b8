"""Files written whole or not at all, and file digests: the one implementation used by the
feature cache, the artifact writer, ONNX export and batch output.

Owns :func:`atomic_path`, :func:`file_sha256` and :func:`remove_stale` (what a killed
writer left behind). May import only the standard library (it
is on the lowest floor, beside labels and errors).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import signal
import stat
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from glob import escape as glob_escape
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_path", "claimed_folder", "file_sha256", "live_writers", "locked_beside",
           "mode_of", "private_copies", "remove_stale", "signals_held", "stream_sha256",
           "swap_folder"]


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
    with open(path, "rb") as fh:
        return stream_sha256(fh)


@contextmanager
def locked_beside(path: str | Path, what: str) -> Iterator[None]:
    """Hold an exclusive lock for ``path`` during the block: an ``flock`` on the file
    ``.NAME.lock`` beside it (created if need be, left in place: removing it would let a
    third process lock another file of that name; opened read-only when another user made
    it, never through a link). ``BlockingIOError`` naming ``what`` when another process
    holds it (two batches on one output: one removed the other's rows without a word; QA,
    stop 38)."""
    import fcntl

    path = Path(path)
    lock = path.parent / f".{path.name}.lock"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):  # was "[Errno 17] File exists" (QA, 38)
        raise NotADirectoryError(f"cannot write {path}: a part of {path.parent} is a file, "
                                 "not a folder") from None
    flags = os.O_CLOEXEC | os.O_NOFOLLOW
    try:
        try:  # 0o666 under the umask: a group sharing the folder shares the lock
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | flags, 0o666)
        except PermissionError:  # another user's lock file: flock needs no write access
            fd = os.open(lock, os.O_RDONLY | flags)
    except FileNotFoundError:
        raise PermissionError(f"cannot write in {path.parent}") from None
    except OSError as exc:  # a folder or a link of that name, no permission at all
        raise OSError(f"cannot use the lock file {lock} ({exc.strerror})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BlockingIOError(f"another emovox process is writing {what} {path} (its lock "
                                  f"{lock.name} is held): wait for it to end") from None
        yield
    finally:
        os.close(fd)  # releases the lock


def mode_of(path: str | Path) -> int:
    """``path``'s permission bits, or those a new file gets under the umask when it does
    not exist: a rewritten file keeps them (mkstemp's 0600 made a shared results file
    private), a new one follows the umask (it was made 0644 under umask 077: QA, stop 38)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def stream_sha256(data: bytes | BinaryIO) -> str:
    """SHA-256 (hex) of bytes, or of a file object's bytes from its start (read in 1 MiB
    blocks; its position is put back)."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return hashlib.sha256(data).hexdigest()
    pos = data.tell()
    data.seek(0)
    h = hashlib.sha256()
    for block in iter(lambda: data.read(1 << 20), b""):
        h.update(block)
    data.seek(pos)
    return h.hexdigest()


def _alive(pid: int) -> bool:
    """Is ``pid`` a running process that can be an emovox writer? On Linux its command line
    must name Python or emovox: a folder left by a killed run whose PID a system process
    took later blocked the run for ever (QA re-check, stop 34)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive
        return True
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().lower()
    except OSError:  # not Linux, or not ours to read: alive
        return True
    # empty while a process starts (between fork and exec) or for a kernel thread: alive
    return not cmdline or b"python" in cmdline or b"emovox" in cmdline


def _writers(parent: Path, name: str, kinds: Sequence[str]) -> Iterator[tuple[Path, int]]:
    """The ``.NAME.<kind>-PID-...`` folders next to ``parent / name``, with their PIDs (not
    links, not files)."""
    for kind in kinds:
        for p in Path(parent).glob(f".{glob_escape(name)}.{kind}-*"):
            m = re.fullmatch(rf"\.{re.escape(name)}\.{kind}-(\d+)-[0-9a-z_]+", p.name)
            if m and p.is_dir() and not p.is_symlink():
                yield p, int(m.group(1))


def remove_stale(parent: Path, name: str,
                 kinds: Sequence[str] = ("staging", "old", "build", "tmp")
                 ) -> list[Path]:
    """Remove the ``.NAME.<kind>-PID-...`` folders next to ``parent / name`` that a process
    no longer running left behind (killed while it wrote a run or a model: research QA,
    stop 32). Ours by their name; a live process's, a file or a link is never touched. An
    ``old`` folder while ``parent / name`` is missing is put back instead: its process was
    killed between the two renames of :func:`swap_folder` (code review, stop 48).
    Returns what was removed."""
    gone = []
    for p, pid in _writers(parent, name, kinds):
        if _alive(pid):
            continue
        out = Path(parent) / name
        if p.name.startswith(f".{name}.old-") and not out.exists() and not out.is_symlink():
            os.rename(p, out)
            continue
        shutil.rmtree(p, ignore_errors=True)
        gone.append(p)
    return gone


@contextmanager
def signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM held back during the block and delivered when it ends (a no-op
    where signal masks are not available)."""
    try:
        before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    except (AttributeError, ValueError, OSError):
        before = None
    try:
        yield
    finally:
        if before is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, before)


def swap_folder(stage: Path, out: Path) -> None:
    """Rename the finished folder ``stage`` to ``out``. An existing ``out`` is renamed to
    ``.NAME.old-PID-HEX`` beside it first and removed afterwards. Ctrl-C and SIGTERM wait
    for both renames (one landing between them lost both versions: code review, stop 48);
    a SIGKILL there leaves the old folder, which :func:`remove_stale` puts back."""
    out = Path(out)
    old = None
    with signals_held():
        if out.exists() or out.is_symlink():
            old = out.parent / f".{out.name}.old-{os.getpid()}-{secrets.token_hex(4)}"
            os.rename(out, old)
        os.rename(stage, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def live_writers(parent: Path, name: str, kinds: Sequence[str] = ("staging",)) -> list[int]:
    """PIDs of the other running processes whose ``.NAME.<kind>-PID-...`` folder sits next
    to ``parent / name``: another emovox process is writing ``name`` now (stop 33)."""
    return sorted({pid for _, pid in _writers(parent, name, kinds)
                   if pid != os.getpid() and _alive(pid)})



@contextmanager
def claimed_folder(out: Path, kind: str = "build") -> Iterator[tuple[Path, list[int]]]:
    """A fresh ``.NAME.<kind>-PID-...`` folder beside ``out`` (its parents made; stale
    ones of dead processes removed first) and the PIDs of the other live processes holding
    one for ``out``: the caller refuses to go on when there are any (two ``train --out``
    into one folder both trained: stop 35). The folder, and the parents made for it while
    ``out`` does not exist, are removed when the block ends."""
    out = Path(out)
    made = [p for p in [out.parent, *out.parent.parents] if not p.exists()]
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # a file where a folder must be (re-check, stop 35)
        raise NotADirectoryError(f"cannot make the folder {out.parent}: a file of that name "
                                 "(or of one of its parents) is in the way") from None
    remove_stale(out.parent, out.name)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.{kind}-{os.getpid()}-"))
    try:
        yield tmp, live_writers(out.parent, out.name, (kind,))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        for p in made if not out.exists() else []:
            try:
                p.rmdir()
            except OSError:
                break


def private_copies() -> re.Pattern[str]:
    """The paths of emovox's private temporary copies (a folder ``emovox-...`` in the temp
    folder: an upload's, a decoder's), as ffmpeg names them in its messages
    (``file:/tmp/emovox-abc123/input.m4a``), under the temp folder or its resolved path (a
    linked TMPDIR, as macOS's ``/var``: ffmpeg is given the resolved path). Messages name the
    upload instead: server paths are not for users (replace with a function: a name is no
    regular-expression template)."""
    tmp = tempfile.gettempdir()
    roots = dict.fromkeys(r.rstrip("/") for r in (tmp, os.path.realpath(tmp)))
    return re.compile(r"(?:file:)?(?:" + "|".join(map(re.escape, roots))
                      + r")/emovox-[\w-]+(?:/[^\s:;,)'\"]*)?")
