"""Corpus readers: the registry, label maps and the RAVDESS reader on fake trees."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from corpus_trees import by_name, make

from emovox.corpora import (
    CORPORA,
    Gender,
    corpus_label_map,
    emodb,
    ravdess,
    scan_corpus,
)
from emovox.labels import Emotion, shared_classes

# --------------------------------------------------------------------------- registry


def test_registry_names_and_modules():
    assert set(CORPORA) == {"ravdess", "tess", "savee", "emodb", "cremad", "emovo", "urdu",
                            "folder", "csv"}
    for name, reader in CORPORA.items():
        assert callable(reader.scan)
        assert isinstance(reader.NAME, str)
        assert all(v is None or isinstance(v, Emotion) for v in reader.LABEL_MAP.values())
        assert corpus_label_map(name) == dict(reader.LABEL_MAP)


def test_unknown_corpus_name_lists_valid_names(tmp_path):
    with pytest.raises(ValueError) as exc:
        scan_corpus("iemocap", tmp_path)
    msg = str(exc.value)
    assert "iemocap" in msg
    for name in CORPORA:
        assert name in msg
    with pytest.raises(ValueError):
        corpus_label_map("nope")


def test_name_aliases(tmp_path):
    make(tmp_path, "1001_DFA_ANG_XX.wav")
    assert len(scan_corpus("CREMA-D", tmp_path).utterances) == 1
    assert corpus_label_map("Emo-DB") == dict(emodb.LABEL_MAP)


@pytest.mark.parametrize("name", ["ravdess", "tess", "savee", "emodb", "cremad", "folder", "csv"])
def test_missing_root_raises(tmp_path, name):
    with pytest.raises(FileNotFoundError):
        scan_corpus(name, tmp_path / "does-not-exist")


def test_shared_classes():
    rav, emo, cre = (corpus_label_map(n) for n in ("ravdess", "emodb", "cremad"))
    assert shared_classes(rav, emo) == [
        Emotion.NEUTRAL,
        Emotion.HAPPY,
        Emotion.SAD,
        Emotion.ANGRY,
        Emotion.FEARFUL,
        Emotion.DISGUST,
    ]
    assert shared_classes(rav, cre) == shared_classes(rav, emo)
    assert shared_classes(rav, corpus_label_map("tess")) == [
        e for e in Emotion if e is not Emotion.CALM
    ]
    assert shared_classes(rav, corpus_label_map("savee")) == shared_classes(
        rav, corpus_label_map("tess")
    )
    assert emodb.LABEL_MAP["L"] is None
    assert set(ravdess.LABEL_MAP.values()) == set(Emotion)


# --------------------------------------------------------------------------- RAVDESS


def test_ravdess_happy_path_nested_mixed_extensions(tmp_path):
    make(tmp_path, "Actor_01/03-01-01-01-01-01-01.wav")
    make(tmp_path, "deep/er/Actor_02/03-01-05-02-02-02-02.flac")
    make(tmp_path, "03-02-06-02-01-01-23.ogg")
    make(tmp_path, "Actor_07/notes.txt")  # not audio: ignored, not skipped
    scan = ravdess.scan(tmp_path)
    assert scan.skipped == [] and scan.duplicates == []
    u = by_name(scan)
    a = u["03-01-01-01-01-01-01.wav"]
    assert (a.emotion, a.raw_label, a.speaker, a.gender) == (
        Emotion.NEUTRAL,
        "01",
        "ravdess:01",
        Gender.MALE,
    )
    assert a.meta == {
        "modality": "audio-only",
        "vocal_channel": "speech",
        "emotion_code": "01",
        "emotion": "neutral",
        "intensity": "normal",
        "statement": "Kids are talking by the door",
        "statement_code": "01",
        "repetition": "1",
        "actor": "01",
    }
    b = u["03-01-05-02-02-02-02.flac"]
    assert (b.emotion, b.speaker, b.gender) == (Emotion.ANGRY, "ravdess:02", Gender.FEMALE)
    assert b.meta["intensity"] == "strong"
    assert b.meta["statement"] == "Dogs are sitting by the door"
    assert b.meta["repetition"] == "2"
    c = u["03-02-06-02-01-01-23.ogg"]
    assert (c.emotion, c.meta["vocal_channel"], c.gender) == (
        Emotion.FEARFUL,
        "song",
        Gender.MALE,
    )
    assert c.corpus == "ravdess" and c.utt_id == "ravdess:03-02-06-02-01-01-23"


def test_ravdess_all_emotion_codes(tmp_path):
    for code in range(1, 9):
        make(tmp_path, f"03-01-{code:02d}-01-01-01-05.wav")
    scan = ravdess.scan(tmp_path)
    assert [u.emotion for u in scan.utterances] == list(Emotion)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("03-01-09-01-01-01-01.wav", "emotion"),
        ("03-01-00-01-01-01-01.wav", "emotion"),
        ("03-01-03-01-01-01-00.wav", "actor"),
        ("03-01-03-01-01-01-25.wav", "actor"),
        ("03-01-01-02-01-01-01.wav", "neutral"),
        ("03-02-07-01-01-01-01.wav", "song"),
        ("03-02-08-01-01-01-01.wav", "song"),
        ("04-01-03-01-01-01-01.wav", "modality"),
        ("03-03-03-01-01-01-01.wav", "vocal channel"),
        ("03-01-03-03-01-01-01.wav", "intensity"),
        ("03-01-03-01-03-01-01.wav", "statement"),
        ("03-01-03-01-01-03-01.wav", "repetition"),
        ("03-01-03-01-01-01.wav", "not a RAVDESS name"),
        ("03-01-03-01-01-01-01-01.wav", "not a RAVDESS name"),
        ("3-1-3-1-1-1-1.wav", "not a RAVDESS name"),
        ("03-01-03-01-01-01-01 (copy).wav", "not a RAVDESS name"),
        ("Actor_02/03-01-03-01-01-01-01.wav", "folder Actor_02"),
    ],
)
def test_ravdess_malformed(tmp_path, name, reason):
    make(tmp_path, "Actor_05/03-01-03-01-01-01-05.wav")  # one good file alongside
    make(tmp_path, name)
    scan = ravdess.scan(tmp_path)
    assert [u.path.name for u in scan.utterances] == ["03-01-03-01-01-01-05.wav"]
    assert len(scan.skipped) == 1
    path, why = scan.skipped[0]
    assert path.name == Path(name).name
    assert reason in why


def test_ravdess_vocal_channel_filter(tmp_path):
    make(tmp_path, "03-01-03-01-01-01-01.wav")
    make(tmp_path, "03-02-03-01-01-01-01.wav")
    make(tmp_path, "03-02-03-01-01-02-01.wav")
    both = ravdess.scan(tmp_path)
    speech = ravdess.scan(tmp_path, vocal_channels=("speech",))
    song = scan_corpus("ravdess", tmp_path, vocal_channels="song")
    assert len(both.utterances) == 3
    assert [u.meta["vocal_channel"] for u in speech.utterances] == ["speech"]
    assert [u.meta["vocal_channel"] for u in song.utterances] == ["song", "song"]
    assert speech.skipped == song.skipped == []
    with pytest.raises(ValueError, match="vocal_channels"):
        ravdess.scan(tmp_path, vocal_channels=("speach",))
    with pytest.raises(ValueError, match="vocal_channels"):
        ravdess.scan(tmp_path, vocal_channels=())


def test_ravdess_duplicates_and_warning(tmp_path, caplog):
    a = make(tmp_path, "Actor_07/03-01-03-01-02-01-07.wav", b"same bytes")
    b = make(tmp_path, "Actor_07/03-01-03-01-02-02-07.wav", b"same bytes")
    make(tmp_path, "Actor_07/03-01-03-01-01-01-07.wav", b"other byte")  # same size, differs
    make(tmp_path, "Actor_07/junk.wav")
    with caplog.at_level(logging.WARNING, logger="emovox.corpora"):
        scan = ravdess.scan(tmp_path)
    assert scan.duplicates == [[a, b]]
    assert len(scan.utterances) == 3
    assert "byte-identical" in caplog.text and "skipped 1" in caplog.text
    assert ravdess.scan(tmp_path, detect_duplicates=False).duplicates == []


def test_ravdess_one_name_is_one_recording(tmp_path, caplog):
    """The distribution's layout: 16 kHz FLAC clips and, in ``original-48k``, 48 kHz WAV
    copies of some of them. Read as more clips, a random split put one copy in training
    and the other in the test set (audit, stop 31); now each name is read once."""
    flac = make(tmp_path, "Audio_Speech_Actors_01-24/Actor_01/03-01-01-01-01-01-01.flac", b"a")
    make(tmp_path, "Audio_Speech_Actors_01-24/Actor_01/03-01-02-01-01-01-01.flac", b"b")
    make(tmp_path, "original-48k/03-01-01-01-01-01-01.wav", b"a 48 kHz copy")
    with caplog.at_level(logging.WARNING, logger="emovox.corpora"):
        scan = ravdess.scan(tmp_path)
    assert sorted(u.path.name for u in scan.utterances) == [
        "03-01-01-01-01-01-01.flac", "03-01-02-01-01-01-01.flac"]
    assert [u.path for u in scan.utterances if u.path.stem.startswith("03-01-01")] == [flac]
    ((path, why),) = scan.skipped
    assert path.parent.name == "original-48k" and "another copy of Actor_01/" in why
    assert "skipped 1" in caplog.text


def test_ravdess_clean_scan_does_not_warn(tmp_path, caplog):
    make(tmp_path, "03-01-03-01-02-01-07.wav")
    with caplog.at_level(logging.WARNING, logger="emovox.corpora"):
        ravdess.scan(tmp_path)
    assert caplog.records == []


def test_empty_files_are_skipped(tmp_path):
    make(tmp_path, "03-01-03-01-02-01-07.wav", b"")
    make(tmp_path, "03-01-03-01-02-02-07.wav", b"")
    scan = ravdess.scan(tmp_path)
    assert scan.utterances == [] and scan.duplicates == []
    assert [why for _, why in scan.skipped] == ["empty file (0 bytes)"] * 2


def test_root_must_be_a_directory(tmp_path):
    f = make(tmp_path, "03-01-03-01-02-01-07.wav")
    with pytest.raises(NotADirectoryError):
        ravdess.scan(f)


def test_a_very_deep_tree_is_walked_without_recursion(tmp_path):
    """os.walk recursed: 1500 nested folders ended a batch with RecursionError (QA, stop 31)."""
    import os

    from emovox.corpora.base import iter_audio_files

    deep = str(tmp_path)
    levels = []
    for _ in range(1500):
        deep = os.path.join(deep, "d")
        os.mkdir(deep)  # os.makedirs recurses too
        levels.append(deep)
    try:
        with open(os.path.join(deep, "x.wav"), "wb") as f:
            f.write(b"x")
        (tmp_path / "top.wav").write_bytes(b"x")
        (tmp_path / "d" / "loop").symlink_to(tmp_path)  # a cycle ends too
        assert sorted(p.name for p in iter_audio_files(tmp_path)) == ["top.wav", "x.wav"]
    finally:  # pytest's own clean-up (shutil.rmtree) recurses: take the tree down here
        os.remove(os.path.join(deep, "x.wav"))
        (tmp_path / "d" / "loop").unlink(missing_ok=True)
        for d in reversed(levels):
            os.rmdir(d)


def test_a_folder_that_cannot_be_read_is_said(tmp_path, monkeypatch, caplog):
    """A folder the user may not read was skipped without a word: its files vanished from
    a batch (odd-environment QA, stop 38). Root reads anything: scandir is made to fail."""
    import os

    from emovox.corpora import base

    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "a.wav").write_bytes(b"x")
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "b.wav").write_bytes(b"x")
    real = os.scandir

    def scandir(path):
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(base.os, "scandir", scandir)
    with caplog.at_level("WARNING"):
        found = list(base.iter_audio_files(tmp_path))
    assert [p.name for p in found] == ["a.wav"]
    assert f"cannot read the folder {tmp_path / 'locked'} (Permission denied)" in caplog.text
