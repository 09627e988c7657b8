"""A run folder is data: ``merge`` and ``rescore`` copy files of other runs into the run they
write, and a symbolic link in an input run copied what it pointed to -- any file of this
machine, e.g. ``~/.ssh/id_rsa`` behind a link in a run folder someone shared (code review).
Links are never followed now: an optional file behind one is skipped with a warning, a file
the result is computed from is refused; and a copy never writes through a link in the run
being written."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest

from emovox.experiment import fuse, rescore
from emovox.experiment.rundir import RunDirError
from run_variants import one_fold_run

SECRET = "SECRET"


def _part(root: Path, name: str, fold: int) -> Path:
    """A run of one fold: two clips answered right, its config and training history."""
    return one_fold_run(root, name, fold)


def _secret(tmp_path: Path) -> Path:
    secret = tmp_path / "elsewhere" / "id_rsa"
    secret.parent.mkdir()
    secret.write_text(SECRET)
    return secret


def _holding_secret(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*")
                  if p.is_file() and SECRET.encode() in p.read_bytes())


def _link(path: Path, target: Path) -> None:
    path.unlink(missing_ok=True)
    path.symlink_to(target)


def test_merge_skips_linked_curves_and_errors_with_a_warning(tmp_path, caplog):
    secret = _secret(tmp_path)
    a, b = _part(tmp_path, "a", 0), _part(tmp_path, "b", 1)
    _link(b / "history_fold1.json", secret)
    _link(b / "curves_fold1.png", secret)
    (tmp_path / "elsewhere" / "errors.csv").write_text(f"path,error\n/{SECRET},{SECRET}\n")
    _link(b / "errors.csv", tmp_path / "elsewhere" / "errors.csv")
    with caplog.at_level(logging.WARNING):
        fuse.merge_runs([a, b], tmp_path / "merged")
    out = tmp_path / "merged"
    assert _holding_secret(out) == []
    assert not any(p.is_symlink() for p in out.iterdir())
    assert (out / "history_fold0.json").read_text() == "{}"  # a regular file: carried
    assert not (out / "history_fold1.json").exists() and not (out / "errors.csv").exists()
    said = caplog.text
    assert "history_fold1.json is a symbolic link" in said and "errors.csv" in said


@pytest.mark.parametrize("name", ["metrics.json", "predictions.csv", "config.yaml"])
def test_merge_refuses_a_linked_file_it_computes_from(tmp_path, name):
    """Parsed and carried into the result: refused, never read through the link."""
    a, b = _part(tmp_path, "a", 0), _part(tmp_path, "b", 1)
    real = tmp_path / "elsewhere" / name
    real.parent.mkdir()
    real.write_bytes((b / name).read_bytes())  # even a link to a good copy
    _link(b / name, real)
    with pytest.raises(RunDirError, match=rf"{name} is a symbolic link"):
        fuse.merge_runs([a, b], tmp_path / "merged")
    assert not (tmp_path / "merged").exists()


def test_merge_never_writes_through_a_link_in_the_run_it_writes(tmp_path, monkeypatch):
    """A link that appeared in the staging folder (its parent shared with a group) is
    replaced by the copy, not written through: the file it points to is not ours."""
    victim = tmp_path / "victim.txt"
    victim.write_text("not ours")
    a, b = _part(tmp_path, "a", 0), _part(tmp_path, "b", 1)
    real = fuse.write_run

    def write_then_plant(out: Path, *args, **kwargs) -> None:
        real(out, *args, **kwargs)
        (Path(out) / "history_fold0.json").symlink_to(victim)

    monkeypatch.setattr(fuse, "write_run", write_then_plant)
    fuse.merge_runs([a, b], tmp_path / "merged")
    assert victim.read_text() == "not ours"
    merged = tmp_path / "merged" / "history_fold0.json"
    assert not merged.is_symlink() and merged.read_text() == "{}"


def _rescore(tmp_path: Path, monkeypatch, run: Path) -> dict:
    """``rescore_run`` with each fold's models answering as the run stored (no models)."""
    monkeypatch.setattr(rescore, "_fold_probabilities", lambda run, fold, rows, cols, speeds: (
        np.array([r.proba for r in rows]), 0.0))
    return rescore.rescore_run(run, tmp_path / "fast", speeds=[0.9, 1.1])


