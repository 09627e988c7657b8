"""``emovox rescore --out`` and ``evaluate --artifact --out`` after the review of stop 56:
each replaces only an earlier output of its own command (or an empty folder), never an
``evaluate`` run (its fold models, curves and history were deleted, exit 0); ``rescore``
never writes into or over the run it reads nor one of its parts (``rescore MERGED --out
PART`` deleted the fold model it had just read); and every check of ``--out`` is made
before a clip is read (a file as its parent was refused after 48 s of scoring)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from emovox.errors import ConfigError
from emovox.experiment import crosscorpus, rescore
from emovox.experiment.fuse import merge_runs
from emovox.experiment.rundir import RunDirError
from emovox.labels import LABELS
from emovox.serving.predictor import Predictor
from run_variants import one_fold_run

SPEEDS = [0.9, 1.1]


def _run(root: Path, name: str, fold: int) -> Path:
    """An ``evaluate --save-models`` run of one fold: two clips, its config, training
    history and fold model."""
    return one_fold_run(root, name, fold, models=True, adapt="none")


@pytest.fixture(autouse=True)
def _quick_plots(monkeypatch) -> None:
    """Each run's two plots as placeholder files: what is tested is which files survive."""
    import emovox.plots

    def placeholder(*args) -> None:
        Path(next(a for a in args if isinstance(a, Path))).write_bytes(b"png")

    monkeypatch.setattr(emovox.plots, "plot_confusion", placeholder)
    monkeypatch.setattr(emovox.plots, "plot_recall", placeholder)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.fixture
def scored(monkeypatch) -> list[int]:
    """Each fold's model answers as the run stored (no model read); the folds read, listed."""
    read: list[int] = []

    def answer(run, fold, rows, cols, speeds):
        read.append(fold)
        return np.array([r.proba for r in rows]), 0.0

    monkeypatch.setattr(rescore, "_fold_probabilities", answer)
    return read


# -- D1: rescore --out ---------------------------------------------------------------------

def test_rescore_never_replaces_an_evaluate_run(tmp_path, scored):
    """`rescore RUN --out OTHER` on an `evaluate --save-models` run: exit 0 and OTHER's fold
    models, curves and history deleted."""
    run, other = _run(tmp_path, "run", 0), _run(tmp_path, "other", 1)
    before = _files(other)
    with pytest.raises(RunDirError, match=rf"{other} holds a run of prosody_logreg written "
                       r"by `evaluate` \(.*models/.*\), not an earlier output of `rescore`"):
        rescore.rescore_run(run, other, speeds=SPEEDS)
    assert _files(other) == before and scored == []  # refused before any clip was read
    assert not list(tmp_path.glob(".other.*"))


def test_rescore_replaces_an_earlier_rescore_or_an_empty_folder(tmp_path, scored):
    run = _run(tmp_path, "run", 0)
    (tmp_path / "empty").mkdir()
    for out in (tmp_path / "tta", tmp_path / "tta", tmp_path / "empty"):
        m = rescore.rescore_run(run, out, speeds=SPEEDS)
        assert m["rescored_from"] == str(run) and m["speeds"] == SPEEDS
        assert json.loads((out / "metrics.json").read_text())["rescored_from"] == str(run)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "run", "tta"]


def test_rescore_of_a_merged_run_never_writes_over_or_into_a_part(tmp_path, scored,
                                                                   monkeypatch):
    """`rescore MERGED --out PART` replaced the part whose models/fold0 it had just read."""
    parts = tmp_path / "parts"
    p0, p1 = _run(parts, "p0", 0), _run(parts, "p1", 1)
    merged = tmp_path / "merged"
    merge_runs([p0, p1], merged)
    top = tmp_path / "all"  # a merge of merged runs: its parts' parts are read too
    merge_runs([merged, _run(parts, "p2", 2)], top)
    before = {p: _files(p) for p in (p0, p1, merged)}
    for run, out, said in (
            (merged, p0, rf"--out {p0} is a part of the run being rescored \({merged} was "
             rf"merged from {p0}\)"),
            (merged, p1 / "tta", rf"--out {p1 / 'tta'} lies inside a part of the run"),
            (merged, p1 / "models" / "fold1", "lies inside a part of the run"),
            (top, p0, rf"--out {p0} is a part of the run being rescored \({top} was"),
            (top, merged, "is a part of the run being rescored"),
            (merged, merged / "tta", "lies inside the run being rescored"),
            (merged, parts, rf"--out {parts} holds a part of the run being rescored")):
        with pytest.raises(ConfigError, match=said):
            rescore.rescore_run(run, out, speeds=SPEEDS)
    assert {p: _files(p) for p in (p0, p1, merged)} == before and scored == []
    assert not (p1 / "tta").exists() and not (merged / "tta").exists()
    link = tmp_path / "link"  # through a link: the part itself
    link.symlink_to(p0)
    with pytest.raises(ConfigError, match="is a part of the run being rescored"):
        rescore.rescore_run(merged, link, speeds=SPEEDS)
    monkeypatch.chdir(parts)  # a relative --out naming the part
    with pytest.raises(ConfigError, match="is a part of the run being rescored"):
        rescore.rescore_run(merged, Path("p0"), speeds=SPEEDS)
    assert _files(p0) == before[p0]
    monkeypatch.chdir(tmp_path)
    rescore.rescore_run(merged, tmp_path / "merged-tta", speeds=SPEEDS)  # elsewhere: read
    assert sorted(scored) == [0, 1]


# -- D6: every check of --out before the first clip --------------------------------------

