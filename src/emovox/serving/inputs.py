"""Which files a batch reads: folders, files and globs expanded, safely.

Folders are walked with :func:`emovox.corpora.base.iter_audio_files` (symlinked folders are
followed, each real folder once, and said: :func:`collect_inputs`). Globs with ``**`` are
expanded by the same kind of walk, so a symlink cycle (``a/loop -> a``) cannot make them
run forever or list a file twice; other globs go to :func:`glob.glob`, which does not
recurse. Every file is identified by its resolved path (:func:`resolved_key`), so ``bad``
and ``/abs/bad`` are one file; that text names one file only (:func:`exact_path_text`), so
a name holding the byte 0xff and one holding the four characters ``\\xff`` are two files.
"""

from __future__ import annotations

import errno
import glob
import logging
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

from emovox.corpora.base import (
    AUDIO_EXTENSIONS,
    CONTAINER_EXTENSIONS,
    FolderLinks,
    PathTally,
    is_broken_link,
    iter_audio_files,
    walk_once,
)

log = logging.getLogger(__name__)

__all__ = ["AUDIO_NAMES", "AUDIO_TYPES", "AUDIO_TYPES_SHOWN", "INPUT_EXTENSIONS", "InputLinks",
           "again_text", "broken_link_text", "collect_inputs", "exact_path_text", "iter_glob",
           "legacy_key", "link_text", "no_file_among", "others_text", "path_of_text",
           "printable_path", "resolved_key"]


