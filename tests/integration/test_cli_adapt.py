"""Speaker adaptation through the real CLI with the bundled model: ``predict --reference``,
``batch --speaker-from``, ``timeline --adapt self``, on synthetic voice-like clips in fake
trees under tmp_path (and one real RAVDESS actor, slow)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from cli_helpers import (
    F0S,
    check_prediction,
    invoke,
    ok,
    read_csv,
    text,
    tone,
    tone_clips,
    write_clip,
)

from emovox.serving.schema import validate_document
from signals import silence


@pytest.fixture(scope="module")
def target(tmp_path_factory) -> Path:
    return write_clip(tmp_path_factory.mktemp("target") / "clip.wav", tone(1.5, f0=210.0, seed=9))


@pytest.mark.slow  # several predictions with the bundled ensemble (> 2 s)
def test_predict_with_reference(tmp_path: Path, target: Path) -> None:
    ref = tmp_path / "ref"
    tone_clips(ref, 3)
    write_clip(ref / "silent.wav", silence(1.0))
    (ref / "empty.wav").write_bytes(b"")
    res = invoke(["predict", target, "--reference", ref, "--json"])
    ok(res)
    doc = json.loads(res.stdout)
    check_prediction(doc)
    ad = doc["adaptation"]
    assert {k: ad[k] for k in ("method", "applied", "reference_clips", "group", "reason")} \
        == {"method": "speaker_prior", "applied": True, "reference_clips": 3,
            "group": str(ref), "reason": None}
    assert sum(ad["prior"].values()) == pytest.approx(1.0, abs=1e-3)
    plain = invoke(["predict", target, "--json"])
    assert "adaptation" not in json.loads(plain.stdout)
    human = invoke(["predict", target, "--reference", ref])
    ok(human)
    t = text(human)
    assert f"adapted to speaker (3 clips in {ref})" in t
    assert "reference clip skipped: silent.wav" in t and "empty.wav" in t
    assert "only 3 usable reference clips" in t
    warnings = json.loads(res.stdout)["adaptation"]["warnings"]
    empty = [w for w in warnings if "empty.wav" in w]
    assert len(empty) == 1 and empty[0].count("empty.wav") == 1, empty  # named once


@pytest.mark.parametrize(("setup", "message"), [
    ("missing", "does not exist"),
    ("empty", "holds no audio file"),
    ("silent", "0 usable clip(s) of 3"),
    ("file", "is not a folder"),
])
def test_predict_bad_reference_exits_2(tmp_path: Path, target: Path, setup: str,
                                       message: str) -> None:
    ref = tmp_path / "ref"
    if setup == "empty":
        ref.mkdir()
    elif setup == "silent":
        for i in range(3):
            write_clip(ref / f"s{i}.wav", silence(1.0))
    elif setup == "file":
        ref = target
    res = invoke(["predict", target, "--reference", ref])
    ok(res, 2)
    assert message in text(res)


@pytest.mark.parametrize("setup", ["missing", "silent"])
def test_predict_json_bad_reference_prints_failure_documents(tmp_path: Path, target: Path,
                                                             setup: str) -> None:
    """``predict --json --reference DIR`` of a folder that cannot be used printed nothing on
    stdout (code review, stop 56), where a file that cannot be read is a failure document:
    each file given is one now, its error the reference's; still said on stderr, exit 2."""
    ref = tmp_path / "ref"
    if setup == "silent":
        for i in range(3):
            write_clip(ref / f"s{i}.wav", silence(1.0))
    one = invoke(["predict", target, "--reference", ref, "--json"])
    ok(one, 2)
    doc = json.loads(one.stdout)
    validate_document(doc, "prediction")
    assert doc["source"] == str(target) and doc["error"].startswith(f"reference folder {ref}")
    assert doc["error"] in " ".join(one.stderr.split())  # the same words on stderr
    other = tmp_path / "gone.wav"  # a missing file among them: the reference's error too
    two = invoke(["predict", target, other, "--reference", ref, "--json"])
    ok(two, 2)
    docs = json.loads(two.stdout)
    for d in docs:
        validate_document(d, "prediction")
    assert [(d["source"], d["error"]) for d in docs] == [(str(target), doc["error"]),
                                                         (str(other), doc["error"])]
    plain = invoke(["predict", target, "--reference", ref])  # a table: nothing on stdout
    ok(plain, 2)
    assert plain.stdout == ""


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
@pytest.mark.slow  # several predictions with the bundled ensemble (> 2 s)
def test_batch_speaker_from_parent(tmp_path: Path, suffix: str) -> None:
    tree = tmp_path / "tree"
    tone_clips(tree / "spk_a", 3)
    tone_clips(tree / "spk_b", 2, start=3)
    write_clip(tree / "spk_a" / "quiet.wav", silence(1.0))
    out = tmp_path / f"res{suffix}"
    res = invoke(["batch", tree, "--out", out, "--speaker-from", "parent", "--workers", "1"])
    ok(res)
    t = text(res)
    assert "adapted to speaker: 3 answers in 1 speaker groups" in t
    assert "2 left unadapted (1 groups with too few clips, 0 files without a group)" in t
    raw = tmp_path / f"res.unadapted{suffix}"
    assert raw.is_file()
    rows = read_csv(out) if suffix == ".csv" else \
        [json.loads(line) for line in out.read_text().splitlines()]
    uncertain = sum(r["status"] == "uncertain" for r in rows)  # what the adapted file holds
    assert f"{uncertain} uncertain after adaptation" in t
    by_name = {Path(r.get("path") or r["source"]).name: r for r in rows}
    if suffix == ".csv":
        assert [by_name[f"c{i}.wav"]["adapted"] for i in range(5)] == ["true"] * 3 + \
            ["false"] * 2
        assert Path(by_name["c0.wav"]["speaker_group"]) == tree / "spk_a"  # the folder
        assert by_name["quiet.wav"]["status"] == "no_speech"
        # a no_speech answer of a group says why it is not adapted (QA, stop 39)
        assert by_name["quiet.wav"]["adapted"] == "false"
        assert by_name["quiet.wav"]["adapt_note"].startswith(
            "the clip holds no speech: nothing to adapt")
    else:
        for r in rows:
            validate_document(r, "prediction")
        assert by_name["c0.wav"]["adaptation"]["reference_clips"] == 3
        assert by_name["c3.wav"]["adaptation"]["applied"] is False
        quiet = by_name["quiet.wav"]["adaptation"]  # as predict --reference (QA, stop 39)
        assert quiet["applied"] is False and quiet["reason"].startswith("the clip holds no")
    before = out.read_bytes()
    again = invoke(["batch", tree, "--out", out, "--speaker-from", "parent"])
    ok(again)
    assert "0 predicted now, 6 already in" in text(again)
    assert out.read_bytes() == before  # resumed from the unadapted answers: not adapted twice


