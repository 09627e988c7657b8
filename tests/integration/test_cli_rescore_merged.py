"""``emovox rescore`` of a run made by ``emovox merge`` from parts written with
``--save-models`` (review, stop 52): the merged run keeps no models of its own, each fold's
is in the part that ran it, as ``evaluate --teacher`` already found it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cli_helpers import invoke, ok, text

from emovox.errors import ConfigError
from emovox.experiment.rundir import saved_fold_model


@pytest.fixture(scope="module")
def merged(fake_ravdess, fake_cache, tmp_path_factory) -> Path:
    """Folds 0 and 1 of a one-epoch mlp as two ``--save-models`` parts ``parts/p0`` and
    ``parts/p1``, merged into ``merged`` from their common folder (the part paths recorded
    relative to it, as a user runs it)."""
    base = tmp_path_factory.mktemp("msm")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(base)
        for k in (0, 1):
            ok(invoke(["evaluate", "--data", fake_ravdess, "--model", "mlp", "-p", "epochs=1",
                       "--folds", str(k), "--cache-dir", fake_cache, "--jobs", "1",
                       "--save-models", "--out", f"parts/p{k}"]))
        ok(invoke(["merge", "parts/p0", "parts/p1", "--out", "merged"]))
    assert not (base / "merged" / "models").exists()  # the models stay in the parts
    return base / "merged"


def test_each_fold_s_saved_model_is_found_in_the_part_that_ran_it(merged, tmp_path,
                                                                  monkeypatch):
    monkeypatch.chdir(tmp_path)  # the parts found beside the merged run, not from here
    for k in (0, 1):
        assert saved_fold_model(merged, k) == merged.parent / "parts" / f"p{k}" / "models" \
            / f"fold{k}"
    with pytest.raises(ConfigError, match="no saved model for fold 2 .*--save-models"):
        saved_fold_model(merged, 2)


def test_a_part_without_its_saved_model_is_named(merged, tmp_path):
    """A part that ran the fold but kept no model is named, not the merged run."""
    copy = tmp_path / "copy"
    shutil.copytree(merged.parent, copy)
    shutil.rmtree(copy / "parts" / "p1" / "models")
    m = json.loads((copy / "merged" / "metrics.json").read_text())
    m["merged_runs"] = [str(copy / "parts" / "p0"), str(copy / "parts" / "p1")]
    (copy / "merged" / "metrics.json").write_text(json.dumps(m))
    assert saved_fold_model(copy / "merged", 0) == copy / "parts" / "p0" / "models" / "fold0"
    with pytest.raises(ConfigError, match=r"parts/p1: no saved model for fold 1"):
        saved_fold_model(copy / "merged", 1)
    m["merged_runs"] = ["gone/p9"]
    (copy / "merged" / "metrics.json").write_text(json.dumps(m))
    with pytest.raises(ConfigError, match="was merged from gone/p9, which is not found"):
        saved_fold_model(copy / "merged", 0)


def test_rescore_of_a_merged_run_reads_each_fold_with_its_part_s_model(merged, tmp_path):
    """It said "no saved model for fold 0 (merged/models/fold0); rescoring needs a run
    written with evaluate --save-models", which was false."""
    res = invoke(["rescore", merged, "--out", tmp_path / "rescored", "--speeds", "0.9,1.1"])
    ok(res)
    m = json.loads((tmp_path / "rescored" / "metrics.json").read_text())
    assert m["speeds"] == [0.9, 1.1] and [f["index"] for f in m["folds"]] == [0, 1]
    assert "no saved model" not in text(res)
