"""Files written whole or not at all, and file digests: the one implementation used by the
feature cache, the artifact writer, ONNX export and batch output.

Owns :func:`atomic_path`, :func:`file_sha256`, the claims of a run or model being written
(:func:`claimed_folder`, :func:`make_claim`, :func:`hold_claim`), :func:`remove_stale`
(what a killed writer left behind) and copies that never follow a link
(:func:`copy_unlinked`). May import only the standard library (it
is on the lowest floor, beside labels and errors).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import shutil
import signal
import stat
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from glob import escape as glob_escape
from pathlib import Path
from typing import Any, BinaryIO

__all__ = ["CLAIM_LOCK", "PENDING_GRACE_S", "WRITER_KINDS", "atomic_path", "claimed_folder",
           "copy_unlinked", "file_sha256", "hold_claim", "live_writers", "locked_beside",
           "make_claim", "mode_of", "open_unlinked", "private_copies", "release_claim",
           "remove_stale", "signals_held", "stream_sha256", "swap_folder"]


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


def open_unlinked(path: str | Path) -> int | None:
    """A read-only descriptor (the caller's to close) of the regular file ``path``, opened
    without following a link: ``None`` when it is a link or not a regular file (a FIFO, a
    folder). ``FileNotFoundError`` when it is missing."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK):  # a link (EMLINK: the BSDs)
            return None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return fd


def copy_unlinked(src: str | Path, dst: str | Path) -> bool:
    """Copy the regular file ``src`` to ``dst`` (mode bits and times kept, as ``copy2``)
    following a link at neither end: ``False``, nothing written, when ``src`` is a link or
    not a regular file (:func:`open_unlinked`); ``dst`` is written as a fresh file beside it
    renamed over it, so a link of that name is replaced, never written through."""
    fd = open_unlinked(src)
    if fd is None:
        return False
    dst = Path(dst)
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        out_fd, name = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".tmp")
        try:
            with os.fdopen(out_fd, "wb") as out:
                shutil.copyfileobj(fh, out, 1 << 20)
                out.flush()  # before the times: a later write would move them
                os.fchmod(out.fileno(), stat.S_IMODE(st.st_mode) & 0o777)
                os.utime(out.fileno(), ns=(st.st_atime_ns, st.st_mtime_ns))
            os.replace(name, dst)
        finally:
            Path(name).unlink(missing_ok=True)
    return True


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


#: the lock file inside a claim folder (``.NAME.staging-PID-HEX``, ``.NAME.build-...``),
#: flock-held by its process for as long as it writes. A live claim is told from a killed
#: one's by its lock, not by the PID in its name, which means nothing in another PID
#: namespace (a container) or on another NFS host: two containers, both PID 1, replaced
#: each other's run, and a host process deleted a container's live staging folder (code
#: review, stop 48)
CLAIM_LOCK = ".emovox-claim.lock"

#: this process's claims: (device, inode) of their lock files -> the descriptors holding them
_claims: dict[tuple[int, int], int] = {}


