"""Who is writing a run or a model folder now (code review, stop 48): a claim folder's lock
tells, not the PID in its name (containers, NFS hosts); `export` rewrites a model folder
whole under a claim; SIGTERM cleans up as Ctrl-C does; `merge` and `fuse` refuse inputs
being rewritten; Ctrl-C and SIGTERM wait for a swap's two renames with other threads
running."""

from __future__ import annotations

import hashlib
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from test_switch_member import one_hot_run

from emovox.artifact import ArtifactError
from emovox.errors import ConfigError
from emovox.experiment import fuse
from emovox.experiment.rundest import check_run_destination, staged_run_dir
from emovox.experiment.rundir import RunDirError
from emovox.fileio import claimed_folder, live_writers, remove_stale, swap_folder

SRC = Path(__file__).resolve().parents[2] / "src"
ENV = {**os.environ, "PYTHONPATH": str(SRC)}
#: a PID no process has here (above Linux's default pid_max), as another container's is
ELSEWHERE = 2 ** 22 + 12345

#: a process that claims a folder as emovox does, seen from here as a process in another
#: PID namespace or on another host is: the PID in the folder's name tells nothing; only
#: the flock on its lock file does
_HOLDER = r"""
import fcntl, os, sys
from pathlib import Path
folder = Path(sys.argv[1])
folder.mkdir()
fd = os.open(folder / ".emovox-claim.lock", os.O_RDWR | os.O_CREAT, 0o666)
fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
print("ready", flush=True)
sys.stdin.read()
"""


@contextmanager
def _claimed_elsewhere(folder: Path) -> Iterator[None]:
    """``folder`` made and claimed by another process until the block ends."""
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(folder)], env=ENV,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        yield
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait()


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


# -- claims: the lock tells, not the PID -------------------------------------------------


@pytest.mark.parametrize("pid", [ELSEWHERE, os.getpid()], ids=["dead-here", "ours-here"])
def test_a_claim_held_in_another_pid_namespace_is_live_whatever_its_pid(tmp_path, pid):
    """A container's staging folder, its PID dead here, was deleted as stale and its run
    crashed; two containers, both PID 1, each took the other's for its own and replaced
    each other's run (code review, stop 48)."""
    theirs = tmp_path / f".run.staging-{pid}-ab12cd34"
    with _claimed_elsewhere(theirs):
        with pytest.raises(RunDirError, match=rf"another emovox process \(PID {pid}\)"):
            with staged_run_dir(tmp_path / "run"):
                pytest.fail("the second run must not start")
        assert remove_stale(tmp_path, "run") == [] and theirs.is_dir()
        assert live_writers(tmp_path, "run") == [pid]
        assert sorted(p.name for p in tmp_path.iterdir()) == [theirs.name]
        built = tmp_path / f".m.build-{pid}-ab12cd34"
        with _claimed_elsewhere(built), claimed_folder(tmp_path / "m") as (_, others):
            assert others == [pid]
    assert sorted(remove_stale(tmp_path, "run")) == [theirs]  # its process ended: stale
    assert remove_stale(tmp_path, "m") == [built]


def test_a_killed_swaps_old_folder_waits_while_another_claim_is_swapping(tmp_path):
    """Between a live swap's two renames its old folder was put back under the name the
    swap was about to take (code review, stop 48)."""
    old = tmp_path / f".run.old-{ELSEWHERE}-00ff"
    old.mkdir()
    (old / "metrics.json").write_text("old")
    with _claimed_elsewhere(tmp_path / f".run.staging-{ELSEWHERE}-ab12cd34"):
        remove_stale(tmp_path, "run")
        assert old.is_dir() and not (tmp_path / "run").exists()
    remove_stale(tmp_path, "run")  # no claim now: a killed swap's, put back
    assert (tmp_path / "run" / "metrics.json").read_text() == "old"


def test_a_run_keeps_no_lock_file_and_a_left_one_is_not_foreign(tmp_path):
    out = tmp_path / "run"
    with staged_run_dir(out) as stage:
        (stage / "metrics.json").write_text('{"protocol": "loso"}')
        (stage / "predictions.csv").write_text("")  # what every run folder holds (stop 53)
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "predictions.csv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    # a swap killed between its rename and removing the lock file leaves one in the run
    (out / ".emovox-claim.lock").write_text("")
    check_run_destination(out)
    with staged_run_dir(out) as stage:
        (stage / "metrics.json").write_text('{"protocol": "emobox"}')
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json"]


def test_a_swap_waits_for_ctrl_c_with_another_thread_running(tmp_path, monkeypatch,
                                                             python_sigint):
    """A signal mask is one thread's: with a pool's thread running, the kernel gave that
    thread the SIGINT, the main thread was interrupted between the renames and the run
    was gone (code review, stop 48)."""
    out, stage = tmp_path / "run", tmp_path / f".run.staging-{os.getpid()}-ab"
    out.mkdir()
    (out / "v").write_text("old")
    stage.mkdir()
    (stage / "v").write_text("new")
    real = os.rename
    seen, told = os.pipe()  # written by whichever thread's C handler takes the signal
    os.set_blocking(told, False)

    def rename_then_interrupt(a, b):
        real(a, b)
        if Path(b).name.startswith(".run.old-"):
            os.kill(os.getpid(), signal.SIGINT)
            select.select([seen], [], [], 30)  # until it has arrived (bounded: no hang)

    done = threading.Event()
    waiter = threading.Thread(target=done.wait)
    waiter.start()
    before = signal.set_wakeup_fd(told)
    try:
        monkeypatch.setattr(os, "rename", rename_then_interrupt)
        with pytest.raises(KeyboardInterrupt):
            swap_folder(stage, out)
        monkeypatch.setattr(os, "rename", real)
    finally:
        signal.set_wakeup_fd(before)
        os.close(seen)
        os.close(told)
        done.set()
        waiter.join()
    assert (out / "v").read_text() == "new" and not stage.exists()


