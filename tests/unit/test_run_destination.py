"""Research commands never replace what emovox did not write, nor the runs they read
(a QA pass of the research CLI): run folders holding foreign files, --out among the inputs,
non-finite weights, malformed run records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_switch_member import one_hot_run

from emovox.errors import ConfigError
from emovox.experiment.fuse import fuse_runs, merge_runs
from emovox.experiment.rundest import check_run_destination
from emovox.experiment.rundir import RunDirError, read_run


def test_a_run_folder_with_foreign_files_is_not_replaced(tmp_path):
    run = one_hot_run(tmp_path, "r", ["angry"] * 4, "m")
    check_run_destination(run)  # a run folder as emovox writes it: replaceable
    (run / "history_fold0.json").write_text("{}")
    (run / "curves_fold0.png").write_bytes(b"x")
    (run / "models").mkdir()
    check_run_destination(run)
    (run / "notes.txt").write_text("mine")
    with pytest.raises(RunDirError, match="also holds notes.txt"):
        check_run_destination(run)
    (run / "notes.txt").unlink()
    (run / "metrics.json.bak").mkdir()  # a folder where emovox writes none
    with pytest.raises(RunDirError, match="metrics.json.bak"):
        check_run_destination(run)


def test_out_among_the_inputs_is_refused_and_left_alone(tmp_path):
    a = one_hot_run(tmp_path, "a", ["angry"] * 4, "m")
    b = one_hot_run(tmp_path, "b", ["sad"] * 4, "m")
    before = (a / "metrics.json").read_text()
    for combine in (lambda: fuse_runs([a, b], a), lambda: merge_runs([a, b], tmp_path / "a")):
        with pytest.raises(ConfigError, match="one of the runs being combined"):
            combine()
        assert (a / "metrics.json").read_text() == before


@pytest.mark.parametrize("weights", [[float("nan"), 1.0], [float("inf"), 1.0], [-1.0, 2.0],
                                     [0.0, 1.0]])
def test_weights_must_be_finite_and_positive(tmp_path, weights):
    a = one_hot_run(tmp_path, "a", ["angry"] * 4, "m")
    b = one_hot_run(tmp_path, "b", ["sad"] * 4, "m")
    with pytest.raises(ConfigError, match="weight 1 .* is not a positive finite number"):
        fuse_runs([a, b], tmp_path / "f", weights)
    assert not (tmp_path / "f").exists()


def test_malformed_records_are_named_not_crashed_on(tmp_path):
    a = one_hot_run(tmp_path, "a", ["angry"] * 4, "m")
    b = one_hot_run(tmp_path, "b", ["sad"] * 4, "m")
    meta = json.loads((b / "metrics.json").read_text())
    (b / "metrics.json").write_text(json.dumps({**meta, "protocol": None}))
    with pytest.raises(RunDirError, match="not the metrics of an emovox run"):
        read_run(b)
    (b / "metrics.json").write_text(json.dumps({k: v for k, v in meta.items() if k != "folds"}))
    with pytest.raises(ConfigError, match="no fold records"):
        fuse_runs([a, b], tmp_path / "f1")
    (b / "metrics.json").write_text(json.dumps(meta))
    text = (b / "predictions.csv").read_text()
    (b / "predictions.csv").write_text(text.replace(",sad,sad,", ",bogus,sad,", 1))
    with pytest.raises(ConfigError, match="unknown label 'bogus'"):
        fuse_runs([a, b], tmp_path / "f2")


def test_a_fusion_is_adapted_as_its_adapted_member_and_two_modes_are_refused(tmp_path):
    runs = [one_hot_run(tmp_path, n, [answer] * 4, "m")  # copies are refused (stop 53)
            for n, answer in (("a", "angry"), ("b", "sad"), ("c", "happy"))]
    for run, mode in zip(runs, ("none", "corpus", "speaker"), strict=True):
        meta = json.loads((run / "metrics.json").read_text())
        (run / "metrics.json").write_text(json.dumps({**meta, "adapt": mode}))
    fuse_runs(runs[:2], tmp_path / "f")
    assert json.loads((tmp_path / "f" / "metrics.json").read_text())["adapt"] == "corpus"
    with pytest.raises(ConfigError, match=r"adapted in different ways: \['corpus', 'speaker'\]"):
        fuse_runs(runs, tmp_path / "g")
    assert not (tmp_path / "g").exists()


def test_a_project_folder_with_its_own_config_and_models_is_not_a_run(tmp_path):
    """A folder holding a config.yaml with data/model/split sections (not emovox's) and a
    models/ folder of its own was taken for an old run folder and replaced whole by
    `evaluate --out` (code review, stop 47)."""
    own = tmp_path / "project"
    (own / "models").mkdir(parents=True)
    (own / "config.yaml").write_text("data:\n  path: /data\nmodel:\n  arch: resnet50\n"
                                     "split:\n  val: 0.1\n")
    (own / "models" / "best.ckpt").write_text("weights")
    with pytest.raises(RunDirError, match="not an emovox run folder"):
        check_run_destination(own)
    run = tmp_path / "old_run"  # an emovox config.yaml (an interrupted older run) is one
    (run / "models" / "fold0").mkdir(parents=True)
    (run / "config.yaml").write_text("data:\n  corpus: ravdess\nmodel:\n  name: mlp\n"
                                     "split:\n  protocol: loso\n")
    check_run_destination(run)
    (run / "models" / "best.ckpt").write_text("weights")  # but not with a file of the user's
    with pytest.raises(RunDirError, match="not an emovox run folder"):  # (a config alone is not
        check_run_destination(run)
    (own / "config.yaml").write_text("data: {}\nmodel: {}\nsplit: {}\nseed: .inf\n")
    with pytest.raises(RunDirError, match="not an emovox run folder"):  # not a traceback
        check_run_destination(own)


def test_a_note_inside_a_fold_model_folder_or_a_lone_config_is_not_replaced(tmp_path):
    """Files nested in `models/foldK/` were deleted with the run, and a folder holding only
    the user's own emovox config.yaml was taken for a run (code review, stop 48)."""
    run = one_hot_run(tmp_path, "r", ["angry"] * 4, "m")
    (run / "models" / "fold0").mkdir(parents=True)
    (run / "models" / "fold0" / "model.json").write_text("{}")
    check_run_destination(run)
    (run / "models" / "fold0" / "my_notes.txt").write_text("mine")
    with pytest.raises(RunDirError, match="also holds models"):
        check_run_destination(run)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "config.yaml").write_text("# my recipe\ndata:\n  corpus: ravdess\nmodel:\n"
                                      "  name: mlp\nsplit:\n  protocol: loso\n")
    with pytest.raises(RunDirError, match="not an emovox run folder"):
        check_run_destination(mine)
    (mine / "history_fold0.json").write_text("{}")  # an interrupted older run's
    check_run_destination(mine)


