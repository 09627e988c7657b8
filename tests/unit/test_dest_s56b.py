"""Output destinations, the audit's second part (stop 56): a refused finished run is kept
under a name no earlier kept run has (D13); a run being staged and a model being built for
one destination see each other, and a model refused at the end is kept (D3); messages name
the user's folders, not emovox's internal ones (D10); an ensemble is never written inside a
member (D12)."""

from __future__ import annotations

import errno
import json
import os
import time
from pathlib import Path

import pytest
from test_writers_claims import ELSEWHERE, _claimed_elsewhere

from emovox.config import DataConfig, ExperimentConfig, ModelConfig, SplitConfig
from emovox.errors import ConfigError
from emovox.experiment.rundest import check_run_destination, staged_run_dir
from emovox.experiment.rundir import RunDirError
from emovox.fileio import claimed_folder

STAMP = "20260101-000000"


def _fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    real = time.strftime
    monkeypatch.setattr(time, "strftime",
                        lambda fmt, *a: STAMP if fmt == "%Y%m%d-%H%M%S" else real(fmt, *a))


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# -- D13: the finished run is kept whatever is there ------------------------------------

def test_a_refused_run_is_kept_beside_an_earlier_kept_run_of_the_same_second(
        tmp_path, monkeypatch):
    """A kept run of the same second there: os.rename failed ("[Errno 39] Directory not
    empty") and the finished run was deleted."""
    _fixed_clock(monkeypatch)
    earlier = tmp_path / f"r.unsaved-{STAMP}"
    earlier.mkdir()
    (earlier / "first.txt").write_text("an earlier kept run")
    for n in (2, 3):
        with pytest.raises(RunDirError, match="the finished run is in") as err:
            with staged_run_dir(tmp_path / "r") as stage:
                (stage / "metrics.json").write_text(f'{{"n": {n}}}')
                (tmp_path / "r" / "cache").mkdir(parents=True, exist_ok=True)
        kept = tmp_path / f"r.unsaved-{STAMP}-{n}"
        assert str(err.value).endswith(f"the finished run is in {kept}")
        assert (kept / "metrics.json").read_text() == f'{{"n": {n}}}'
        assert not (kept / ".emovox-claim.lock").exists()
        (tmp_path / "r" / "cache").rmdir()
    assert (earlier / "first.txt").read_text() == "an earlier kept run"
    assert _names(tmp_path) == ["r", f"r.unsaved-{STAMP}", f"r.unsaved-{STAMP}-2",
                                f"r.unsaved-{STAMP}-3"]


def test_an_empty_folder_of_the_kept_name_is_not_taken(tmp_path, monkeypatch):
    """A rename over an empty folder succeeds: the user's (empty) folder was taken."""
    _fixed_clock(monkeypatch)
    (tmp_path / f"r.unsaved-{STAMP}").mkdir()
    with pytest.raises(RunDirError, match=f"r.unsaved-{STAMP}-2"):
        with staged_run_dir(tmp_path / "r") as stage:
            (stage / "metrics.json").write_text("{}")
            (tmp_path / "r").mkdir()
            (tmp_path / "r" / "notes.txt").write_text("mine")
    assert list((tmp_path / f"r.unsaved-{STAMP}").iterdir()) == []


# -- D3: evaluate and train see each other's claims; a refused model is kept -------------

def test_a_run_is_not_staged_while_a_model_is_built_there(tmp_path):
    """`evaluate --out X` wrote X while `train --out X` trained: train then refused X and
    deleted the model it had trained."""
    with _claimed_elsewhere(tmp_path / f".x.build-{ELSEWHERE}-ab12cd34"):
        with pytest.raises(RunDirError, match=rf"another emovox process \(PID {ELSEWHERE}\) "
                           "is writing"):
            with staged_run_dir(tmp_path / "x"):
                pytest.fail("the run must not start")
        assert _names(tmp_path) == [f".x.build-{ELSEWHERE}-ab12cd34"]


def test_a_model_is_not_built_while_a_run_is_staged_there(tmp_path, monkeypatch):
    from emovox.experiment import package

    def no_data(_cfg):
        raise AssertionError("the data must not be read")

    monkeypatch.setattr(package, "load_dataset", no_data)
    with _claimed_elsewhere(tmp_path / f".x.staging-{ELSEWHERE}-ab12cd34"):
        with claimed_folder(tmp_path / "x") as (_, others):
            assert others == [ELSEWHERE]
        cfg = ExperimentConfig(data=DataConfig(root=str(tmp_path / "corpus")),
                               model=ModelConfig(name="prosody_logreg"))
        with pytest.raises(ConfigError, match=rf"another emovox process \(PID {ELSEWHERE}\)"):
            package.train_bundle(cfg, tmp_path / "x")
        with pytest.raises(ConfigError, match=rf"another emovox process \(PID {ELSEWHERE}\)"):
            with staged_run_dir(tmp_path / "x"):  # and two runs, as before
                pytest.fail("the run must not start")


