"""``emovox fuse`` / ``merge`` after the review of stop 56: --out never replaces a run of
another kind nor lies inside an input, --weights are read strictly and normalised safely, a
fused run given with its own members and a copy whose clip paths were rewritten are refused,
a fusion records its inputs, malformed input records are named, and one fold shows no
spread."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_switch_member import one_hot_run

from cli_io import invoke
from emovox.errors import ConfigError
from emovox.experiment.fuse import fuse_runs, merge_runs, switch_runs
from emovox.experiment.recipe import read_also_runs
from emovox.experiment.report import collect_report, markdown_table
from emovox.experiment.rundest import check_run_destination
from emovox.experiment.rundir import RunDirError, read_predictions
from run_variants import another_run, one_fold_run


def _said(res) -> str:
    return " ".join(res.output.split())


def _two(tmp_path: Path) -> tuple[Path, Path]:
    return (one_hot_run(tmp_path, "a", ["angry", "sad", "angry", "sad"], "m"),
            one_hot_run(tmp_path, "b", ["sad"] * 4, "n"))


def _evaluate_like(run: Path) -> Path:
    """``run`` with what an ``evaluate`` run folder holds beside its results."""
    (run / "config.yaml").write_text("model: {name: m}\n")
    (run / "history_fold0.json").write_text("{}")
    (run / "models" / "fold0").mkdir(parents=True)
    (run / "models" / "fold0" / "model.json").write_text("{}")
    return run


def _as_cv_run(run: Path, **extra) -> Path:
    """``run``'s metrics with what a cross-validation run's hold besides (``report``,
    ``calibrate`` read them)."""
    meta = json.loads((run / "metrics.json").read_text())
    meta.update(summary={k: {"mean": 75.0, "std": 0.0}
                         for k in ("ua", "wa", "macro_f1", "weighted_f1")},
                pooled={}, worst_class={"label": "sad", "recall": 50.0}, **extra)
    (run / "metrics.json").write_text(json.dumps(meta))
    return run


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


# -- 1. --out: only an earlier output of the same command, never inside an input ------------

def test_fuse_and_merge_never_replace_an_evaluate_run(tmp_path):
    """`fuse A B --out X` on an evaluate run X replaced it, its config, training curves and
    fold models deleted; `merge` too."""
    a, b = _two(tmp_path)
    victim = _evaluate_like(one_hot_run(tmp_path, "victim", ["happy"] * 4, "v"))
    before = _files(victim)
    res = invoke(["fuse", a, b, "--out", victim])
    assert res.exit_code == 2, res.output
    said = _said(res)
    assert f"{victim} holds a run of v written by `evaluate`" in said
    assert "(config.yaml, confusion.png, history_fold0.json, metrics.json, models/" in said
    assert "not an earlier output of `fuse`" in said
    with pytest.raises(RunDirError, match="not an earlier output of `merge`"):
        merge_runs([a, b], victim)
    with pytest.raises(RunDirError, match="not an earlier output of `switch_runs`"):
        switch_runs(a, b, victim, lambda c: True)
    assert _files(victim) == before and sorted(p.name for p in tmp_path.iterdir()) == [
        "a", "b", "victim"]


def test_fuse_replaces_its_own_earlier_output_or_an_empty_folder_only(tmp_path):
    a, b = _two(tmp_path)
    (tmp_path / "empty").mkdir()
    fuse_runs([a, b], tmp_path / "empty")
    fuse_runs([a, b], tmp_path / "empty", [2.0, 1.0])  # its own output: replaced
    assert json.loads((tmp_path / "empty" / "metrics.json").read_text())["weights"][0] == \
        pytest.approx(2 / 3)
    with pytest.raises(RunDirError, match="written by `fuse`.*not an earlier output of "
                       "`merge`"):
        check_run_destination(tmp_path / "empty", "merged_runs")
    check_run_destination(tmp_path / "empty")  # evaluate replaces any run, as before


def test_out_inside_an_input_run_is_refused(tmp_path):
    a, b = _two(tmp_path)
    for out in (a / "inner", a / "models" / "fold0"):
        with pytest.raises(ConfigError, match=f"lies inside {a}, one of the runs"):
            fuse_runs([a, b], out)
        assert not out.exists()
    with pytest.raises(ConfigError, match="lies inside"):
        merge_runs([a, b], b / "x" / "y")
    assert sorted(p.name for p in a.iterdir()) == sorted(p.name for p in b.iterdir())


# -- 2-5. --weights ---------------------------------------------------------------------------

@pytest.mark.parametrize(("given", "said"), [
    ("", "--weights '' holds no numbers"), (" ", "--weights ' ' holds no numbers"),
    (",", "--weights ',' holds no numbers"), ("3,,14", "--weights '3,,14' has an empty item"),
    ("3,", "--weights '3,' has an empty item")])
def test_weights_given_without_numbers_or_with_an_empty_item_are_refused(tmp_path, given,
                                                                         said):
    """`--weights "$W"` with W unset meant equal weights; `3,,14` was read as 3,14."""
    a, b = _two(tmp_path)
    res = invoke(["fuse", a, b, "--weights", given, "--out", tmp_path / "f"])
    assert res.exit_code == 2, res.output
    assert said in _said(res) and not (tmp_path / "f").exists()


def test_weights_left_out_are_equal(tmp_path):
    a, b = _two(tmp_path)
    res = invoke(["fuse", a, b, "--out", tmp_path / "f"])
    assert res.exit_code == 0, res.output
    meta = json.loads((tmp_path / "f" / "metrics.json").read_text())
    assert meta["weights"] == [0.5, 0.5] and meta["weights_given"] is None


def test_huge_finite_weights_are_normalised_not_zeroed(tmp_path):
    """`1e308,1e308,1` summed to infinity: weights [0, 0, 0], an all-neutral result."""
    a, b = _two(tmp_path)
    c = one_hot_run(tmp_path, "c", ["happy"] * 4, "o")
    res = fuse_runs([a, b, c], tmp_path / "f", [1e308, 1e308, 1.0])
    assert res["weights"][:2] == [0.5, 0.5] and 0 < res["weights"][2] < 1e-300
    assert np.isclose(sum(res["weights"]), 1.0)
    fused = read_predictions(tmp_path / "f").probabilities()
    assert np.allclose(fused.sum(1), 1) and fused.max() > 0.4  # not all zeros


@pytest.mark.parametrize(("weights", "said"), [
    ([0.0, 1.0], r"weight 1 \(0, for .*a\) is not a positive finite number; a run weighed "
                 "0 adds nothing"),
    ([1.0, float("nan")], r"weight 2 \(nan, for .*b\) is not a positive finite number"),
    ([float("inf"), 1.0], r"weight 1 \(inf, for .*a\)"),
    ([-1.0, 2.0], r"weight 1 \(-1, for .*a\)"),
    ([1.0, 2.0, 3.0], "2 runs, 3 weights: give one weight per run"),
    ([1.0], "2 runs, 1 weight: give one weight per run")])
def test_bad_weights_are_named(tmp_path, weights, said):
    a, b = _two(tmp_path)
    with pytest.raises(ConfigError, match=said):
        fuse_runs([a, b], tmp_path / "f", weights)
    assert not (tmp_path / "f").exists()


# -- 6. a fused run with its own members ------------------------------------------------------

def test_a_fused_run_given_with_its_own_members_is_refused(tmp_path, monkeypatch):
    """`fuse A B FUSED_AB` weighed A and B twice."""
    monkeypatch.chdir(tmp_path)
    a, b = _two(Path("."))
    c = one_hot_run(Path("."), "c", ["happy"] * 4, "o")
    fuse_runs([a, b], Path("ab"))
    with pytest.raises(ConfigError, match="a is one of the runs ab was combined from"):
        fuse_runs([a, c, Path("ab")], Path("x"))
    fuse_runs([a, c], Path("ac"))
    with pytest.raises(ConfigError, match=f"ac and ab were both combined from "
                       f"{(tmp_path / 'a').resolve()}"):
        fuse_runs([Path("ac"), Path("ab")], Path("x"))
    assert fuse_runs([c, Path("ab")], Path("c_ab"))["model"] == "fusion(o+fusion(m+n))"
    with pytest.raises(ConfigError, match="b is one of the runs c_ab was combined from"):
        fuse_runs([Path("c_ab"), b], Path("x"))  # a fusion of fusions: followed down
    assert not Path("x").exists()


def test_members_are_found_from_another_folder_and_without_fused_inputs(tmp_path,
                                                                        monkeypatch):
    """Runs fused before ``fused_inputs`` was recorded: their ``fused_runs`` as given, found
    from here or beside the fused run, as ``ensemble`` finds them."""
    runs = tmp_path / "runs"
    runs.mkdir()
    monkeypatch.chdir(runs)
    a, b = _two(Path("."))
    fuse_runs([a, b], Path("ab"))
    meta = json.loads(Path("ab/metrics.json").read_text())
    del meta["fused_inputs"]
    Path("ab/metrics.json").write_text(json.dumps(meta))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="runs/b is one of the runs .*runs/ab was combined"):
        fuse_runs([runs / "ab", Path("runs/b")], tmp_path / "x")


# -- 7. a copy whose clip paths were rewritten ---------------------------------------------

def test_a_copy_with_rewritten_clip_paths_is_refused_from_any_folder(tmp_path, monkeypatch):
    """Copies were told by clip paths made absolute from the working folder: a copy whose
    ``../shared/...`` paths were rewritten ``/work/shared/...`` got through elsewhere."""
    a = _as_cv_run(one_hot_run(tmp_path, "a", ["angry", "sad", "angry", "sad"], "m"))
    text = (a / "predictions.csv").read_text()
    (a / "predictions.csv").write_text(text.replace(str(tmp_path), "../shared/data"))
    copy = tmp_path / "copy"
    shutil.copytree(a, copy)
    (copy / "predictions.csv").write_text(text.replace(str(tmp_path), "/work/shared/data"))
    for here in (tmp_path, tmp_path / "a"):  # in neither is ../shared/data /work/shared/data
        monkeypatch.chdir(here)
        with pytest.raises(ConfigError, match="hold the same predictions"):
            fuse_runs([a, copy], tmp_path / "f")
        with pytest.raises(ConfigError, match="hold 4 identical prediction"):
            read_also_runs([copy], "m", a)
    assert not (tmp_path / "f").exists()
    other = one_hot_run(tmp_path, "other", ["sad"] * 4, "m")  # another seed: other answers
    assert fuse_runs([a, other], tmp_path / "f")["pooled"]["n"] == 4


# -- 8. provenance ------------------------------------------------------------------------------

def test_a_fusion_records_its_inputs_and_the_weights_as_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    a, b = _two(Path("."))
    res = invoke(["fuse", "a", "./b/", "--weights", "3,1", "--out", "f"])
    assert res.exit_code == 0, res.output
    meta = json.loads(Path("f/metrics.json").read_text())
    assert meta["fused_runs"] == ["a", "b"] and meta["weights"] == [0.75, 0.25]
    assert meta["weights_given"] == [3.0, 1.0]
    assert [i["given"] for i in meta["fused_inputs"]] == ["a", "b"]
    for rec, run in zip(meta["fused_inputs"], (a, b), strict=True):
        assert rec["resolved"] == str((tmp_path / run).resolve())
        for key, name in (("predictions_sha256", "predictions.csv"),
                          ("metrics_sha256", "metrics.json")):
            assert rec[key] == hashlib.sha256((run / name).read_bytes()).hexdigest()


# -- 9. malformed input records -----------------------------------------------------------------

@pytest.mark.parametrize(("edit", "said"), [
    (lambda m: {**m, "folds": [0, 1]}, r"field 'folds' item 0 is 0, not a fold record"),
    (lambda m: {**m, "folds": [{"index": 0, "fit_seconds": "abc"}, m["folds"][1]]},
     r"field 'folds' item 0: 'fit_seconds' is \"abc\", not a number"),
    (lambda m: {**m, "folds": [{"index": 0}, m["folds"][1]]},
     r"item 0: 'fit_seconds' is missing, not a number"),
    (lambda m: {**m, "folds": [{"index": "0", "fit_seconds": 1}, m["folds"][1]]},
     r"item 0: 'index' is \"0\", not an integer"),
    (lambda m: {**m, "model": None}, r"field 'model' is null, not a model name"),
    (lambda m: {k: v for k, v in m.items() if k != "model"},
     r"field 'model' is missing, not a model name"),
    (lambda m: {k: v for k, v in m.items() if k != "speaker_independent"},
     r"field 'speaker_independent' is missing, not true or false")])
def test_malformed_input_records_name_the_file_and_field(tmp_path, edit, said):
    a, b = _two(tmp_path)
    meta = json.loads((b / "metrics.json").read_text())
    (b / "metrics.json").write_text(json.dumps(edit(meta)))
    res = invoke(["fuse", a, b, "--out", tmp_path / "f"])
    assert res.exit_code == 2, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
    assert f"{b / 'metrics.json'}: " in _said(res)
    with pytest.raises(ConfigError, match=said):
        fuse_runs([a, b], tmp_path / "f")
    assert not (tmp_path / "f").exists()


# -- 10. one fold: no spread --------------------------------------------------------------------

def _one_fold(root: Path, name: str, answers: list[str]) -> Path:
    run = one_hot_run(root, name, answers, name)
    text = (run / "predictions.csv").read_text().replace("\n1,", "\n0,")
    (run / "predictions.csv").write_text(text)
    return _as_cv_run(run, protocol="random", folds=[{"index": 0, "fit_seconds": 1.0}])


def test_one_fold_shows_no_spread(tmp_path):
    """A random split's one fold was shown "89.2 ± 0.0" by report and fuse."""
    a = _one_fold(tmp_path, "a", ["angry", "sad", "angry", "happy"])
    b = _one_fold(tmp_path, "b", ["angry", "sad", "sad", "sad"])
    res = invoke(["fuse", a, b, "--out", tmp_path / "f"])
    assert res.exit_code == 0, res.output
    assert "±" not in res.output and re.search(
        r"random: ua \d+\.\d · wa \d+\.\d · macro_f1 \d+\.\d per corpus", _said(res))
    rows = markdown_table(collect_report([a, tmp_path / "f"]).rows)
    assert len(rows) == 4 and all("±" not in line for line in rows)
    assert "| 1 | 75.0 | 75.0 | 75.0 | 75.0 |" in rows[2]
    two = [one_hot_run(tmp_path, n, [x] * 4, n) for n, x in (("c", "sad"), ("d", "angry"))]
    res = invoke(["fuse", *two, "--out", tmp_path / "g"])
    assert res.exit_code == 0 and " ± " in res.output  # two folds: the spread stays
    assert " ± " in markdown_table(collect_report([tmp_path / "g"]).rows)[2]


