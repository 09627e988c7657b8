"""What a batch output file already holds, checked before a run appends to it or rewrites it.

``emovox batch`` resumes: it appends to ``--out``, and rewrites it to retry error rows, to
bring an older CSV header up to date or to write adapted answers. It may do so only to a
file emovox wrote:

* a CSV whose header is one that emovox has written (:data:`CSV_HEADERS`, with or without
  the adaptation columns);
* a JSON-lines file whose every line is an emovox record: an object with
  ``schema_version`` and ``source``.

Anything else is refused with :class:`~emovox.errors.ConfigError` before a file is
predicted, and is left as it was.

Two more checks guard a resumed run. A last line cut short (a run killed mid-write, a full
disk) is removed, so that its file is predicted again rather than counted as done; a last
line without its end that does not start as emovox's rows do is not ours, and refused. A file
whose answers came from another model is refused: resuming it would mix two models'
answers in one table.

Rows are read back in bounded pieces: a JSON line or a CSV row (:func:`csv_rows`) of at most
:data:`MAX_LINE_CHARS` characters, the longest any emovox row comes near; a longer one is
not emovox's, and a file holding one is refused as above. Free text that emovox writes in a
CSV cell (an error, the decoder's warnings, an adaptation note) is cut to
:data:`MAX_CELL_CHARS` (:func:`capped`), so that every row it writes is one it reads back.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import stat
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, TextIO

from emovox.errors import ConfigError
from emovox.labels import LABELS

log = logging.getLogger(__name__)

__all__ = ["ADAPT_FIELDS", "CSV_HEADERS", "MAX_CELL_CHARS", "MAX_LINE_CHARS", "capped",
           "check_ours", "check_same_model", "csv_records", "csv_rows", "drop_partial_last_line",
           "json_lines", "models_in", "open_ours_for_append", "spreadsheet_safe", "unquoted"]

_P = [f"p_{lab}" for lab in LABELS]
#: every CSV header emovox has written, oldest first (the last is the current one)
CSV_HEADERS: tuple[tuple[str, ...], ...] = (
    ("path", "label", "confidence", *_P, "arousal", "valence", "duration", "error"),
    ("path", "status", "reason", "label", "confidence", *_P, "arousal", "valence", "duration",
     "speech_seconds", "n_windows", "error"),
    ("path", "status", "reason", "label", "confidence", *_P, "arousal", "valence", "duration",
     "speech_seconds", "n_windows", "model_id", "error"),
    ("path", "status", "reason", "label", "confidence", *_P, "arousal", "valence", "duration",
     "speech_seconds", "n_windows", "model_id", "warnings", "error"),
    # the file's size and modification time (ns) when it was predicted: a file changed since
    # is predicted again (code review); rows without them (older outputs) resume by path
    ("path", "status", "reason", "label", "confidence", *_P, "arousal", "valence", "duration",
     "speech_seconds", "n_windows", "model_id", "warnings", "file_size", "file_mtime_ns",
     "error"),
)
#: the columns ``batch --speaker-from`` adds to a CSV (:mod:`emovox.serving.batch_adapt`)
ADAPT_FIELDS: list[str] = ["speaker_group", "adapted", "reference_clips", "adapt_note"]
#: how much of a file is read to find its last line
_TAIL = 1 << 16
#: how every JSONL record emovox writes starts (a prediction document or a failure record)
RECORD_START = '{"schema_version": '
#: the longest JSON line or CSV row (in characters) emovox reads from a batch output: a
#: line was read whole, and a 300 MB one took 599 MiB before it was refused (code review,
#: stop 48). A record holds one ``evidence`` entry (about 160 characters) per window hop,
#: 0.5 to 1.5 s: 32 Mi characters is 29 to 86 hours of audio in one file, which batch
#: decodes whole (7 to 20 GB of samples), so no record emovox wrote in practice comes near
#: it; a CSV row holds no evidence, and its free text is :func:`capped`
MAX_LINE_CHARS = 1 << 25
#: the most characters of free text emovox writes in one CSV cell (:func:`capped`): under
#: Python csv's default field limit (131,072), so any CSV reader takes the rows; a cell of
#: 200,000 characters stopped every resume, "field larger than field limit" (code review)
MAX_CELL_CHARS = 1 << 16
#: held while csv's (process-wide) field limit is widened to read one row (:func:`csv_rows`)
_FIELD_LIMIT = threading.Lock()
#: the most characters of a CSV's first line read for its header (emovox's is under 300)
_HEADER_CHARS = 1 << 16


#: what joins a CSV cell's list of sentences (``warnings``, ``adapt_note``): warnings hold
#: "; " themselves, so the list could not be split back (QA, stop 39)
CSV_LIST_SEP = " | "


def csv_sentences(items: list[str] | tuple[str, ...]) -> str:
    """Sentences for one CSV cell, joined by :data:`CSV_LIST_SEP` and spreadsheet-safe."""
    return spreadsheet_safe(CSV_LIST_SEP.join(i.replace(CSV_LIST_SEP, " / ") for i in items))


def capped(text: str, limit: int | None = None) -> str:
    """``text`` in at most ``limit`` characters (default :data:`MAX_CELL_CHARS`): a longer
    one keeps its start and its end (a file's name, ffmpeg's last word) around a marker
    that says how long it was."""
    limit = limit or MAX_CELL_CHARS
    if len(text) <= limit:
        return text
    marker = f" [... cut: {len(text):,} characters in all ...] "
    keep = limit - len(marker)
    if keep < 2:
        return text[:limit]
    return text[:keep - keep // 2] + marker + text[len(text) - keep // 2:]


def spreadsheet_safe(text: str) -> str:
    """``text`` for a CSV cell a spreadsheet will not run: one that starts with ``=``,
    ``+``, ``-``, ``@`` (or their full-width and minus-sign look-alikes, after any leading
    spaces), a tab or a carriage return gets a leading ``'`` (OWASP's advice), and so does
    text that starts with ``'`` itself, so that :func:`unquoted` can undo it exactly.
    Messages start with the file's name, and a file named ``=1+2*3.wav`` made its error
    cell a formula (security QA, stop 31)."""
    if not text:
        return text
    head = text.lstrip(" \n\u00a0\ufeff")[:1]  # a space first is trimmed by some imports
    if text[0] in "\t\r'" or (head and head in _FORMULA_START):
        return "'" + text
    return text


#: first characters a spreadsheet may read as a formula (ASCII and their look-alikes)
_FORMULA_START = "=+-@\uff1d\uff0b\uff0d\uff20\u2212"


def _refuse(out: Path, why: str) -> ConfigError:
    return ConfigError(f"{out} {why}: emovox appends to and rewrites only files it wrote; "
                       "choose another --out (the file was left as it was)")


def _adapted_here(out: Path) -> ConfigError:
    return ConfigError(f"{out} holds answers adapted per speaker (batch --speaker-from): a "
                       "run without it would mix unadapted answers into them; re-run with the "
                       "same --speaker-from (it resumes from the .unadapted file beside it), "
                       "or choose another --out (the file was left as it was)")


def check_ours(out: Path, extra_columns: Sequence[str] = ()) -> None:
    """Raise :class:`ConfigError` unless ``out`` is missing, empty or an emovox batch output
    (a known header, optionally followed by ``extra_columns``; or emovox JSON lines). A run
    without ``extra_columns`` (unadapted answers) also refuses a file of adapted answers
    (:data:`ADAPT_FIELDS` in its header, or records with ``adaptation``)."""
    out = Path(out)
    # a link is never ours, nor a FIFO or a device (which report size 0): a link to an empty
    # foreign file got rows, a dangling one created its target, a FIFO hung (QA, stop 31)
    if out.is_symlink():
        raise _refuse(out, "is a symbolic link")
    if not out.exists():
        return
    if not out.is_file():
        raise _refuse(out, "is not a regular file")
    if out.stat().st_nlink > 1:  # a hard link: its other name is not ours (re-check, stop 31)
        raise _refuse(out, "has other names (a hard link)")
    if out.stat().st_size == 0:
        return
    if out.suffix.lower() == ".csv":
        _check_csv(out, extra_columns)
        return
    with open(out, encoding="utf-8", errors="backslashreplace") as f:
        for n, line in enumerate(json_lines(f), start=1):
            if line is None:
                raise _refuse(out, f"line {n} is longer than {MAX_LINE_CHARS:,} characters, "
                              "more than any emovox record")
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
            except (json.JSONDecodeError, RecursionError):  # RecursionError: "[[[[..." (48)
                doc = None
            if isinstance(doc, dict) and ("segments" in doc or "summary" in doc):
                # a timeline's document has both keys too: appended to, its sources counted
                # as predicted (code review, stop 47)
                raise _refuse(out, f"line {n} is a timeline document, not a batch record")
            if not (isinstance(doc, dict) and "schema_version" in doc and "source" in doc):
                if not line.endswith("\n") and _starts_as_record(line):
                    continue  # a last line cut short: drop_partial_last_line removes it
                    # (a user's note there went with it, without newline: stop 56)
                raise _refuse(out, f"line {n} is not an emovox record")
            if not extra_columns and isinstance(doc, dict) and doc.get("adaptation"):
                raise _adapted_here(out)


def _starts_as_record(line: str) -> bool:
    """Whether ``line``, a JSON line without its end, can be an emovox record cut short."""
    return line.startswith(RECORD_START) or RECORD_START.startswith(line)


def _starts_as_row(record: str) -> bool:
    """Whether ``record``, a CSV row without its end, can be an emovox row cut short: its
    first cell, a file's resolved path, starts with ``/`` (``\\`` or a drive letter on
    Windows) or is quoted."""
    if record[:1] in ('"', "/", os.sep):
        return True
    return os.sep == "\\" and re.match(r"[A-Za-z](:|$)", record) is not None


def _check_csv(out: Path, extra_columns: Sequence[str]) -> None:
    """:func:`check_ours` of a CSV: a known header, and no row longer than
    :data:`MAX_LINE_CHARS` (but a last one cut short, which :func:`drop_partial_last_line`
    removes): rewritten, the file would lose it. A last row without its end that does not
    start as one of emovox's (a user's note) is refused: it was removed as cut short."""
    with open(out, newline="", encoding="utf-8", errors="backslashreplace") as f:
        # one bounded line: a first line of 300 MB was read whole (code review, stop 48)
        header = tuple(next(csv.reader([f.readline(_HEADER_CHARS)]), []))
        known = {h for base in CSV_HEADERS for h in (base, (*base, *extra_columns))}
        if not extra_columns and header in {(*b, *ADAPT_FIELDS) for b in CSV_HEADERS}:
            raise _adapted_here(out)
        if header not in known:
            raise _refuse(out, f"has a header emovox never wrote ({', '.join(header[:4])}...)")
        for n, (record, complete) in enumerate(_records(f, MAX_LINE_CHARS), start=2):
            if record is None and complete:
                raise _refuse(out, f"row {n} is longer than {MAX_LINE_CHARS:,} characters, "
                              "more than any emovox row")
            if record is not None and not complete and not _starts_as_row(record):
                raise _refuse(out, f"row {n} is not an emovox row (it does not end a line, "
                              "and does not start with a file's path)")


def json_lines(f: TextIO, limit: int | None = None) -> Iterator[str | None]:
    """The lines of ``f`` (a JSON-lines file opened as text), each read with at most
    ``limit`` characters (default :data:`MAX_LINE_CHARS`); ``None`` for a line that holds
    ``limit`` characters without its end, whose rest is read and dropped in pieces of
    ``limit``: a line is never held whole (a 300 MB line took 599 MiB; code review, stop 48)."""
    limit = limit or MAX_LINE_CHARS
    while line := f.readline(limit):
        if len(line) < limit or line.endswith("\n"):
            yield line
            continue
        while (rest := f.readline(limit)) and not rest.endswith("\n"):
            pass
        yield None


def csv_records(f: TextIO, limit: int | None = None) -> Iterator[str | None]:
    """The records of ``f`` (CSV text opened with ``newline=""``), each a row's text with its
    line end, at most ``limit`` characters (default :data:`MAX_LINE_CHARS`); ``None`` for a
    longer one, read and dropped in pieces of ``limit``, as :func:`json_lines` does. A row
    ends at a line end outside quotes (a quoted cell may hold line ends)."""
    return (record for record, _ in _records(f, limit or MAX_LINE_CHARS))


def _records(f: TextIO, limit: int) -> Iterator[tuple[str | None, bool]]:
    """``(record or None, whether it ended at a line end)`` (:func:`csv_records`); only the
    last can be incomplete: a row cut short."""
    parts: list[str] = []
    size, quotes = 0, _Quotes()
    while piece := f.readline(limit):
        quotes.feed(piece)
        size += len(piece)
        if size <= limit:
            parts.append(piece)
        else:
            parts = []
        if not quotes.inside and piece.endswith(("\n", "\r")):
            yield ("".join(parts) if size <= limit else None), True
            parts, size = [], 0
    if size:
        yield ("".join(parts) if size <= limit else None), False


class _Quotes:
    """Whether CSV text fed piece by piece ends inside a quoted cell, by csv's own rules
    (its default dialect): a quote opens a cell only at the cell's start, ``""`` in one is
    a quote, and any other quote is text."""

    def __init__(self) -> None:
        self.inside = False
        self.opens = True  #: a quote here would open a quoted cell (or go on with one: ``""``)

    def feed(self, piece: str) -> None:
        """Read ``piece``, the text after the last one fed (only its quotes are looked at,
        each with the character before it)."""
        closed = -2  # where the last closing quote of this piece is
        i = piece.find('"')
        while i >= 0:
            if self.inside:
                self.inside, closed = False, i
            elif (self.opens if i == 0 else i == closed + 1 or piece[i - 1] in ",\r\n"):
                self.inside = True  # a cell's first character, or the second of ""
            i = piece.find('"', i + 1)
        if not self.inside:
            self.opens = piece[-1] in ",\r\n" or closed == len(piece) - 1


def csv_rows(f: TextIO, limit: int | None = None) -> Iterator[list[str] | None]:
    """The rows of ``f`` (CSV text opened with ``newline=""``): each record of
    :func:`csv_records` parsed as CSV, with csv's field limit (131,072 characters by
    default, which a longer cell hit: "field larger than field limit", code review) widened
    to ``limit`` for it, as no field is longer than its row; ``None`` for a record over
    ``limit`` or one that is not CSV."""
    limit = limit or MAX_LINE_CHARS
    for record in csv_records(f, limit):
        row: list[str] | None = None
        if record is not None:
            with _FIELD_LIMIT:  # the limit is the process's: restored at once
                before = csv.field_size_limit(limit)
                try:
                    row = next(csv.reader([record]), [])
                except csv.Error:
                    row = None
                finally:
                    csv.field_size_limit(before)
        yield row


def _open_ours(out: Path, flags: int) -> int:
    """A descriptor of ``out`` opened with ``flags``, never through a link, and only when
    the open file is a regular file with one name: :func:`check_ours` ran earlier, and a
    link swapped in since (a re-check appended a row to another file that way, stop 31) is
    refused here, on the open file."""
    try:
        fd = os.open(out, flags | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0),
                     0o666)
    except OSError as exc:
        raise _refuse(Path(out), f"cannot be opened as a plain file ({exc.strerror})") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
        os.close(fd)
        raise _refuse(Path(out), "is not a regular file with one name")
    return fd


def open_ours_for_append(out: Path) -> TextIO:
    """``out`` opened for appending text (see :func:`_open_ours`)."""
    fd = _open_ours(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    return os.fdopen(fd, "a", newline="", encoding="utf-8")


def drop_partial_last_line(out: Path) -> bool:
    """Remove a last line without its newline (a write cut short) from ``out``, in place;
    ``True`` if there was one. In a CSV the cut may fall just after a line end inside a
    quoted file name (``"new\\nline.wav"``): the open quote marks it, and the row is
    removed from its start (it stayed as a phantom row: QA, stop 38). Call only on a file
    :func:`check_ours` accepted."""
    out = Path(out)
    if not out.exists() or out.stat().st_size == 0:
        return False
    size = out.stat().st_size
    with os.fdopen(_open_ours(out, os.O_RDWR), "rb+") as f:  # not through a swapped link
        keep = _after_last_newline(f, size)
        if out.suffix.lower() == ".csv":
            keep = _csv_rows_end(f, keep)
        if keep == size:
            return False
        f.truncate(keep)
    log.warning("%s ended in a line cut short (an interrupted run?): it was removed, and its "
                "file will be predicted again", out)
    return True


def _after_last_newline(f: BinaryIO, size: int) -> int:
    """The offset just after the last newline of ``f`` (``size`` bytes), read backwards in
    blocks of :data:`_TAIL` (a cut-short row over 64 KiB, a long recording's JSONL row,
    stopped every resume: code review, stop 46); ``size`` when ``f`` ends with one, 0 when
    it has none."""
    f.seek(size - 1)
    if f.read(1) == b"\n":
        return size
    end = size
    while end > 0:
        start = max(0, end - _TAIL)
        f.seek(start)
        cut = f.read(end - start).rfind(b"\n")
        if cut >= 0:
            return start + cut + 1
        end = start
    return 0


def _csv_rows_end(f: BinaryIO, end: int) -> int:
    """The offset after the last complete CSV row within the first ``end`` bytes of ``f``:
    ``end`` when its quotes are balanced (the usual case, found by counting), else just
    after the last line end outside a quoted field."""
    f.seek(0)
    if sum(b.count(b'"') for b in _blocks(f, end)) % 2 == 0:
        return end
    f.seek(0)
    inside, last, pos = False, 0, 0
    for block in _blocks(f, end):
        for m in re.finditer(b'["\n]', block):
            if m.group() == b'"':
                inside = not inside
            elif not inside:
                last = pos + m.start() + 1
        pos += len(block)
    return last


def _blocks(f: BinaryIO, end: int) -> Iterator[bytes]:
    """``f``'s bytes up to ``end`` (from where it is) in blocks of 1 MiB."""
    left = end - f.tell()
    while left > 0 and (block := f.read(min(1 << 20, left))):
        left -= len(block)
        yield block


def models_in(rows: Iterable[dict], *, from_csv: bool = False) -> set[str]:
    """The ``model_id`` values of answered rows (error rows and older rows without one are
    not counted); ``from_csv``: cells as written by :func:`spreadsheet_safe`."""
    ids = (str(r["model_id"]) for r in rows if r.get("model_id") and not r.get("error"))
    return {unquoted(i) if from_csv else i for i in ids}


def unquoted(text: str) -> str:
    """A cell as it was before :func:`spreadsheet_safe` (CSV cells read back): one leading
    ``'`` less (every text starting with one was given another)."""
    return text[1:] if text.startswith("'") else text


def check_same_model(out: Path, rows: Iterable[dict], model_id: str | None) -> None:
    """Raise :class:`ConfigError` when ``rows`` (of ``out``) hold another model's answers
    than ``model_id``'s."""
    if model_id is None:
        return
    others = models_in(rows, from_csv=Path(out).suffix.lower() == ".csv") - {model_id}
    if others:
        raise ConfigError(
            f"{out} holds answers of {', '.join(sorted(others))}; this run uses {model_id}: "
            "resuming would mix two models' answers. Choose another --out, or delete the "
            "file to start over")