def test_a_model_refused_at_the_end_is_kept(tmp_path):
    from emovox.artifact import replace_folder

    out, stage = tmp_path / "m", tmp_path / ".m.build-1-ab" / "m"
    stage.mkdir(parents=True)
    (stage / "model.json").write_text("{}")
    out.mkdir()
    (out / "notes.txt").write_text("the user's")
    with pytest.raises(FileExistsError, match="already exists; pass --force") as err:
        replace_folder(stage, out, force=False, keep=True)
    (kept,) = tmp_path.glob("m.unsaved-*")
    assert str(err.value).endswith(f"the finished model is in {kept}")
    assert (kept / "model.json").read_text() == "{}" and not stage.exists()
    assert _names(out) == ["notes.txt"]
    stage.mkdir()
    with pytest.raises(FileExistsError, match="already exists; pass --force to overwrite it$"):
        replace_folder(stage, out, force=False)  # export, calibrate: as before
    assert stage.is_dir()


def test_train_keeps_its_model_when_out_was_taken_while_it_trained(tmp_path, monkeypatch,
                                                                   ravdess_maker):
    """The audit's reproduction: a folder appeared at --out while `train` trained; it said
    "already exists; pass --force" and its finished model was deleted."""
    from emovox.experiment import package

    out, real = tmp_path / "m", package._fit

    def fit_then_someone_writes(*a, **k):
        model = real(*a, **k)
        out.mkdir()
        (out / "notes.txt").write_text("the user's")
        return model

    monkeypatch.setattr(package, "_fit", fit_then_someone_writes)
    cfg = ExperimentConfig(data=DataConfig(root=str(ravdess_maker(tmp_path / "c", (1, 2)))),
                           model=ModelConfig(name="prosody_logreg"),
                           split=SplitConfig(n_val_speakers=0),
                           cache_dir=str(tmp_path / "cache"), n_jobs=1)
    with pytest.raises(FileExistsError, match="the finished model is in") as err:
        package.train_bundle(cfg, out, onnx=False)
    (kept,) = tmp_path.glob("m.unsaved-*")
    assert str(kept) in str(err.value) and (kept / "model.json").is_file()
    assert _names(out) == ["notes.txt"] and not list(tmp_path.glob(".m.*"))


# -- D10: messages name the user's folders ---------------------------------------------

def test_a_file_in_the_way_of_a_runs_folder_is_said_in_words(tmp_path):
    (tmp_path / "user.csv").write_text("a\n")
    with pytest.raises(OSError) as err:
        with staged_run_dir(tmp_path / "user.csv" / "sub"):
            pytest.fail("the run must not start")
    assert str(err.value) == (f"cannot make the folder {tmp_path / 'user.csv'}: a file of "
                              "that name (or of one of its parents) is in the way")
    assert (tmp_path / "user.csv").read_text() == "a\n" and _names(tmp_path) == ["user.csv"]


@pytest.mark.parametrize("writer", ["run", "model"])
def test_a_read_only_destination_names_its_folder_not_a_pending_one(tmp_path, monkeypatch,
                                                                    writer):
    real = os.mkdir

    def read_only(path, *a, **k):
        if Path(path).parent == tmp_path:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real(path, *a, **k)

    monkeypatch.setattr(os, "mkdir", read_only)
    with pytest.raises(OSError) as err:
        with (staged_run_dir(tmp_path / "m") if writer == "run"
              else claimed_folder(tmp_path / "m")):
            pytest.fail("nothing is written")
    assert str(err.value) == f"cannot write in {tmp_path}: Read-only file system"
    assert err.value.errno == errno.EROFS and "pending" not in str(err.value)


def test_a_cross_corpus_output_is_named_as_evaluate_artifacts(tmp_path):
    """It read "holds a run of None written by `evaluate`"."""
    out = tmp_path / "cc"
    out.mkdir()
    (out / "metrics.json").write_text(json.dumps({"protocol": "cross-corpus:crema_d",
                                                  "model_id": "crnn@1"}))
    (out / "predictions.csv").write_text("path\n")
    with pytest.raises(RunDirError, match=r"holds a run of crnn@1 written by `evaluate "
                       r"--artifact` \(metrics.json, predictions.csv\), not an earlier "
                       "output of `fuse`"):
        check_run_destination(out, "fused_runs")


# -- D12: an ensemble is never written inside a member -------------------------------------

def test_an_ensemble_inside_a_member_is_refused_before_any_work(tmp_path, monkeypatch):
    from emovox.experiment import package

    def no_work(*_a, **_k):
        raise AssertionError("the members must not be loaded")

    monkeypatch.setattr(package, "_assemble", no_work)
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (tmp_path / "link").symlink_to(a)
    for out in (a / "sub", a / "sub" / "deeper", tmp_path / "link" / "sub"):
        with pytest.raises(ConfigError, match="is one of the members or inside one"):
            package.ensemble_bundle([a, b], out, onnx=False)
    assert _names(tmp_path) == ["a", "b", "link"] and list(a.iterdir()) == []
