"""A corpus described by a CSV manifest: ``path,label[,speaker]``.

The header row is required (column names are case-insensitive; extra columns are kept
in ``meta``). Relative paths are resolved against the folder that holds the CSV. Labels
use the same names and synonyms as :mod:`emovox.corpora.folder`; an unknown label keeps
its row as an utterance with ``emotion=None`` (counted by :meth:`CorpusScan.summary`).
Rows whose file is missing, empty, not audio, or listed twice are reported in
:attr:`CorpusScan.skipped` with the row number.
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from emovox.corpora.base import (
    AUDIO_EXTENSIONS,
    UNKNOWN_SPEAKER,
    CorpusScan,
    Utterance,
    finish_scan,
)
from emovox.corpora.folder import LABEL_MAP as _FOLDER_LABEL_MAP
from emovox.corpora.folder import label_to_emotion
from emovox.labels import Emotion

log = logging.getLogger(__name__)

NAME = "csv"

#: Label name -> canonical emotion: the same synonyms as the folder reader.
LABEL_MAP: dict[str, Emotion | None] = dict(_FOLDER_LABEL_MAP)

REQUIRED_COLUMNS: tuple[str, ...] = ("path", "label")
OPTIONAL_COLUMNS: tuple[str, ...] = ("speaker",)


#: bytes read ahead for the encoding and the delimiter (a BOM, NULs, the first line)
_HEAD = 1 << 16
#: the longest line read (characters): a manifest row is a path, a label and a few cells
MAX_LINE_CHARS = 1 << 20


def _encoding(path: Path, head: bytes) -> tuple[str, int, str]:
    """``(codec, bytes of its byte-order mark, name said)`` of a manifest beginning ``head``."""
    # UTF-16 with its BOM is what Excel's "Unicode text" and PowerShell write (a bare codec
    # error before: own-data QA, stop 39); without one, its NUL bytes give it away
    if head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        return ("utf-16-le" if head[:2] == codecs.BOM_UTF16_LE else "utf-16-be"), 2, "UTF-16"
    if b"\x00" in head[:64]:
        raise ValueError(f"{path}: looks like UTF-16 text without a byte-order mark; save it "
                         "as a UTF-8 CSV")
    return "utf-8", 3 if head.startswith(codecs.BOM_UTF8) else 0, "UTF-8"


def _bad_byte(path: Path, codec: str, start: int) -> int:
    """Where in ``path`` (read as ``codec`` from byte ``start``) the first byte that is no
    text of it lies: the streamed reader knows only its place in a block."""
    decoder = codecs.getincrementaldecoder(codec)()
    at = start
    with path.open("rb") as fh:
        fh.seek(start)
        while True:
            block = fh.read(_HEAD)
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError as exc:  # exc.start counts the bytes it held back
                return at - len(decoder.getstate()[0]) + exc.start
            at += len(block)
            if not block:
                return at


def _lines(path: Path, text: io.TextIOBase) -> Iterator[str]:
    """The lines of ``text``; ValueError naming ``path`` for one over :data:`MAX_LINE_CHARS`
    (a file of one endless line is no manifest)."""
    while line := text.readline(MAX_LINE_CHARS + 1):
        if len(line) > MAX_LINE_CHARS:
            raise ValueError(f"{path}: a line longer than {MAX_LINE_CHARS} characters; "
                             "not a manifest")
        yield line


@contextmanager
def _open_manifest(path: Path) -> Iterator[tuple[list[str], Iterator[list[str]]]]:
    """Header (lower-cased, trimmed) of ``path``, checked, and its data rows, read as they
    are asked for: the file was held three times over (its bytes, its text and every row:
    +547 MiB for a million rows; code review, stop 48)."""
    with path.open("rb") as raw:
        head = raw.read(_HEAD)
        codec, bom, name = _encoding(path, head)
        first = head[bom:].decode(codec, errors="ignore").split("\n", 1)[0]  # a TSV, or
        delimiter = next((d for d in ("\t", ";")  # the ";" CSV of Excel in many locales,
                          if d in first and "," not in first), ",")  # was refused (45)
        raw.seek(bom)
        with io.TextIOWrapper(raw, encoding=codec, newline="") as text:
            reader = csv.reader(_lines(path, text), delimiter=delimiter)

            def rows() -> Iterator[list[str]]:
                try:
                    yield from reader
                except UnicodeDecodeError as exc:
                    raise ValueError(
                        f"{path}: not {name} text ({exc.reason} at byte "
                        f"{_bad_byte(path, codec, bom)}); save it as a UTF-8 CSV") from None
                except csv.Error as exc:
                    raise ValueError(f"{path}: line {reader.line_num}: {exc}") from None

            data = rows()
            top = next(data, None)
            if top is None:
                raise ValueError(f"{path}: empty manifest, expected a header row "
                                 "path,label[,speaker]")
            yield _header(path, top), data


def _header(path: Path, top: list[str]) -> list[str]:
    """The header row ``top`` lower-cased and trimmed; ValueError unless it names the
    required columns, each once."""
    header = [c.strip().lower() for c in top]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ValueError(
            f"{path}: header row must name the columns path,label[,speaker]; "
            f"missing {missing}, found {top}"
        )
    dupes = sorted({c for c in header if header.count(c) > 1})
    if dupes:
        raise ValueError(f"{path}: duplicate column names in header: {dupes}")
    return header


def scan(root: Path, *, detect_duplicates: bool = True, corpus: str = NAME) -> CorpusScan:
    """Read the manifest CSV at ``root`` (a file, not a folder).

    ``corpus`` names the corpus in every :class:`Utterance` and prefixes speakers; rows of
    a manifest without a speaker column get ``"<corpus>:unknown"``, and in one with it a row
    with an empty speaker cell is skipped (it was that anonymous speaker, split as a person
    beside the others).
    """
    csv_path = Path(root)
    if not csv_path.exists():
        raise FileNotFoundError(f"manifest not found: {csv_path}")
    if csv_path.is_dir():
        raise IsADirectoryError(f"expected a manifest CSV file, got a directory: {csv_path}")
    scan_ = CorpusScan(corpus=corpus, root=csv_path)
    with _open_manifest(csv_path) as (header, rows):
        _read_rows(scan_, header, rows, corpus)
    return finish_scan(scan_, detect_duplicates=detect_duplicates, logger=log)


def _read_rows(scan_: CorpusScan, header: list[str], rows: Iterator[list[str]],
               corpus: str) -> None:
    """Each data row of the manifest ``scan_.root`` an utterance of ``scan_``, or skipped."""
    csv_path = scan_.root
    base = csv_path.parent
    seen: dict[Path, tuple[int, tuple[str, object, str]]] = {}
    for rowno, values in enumerate(rows, start=2):  # row 1 is the header
        if not any(v.strip() for v in values):
            continue
        if len(values) > len(header):
            scan_.skip(csv_path, f"row {rowno}: more values than header columns")
            continue
        row = {col: (values[i].strip() if i < len(values) else "") for i, col in enumerate(header)}
        if not row["path"]:
            scan_.skip(csv_path, f"row {rowno}: empty path")
            continue
        # abspath, not resolve(): normalise "..", keep symlinked names (they are the ids)
        path = Path(os.path.abspath(base / Path(row["path"]).expanduser()))
        if not row["label"]:
            scan_.skip(path, f"row {rowno}: empty label")
            continue
        if not path.is_file():  # the resolved path: a path written relative to the current
            scan_.skip(path, f"row {rowno}: file not found at {path} (paths are "
                       "relative to the CSV's folder)")  # folder (QA, stop 39)
            continue
        if path.suffix.lower() not in AUDIO_EXTENSIONS:
            scan_.skip(path, f"row {rowno}: not an audio file extension")
            continue
        if path.stat().st_size == 0:
            scan_.skip(path, f"row {rowno}: empty file (0 bytes)")
            continue
        key = path.resolve()
        # an empty speaker cell was one anonymous "speaker" on both sides of a speaker split
        if "speaker" in row and not row["speaker"]:  # (code review, stop 45)
            scan_.skip(path, f"row {rowno}: empty speaker (the manifest names "
                       "speakers; a clip without one cannot be kept out of its "
                       "speaker's test fold)")
            continue
        speaker = row.get("speaker") or UNKNOWN_SPEAKER
        emotion = label_to_emotion(row["label"])
        if key in seen:  # rows that disagree are said (the first won silently: QA, stop 39),
            first, was = seen[key]  # by the emotion read, not the text ("Angry" = "angry")
            differ = "" if was[1:] == (emotion or row["label"], speaker) else (
                f" as {was[0]!r} of speaker {was[2]!r}, here {row['label']!r} of "
                f"{speaker!r}: check them")
            scan_.skip(path, f"row {rowno}: already listed in row {first}{differ}")
            continue
        seen[key] = rowno, (row["label"], emotion or row["label"], speaker)
        known = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
        meta = {k: v for k, v in row.items() if k and k not in known}
        meta["manifest_row"] = str(rowno)
        scan_.utterances.append(
            Utterance(
                path=path,
                corpus=corpus,
                speaker=f"{corpus}:{speaker}",
                emotion=emotion,
                raw_label=row["label"],
                meta=meta,
            )
        )
