"""What every corpus reader returns: file paths with metadata, never decoded audio."""

from __future__ import annotations

import logging
import os
import re
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from emovox.fileio import file_sha256
from emovox.labels import Emotion

log = logging.getLogger(__name__)

#: File extensions the audio loader can decode (see :mod:`emovox.audio`).
AUDIO_EXTENSIONS: frozenset[str] = frozenset(
    {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac", ".aif", ".aiff"}
)
#: containers and rarer formats ``predict`` and ``batch`` decode through ffmpeg (video
#: files: their audio track) but the corpus readers do not read: a folder corpus lists
#: them as skipped (a speaker recorded as .webm vanished without a word: code review, 45)
CONTAINER_EXTENSIONS: frozenset[str] = frozenset({
    ".webm", ".mp4", ".m4v", ".mkv", ".mka", ".mov", ".avi", ".wma", ".asf", ".caf", ".au",
    ".snd", ".w64", ".ac3", ".mp2", ".amr", ".3gp", ".wv", ".tta", ".spx", ".aifc",
    ".3ga", ".3g2", ".m4b", ".mpga"})


class Gender(str, Enum):
    """Speaker gender as the corpus documents it."""

    MALE = "male"
    FEMALE = "female"
    UNKNOWN = "unknown"


#: the speaker id of a clip whose corpus does not say who speaks (``"csv:unknown"``)
UNKNOWN_SPEAKER = "unknown"


def is_unknown_speaker(speaker: str) -> bool:
    """Is ``speaker`` (``"corpus:id"`` or a bare id) the placeholder of an unknown speaker?"""
    return str(speaker).rsplit(":", 1)[-1] == UNKNOWN_SPEAKER


@dataclass(frozen=True)
class Utterance:
    """One audio file and what its corpus says about it.

    ``emotion`` is ``None`` when the corpus label has no canonical counterpart
    (``raw_label`` keeps the original). ``speaker`` is globally unique, prefixed with
    the corpus name (``ravdess:01``), so speakers never collide across corpora.
    """

    path: Path
    corpus: str
    speaker: str
    emotion: Emotion | None
    raw_label: str
    gender: Gender = Gender.UNKNOWN
    meta: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def utt_id(self) -> str:
        return f"{self.corpus}:{self.path.stem}"


#: skipped files or rows a scan lists (:attr:`CorpusScan.skipped`), plus as many again when
#: each is of a kind of reason not listed yet; the rest are counted (a manifest of a million
#: missing files kept a million reasons, +547 MiB: code review, stop 48)
SKIPPED_KEPT = 100


def _kind(why: str) -> tuple[str, bool]:
    """The kind of a skip reason: the reason without its row number and what follows its
    first colon or parenthesis; a repeat that disagrees ("check them") is a kind of its own."""
    kind = re.split(r"[:(]| at | in row", re.sub(r"^row \d+: ", "", why))[0]
    return kind, why.endswith("check them")


def _varied(skipped: list[tuple[Path, str]], n: int) -> list[tuple[Path, str]]:
    """Up to ``n`` of ``skipped``, one of each kind of reason first (:func:`_kind`; a
    manifest's "file not found at ..." was hidden behind three repeated rows: re-check,
    stop 39)."""
    first: dict[tuple[str, bool], tuple[Path, str]] = {}
    for p, why in skipped:
        first.setdefault(_kind(why), (p, why))
    chosen = list(first.values())[:n]
    return chosen + [s for s in skipped if s not in chosen][: n - len(chosen)]


@dataclass
class CorpusScan:
    """The result of reading a corpus tree.

    ``skipped`` holds files that could not be labelled (malformed or unknown names),
    each with the reason: when there are many, the first :data:`SKIPPED_KEPT` and the
    first of each further kind of reason (:meth:`skip`), ``skipped_more`` counting the
    rest; ``unmapped`` the well-formed files whose label has no canonical emotion;
    ``duplicates`` groups of byte-identical files.
    """

    corpus: str
    root: Path
    utterances: list[Utterance] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    duplicates: list[list[Path]] = field(default_factory=list)
    skipped_more: int = 0
    _kinds: set[tuple[str, bool]] = field(default_factory=set, init=False, repr=False,
                                          compare=False)

    def __post_init__(self) -> None:
        self._kinds = {_kind(why) for _, why in self.skipped}

    def skip(self, path: Path, why: str) -> None:
        """Note ``path`` as skipped for ``why``: listed in :attr:`skipped` while few are,
        else counted in :attr:`skipped_more` (code review, stop 48)."""
        kind = _kind(why)
        if len(self.skipped) < SKIPPED_KEPT or (
                kind not in self._kinds and len(self.skipped) < 2 * SKIPPED_KEPT):
            self.skipped.append((path, why))
            self._kinds.add(kind)
        else:
            self.skipped_more += 1

    @property
    def n_skipped(self) -> int:
        """Files (or rows) skipped, listed or only counted."""
        return len(self.skipped) + self.skipped_more

    @property
    def labelled(self) -> list[Utterance]:
        """Utterances with a canonical emotion."""
        return [u for u in self.utterances if u.emotion is not None]

    @property
    def unmapped(self) -> list[Utterance]:
        return [u for u in self.utterances if u.emotion is None]

    def label_counts(self) -> dict[str, int]:
        """Clips per label: the canonical emotion, or ``(raw label)`` for unmapped files."""
        return dict(Counter(str(u.emotion) if u.emotion else f"({u.raw_label})"
                            for u in self.utterances))

    def summary(self, examples: int = 3) -> str:
        """One human-readable paragraph: counts plus a few examples of each problem."""
        lines = [
            f"{self.corpus}: {count_noun(len(self.utterances), 'file')} "
            f"({len(self.labelled)} labelled, {len(self.unmapped)} without a canonical class), "
            f"{speakers_text(u.speaker for u in self.utterances)}"
        ]
        if self.skipped:  # a manifest's skipped rows are rows, one example of each kind of
            rows = all(why.startswith("row ") for _, why in self.skipped)  # reason first
            ex = "; ".join(f"{p.name} ({why})" for p, why in _varied(self.skipped, examples))
            skipped = count_noun(self.n_skipped, "row" if rows else "unrecognised file")
            lines.append(f"  skipped {skipped}, e.g. {ex}")
        if self.unmapped:
            raws = sorted({u.raw_label for u in self.unmapped})
            lines.append(f"  {count_noun(len(self.unmapped), 'file')} with labels outside the "
                         f"vocabulary: {raws}")
        if self.duplicates:
            ex = "; ".join(" = ".join(p.name for p in g) for g in self.duplicates[:examples])
            lines.append(f"  {count_noun(len(self.duplicates), 'group')} of byte-identical files, "
                         f"e.g. {ex}")
        return "\n".join(lines)


def count_noun(count: int, noun: str) -> str:
    """``"1 file"``, ``"2 files"``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def speakers_text(speakers: Iterable[str]) -> str:
    """``"8 speakers"``; ``"speakers unknown"`` when no clip says who speaks, ``"3 speakers
    and clips of unknown speakers"`` when some do not (own-data QA, stop 33: a folder of 8
    voices without speaker names was "1 speakers")."""
    ids = set(speakers)
    known = sum(not is_unknown_speaker(s) for s in ids)
    if known == len(ids):
        return count_noun(known, "speaker")
    if not known:
        return "speakers unknown"
    return f"{count_noun(known, 'speaker')} and clips of unknown speakers"


def walk_once(root: Path, links: FolderLinks | None = None
              ) -> Iterator[tuple[str, list[str], list[str]]]:
    """``os.walk(root, followlinks=True)`` visiting each real folder once: a tree assembled
    from symlinked folders is read, and symlink cycles end (the set of real folders). Callers may
    prune ``dirnames`` in place, as with ``os.walk``. Folder links are followed once every
    folder reached without one has been walked, so a link to a folder of the tree never
    takes that folder's own name. ``links``: told of each folder link followed and of each
    folder reached again (not walked again), :class:`FolderLinks`."""
    # iterative, not os.walk: Python 3.11's os.walk recurses, and a tree 1500 folders deep
    # ended a batch with RecursionError (security QA, stop 31)
    walked: dict[tuple[int, int], tuple[int, int] | None] = {}  # real folder -> entered from
    stack: list[tuple[str, tuple[int, int] | None]] = [(os.fspath(root), None)]
    linked: deque[tuple[str, tuple[int, int] | None]] = deque()  # folder links, for later
    while stack or linked:
        through_link = not stack
        dirpath, parent = stack.pop() if stack else linked.popleft()
        try:
            st = os.stat(dirpath)  # the real folder: (device, inode), links followed
        except OSError:
            continue
        real = (st.st_dev, st.st_ino)
        if real in walked:
            if links is not None:  # a loop, or another way into a folder walked
                links.add(links.loops if _entered_from(walked, parent, real) else
                          links.again, Path(dirpath))
            continue
        walked[real] = parent
        if through_link and links is not None:
            links.add(links.followed, Path(dirpath))
        try:
            with os.scandir(dirpath) as it:
                entries = list(it)
        except OSError as exc:  # skipped, as os.walk does, but said (its files vanished
            log.warning("cannot read the folder %s (%s): its files are left out", dirpath,
                        exc.strerror or exc)  # without a word: QA, stop 38)
            continue
        dirnames: list[str] = []
        filenames: list[str] = []
        dir_links: set[str] = set()
        for e in entries:
            try:
                is_dir = e.is_dir()  # follows links, as os.walk(followlinks=True)
            except OSError:
                is_dir = False
            (dirnames if is_dir else filenames).append(e.name)
            if is_dir and e.is_symlink():
                dir_links.add(e.name)
        yield dirpath, dirnames, filenames
        for d in reversed(dirnames):  # dirnames as the caller left them
            (linked if d in dir_links else stack).append((os.path.join(dirpath, d), real))


def _entered_from(walked: dict[tuple[int, int], tuple[int, int] | None],
                  parent: tuple[int, int] | None, real: tuple[int, int]) -> bool:
    """Is ``real`` one of the folders the walk went through to reach ``parent``?"""
    while parent is not None:
        if parent == real:
            return True
        parent = walked[parent]
    return False


@dataclass
class PathTally:
    """Stands in for a list of paths of which only how many and a few are said: counts
    what is appended (``accept``: only the paths it is true of) and keeps the first
    ``keep``, and the first of each further extension while fewer than twice as many are
    kept. A folder corpus kept the path of every transcript and picture beside its clips
    to list its few videos (code review, stop 48)."""

    keep: int = 3
    accept: Callable[[Path], bool] | None = None
    count: int = 0
    first: list[Path] = field(default_factory=list)
    _suffixes: set[str] = field(default_factory=set, init=False, repr=False)

    def append(self, path: Path) -> None:
        if self.accept is not None and not self.accept(path):
            return
        self.count += 1
        suffix = path.suffix.lower()
        if len(self.first) < self.keep or (
                suffix not in self._suffixes and len(self.first) < 2 * self.keep):
            self.first.append(path)
            self._suffixes.add(suffix)


@dataclass
class FolderLinks:
    """What a folder walk met through symbolic links (:func:`walk_once`,
    :func:`iter_audio_files`), counted with the first of each kept to name it: folder links
    followed; folders reached again through a folder link, not walked again: one the walk
    was inside (``loops``) or one it had already walked (``again``), each kept as the path
    it was reached by (a link, or a plain folder inside a followed link's folder:
    ``d/up/d`` when ``d/up`` links to the parent of ``d``); and links that lead nowhere
    (``broken``: a missing target or a loop of links), which :func:`iter_audio_files`
    leaves out unless their names are taken (a file's row says what it is). A link met by
    several walks or under several names (a ``**`` glob's walk, then one of each folder it
    matched) counts once: its real folder and name."""

    followed: PathTally = field(default_factory=lambda: PathTally(1))
    loops: PathTally = field(default_factory=lambda: PathTally(1))
    again: PathTally = field(default_factory=lambda: PathTally(1))
    broken: PathTally = field(default_factory=lambda: PathTally(1))
    _met: set[tuple[int, int, str] | Path] = field(default_factory=set, init=False,
                                                   repr=False)

    def add(self, tally: PathTally, path: Path) -> None:
        """Count the link ``path`` in ``tally`` (one of the above) unless met before."""
        try:
            st = os.stat(path.parent)
            key: tuple[int, int, str] | Path = (st.st_dev, st.st_ino, path.name)
        except OSError:
            key = path
        if key not in self._met:
            self._met.add(key)
            tally.append(path)


def iter_audio_files(root: Path, extensions: frozenset[str] = AUDIO_EXTENSIONS, *,
                     regular_only: bool = True, others: list[Path] | PathTally | None = None,
                     links: FolderLinks | None = None) -> Iterator[Path]:
    """Every audio file below ``root`` (any nesting), sorted, by extension (lower case, with
    the dot: :data:`AUDIO_EXTENSIONS` by default). ``regular_only=False``: also entries of
    those names that are no regular file (a FIFO, a dangling or looping link), for a
    caller that reports each (``batch``: they vanished without a word; QA, stop 38).
    ``others``: receives the visible files of other names (``batch`` counts them: an
    Android ``.3ga`` recording vanished without a word, QA stop 39); a
    :class:`PathTally` counts them without keeping each. ``links``: told of the folder
    links met and of the links to nothing not taken (not in ``others``), see
    :class:`FolderLinks`."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"corpus directory not found: {root}")
    if root.is_file():
        hint = (" (a CSV manifest reads with --corpus csv)" if root.suffix.lower() in
                (".csv", ".tsv", ".txt") else "")
        raise NotADirectoryError(f"expected a corpus directory, got a file: {root}{hint}")
    found: list[Path] = []
    for dirpath, dirnames, filenames in walk_once(root, links):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            p = Path(dirpath) / name
            if p.suffix.lower() in extensions and not name.startswith(".") and (
                    not regular_only or p.is_file()):
                found.append(p)
            elif name.startswith("."):
                continue
            elif links is not None and is_broken_link(p):
                links.add(links.broken, p)
            elif others is not None:
                others.append(p)
    yield from sorted(found)


def is_broken_link(path: Path) -> bool:
    """Is ``path`` a symbolic link to nothing (a missing target, or a loop of links)?"""
    return os.path.islink(path) and not os.path.exists(path)


def find_duplicates(paths: Iterable[Path]) -> list[list[Path]]:
    """Groups (size >= 2) of byte-identical files, found by size then SHA-256."""
    by_size: dict[int, list[Path]] = defaultdict(list)
    for p in paths:
        by_size[p.stat().st_size].append(p)
    groups: list[list[Path]] = []
    for same in by_size.values():
        if len(same) < 2:
            continue
        by_hash: dict[str, list[Path]] = defaultdict(list)
        for p in same:
            by_hash[file_sha256(p)].append(p)  # streamed: two 400 MB files held 400 MiB
            # at once when read whole (code review, stop 48)
        groups.extend(sorted(g) for g in by_hash.values() if len(g) > 1)
    return sorted(groups)


#: What a corpus reader's per-file parser returns: an :class:`Utterance`, a reason
#: (``str``) to skip the file, or ``None`` to leave it out silently (a filter option).
ParseResult = Utterance | str | None


def finish_scan(
    scan: CorpusScan, *, detect_duplicates: bool = True, logger: logging.Logger | None = None
) -> CorpusScan:
    """Fill ``scan.duplicates`` (among the accepted utterances) and log what went wrong.

    A warning with :meth:`CorpusScan.summary` is logged when anything was skipped or
    duplicated; otherwise the summary is logged at INFO level.
    """
    logger = logger or log
    if detect_duplicates:
        scan.duplicates = find_duplicates(u.path for u in scan.utterances)
    if scan.skipped or scan.duplicates:
        logger.warning("%s", scan.summary())
    else:
        logger.info("%s", scan.summary())
    return scan


def scan_files(
    corpus: str,
    root: Path,
    parse: Callable[[Path], ParseResult],
    *,
    detect_duplicates: bool = True,
    logger: logging.Logger | None = None,
) -> CorpusScan:
    """Read a corpus whose labels live in file and folder names.

    ``parse`` is called on every audio file below ``root`` (see :func:`iter_audio_files`);
    empty (0-byte) files are skipped before parsing. Raises ``FileNotFoundError`` when
    ``root`` does not exist.
    """
    root = Path(root)
    scan = CorpusScan(corpus=corpus, root=root)
    # the containers only, counted: not every other file's path (code review, stop 48)
    others = PathTally(SKIPPED_KEPT, lambda p: p.suffix.lower() in CONTAINER_EXTENSIONS)
    for path in iter_audio_files(root, others=others):
        if path.stat().st_size == 0:
            scan.skip(path, "empty file (0 bytes)")
            continue
        result = parse(path)
        if isinstance(result, Utterance):
            scan.utterances.append(result)
        elif isinstance(result, str):
            scan.skip(path, result)
    for p in others.first:
        scan.skip(p, f"{p.suffix.lower()} is not read for training (predict and batch read "
                  "it): convert it to WAV or FLAC")
    scan.skipped_more += others.count - len(others.first)
    return finish_scan(scan, detect_duplicates=detect_duplicates, logger=logger)