@pytest.mark.slow  # several predictions with the bundled ensemble (> 2 s)
def test_batch_speaker_from_says_a_deleted_files_row(tmp_path: Path) -> None:
    """A review as a user (stop 53): a resumed output's row of a deleted file counted in its
    speaker's statistics without a word; it still counts (its recorded answer, as a row whose
    file cannot be read), and is said."""
    clips = tone_clips(tmp_path / "tree" / "spk_a", 4)
    out = tmp_path / "res.csv"
    args = ["batch", tmp_path / "tree", "--out", out, "--speaker-from", "parent",
            "--workers", "1"]
    ok(invoke(args))
    assert {r["reference_clips"] for r in read_csv(out)} == {"4"}
    clips[0].unlink()
    res = invoke(args)
    ok(res)
    rows = read_csv(out)
    assert len(rows) == 4  # its row is kept, and said
    assert "1 row(s) in" in text(res) and "no longer there" in text(res)
    assert {r["reference_clips"] for r in rows} == {"4"}


def test_batch_speaker_from_regex(tmp_path: Path) -> None:
    tree = tmp_path / "flat"
    for i, w in enumerate(tone_clips(tmp_path / "src", 4)):
        w.rename(write_clip(tree / f"{'ann' if i < 3 else 'bob'}_{i}.wav", sf.read(w)[0]))
    out = tmp_path / "res.csv"
    res = invoke(["batch", tree, "--out", out, "--speaker-from", r"^([a-z]+)_"])
    ok(res)
    rows = {Path(r["path"]).name: r for r in read_csv(out)}
    assert {r["speaker_group"] for r in rows.values()} == {"ann", "bob"}
    assert rows["ann_0.wav"]["adapted"] == "true" and rows["bob_3.wav"]["adapted"] == "false"
    none = invoke(["batch", tree, "--out", tmp_path / "none.csv", "--speaker-from",
                   r"^(zzz)_"])
    ok(none)  # a regex that names no speaker says so (it only printed the counts)
    assert "named no speaker in any of the 4 file(s)" in text(none)