def printable_path(path: str | os.PathLike[str]) -> str:
    """``path`` as valid UTF-8 text: bytes that are not UTF-8 (a file name from another
    locale, read as surrogates) are written as backslash escapes, ``b\\xff.wav``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


#: what :func:`exact_path_text` rewrites: a byte that is not UTF-8 (read as a surrogate),
#: and a backslash that would read as the start of an escape (before another backslash, a
#: byte that is not UTF-8, or ``x`` and two lower-case hex digits)
_AMBIGUOUS = re.compile(r"[\udc80-\udcff]|\\(?=[\\\udc80-\udcff]|x[0-9a-f]{2})")
#: what :func:`path_of_text` reads back: a doubled backslash, or a byte's escape
_ESCAPE = re.compile(r"\\\\|\\x([0-9a-f]{2})")


def exact_path_text(path: str | os.PathLike[str]) -> str:
    """``path`` as UTF-8 text that names exactly one file: :func:`printable_path`, except
    that a backslash that would read as an escape is doubled (``a\\\\xff.wav`` for the
    four characters ``\\xff``; ``a\\xff.wav`` for the byte 0xff): the two names shared
    one batch row, and the second file was skipped as done (code review). Any other text
    is unchanged, ordinary paths included (and everything on Windows, where a backslash
    separates folders). :func:`path_of_text` reads it back."""
    if os.sep == "\\":
        return printable_path(path)
    text = os.fsencode(path).decode("utf-8", "surrogateescape")
    return _AMBIGUOUS.sub(lambda m: "\\\\" if m.group() == "\\" else
                          f"\\x{ord(m.group()) - 0xDC00:02x}", text)


def path_of_text(text: str) -> Path:
    """The path that :func:`exact_path_text` wrote as ``text`` (a batch row's ``path``)."""
    if os.sep == "\\":
        return Path(text)
    raw, pos = bytearray(), 0
    for m in _ESCAPE.finditer(text):
        raw += text[pos:m.start()].encode("utf-8", "surrogateescape")
        raw += bytes([int(m.group(1), 16)]) if m.group(1) else b"\\"
        pos = m.end()
    raw += text[pos:].encode("utf-8", "surrogateescape")
    return Path(os.fsdecode(bytes(raw)))


def _resolved(path: str | os.PathLike[str]) -> str | Path:
    try:
        return Path(path).resolve()  # no expanduser: see emovox.audio.sniff
    except (RuntimeError, OSError):
        return os.path.abspath(path)


def resolved_key(path: str | os.PathLike[str]) -> str:
    """The identity of a file in batch output: its resolved absolute path as
    :func:`exact_path_text` (a link that loops: its absolute path; the loop crashed the
    whole batch: QA, stop 38)."""
    return exact_path_text(_resolved(path))


def legacy_key(path: str | os.PathLike[str]) -> str:
    """The key versions before :func:`exact_path_text` gave ``path`` in batch output (its
    resolved path as :func:`printable_path`): it differs from :func:`resolved_key` only
    for a name with a backslash before another, before ``x`` and two hex digits or before
    a byte that is not UTF-8, and may be another file's too (see
    :func:`emovox.serving.batch_rows.legacy_renames`)."""
    return printable_path(_resolved(path))


def _split(pattern: str) -> tuple[Path, list[str]]:
    """``(folder without wildcards, the remaining pattern components)``."""
    parts = Path(pattern).parts
    for i, part in enumerate(parts):
        if glob.has_magic(part):
            return Path(*parts[:i]) if i else Path("."), list(parts[i:])
    return Path(pattern), []


def _matches(pattern: tuple[str, ...], comps: tuple[str, ...]) -> bool:
    """Does the path ``comps`` match ``pattern`` (``**``: zero or more non-hidden folders)?
    A table filled from the end, not recursion: a path 1,500 folders deep under ``**``
    ended a batch with RecursionError (QA, stop 31)."""
    n = len(comps)
    nxt = [j == n for j in range(n + 1)]  # the rest of an empty pattern matches only the end
    for part in reversed(pattern):
        cur = [False] * (n + 1)
        for j in range(n, -1, -1):
            if part == "**":
                cur[j] = nxt[j] or (j < n and not comps[j].startswith(".") and cur[j + 1])
            elif j < n:
                hidden_ok = part.startswith(".") or not comps[j].startswith(".")
                cur[j] = hidden_ok and nxt[j + 1] and fnmatchcase(comps[j], part)
        nxt = cur
    return nxt[0]


def iter_glob(pattern: str, links: FolderLinks | None = None) -> Iterator[Path]:
    """Paths matching ``pattern`` (``**`` = any number of folders), sorted; each real
    folder is visited once, so symlink cycles are harmless (``links``: told of the folder
    links met, see :func:`emovox.corpora.base.walk_once`)."""
    root, parts = _split(os.path.expanduser(pattern))
    if "**" not in parts:
        yield from (Path(m) for m in sorted(glob.glob(pattern)))
        return
    if not root.is_dir():
        return
    wanted = tuple(parts)
    found: list[Path] = []
    for dirpath, dirnames, filenames in walk_once(root, links):
        rel = Path(dirpath).relative_to(root).parts
        for name in (*dirnames, *filenames):
            if _matches(wanted, (*rel, name)):
                found.append(Path(dirpath) / name)
    yield from sorted(found)


#: what a folder scan of ``batch`` picks up: the corpora's audio extensions and the
#: containers ``predict`` decodes through ffmpeg (video files: their audio track); WMA,
#: Matroska, QuickTime and the rest were skipped without a word (QA, stop 37)
INPUT_EXTENSIONS: frozenset[str] = AUDIO_EXTENSIONS | CONTAINER_EXTENSIONS  # Android
# recorders, audiobooks (QA, stop 39)

#: File types the uploader takes: every one ``batch`` reads (the content is sniffed anyway,
#: never trusted); it took five, and an ``.opus`` was refused by the widget as "audio/ogg
#: files are not allowed" under a label saying "ogg" (web QA, stop 38)
AUDIO_TYPES = tuple(sorted(ext.lstrip(".") for ext in INPUT_EXTENSIONS))
#: the types the uploader's label names ("... and more")
AUDIO_TYPES_SHOWN = ("wav", "mp3", "m4a", "ogg", "opus", "flac", "webm")


#: how many files of other names the warning of :func:`collect_inputs` names
_OTHERS_NAMED = 3


@dataclass
class InputLinks:
    """What :func:`collect_inputs` met through symbolic links and second spellings, for a
    caller that says it in its own words (``predict --reference``: a review, stop 54):
    ``folders``, what the folder walks met (:class:`~emovox.corpora.base.FolderLinks`);
    ``outside``, files in a folder given that are links to files out of it; ``twice``, how
    many inputs reached a file already listed, the first of them in ``first_twice``
    (``(the path reached again, the path listed)``)."""

    folders: FolderLinks = field(default_factory=FolderLinks)
    outside: PathTally = field(default_factory=lambda: PathTally(1))
    twice: int = 0
    first_twice: tuple[Path, Path] | None = None
    #: files of other names the folders held, the first few named (``batch`` logs them as
    #: "not read"; a reference folder's are "not used": stop 55)
    others: PathTally = field(default_factory=lambda: PathTally(_OTHERS_NAMED))


def collect_inputs(inputs: Iterable[str], ours: Iterable[Path] = (), *,
                   links: InputLinks | None = None) -> list[Path]:
    """Audio files from paths: folders are walked recursively, globs expanded (``**``
    allowed), files taken as given. Order is stable; the same file reached twice (another
    spelling, a symlinked folder) is listed once. Files of other names are counted in a
    warning, ``ours`` (a batch's own outputs, in an input folder) aside, and so, once each,
    are the symbolic links a walk met and the files reached twice, in a batch's words
    (:func:`_say_links`), unless ``links`` is given: it is filled with them instead, and
    nothing is said of them (the caller says them in its own words).

    Raises:
        FileNotFoundError: an input that is no file, no folder and matches nothing.
    """
    out: dict[str, Path] = {}
    mine = {resolved_key(Path(p)) for p in ours}
    # files of other names in folders and glob matches, ours aside: counted, the first few
    # kept to name them (each was kept in a list only to be counted: code review, stop 48)
    others = PathTally(_OTHERS_NAMED, lambda o: not mine or resolved_key(o) not in mine)
    met = links if links is not None else InputLinks()
    roots: dict[Path, Path] = {}  # each folder walked, resolved
    for item in inputs:
        for q, folder in _expand(item, others, met.folders):
            real = _resolved(q)
            key = exact_path_text(real)
            if key in out:
                met.twice += 1
                if met.first_twice is None:
                    met.first_twice = (q, out[key])
                continue
            out[key] = q
            if folder is not None and os.path.islink(q) and os.path.exists(q) and not \
                    Path(real).is_relative_to(roots.setdefault(folder, Path(_resolved(folder)))):
                met.outside.append(q)  # a link in a folder to a file out of it
    if links is not None:
        links.others = others
    elif others.count:  # skipped without a word (QA, stop 39)
        log.warning("%d other file(s) not read, by their names (e.g. %s): a folder or glob "
                    "takes files with %s; a file given by name is read whatever its name",
                    others.count, others_text(others), AUDIO_NAMES)
    if links is None:
        _say_links(met)
    return list(out.values())


#: the names a folder walk or a glob takes, as said to a user
AUDIO_NAMES = "an audio extension (.wav, .flac, .mp3, .m4a, .ogg, .opus, ...)"


def others_text(others: PathTally) -> str:
    """The first few files of other names, by name, printable: ``notes.txt, take.3ga``."""
    return ", ".join(printable_path(Path(o.name)) for o in others.first[:_OTHERS_NAMED])


def _expand(item: str, others: PathTally, links: FolderLinks
            ) -> list[tuple[Path, Path | None]]:
    """The audio files one input names, each with the folder walked to find it (None: a
    file named, or matched by a glob)."""
    p = Path(item)
    if p.is_dir():
        return [(q, p) for q in iter_audio_files(p, INPUT_EXTENSIONS, regular_only=False,
                                                 others=others, links=links)]
    if p.is_file() or (p.is_symlink() and not glob.has_magic(item)):
        return [(p, None)]  # a link to nothing, named: read, so its row says what it is
    matches = list(iter_glob(item, links))
    if not matches:
        raise FileNotFoundError(f"no such file, folder or glob match: {item}")
    paths: list[tuple[Path, Path | None]] = []
    for mp in matches:
        if mp.is_dir():
            if mp.is_symlink():  # a folder link a glob matched is said as a walk's is
                # (it went unsaid: review, stop 54); one back to a folder it is in is a
                # loop, not walked (code review, stop 55)
                if Path(_resolved(mp.parent)).is_relative_to(_resolved(mp)):
                    links.add(links.loops, mp)
                    continue
                links.add(links.followed, mp)
            paths += [(q, mp) for q in iter_audio_files(mp, INPUT_EXTENSIONS,
                                                        regular_only=False, others=others,
                                                        links=links)]
        elif mp.suffix.lower() in INPUT_EXTENSIONS:
            paths.append((mp, None))  # a link to nothing among them: its row says so
        elif is_broken_link(mp):
            links.add(links.broken, mp)
        else:
            others.append(mp)
    return paths


def link_text(link: Path) -> str:
    """``link -> the file or folder it resolves to``, printable."""
    return f"{printable_path(link)} -> {printable_path(_resolved(link))}"


def again_text(path: Path) -> str:
    """``path is the folder or file it resolves to``, printable (a folder reached again)."""
    return f"{printable_path(path)} is {printable_path(_resolved(path))}"


def broken_link_text(link: Path) -> str:
    """``link -> what it names`` and why that is nothing, printable (the link alone when it
    has gone meanwhile)."""
    try:
        text = f"{printable_path(link)} -> {printable_path(os.readlink(link))}"
    except OSError:
        return printable_path(link)
    try:
        os.stat(link)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return text + ", a loop of symbolic links"
        if exc.errno == errno.ENOENT:
            return text + ", which does not exist"
    return text


def _say_links(met: InputLinks) -> None:
    """One warning for files reached twice, and one for each kind of symbolic link a
    batch's walks met, the first of each named: folder links followed, folders reached
    again through one (a loop back to a folder above, or another way into a folder walked:
    not walked again), links to nothing left out, and file links out of the folder given
    (a review, stop 54: folder links were followed, and loops cut, without a word; a link to
    nothing without an audio name counted as a file "not read, by its name")."""
    if met.first_twice is not None:  # a user counting rows should not wonder where a file
        # went (QA stop 30); the resolved path named itself, "X is X", when the link came
        # first (a review as a user, stop 53)
        first, again = (printable_path(p) for p in reversed(met.first_twice))
        example = f"{again} is {first}" if again != first else f"{again} is given twice"
        log.warning("%d %s a file already listed (the same path, a link or another "
                    "spelling; e.g. %s): each file is answered once, under its resolved "
                    "path", met.twice, "input reaches" if met.twice == 1 else "inputs reach",
                    example)
    links = met.folders
    if links.followed.count:
        log.warning("%d folder link(s) followed (e.g. %s): the files of the folder linked "
                    "to are read, each answered under its resolved path",
                    links.followed.count, link_text(links.followed.first[0]))
    for tally, how in ((links.loops, "a loop back to a folder above"),
                       (links.again, "already walked another way")):
        if tally.count:  # the path met may be a plain folder inside a followed link's
            log.warning("%d folder(s) reached again through a folder link, %s (e.g. %s): "
                        "not walked again, so each file is answered once", tally.count, how,
                        again_text(tally.first[0]))
    if links.broken.count:
        log.warning("%d symbolic link(s) to nothing not read (e.g. %s); a link to nothing "
                    "with an audio name gets an error row instead", links.broken.count,
                    broken_link_text(links.broken.first[0]))
    if met.outside.count:
        log.warning("%d file(s) in a folder given are links to files out of it (e.g. %s): "
                    "each is read, and answered under the file it links to",
                    met.outside.count, link_text(met.outside.first[0]))


def no_file_among(paths: Iterable[str | os.PathLike[str]]) -> list[str] | None:
    """Why each of ``paths`` is no file to read (missing, a folder, a dangling link...), in
    the words reading it gives, when that is so of EVERY one: a command given only such
    paths has nothing to do, a usage error as `timeline`'s (code review: `predict` of one
    missing file exited 1, "some files failed"). None as soon as one is a file, even one
    that will not decode: that is the file's own failure, answered as such."""
    from emovox.audio.sniff import Source
    from emovox.errors import AudioError, AudioFileNotFound

    why: list[str] = []
    for p in paths:
        try:
            Source(p)
        except AudioFileNotFound as exc:
            why.append(str(exc))
            continue
        except AudioError:  # there, but unreadable or empty: the file's own failure
            pass
        return None
    return why or None
