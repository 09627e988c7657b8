"""A claim folder (``.NAME.staging-PID-HEX``, ``.NAME.build-...``) was visible for an
instant before its lock existed (``mkdir``, then the lock file, then its ``flock``): a
process looking then went by the PID in its name, which means nothing in another PID
namespace, and removed the claim as a killed writer's (or, its PID its own, ignored it).
A claim is now made under a pending name with its lock held inside and renamed into place;
a pending folder is nobody's claim and is left alone until it is old and unlocked (code
review). Deterministic: the instants are made by hand, no sleeps."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from emovox.experiment.rundest import check_run_destination, staged_run_dir
from emovox.fileio import claimed_folder, live_writers, remove_stale

SRC = Path(__file__).resolve().parents[2] / "src"
#: a PID no process has here (above Linux's default pid_max), as another container's is
ELSEWHERE = 2 ** 22 + 12345

#: another process looking at the folder: what it removes as stale, whom it sees writing
_READER = r"""
import sys
from pathlib import Path
from emovox.fileio import live_writers, remove_stale
parent, name, kind = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
gone = remove_stale(parent, name)
print(len(gone), live_writers(parent, name, (kind,)))
"""


def _look(parent: Path, name: str, kind: str) -> str:
    """What another process (on this host, the writer's PID not its) does now."""
    done = subprocess.run([sys.executable, "-c", _READER, str(parent), name, kind],
                          env={**os.environ, "PYTHONPATH": str(SRC)}, capture_output=True,
                          text=True, check=True, timeout=60)
    return done.stdout.strip()


def _at_first_sight(monkeypatch, parent: Path, prefix: str,
                    then: Callable[[], None]) -> None:
    """Call ``then`` at the instant a folder named ``prefix...`` first exists in
    ``parent``, whichever call made it appear (``mkdir`` or ``rename``)."""
    seen: list[Path] = []

    def check(made: object) -> None:
        p = Path(os.fsdecode(made))  # type: ignore[arg-type]
        if not seen and p.parent == parent and p.name.startswith(prefix):
            seen.append(p)
            then()

    real_mkdir, real_rename = os.mkdir, os.rename

    def mkdir(path, *args, **kwargs):
        real_mkdir(path, *args, **kwargs)
        check(path)

    def rename(src, dst, *args, **kwargs):
        real_rename(src, dst, *args, **kwargs)
        check(dst)

    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(os, "rename", rename)


@pytest.mark.parametrize("kind", ["staging", "build"])
def test_a_claim_is_never_seen_without_its_lock(tmp_path, monkeypatch, kind):
    """At the instant its folder appears, another process sees a live claim: it neither
    removes it nor misses it (the writer's PID is one that process cannot see)."""
    monkeypatch.setattr(os, "getpid", lambda: ELSEWHERE)  # a container's PID, as seen here
    looked: list[str] = []
    _at_first_sight(monkeypatch, tmp_path, f".run.{kind}-",
                    lambda: looked.append(_look(tmp_path, "run", kind)))
    if kind == "staging":
        with staged_run_dir(tmp_path / "run") as stage:
            (stage / "metrics.json").write_text('{"protocol": "loso"}')
            assert stage.is_dir()  # not removed as a killed writer's
    else:
        with claimed_folder(tmp_path / "run", kind) as (claim, others):
            assert claim.is_dir() and others == []
    assert looked == [f"0 [{ELSEWHERE}]"]


def _pending(parent: Path, name: str = "run", pid: int = ELSEWHERE) -> Path:
    """A claim folder as it is between its ``mkdir`` and its lock: no lock file yet."""
    folder = parent / f".{name}.pending-{pid}-0a1b2c3d"
    folder.mkdir()
    return folder


def test_a_claim_being_made_is_left_alone_and_taken_for_no_writer(tmp_path):
    pending = _pending(tmp_path)
    assert remove_stale(tmp_path, "run") == [] and pending.is_dir()
    assert live_writers(tmp_path, "run") == []  # nobody's claim yet: it checks after us
    with staged_run_dir(tmp_path / "run") as stage:
        (stage / "metrics.json").write_text('{"protocol": "loso"}')
    assert pending.is_dir() and (tmp_path / "run" / "metrics.json").is_file()
    with claimed_folder(tmp_path / "run") as (_, others):
        assert others == [] and pending.is_dir()
    assert _look(tmp_path, "run", "staging") == "0 []" and pending.is_dir()


def test_a_killed_makers_pending_folder_is_removed_once_old(tmp_path):
    pending = _pending(tmp_path)
    (pending / ".emovox-claim.lock").write_text("")  # killed after its lock file: unlocked
    young = _pending(tmp_path, pid=os.getpid())  # a live maker's, a moment old
    old = time.time() - 3600
    os.utime(pending, (old, old))
    assert remove_stale(tmp_path, "run") == [pending]
    assert not pending.exists() and young.is_dir()


def test_a_claim_being_made_in_a_runs_models_folder_is_the_runs_own(tmp_path):
    """``export`` claims ``models/foldK`` of a run with ``--save-models``: its pending
    folder there is no file of someone else's, and the run stays replaceable."""
    run = tmp_path / "run"
    (run / "models" / "fold0").mkdir(parents=True)
    (run / "metrics.json").write_text('{"protocol": "loso"}')
    (run / "predictions.csv").write_text("")  # what every run folder holds (stop 53)
    (run / "models" / ".fold0.pending-12-0a1b2c3d").mkdir()
    check_run_destination(run)
