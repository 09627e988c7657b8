"""A corpus scan's memory is bounded by design (code review, stop 48): files are hashed in
blocks, other files and skipped rows are counted rather than kept, a manifest is read
row by row."""

from __future__ import annotations

import codecs
import hashlib
from pathlib import Path

import pytest
from corpus_trees import make

from emovox.corpora import base, manifest
from emovox.corpora.base import SKIPPED_KEPT, PathTally, find_duplicates, iter_audio_files
from emovox.fileio import file_sha256


def test_duplicates_are_found_without_reading_a_file_whole(tmp_path, monkeypatch):
    """Two 400 MB clips of one size were both held in memory to hash them."""
    a = make(tmp_path, "a.wav", b"RIFF" + b"x" * 3_000_000)
    b = make(tmp_path, "b.wav", b"RIFF" + b"x" * 3_000_000)
    c = make(tmp_path, "c.wav", b"RIFF" + b"y" * 3_000_000)
    assert file_sha256(a) == hashlib.sha256(a.read_bytes()).hexdigest()  # the same digest

    def whole(self: Path) -> bytes:
        raise AssertionError(f"{self} read whole")

    monkeypatch.setattr(Path, "read_bytes", whole)
    assert find_duplicates([c, b, a]) == [[a, b]]


def test_a_path_tally_counts_and_keeps_a_few_of_each_extension():
    tally = PathTally(keep=3)
    for i in range(1000):
        tally.append(Path(f"notes{i}.txt"))
    tally.append(Path("clip.webm"))
    assert tally.count == 1001
    assert [p.name for p in tally.first] == ["notes0.txt", "notes1.txt", "notes2.txt",
                                             "clip.webm"]
    only = PathTally(keep=2, accept=lambda p: p.suffix == ".mp4")
    for name in ("a.txt", "b.mp4", "c.txt"):
        only.append(Path(name))
    assert (only.count, only.first) == (1, [Path("b.mp4")])


def test_iter_audio_files_counts_other_files_in_a_tally(tmp_path):
    make(tmp_path, "a.wav")
    for i in range(20):
        make(tmp_path, f"t/{i:02d}.txt")
    tally = PathTally(keep=2)
    assert [p.name for p in iter_audio_files(tmp_path, others=tally)] == ["a.wav"]
    assert tally.count == 20 and len(tally.first) == 2


def test_a_folder_corpus_keeps_no_path_of_its_other_files(tmp_path, monkeypatch):
    """A folder of clips, each with its transcript: every transcript's path was kept only to
    pick out the videos among them."""
    for i in range(30):
        make(tmp_path, f"angry/s{i}_1.wav")
        make(tmp_path, f"angry/s{i}_1.txt")
    make(tmp_path, "angry/s0_2.webm")
    sinks: list[object] = []
    real = base.iter_audio_files

    def spy(root, *args, others=None, **kw):
        sinks.append(others)
        return real(root, *args, others=others, **kw)

    monkeypatch.setattr(base, "iter_audio_files", spy)
    scan = base.scan_files("folder", tmp_path, lambda p: None)
    (sink,) = sinks
    kept = sink if isinstance(sink, list) else sink.first
    assert [p.name for p in kept] == ["s0_2.webm"]  # no transcript kept
    assert [p.name for p, _ in scan.skipped] == ["s0_2.webm"]


def test_a_folder_corpus_of_many_videos_counts_them(tmp_path):
    n = 2 * SKIPPED_KEPT + 30
    for i in range(n):
        make(tmp_path, f"angry/s{i:04d}.webm")
    make(tmp_path, "angry/s9.mkv")
    make(tmp_path, "angry/s9.wav")
    scan = base.scan_files("folder", tmp_path, lambda p: None)
    assert scan.n_skipped == n + 1 and len(scan.skipped) <= 2 * SKIPPED_KEPT
    assert "s9.mkv" in {p.name for p, _ in scan.skipped}  # the first of its kind is listed
    assert f"skipped {n + 1} unrecognised files" in scan.summary()


