"""``predict --truth`` (what ``make demo`` runs): the true label of RAVDESS-named files beside
the prediction, read from the file name, and the note that the model heard those actors."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import invoke, text

from emovox.cli.truth import truth_report
from emovox.serving.answer import Status
from emovox.serving.batch import FileOutcome
from emovox.serving.predictor import Prediction


def _outcome(name: str, label: str | None, silent: bool = False) -> FileOutcome:
    if label is None:
        return FileOutcome(Path("/x") / name, error="not audio")
    if silent:
        p = Prediction(label=None, confidence=None, probabilities=None, arousal=None,
                       valence=None, duration=3.0, source=name, status=Status.NO_SPEECH)
    else:
        p = Prediction(label=label, confidence=0.5, probabilities={label: 0.5}, arousal=0.0,
                       valence=0.0, duration=3.0, source=name)
    return FileOutcome(Path("/x") / name, p)


def test_truth_report_reads_the_label_from_the_name():
    outcomes = [
        _outcome("03-01-05-02-01-01-04.wav", "angry"),  # angry, actor 04: right
        _outcome("03-01-04-02-02-02-13.wav", "happy"),  # sad, actor 13: wrong
        _outcome("03-01-01-01-01-01-01.wav", "neutral", silent=True),  # no speech
        _outcome("03-01-02-01-01-01-02.wav", None),  # failed: no answer
        _outcome("tts_kids.wav", "sad"),  # not a RAVDESS name
    ]
    rep = truth_report(outcomes, {"speakers": ["ravdess:04", "ravdess:13", "ravdess:20"]})
    got = [(r.truth, r.predicted, r.correct) for r in rep.rows]
    assert got == [("angry", "angry", True), ("sad", "happy", False),
                   ("neutral", "no speech", False), ("calm", None, None), (None, "sad", None)]
    assert rep.training_speakers == ["ravdess:04", "ravdess:13"]
    assert len(rep.scored) == 3
    assert truth_report(outcomes, {"speakers": ["ravdess:20"]}).training_speakers == []
    assert truth_report(outcomes, None).training_speakers == []
    assert rep.speakers_known and not truth_report(outcomes, None).speakers_known


def test_truth_of_a_model_without_its_training_speakers_says_so(capsys):
    """A model that records no training speakers (a CV fold model) got no note at all, as if
    its score were on new voices (own-data QA, stop 33)."""
    from emovox.cli import render

    outcomes = [_outcome("03-01-05-02-01-01-04.wav", "angry")]
    render.truth(truth_report(outcomes, {"clips": 12}))
    out = capsys.readouterr().out
    said = "which speakers this model was trained on is not known"
    assert "1 of 1 right" in out and said in " ".join(out.split())
    render.truth(truth_report(outcomes, {"speakers": ["ravdess:05"]}))
    assert "is not known" not in capsys.readouterr().out
    render.truth(truth_report(outcomes, {"speakers": ["folder:unknown"]}))  # re-check
    assert said in " ".join(capsys.readouterr().out.split())


@pytest.fixture(scope="module")
def four_clips(fake_ravdess) -> list[Path]:
    return sorted((fake_ravdess / "Actor_02").glob("*.wav"))[:4]


def test_predict_truth_with_the_bundled_model(four_clips):
    res = invoke(["predict", *four_clips, "--truth"])
    assert res.exit_code == 0, res.output
    msg = text(res)
    assert "true label (from the RAVDESS file name) vs prediction" in msg
    truth_table = res.output[res.output.index("true label"):]
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in truth_table.splitlines()
             if line.count("│") == 5]
    emotions = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
    assert {c[0]: c[1] for c in cells} == {
        clip.name: emotions[int(clip.name.split("-")[2]) - 1] for clip in four_clips}
    assert all(c[3] == ("✓" if c[1] == c[2] else "✗") for c in cells)
    assert "of 4 right" in msg
    # the bundled model was trained on all 24 RAVDESS actors, so actor 02 was heard
    assert "actor(s) 02 are among the speakers this model was trained on" in msg
    assert "NOT the accuracy on new voices" in msg
    plain = invoke(["predict", *four_clips])
    assert plain.exit_code == 0 and "true label" not in text(plain)


def test_truth_and_json_are_refused_together(four_clips):
    res = invoke(["predict", four_clips[0], "--truth", "--json"])
    assert res.exit_code == 2 and "cannot be combined with --json" in text(res)
