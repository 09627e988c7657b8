"""The research commands' messages (review, stop 52): option values worded like the other
options' errors, ``train`` told nothing about folds it has none of, and no library warning
on the console."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from cli_helpers import invoke, ok, text


@pytest.fixture(scope="module")
def four_emotions(tmp_path_factory, ravdess_maker) -> Path:
    """4 actors x 4 of the 8 emotions (neutral, happy, sad, angry) x 2 repetitions."""
    root = ravdess_maker(tmp_path_factory.mktemp("four"), actors=(1, 2, 3, 4))
    for clip in root.glob("Actor_*/03-01-0[2678]-*.wav"):
        clip.unlink()
    return root


def test_folds_that_are_not_numbers_are_worded_like_weights(tmp_path):
    res = invoke(["evaluate", "--data", tmp_path, "--model", "mlp", "--folds", "a"])
    ok(res, 2)
    assert "--folds: fold numbers separated by commas, e.g. 0,1,2 (got 'a')" in text(res)
    assert "invalid literal" not in res.output


def test_train_is_told_of_its_training_speakers_not_of_a_fold(four_emotions, tmp_path,
                                                                 monkeypatch):
    monkeypatch.setenv("EMOVOX_CACHE", str(tmp_path / "cache"))
    res = invoke(["train", "--data", four_emotions, "--model", "mlp", "-p", "epochs=1",
                  "-j", "1", "--val-speakers", "4", "-o", tmp_path / "m"])
    ok(res, 2)
    assert ("cannot hold out 4 validation speakers from 4 training speakers: give "
            "--val-speakers 3 or fewer") in text(res)
    assert "fold" not in res.output


def test_validation_on_fewer_emotions_warns_nothing(four_emotions, tmp_path, monkeypatch):
    """scikit-learn's "y_pred contains classes not in y_true" reached stderr, with its path."""
    monkeypatch.setenv("EMOVOX_CACHE", str(tmp_path / "cache"))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        res = invoke(["train", "--data", four_emotions, "--model", "mlp", "-p", "epochs=3",
                      "-j", "1", "--val-speakers", "2", "-o", tmp_path / "m"])
    ok(res)
    assert not [w for w in seen if "not in y_true" in str(w.message)]
    assert "UserWarning" not in res.output
