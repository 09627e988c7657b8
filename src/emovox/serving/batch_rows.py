"""The rows of a batch output file (:mod:`emovox.serving.batch`): read back, keyed for a
resume, rewritten, appended.

A row's key is its file's resolved path (:func:`~emovox.serving.inputs.resolved_key`: the
``path`` column of a CSV, ``source`` of a JSON line); when a path has several rows, the
last one counts (:func:`done_rows`). A CSV row also records the file's size and
modification time when it was predicted (:data:`VERSION_FIELDS`), so that a resumed batch
predicts a file changed since then again (:func:`file_version`); rows without them, of an
older CSV or of JSON lines (whose schema has no place for them), resume by path alone.
A row keyed as versions before :func:`~emovox.serving.inputs.exact_path_text` wrote its path
(:func:`~emovox.serving.inputs.legacy_key`; another text only for a name with a backslash
that reads as an escape, or a byte that is not UTF-8) is re-keyed to its file when one file
of the batch alone had that text (:func:`legacy_renames`), so that the file keeps one row.

Rows are read in bounded pieces (:func:`emovox.serving.outfile.csv_rows`, :func:`json_lines`
of :mod:`emovox.serving.outfile`): a row longer than
:data:`~emovox.serving.outfile.MAX_LINE_CHARS`, or one that is not CSV or JSON, is skipped
with a warning, so its file is predicted again (``emovox batch`` refuses such a file before
that: :func:`~emovox.serving.outfile.check_ours`, and nothing in it is lost).
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from emovox.fileio import atomic_path, mode_of
from emovox.serving.inputs import legacy_key, path_of_text, resolved_key
from emovox.serving.outfile import (
    CSV_HEADERS,
    MAX_LINE_CHARS,
    csv_rows,
    json_lines,
    open_ours_for_append,
)

log = logging.getLogger(__name__)

__all__ = ["ERROR_LABEL", "FIELDS", "VERSION_FIELDS", "DoneRow", "FileVersion", "RowWriter",
           "done_paths", "done_rows", "drop_rows", "file_version", "is_error_row",
           "legacy_renames", "output_format", "read_rows", "row_key", "upgrade_csv",
           "version_cells"]

ERROR_LABEL = "error"
#: the CSV columns (:data:`emovox.serving.outfile.CSV_HEADERS`' current one)
FIELDS = list(CSV_HEADERS[-1])
#: the CSV columns that say which version of a file a row answers (:func:`file_version`)
VERSION_FIELDS = ("file_size", "file_mtime_ns")
#: a file's ``(size in bytes, modification time in ns)``
FileVersion = tuple[int, int]


def output_format(out: Path) -> str:
    """``"csv"`` or ``"jsonl"``, by ``out``'s suffix.

    Raises:
        ValueError: any other suffix.
    """
    suffix = Path(out).suffix.lower()
    if suffix not in (".csv", ".jsonl"):
        raise ValueError(f"output must end in .csv or .jsonl, got {Path(out).name}")
    return suffix[1:]


def is_error_row(row: dict[str, Any]) -> bool:
    """A failed file's row (this version's format or an older one)."""
    return bool(row.get("error")) or ERROR_LABEL in (row.get("label"), row.get("status"))


def read_rows(out: Path) -> Iterator[dict[str, Any]]:
    """The rows of an output file (.csv: dicts of strings, as :class:`csv.DictReader` gives
    them; .jsonl: the documents), each read in bounded pieces; a row too long or unreadable
    is skipped with a warning."""
    if output_format(out) == "csv":
        with open(out, newline="", encoding="utf-8", errors="backslashreplace") as f:
            yield from _csv_dicts(out, f)
        return
    with open(out, encoding="utf-8", errors="backslashreplace") as f:
        for line in json_lines(f):  # bounded: a 300 MB line was read whole (review, stop 48)
            if line is None:
                log.warning("ignoring a line of more than %s characters in %s (no emovox record "
                            "is that long)", f"{MAX_LINE_CHARS:,}", out)
                continue
            try:
                row = json.loads(line)
            except (json.JSONDecodeError, RecursionError):
                log.warning("ignoring an unreadable line in %s", out)
                continue
            if isinstance(row, dict):
                yield row


def _csv_dicts(out: Path, f: TextIO) -> Iterator[dict[str, Any]]:
    """The rows after the header of CSV ``f`` as dicts (a short row's missing cells None,
    a long row's extra cells a list under the key None: as :class:`csv.DictReader`)."""
    header: list[str] | None = None
    for n, row in enumerate(csv_rows(f), start=1):
        if row is None:
            log.warning("ignoring row %d of %s: more than %s characters, or not CSV (no "
                        "emovox row is either); its file is predicted again", n, out,
                        f"{MAX_LINE_CHARS:,}")
        elif not row:
            continue
        elif header is None:
            header = row
        else:
            d: dict[Any, Any] = dict(zip(header, row, strict=False))
            if len(row) > len(header):
                d[None] = row[len(header):]
            d.update((k, None) for k in header[len(row):])
            yield d


def row_key(row: dict[str, Any]) -> str:
    """A row's key: its resolved path (paths written relative by older versions are resolved
    here); ``""`` for a row without one."""
    path = row.get("path") or row.get("source") or ""
    if not isinstance(path, str) or not path:
        return ""
    return path if os.path.isabs(path) else resolved_key(path)


def file_version(path: Path) -> FileVersion | None:
    """``path``'s size and modification time now (``None``: it cannot be read)."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_size, st.st_mtime_ns


def recorded_version(row: dict[str, Any]) -> FileVersion | None:
    """The file version a row recorded (:data:`VERSION_FIELDS`); ``None`` when it holds none
    (an older CSV, JSON lines)."""
    try:
        size, mtime = (int(row[k]) for k in VERSION_FIELDS)
    except (KeyError, TypeError, ValueError):
        return None
    return size, mtime


def version_cells(version: FileVersion | None) -> dict[str, Any]:
    """The CSV cells of :data:`VERSION_FIELDS` for ``version`` (empty when unknown)."""
    return dict(zip(VERSION_FIELDS, version or ("", ""), strict=True))


@dataclass(frozen=True)
class DoneRow:
    """What an output already holds of one file: its row's status (``error`` for a failed
    file) and the file version it answered (``None``: not recorded)."""

    status: str
    version: FileVersion | None = None


def done_rows(out: Path) -> dict[str, DoneRow]:
    """``{key: DoneRow}`` of the rows already in an existing output file (the last row of a
    key wins)."""
    if not out.exists() or out.stat().st_size == 0:
        return {}
    seen: dict[str, DoneRow] = {}
    for r in read_rows(out):
        key = row_key(r)
        if key:
            status = ERROR_LABEL if is_error_row(r) else str(r.get("status") or
                                                              r.get("label") or "")
            seen[key] = DoneRow(status, recorded_version(r))
    return seen


def done_paths(out: Path) -> dict[str, str]:
    """``{resolved path: status}`` (``error`` for a failed file) of the rows already in an
    existing output file (the last row of a path wins)."""
    return {k: d.status for k, d in done_rows(out).items()}


def legacy_renames(seen: Mapping[str, DoneRow], files: Mapping[str, Path]
                   ) -> dict[str, str | None]:
    """``{old key: its file's key now, or None}`` for the rows of ``seen`` (an output's,
    :func:`done_rows`) keyed as an older version wrote the path of one of ``files`` (keyed
    by :func:`~emovox.serving.inputs.resolved_key`): a key no file has now, that the
    :func:`~emovox.serving.inputs.legacy_key` of exactly one file gives (two files that
    printed alike, ``a<0xff>.wav`` and ``a\\xff.wav``: whose it is cannot be told, so it
    is left alone). None: that file has a row under its key now too, the one that counts.
    Without these a resume predicted such a file again and the output kept two rows of it
    (code review). A row is never taken over when its key is a file's key now (that file's
    row, even when the file is not in this batch: ``a<0xff>.wav``'s row is not
    ``a\xff.wav``'s) or when it recorded a file version (this version wrote it: its key is
    already today's)."""
    olds: dict[str, list[str]] = {}
    for key, path in files.items():
        old = legacy_key(path)
        if old != key:
            olds.setdefault(old, []).append(key)
    return {old: None if new[0] in seen else new[0] for old, new in olds.items()
            if len(new) == 1 and old in seen and old not in files
            and seen[old].version is None and not _a_file_key(old)}


