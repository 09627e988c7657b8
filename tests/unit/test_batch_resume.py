"""Resuming `emovox batch` (code review): a CSV cell over csv's field limit, a file changed
since its row was written, two file names that printed alike, and rows keyed as the version
before wrote such a name. Batches run here on a fake predictor (no model), over short tones
written to tmp_path."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from emovox.errors import ConfigError
from emovox.labels import LABELS
from emovox.serving.batch import FIELDS, RowWriter, read_rows, row_for, run_batch
from emovox.serving.batch_rows import VERSION_FIELDS, done_paths
from emovox.serving.inputs import (
    exact_path_text,
    path_of_text,
    printable_path,
    resolved_key,
)
from emovox.serving.outfile import CSV_HEADERS, MAX_CELL_CHARS, capped, check_ours
from first_label import MODEL, FirstLabel, install
from signals import sine


@pytest.fixture()
def fake(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch)


def _clip(path: Path | bytes, seconds: float = 0.5) -> None:
    """A tone written to ``path`` (bytes: a name that need not be UTF-8)."""
    buf = io.BytesIO()
    sf.write(buf, sine(300.0, seconds), 16000, format="WAV", subtype="PCM_16")
    with open(path, "wb") as f:
        f.write(buf.getvalue())


def _batch(inputs: list[Path], out: Path) -> Any:
    return run_batch([str(p) for p in inputs], out, workers=1, processes=False)


def _csv(out: Path) -> list[dict[str, str]]:
    with open(out, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


# -- 1: a cell over csv's field limit ------------------------------------------------------


def test_a_cell_over_csvs_field_limit_is_read_back_and_the_batch_resumes(tmp_path, fake):
    """A 200,000-character cell (an older version's warnings) stopped every resume with
    ``_csv.Error: field larger than field limit``."""
    d = tmp_path / "clips"
    d.mkdir()
    for name in ("a.wav", "b.wav"):
        _clip(d / name)
    out = tmp_path / "r.csv"
    _batch([d], out)
    rows = _csv(out)
    rows[0]["warnings"] = "w" * 200_000
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)
    again = _batch([d], out)
    assert (again.skipped, again.done, again.changed) == (2, 0, 0)
    assert [len(r["warnings"]) for r in read_rows(out)] == [200_000, 0]


def test_long_free_text_is_cut_when_written_so_any_csv_reader_takes_the_row(tmp_path):
    error = "x.wav: " + "e" * 300_000 + " the end"
    warnings = tuple(f"warning {i}: " + "w" * 1000 for i in range(200))
    pred = FirstLabel().predict_wave(np.zeros(1600, np.float32), 16000)
    out = tmp_path / "r.csv"
    w = RowWriter(out)
    w.write(row_for(tmp_path / "x.wav", None, error))
    w.write(row_for(tmp_path / "y.wav", dataclasses.replace(pred, warnings=warnings), None))
    w.close()
    bad, good = _csv(out)  # csv's default field limit: any reader takes our rows
    assert len(bad["error"]) <= MAX_CELL_CHARS < csv.field_size_limit()
    assert bad["error"].startswith("x.wav: eee") and bad["error"].endswith("e the end")
    assert "[... cut: 300,015 characters in all ...]" in bad["error"]
    assert len(good["warnings"]) <= MAX_CELL_CHARS and good["warnings"].startswith("warning 0")
    assert "characters in all" in good["warnings"]


@pytest.mark.parametrize("n", [0, 10, MAX_CELL_CHARS, MAX_CELL_CHARS + 1, 1_000_000])
def test_capped(n):
    text = "".join(chr(ord("a") + i % 26) for i in range(n))
    got = capped(text)
    assert len(got) <= MAX_CELL_CHARS
    assert got == text if n <= MAX_CELL_CHARS else (got[:5] == "abcde" and
                                                    got.endswith(text[-5:]))


def test_a_csv_row_over_the_row_limit_is_refused_and_skipped_when_read(tmp_path, monkeypatch,
                                                                       caplog):
    """A row longer than MAX_LINE_CHARS (none of emovox's) is read in bounded pieces: the
    batch refuses the file, as a JSON line that long (nothing in it is lost); read_rows
    skips it with a warning, so its file would be predicted again."""
    from emovox.serving import outfile

    monkeypatch.setattr(outfile, "MAX_LINE_CHARS", 1000)
    out = tmp_path / "r.csv"
    cells = {k: "" for k in FIELDS}
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerow(cells | {"path": "/a.wav", "status": "ok"})
        w.writerow(cells | {"path": "/b.wav", "status": "ok", "warnings": "x,\n" * 2000})
        w.writerow(cells | {"path": "/c.wav", "status": "ok"})
    with pytest.raises(ConfigError, match="row 3 is longer than 1,000 characters"):
        check_ours(out)
    with caplog.at_level(logging.WARNING):
        assert done_paths(out) == {"/a.wav": "ok", "/c.wav": "ok"}
    assert "ignoring row 3 of" in caplog.text


def test_only_a_long_last_row_cut_short_is_left_to_be_removed(tmp_path, monkeypatch):
    from emovox.serving import outfile

    monkeypatch.setattr(outfile, "MAX_LINE_CHARS", 1000)
    out = tmp_path / "r.csv"
    out.write_text(",".join(FIELDS) + "\r\n/a.wav,ok\r\n/b.wav,\"" + "y\n" * 3000,
                   encoding="utf-8")
    check_ours(out)
    assert outfile.drop_partial_last_line(out)
    assert list(done_paths(out)) == ["/a.wav"]


# -- 2: a file changed since its row -------------------------------------------------------


def _three_clips_batched(tmp_path: Path) -> tuple[Path, Path]:
    """A folder of three clips, batched once into ``r.csv``: ``(folder, output)``."""
    d = tmp_path / "clips"
    d.mkdir()
    for name in ("a.wav", "b.wav", "c.wav"):
        _clip(d / name)
    out = tmp_path / "r.csv"
    _batch([d], out)
    return d, out


def test_a_file_changed_since_its_row_is_predicted_again(tmp_path, fake, caplog):
    d, out = _three_clips_batched(tmp_path)
    first = {Path(r["path"]).name: r for r in _csv(out)}
    st = os.stat(d / "b.wav")
    assert first["b.wav"]["file_size"] == str(st.st_size)
    assert first["b.wav"]["file_mtime_ns"] == str(st.st_mtime_ns)

    _clip(d / "a.wav", seconds=1.5)  # re-exported: another size
    os.utime(d / "b.wav", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # same size, touched
    with caplog.at_level(logging.WARNING):
        again = _batch([d], out)
    assert (again.found, again.skipped, again.changed, again.done) == (3, 1, 2, 2)
    assert "2 file(s) changed since their row" in caplog.text
    rows = {Path(r["path"]).name: r for r in _csv(out)}
    assert len(_csv(out)) == 3  # the old rows replaced, not kept beside the new ones
    assert rows["a.wav"]["duration"] == "1.5" and rows["c.wav"] == first["c.wav"]
    assert rows["b.wav"]["file_mtime_ns"] == str(st.st_mtime_ns + 10**9)

    third = _batch([d], out)
    assert (third.skipped, third.changed, third.done) == (3, 0, 0)


def test_a_changed_file_with_an_error_row_is_tried_again_even_without_retries(tmp_path, fake):
    d = tmp_path / "clips"
    d.mkdir()
    (d / "a.wav").write_bytes(b"not audio at all\n" * 20)
    out = tmp_path / "r.csv"
    assert _batch([d], out).errors == 1
    kept = run_batch([str(d)], out, workers=1, processes=False, retry_errors=False)
    assert (kept.skipped_errors, kept.done) == (1, 0)
    _clip(d / "a.wav")  # fixed
    fixed = run_batch([str(d)], out, workers=1, processes=False, retry_errors=False)
    assert (fixed.changed, fixed.done, fixed.errors, fixed.skipped_errors) == (1, 1, 0, 0)
    (row,) = _csv(out)
    assert row["status"] == "ok" and row["error"] == ""


def test_an_older_csv_without_versions_resumes_by_path(tmp_path, fake):
    """Rows of the previous header (no file_size, file_mtime_ns) count as done, whatever
    the file is now; the file is upgraded, and new rows record their version."""
    d = tmp_path / "clips"
    d.mkdir()
    for name in ("a.wav", "b.wav"):
        _clip(d / name)
    old = CSV_HEADERS[-2]
    assert not set(VERSION_FIELDS) & set(old)
    out = tmp_path / "r.csv"
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=old)
        w.writeheader()
        w.writerow({k: "" for k in old} | {"path": str((d / "a.wav").resolve()),
                                          "status": "ok", "label": LABELS[1],
                                          "model_id": MODEL})
    _clip(d / "a.wav", seconds=1.0)  # changed, but its row cannot tell
    s = _batch([d], out)
    assert (s.skipped, s.changed, s.done) == (1, 0, 1)
    a, b = _csv(out)
    assert list(a) == FIELDS and a["label"] == LABELS[1] and a["file_size"] == ""
    assert b["file_size"] == str(os.stat(d / "b.wav").st_size)


def test_the_last_row_of_a_path_counts(tmp_path):
    out = tmp_path / "r.csv"
    w = RowWriter(out)
    cells = {k: "" for k in FIELDS}
    w.write(cells | {"path": "/a.wav", "status": "error", "error": "broken"})
    w.write(cells | {"path": "/a.wav", "status": "ok", "file_size": "4",
                     "file_mtime_ns": "5"})
    w.close()
    from emovox.serving.batch_rows import DoneRow, done_rows

    assert done_rows(out) == {"/a.wav": DoneRow("ok", (4, 5))}


# -- 3: a byte 0xff and the text \xff ------------------------------------------------------


@pytest.mark.skipif(os.sep != "/", reason="file names of any bytes: POSIX")
def test_a_byte_name_and_its_escape_text_are_two_files(tmp_path, fake):
    """``a<0xff>.wav`` and ``a\\xff.wav`` (four characters) printed alike: the batch listed
    them as one file and wrote one row."""
    d = tmp_path / "clips"
    d.mkdir()
    byte_name = os.fsdecode(os.fsencode(d) + b"/a\xff.wav")
    try:
        _clip(os.fsencode(byte_name), seconds=0.5)
    except OSError:  # pragma: no cover - a file system that takes UTF-8 names only
        pytest.skip("this file system refuses a name that is not UTF-8")
    _clip(d / "a\\xff.wav", seconds=1.0)
    out = tmp_path / "r.csv"
    s = _batch([d], out)
    assert (s.found, s.done) == (2, 2)
    rows = _csv(out)
    assert sorted(Path(r["path"]).name for r in rows) == ["a\\\\xff.wav", "a\\xff.wav"]
    by_duration = {r["duration"]: path_of_text(r["path"]) for r in rows}
    assert os.fsencode(by_duration["0.5"]) == os.fsencode(Path(byte_name).resolve())
    assert by_duration["1.0"] == (d / "a\\xff.wav").resolve()
    assert (_batch([d], out).skipped, len(_csv(out))) == (2, 2)


@pytest.mark.skipif(os.sep != "/", reason="POSIX paths")
@pytest.mark.parametrize("raw", [b"/d/clip.wav", "/d/\u00e9t\u00e9 1.wav".encode(),
                                 b"/d/a\xff.wav", b"/d/a\\xff.wav", b"/d/a\\\\b.wav",
                                 b"/d/a\\\xff.wav", b"/d/a\\b.wav", b"/d/a\\xFF.wav",
                                 b"/d/a\\x4.wav", b"/d/\\"])
def test_exact_path_text_names_one_file_and_prints_ordinary_paths_as_before(raw):
    path = os.fsdecode(raw)
    text = exact_path_text(path)
    text.encode("utf-8")  # valid UTF-8 text
    assert os.fsencode(path_of_text(text)) == raw
    if b"\\" not in raw or raw in (b"/d/a\\b.wav", b"/d/a\\xFF.wav", b"/d/a\\x4.wav",
                                   b"/d/\\"):
        assert text == printable_path(path)  # printed as before


@pytest.mark.skipif(os.sep != "/", reason="POSIX paths")
def test_exact_path_text_tells_the_colliding_names_apart():
    assert printable_path(os.fsdecode(b"a\xff.wav")) == printable_path("a\\xff.wav")
    assert exact_path_text(os.fsdecode(b"a\xff.wav")) != exact_path_text("a\\xff.wav")


# -- 4: rows keyed as the version before exact_path_text wrote the path ----------------------


def _as_before(out: Path, name: str) -> None:
    """``out`` as the version before :func:`exact_path_text` wrote it: the path of the file
    ``name`` as :func:`printable_path` (a doubled backslash was a single one)."""
    rows = list(read_rows(out))
    field = "path" if out.suffix == ".csv" else "source"
    for r in rows:
        p = path_of_text(r[field])
        if p.name == name:
            r[field] = printable_path(p)
            assert r[field] != exact_path_text(p)
            r.update(dict.fromkeys(VERSION_FIELDS, "") if field == "path" else {})  # none then
    with open(out, "w", newline="", encoding="utf-8") as f:
        if out.suffix == ".csv":
            w = csv.DictWriter(f, fieldnames=FIELDS)
            w.writeheader()
            w.writerows(rows)
        else:
            f.writelines(json.dumps(r) + "\n" for r in rows)


@pytest.mark.skipif(os.sep != "/", reason="a backslash in a file name: POSIX")
@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_a_row_keyed_as_the_version_before_wrote_the_path_is_resumed(tmp_path, fake, suffix):
    """``take\\\\2.wav`` (two backslashes) was written ``.../take\\\\2.wav`` before and is
    ``.../take\\\\\\\\2.wav`` now: a resume predicted it again and kept two rows of it."""
    d = tmp_path / "clips"
    d.mkdir()
    name = "take\\\\2.wav"
    for n in (name, "b.wav"):
        _clip(d / n)
    out = tmp_path / f"r{suffix}"
    assert _batch([d], out).done == 2
    _as_before(out, name)
    s = _batch([d], out)
    assert (s.skipped, s.done, len(list(read_rows(out)))) == (2, 0, 2)
    assert resolved_key(d / name) in done_paths(out)  # re-keyed to the file's text now
    assert (_batch([d], out).skipped, len(list(read_rows(out)))) == (2, 2)


@pytest.mark.skipif(os.sep != "/", reason="a backslash in a file name: POSIX")
def test_a_file_with_an_old_keyed_row_keeps_one_row(tmp_path, fake):
    """A resume by the version with the bug added a second row: one is kept. A row of that
    version recorded no file version, so a file changed since is not told (resumed)."""
    d = tmp_path / "clips"
    d.mkdir()
    twice, changed = "a\\\\b.wav", "c\\x41.wav"
    for n in (twice, changed):
        _clip(d / n)
    out = tmp_path / "r.csv"
    _batch([d], out)
    first = _csv(out)
    _as_before(out, twice)
    _as_before(out, changed)
    with open(out, "a", newline="", encoding="utf-8") as f:  # the bug's second row
        csv.DictWriter(f, fieldnames=FIELDS).writerow(
            next(r for r in first if path_of_text(r["path"]).name == twice))
    _clip(d / changed, seconds=1.0)
    s = _batch([d], out)
    assert (s.skipped, s.changed, s.done) == (2, 0, 0)
    rows = _csv(out)
    assert sorted(r["path"] for r in rows) == sorted(resolved_key(d / n)
                                                     for n in (twice, changed))
    assert {r["duration"] for r in rows} == {"0.5"}


@pytest.mark.skipif(os.sep != "/", reason="a byte 0xff in a file name: POSIX")
@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_another_files_row_is_never_taken_for_an_old_keyed_one(tmp_path, fake, suffix):
    """``a<0xff>.wav``'s row (today's key) is the old key of ``a\\xff.wav``: a batch of
    the second alone took it over (CSV: dropped as changed; JSON lines: relabelled as the
    other file's, which was never predicted) (review, stop 50)."""
    d = tmp_path / "clips"
    d.mkdir()
    a, b = d / os.fsdecode(b"a\xff.wav"), d / "a\\xff.wav"
    _clip(a, seconds=0.5)
    _clip(b, seconds=1.0)
    out = tmp_path / f"r{suffix}"
    assert _batch([a], out).done == 1
    s = _batch([b], out)
    assert (s.done, s.skipped, s.changed) == (1, 0, 0)
    keys = sorted(done_paths(out))
    assert keys == sorted([resolved_key(a), resolved_key(b)])


def test_rows_of_files_deleted_or_renamed_since_are_kept_and_said(tmp_path, fake, caplog):
    """A review as a user (stop 53): a deleted file's row and a renamed file's old row stayed
    in the output without a word."""
    d, out = _three_clips_batched(tmp_path)
    (d / "a.wav").unlink()
    (d / "b.wav").rename(d / "b2.wav")
    with caplog.at_level(logging.WARNING):
        again = _batch([d], out)
    assert (again.found, again.done, again.gone) == (2, 1, 2)
    assert "2 row(s) in" in caplog.text and "no longer there" in caplog.text
    assert len(_csv(out)) == 4  # nothing thrown away
    e = tmp_path / "elsewhere"
    e.mkdir()
    _clip(e / "x.wav")
    _batch([e], out)  # a row of another input, whose file is there: not said
    assert _batch([d], out).gone == 2


def test_a_file_reached_twice_is_named_by_both_ways(tmp_path, caplog):
    """A folder link listed before the real folder named the resolved path as itself ("X is
    X": a review as a user, stop 53)."""
    from emovox.serving.inputs import collect_inputs

    real = tmp_path / "real"
    real.mkdir()
    _clip(real / "a.wav")
    (tmp_path / "link").symlink_to(real)
    with caplog.at_level(logging.WARNING):
        assert len(collect_inputs([str(tmp_path / "link"), str(real)])) == 1
        collect_inputs([str(real / "a.wav"), str(real / "a.wav")])
    said = [r.getMessage() for r in caplog.records if "already listed" in r.getMessage()]
    assert f"e.g. {real / 'a.wav'} is {tmp_path / 'link' / 'a.wav'})" in said[0]
    assert f"e.g. {real / 'a.wav'} is given twice)" in said[1]
