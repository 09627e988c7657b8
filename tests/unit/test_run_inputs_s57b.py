"""Run folders after the second review of stop 57: ``evaluate --artifact`` may write its run
inside the corpus it reads (``evaluate --artifact bundled --data .`` with no --out was
refused) and names the default folder as such; no --out anywhere inside another run (only
the direct children of its models/ were refused); a part of a merged run that two places
hold is the one whose rows are the merged run's (an old merge read the wrong ones from the
folder it ran in; a merged run moved alone read its new neighbours'); ``fuse`` finds a
merge's parts as ``rescore`` does (two merges sharing a part, fused from another folder,
weighed it twice); a student's run never lies inside or holds a teacher."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from test_run_inputs_s57 import _as_before, _found

from cli_io import invoke
from emovox.config import DataConfig, ExperimentConfig, ModelConfig
from emovox.errors import ConfigError
from emovox.experiment import crosscorpus, rescore, runner
from emovox.experiment.fuse import fuse_runs, merge_runs
from emovox.experiment.recipe import combined_from
from emovox.experiment.rundest import check_run_destination
from emovox.experiment.rundir import RunDirError, merged_parts, read_metrics, saved_fold_model
from emovox.labels import LABELS
from emovox.serving.predictor import Predictor
from run_variants import another_run, one_fold_run


@pytest.fixture(autouse=True)
def _no_plots(monkeypatch) -> None:
    """No run's plots drawn: which folders are read and written is tested, not the plots."""
    import emovox.plots

    for name in ("plot_confusion", "plot_recall"):
        monkeypatch.setattr(emovox.plots, name, lambda *args: None)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def _parts(where: Path, mix: float = 0.0) -> list[Path]:
    """``where/parts/p0`` and ``p1``: runs of folds 0 and 1 with their fold models; ``mix``:
    their probabilities blended so (:func:`~run_variants.another_run`), the runs of
    another experiment over the same clips."""
    out = []
    for k in (0, 1):
        run = one_fold_run(where / "parts", f"p{k}", k, models=True, adapt="none")
        if mix:
            shutil.move(run, run.with_name("tmp"))
            another_run(run.with_name("tmp"), run, mix)
            shutil.rmtree(run.with_name("tmp"))
        out.append(run.resolve())
    return out


# -- 1. evaluate --artifact inside its corpus; the default folder named as such --------------


@pytest.fixture
def fake_model(monkeypatch) -> None:
    """``Predictor.from_artifact`` answering every clip alike (no model read)."""

    def load(artifact, backend="auto"):
        meta = SimpleNamespace(labels=list(LABELS), unseen_labels=lambda: [], trained_on=None)
        return SimpleNamespace(
            labels=list(LABELS), model_id="fake", artifact_meta=meta,
            clip_probabilities=lambda path: np.linspace(1.0, 2.0, len(LABELS)))

    monkeypatch.setattr(Predictor, "from_artifact", staticmethod(load))


def test_evaluate_artifact_runs_from_inside_its_corpus(tmp_path, monkeypatch, ravdess_maker,
                                                      fake_model):
    """`evaluate --artifact bundled --data .` in the corpus folder, no --out: refused, "--out
    runs/crosscorpus-... lies inside the corpus"; the cross-validation `evaluate --data .`
    works there."""
    rav = ravdess_maker(tmp_path / "rav", actors=(1,))
    before = _files(rav)
    monkeypatch.chdir(rav)
    res = invoke(["evaluate", "--artifact", "bundled", "--data", "."])
    assert res.exit_code == 0, res.output
    (run,) = (rav / "runs").iterdir()
    assert re.fullmatch(r"crosscorpus-ravdess-\d{8}-\d{6}", run.name)
    assert json.loads((run / "metrics.json").read_text())["n_files"] == 16
    assert {k: v for k, v in _files(rav).items() if not k.startswith("runs/")} == before
    inside = crosscorpus.evaluate_artifact(None, "ravdess", rav, rav / "Actor_01" / "cc")
    assert inside.n_files == 16  # an --out inside the corpus: written, nothing replaced
    for out, how in ((rav, "is"), (tmp_path, "holds")):  # its replacement would delete it
        with pytest.raises(ConfigError, match=rf"^--out {re.escape(str(out))} {how} the "
                           rf"corpus {re.escape(str(rav))} \(--data\): the run folder would "
                           "replace it whole"):
            crosscorpus.evaluate_artifact(None, "ravdess", rav, out)


def test_the_default_folder_is_not_called_an_out_the_user_gave(tmp_path, monkeypatch,
                                                               ravdess_maker, fake_model):
    """In a model folder, `evaluate --artifact .` with no --out said "--out runs/crosscorpus-...
    lies inside the model folder"."""
    rav = ravdess_maker(tmp_path / "rav", actors=(1,))
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.json").write_text("{}")
    monkeypatch.chdir(model)
    said = (r"^the default run folder runs/crosscorpus-ravdess-\d{8}-\d{6} \(no --out "
            r"given\) lies inside the model folder \.: .*; give --out another folder$")
    with pytest.raises(ConfigError, match=said):
        crosscorpus.evaluate_artifact(Path("."), "ravdess", rav, None)
    res = invoke(["evaluate", "--artifact", ".", "--data", rav])
    assert res.exit_code == 2 and "the default run folder runs/crosscorpus-" in res.output
    assert "--out runs" not in res.output
    assert sorted(p.name for p in model.iterdir()) == ["model.json"]


