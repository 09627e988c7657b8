"""Run folders and what is not emovox's (review, stop 57): the parts of a merged run are
found from the merged run, not from the working folder (``rescore ../exp2/m`` run from exp1
read exp1's parts of the same names); ``evaluate --artifact`` never writes into its model
folder nor over its corpus; ``fuse``, ``merge``, ``rescore`` and ``evaluate --artifact`` share one
check of an --out among their inputs; a run an older version left unfinished (config.yaml
and models/foldK, no metrics.json) is a run: its fold models are not replaced, nor is a run
written among them."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from cli_io import invoke
from emovox.artifact.dest import run_holding
from emovox.config import DataConfig, ExperimentConfig, ModelConfig
from emovox.errors import ConfigError
from emovox.experiment import crosscorpus, rescore
from emovox.experiment.fuse import fuse_runs, merge_runs
from emovox.experiment.rundest import refuse_out_among
from emovox.experiment.rundir import RunDirError, merged_parts, read_metrics, saved_fold_model
from emovox.serving.predictor import Predictor
from run_variants import another_run, one_fold_run


@pytest.fixture(autouse=True)
def _no_plots(monkeypatch) -> None:
    """No run's plots drawn: which folders are read and written is tested, not the plots."""
    import emovox.plots

    for name in ("plot_confusion", "plot_recall"):
        monkeypatch.setattr(emovox.plots, name, lambda *args: None)


def _parts(exp: Path) -> list[Path]:
    """``exp/parts/p0`` and ``p1``: runs of folds 0 and 1 with their fold models."""
    return [one_fold_run(exp / "parts", f"p{k}", k, models=True, adapt="none").resolve()
            for k in (0, 1)]


def _merged(exp: Path, monkeypatch: pytest.MonkeyPatch, out: Path = Path("m")) -> list[Path]:
    """The parts of ``exp`` merged into ``out`` from ``exp``, named relative to it (as a
    user runs it); returns the parts."""
    parts = _parts(exp)
    monkeypatch.chdir(exp)
    merge_runs([Path("parts/p0"), Path("parts/p1")], out)
    return parts


def _as_before(merged: Path) -> None:
    """``merged`` as merge wrote it before stop 57: its parts only as given."""
    m = json.loads((merged / "metrics.json").read_text())
    del m["merged_inputs"]
    (merged / "metrics.json").write_text(json.dumps(m))


def _found(merged: Path) -> list[Path]:
    return [p.resolve() for p in merged_parts(merged, read_metrics(merged))]


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


# -- 1. the parts of a merged run ----------------------------------------------------------


def test_merged_parts_are_found_from_the_merged_run_not_the_working_folder(tmp_path,
                                                                           monkeypatch):
    exp1, exp2 = tmp_path / "exp1", tmp_path / "exp2"
    _parts(exp1)  # parts of the same names where the command is run
    want = _merged(exp2, monkeypatch)
    monkeypatch.chdir(exp1)
    merged = Path("../exp2/m")
    assert _found(merged) == want
    assert saved_fold_model(merged, 1).resolve() == want[1] / "models" / "fold1"
    m = read_metrics(merged)
    assert [r["relative"] for r in m["merged_inputs"]] == ["../parts/p0", "../parts/p1"]
    assert [r["given"] for r in m["merged_inputs"]] == m["merged_runs"] == ["parts/p0",
                                                                             "parts/p1"]
    shutil.copytree(exp2, tmp_path / "exp3")  # the experiment copied: the copy's parts
    assert _found(Path("../exp3/m")) == [tmp_path / "exp3" / "parts" / f"p{k}" for k in (0, 1)]


