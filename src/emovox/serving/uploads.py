"""Uploaded files: size checks, safe names, and private on-disk copies.

An upload arrives as bytes (the web app) or as a file object (the REST API, where the
multipart parser already spooled anything past 1 MB to an anonymous temporary file). Small
uploads are decoded from memory; larger ones are copied in blocks to a fresh private
temporary directory (mode 0700, file mode 0600) that is deleted whatever happens, so a
request never holds a large upload in memory. A process killed outright (SIGKILL, the OOM
killer) cannot delete its copy: the folder's name carries its PID, and
:func:`sweep_uploads`, called as a server starts, removes those of processes that are gone.
Error messages name the client's file, never the temporary copy, and never an object repr
such as ``<_io.BytesIO object at 0x...>``.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import time
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from emovox.errors import AudioError, EmovoxError, EmptyAudio
from emovox.fileio import private_copies

__all__ = [
    "SPOOL_BYTES",
    "Upload",
    "UploadTooLarge",
    "check_size",
    "display_name",
    "upload_message",
    "mime_type",
    "named_errors",
    "open_upload",
    "safe_suffix",
    "scrub",
    "sweep_uploads",
]

log = logging.getLogger(__name__)

#: Uploads up to this size are decoded from memory; larger ones from a private temp file.
SPOOL_BYTES = 1024 * 1024
_COPY_BLOCK = 1024 * 1024
#: the player's type by the upload's extension (others: WAV's; a browser sniffs the bytes
#: too). Opus, WebM, AAC and AIFF were served as WAV, which a strict browser refuses (web
#: review, stop 52)
_MIME = {"wav": "audio/wav", "mp3": "audio/mpeg", "ogg": "audio/ogg", "oga": "audio/ogg",
         "opus": "audio/ogg", "flac": "audio/flac", "m4a": "audio/mp4", "m4b": "audio/mp4",
         "mp4": "audio/mp4", "aac": "audio/aac", "webm": "audio/webm", "weba": "audio/webm",
         "aif": "audio/aiff", "aiff": "audio/aiff", "3gp": "audio/3gpp", "3ga": "audio/3gpp",
         "3g2": "audio/3gpp2", "caf": "audio/x-caf", "mpga": "audio/mpeg", "mp2": "audio/mpeg",
         "spx": "audio/ogg", "au": "audio/basic", "snd": "audio/basic"}
_REPR = re.compile(r"<[\w.]+ (?:object )?at 0x[0-9a-fA-F]+>")
#: an upload copy's folder: ``emovox-upload-PID-`` and :func:`tempfile.mkdtemp`'s 8 characters
_COPY_PREFIX = "emovox-upload-"
_COPY_NAME = re.compile(rf"{_COPY_PREFIX}(\d+)-[a-z0-9_]{{8}}")


class UploadTooLarge(EmovoxError):
    """The upload is bigger than the configured size limit."""


def _mb(n: float) -> str:
    return f"{n / (1024 * 1024):.3g} MB"


def over_limit(n_bytes: int, max_bytes: int) -> tuple[str, str]:
    """``(size, limit)`` in words for a size over the limit: in MB (of 2^20 bytes), in bytes
    when both round alike ("is 25 MB, larger than the 25 MB upload limit": API QA, stop
    35)."""
    size, limit = _mb(n_bytes), _mb(max_bytes)
    if size == limit:
        size, limit = f"{n_bytes:,} bytes", f"{limit} ({max_bytes:,} bytes)"
    return size, limit


def check_size(n_bytes: int, max_bytes: int, name: str = "the file") -> None:
    """Raise :class:`UploadTooLarge` when ``n_bytes > max_bytes``."""
    if n_bytes > max_bytes:
        size, limit = over_limit(n_bytes, max_bytes)
        raise UploadTooLarge(
            f"{name}: is {size}, larger than the {limit} upload limit. "
            "Upload a shorter or compressed recording (or raise the limit)."
        )


def safe_suffix(filename: str | None) -> str:
    """A harmless extension for a temporary copy (``.wav``, ``.m4a``...; ``.bin`` when the
    name has none). The client's file name itself is never used as a path."""
    ext = Path(filename or "").suffix.lower().lstrip(".")
    return f".{ext}" if re.fullmatch(r"[a-z0-9]{1,5}", ext) else ".bin"


def display_name(filename: str | None) -> str:
    """The client's file name, stripped of any directories and odd characters: only
    letters and digits of any script (``\\w``, ``_`` too), spaces and ``. ( ) + , ' ! & %
    # @ = -`` are kept, and any other character (quotes, brackets, markup, control
    characters, an emoji, an en dash) becomes ``_`` (the web page shows names as Markdown);
    ``' ! & % # @ =`` were replaced too before API QA, stop 40. Accents sent decomposed (as
    macOS browsers do) are composed first (NFC): "café" stayed "cafe_" (review, stop 53)."""
    name = re.split(r"[\\/]", unicodedata.normalize("NFC", filename or ""))[-1].strip()
    name = re.sub(r"[^\w .()+,'!&%#@=-]", "_", name)[:120]
    return name or "upload"


def mime_type(filename: str | None) -> str:
    return _MIME.get(Path(filename or "").suffix.lower().lstrip("."), "audio/wav")


def scrub(message: str, name: str = "the upload") -> str:
    """``message`` with every object repr (``<_io.BytesIO object at 0x7f...>``) and every
    path of a decoder's temporary copy replaced by ``name``: addresses, internal types and
    server paths are not for users."""
    return private_copies().sub(lambda _: name, _REPR.sub(lambda _: name, message))