# -- 2. no --out anywhere inside another run ----------------------------------------------------


def _left_unfinished(run: Path) -> Path:
    """A run an older version left unfinished: its config.yaml and a fold model folder."""
    (run / "models" / "fold0").mkdir(parents=True)
    ExperimentConfig(data=DataConfig(root="/r"), model=ModelConfig("crnn")
                     ).save_yaml(run / "config.yaml")
    return run


def test_no_out_anywhere_inside_another_run(tmp_path):
    """`fuse a b --out RUN/models/fold0/fused` (or RUN/models/x/fused) was written, and RUN
    was then no run folder emovox would replace."""
    runs = tmp_path / "runs"
    a = one_fold_run(runs, "a", 0)
    b = another_run(a, runs / "b")
    run = one_fold_run(tmp_path, "run", 0, models=True)
    old = _left_unfinished(tmp_path / "old")
    before = {r: _files(r) for r in (run, old)}
    for out, said in ((run / "models" / "fold0" / "fused", "is in the models/ folder of "),
                      (run / "models" / "x" / "fused", "is in the models/ folder of "),
                      (run / "models", "lies inside the run folder "),
                      (run / "notes" / "fused", "lies inside the run folder "),
                      (old / "models" / "fold0" / "x", "is in the models/ folder of "),
                      (old / "sub", "lies inside the run folder ")):
        owner = run if out.is_relative_to(run) else old
        want = re.escape(f"{out} {said}") + r"(the run )?" + re.escape(str(owner))
        with pytest.raises(RunDirError, match=want):
            fuse_runs([a, b], out)
        with pytest.raises(RunDirError, match=want):  # evaluate's and evaluate --artifact's
            check_run_destination(out)
        with pytest.raises(RunDirError, match=want):
            crosscorpus.check_cross_corpus_destination(out)
    assert {r: _files(r) for r in (run, old)} == before
    check_run_destination(run)  # still a run folder emovox may replace
    for _ in range(2):  # beside its inputs, and over its own earlier output: as before
        assert fuse_runs([a, b], runs / "fused")["pooled"]["n"] == 2
    parts = [one_fold_run(runs, f"p{k}", k) for k in (0, 1)]
    for _ in range(2):
        assert merge_runs(parts, runs / "merged")["pooled"]["n"] == 4


def test_another_tools_metrics_files_make_no_run(tmp_path):
    """A project folder holding another tool's metrics.json and predictions.csv is no run:
    a check by file names alone refused every --out below it, evaluate's default runs/...
    among them (review, stop 57)."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "metrics.json").write_text(json.dumps({"accuracy": 0.9}))
    (project / "predictions.csv").write_text("id,label\n1,cat\n")
    for out in (project / "runs" / "x", project / "models" / "fold0" / "y"):
        check_run_destination(out)  # not refused
    assert sorted(p.name for p in project.iterdir()) == ["metrics.json", "predictions.csv"]


# -- 3, 4. a part two places hold: the one whose rows are the merged run's -------------------


def test_an_old_merge_read_from_its_folder_reads_its_own_parts(tmp_path, monkeypatch):
    """A run merged before stop 57, read from the folder the merge ran in: the parts below
    the merged run's folders (another experiment's, of the same names) were read."""
    want = _parts(tmp_path)
    theirs = _parts(tmp_path / "exp2", mix=0.05)
    monkeypatch.chdir(tmp_path)
    merge_runs([Path("parts/p0"), Path("parts/p1")], Path("exp2/m"))
    _as_before(tmp_path / "exp2" / "m")
    assert _found(Path("exp2/m")) == want
    assert saved_fold_model(Path("exp2/m"), 1).resolve() == want[1] / "models" / "fold1"
    for p in theirs:  # copies (an experiment copied whole): either is the part; the first
        shutil.rmtree(p)
        shutil.copytree(tmp_path / "parts" / p.name, p)
    assert _found(Path("exp2/m")) == theirs


def test_an_old_merge_whose_part_neither_place_holds_is_refused(tmp_path, monkeypatch):
    _parts(tmp_path)
    _parts(tmp_path / "exp2", mix=0.05)
    monkeypatch.chdir(tmp_path)
    merge_runs([Path("parts/p0"), Path("parts/p1")], Path("exp2/m"))
    _as_before(tmp_path / "exp2" / "m")
    mine = tmp_path / "parts" / "p0"
    shutil.move(mine, tmp_path / "x")
    another_run(tmp_path / "x", mine, 0.2)  # re-run since the merge: other answers
    with pytest.raises(RunDirError, match=re.escape(
            f"exp2/m was merged from parts/p0, found at both {tmp_path.resolve()}/exp2/parts/p0 "
            "and "
            "parts/p0; neither holds the rows exp2/m has for its folds (re-run or edited "
            "since the merge?), so which is the part cannot be told: move away the one")):
        merged_parts(Path("exp2/m"), read_metrics(Path("exp2/m")))
    assert not combined_from(Path("exp2/m")) & {(tmp_path / "exp2" / "parts" / "p0").resolve(),
                                                mine.resolve()}  # not counted, as before


def test_a_merged_run_moved_alone_reads_its_own_parts(tmp_path, monkeypatch):
    """`merge` recorded its parts relative to the merged run: moved alone next to runs of
    the parts' names, it read those."""
    exp1, exp2 = tmp_path / "exp1", tmp_path / "exp2"
    _parts(exp1, mix=0.05)
    want = _parts(exp2)
    monkeypatch.chdir(exp2)
    merge_runs([Path("parts/p0"), Path("parts/p1")], Path("m"))
    shutil.move(exp2 / "m", exp1 / "m")
    monkeypatch.chdir(tmp_path)
    assert _found(exp1 / "m") == want
    read: list[Path] = []

    def answer(run, fold, rows, cols, speeds):
        read.append(saved_fold_model(run, fold).resolve())
        return np.array([r.proba for r in rows]), 0.0

    monkeypatch.setattr(rescore, "_fold_probabilities", answer)
    rescore.rescore_run(exp1 / "m", exp1 / "tta", speeds=[0.9, 1.1])
    assert read == [p / "models" / f"fold{k}" for k, p in enumerate(want)]