def test_a_manifests_skipped_rows_are_counted_with_an_example_of_each_kind(tmp_path):
    """A manifest of a million missing files kept a reason (~200 characters) for each."""
    make(tmp_path, "a.wav")
    n = 3 * SKIPPED_KEPT
    rows = [f"gone{i}.wav,sad" for i in range(n)] + ["a.wav,", "a.wav,angry", "a.wav,sad"]
    sheet = tmp_path / "m.csv"
    sheet.write_text("path,label\n" + "\n".join(rows) + "\n")
    scan = manifest.scan(sheet)
    assert len(scan.utterances) == 1
    assert scan.n_skipped == n + 2 and len(scan.skipped) <= 2 * SKIPPED_KEPT
    whys = [why for _, why in scan.skipped]
    assert f"row {n + 2}: empty label" in whys  # past the cap, of a kind not listed yet
    assert any(w.startswith(f"row {n + 4}: already listed in row {n + 3}") for w in whys)
    summary = scan.summary()
    assert f"skipped {n + 2} rows, e.g. gone0.wav (row 2: file not found at" in summary
    assert f"(row {n + 2}: empty label)" in summary


def test_a_manifest_is_read_row_by_row(tmp_path, monkeypatch):
    """Its bytes, its text and a list of every row were held at once (a million rows: +547
    MiB): rows before a byte that is no UTF-8 are read before it is met."""
    make(tmp_path, "a.wav")
    sheet = tmp_path / "m.csv"
    good = b"path,label\n" + b"a.wav,angry\n" * 20_000
    sheet.write_bytes(good + b"b\xff.wav,sad\n")
    labels: list[str] = []
    real = manifest.label_to_emotion
    monkeypatch.setattr(manifest, "label_to_emotion", lambda s: labels.append(s) or real(s))
    with pytest.raises(ValueError, match=rf"m\.csv: not UTF-8 text \(invalid start byte at "
                                         rf"byte {len(good) + 1}\); save it as a UTF-8 CSV"):
        manifest.scan(sheet)
    assert labels  # the rows before it were read first: the file was never decoded whole


def test_a_manifest_names_the_byte_after_a_bom_and_refuses_an_endless_line(tmp_path):
    sheet = tmp_path / "m.csv"
    sheet.write_bytes(codecs.BOM_UTF8 + b"path,label\n" + b"a" * 70_000 + b"\xff.wav,sad\n")
    with pytest.raises(ValueError, match=r"invalid start byte at byte 70014\)"):
        manifest.scan(sheet)
    sheet.write_bytes(b"path,label\n" + b"," * (manifest.MAX_LINE_CHARS + 1))
    with pytest.raises(ValueError, match="a line longer than"):
        manifest.scan(sheet)


def test_a_streamed_manifest_reads_as_before(tmp_path):
    """Quoted cells over two lines, CR line ends, UTF-16 big-endian with its BOM."""
    make(tmp_path, "a.wav")
    sheet = tmp_path / "m.csv"
    sheet.write_bytes(b'path;label;note\r\na.wav;happy;"x\r\ny"\r\n')
    (u,) = manifest.scan(sheet).utterances
    assert (u.raw_label, u.meta) == ("happy", {"note": "x\r\ny", "manifest_row": "2"})
    sheet.write_bytes(b"path\tlabel\ra.wav\tsad\r")
    assert [u.raw_label for u in manifest.scan(sheet).utterances] == ["sad"]
    sheet.write_bytes(codecs.BOM_UTF16_BE + "path,label\na.wav,calm\n".encode("utf-16-be"))
    assert [u.raw_label for u in manifest.scan(sheet).utterances] == ["calm"]
    sheet.write_bytes(codecs.BOM_UTF8)
    with pytest.raises(ValueError, match="empty manifest"):
        manifest.scan(sheet)