def test_rescore_skips_a_linked_errors_file_and_refuses_a_linked_config(tmp_path, monkeypatch,
                                                                       caplog):
    secret = _secret(tmp_path)
    run = _part(tmp_path, "run", 0)
    _link(run / "errors.csv", secret)
    with caplog.at_level(logging.WARNING):
        _rescore(tmp_path, monkeypatch, run)
    out = tmp_path / "fast"
    assert _holding_secret(out) == [] and not (out / "errors.csv").exists()
    assert (out / "config.yaml").read_bytes() == (run / "config.yaml").read_bytes()
    assert "errors.csv is a symbolic link" in caplog.text
    _link(run / "config.yaml", secret)
    with pytest.raises(RunDirError, match="config.yaml is a symbolic link"):
        _rescore(tmp_path, monkeypatch, run)
    assert _holding_secret(out) == []  # the first result, untouched


def test_copies_follow_no_link_at_either_end(tmp_path):
    from emovox.experiment.rundest import carry_files
    from emovox.fileio import copy_unlinked

    secret = _secret(tmp_path)
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    (src / "plain.json").write_text("ok")
    (src / "linked.json").symlink_to(secret)
    fifo = src / "fifo.json"
    os.mkfifo(fifo)  # would block a copy for ever
    victim = tmp_path / "victim"
    victim.write_text("not ours")
    (dst / "plain.json").symlink_to(victim)
    skipped = carry_files([src / "plain.json", src / "linked.json", fifo], dst)
    assert skipped == [src / "linked.json", fifo]
    assert victim.read_text() == "not ours"
    assert not (dst / "plain.json").is_symlink() and (dst / "plain.json").read_text() == "ok"
    assert sorted(p.name for p in dst.iterdir()) == ["plain.json"]  # no temporary file left
    assert copy_unlinked(src / "linked.json", dst / "x") is False and not (dst / "x").exists()


def _swap_after_check(monkeypatch, module, name: str, elsewhere: Path) -> None:
    """``module.refuse_links`` as it is, but ``name`` in each run it checks becomes a link
    to a copy in ``elsewhere`` right after: swapped in between the check and the read."""
    check = module.refuse_links

    def check_then_swap(run: Path, *args) -> None:
        check(run, *args)
        real = elsewhere / f"{Path(run).name}-{name}"  # even a link to a good copy
        real.write_bytes((Path(run) / name).read_bytes())
        _link(Path(run) / name, real)

    monkeypatch.setattr(module, "refuse_links", check_then_swap)


@pytest.mark.parametrize("name", ["metrics.json", "predictions.csv", "config.yaml"])
def test_merge_refuses_a_link_swapped_in_after_its_check(tmp_path, monkeypatch, name):
    """refuse_links checked the files, then they were opened by path: a link swapped in
    between was followed. They are opened without following one now."""
    a, b = _part(tmp_path, "a", 0), _part(tmp_path, "b", 1)
    (tmp_path / "elsewhere").mkdir()
    _swap_after_check(monkeypatch, fuse, name, tmp_path / "elsewhere")
    with pytest.raises(RunDirError, match=rf"{name} is a symbolic link"):
        fuse.merge_runs([a, b], tmp_path / "merged")
    assert (b / name).is_symlink()  # (the swap did happen)
    assert not (tmp_path / "merged").exists()


@pytest.mark.parametrize("name", ["metrics.json", "predictions.csv", "config.yaml"])
def test_rescore_refuses_a_link_swapped_in_after_its_check(tmp_path, monkeypatch, name):
    run = _part(tmp_path, "run", 0)
    (tmp_path / "elsewhere").mkdir()
    _swap_after_check(monkeypatch, rescore, name, tmp_path / "elsewhere")
    with pytest.raises(RunDirError, match=rf"{name} is a symbolic link"):
        _rescore(tmp_path, monkeypatch, run)
    assert (run / name).is_symlink()
    assert not (tmp_path / "fast").exists()


def test_fuse_refuses_a_link_swapped_in_after_its_check(tmp_path, monkeypatch):
    a, b = _part(tmp_path, "a", 0), _part(tmp_path, "b", 0)
    (tmp_path / "elsewhere").mkdir()
    _swap_after_check(monkeypatch, fuse, "predictions.csv", tmp_path / "elsewhere")
    with pytest.raises(RunDirError, match="predictions.csv is a symbolic link"):
        fuse.fuse_runs([a, b], tmp_path / "fused")
    assert not (tmp_path / "fused").exists()
