"""The generic corpus readers: labelled folders and CSV manifests, on fake trees."""

from __future__ import annotations

import pytest
from corpus_trees import by_name, make, skipped_names

from emovox.corpora import (
    folder,
    manifest,
    scan_corpus,
)
from emovox.labels import Emotion

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
    assert "finds no speaker in the file name" in skipped_names(scan)["nospeaker.wav"]
    plain = folder.scan(tmp_path, speaker_pattern=r"^spk(\d+)_")
    assert sorted(u.speaker for u in plain.utterances) == ["folder:07", "folder:12"]
    with pytest.raises(ValueError, match="speaker-pattern .* is no regular expression"):
        folder.scan(tmp_path, speaker_pattern="(")


def test_folder_speaker_pattern_with_a_slash_reads_the_speaker_folder(tmp_path):
    """EMOTION/SPEAKER/take.wav: a pattern was searched in the file name only, so such a
    tree could not get its speakers (QA, stop 37); one holding '/' reads the path below the
    label folder, as batch --speaker-from does."""
    make(tmp_path, "angry/anna/take1.wav", b"a")
    make(tmp_path, "sad/anna/take1.wav", b"b")
    make(tmp_path, "sad/ben/take2.wav", b"c")
    make(tmp_path, "sad/loose.wav", b"d")
    scan = folder.scan(tmp_path, speaker_pattern=r"^([^/]+)/")
    assert sorted((u.raw_label, u.speaker) for u in scan.utterances) == [
        ("angry", "folder:anna"), ("sad", "folder:anna"), ("sad", "folder:ben")]
    assert "finds no speaker in the path below the label folder" in skipped_names(
        scan)["loose.wav"]


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
    }
    assert by_name(scan)["a.wav"].meta["session"] == "morning"
    assert by_name(scan)["a.wav"].path == a  # ".." normalised away
    reasons = [why for _, why in scan.skipped]
    assert reasons == [  # where a missing row was looked for; a row that disagrees with
        # the one it repeats is said (own-data QA, stop 39); an empty speaker cell in a
        # manifest that names speakers was one anonymous speaker (code review, stop 45)
        "row 4: empty speaker (the manifest names speakers; a clip without one cannot be "
        "kept out of its speaker's test fold)",
        f"row 5: file not found at {tmp_path / 'audio' / 'missing.wav'} (paths are relative "
        "to the CSV's folder)",
        "row 6: not an audio file extension",
        "row 7: empty file (0 bytes)",
        "row 8: already listed in row 2 as 'anger' of speaker 's1', here 'sad' of 's1': "
        "check them",
        "row 9: empty label",
    ]
    assert scan.duplicates == [[a, b]]
    bare = tmp_path / "lists" / "bare.csv"  # no speaker column: every clip's is unknown
    bare.write_text(f"path,label\n{c},boredom\n", encoding="utf-8")
    scan = scan_corpus("csv", bare)
    assert [(u.speaker, u.raw_label) for u in scan.unmapped] == [("csv:unknown", "boredom")]


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
    sheet.write_text("path,label\na.wav,happy\n", encoding="utf-16")  # Excel, PowerShell
    assert [u.emotion for u in manifest.scan(sheet).utterances] == [Emotion.HAPPY]
    sheet.write_bytes("path,label\nä.wav,happy\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"m\.csv: not UTF-8 text .* save it as a UTF-8 CSV"):
        manifest.scan(sheet)
    sheet.write_bytes("path,label\na.wav,happy\n".encode("utf-16-le"))  # no BOM (stop 39)
    with pytest.raises(ValueError, match="UTF-16 text without a byte-order mark"):
        manifest.scan(sheet)
    sheet.write_bytes("path,label\na.wav,happy\n".encode("utf-16") + b"x")  # odd length
    with pytest.raises(ValueError, match="not UTF-16 text"):
        manifest.scan(sheet)


def test_a_manifests_skipped_rows_are_rows_and_each_kind_is_shown(tmp_path):
    """Re-check, stop 39: "skipped 5 unrecognised files" showed three repeated rows and hid
    the "file not found at ..." one; rows repeating a file with the same emotion in other
    words ("Angry", "anger") are not said to disagree."""
    make(tmp_path, "a.wav")
    sheet = tmp_path / "m.csv"
    sheet.write_text("path,label\na.wav,angry\na.wav,Angry\na.wav,anger\na.wav,ANGRY\n"
                     "gone.wav,sad\na.wav,sad\n")
    scan = manifest.scan(sheet)
    assert [why for _, why in scan.skipped][:3] == [
        "row 3: already listed in row 2", "row 4: already listed in row 2",
        "row 5: already listed in row 2"]
    summary = scan.summary()  # a disagreeing repeat shown beside the agreeing ones (re-check)
    assert "skipped 5 rows, e.g. a.wav (row 3: already listed in row 2); gone.wav (row 6: " \
           "file not found at" in summary
    assert "a.wav (row 7: already listed in row 2 as 'angry' of speaker 'unknown', here " \
           "'sad' of 'unknown': check them)" in summary


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


def test_a_dataset_keeps_the_users_label_names_and_what_it_left_out(tmp_path):
    """Own-data QA, stop 39: "anger" answered as "angry" and a "frustrated" class dropped
    left no trace in the model folder."""
    import numpy as np

    from emovox.config import DataConfig
    from emovox.experiment.dataset import load_dataset

    rows = ["path,label,speaker"]
    for i in range(4):
        for label in ("anger", "joy", "frustrated", "sad"):
            make(tmp_path, f"clips/{label}{i}.wav")
            rows.append(f"clips/{label}{i}.wav,{label},s{i % 2}")
    (tmp_path / "own.csv").write_text("\n".join(rows) + "\n")
    ds = load_dataset(DataConfig(corpus="csv", root=str(tmp_path / "own.csv")))
    assert ds.labels_read_as(np.arange(len(ds.utts))) == {"anger": "angry", "joy": "happy"}
    assert ds.left_out == {"frustrated": 4}


def test_a_manifests_own_columns_filter_nothing_and_speaker_0_is_kept(tmp_path):
    """Code review, stop 45: a manifest column named like RAVDESS's ``vocal_channel``
    ("Speech", "1") dropped two thirds of the rows silently, and ``--speakers 0,1`` dropped
    speaker 0's clips after finding it."""
    from emovox.config import DataConfig
    from emovox.experiment.dataset import load_dataset

    rows = ["path,label,speaker,vocal_channel"]
    for i in range(6):
        make(tmp_path, f"clips/c{i}.wav")
        rows.append(f"clips/c{i}.wav,{('angry', 'sad')[i % 2]},{i % 2},"
                    f"{('speech', 'Speech', '1')[i % 3]}")
    (tmp_path / "own.csv").write_text("\n".join(rows) + "\n")
    ds = load_dataset(DataConfig(corpus="csv", root=str(tmp_path / "own.csv")))
    assert len(ds.utts) == 6
    ds = load_dataset(DataConfig(corpus="csv", root=str(tmp_path / "own.csv"),
                                 speakers=("0", "1")))
    assert sorted({u.speaker for u in ds.utts}) == ["csv:0", "csv:1"]


def test_a_folder_corpus_lists_the_containers_it_does_not_read(tmp_path):
    """Code review, stop 45: a speaker recorded as .webm / .mp4 (which predict and batch
    read) vanished from a folder corpus without a word; they are listed as skipped, with
    what to do. Other files (notes, pictures) stay out of the list."""
    make(tmp_path, "angry/anna_1.wav")
    make(tmp_path, "angry/bob_1.webm")
    make(tmp_path, "sad/bob_2.MP4")
    make(tmp_path, "sad/notes.txt")
    scan = scan_corpus("folder", tmp_path)
    assert [u.path.name for u in scan.utterances] == ["anna_1.wav"]
    assert skipped_names(scan) == {
        "bob_1.webm": ".webm is not read for training (predict and batch read it): convert "
                      "it to WAV or FLAC",
        "bob_2.MP4": ".mp4 is not read for training (predict and batch read it): convert it "
                     "to WAV or FLAC"}


@pytest.mark.parametrize("sep", ["\t", ";"])
def test_a_manifest_separated_by_tabs_or_semicolons_reads(tmp_path, sep):
    """Code review, stop 45: a TSV (which the folder reader's hint sends to --corpus csv)
    and the ";" CSV Excel writes in many locales were refused as "missing path, label"."""
    make(tmp_path, "c/a.wav")
    (tmp_path / "m.csv").write_text(sep.join(["path", "label", "speaker"]) + "\n"
                                    + sep.join(["c/a.wav", "angry", "s1"]) + "\n")
    scan = scan_corpus("csv", tmp_path / "m.csv")
    assert [(u.path.name, u.emotion, u.speaker) for u in scan.utterances] == [
        ("a.wav", Emotion.ANGRY, "csv:s1")]


def test_labels_that_name_no_emotion_are_named_in_the_error(tmp_path):
    """Code review, stop 45: numeric labels gave "see the skipped rows above" with no row
    skipped; the error now names the labels read and the emotions it knows."""
    from emovox.config import DataConfig
    from emovox.errors import ConfigError
    from emovox.experiment.dataset import load_dataset

    make(tmp_path, "c/a.wav")
    make(tmp_path, "c/b.wav")
    (tmp_path / "m.csv").write_text("path,label,speaker\nc/a.wav,0,s1\nc/b.wav,1,s2\n")
    with pytest.raises(ConfigError, match=r"the labels read \(0, 1\) name none of the "
                                          r"emotions \(neutral, calm"):
        load_dataset(DataConfig(corpus="csv", root=str(tmp_path / "m.csv")))
