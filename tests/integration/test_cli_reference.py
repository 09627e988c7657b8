"""``emovox predict --reference DIR`` as a user reads it (a review as a user, stop 54):
subfolders are read and said, the footer says when the adaptation was not applied, the
option is given once, and what is said about a reference clip is in a reference's words.
Synthetic voice-like clips in fake trees under tmp_path (one real RAVDESS pair of actors)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import invoke, ok, text, tone, tone_clips, write_clip

from signals import noise


@pytest.fixture(scope="module")
def target(tmp_path_factory) -> Path:
    return write_clip(tmp_path_factory.mktemp("target") / "clip.wav", tone(1.5, f0=210.0, seed=9))


@pytest.fixture(scope="module")
def hiss(tmp_path_factory) -> Path:
    """White noise: answered no_speech (steady_sound)."""
    return write_clip(tmp_path_factory.mktemp("hiss") / "noise.wav", noise(2.0, amp=0.1))


@pytest.mark.slow  # several predictions with the bundled ensemble (> 2 s)
def test_reference_clips_from_subfolders_are_said(tmp_path: Path, target: Path) -> None:
    """A subfolder of another speaker was adapted to as the same speaker, without a word:
    subfolders are still read (one speaker's sessions), and clips from several folders are
    said once, in the log and in the record."""
    ref = tmp_path / "mixspk"
    tone_clips(ref, 3)
    tone_clips(ref / "other", 3, start=3)
    res = invoke(["predict", target, "--reference", ref, "--json"])
    ok(res)
    said = (f"the reference clips come from 2 folders (e.g. {ref}, {ref / 'other'}): they "
            "are taken as one speaker's")
    assert " ".join(res.stderr.split()).count(said) == 1  # said once (and in the JSON)
    ad = json.loads(res.stdout)["adaptation"]
    assert ad["applied"] is True and ad["reference_clips"] == 6 and ad["warnings"][0] == said
    one = tmp_path / "one"  # one folder: no such warning
    tone_clips(one, 3)
    res = invoke(["predict", target, "--reference", one])
    ok(res)
    assert "folders" not in text(res)


def test_help_says_subfolders_are_read() -> None:
    res = invoke(["predict", "--help"])
    ok(res)
    assert "subfolders are read too" in text(res)


@pytest.mark.slow  # several predictions with the bundled ensemble (> 2 s)
def test_footer_says_an_answer_without_speech_was_not_adapted(tmp_path: Path, target: Path,
                                                               hiss: Path) -> None:
    """The footer said "adapted to speaker (...): probabilities divided by ..." of a clip
    without speech, whose JSON said ``applied: false``."""
    ref = tmp_path / "ref"
    tone_clips(ref, 3)
    res = invoke(["predict", hiss, "--reference", ref])
    ok(res)
    t = text(res)
    assert f"not adapted to speaker (3 clips in {ref}): noise.wav (the clip holds no speech: " \
           "nothing to adapt)" in t
    assert "probabilities divided by" not in t
    doc = json.loads(invoke(["predict", hiss, "--reference", ref, "--json"]).stdout)
    assert doc["adaptation"]["applied"] is False
    assert doc["adaptation"]["reason"].startswith("the clip holds no speech")
    both = invoke(["predict", target, hiss, "--reference", ref])  # one of each: both said
    ok(both)
    t = text(both)
    assert f"adapted to speaker (3 clips in {ref}): probabilities divided by" in t
    assert f"not adapted to speaker (3 clips in {ref}): noise.wav (" in t


@pytest.mark.parametrize("json_out", [False, True])
def test_reference_given_twice_is_a_usage_error(tmp_path: Path, target: Path,
                                                json_out: bool) -> None:
    """``--reference A --reference B`` adapted to B alone, without a word."""
    a, b = tmp_path / "a", tmp_path / "b"
    res = invoke(["predict", target, "--reference", a, "--reference", b,
                  *(["--json"] if json_out else [])])
    ok(res, 2)
    assert f"--reference is given 2 times ({a}, {b}): give one folder" in text(res)
    assert res.stdout == ""


@pytest.mark.slow  # several predictions with the bundled ensemble (> 2 s)
def test_reference_messages_are_in_a_references_words(tmp_path: Path, target: Path) -> None:
    """A FLAC cut short was "answered on the 0.77 s before that" and told to "record closer
    to the microphone"; a clip without speech was skipped as "no speech (steady_sound)"; a
    clip over the duration limit was sent to `emovox timeline`."""
    ref = tmp_path / "ref"
    tone_clips(ref, 3)
    faint = np.concatenate([noise(1.0, amp=1e-4, seed=3), tone(2.0, f0=200.0, seed=4)])
    cut = write_clip(ref / "cut.flac", faint, fmt="FLAC")
    cut.write_bytes(cut.read_bytes()[:len(cut.read_bytes()) // 8])  # the faint start only
    write_clip(ref / "hiss.wav", noise(2.0, amp=0.1, seed=5))
    write_clip(ref / "long.wav", tone(4.0, f0=250.0, seed=6))
    res = invoke(["predict", target, "--reference", ref, "--max-duration", "3.5", "--json"])
    ok(res)
    t = text(res)
    assert "answered on" not in t and "record closer" not in t and "emovox timeline" not in t
    assert "(steady_sound)" not in t
    warnings = json.loads(res.stdout)["adaptation"]["warnings"]
    by_clip = {name: [w for w in warnings if f"skipped: {name}:" in w]
               for name in ("cut.flac", "hiss.wav", "long.wav")}
    assert all(len(w) == 1 for w in by_clip.values()), warnings
    assert "the file is damaged or cut short; only the " in by_clip["cut.flac"][0]
    assert "s before that is used" in by_clip["cut.flac"][0]
    assert by_clip["hiss.wav"][0].endswith(": no speech: a steady sound (noise, hum, tones, "
                                           "beeps or bells, a constant offset)")
    assert by_clip["long.wav"][0].endswith("A reference clip must be under the limit: cut it "
                                           "into shorter clips, or raise the limit "
                                           "(--max-duration).")
    log = " ".join(res.stderr.split())
    assert all(log.count(w) == 1 for w in warnings)  # each said once in the log


@pytest.mark.slow  # real RAVDESS clips and the bundled ensemble
def test_real_two_actors_in_one_reference_tree(shared_ravdess, tmp_path: Path) -> None:
    """The review's case: 8 clips of Actor_05, and 8 of Actor_12 in a subfolder, adapted to
    as 16 clips of one speaker without a word."""
    root = shared_ravdess / "Audio_Speech_Actors_01-24"
    ref = tmp_path / "mixspk"
    for actor, dest in ((5, ref), (12, ref / "actor12")):
        dest.mkdir(parents=True, exist_ok=True)
        for src in sorted((root / f"Actor_{actor:02d}").glob("*"))[:8]:
            shutil.copy(src, dest / src.name)  # tmp_path only; never into the repo
    clip = root / "Actor_05" / "03-01-05-02-01-02-05.flac"
    res = invoke(["predict", clip, "--reference", ref])
    ok(res)
    assert "the reference clips come from 2 folders (e.g. " in text(res)
    assert f"(16 clips in {ref})" in text(res)