# -- export: a copy under a claim, swapped in whole --------------------------------------

_KILLED_EXPORT = r"""
import os, signal, sys
import emovox.training.export as ex
ex.update_artifact = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)  # model.json next
ex.export_onnx(sys.argv[1], opset=18)
"""


def test_an_export_killed_before_its_model_json_leaves_the_folder_as_it_was(tiny_model,
                                                                             tmp_path):
    """Killed after the new model.onnx was renamed in and before model.json, neither
    backend loaded the folder (code review, stop 48)."""
    from emovox.serving.predictor import Predictor
    from emovox.training.export import export_onnx

    folder = tmp_path / "m"
    shutil.copytree(tiny_model, folder)
    before = _digests(folder)
    r = subprocess.run([sys.executable, "-c", _KILLED_EXPORT, str(folder)], env=ENV,
                       capture_output=True)
    assert r.returncode == -signal.SIGKILL, r.stderr[-500:]
    assert _digests(folder) == before
    for backend in ("torch", "onnx"):
        assert Predictor.from_artifact(folder, backend=backend).backend == backend
    export_onnx(folder, opset=18)  # and the killed one's copy is cleaned up
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    assert Predictor.from_artifact(folder, backend="onnx").backend == "onnx"


def test_an_export_is_refused_while_another_process_writes_the_folder(tiny_model, tmp_path):
    """An export finishing while `calibrate` rewrote the folder was lost, or lost
    calibrate's work (code review, stop 48)."""
    from emovox.training.export import export_onnx

    folder = tmp_path / "m"
    shutil.copytree(tiny_model, folder)
    before = _digests(folder)
    with _claimed_elsewhere(tmp_path / f".m.build-{ELSEWHERE}-ab12cd34"):
        with pytest.raises(ArtifactError, match=rf"another emovox process \(PID {ELSEWHERE}\) "
                           "is writing"):
            export_onnx(folder, opset=18)
    assert _digests(folder) == before
    (folder / "notes.txt").write_text("mine")  # rewritten whole: said before, in its words
    with pytest.raises(ArtifactError, match="also holds notes.txt.*export rewrites"):
        export_onnx(folder, opset=18)
    assert _digests(folder) == {**before, "notes.txt": _digests(folder)["notes.txt"]}


# -- SIGTERM: cleaned up as Ctrl-C ---------------------------------------------------------

_CLI = r"""
import os, signal, sys, time
from pathlib import Path
import emovox.cli.app
from emovox.cli.common import exit_interrupted
from emovox.experiment.rundest import staged_run_dir


def stage(out: Path) -> None:
    with staged_run_dir(out) as st:
        (st / "metrics.json").write_text("{}")
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(60)


def kept(out: Path) -> None:
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(60)
    except KeyboardInterrupt:
        exit_interrupted("interrupted: what was written is kept")


def forked(out: Path) -> None:
    pid = os.fork()
    if pid == 0:
        os._exit(0 if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL else 3)
    sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))


cli = sys.modules["emovox.cli.app"]  # (the package's `app` is the Typer object)
for command in (stage, kept, forked):
    cli.app.command(command.__name__)(command)
sys.argv = ["emovox", *sys.argv[1:]]
cli.main()
"""


def test_sigterm_cleans_up_as_ctrl_c_does_and_exits_143(tmp_path):
    """Slurm's preemption or `kill` left the run's hidden staging folder for ever: default
    run names carry the time, so no later run of that name removed it (stop 48)."""

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", _CLI, *args], env=ENV,
                              capture_output=True, text=True, timeout=120)

    r = cli("stage", str(tmp_path / "runs" / "crnn-emobox-20261125-101500"))
    assert r.returncode == 143, r.stderr[-500:]
    assert not (tmp_path / "runs").exists()  # the stage, and the runs/ made for it
    r = cli("kept", str(tmp_path))
    assert r.returncode == 143 and "what was written is kept" in r.stderr
    r = cli("forked", str(tmp_path))  # a forked worker still ends at a pool's SIGTERM
    assert r.returncode == 0, r.stderr[-500:]


# -- merge and fuse: inputs being rewritten --------------------------------------------------


def test_runs_being_rewritten_are_not_combined(tmp_path):
    """`merge p1 p2` while `evaluate --out p2` ran again read the old p2 without a word
    (code review, stop 48)."""
    a = one_hot_run(tmp_path, "a", ["angry"] * 4, "m")
    b = one_hot_run(tmp_path, "b", ["sad"] * 4, "m")
    with _claimed_elsewhere(tmp_path / f".b.staging-{ELSEWHERE}-ab12cd34"):
        for combine in (fuse.fuse_runs, fuse.merge_runs):
            with pytest.raises(ConfigError, match=rf"\(PID {ELSEWHERE}\) is writing .*b now"):
                combine([a, b], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_run_replaced_while_it_was_read_is_not_combined(tmp_path, monkeypatch):
    a = one_hot_run(tmp_path, "a", ["angry"] * 4, "m")
    b = one_hot_run(tmp_path, "b", ["sad"] * 4, "m")
    read = fuse.read_run

    def read_then_replace(run):
        record = read(run)
        if Path(run).name == "b":  # a writer that started after the check swaps its run in
            os.rename(b, tmp_path / "b.old")
            shutil.copytree(tmp_path / "b.old", b)
        return record

    monkeypatch.setattr(fuse, "read_run", read_then_replace)
    with pytest.raises(ConfigError, match="b was replaced while it was read"):
        fuse.fuse_runs([a, b], tmp_path / "out")
    assert not (tmp_path / "out").exists()