def test_a_run_merged_before_reads_the_parts_below_it_first(tmp_path, monkeypatch):
    """A run merged before stop 57 names its parts only as merge was given them: a part
    below the merged run's folders is read, not the working folder's of that name; one
    only the working folder holds (a merge written elsewhere) is still read from there."""
    exp1, exp2 = tmp_path / "exp1", tmp_path / "exp2"
    _parts(exp1)
    want = _merged(exp2, monkeypatch)
    _as_before(exp2 / "m")
    monkeypatch.chdir(exp1)
    assert _found(Path("../exp2/m")) == want
    far = tmp_path / "far" / "m"  # merged from exp2 into a folder outside it
    monkeypatch.chdir(exp2)
    merge_runs([Path("parts/p0"), Path("parts/p1")], far)
    _as_before(far)
    assert _found(far) == want
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RunDirError, match=f"{far} was merged from parts/p0, which is not "
                       "found"):
        merged_parts(far, read_metrics(far))


def test_rescore_of_a_merged_run_from_another_folder_reads_its_parts_models(tmp_path,
                                                                           monkeypatch):
    """Exp1's fold models were read (then refused: they did not give the stored answers)."""
    exp1, exp2 = tmp_path / "exp1", tmp_path / "exp2"
    _parts(exp1)
    want = _merged(exp2, monkeypatch)
    monkeypatch.chdir(exp1)
    read: list[Path] = []

    def answer(run, fold, rows, cols, speeds):
        read.append(saved_fold_model(run, fold).resolve())
        return np.array([r.proba for r in rows]), 0.0

    monkeypatch.setattr(rescore, "_fold_probabilities", answer)
    m = rescore.rescore_run(Path("../exp2/m"), Path("tta"), speeds=[0.9, 1.1])
    assert read == [p / "models" / f"fold{k}" for k, p in enumerate(want)]
    # the rescored run names the parts from its own folder, not from the merged run's
    assert [r["relative"] for r in m["merged_inputs"]] == [
        os.path.relpath(p, exp1 / "tta") for p in want]
    assert _found(exp1 / "tta") == want


# -- 2. evaluate --artifact: never into its model folder nor over its corpus ---------------


def test_evaluate_artifact_never_writes_into_its_model_folder_or_over_its_corpus(
        tmp_path, monkeypatch, ravdess_maker):
    rav = ravdess_maker(tmp_path / "rav", actors=(1,))
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.json").write_text("{}")

    def no_load(*args, **kw):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(Predictor, "from_artifact", staticmethod(no_load))
    before = {f: _files(f) for f in (rav, model)}
    why = ": a run written there would mix emovox's output into files that are not its own"
    for out, said in (  # inside the corpus: written (test_run_inputs_s57b)
            (model / "run", f"--out {model / 'run'} lies inside the model folder {model}{why}"),
            (model, f"--out {model} is the model folder {model}{why}"),
            (rav, f"--out {rav} is the corpus {rav} (--data): the run folder would replace "
             "it whole, and the corpus with it"),
            (tmp_path, f"--out {tmp_path} holds the model folder {model}")):
        with pytest.raises(ConfigError, match=re.escape(said)):
            crosscorpus.evaluate_artifact(model, "ravdess", rav, out, workers=1)
    assert {f: _files(f) for f in (rav, model)} == before
    res = invoke(["evaluate", "--artifact", model, "--data", rav, "--out", model / "run"])
    assert res.exit_code == 2 and "lies inside the model folder" in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert {f: _files(f) for f in (rav, model)} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "rav"]


# -- 3. one check of an --out among the inputs --------------------------------------------


def test_one_check_of_an_out_among_the_inputs(tmp_path):
    a = one_fold_run(tmp_path / "runs", "a", 0)
    b = another_run(a, tmp_path / "runs" / "b")
    before = _files(tmp_path)
    for out, said in ((tmp_path / "runs", f"--out {tmp_path / 'runs'} holds {a}, one of the "
                       "runs being combined; write to another folder"),
                      (a, f"--out {a} is {a}, one of the runs being combined"),
                      (a / "x", f"--out {a / 'x'} lies inside {a}, one of the runs")):
        for combine in (fuse_runs, merge_runs):
            with pytest.raises(ConfigError, match=re.escape(said)):
                combine([a, b], out)
    assert _files(tmp_path) == before
    refuse_out_among(tmp_path / "c", [(a, "A"), (b, "B")])  # elsewhere: nothing said
    with pytest.raises(ConfigError, match=r"^--out .*runs holds B, the second; write to"):
        refuse_out_among(tmp_path / "runs", [(tmp_path / "z", "Z"), (b, "B, the second")])