def hold_claim(folder: Path) -> tuple[int, int]:
    """Create the lock file of the fresh claim folder ``folder`` and hold its lock until
    :func:`release_claim` (on a file system without locks the PID in the folder's name
    tells, as before). Returns the claim's key."""
    import fcntl

    fd = os.open(Path(folder) / CLAIM_LOCK,
                 os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # no locks here (a file system without them): the PID tells
        pass
    st = os.fstat(fd)
    _claims[(st.st_dev, st.st_ino)] = fd
    return st.st_dev, st.st_ino


def _drop_lock_file(folder: Path, key: tuple[int, int] | None = None) -> None:
    """Remove ``folder``'s lock file if it is the one of the claim ``key`` (any of this
    process's claims when ``None``); its lock stays held until :func:`release_claim`."""
    lock = Path(folder) / CLAIM_LOCK
    try:
        st = os.stat(lock, follow_symlinks=False)
    except OSError:
        return
    if (st.st_dev, st.st_ino) == key or key is None and (st.st_dev, st.st_ino) in _claims:
        lock.unlink(missing_ok=True)


def release_claim(key: tuple[int, int], folder: Path | None = None) -> None:
    """End the claim ``key``: its lock file is removed from ``folder`` (where the claim
    folder is now; ``None``: removed with it), then its lock released. Idempotent."""
    if folder is not None:
        _drop_lock_file(folder, key)
    fd = _claims.pop(key, None)
    if fd is not None:
        os.close(fd)


def _lock_state(folder: Path) -> str:
    """The lock of the claim folder ``folder``: ``"ours"`` (this process holds it),
    ``"held"`` (another process does), ``"free"`` (its lock file is there, no process
    holds it), ``"none"`` (no lock file) or ``"unknown"`` (a link, a file system without
    locks)."""
    import fcntl

    lock = Path(folder) / CLAIM_LOCK
    with contextlib.suppress(OSError):  # ours: not even opened (a close could let go of
        st = os.stat(lock, follow_symlinks=False)  # a lock emulated by fcntl, as on NFS)
        if (st.st_dev, st.st_ino) in _claims:
            return "ours"
    fd = None
    for flags in (os.O_RDWR, os.O_RDONLY):  # another user's lock file: read-only is enough
        try:
            fd = os.open(lock, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
            break
        except (FileNotFoundError, NotADirectoryError):
            return "none"
        except OSError:  # no write access, a read-only file system; a link fails both
            continue
    state = "unknown"
    if fd is not None:
        try:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                state = "free"  # taken: no process holds it (closing lets it go again)
        except BlockingIOError:
            state = "held"
        except OSError:  # a file system without locks
            pass
        finally:
            os.close(fd)
    return state


def _owner(folder: Path, pid: int) -> str:
    """Whose is the claim folder ``folder``: ``"ours"``, ``"other"`` (a live process's) or
    ``"gone"`` (its process ended). Its lock tells; without one (a folder of an older
    emovox, a file system without locks) its PID, as :func:`_alive` sees it."""
    state = _lock_state(folder)
    if state in ("none", "unknown"):
        return "gone" if not _alive(pid) else "ours" if pid == os.getpid() else "other"
    return {"ours": "ours", "held": "other"}.get(state, "gone")


#: the kind of a claim folder being made (:func:`make_claim`): ``.NAME.pending-PID-HEX``,
#: a name no reader takes for a claim
PENDING = "pending"

#: seconds a pending folder whose lock no process holds is left alone: it may be between
#: its ``mkdir`` and its lock (a few microseconds); one older is a killed maker's
PENDING_GRACE_S = 60.0


def make_claim(parent: Path, name: str, kind: str,
               mode: int = 0o777) -> tuple[Path, tuple[int, int]]:
    """Make the claim folder ``.NAME.<kind>-PID-HEX`` in ``parent``, its lock held before
    it appears under that name: made as ``.NAME.pending-PID-HEX`` (``mode``, under the
    umask), locked inside (:func:`hold_claim`), then renamed into place (atomic). Made under
    its own name, it was seen for an instant without its lock, and a process looking then
    went by its PID, which tells nothing across containers: it removed the claim as stale,
    or took it for its own (code review). Returns the folder and the claim's key."""
    parent, pid = Path(parent), os.getpid()
    for _ in range(100):
        token = secrets.token_hex(4)
        pending = parent / f".{name}.{PENDING}-{pid}-{token}"
        claim = parent / f".{name}.{kind}-{pid}-{token}"
        if os.path.lexists(claim):
            continue
        try:
            os.mkdir(pending, mode)
            break
        except FileExistsError:
            continue
        except OSError as exc:  # said "[Errno 30] Read-only file system: '.m.pending-..'"
            err = type(exc)(f"cannot write in {parent}: {exc.strerror or exc}")
            err.errno = exc.errno  # (an internal folder named: audit, stop 56)
            raise err from None
    else:
        raise FileExistsError(f"cannot find a free claim name beside {parent / name}")
    try:
        key = hold_claim(pending)
    except OSError:
        shutil.rmtree(pending, ignore_errors=True)
        raise
    try:  # (a non-empty folder of that name refuses it; the name was free just above)
        os.rename(pending, claim)
    except OSError:
        shutil.rmtree(pending, ignore_errors=True)
        release_claim(key)
        raise
    return claim, key


def _remove_stale_pending(parent: Path, name: str) -> list[Path]:
    """Remove the pending folders (:func:`make_claim`) of ``parent / name`` that a killed
    process left: its lock held by none, older than :data:`PENDING_GRACE_S` (one without
    its lock yet may be a live maker's, between its two calls). Returns them."""
    gone = []
    for p, _pid in _writers(parent, name, (PENDING,)):
        try:
            age = time.time() - os.stat(p, follow_symlinks=False).st_mtime
        except OSError:
            continue
        if age > PENDING_GRACE_S and _lock_state(p) in ("free", "none"):
            shutil.rmtree(p, ignore_errors=True)
            gone.append(p)
    return gone


def remove_stale(parent: Path, name: str,
                 kinds: Sequence[str] = ("staging", "old", "build", "tmp")
                 ) -> list[Path]:
    """Remove the ``.NAME.<kind>-PID-...`` folders next to ``parent / name`` that a process
    no longer running left behind (killed while it wrote a run or a model: research QA,
    stop 32); a claim folder's lock tells (:data:`CLAIM_LOCK`), else its PID. Ours by
    their name; a live process's, a file or a link is never touched; nor a claim being
    made (:func:`make_claim`) unless its maker was killed. An ``old`` folder
    while ``parent / name`` is missing is put back instead: its process was killed between
    the two renames of :func:`swap_folder` (code review, stop 48), unless a live claim is
    there now; only when that process's stage or claim folder is left beside it too (a
    killed swap leaves both: a folder the user removed came back otherwise). Returns what
    was removed."""
    out = Path(parent) / name
    found = [(p, pid, p.name.startswith(f".{name}.old-"), _owner(p, pid))
             for p, pid in _writers(parent, name, kinds)]
    # an old folder has no lock: while another's claim swaps, it is between its renames
    claimed = any(who == "other" for _, _, old, who in found if not old)
    swapping = {pid for _, pid, old, who in found if not old and who == "gone"}
    gone = []
    for p, pid, old, who in found:
        if who != "gone":
            continue
        if old and not out.exists() and not out.is_symlink() and (claimed or pid in swapping):
            if not claimed:  # (a live claim may be between its renames: left for now)
                with contextlib.suppress(OSError):  # raced: the next call tries again
                    os.rename(p, out)
            continue
        shutil.rmtree(p, ignore_errors=True)
        gone.append(p)
    return gone + _remove_stale_pending(parent, name)


@contextmanager
def signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM held back during the block and delivered when it ends (a no-op
    outside the main thread, where they never interrupt). Their handlers are swapped for
    one that notes them: a signal mask is a thread's own, and with any other thread running
    (a thread pool's, pytest's) the kernel gave the signal to that thread and the main
    thread was interrupted anyway (code review, stop 48)."""
    import threading

    caught: list[int] = []
    before: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(sig) not in (None, signal.SIG_IGN):  # None: not from Python
                before[sig] = signal.signal(sig, lambda num, _frame: caught.append(num))
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
        for sig in dict.fromkeys(caught):
            signal.raise_signal(sig)


def swap_folder(stage: Path, out: Path) -> None:
    """Rename the finished folder ``stage`` to ``out``. An existing ``out`` is renamed to
    ``.NAME.old-PID-HEX`` beside it first and removed afterwards. Ctrl-C and SIGTERM wait
    for both renames (one landing between them lost both versions: code review, stop 48);
    a SIGKILL there leaves the old folder, which :func:`remove_stale` puts back. A claim's
    lock file that came with ``stage`` (a staged run is its own claim) is removed from
    ``out`` in the same breath; its lock is held until the claim is released."""
    out = Path(out)
    old = None
    with signals_held():  # the old one removed inside too: a held Ctrl-C left a whole copy
        if out.exists() or out.is_symlink():
            old = out.parent / f".{out.name}.old-{os.getpid()}-{secrets.token_hex(4)}"
            os.rename(out, old)
        try:
            os.rename(stage, out)
        except OSError:  # (a read-only stage cannot move): the old one back, not lost
            if old is not None:
                os.rename(old, out)
            raise
        _drop_lock_file(out)
        if old is not None and old.is_symlink():
            old.unlink()
        elif old is not None:
            shutil.rmtree(old, ignore_errors=True)


def live_writers(parent: Path, name: str, kinds: Sequence[str] = ("staging",)) -> list[int]:
    """PIDs of the other running processes whose ``.NAME.<kind>-PID-...`` folder sits next
    to ``parent / name`` (its lock held, or without one its PID alive): another emovox
    process is writing ``name`` now (stop 33). A PID is as that process's namespace
    numbers it (another container's may be this one's own)."""
    return sorted({pid for p, pid in _writers(parent, name, kinds) if _owner(p, pid) == "other"})


#: the claim kinds of a process writing a destination, each writer looking for both:
#: a run being staged (``staging``), a model being built (``build``)
WRITER_KINDS: tuple[str, ...] = ("staging", "build")


@contextmanager
def claimed_folder(out: Path, kind: str = "build") -> Iterator[tuple[Path, list[int]]]:
    """A fresh ``.NAME.<kind>-PID-...`` folder beside ``out`` (its parents made; stale
    ones of dead processes removed first), its lock held (:func:`make_claim`), and the PIDs
    of the other live processes holding one for ``out``: the caller refuses to go on when
    there are any (two ``train --out`` into one folder both trained: stop 35), of ``kind``
    or :data:`WRITER_KINDS` (``evaluate --out X`` wrote X while ``train --out X`` trained,
    whose model was then refused: audit, stop 56). The folder,
    and the parents made for it while ``out`` does not exist, are removed when the block
    ends."""
    out = Path(out)
    made = [p for p in [out.parent, *out.parent.parents] if not p.exists()]
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # a file where a folder must be (re-check, stop 35)
        raise NotADirectoryError(f"cannot make the folder {out.parent}: a file of that name "
                                 "(or of one of its parents) is in the way") from None
    remove_stale(out.parent, out.name)
    key = None
    try:
        tmp, key = make_claim(out.parent, out.name, kind, 0o700)  # as mkdtemp made it
        yield tmp, live_writers(out.parent, out.name, (kind, *WRITER_KINDS))
    finally:
        if key is not None:
            shutil.rmtree(tmp, ignore_errors=True)  # its lock file with it, the lock still
            release_claim(key)  # held
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
