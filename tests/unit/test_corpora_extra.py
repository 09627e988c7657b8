"""Corpus readers for EMOVO and URDU on fake trees with real-style names, and a scan of the
real folders when the shared data is there."""

from __future__ import annotations

from pathlib import Path

import pytest
from corpus_trees import by_name, make, skipped_names

from emovox.corpora import CORPORA, Gender, corpus_label_map, emovo, scan_corpus, urdu
from emovox.labels import Emotion

# --------------------------------------------------------------------------- EMOVO


def test_emovo_happy_path(tmp_path):
    make(tmp_path, "f1/dis-f1-b1.wav")
    make(tmp_path, "m3/gio-m3-n5.flac")
    make(tmp_path, "f2/PAU-F2-L4.wav")
    make(tmp_path, "flat/rab-m1-d2.wav")
    make(tmp_path, "sor-f3-l1.wav")
    make(tmp_path, "m2/tri-m2-b3.wav")
    make(tmp_path, "m2/neu-m2-n1.wav")
    scan = emovo.scan(tmp_path)
    assert scan.skipped == []
    u = by_name(scan)
    expected = {
        "dis-f1-b1.wav": (Emotion.DISGUST, "dis", "emovo:f1", Gender.FEMALE),
        "gio-m3-n5.flac": (Emotion.HAPPY, "gio", "emovo:m3", Gender.MALE),
        "PAU-F2-L4.wav": (Emotion.FEARFUL, "pau", "emovo:f2", Gender.FEMALE),
        "rab-m1-d2.wav": (Emotion.ANGRY, "rab", "emovo:m1", Gender.MALE),
        "sor-f3-l1.wav": (Emotion.SURPRISED, "sor", "emovo:f3", Gender.FEMALE),
        "tri-m2-b3.wav": (Emotion.SAD, "tri", "emovo:m2", Gender.MALE),
        "neu-m2-n1.wav": (Emotion.NEUTRAL, "neu", "emovo:m2", Gender.MALE),
    }
    assert {k: (v.emotion, v.raw_label, v.speaker, v.gender) for k, v in u.items()} == expected
    assert u["dis-f1-b1.wav"].meta == {"sentence": "b1", "emotion_name": "disgusto"}


def test_emovo_label_map_is_seven_classes_without_calm():
    mapped = set(corpus_label_map("emovo").values())
    assert len(mapped) == 7 and Emotion.CALM not in mapped and None not in mapped


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("dis-f1.wav", "not an EMOVO name"),
        ("dis_f1_b1.wav", "not an EMOVO name"),
        ("cal-f1-b1.wav", "unknown emotion code cal"),
        ("dis-f4-b1.wav", "unknown speaker f4"),
        ("dis-x1-b1.wav", "unknown speaker x1"),
        ("dis-f1-b4.wav", "unknown sentence code b4"),
        ("dis-f1-n6.wav", "unknown sentence code n6"),
        ("m1/dis-f1-b1.wav", "folder m1"),
    ],
)
def test_emovo_malformed(tmp_path, name, reason):
    make(tmp_path, name)
    scan = emovo.scan(tmp_path)
    assert scan.utterances == []
    assert reason in skipped_names(scan)[Path(name).name]


# --------------------------------------------------------------------------- URDU


def test_urdu_happy_path(tmp_path):
    make(tmp_path, "Angry/SM1_F10_A010.wav")
    make(tmp_path, "Happy/SF3_F1_H01.flac")
    make(tmp_path, "neutral/SM24_F2_N102.wav")
    make(tmp_path, "Sad/sm1_f3_s5.wav")
    make(tmp_path, "SF11_F4_A4.wav")  # outside a label folder: labelled by its letter
    scan = urdu.scan(tmp_path)
    assert scan.skipped == []
    u = by_name(scan)
    expected = {
        "SM1_F10_A010.wav": (Emotion.ANGRY, "Angry", "urdu:SM1", Gender.MALE),
        "SF3_F1_H01.flac": (Emotion.HAPPY, "Happy", "urdu:SF3", Gender.FEMALE),
        "SM24_F2_N102.wav": (Emotion.NEUTRAL, "Neutral", "urdu:SM24", Gender.MALE),
        "sm1_f3_s5.wav": (Emotion.SAD, "Sad", "urdu:SM1", Gender.MALE),
        "SF11_F4_A4.wav": (Emotion.ANGRY, "Angry", "urdu:SF11", Gender.FEMALE),
    }
    assert {k: (v.emotion, v.raw_label, v.speaker, v.gender) for k, v in u.items()} == expected
    assert u["SM1_F10_A010.wav"].meta == {"file": "10", "utterance": "010"}


def test_urdu_label_map_is_four_classes():
    assert set(corpus_label_map("urdu").values()) == {
        Emotion.ANGRY, Emotion.HAPPY, Emotion.NEUTRAL, Emotion.SAD}


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("Angry/M1_F10_A010.wav", "not an URDU name"),
        ("Angry/SX1_F10_A010.wav", "not an URDU name"),
        ("Angry/SM1_10_A010.wav", "not an URDU name"),
        ("Angry/SM1_F10_A.wav", "not an URDU name"),
        ("Angry/SM1_F10_X010.wav", "unknown emotion letter X"),
        ("Sad/SM1_F10_A010.wav", "folder Sad"),
    ],
)
def test_urdu_malformed(tmp_path, name, reason):
    make(tmp_path, name)
    scan = urdu.scan(tmp_path)
    assert scan.utterances == []
    assert reason in skipped_names(scan)[Path(name).name]


# --------------------------------------------------------------------------- both


def test_registered_and_speakers_namespaced(tmp_path):
    assert CORPORA["emovo"] is emovo and CORPORA["urdu"] is urdu
    make(tmp_path, "e/f1/dis-f1-b1.wav")
    make(tmp_path, "u/Angry/SF1_F1_A01.wav")
    e = scan_corpus("EMOVO", tmp_path / "e")
    r = scan_corpus("Urdu", tmp_path / "u")
    assert [x.speaker for x in e.utterances] == ["emovo:f1"]
    assert [x.speaker for x in r.utterances] == ["urdu:SF1"]


def test_scan_command_reads_emovo(tmp_path):
    from typer.testing import CliRunner

    from emovox.cli import app

    make(tmp_path, "f1/dis-f1-b1.wav")
    make(tmp_path, "m1/tri-m1-b1.wav")
    r = CliRunner().invoke(app, ["scan", str(tmp_path), "--corpus", "emovo"])
    assert r.exit_code == 0, r.output  # an unknown corpus name exits 2
    assert "emovo" in r.output


def test_real_emovo_and_urdu(shared_data):
    root = shared_data / "extra"
    if not (root / "emovo").is_dir() or not (root / "urdu").is_dir():
        pytest.skip(f"EMOVO/URDU not found under {root}")
    e = scan_corpus("emovo", root / "emovo", detect_duplicates=False)
    assert (len(e.utterances), e.skipped) == (588, [])
    assert {u.speaker for u in e.utterances} == {f"emovo:{s}" for s in emovo.SPEAKERS}
    assert set(e.label_counts().values()) == {84}  # 6 speakers x 14 sentences, 7 classes
    r = scan_corpus("urdu", root / "urdu", detect_duplicates=False)
    assert (len(r.utterances), r.skipped) == (400, [])
    assert r.label_counts() == {"angry": 100, "happy": 100, "neutral": 100, "sad": 100}
    genders: dict[str, Gender] = {u.speaker: u.gender for u in r.utterances}
    assert len(genders) == 29
    assert sum(g is Gender.FEMALE for g in genders.values()) == 11
