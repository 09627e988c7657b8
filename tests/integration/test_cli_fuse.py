"""``emovox merge`` and ``emovox fuse`` on runs written by ``emovox evaluate`` (review,
stop 52): parts that name one corpus folder in two ways merge; a run given twice is not
fused with itself."""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from cli_helpers import invoke, ok, text


def _evaluate(data: str, cache: Path, out: Path, fold: int, *extra: str):
    return invoke(["evaluate", "--data", data, "--model", "egemaps_logreg", "--folds",
                   str(fold), "--val-speakers", "1", "--cache-dir", cache, "--jobs", "1",
                   "--out", out, *extra])


def test_parts_reading_one_folder_relatively_and_absolutely_merge(fake_ravdess, fake_cache,
                                                                  tmp_path, monkeypatch):
    """``--data c4`` in one part and ``--data $PWD/c4`` in the other: the recorded roots
    were ``c4`` and ``.../c4``, whose last two parts differ, so merge said "another
    configuration (data.root)". Each root is now recorded absolute."""
    monkeypatch.chdir(Path(fake_ravdess).parent)
    rel = Path(fake_ravdess).name
    ok(_evaluate(rel, fake_cache, tmp_path / "part0", 0))
    ok(_evaluate(str(Path.cwd() / rel), fake_cache, tmp_path / "part1", 1))
    monkeypatch.chdir(fake_ravdess)  # "." names the folder by its own name too
    ok(_evaluate(".", fake_cache, tmp_path / "dot1", 1))
    for second in ("part1", "dot1"):
        ok(invoke(["merge", tmp_path / "part0", tmp_path / second, "--out",
                   tmp_path / f"merged-{second}"]))
        assert (tmp_path / f"merged-{second}" / "metrics.json").is_file()
    for part in ("part0", "part1", "dot1"):
        root = yaml.safe_load((tmp_path / part / "config.yaml").read_text())["data"]["root"]
        assert root == os.getcwd()


def test_fuse_refuses_a_run_given_twice(fake_ravdess, fake_cache, tmp_path, monkeypatch):
    """``fuse r/a r/a`` was "fusion(mlp+mlp)", one run under a fusion's name, and ``fuse
    r/a r/b r/a`` weighed r/a 2/3 without a word; the same run however spelt is refused."""
    monkeypatch.chdir(tmp_path)
    ok(_evaluate(str(fake_ravdess), fake_cache, Path("r/a"), 0))
    ok(_evaluate(str(fake_ravdess), fake_cache, Path("r/b"), 0, "--seed", "1",
                 "--split-seed", "0"))
    for runs in (["r/a", "r/a"], ["r/a", "r/b", "r/a"], ["r/a", "./r/a/"],
                 ["r/a", str(tmp_path / "r" / "a")]):
        res = invoke(["fuse", *runs, "--out", "fused"])
        assert res.exit_code == 2, res.output
        assert "is given twice: give each run once; --weights weighs them" in text(res)
        assert not Path("fused").exists()
    # r/b is r/a's recipe on another --seed that a logistic regression does not read: the
    # same answers, weighed twice as a copy would be (stop 53); another C gives others
    res = invoke(["fuse", "r/a", "r/b", "--out", "fused"])
    assert res.exit_code == 2 and "r/a and r/b hold the same predictions" in text(res)
    ok(_evaluate(str(fake_ravdess), fake_cache, Path("r/c"), 0, "-p", "C=0.1"))
    ok(invoke(["fuse", "r/a", "r/c", "--out", "fused"]))  # each once: fused
