"""``emovox predict --reference DIR`` with symbolic links in the folder, and file names that
hold a line end (code review, stop 54): the links were logged in ``batch``'s words ("each
answered under its resolved path", "gets an error row instead") and never reached the
answer's ``adaptation.warnings``; the footer's "not adapted" line split at a name's line end.
A fake predictor answers by file name (no model), over fake clips in tmp_path."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import invoke, ok, text

from emovox.labels import LABELS
from emovox.serving import predictor as predictor_mod
from emovox.serving.answer import Prediction, Status

C = len(LABELS)


class _Fake:
    """By file name: a missing file (a link to nothing) -> an error, 'silent*' ->
    no_speech, 'cK*' -> mostly class K."""

    labels = LABELS
    model_id = "fake-1"

    def predict_file(self, path: Path, *, max_duration: float | None = None,
                     filename: str | None = None) -> Prediction:
        name = Path(path).resolve().name  # a link: the clip it links to
        if not Path(path).exists():
            raise FileNotFoundError(f"{path}: a symbolic link to nothing")
        if name.startswith("silent"):
            return Prediction(None, None, None, None, None, 1.0, str(path), Status.NO_SPEECH,
                              reason="silence", speech_seconds=0.0)
        k = int(name[1]) % C
        p = np.full(C, 0.4 / (C - 1))
        p[k] = 0.6
        return Prediction(LABELS[k], 0.6, dict(zip(LABELS, map(float, p), strict=True)),
                          0.0, 0.0, 1.0, str(path), Status.OK, speech_seconds=1.0,
                          n_windows=1)


@pytest.fixture()
def fake(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(predictor_mod.Predictor, "from_artifact",
                        classmethod(lambda cls, *a, **k: _Fake()))


def _clip(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF" + path.name.encode())  # each clip's own bytes
    return path


def test_links_in_a_reference_folder_are_said_in_a_references_words(tmp_path: Path,
                                                                     fake: None) -> None:
    """The review's folder: 3 clips, a link to nothing with an audio name, and a link to a
    folder of more clips beside it; and a link to nothing of another name."""
    ref, other = tmp_path / "ref", tmp_path / "other"
    for i in range(3):
        _clip(ref / f"c{i}.wav")
    _clip(other / "c3.wav")
    os.symlink("/nowhere", ref / "gone.wav")
    os.symlink("../other", ref / "more")
    os.symlink("/nowhere", ref / "notes")
    target = _clip(tmp_path / "c4.wav")
    res = invoke(["predict", target, "--reference", ref, "--json"])
    ok(res)
    warnings = json.loads(res.stdout)["adaptation"]["warnings"]
    assert warnings[:2] == [
        f"1 folder link(s) followed in the reference folder (e.g. {ref / 'more'} -> "
        f"{other.resolve()}): their clips are taken as the same speaker's",
        f"1 symbolic link(s) to nothing in the reference folder skipped (e.g. {ref / 'notes'}"
        " -> /nowhere, which does not exist)"]
    assert any(w.startswith("reference clip skipped: gone.wav: ") for w in warnings)
    for batch_words in ("answered under", "error row", "each answered"):
        assert batch_words not in text(res), text(res)
    log = " ".join(res.stderr.split())
    assert all(log.count(w) == 1 for w in warnings[:2])  # logged once, as the JSON says


def test_a_reference_folder_reached_again_and_a_clip_linked_twice_are_said(
        tmp_path: Path, fake: None) -> None:
    from emovox.serving.adapt import reference_prior

    ref = tmp_path / "ref"
    for i in range(3):
        _clip(ref / "sub" / f"c{i}.wav")
    far = _clip(tmp_path / "far" / "c5.wav")
    os.symlink(ref, ref / "sub" / "loop")
    os.symlink(ref / "sub" / "c0.wav", ref / "a.wav")  # a clip of the folder, twice
    os.symlink(far, ref / "ext.wav")  # a clip from out of the folder
    notes = reference_prior(_Fake(), ref).warnings
    assert (f"1 folder(s) reached again through a folder link in the reference folder (e.g. "
            f"{ref / 'sub' / 'loop'} is {ref.resolve()}): not read again, so each clip counts "
            "once") in notes
    assert (f"1 clip(s) of the reference folder reached a second way (a link; e.g. "
            f"{ref / 'sub' / 'c0.wav'} and {ref / 'a.wav'} are one clip): each counts once"
            ) in notes
    assert (f"1 clip(s) in the reference folder are links to files out of it (e.g. "
            f"{ref / 'ext.wav'} -> {far.resolve()}): each is used, as the same speaker's"
            ) in notes


def test_the_footer_keeps_a_name_with_a_line_end_on_one_line(tmp_path: Path,
                                                              fake: None) -> None:
    """Written ``\\x0a``, as in the table (the footer split the line there)."""
    ref = tmp_path / "re\nf"
    for i in range(3):
        _clip(ref / f"c{i}.wav")
    silent, clip = _clip(tmp_path / "silent\nclip.wav"), _clip(tmp_path / "c1.wav")
    res = invoke(["predict", silent, clip, "--reference", ref])
    ok(res)
    lines = res.stdout.splitlines()
    footer = [ln for ln in lines if ln.startswith("not adapted to speaker")]
    assert footer == [f"not adapted to speaker (3 clips in {tmp_path}/re\\x0af): "
                      "silent\\x0aclip.wav (the clip holds no speech: nothing to adapt)"]
    adapted = [ln for ln in lines if ln.startswith("adapted to speaker")]
    assert len(adapted) == 1 and f"(3 clips in {tmp_path}/re\\x0af)" in adapted[0]


def test_other_files_in_a_reference_folder_are_not_used_not_unread(tmp_path: Path,
                                                                    fake: None) -> None:
    """batch's "N other file(s) not read" was logged for a reference folder (review, stop
    54); a reference's words, in the answer's adaptation warnings too."""
    ref = tmp_path / "ref"
    for i in range(3):
        _clip(ref / f"c{i}.wav")
    (ref / "notes.txt").write_text("take 2 was better")
    (ref / "cover.jpg").write_bytes(b"\xff\xd8")
    res = invoke(["predict", _clip(tmp_path / "c4.wav"), "--reference", ref, "--json"])
    ok(res)
    said = ("2 other file(s) in the reference folder not used, by their names (e.g. "
            "cover.jpg, notes.txt): a reference clip needs an audio extension (.wav, .flac, "
            ".mp3, .m4a, .ogg, .opus, ...)")
    assert said in json.loads(res.stdout)["adaptation"]["warnings"]
    assert "not read" not in text(res)
    assert " ".join(res.stderr.split()).count(said) == 1
