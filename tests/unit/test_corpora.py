"""Corpus readers on tiny synthetic trees (names only, a few bytes each) and real RAVDESS."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from emovox.corpora import (
    CORPORA,
    CorpusScan,
    Gender,
    corpus_label_map,
    cremad,
    emodb,
    folder,
    manifest,
    ravdess,
    savee,
    scan_corpus,
    tess,
)
from emovox.labels import Emotion, shared_classes

_counter = 0


def make(root: Path, rel: str, content: bytes | None = None) -> Path:
    """Create ``root/rel`` holding ``content`` (default: bytes unique to this file)."""
    global _counter
    _counter += 1
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(content if content is not None else f"RIFF{_counter}:{rel}".encode())
    return p


def by_name(scan: CorpusScan) -> dict[str, object]:
    return {u.path.name: u for u in scan.utterances}


def skipped_names(scan: CorpusScan) -> dict[str, str]:
    return {p.name: why for p, why in scan.skipped}


# --------------------------------------------------------------------------- registry


def test_registry_names_and_modules():
    assert set(CORPORA) == {"ravdess", "tess", "savee", "emodb", "cremad", "folder", "csv"}
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


# --------------------------------------------------------------------------- folder


def test_folder_labels_synonyms_and_unknown(tmp_path):
    make(tmp_path, "Anger/x1.wav")
    make(tmp_path, "happiness/sub/dir/x2.flac")
    make(tmp_path, "FEAR/x3.wav")
    make(tmp_path, "disgusted/x4.wav")
    make(tmp_path, "Surprise/x5.wav")
    make(tmp_path, "sadness/x6.wav")
    make(tmp_path, "neutral/x7.wav")
    make(tmp_path, "calm/x8.wav")
    make(tmp_path, "boredom/x9.wav")
    make(tmp_path, "loose.wav")
    scan = folder.scan(tmp_path)
    u = by_name(scan)
    assert {k: v.emotion for k, v in u.items()} == {
        "x1.wav": Emotion.ANGRY,
        "x2.flac": Emotion.HAPPY,
        "x3.wav": Emotion.FEARFUL,
        "x4.wav": Emotion.DISGUST,
        "x5.wav": Emotion.SURPRISED,
        "x6.wav": Emotion.SAD,
        "x7.wav": Emotion.NEUTRAL,
        "x8.wav": Emotion.CALM,
        "x9.wav": None,
    }
    assert u["x9.wav"].raw_label == "boredom"
    assert u["x1.wav"].raw_label == "Anger"
    assert {x.speaker for x in scan.utterances} == {"folder:unknown"}
    assert skipped_names(scan) == {"loose.wav": "not inside a label folder"}
    assert "['boredom']" in scan.summary()
    assert folder.label_to_emotion(" Pleasant Surprise ") is Emotion.SURPRISED
    for e in Emotion:
        assert folder.label_to_emotion(e.value.upper()) is e


def test_folder_speaker_pattern_and_corpus_name(tmp_path):
    make(tmp_path, "angry/spk12_take1.wav")
    make(tmp_path, "sad/spk07_take2.wav")
    make(tmp_path, "sad/nospeaker.wav")
    scan = scan_corpus("folder", tmp_path, corpus="mine", speaker_pattern=r"spk(?P<speaker>\d+)")
    assert {u.path.name: u.speaker for u in scan.utterances} == {
        "spk12_take1.wav": "mine:12",
        "spk07_take2.wav": "mine:07",
    }
    assert {u.corpus for u in scan.utterances} == {"mine"}
    assert "does not match" in skipped_names(scan)["nospeaker.wav"]
    plain = folder.scan(tmp_path, speaker_pattern=r"^spk(\d+)_")
    assert sorted(u.speaker for u in plain.utterances) == ["folder:07", "folder:12"]
    with pytest.raises(ValueError, match="speaker_pattern"):
        folder.scan(tmp_path, speaker_pattern="(")


def test_folder_duplicates(tmp_path):
    a = make(tmp_path, "happy/a.wav", b"xyz")
    b = make(tmp_path, "sad/b.wav", b"xyz")
    assert folder.scan(tmp_path).duplicates == [[a, b]]


# --------------------------------------------------------------------------- CSV manifest


def test_manifest_happy_path_and_problems(tmp_path):
    a = make(tmp_path, "audio/a.wav", b"same")
    b = make(tmp_path, "audio/b.flac", b"same")
    c = make(tmp_path, "elsewhere/c.wav")
    make(tmp_path, "audio/notes.txt")
    make(tmp_path, "audio/empty.wav", b"")
    sheet = tmp_path / "lists" / "manifest.csv"
    sheet.parent.mkdir()
    sheet.write_text(
        "Path,Label,Speaker,session\n"
        "../audio/a.wav,anger,s1,morning\n"
        "../audio/b.flac,Happiness,s2,evening\n"
        f"{c},boredom,,\n"
        "../audio/missing.wav,sad,s1,\n"
        "../audio/notes.txt,sad,s1,\n"
        "../audio/empty.wav,sad,s1,\n"
        "../audio/a.wav,sad,s1,\n"
        "../audio/c.wav,,s1,\n"
        "\n",
        encoding="utf-8",
    )
    scan = scan_corpus("csv", sheet)
    got = {u.path.name: (u.emotion, u.raw_label, u.speaker) for u in scan.utterances}
    assert got == {
        "a.wav": (Emotion.ANGRY, "anger", "csv:s1"),
        "b.flac": (Emotion.HAPPY, "Happiness", "csv:s2"),
        "c.wav": (None, "boredom", "csv:unknown"),
    }
    assert by_name(scan)["a.wav"].meta["session"] == "morning"
    assert by_name(scan)["a.wav"].path == a  # ".." normalised away
    assert [u.raw_label for u in scan.unmapped] == ["boredom"]
    reasons = [why for _, why in scan.skipped]
    assert reasons == [
        "row 5: file not found",
        "row 6: not an audio file extension",
        "row 7: empty file (0 bytes)",
        "row 8: already listed in row 2",
        "row 9: empty label",
    ]
    assert scan.duplicates == [[a, b]]


def test_manifest_header_required(tmp_path):
    make(tmp_path, "a.wav")
    sheet = tmp_path / "m.csv"
    sheet.write_text("a.wav,happy\n", encoding="utf-8")
    with pytest.raises(ValueError, match="header"):
        manifest.scan(sheet)
    sheet.write_text("", encoding="utf-8")
    with pytest.raises(ValueError, match="header"):
        manifest.scan(sheet)
    with pytest.raises(IsADirectoryError):
        manifest.scan(tmp_path)
    sheet.write_text("\ufeffpath,label\na.wav,happy\n", encoding="utf-8")  # BOM is fine
    assert [u.emotion for u in manifest.scan(sheet).utterances] == [Emotion.HAPPY]


def test_manifest_and_folder_readers_map_the_same_labels_alike(tmp_path):
    """The same clips labelled by a CSV manifest and by folder names (synonyms, odd case,
    spaces, an unknown label) get the same emotions from both readers."""
    labels = ["Anger", "happiness", "Pleasant Surprise", "FEARFUL", "sadness ", "calm",
              "neutral", "disgusted", "boredom"]
    rows = ["path,label,speaker"]
    for i, label in enumerate(labels):
        make(tmp_path, f"tree/{label.strip()}/clip{i}.wav")
        rows.append(f"tree/{label.strip()}/clip{i}.wav,{label},s1")
    sheet = tmp_path / "m.csv"
    sheet.write_text("\n".join(rows) + "\n", encoding="utf-8")
    from_csv = {u.path.name: u.emotion for u in scan_corpus("csv", sheet).utterances}
    from_folder = {u.path.name: u.emotion
                   for u in scan_corpus("folder", tmp_path / "tree").utterances}
    assert from_csv == from_folder
    assert [from_csv[f"clip{i}.wav"] for i in range(len(labels))] == [
        Emotion.ANGRY, Emotion.HAPPY, Emotion.SURPRISED, Emotion.FEARFUL, Emotion.SAD,
        Emotion.CALM, Emotion.NEUTRAL, Emotion.DISGUST, None,
    ]
