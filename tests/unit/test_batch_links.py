"""Symbolic links met by `emovox batch` (a review, stop 54): folder links were followed and
loops cut without a word, a link to nothing without an audio name was counted as a file
"not read, by its name", and a file link out of the folder given was answered under
another folder without a word. Batches run on a fake predictor (no model), over short
tones in trees built in tmp_path."""

from __future__ import annotations

import csv
import io
import logging
import os
from pathlib import Path

import pytest
import soundfile as sf

from emovox.serving.batch import row_for, run_batch
from emovox.serving.inputs import collect_inputs, resolved_key
from emovox.serving.schema import load_schema, validate_document
from first_label import FirstLabel, install
from signals import sine


@pytest.fixture()
def fake(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch)


def _clip(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    sf.write(buf, sine(300.0, 0.5), 16000, format="WAV", subtype="PCM_16")
    path.write_bytes(buf.getvalue())
    return path


def _rows(inputs: list[Path] | list[str], out: Path) -> dict[str, dict[str, str]]:
    """The CSV rows of a batch over ``inputs``, by path (each path once)."""
    run_batch([str(p) for p in inputs], out, workers=1, processes=False)
    with open(out, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len({r["path"] for r in rows}) == len(rows)  # no file answered twice
    return {r["path"]: r for r in rows}


def _said(caplog: pytest.LogCaptureFixture, words: str) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING and words in r.getMessage()]


def test_folder_links_followed_are_said_once_per_batch(tmp_path, fake, caplog):
    d1, d2, far = tmp_path / "d1", tmp_path / "d2", tmp_path / "far"
    _clip(d1 / "a.wav")
    _clip(d2 / "b.wav")
    y, z = _clip(far / "y" / "y.wav"), _clip(far / "z" / "z.wav")
    os.symlink(far / "y", d1 / "ylink")
    os.symlink(far / "z", d2 / "zlink")
    with caplog.at_level(logging.WARNING):
        rows = _rows([d1, d2], tmp_path / "out.csv")
    assert set(rows) == {resolved_key(p) for p in (d1 / "a.wav", d2 / "b.wav", y, z)}
    said = _said(caplog, "folder link(s) followed")
    assert len(said) == 1 and said[0].startswith("2 folder link(s) followed (e.g. ")
    first = next(p for p in (d1 / "ylink", d2 / "zlink") if str(p) in said[0])
    assert f"{first} -> {first.resolve()}" in said[0]


def test_a_folder_link_matched_by_a_glob_is_said_as_followed(tmp_path, fake, caplog):
    d, far = tmp_path / "d", tmp_path / "far"
    a, y = _clip(d / "sub" / "a.wav"), _clip(far / "y.wav")
    os.symlink(far, d / "ylink")
    with caplog.at_level(logging.WARNING):
        rows = _rows([f"{d}/*"], tmp_path / "out.csv")
    assert set(rows) == {resolved_key(p) for p in (a, y)}
    said = _said(caplog, "folder link(s) followed")
    assert len(said) == 1 and said[0].startswith("1 folder link(s) followed (e.g. ")
    assert f"{d / 'ylink'} -> {far.resolve()}" in said[0]


def test_a_link_back_to_its_folder_matched_by_a_glob_is_a_loop(tmp_path, fake, caplog):
    """``d/self -> .`` matched by ``d/*`` was said as a folder link followed, and walked:
    the loop line was gone (code review, stop 55)."""
    d = tmp_path / "d"
    a = _clip(d / "a.wav")
    os.symlink(".", d / "self")
    with caplog.at_level(logging.WARNING):
        rows = _rows([f"{d}/*"], tmp_path / "out.csv")
    assert set(rows) == {resolved_key(a)}
    assert not _said(caplog, "folder link(s) followed")
    assert not _said(caplog, "a file already listed")  # not walked: nothing reached twice
    said = _said(caplog, "a loop back to a folder above")
    assert len(said) == 1 and f"{d / 'self'} is {d.resolve()}" in said[0]


def test_a_loop_and_a_second_way_in_are_said_and_not_walked_again(tmp_path, fake, caplog):
    d = tmp_path / "d"
    a, b = _clip(d / "a.wav"), _clip(d / "sub" / "b.wav")
    c = _clip(d / "other" / "c.wav")
    os.symlink(d, d / "sub" / "loop")  # a link to an ancestor
    os.symlink(d / "sub", d / "alias")  # another way into a folder of the tree
    # each of two plain folders holds a link to the other: whichever a walk that follows
    # links as it meets them enters first, it reaches the other through its link, in any
    # listing order (so did `alias`, listed before `sub`)
    os.symlink(d / "other", d / "sub" / "across")
    os.symlink(d / "sub", d / "other" / "back")
    with caplog.at_level(logging.WARNING):
        rows = _rows([d], tmp_path / "out.csv")
        # the folders' own names are listed, never a link's (links are followed last)
        assert collect_inputs([str(d)]) == [a, c, b]
    assert set(rows) == {resolved_key(p) for p in (a, b, c)}
    loop = _said(caplog, "a loop back to a folder above")
    assert loop and loop[0] == (
        "1 folder(s) reached again through a folder link, a loop back to a folder above "
        f"(e.g. {d / 'sub' / 'loop'} is {d.resolve()}): not walked again, so each file is "
        "answered once")
    again = _said(caplog, "already walked another way")  # alias first: d's links come first
    assert again and again[0] == (
        "3 folder(s) reached again through a folder link, already walked another way (e.g. "
        f"{d / 'alias'} is {(d / 'sub').resolve()}): not walked again, so each file is "
        "answered once")
    assert not _said(caplog, "looping back")  # the old words: a link "looping back"
    assert not _said(caplog, "folder link(s) followed")  # all were cut, none followed
    assert not _said(caplog, "already listed")  # no file was reached twice


def test_a_folder_given_twice_says_each_link_once(tmp_path, fake, caplog, monkeypatch):
    """``d`` and ``./d``: two walks of one folder meet each link twice; each is said once."""
    d = tmp_path / "d"
    _clip(d / "a.wav")
    _clip(tmp_path / "far" / "y" / "y.wav")
    far = _clip(tmp_path / "far" / "x.wav")
    os.symlink(tmp_path / "far" / "y", d / "ylink")  # followed
    os.symlink(d, d / "loop")  # a loop
    os.symlink(tmp_path / "gone", d / "gonedir")  # a link to nothing
    os.symlink(far, d / "ext.wav")  # a file out of the folder
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.WARNING):
        assert len(_rows(["d", "./d"], tmp_path / "out.csv")) == 3
    for words in ("folder link(s) followed", "a loop back to a folder above",
                  "symbolic link(s) to nothing", "links to files out of it"):
        said = _said(caplog, words)
        assert len(said) == 1 and said[0].startswith("1 "), (words, said)
    said = _said(caplog, "already listed")  # the second walk's files: each listed once
    assert len(said) == 1 and said[0].startswith("3 inputs reach a file already listed")


