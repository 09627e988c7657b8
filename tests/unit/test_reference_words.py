"""What is said about speaker-adaptation reference clips (:mod:`emovox.serving.reference_words`;
a review as a user, stop 54): in a reference's words, the decoder's own notes and errors
made by the audio layer's real functions, so a change of their wording shows here."""

from __future__ import annotations

import os
from pathlib import Path

import soundfile as sf

from emovox.audio import TOO_LONG_ADVICE, faint_note, load_audio
from emovox.audio.length import cut_note
from emovox.audio.limits import too_long
from emovox.serving.answer import Prediction, Status
from emovox.serving.reference_words import (
    REFERENCE_TOO_LONG,
    UPLOADED_REFERENCE_TOO_LONG,
    folders_warning,
    no_speech_skip,
    reference_words,
)
from signals import SR, noise, talk


def _cut_flac(tmp_path: Path) -> Path:
    path = tmp_path / "cut.flac"
    sf.write(path, talk(3.0), SR, format="FLAC", subtype="PCM_16")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def test_a_decoders_notes_say_what_is_used_not_answered(tmp_path: Path) -> None:
    """"answered on the 0.77 s before that": a reference is never answered."""
    notes = load_audio(_cut_flac(tmp_path)).notes
    stopped = [n for n in notes if "decoding stopped" in n]
    assert len(stopped) == 1 and "answered on" in stopped[0]  # the words of an answer
    said = reference_words(stopped[0])
    assert "answered" not in said and " s before that is used." in said
    assert said.split("; only the ")[0] == stopped[0].split("; answered on")[0]
    held = reference_words(cut_note("a.wav", 1.0, 2.0))
    assert held.endswith("(cut short, or a damaged header); only what is there is used.")


def test_a_reference_over_the_limit_is_told_to_cut_it() -> None:
    """The duration limit's advice sent a reference to `emovox timeline`; cutting it comes
    first, and the CLI's "raise the limit (--max-duration)" still applies (it was dropped:
    code review, stop 54), but not to an uploaded reference: the limit is the server's."""
    said = reference_words(str(too_long("long.wav", 700.0, 600.0)))
    assert "emovox timeline" not in said
    assert said == f"long.wav: is 700.00 s long, longer than the 600 s limit. {REFERENCE_TOO_LONG}"
    assert said.endswith("under the limit: cut it into shorter clips, or raise the limit "
                         "(--max-duration).")
    assert "raise the limit (--max-duration)" in TOO_LONG_ADVICE  # what was kept, still said
    uploaded = reference_words(str(too_long("long.wav", 700.0, 600.0)), uploaded=True)
    assert uploaded == f"long.wav: is 700.00 s long, longer than the 600 s limit. " \
        f"{UPLOADED_REFERENCE_TOO_LONG}"
    assert "--max-duration" not in uploaded and "emovox timeline" not in uploaded
    assert reference_words(uploaded) == uploaded  # said again by the prior: as it is
    assert reference_words("x.wav: is not audio") == "x.wav: is not audio"  # others as they are


def _no_speech(reason: str, message: str | None, warnings: tuple[str, ...] = ()) -> Prediction:
    return Prediction(None, None, None, None, None, 1.0, "x", Status.NO_SPEECH, reason=reason,
                      reason_message=message, warnings=warnings)


def test_a_skip_for_no_speech_says_the_reason_in_words() -> None:
    """It said the code: "no speech (steady_sound)"; now what predict's table says; the
    near-silence note (its advice: record closer to the microphone) is left out, a cut is
    said in a reference's words."""
    cut = "ref/cut.flac: decoding stopped at 0.77 s (x): the file is damaged or cut short; " \
        "answered on the 0.77 s before that."
    pred = _no_speech("steady_sound", "no speech: a steady sound (noise)",
                      (cut, faint_note("ref/cut.flac"), faint_note("ref/cut.flac", digital=True)))
    assert no_speech_skip("cut.flac", pred) == (
        "cut.flac: no speech: a steady sound (noise); decoding stopped at 0.77 s (x): the file "
        "is damaged or cut short; only the 0.77 s before that is used")
    assert no_speech_skip("q.wav", _no_speech("silence", None)) == \
        "q.wav: the recording is silent (or a constant offset)"  # a record without its words
    hum = "x.wav: a hum"  # another file's name: the note is kept whole
    assert no_speech_skip("q.wav", _no_speech("bogus", None, (hum,))) == \
        f"q.wav: no speech; {hum}"


def test_a_real_silent_clips_near_silence_note_is_left_out(tmp_path: Path) -> None:
    path = tmp_path / "faint.wav"
    sf.write(path, noise(1.0, amp=1e-4), SR, subtype="PCM_16")
    notes = tuple(load_audio(path).notes)
    assert any("record closer" in n for n in notes)
    said = no_speech_skip("faint.wav", _no_speech("silence", "the recording is silent", notes))
    assert said == "faint.wav: the recording is silent"


def test_clips_from_several_folders_are_said() -> None:
    assert folders_warning([Path("r/a.wav"), Path("r/b.wav")]) is None
    assert folders_warning([]) is None
    files = [Path("r/z/a.wav"), Path("r/a.wav"), Path("r/b/c.wav"), Path("r/b/d.wav")]
    assert folders_warning(files) == ("the reference clips come from 3 folders (e.g. r, r/b): "
                                      "they are taken as one speaker's")
    assert folders_warning(files[:2]) == ("the reference clips come from 2 folders (e.g. r, "
                                          "r/z): they are taken as one speaker's")


def test_folders_are_named_as_other_paths_are() -> None:
    """A folder name that is not UTF-8 is written with backslash escapes, as every path
    emovox shows (``str`` kept the surrogate, which cannot be printed or written as JSON)."""
    odd = Path(os.fsdecode(b"r/caf\xe9"))
    said = folders_warning([Path("r/a.wav"), odd / "b.wav"])
    assert said is not None and "(e.g. r, r/caf\\xe9)" in said
    said.encode("utf-8")  # no surrogate left
