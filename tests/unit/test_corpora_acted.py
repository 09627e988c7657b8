"""Corpus readers for TESS, SAVEE, EmoDB and CREMA-D on fake trees."""

from __future__ import annotations

from pathlib import Path

import pytest
from corpus_trees import by_name, make, skipped_names

from emovox.corpora import (
    Gender,
    cremad,
    emodb,
    savee,
    scan_corpus,
    tess,
)
from emovox.labels import Emotion

# --------------------------------------------------------------------------- TESS


def test_tess_happy_path(tmp_path):
    make(tmp_path, "OAF_angry/OAF_back_angry.wav")
    make(tmp_path, "YAF_pleasant_surprised/YAF_back_ps.wav")
    make(tmp_path, "OAF_Pleasant_surprise/OAF_dog_ps.wav")
    make(tmp_path, "OAF_Fear/OAF_youth_fear.wav")
    make(tmp_path, "YAF_dog_pleasant_surprised.wav")
    make(tmp_path, "flat/YAF_neat_Sad.wav")
    scan = tess.scan(tmp_path)
    assert scan.skipped == []
    u = by_name(scan)
    a = u["OAF_back_angry.wav"]
    assert (a.emotion, a.raw_label, a.speaker, a.gender) == (
        Emotion.ANGRY,
        "angry",
        "tess:OAF",
        Gender.FEMALE,
    )
    assert a.meta["word"] == "back" and "64" in a.meta["speaker_age"]
    for name in ("YAF_back_ps.wav", "OAF_dog_ps.wav", "YAF_dog_pleasant_surprised.wav"):
        assert (u[name].emotion, u[name].raw_label) == (Emotion.SURPRISED, "ps")
    assert u["OAF_youth_fear.wav"].emotion is Emotion.FEARFUL
    assert u["YAF_neat_Sad.wav"].emotion is Emotion.SAD
    assert u["YAF_back_ps.wav"].speaker == "tess:YAF"
    assert {x.gender for x in scan.utterances} == {Gender.FEMALE}


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("OAF_back_calm.wav", "not a TESS name"),
        ("MAF_back_angry.wav", "not a TESS name"),
        ("OAF_angry.wav", "not a TESS name"),
        ("back_angry.wav", "not a TESS name"),
        ("OAF_sad/OAF_back_angry.wav", "folder OAF_sad"),
        ("YAF_angry/OAF_back_angry.wav", "folder YAF_angry"),
    ],
)
def test_tess_malformed(tmp_path, name, reason):
    make(tmp_path, name)
    scan = tess.scan(tmp_path)
    assert scan.utterances == []
    assert reason in skipped_names(scan)[Path(name).name]


# --------------------------------------------------------------------------- SAVEE


def test_savee_happy_path(tmp_path):
    make(tmp_path, "ALL/DC_a01.wav")
    make(tmp_path, "AudioData/JE/sa15.wav")
    make(tmp_path, "AudioData/KL/su03.wav")
    make(tmp_path, "AudioData/JK/n30.wav")
    make(tmp_path, "AudioData/JK/JK_d02.wav")
    make(tmp_path, "KL_f07.wav")
    make(tmp_path, "DC_h11.wav")
    scan = savee.scan(tmp_path)
    assert scan.skipped == []
    u = by_name(scan)
    expected = {
        "DC_a01.wav": (Emotion.ANGRY, "a", "savee:DC"),
        "sa15.wav": (Emotion.SAD, "sa", "savee:JE"),
        "su03.wav": (Emotion.SURPRISED, "su", "savee:KL"),
        "n30.wav": (Emotion.NEUTRAL, "n", "savee:JK"),
        "JK_d02.wav": (Emotion.DISGUST, "d", "savee:JK"),
        "KL_f07.wav": (Emotion.FEARFUL, "f", "savee:KL"),
        "DC_h11.wav": (Emotion.HAPPY, "h", "savee:DC"),
    }
    assert {k: (v.emotion, v.raw_label, v.speaker) for k, v in u.items()} == expected
    assert {x.gender for x in scan.utterances} == {Gender.MALE}
    assert u["sa15.wav"].meta == {"sentence": "15", "code": "sa15"}


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("XX_a01.wav", "unknown speaker"),
        ("DC_b01.wav", "not a SAVEE name"),
        ("DC_a1.wav", "not a SAVEE name"),
        ("DC_s01.wav", "not a SAVEE name"),
        ("a01.wav", "no speaker"),
        ("DC_a16.wav", "out of range"),
        ("DC_n00.wav", "out of range"),
        ("JE/DC_a01.wav", "folder JE"),
    ],
)
def test_savee_malformed(tmp_path, name, reason):
    make(tmp_path, name)
    scan = savee.scan(tmp_path)
    assert scan.utterances == []
    assert reason in skipped_names(scan)[Path(name).name]


# --------------------------------------------------------------------------- EmoDB


