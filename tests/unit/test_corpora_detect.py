"""Which reader matches a tree (:mod:`emovox.corpora.detect`), and the scan summary's
counts in the singular and plural."""

from __future__ import annotations

import logging
import threading
from types import SimpleNamespace

from corpus_trees import make

from emovox.corpora import scan_corpus
from emovox.corpora.detect import matching_readers, reader_hint

EMODB_NAMES = ("03a01Fa", "03a01Wa", "08b02Nb", "10a04Tc", "16b10Ea", "11a05Ab", "09b03La")


def emodb_tree(root):
    for stem in EMODB_NAMES:
        make(root, f"wav/{stem}.wav")
    return root


def test_an_emodb_tree_matches_the_emodb_reader_only(tmp_path):
    emodb_tree(tmp_path)
    matches = matching_readers(tmp_path)
    assert [m.name for m in matches] == ["emodb"]
    # boredom (L, speaker 09) has no canonical class: 6 of the 7 files are labelled, of
    # speakers 03 (twice), 08, 10, 16, 11
    assert (matches[0].labelled, matches[0].speakers) == (6, 5)
    assert matching_readers(tmp_path, exclude=("emodb",)) == []


def test_a_labelled_folder_tree_matches_the_folder_reader(tmp_path):
    make(tmp_path, "angry/a.wav")
    make(tmp_path, "sad/b.wav")
    make(tmp_path, "sad/03a01Fa.wav")  # an EmoDB name inside: both readers label something
    matches = matching_readers(tmp_path)
    assert [(m.name, m.labelled) for m in matches] == [("folder", 3), ("emodb", 1)]
    # the folder reader knows no speaker here: not "3 files of 1 speakers" (QA, stop 37)
    assert matches[0].files_text == "3 files of unknown speakers"
    assert matches[1].files_text == "1 file of 1 speaker"


def test_nothing_matches_an_empty_or_missing_tree(tmp_path):
    assert matching_readers(tmp_path) == []
    assert matching_readers(tmp_path / "missing") == []


def test_reader_hint_names_the_reader_that_matches(tmp_path):
    emodb_tree(tmp_path)
    assert reader_hint(tmp_path, "ravdess") == (
        "the ravdess reader labels no file there, but the emodb reader labels 6 files of 5 "
        f"speakers: use --corpus emodb (or --data emodb={tmp_path})")


def test_reader_hint_lists_the_other_matching_readers(tmp_path):
    make(tmp_path, "angry/a.wav")
    make(tmp_path, "sad/03a01Fa.wav")
    hint = reader_hint(tmp_path, "ravdess")
    assert hint.endswith("the folder reader labels 2 files of unknown speakers: use --corpus "
                         f"folder (or --data folder={tmp_path}) (also: emodb (1))")


def test_reader_hint_without_a_matching_reader_says_how_to_read_the_tree(tmp_path):
    make(tmp_path, "clips/take07.wav")
    hint = reader_hint(tmp_path, "ravdess")
    assert hint.startswith("the ravdess reader labels no file there, nor does any other")
    assert "--corpus folder" in hint and "(path,label[,speaker]) and --corpus csv" in hint
    assert "use --corpus" not in hint


def test_summary_counts_are_singular_for_one(tmp_path):
    make(tmp_path, "Actor_01/03-01-05-01-01-01-01.wav", b"same")
    make(tmp_path, "Actor_01/03-01-05-01-01-02-01.wav", b"same")
    make(tmp_path, "Actor_01/not-a-name.wav")
    summary = scan_corpus("ravdess", tmp_path).summary()
    assert "2 files" in summary and "1 speaker" in summary and "1 speakers" not in summary
    assert "skipped 1 unrecognised file," in summary
    assert "1 group of byte-identical files" in summary and "1 groups" not in summary


class _TalkingReader:
    """A reader whose scan logs its summary, as the real ones do, while another thread's
    reader logs one too; it notes the ``emovox.corpora`` logger's level meanwhile."""

    levels: list[int] = []

    def scan(self, root, detect_duplicates=True):
        log = logging.getLogger("emovox.corpora.ravdess")
        self.levels.append(logging.getLogger("emovox.corpora").level)
        log.warning("own summary of %s", root)
        log.error("own error")  # errors are never held back
        t = threading.Thread(target=log.warning, args=("another thread's summary",))
        t.start()
        t.join()
        return SimpleNamespace(labelled=[SimpleNamespace(speaker="01")])


def test_trying_readers_holds_back_their_log_in_this_thread_only(tmp_path, monkeypatch,
                                                                 caplog):
    """``matching_readers`` set the ``emovox.corpora`` logger's level to ERROR for the
    process while it tried the readers (code review, stop 56): another thread's reader
    said nothing meanwhile, and two callers put the level back out of order."""
    from emovox.corpora import detect

    reader = _TalkingReader()
    monkeypatch.setattr(detect, "CORPORA", {"fake": reader})
    with caplog.at_level(logging.WARNING):
        assert [m.name for m in detect.matching_readers(tmp_path)] == ["fake"]
        logging.getLogger("emovox.corpora.ravdess").warning("said after")
    said = [r.getMessage() for r in caplog.records]
    assert "another thread's summary" in said and "own error" in said
    assert "said after" in said and not any(m.startswith("own summary") for m in said)
    assert reader.levels == [logging.NOTSET]  # no level was set
    assert logging.getLogger("emovox.corpora").level == logging.NOTSET