def test_a_loop_through_a_folder_above_the_one_given_ends(tmp_path):
    """A link to the parent of the folder given: the parent is walked (the link is
    followed), and the folder given, reached again below it, is a loop."""
    from emovox.corpora.base import FolderLinks, iter_audio_files

    d = tmp_path / "d"
    a = _clip(d / "a.wav")
    _clip(tmp_path / "top.wav")
    os.symlink(tmp_path, d / "up")
    links = FolderLinks()
    found = list(iter_audio_files(d, links=links))
    assert found == [a, d / "up" / "top.wav"]
    assert (links.followed.count, links.loops.count, links.again.count) == (1, 1, 0)
    assert links.loops.first == [d / "up" / "d"]


def test_links_to_nothing_are_said_or_get_an_error_row(tmp_path, fake, caplog):
    d = tmp_path / "d"
    a = _clip(d / "a.wav")
    (d / "notes.txt").write_text("x")
    os.symlink(tmp_path / "gone.wav", d / "gone.wav")  # an audio name: an error row
    os.symlink(tmp_path / "gone", d / "gonedir")  # a folder, or a file, that has gone
    os.symlink(d / "self", d / "self")  # a loop of links
    with caplog.at_level(logging.WARNING):
        rows = _rows([d], tmp_path / "out.csv")
    assert set(rows) == {resolved_key(a), resolved_key(d / "gone.wav")}
    gone = rows[resolved_key(d / "gone.wav")]
    assert gone["status"] == "error" and "which does not exist" in gone["error"]
    said = _said(caplog, "symbolic link(s) to nothing")
    assert len(said) == 1 and said[0].startswith("2 symbolic link(s) to nothing not read")
    assert (f"{d / 'gonedir'} -> {tmp_path / 'gone'}, which does not exist" in said[0]
            or f"{d / 'self'} -> {d / 'self'}, a loop of symbolic links" in said[0])
    # only the real file of another name is counted as one (the links were too)
    assert _said(caplog, "other file(s) not read")[0].startswith("1 other file(s)")
    caplog.clear()
    with caplog.at_level(logging.WARNING):  # named, it is read, whatever its name
        rows = _rows([d / "gonedir"], tmp_path / "named.csv")
    assert rows[resolved_key(d / "gonedir")]["status"] == "error"
    assert not _said(caplog, "not read")


def test_a_file_link_out_of_the_folder_given_is_said(tmp_path, fake, caplog):
    d = tmp_path / "d"
    a, inside = _clip(d / "a.wav"), _clip(d / "sub" / "c.wav")
    far = _clip(tmp_path / "far" / "x.wav")
    os.symlink(far, d / "ext.wav")
    os.symlink(inside, d / "in.wav")  # a link within the folder: no row of its own
    with caplog.at_level(logging.WARNING):
        rows = _rows([d], tmp_path / "out.csv")
    assert set(rows) == {resolved_key(p) for p in (a, inside, far)}
    said = _said(caplog, "links to files out of it")
    assert said == [f"1 file(s) in a folder given are links to files out of it (e.g. "
                    f"{d / 'ext.wav'} -> {far.resolve()}): each is read, and answered under "
                    "the file it links to"]


def test_the_schema_says_batch_json_lines_carry_source_not_path(tmp_path):
    """The schema said ``path`` was batch output's resolved path (the resume key): batch
    JSON lines carry it as ``source``; ``path`` is the CSV's column (a review, stop 54)."""
    schema = load_schema("prediction")["$defs"]
    f = _clip(tmp_path / "a.wav")
    pred = FirstLabel().predict_wave(sine(300.0, 0.5), 16000, source=str(f))
    for doc, part in ((row_for(f, pred, None, fmt="jsonl"), "prediction"),
                      (row_for(f, None, "bad", fmt="jsonl"), "failure")):
        assert "path" not in doc and doc["source"] == resolved_key(f)
        said = schema[part]["properties"]["path"]["description"]
        assert said.startswith("not written") and "`source`" in said and "CSV" in said
    validate_document(row_for(f, None, "bad", fmt="jsonl"), "prediction")
    assert row_for(f, pred, None)["path"] == resolved_key(f)