def _a_file_key(key: str) -> bool:
    """Is ``key`` the key, written today, of a file that is there?"""
    try:
        path = path_of_text(key)
        return os.path.lexists(path) and resolved_key(path) == key
    except (OSError, ValueError):
        return False


def drop_rows(out: Path, keys: set[str], rename: Mapping[str, str] | None = None) -> None:
    """Rewrite ``out`` without the rows of ``keys`` (atomically: a temp file in the same
    folder, then a rename), so a file predicted again ends up with one row; a row whose key
    ``rename`` maps gets the new key first (its ``path``, or a JSON line's ``source``)."""
    fmt = output_format(out)
    rename = rename or {}
    with atomic_path(out, mode=mode_of(out)) as tmp, \
            open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore") if fmt == "csv" \
            else None
        if w:
            w.writeheader()
        for r in read_rows(out):
            key = row_key(r)
            if key in rename:
                key = rename[key]
                r = r | {"path" if r.get("path") else "source": key}
            if key in keys:
                continue
            if w:
                w.writerow(r)
            else:
                f.write(json.dumps(r) + "\n")


def upgrade_csv(out: Path) -> None:
    """Rewrite a CSV written by an older version (an older header of
    :data:`~emovox.serving.outfile.CSV_HEADERS`: :func:`check_ours` has refused any other)
    with :data:`FIELDS`, so that resumed rows line up; columns it lacks stay empty
    (atomically, like :func:`drop_rows`)."""
    with open(out, newline="", encoding="utf-8", errors="backslashreplace") as f:
        header = next(csv.reader([f.readline(1 << 16)]), [])
    if header == FIELDS:
        return
    log.info("%s was written by an older emovox: rewriting it with the current columns", out)
    with atomic_path(out, mode=mode_of(out)) as tmp, \
            open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore", restval="")
        w.writeheader()
        w.writerows(read_rows(out))  # streamed: a list of every row took 309 MiB for
        # 200,000 rows (code review, stop 48); out is replaced only once all are written


class RowWriter:
    """Appends rows to a CSV (header once) or JSONL file, flushing every row."""

    def __init__(self, out: Path) -> None:
        self.fmt = output_format(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        new = not out.exists() or out.stat().st_size == 0
        if self.fmt == "csv" and not new:
            upgrade_csv(out)
        self.f = open_ours_for_append(out)
        self.csv = csv.DictWriter(self.f, fieldnames=FIELDS) if self.fmt == "csv" else None
        if self.csv and new:
            self.csv.writeheader()

    def write(self, row: dict[str, Any]) -> None:
        """Append ``row`` and flush it."""
        if self.csv:
            self.csv.writerow(row)
        else:
            self.f.write(json.dumps(row) + "\n")
        self.f.flush()

    def close(self) -> None:
        """Close the file."""
        self.f.close()