def test_a_destination_spoiled_while_the_run_worked_keeps_the_finished_run(tmp_path):
    """A --cache-dir inside --out made the last check refuse, and the finished run was
    deleted with its stage (code review, stop 48)."""
    from emovox.experiment.rundest import staged_run_dir

    out = tmp_path / "x"
    with pytest.raises(RunDirError, match="the finished run is in") as err:
        with staged_run_dir(out) as stage:
            (stage / "metrics.json").write_text('{"protocol": "loso"}')
            (out / "cache").mkdir(parents=True)  # what the feature cache made meanwhile
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("x.unsaved-")]
    assert len(kept) == 1 and str(kept[0]) in str(err.value)
    assert (kept[0] / "metrics.json").read_text() == '{"protocol": "loso"}'


def test_out_dot_is_the_current_folder_not_a_stage_inside_it(tmp_path, monkeypatch):
    """`--out .` staged the run inside the destination and refused it after it finished;
    replacing the current folder would leave the shell in a deleted one: refused at once."""
    from emovox.experiment.rundest import staged_run_dir

    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    for out in (Path("."), Path(".."), empty):
        with pytest.raises(RunDirError, match="is the current folder or holds it"):
            with staged_run_dir(out):
                raise AssertionError("refused before the run")
    assert list(tmp_path.iterdir()) == [empty] and not list(empty.iterdir())


def test_a_swap_interrupted_between_its_renames_loses_nothing(tmp_path, monkeypatch,
                                                              python_sigint):
    """Ctrl-C between the two renames deleted the new run and left the old one to be
    removed as stale; a SIGKILL there left both to be removed (code review, stop 48)."""
    import os
    import signal

    from emovox.fileio import remove_stale, swap_folder

    out, stage = tmp_path / "run", tmp_path / ".run.staging-1-ab"
    out.mkdir()
    (out / "v").write_text("old")
    stage.mkdir()
    (stage / "v").write_text("new")
    real = os.rename

    def rename_then_interrupt(a, b):
        real(a, b)
        if str(b).startswith(str(tmp_path / ".run.old-")):
            os.kill(os.getpid(), signal.SIGINT)  # held until both renames are done

    monkeypatch.setattr(os, "rename", rename_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        swap_folder(stage, out)
    monkeypatch.setattr(os, "rename", real)
    assert (out / "v").read_text() == "new" and not stage.exists()
    # a process killed right after moving the old folder away: it is put back
    dead = tmp_path / ".run.old-999999999-ab"
    os.rename(out, dead)
    remove_stale(tmp_path, "run")  # alone, it may be a folder the user removed: not back
    assert not out.exists() and not dead.exists()
    out.mkdir()
    (out / "v").write_text("new")
    os.rename(out, dead)
    (tmp_path / ".run.staging-999999999-cd").mkdir()  # what a killed swap leaves beside it
    remove_stale(tmp_path, "run")
    assert (out / "v").read_text() == "new" and not dead.exists()


def test_a_swap_whose_second_rename_fails_puts_the_old_folder_back(tmp_path, monkeypatch):
    """A read-only stage (0555, the replaced folder's bits) could not be moved, and the old
    folder, already renamed away, was left under a hidden name (diff review, stop 48)."""
    import os

    from emovox.fileio import swap_folder

    out, stage = tmp_path / "m", tmp_path / ".m.build-1-ab"
    out.mkdir()
    (out / "v").write_text("old")
    stage.mkdir()
    real = os.rename

    def refuse_the_stage(a, b):
        if str(a) == str(stage):
            raise PermissionError(13, "Permission denied")
        real(a, b)

    monkeypatch.setattr(os, "rename", refuse_the_stage)
    with pytest.raises(PermissionError):
        swap_folder(stage, out)
    assert (out / "v").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".m.build-1-ab", "m"]


def test_an_exports_claim_beside_a_fold_model_is_not_foreign(tmp_path):
    """`export` of a saved fold model claims `models/.fold1.build-PID-*`: the run could no
    longer be replaced (diff review, stop 48); a user's file there still counts."""
    run = one_hot_run(tmp_path, "r", ["angry"] * 4, "m")
    (run / "models" / "fold1").mkdir(parents=True)
    (run / "models" / ".fold1.build-4206649-abcd1234").mkdir()
    check_run_destination(run)
    (run / "models" / ".fold1.notes").mkdir()
    with pytest.raises(RunDirError, match="also holds models"):
        check_run_destination(run)
