"""A corpus described by a CSV manifest: ``path,label[,speaker]``.

The header row is required (column names are case-insensitive; extra columns are kept
in ``meta``). Relative paths are resolved against the folder that holds the CSV. Labels
use the same names and synonyms as :mod:`emovox.corpora.folder`; an unknown label keeps
its row as an utterance with ``emotion=None`` (counted by :meth:`CorpusScan.summary`).
Rows whose file is missing, empty, not audio, or listed twice are reported in
:attr:`CorpusScan.skipped` with the row number.
"""

from __future__ import annotations

import csv
import io
import logging
import os
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


def _open_manifest(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header (lower-cased, trimmed) and data rows of ``path``; checks the header."""
    raw = path.read_bytes()
    # UTF-16 with its BOM is what Excel's "Unicode text" and PowerShell write (a bare codec
    # error before: own-data QA, stop 39); without one, its NUL bytes give it away
    encoding = "UTF-16" if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else "UTF-8"
    if encoding == "UTF-8" and b"\x00" in raw[:64]:
        raise ValueError(f"{path}: looks like UTF-16 text without a byte-order mark; save it "
                         "as a UTF-8 CSV")
    try:
        text = raw.decode("utf-16" if encoding == "UTF-16" else "utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not {encoding} text ({exc.reason} at byte {exc.start}); "
                         "save it as a UTF-8 CSV") from None
    first = text.split("\n", 1)[0]  # a TSV, or the ";" CSV of Excel in many locales, was
    delimiter = next((d for d in ("\t", ";") if d in first and "," not in first), ",")  # (45)
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    if not rows:
        raise ValueError(f"{path}: empty manifest, expected a header row path,label[,speaker]")
    header = [c.strip().lower() for c in rows[0]]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ValueError(
            f"{path}: header row must name the columns path,label[,speaker]; "
            f"missing {missing}, found {rows[0]}"
        )
    dupes = sorted({c for c in header if header.count(c) > 1})
    if dupes:
        raise ValueError(f"{path}: duplicate column names in header: {dupes}")
    return header, rows[1:]


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
    header, rows = _open_manifest(csv_path)
    base = csv_path.parent
    scan_ = CorpusScan(corpus=corpus, root=csv_path)
    seen: dict[Path, tuple[int, tuple[str, object, str]]] = {}
    for rowno, values in enumerate(rows, start=2):  # row 1 is the header
        if not any(v.strip() for v in values):
            continue
        if len(values) > len(header):
            scan_.skipped.append((csv_path, f"row {rowno}: more values than header columns"))
            continue
        row = {col: (values[i].strip() if i < len(values) else "") for i, col in enumerate(header)}
        if not row["path"]:
            scan_.skipped.append((csv_path, f"row {rowno}: empty path"))
            continue
        # abspath, not resolve(): normalise "..", keep symlinked names (they are the ids)
        path = Path(os.path.abspath(base / Path(row["path"]).expanduser()))
        if not row["label"]:
            scan_.skipped.append((path, f"row {rowno}: empty label"))
            continue
        if not path.is_file():  # the resolved path: a path written relative to the current
            scan_.skipped.append((path, f"row {rowno}: file not found at {path} (paths are "
                                  "relative to the CSV's folder)"))  # folder (QA, stop 39)
            continue
        if path.suffix.lower() not in AUDIO_EXTENSIONS:
            scan_.skipped.append((path, f"row {rowno}: not an audio file extension"))
            continue
        if path.stat().st_size == 0:
            scan_.skipped.append((path, f"row {rowno}: empty file (0 bytes)"))
            continue
        key = path.resolve()
        # an empty speaker cell was one anonymous "speaker" on both sides of a speaker split
        if "speaker" in row and not row["speaker"]:  # (code review, stop 45)
            scan_.skipped.append((path, f"row {rowno}: empty speaker (the manifest names "
                                  "speakers; a clip without one cannot be kept out of its "
                                  "speaker's test fold)"))
            continue
        speaker = row.get("speaker") or UNKNOWN_SPEAKER
        emotion = label_to_emotion(row["label"])
        if key in seen:  # rows that disagree are said (the first won silently: QA, stop 39),
            first, was = seen[key]  # by the emotion read, not the text ("Angry" = "angry")
            differ = "" if was[1:] == (emotion or row["label"], speaker) else (
                f" as {was[0]!r} of speaker {was[2]!r}, here {row['label']!r} of "
                f"{speaker!r}: check them")
            scan_.skipped.append((path, f"row {rowno}: already listed in row {first}{differ}"))
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
    return finish_scan(scan_, detect_duplicates=detect_duplicates, logger=log)