def test_a_run_from_elsewhere_is_still_fused(tmp_path, monkeypatch):
    """The checks above leave the ordinary case alone: runs given relative to another
    folder, written into a fresh folder."""
    a, b = _two(tmp_path)
    monkeypatch.chdir(a)
    res = fuse_runs([Path(os.path.relpath(a)), Path(os.path.relpath(b))], tmp_path / "f")
    assert res["model"] == "fusion(m+n)"


def test_two_merges_of_parts_of_one_name_are_fused_from_either_folder(tmp_path, monkeypatch):
    """Two merges made each in its own folder record their parts as ``p0``, ``p1``: fused
    from one of those folders, the other's ``p0`` read as this one's, and the fusion was
    refused as weighing it twice (review, stop 56)."""
    e1, e2 = tmp_path / "exp1", tmp_path / "exp2"
    e1.mkdir()
    e2.mkdir()
    for fold in (0, 1):
        another_run(one_fold_run(e1, f"p{fold}", fold), e2 / f"p{fold}", 0.05)
    for e in (e1, e2):
        monkeypatch.chdir(e)
        merge_runs([Path("p0"), Path("p1")], Path("m"))
    monkeypatch.chdir(e1)
    fuse_runs([Path("m"), Path("../exp2/m")], Path("../f"))
    assert (tmp_path / "f" / "predictions.csv").is_file()
    with pytest.raises(ConfigError, match="weighed twice"):  # a real double still found
        fuse_runs([Path("m"), Path("../f")], Path("../g"))
