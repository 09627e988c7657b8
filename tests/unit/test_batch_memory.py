"""Memory of batch outputs and reference folders bounded by design (code review, stop 48):
rows streamed rather than listed, JSON lines read in bounded pieces, reference answers kept
without their windows, the other files of an input folder counted rather than listed. Each
test checks the behaviour (what is still alive, how much one read returns), never RSS."""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from emovox.errors import ConfigError
from emovox.labels import LABELS
from emovox.serving import adapt as serving_adapt
from emovox.serving import batch_adapt, batch_rows, inputs, outfile
from emovox.serving.adapt import SpeakerGrouping, reference_prior
from emovox.serving.answer import Prediction, Status, evidence_of
from emovox.serving.batch import FIELDS, RowWriter, read_rows, row_for
from emovox.serving.outfile import CSV_HEADERS, check_ours

C = len(LABELS)


class _Row(dict):
    """A row that can be watched with a weak reference (a plain dict cannot)."""


class _Alive:
    """Weak references to what a source handed out; :meth:`check` records how many of them
    are still alive each time a new one is handed out. Rows, paths and arrays hold no
    reference cycles: reference counting frees each as soon as nothing holds it (a full
    collection per row made these tests take seconds)."""

    def __init__(self) -> None:
        self.refs: list[weakref.ref] = []
        self.peak = 0

    def check(self) -> None:
        self.peak = max(self.peak, sum(r() is not None for r in self.refs))

    def watch(self, obj: Any) -> Any:
        self.check()
        self.refs.append(weakref.ref(obj))
        return obj


def _watched_rows(real: Callable[[Path], Iterator[dict]], alive: _Alive
                  ) -> Callable[[Path], Iterator[dict]]:
    def rows(path: Path) -> Iterator[dict]:
        for r in real(path):
            row = alive.watch(_Row(r))
            yield row
            del row  # only the reader may keep it

    return rows


def _pred(k: int, source: str, n_windows: int = 1) -> Prediction:
    p = np.full(C, 0.4 / (C - 1))
    p[k % C] = 0.6
    w = np.tile(p, (n_windows, 1))
    spans = [(float(i), float(i + 1)) for i in range(n_windows)]
    return Prediction(LABELS[k % C], 0.6, dict(zip(LABELS, map(float, p), strict=True)),
                      0.0, 0.0, float(n_windows), source, Status.OK,
                      speech_seconds=float(n_windows), n_windows=n_windows,
                      evidence=evidence_of(spans, w, [1.0] * n_windows, LABELS, p),
                      window_probs=w)