def test_rescore_checks_its_destination_before_reading_a_clip(tmp_path, scored):
    """`rescore RUN --out user.csv/sub` was refused ("[Errno 17] File exists") only after
    the whole scoring (47.9 s of the audit's tiny run)."""
    run = _run(tmp_path, "run", 0)
    (tmp_path / "user.csv").write_text("a\n")
    with pytest.raises(OSError):
        rescore.rescore_run(run, tmp_path / "user.csv" / "sub", speeds=SPEEDS)
    assert scored == [] and (tmp_path / "user.csv").read_text() == "a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "user.csv"]


# -- D2: evaluate --artifact --out ---------------------------------------------------------

class _Loads:
    """A stand-in for ``Predictor.from_artifact``: counts the loads and answers every clip
    alike (no model is read)."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, artifact, backend="auto"):
        self.n += 1
        meta = SimpleNamespace(labels=list(LABELS), unseen_labels=lambda: [], trained_on=None)
        return SimpleNamespace(
            labels=list(LABELS), model_id="fake", artifact_meta=meta,
            clip_probabilities=lambda path: np.linspace(1.0, 2.0, len(LABELS)))


@pytest.fixture
def loads(monkeypatch) -> _Loads:
    counter = _Loads()
    monkeypatch.setattr(Predictor, "from_artifact", staticmethod(counter))
    return counter


@pytest.fixture
def rav(tmp_path, ravdess_maker) -> Path:
    return ravdess_maker(tmp_path / "rav", actors=(1,))


def _cross(rav: Path, out: Path):
    return crosscorpus.evaluate_artifact(Path("m"), "ravdess", rav, out, workers=1)


def test_evaluate_artifact_never_replaces_a_cross_validation_run(tmp_path, loads, rav,
                                                                 scored):
    """`evaluate --artifact MODEL --out CV` on a `--save-models` run: exit 0, its fold
    models, config.yaml and curves gone."""
    cv = _run(tmp_path, "cv", 0)
    before = _files(cv)
    with pytest.raises(RunDirError, match=rf"{cv} holds an emovox run of protocol loso "
                       r"\(config\.yaml, .*models/.*\), not an earlier output of `evaluate "
                       r"--artifact`"):
        _cross(rav, cv)
    assert _files(cv) == before and loads.n == 0  # refused before the model was loaded
    tta = tmp_path / "tta"  # nor a rescored run (it records no fold models, but is one)
    rescore.rescore_run(cv, tta, speeds=SPEEDS)
    with pytest.raises(RunDirError, match="not an earlier output of `evaluate --artifact`"):
        _cross(rav, tta)
    assert loads.n == 0 and json.loads((tta / "metrics.json").read_text())["rescored_from"]


def test_evaluate_artifact_replaces_its_own_earlier_output_or_an_empty_folder(
        tmp_path, loads, rav, scored):
    (tmp_path / "empty").mkdir()
    for out in (tmp_path / "cc", tmp_path / "cc", tmp_path / "empty"):
        res = _cross(rav, out)
        assert res.out_dir == out and res.n_files == 16
        m = json.loads((out / "metrics.json").read_text())
        assert m["protocol"] == "cross-corpus:ravdess" and m["n_files"] == 16
    assert loads.n == 3
    run = _run(tmp_path, "run", 0)  # and rescore does not take it for its own output
    with pytest.raises(RunDirError, match="not an earlier output of `rescore`"):
        rescore.rescore_run(run, tmp_path / "cc", speeds=SPEEDS)
    assert json.loads((tmp_path / "cc" / "metrics.json").read_text())["protocol"] == \
        "cross-corpus:ravdess"


def test_evaluate_artifact_checks_its_destination_before_loading_the_model(tmp_path, loads,
                                                                          rav):
    """`evaluate --artifact M --out user.csv/sub` was refused only after every clip was
    scored."""
    (tmp_path / "user.csv").write_text("a\n")
    with pytest.raises(OSError):
        _cross(rav, tmp_path / "user.csv" / "sub")
    assert loads.n == 0 and (tmp_path / "user.csv").read_text() == "a\n"
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("x")
    with pytest.raises(RunDirError, match="not an emovox run folder"):
        _cross(rav, tmp_path / "notes")
    assert loads.n == 0 and (tmp_path / "notes" / "mine.txt").read_text() == "x"


def test_a_run_put_at_out_while_scoring_is_not_replaced(tmp_path, loads, rav, monkeypatch):
    """Checked again once the scoring is done: a `--save-models` run copied to `--out` in
    the meantime is kept (rescore keeps its finished run beside it)."""
    cv = _run(tmp_path, "cv", 0)
    out = tmp_path / "out"

    def plant(run, fold, rows, cols, speeds):
        if not out.exists():
            shutil.copytree(cv, out)
        return np.array([r.proba for r in rows]), 0.0

    monkeypatch.setattr(rescore, "_fold_probabilities", plant)
    with pytest.raises(RunDirError, match="not an earlier output of `rescore`.*the finished "
                       "run is in"):
        rescore.rescore_run(cv, out, speeds=SPEEDS)
    assert _files(out) == _files(cv) and len(list(tmp_path.glob("out.unsaved-*"))) == 1
    shutil.rmtree(out)

    def load_then_plant(artifact, backend="auto"):
        shutil.copytree(cv, out)
        return loads(artifact, backend)

    monkeypatch.setattr(Predictor, "from_artifact", staticmethod(load_then_plant))
    with pytest.raises(RunDirError, match="not an earlier output of `evaluate --artifact`.*"
                       "the finished run is in"):
        _cross(rav, out)  # the scored output kept too (it was thrown away: review, stop 56)
    assert _files(out) == _files(cv) and loads.n == 1
    assert len(list(tmp_path.glob("out.unsaved-*"))) == 2