@pytest.mark.parametrize(("spec", "message"), [
    (r"^[a-z]+_", "has no capture group"), ("([", "not a valid regular expression"),
])
def test_batch_bad_speaker_from_exits_2(tmp_path: Path, spec: str, message: str) -> None:
    tone_clips(tmp_path / "t", 1)
    out = tmp_path / "res.csv"
    res = invoke(["batch", tmp_path / "t", "--out", out, "--speaker-from", spec])
    ok(res, 2)
    assert message in text(res)
    assert not out.exists() and not (tmp_path / "res.unadapted.csv").exists()


@pytest.mark.slow  # several predictions with the bundled ensemble (> 2 s)
def test_timeline_adapts_to_itself(tmp_path: Path) -> None:
    parts = []
    for i in range(6):
        parts += [tone(3.0, f0=F0S[i % 4], seed=i), silence(1.0)]
    long = write_clip(tmp_path / "long.wav", np.concatenate(parts))
    res = invoke(["timeline", long, "--adapt", "self", "--json"])
    ok(res)
    doc = json.loads(res.stdout)
    validate_document(doc, "timeline")
    n = doc["summary"]["n_windows"]
    assert n >= 3 and doc["adaptation"]["applied"] is True
    assert doc["adaptation"]["reference_clips"] == n and doc["adaptation"]["group"] == "self"
    human = invoke(["timeline", long, "--adapt", "self"])
    ok(human)
    assert f"adapted to speaker ({n} windows of this recording)" in text(human)
    plain = json.loads(invoke(["timeline", long, "--json"]).stdout)
    assert "adaptation" not in plain
    as_csv = invoke(["timeline", long, "--adapt", "self", "--csv"])
    ok(as_csv)
    assert f"adapted to speaker ({n} windows" in text(as_csv)
    header, *rows = as_csv.stdout.splitlines()
    assert header.endswith(",adapted") and sum(r.endswith(",true") for r in rows) == n


def test_timeline_too_short_to_adapt_and_bad_mode(tmp_path: Path, target: Path) -> None:
    res = invoke(["timeline", target, "--adapt", "self", "--json"])
    ok(res)
    doc = json.loads(res.stdout)
    assert doc["adaptation"]["applied"] is False
    assert "not adapted:" in text(res)
    bad = invoke(["timeline", target, "--adapt", "speaker"])
    ok(bad, 2)
    assert "speaker" in text(bad)


@pytest.mark.slow
def test_real_actor_with_sixteen_references(shared_ravdess, tmp_path: Path) -> None:
    """One actor: 16 of their clips (two of each emotion) as references, two others
    predicted; the answers are valid adapted documents (the bundled model heard this actor
    in training, so no accuracy is claimed here)."""
    actor = shared_ravdess / "Audio_Speech_Actors_01-24" / "Actor_05"
    ref = tmp_path / "ref"
    ref.mkdir()
    for e in range(1, 9):
        for stmt in (1, 2):
            src = actor / f"03-01-0{e}-01-0{stmt}-01-05.flac"
            shutil.copy(src, ref / src.name)  # tmp_path only; never into the repo
    clips = [actor / "03-01-05-02-01-02-05.flac", actor / "03-01-04-02-02-02-05.flac"]
    res = invoke(["predict", *clips, "--reference", ref, "--json"])
    ok(res)
    docs = json.loads(res.stdout)
    for d in docs:
        check_prediction(d)
        assert d["adaptation"]["reference_clips"] == 16
    assert "usable reference clips" not in text(res)  # no warning with 16 references