def _raw(tmp_path: Path, suffix: str, n: int = 24) -> Path:
    fmt = suffix[1:]
    raw = tmp_path / f"out.unadapted{suffix}"
    w = RowWriter(raw)
    for i in range(n):
        clip = tmp_path / f"spk{i % 3}" / f"c{i}.wav"
        clip.parent.mkdir(exist_ok=True)
        clip.write_bytes(b"RIFF" + str(i).encode())
        w.write(row_for(clip, _pred(i, clip.name, 1 + i % 2), None, fmt=fmt))
    w.write(row_for(tmp_path / "spk0" / "broken.wav", None, "not audio", fmt=fmt))
    w.close()
    return raw


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_write_adapted_holds_one_row_at_a_time(tmp_path: Path, suffix: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Both passes over the unadapted answers go row by row, the adapted rows straight into
    the temporary file: every row was listed twice (411 MiB for 50,000 JSON lines)."""
    raw = _raw(tmp_path, suffix)
    grouping = SpeakerGrouping.parse("parent")
    plain = tmp_path / f"plain{suffix}"
    expected = batch_adapt.write_adapted(raw, plain, grouping)
    alive = _Alive()
    monkeypatch.setattr(batch_adapt, "read_rows", _watched_rows(read_rows, alive))
    out = tmp_path / f"out{suffix}"
    summary = batch_adapt.write_adapted(raw, out, grouping)
    alive.check()
    assert alive.peak <= 2  # the row being read and the one before it, never the file
    assert len(alive.refs) == 2 * 25  # two passes over the 25 rows
    assert out.read_bytes() == plain.read_bytes()  # the same answers as without watching
    assert summary.__dict__ == expected.__dict__
    assert summary.adapted == 24 and summary.groups == 3


def test_upgrading_an_older_csv_holds_one_row_at_a_time(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    """An older CSV is rewritten with the current columns row by row (200,000 rows took
    309 MiB when listed first)."""
    out = tmp_path / "old.csv"
    header = CSV_HEADERS[0]
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for i in range(20):
            w.writerow([f"/data/c{i}.wav" if c == "path" else "0.5" if c.startswith("p_")
                        else "happy" if c == "label" else "" for c in header])
    alive = _Alive()
    monkeypatch.setattr(batch_rows, "read_rows", _watched_rows(batch_rows.read_rows, alive))
    RowWriter(out).close()
    alive.check()
    assert len(alive.refs) == 20 and alive.peak <= 2
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == FIELDS and len(rows) == 20
    assert [r["path"] for r in rows] == [f"/data/c{i}.wav" for i in range(20)]
    assert rows[3]["label"] == "happy" and rows[3]["p_sad"] == "0.5" and rows[3]["status"] == ""


class _Longest:
    """``open`` for a module under test: the file it returns records the longest text one
    read returned (a line read whole shows up here)."""

    def __init__(self) -> None:
        self.longest = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _Recording(open(*args, **kwargs), self)  # noqa: SIM115 - closed by its user


class _Recording(io.TextIOBase):
    def __init__(self, f: Any, seen: _Longest) -> None:
        self.f, self.seen = f, seen

    def _note(self, text: str) -> str:
        self.seen.longest = max(self.seen.longest, len(text))
        return text

    def readline(self, size: int | None = -1) -> str:
        return self._note(self.f.readline(-1 if size is None else size))

    def read(self, size: int | None = -1) -> str:
        return self._note(self.f.read(size))

    def __next__(self) -> str:
        return self._note(next(self.f))

    def close(self) -> None:
        self.f.close()


_RECORD = json.dumps({"schema_version": "1", "source": "/a.wav", "error": None})


def _long_record(chars: int) -> str:
    return json.dumps({"schema_version": "1", "source": "/b.wav", "error": None,
                       "pad": "x" * chars})


def test_check_ours_reads_a_long_json_line_in_bounded_pieces_and_refuses_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A JSON line longer than :data:`MAX_LINE_CHARS` is refused, and never read whole (a
    300 MB line took 599 MiB)."""
    monkeypatch.setattr(outfile, "MAX_LINE_CHARS", 1000, raising=False)
    reads = _Longest()
    monkeypatch.setattr(outfile, "open", reads, raising=False)
    out = tmp_path / "out.jsonl"
    out.write_text(f"{_RECORD}\n{_long_record(50_000)}\n{_RECORD}\n")
    with pytest.raises(ConfigError, match="line 2 is longer than 1,000 characters"):
        check_ours(out)
    assert 0 < reads.longest <= 1000
    out.write_text(f"{_RECORD}\n{_long_record(900)}\n")  # under the limit: ours
    check_ours(out)


def test_check_ours_reads_a_csv_header_in_a_bounded_piece(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reads = _Longest()
    monkeypatch.setattr(outfile, "open", reads, raising=False)
    out = tmp_path / "out.csv"
    out.write_text("path," + "x" * 100_000 + "\n")  # under csv's field limit
    with pytest.raises(ConfigError, match="a header emovox never wrote"):
        check_ours(out)
    assert 0 < reads.longest <= 1 << 16
    out.write_text(",".join(FIELDS) + "\r\n")
    check_ours(out)


def test_a_deeply_nested_json_line_is_not_ours_rather_than_a_crash(tmp_path: Path) -> None:
    """``[[[[...`` made json.loads raise RecursionError, which nothing caught."""
    out = tmp_path / "out.jsonl"
    out.write_text(f"{_RECORD}\n{'[' * 100_000}\n")
    with pytest.raises(ConfigError, match="line 2 is not an emovox record"):
        check_ours(out)
    assert [r["source"] for r in read_rows(out)] == ["/a.wav"]


def test_read_rows_skips_a_long_json_line_read_in_bounded_pieces(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(outfile, "MAX_LINE_CHARS", 1000, raising=False)
    monkeypatch.setattr(batch_rows, "MAX_LINE_CHARS", 1000, raising=False)  # its message
    reads = _Longest()
    monkeypatch.setattr(batch_rows, "open", reads, raising=False)
    out = tmp_path / "out.jsonl"
    out.write_text(f"{_RECORD}\n{_long_record(50_000)}\n{_RECORD}\n{_long_record(5000)}")
    with caplog.at_level(logging.WARNING):
        rows = list(read_rows(out))
    assert [r["source"] for r in rows] == ["/a.wav", "/a.wav"]
    assert 0 < reads.longest <= 1000
    assert caplog.text.count("ignoring a line of more than 1,000 characters") == 2


def test_a_long_csv_row_is_read_in_bounded_pieces_skipped_and_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """A CSV row was read whole, and a cell over 131,072 characters stopped the resume with
    csv's "field larger than field limit" (code review): a row is read in pieces of at most
    MAX_LINE_CHARS, and one longer is skipped (read_rows) or the file refused (check_ours)."""
    monkeypatch.setattr(outfile, "MAX_LINE_CHARS", 1000, raising=False)
    monkeypatch.setattr(batch_rows, "MAX_LINE_CHARS", 1000, raising=False)  # its message
    reads = _Longest()
    monkeypatch.setattr(batch_rows, "open", reads, raising=False)
    monkeypatch.setattr(outfile, "open", reads, raising=False)
    out = tmp_path / "out.csv"
    cells = {k: "" for k in FIELDS}
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        for i, note in enumerate(["", "w" * 50_000, "", '"quoted", \n' * 60]):
            w.writerow(cells | {"path": f"/c{i}.wav", "status": "ok", "warnings": note})
    with caplog.at_level(logging.WARNING):
        rows = list(read_rows(out))
    assert [r["path"] for r in rows] == ["/c0.wav", "/c2.wav", "/c3.wav"]
    assert rows[2]["warnings"] == '"quoted", \n' * 60  # under 1,000 written: whole
    assert 0 < reads.longest <= 1000
    assert caplog.text.count("ignoring row 3 of") == 1
    with pytest.raises(ConfigError, match="row 3 is longer than 1,000 characters"):
        check_ours(out)
    assert reads.longest <= 1000


@pytest.mark.parametrize(("text", "limit", "expected"), [
    ("a\nbb\n", 3, ["a\n", "bb\n"]),
    ("abc\nd", 3, [None, "d"]),  # 3 characters without the line's end: too long
    ("abcdefgh\nij\n", 3, [None, "ij\n"]),  # the rest of the long line dropped
    ("ab\n" + "x" * 10, 3, ["ab\n", None]),  # a long last line without its end
    ("", 3, []),
])
def test_json_lines(text: str, limit: int, expected: list[str | None]) -> None:
    from emovox.serving.outfile import json_lines

    assert list(json_lines(io.StringIO(text), limit)) == expected


def test_reference_prior_keeps_no_answers_windows(tmp_path: Path) -> None:
    """``predict --reference DIR`` keeps what the prior needs of each clip, not its windows
    and evidence (every Prediction was kept whole, for a folder of any size)."""
    alive = _Alive()

    class Windows:
        labels = LABELS

        def predict_file(self, path: Path, max_duration: float | None = None) -> Prediction:
            pred = _pred(int(Path(path).stem[1:]), Path(path).name, n_windows=40)
            alive.watch(pred.window_probs)
            return pred

    d = tmp_path / "ref"
    d.mkdir()
    for i in range(12):
        (d / f"c{i}.wav").write_bytes(b"RIFF" + str(i).encode())
    sp = reference_prior(Windows(), d)
    alive.check()
    assert len(alive.refs) == 12 and alive.peak <= 1
    assert sp.n == 12
    expected = serving_adapt.prior_from_predictions(
        [_pred(i, f"c{i}.wav", 40) for i in range(12)], LABELS)
    assert expected is not None
    np.testing.assert_array_equal(sp.prior, expected.prior)


class _WatchedPath(type(Path())):  # type: ignore[misc]
    """A path that can be watched with a weak reference."""


def test_other_files_of_an_input_folder_are_counted_not_listed(
        tmp_path: Path, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The files of other names are counted, three of them named; each was kept in a list
    (and resolved) only to be counted."""
    d = tmp_path / "in"
    d.mkdir()
    (d / "a.wav").write_bytes(b"RIFF")
    for i in range(50):
        (d / f"note{i:02d}.txt").write_text("x")
    (d / "out.csv").write_text("")  # the batch's own output: not counted
    alive = _Alive()
    real = inputs.iter_audio_files

    def watched(root: Path, *args: Any, others: Any = None, **kwargs: Any) -> Iterator[Path]:
        mine: list[Path] = []
        found = list(real(root, *args, others=mine, **kwargs))
        for p in mine:
            others.append(alive.watch(_WatchedPath(p)))
        del mine, p
        alive.check()  # every other file given, before the warning
        yield from found

    monkeypatch.setattr(inputs, "iter_audio_files", watched)
    with caplog.at_level(logging.WARNING):
        files = inputs.collect_inputs([str(d), str(tmp_path / "in" / "note4*.txt")],
                                      ours=[d / "out.csv"])
    assert files == [d / "a.wav"]
    assert re.search(r"60 other file\(s\) not read, by their names \(e\.g\. "
                     r"note\d\d\.txt, note\d\d\.txt, note\d\d\.txt\)", caplog.text)
    assert len(alive.refs) == 51 and alive.peak <= 6  # a few kept to name them, never all
