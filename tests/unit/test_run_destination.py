"""Research commands never replace what emovox did not write, nor the runs they read
(a QA pass of the research CLI): run folders holding foreign files, --out among the inputs,
non-finite weights, malformed run records."""

from __future__ import annotations

import json

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


@pytest.mark.parametrize("weights", [[float("nan"), 1.0], [float("inf"), 1.0], [-1.0, 2.0]])
def test_weights_must_be_finite_and_non_negative(tmp_path, weights):
    a = one_hot_run(tmp_path, "a", ["angry"] * 4, "m")
    b = one_hot_run(tmp_path, "b", ["sad"] * 4, "m")
    with pytest.raises(ConfigError, match="finite, non-negative"):
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
    runs = [one_hot_run(tmp_path, n, ["angry"] * 4, "m") for n in ("a", "b", "c")]
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
    with pytest.raises(RunDirError, match="also holds models"):
        check_run_destination(run)
    (own / "config.yaml").write_text("data: {}\nmodel: {}\nsplit: {}\nseed: .inf\n")
    with pytest.raises(RunDirError, match="not an emovox run folder"):  # not a traceback
        check_run_destination(own)