@dataclass(frozen=True)
class Upload:
    """An upload ready to decode: ``source`` is its bytes (small) or a private copy's path."""

    name: str
    size: int
    source: bytes | Path


def _size_of(f: BinaryIO) -> int:
    f.seek(0, os.SEEK_END)
    size = f.tell()
    f.seek(0)
    return size


@contextmanager
def open_upload(
    data: bytes | BinaryIO,
    filename: str | None,
    *,
    max_bytes: int | None = None,
    spool_bytes: int = SPOOL_BYTES,
) -> Iterator[Upload]:
    """The upload as an :class:`Upload`; a private temporary copy exists only inside the
    ``with`` block.

    Raises:
        UploadTooLarge: more than ``max_bytes``.
        EmptyAudio: 0 bytes.
    """
    name = display_name(filename)
    size = len(data) if isinstance(data, (bytes, bytearray, memoryview)) else _size_of(data)
    if max_bytes is not None:
        check_size(size, max_bytes, name)
    if size == 0:
        raise EmptyAudio(f"{name}: the upload is empty (0 bytes).")
    if size <= spool_bytes:
        raw = bytes(data) if isinstance(data, (bytes, bytearray, memoryview)) else data.read()
        yield Upload(name, size, raw)
        return
    # the PID in the name: a killed server's copy is swept at the next start (code review,
    # stop 48)
    with tempfile.TemporaryDirectory(prefix=f"{_COPY_PREFIX}{os.getpid()}-") as tmp, \
            _held(Path(tmp)):
        path = Path(tmp) / f"upload{safe_suffix(filename)}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            if isinstance(data, (bytes, bytearray, memoryview)):
                out.write(data)
            else:
                shutil.copyfileobj(data, out, _COPY_BLOCK)
        yield Upload(name, size, path)


@contextmanager
def named_errors(upload: Upload) -> Iterator[None]:
    """Audio errors raised inside the block name the upload, not its temporary copy."""
    try:
        yield
    except AudioError as exc:
        raise type(exc)(upload_message(upload, str(exc))) from None


def upload_message(upload: Upload, msg: str) -> str:
    """``msg`` (an error or a decoder's note) naming the upload, not its temporary copy:
    ffmpeg's words name the file as the decoder was told to
    (:func:`emovox.audio.ffmpeg.named_input`, for the CLI too: user review, stop 53), and
    :func:`scrub` takes out any other mention of a private copy (``file:`` and all)."""
    return scrub(msg, upload.name)


def _gone(pid: int) -> bool:
    """True when no process ``pid`` runs. Another user's process (EPERM) counts as running; a
    PID taken again by an unrelated process keeps the folder until a later sweep."""
    if pid <= 0:  # 0 is the caller's process group
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (OSError, OverflowError):  # not ours to probe, or no PID at all
        return False
    return False


#: the lock file an upload copy holds while it lives (servers in other containers, whose
#: PIDs say nothing here, share the temp folder: diff review, stop 48)
_COPY_LOCK = ".lock"
#: seconds a copy without a lock file (made before stop 48, or just made) is left alone
_UNLOCKED_GRACE_S = 60.0


@contextmanager
def _held(folder: Path) -> Iterator[None]:
    """An ``flock`` on ``folder``'s lock file for the block: the copy is in use."""
    import fcntl

    fd = os.open(folder / _COPY_LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _in_use(folder: str, pid: int, own: bool) -> bool:
    """Is the upload copy ``folder`` still in use? Its lock tells; without one (an older
    version's, or one being made) its PID, and only after a grace period."""
    import fcntl

    try:
        fd = os.open(os.path.join(folder, _COPY_LOCK), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        try:
            young = time.time() - os.stat(folder, follow_symlinks=False).st_mtime
        except OSError:
            return True
        if young < _UNLOCKED_GRACE_S:
            return True
        return not ((pid == os.getpid() and own) or (pid != os.getpid() and _gone(pid)))
    except OSError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except OSError:  # held: a live server's copy, whatever its PID says
        return True
    finally:
        os.close(fd)


def sweep_uploads(parent: str | Path | None = None, *, own: bool = False) -> list[Path]:
    """Remove the upload copies (``emovox-upload-PID-XXXXXXXX`` folders in ``parent``, by
    default the temp folder) that a process no longer running left behind: a server killed
    with SIGKILL left them for good (code review, stop 48). Only folders of that exact name
    that belong to this user; links are never followed (a link of that name is left, and
    so is what it points to). ``own``: this process's too; for a server that starts, which
    has made none yet (a restarted container's server often gets its killed one's PID).
    Returns what was removed."""
    root = Path(tempfile.gettempdir() if parent is None else parent)
    gone: list[Path] = []
    if os.name != "posix":  # no PID probe there (os.kill(pid, 0) sends CTRL_C_EVENT)
        return gone
    try:
        entries = list(os.scandir(root))
    except OSError:
        return gone
    for entry in entries:
        m = _COPY_NAME.fullmatch(entry.name)
        try:
            if m is None or not entry.is_dir(follow_symlinks=False) or \
                    entry.stat(follow_symlinks=False).st_uid != os.getuid():
                continue
        except OSError:
            continue
        if not _in_use(entry.path, int(m.group(1)), own):
            shutil.rmtree(entry.path, ignore_errors=True)  # never follows links inside
            if not os.path.lexists(entry.path):
                gone.append(Path(entry.path))
    if gone:
        log.info("removed %d upload copies left by stopped servers in %s", len(gone), root)
    return gone