def test_emodb_happy_path(tmp_path):
    names = {
        "03a01Wa.wav": (Emotion.ANGRY, "03", Gender.MALE),
        "08a02Lb.wav": (None, "08", Gender.FEMALE),
        "09b01Ec.wav": (Emotion.DISGUST, "09", Gender.FEMALE),
        "10a04Ad.wav": (Emotion.FEARFUL, "10", Gender.MALE),
        "11b10Fa.wav": (Emotion.HAPPY, "11", Gender.MALE),
        "16a07Ta.wav": (Emotion.SAD, "16", Gender.FEMALE),
        "15b09Na.wav": (Emotion.NEUTRAL, "15", Gender.MALE),
    }
    for n in names:
        make(tmp_path, f"wav/{n}")
    scan = emodb.scan(tmp_path)
    assert scan.skipped == []
    got = {u.path.name: (u.emotion, u.speaker.split(":")[1], u.gender) for u in scan.utterances}
    assert got == names
    bored = by_name(scan)["08a02Lb.wav"]
    assert (bored.raw_label, bored.speaker, bored.meta["text"], bored.meta["version"]) == (
        "L",
        "emodb:08",
        "a02",
        "b",
    )
    assert [u.raw_label for u in scan.unmapped] == ["L"]
    assert "outside the vocabulary" in scan.summary()


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("01a01Fa.wav", "unknown speaker"),
        ("03a03Fa.wav", "unknown text"),
        ("03a01Xa.wav", "unknown emotion letter"),
        ("03a01fa.wav", "not an EmoDB name"),
        ("03a01F.wav", "not an EmoDB name"),
        ("3a01Fa.wav", "not an EmoDB name"),
    ],
)
def test_emodb_malformed(tmp_path, name, reason):
    make(tmp_path, name)
    scan = emodb.scan(tmp_path)
    assert scan.utterances == []
    assert reason in skipped_names(scan)[name]


# --------------------------------------------------------------------------- CREMA-D


def test_cremad_happy_path_without_demographics(tmp_path):
    make(tmp_path, "AudioWAV/1001_DFA_ANG_XX.wav")
    make(tmp_path, "AudioWAV/1091_IEO_HAP_HI.wav")
    make(tmp_path, "AudioWAV/1002_WSI_NEU_XX.wav")
    scan = cremad.scan(tmp_path)
    assert scan.skipped == []
    u = by_name(scan)
    a = u["1001_DFA_ANG_XX.wav"]
    assert (a.emotion, a.raw_label, a.speaker, a.gender) == (
        Emotion.ANGRY,
        "ANG",
        "cremad:1001",
        Gender.UNKNOWN,
    )
    assert a.meta == {
        "actor": "1001",
        "sentence_code": "DFA",
        "sentence": "Don't forget a jacket",
        "level": "unspecified",
    }
    assert u["1091_IEO_HAP_HI.wav"].meta["level"] == "high"
    assert {x.gender for x in scan.utterances} == {Gender.UNKNOWN}


def test_cremad_demographics(tmp_path):
    make(tmp_path, "a/1001_DFA_ANG_XX.wav")
    make(tmp_path, "a/1002_DFA_SAD_LO.wav")
    make(tmp_path, "a/1003_TSI_FEA_MD.wav")
    demo = tmp_path / "VideoDemographics.csv"
    demo.write_text(
        "ActorID,Age,Sex,Race,Ethnicity\n1001,51,Male,Caucasian,Not Hispanic\n"
        "1002,21,Female,Caucasian,Not Hispanic\n",
        encoding="utf-8",
    )
    scan = scan_corpus("cremad", tmp_path / "a", demographics=demo)
    g = {u.speaker: u.gender for u in scan.utterances}
    assert g == {
        "cremad:1001": Gender.MALE,
        "cremad:1002": Gender.FEMALE,
        "cremad:1003": Gender.UNKNOWN,  # not in the CSV
    }
    bad = tmp_path / "bad.csv"
    bad.write_text("Actor,Gender\n1001,Male\n", encoding="utf-8")
    with pytest.raises(ValueError, match="ActorID"):
        cremad.scan(tmp_path / "a", demographics=bad)
    with pytest.raises(FileNotFoundError):
        cremad.scan(tmp_path / "a", demographics=tmp_path / "missing.csv")


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("1000_DFA_ANG_XX.wav", "actor"),
        ("1092_DFA_ANG_XX.wav", "actor"),
        ("1001_ABC_ANG_XX.wav", "sentence"),
        ("1001_DFA_SUR_XX.wav", "emotion"),
        ("1001_DFA_CAL_XX.wav", "emotion"),
        ("1001_DFA_ANG_ZZ.wav", "level"),
        ("1001_DFA_ANG.wav", "not a CREMA-D name"),
        ("101_DFA_ANG_XX.wav", "not a CREMA-D name"),
    ],
)
def test_cremad_malformed(tmp_path, name, reason):
    make(tmp_path, name)
    scan = cremad.scan(tmp_path)
    assert scan.utterances == []
    assert reason in skipped_names(scan)[name]