# -- 4. a run an older version left unfinished ----------------------------------------------


def _unfinished(run: Path, model: Path) -> Path:
    """A run an older version left unfinished, as it wrote it in place: its config.yaml
    first, fold 0's training history and model (a copy of ``model``); no metrics.json nor
    predictions.csv (they came last)."""
    run.mkdir(parents=True)
    ExperimentConfig(data=DataConfig(root="/r"), model=ModelConfig("crnn")
                     ).save_yaml(run / "config.yaml")
    (run / "history_fold0.json").write_text("{}")
    shutil.copytree(model, run / "models" / "fold0")
    return run


def test_a_run_left_unfinished_keeps_its_fold_models(tmp_path, monkeypatch, tiny_model):
    from emovox.experiment import package
    from emovox.experiment.calibrate import calibrate_bundle

    def no_data(_cfg):
        raise AssertionError("data read")

    monkeypatch.setattr(package, "load_dataset", no_data)
    run = _unfinished(tmp_path / "old", tiny_model)
    fold = run / "models" / "fold0"
    before = _files(run)
    said = rf"{fold} is in the models/ folder of the run {run}: its fold models"
    cfg = ExperimentConfig(data=DataConfig(root=str(tmp_path / "corpus")),
                           model=ModelConfig("crnn"))
    with pytest.raises(ConfigError, match=said):
        package.train_bundle(cfg, fold, force=True)
    with pytest.raises(ConfigError, match=said):
        package.ensemble_bundle([tmp_path / "a", tmp_path / "b"], fold, force=True)
    with pytest.raises(ConfigError, match=rf"{fold} is a fold model of the run {run}"):
        calibrate_bundle(fold, tmp_path / "cv")
    a = one_fold_run(tmp_path, "a", 0)
    with pytest.raises(RunDirError, match=rf"{run / 'models' / 'fold9'} is in the models/ "
                       rf"folder of the run {run}, which holds its fold models only"):
        fuse_runs([a, another_run(a, tmp_path / "b")], run / "models" / "fold9")
    assert _files(run) == before
    assert sorted(p.name for p in (run / "models").iterdir()) == ["fold0"]
    finished = one_fold_run(tmp_path, "done", 0, models=True)  # a finished one too
    with pytest.raises(RunDirError, match="is in the models/ folder of the run"):
        fuse_runs([a, tmp_path / "b"], finished / "models" / "fold9")
    assert not (finished / "models" / "fold9").exists()


def test_only_the_shape_evaluate_leaves_is_taken_for_an_unfinished_run(tmp_path, tiny_model):
    """Not a config.yaml of another project, nor a run folder with no fold model yet, nor
    one whose metrics.json is there (finished runs are told by their files), nor today's
    staging folder (its config.yaml is written last)."""
    run = _unfinished(tmp_path / "old", tiny_model)
    assert run_holding(run / "models" / "fold3") == run
    project = tmp_path / "project"
    shutil.copytree(run, project)
    (project / "config.yaml").write_text("data: {}\nmodel: {}\nsplit: x\n")
    early = tmp_path / "early"
    shutil.copytree(run, early)
    shutil.rmtree(early / "models" / "fold0")
    (early / "models" / "notes").mkdir()
    foreign = tmp_path / "foreign"
    shutil.copytree(run, foreign)
    (foreign / "metrics.json").write_text("{}")
    stage = tmp_path / ".old.staging-1-ab"
    shutil.copytree(run, stage)
    (stage / "config.yaml").unlink()
    for folder in (project, early, foreign, stage):
        assert run_holding(folder / "models" / "fold1") is None, folder