def test_a_rescored_merge_moved_alone_is_told_by_its_clips(tmp_path, monkeypatch):
    """A rescored run's probabilities are not its parts': its parts are told by the clips
    of their folds; two places with those clips and other answers cannot be told."""
    exp1, exp2 = tmp_path / "exp1", tmp_path / "exp2"
    others = _parts(exp1, mix=0.05)
    want = _parts(exp2)
    monkeypatch.chdir(exp2)
    merge_runs([Path("parts/p0"), Path("parts/p1")], Path("m"))
    monkeypatch.setattr(rescore, "_fold_probabilities", lambda run, fold, rows, cols, speeds: (
        np.array([(np.array(r.proba) + 0.1) / 1.8 for r in rows]), 0.0))
    rescore.rescore_run(Path("m"), Path("tta"), speeds=[0.9, 1.1])
    shutil.move(exp2 / "tta", exp1 / "tta")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RunDirError, match="was rescored .* both hold the clips of its folds, "
                       "with different probabilities, so which is the part cannot be told"):
        merged_parts(exp1 / "tta", read_metrics(exp1 / "tta"))
    for p in others:  # exp1's runs of those names are of other clips: told apart
        text = (p / "predictions.csv").read_text()
        (p / "predictions.csv").write_text(text.replace("/c/", "/other/"))
    assert _found(exp1 / "tta") == want


# -- 5. fuse: a part shared by two merges, fused from another folder ----------------------


def test_two_merges_sharing_a_part_are_refused_from_any_folder(tmp_path, monkeypatch):
    """`fuse exp2/m1 exp2/m2`, run from exp1 (which holds parts of the same names), was
    accepted: p0 weighed twice."""
    exp1, exp2 = tmp_path / "exp1", tmp_path / "exp2"
    _parts(exp1)
    p0, p1 = _parts(exp2)
    another_run(p1, exp2 / "parts" / "p1b")
    monkeypatch.chdir(exp2)
    merge_runs([Path("parts/p0"), Path("parts/p1")], Path("m1"))
    merge_runs([Path("parts/p0"), Path("parts/p1b")], Path("m2"))
    for here in (exp2, exp1):
        monkeypatch.chdir(here)
        assert combined_from(exp2 / "m1") == {p0, p1}
        with pytest.raises(ConfigError, match=re.escape(
                f"{exp2 / 'm1'} and {exp2 / 'm2'} were both combined from {p0}: it would be "
                "weighed twice")):
            fuse_runs([exp2 / "m1", exp2 / "m2"], tmp_path / "f")
    assert not (tmp_path / "f").exists()


# -- 6. a student's run never inside nor around a teacher -----------------------------------


def test_a_student_run_never_lies_inside_or_holds_a_teacher(tmp_path):
    """`evaluate --teacher T --out T/sub` was accepted (only equality was compared)."""
    teacher = tmp_path / "runs" / "t"
    for out, how in ((teacher, "is"), (teacher / "sub", "lies inside"),
                     (tmp_path / "runs", "holds")):
        with pytest.raises(ConfigError, match=re.escape(
                f"--out {out} {how} a teacher run ({teacher}, or a part of one): the "
                "student's run would replace it")):
            runner._not_a_teacher(out, [str(teacher)])
    runner._not_a_teacher(tmp_path / "runs" / "student", [str(teacher)])  # beside: fine
