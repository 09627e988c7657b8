"""`emovox batch` with worker processes (emovox.serving.pool): the same rows as one process,
bad files as error rows, a worker that dies costs one error row, a model that cannot load
is reported as its own error."""

from __future__ import annotations

import csv
import multiprocessing as mp
import os
import sys
from pathlib import Path

import pytest

from emovox.artifact import ArtifactError
from emovox.serving import pool
from emovox.serving.batch import ERROR_LABEL, predict_one, run_batch
from emovox.serving.predictor import Predictor
from signals import noise, silence, voice, write_clip


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[Path]:
    d = tmp_path_factory.mktemp("pool-clips")
    out = []
    for i in range(7):
        out.append(write_clip(d / f"v{i}.wav", voice(1.5 + 0.5 * i, f0=140.0 + 20 * i)))
    out.append(write_clip(d / "long.wav", voice(14.0)))  # several windows
    out.append(write_clip(d / "silent.wav", silence(1.0)))
    out.append(write_clip(d / "hiss.wav", noise(2.0, amp=0.05)))
    (d / "empty.wav").write_bytes(b"")
    (d / "text.wav").write_text("not audio\n" * 30)
    out += [d / "empty.wav", d / "text.wav"]
    return out


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture()
def forked(monkeypatch):
    """Worker processes by fork, so a patch made here reaches them."""
    monkeypatch.setattr(pool, "pool_context", lambda: mp.get_context("fork"))


def test_processes_give_the_rows_of_one_process(tiny_model, clips, tmp_path):
    serial = run_batch([str(c) for c in clips], tmp_path / "one.csv", artifact=tiny_model,
                       workers=1)
    procs = run_batch([str(c) for c in clips], tmp_path / "procs.csv", artifact=tiny_model,
                      workers=2, processes=True)
    a, b = _rows(tmp_path / "one.csv"), _rows(tmp_path / "procs.csv")
    assert a == b and len(a) == len(clips)
    assert serial.errors == procs.errors == 2 and procs.no_speech == serial.no_speech >= 2
    assert {r["path"].rsplit("/", 1)[-1] for r in a if r["status"] == ERROR_LABEL} == \
        {"empty.wav", "text.wav"}


def test_chunks_are_in_order_and_match_one_file_at_a_time(tiny_model, clips, forked):
    """Small chunks, more chunks than workers in flight: rows in input order, each the row
    predict_one gives (the network sees several clips per call: same numbers)."""
    pred = Predictor.from_artifact(tiny_model, threads=1)
    one = [predict_one(pred, c, None) for c in clips]
    rows = list(pool.process_rows(clips, artifact=tiny_model, backend="auto", workers=2,
                                  max_duration=None, fmt="csv", chunk=3))
    assert [r["path"] for r in rows] == [r["path"] for r in one]
    for r, s in zip(rows, one, strict=True):
        assert {k: v for k, v in r.items() if not k.startswith("p_")} == \
            {k: v for k, v in s.items() if not k.startswith("p_")}
        for k in r:
            if k.startswith("p_") and r[k] != "":
                assert r[k] == pytest.approx(s[k], abs=2e-6)


def test_a_worker_that_dies_costs_one_error_row(tiny_model, clips, forked, monkeypatch):
    real = pool.predict_chunk

    def dying(predictor, paths, max_duration, fmt="csv"):
        if any(p.name == "v3.wav" for p in paths):
            os._exit(3)  # what a segfault in a native library looks like to the pool
        return real(predictor, paths, max_duration, fmt)

    monkeypatch.setattr(pool, "predict_chunk", dying)
    rows = list(pool.process_rows(clips, artifact=tiny_model, backend="auto", workers=2,
                                  max_duration=None, fmt="csv", chunk=2))
    assert [Path(r["path"]).name for r in rows] == [c.name for c in clips]
    dead = [r for r in rows if r["error"] == pool.CRASH_MESSAGE]
    assert [Path(r["path"]).name for r in dead] == ["v3.wav"]
    assert sum(r["status"] == ERROR_LABEL for r in rows) == 3  # + empty.wav, text.wav


class _BreakingExecutor:
    """Runs tasks in this process; the ``fail_at``-th submit of the whole test raises
    ``BrokenProcessPool``, as ``ProcessPoolExecutor.submit`` does once a worker has died
    between two submits."""

    submits = 0
    fail_at = 0

    def __init__(self, *_: object, **__: object) -> None:
        pass

    def submit(self, fn, *args):  # noqa: ANN001, ANN202
        from concurrent.futures import Future
        from concurrent.futures.process import BrokenProcessPool

        type(self).submits += 1
        if type(self).submits == type(self).fail_at:
            raise BrokenProcessPool("a child process terminated abruptly")
        fut: Future = Future()
        fut.set_result(fn(*args))
        return fut

    def shutdown(self, *_: object, **__: object) -> None:
        pass


@pytest.mark.parametrize("fail_at", [1, 2, 3, 5, 6])
def test_a_pool_found_broken_at_submit_loses_no_file(monkeypatch, fail_at):
    """A worker can die between two submits: the next ``submit`` then raises, not a result.
    The chunks in flight are re-run one file at a time and the rest go on: every path once,
    in order, none reported as a crash (no file was being read when the pool broke here)."""
    monkeypatch.setattr(_BreakingExecutor, "submits", 0)
    monkeypatch.setattr(_BreakingExecutor, "fail_at", fail_at)
    monkeypatch.setattr(pool._Pool, "_new", lambda self: _BreakingExecutor())
    monkeypatch.setattr(pool, "_run_chunk", lambda paths, max_duration, fmt: (
        None, [{"path": p, "error": "", "label": "calm"} for p in paths]))
    todo = [Path(f"clip{i:02d}.wav") for i in range(11)]
    rows = list(pool.process_rows(todo, artifact=None, backend="auto", workers=2,
                                  max_duration=None, fmt="csv", chunk=2))
    assert [r["path"] for r in rows] == [str(p) for p in todo]
    assert not any(r["error"] for r in rows)


def test_a_model_that_cannot_load_is_its_own_error(clips, tmp_path):
    broken = tmp_path / "model"
    broken.mkdir()
    (broken / "model.json").write_text("{not json")
    with pytest.raises(ArtifactError):
        run_batch([str(clips[0])], tmp_path / "r.csv", artifact=broken, workers=2,
                  processes=True)


def test_one_bad_waveform_in_a_chunk_costs_only_its_row(tiny_model, clips, monkeypatch):
    """predict_chunk classifies the chunk together; when that fails it goes file by file."""
    pred = Predictor.from_artifact(tiny_model, threads=1)
    good = pool.predict_chunk(pred, clips[:3], None)
    real = pred.predict_batch

    def picky(wave, sr, *, source="<array>"):
        if source.endswith("v1.wav"):
            raise ValueError("bad wave")
        return real([wave], sr, sources=[source])[0]

    monkeypatch.setattr(pred, "predict_batch", lambda *a, **k: (_ for _ in ()).throw(
        ValueError("bad wave")))
    monkeypatch.setattr(pred, "predict_wave", picky)
    rows = pool.predict_chunk(pred, clips[:3], None)
    assert rows[1]["status"] == ERROR_LABEL and rows[1]["error"] == "ValueError: bad wave"
    assert rows[0] == good[0] and rows[2] == good[2]


def test_a_chunk_holds_a_bounded_length_of_decoded_audio(tiny_model, tmp_path, monkeypatch):
    """A chunk's 16 files were all decoded before any was classified: 16 files of 30
    minutes held 1.9 GB per worker (code review, stop 47). Decoded audio is classified once
    HELD_SECONDS of it is held; the rows are the same."""
    pred = Predictor.from_artifact(tiny_model, threads=1)
    files = [write_clip(tmp_path / f"long{k}.wav", voice(50.0, f0=150.0 + 20 * k))
             for k in range(5)]
    whole = pool.predict_chunk(pred, files, None)
    held, real = [], pred.predict_batch

    def spy(waves, sr, **kw):
        held.append(sum(len(w) for w in waves) / sr)
        return real(waves, sr, **kw)

    monkeypatch.setattr(pred, "predict_batch", spy)
    monkeypatch.setattr(pool, "HELD_SECONDS", 120.0)
    rows = pool.predict_chunk(pred, files, None)
    assert [round(s) for s in held] == [150, 100]  # three files reach 120 s, then the rest
    assert [r["label"] for r in rows] == [r["label"] for r in whole]


def test_pool_context_never_forks_a_threaded_process(monkeypatch):
    monkeypatch.setattr(pool.threading, "active_count", lambda: 3)
    assert pool.pool_context().get_start_method() != "fork"


def test_pool_context_forks_only_before_a_model_runtime_is_loaded(monkeypatch):
    monkeypatch.setattr(pool.threading, "active_count", lambda: 1)
    for name in ("onnxruntime", "torch"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    if sys.platform.startswith("linux"):
        assert pool.pool_context().get_start_method() == "fork"
    monkeypatch.setitem(sys.modules, "onnxruntime", object())
    assert pool.pool_context().get_start_method() != "fork"


@pytest.mark.parametrize("processes", [True, False])
def test_ctrl_c_keeps_what_was_written_and_the_next_run_goes_on(tiny_model, tmp_path,
                                                                 processes):
    """Ctrl-C (KeyboardInterrupt, here raised after the 20th row) stopped a batch with no
    count of what it wrote; a thread pool first ran every queued chunk (CLI QA, stop 33)."""
    from emovox.serving.batch import BatchInterrupted

    d = tmp_path / "clips"
    files = [str(write_clip(d / f"c{i:02d}.wav", voice(1.0, f0=120.0 + 5 * i)))
             for i in range(40)]  # 3 chunks

    def stop_at_20(done: int, total: int) -> None:
        if done == 20:
            raise KeyboardInterrupt

    out = tmp_path / "r.csv"
    with pytest.raises(BatchInterrupted) as info:
        run_batch(files, out, artifact=tiny_model, workers=2, processes=processes,
                  progress=stop_at_20)
    assert info.value.summary.done == 20 and len(_rows(out)) == 20
    rest = run_batch(files, out, artifact=tiny_model, workers=2, processes=processes)
    assert (rest.skipped, rest.done) == (20, 20)
    rows = _rows(out)
    assert sorted(r["path"] for r in rows) == sorted(str(Path(f).resolve()) for f in files)


def test_ctrl_c_right_after_a_row_is_written_counts_that_row(tiny_model, tmp_path,
                                                              monkeypatch):
    """A Ctrl-C between a row's write and its count: "the 27 answers of this run are kept"
    with 28 rows in the file (clean-clone CI, stop 40). The count is read from the file."""
    from emovox.serving import batch as batch_mod
    from emovox.serving.batch import BatchInterrupted

    d = tmp_path / "clips"
    files = [str(write_clip(d / f"c{i:02d}.wav", voice(1.0, f0=120.0 + 5 * i)))
             for i in range(8)]
    real = batch_mod.RowWriter.write
    n = {"rows": 0}

    def write_then_stop(self, row):
        real(self, row)
        n["rows"] += 1
        if n["rows"] == 5:
            raise KeyboardInterrupt  # written, not yet counted

    monkeypatch.setattr(batch_mod.RowWriter, "write", write_then_stop)
    out = tmp_path / "r.csv"
    with pytest.raises(BatchInterrupted) as info:
        run_batch(files, out, artifact=tiny_model, workers=1, processes=False)
    assert info.value.summary.done == 5 == len(_rows(out))


def _default_sigint() -> None:
    """In the child, before it starts: Ctrl-C's default action. A shell script's background
    job (a CI runner's, say) inherits SIGINT ignored, and Python then never turns it into
    KeyboardInterrupt: the batch ran to its end, exit 0 (clean-clone CI, stop 40)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
def test_sigint_to_a_batch_and_its_workers_says_what_is_kept(tiny_model, tmp_path):
    """A real Ctrl-C reaches the whole process group: the workers ignore it (no traceback
    from each), the batch says how many answers it kept and exits 130."""
    import signal
    import subprocess
    import time

    d = tmp_path / "clips"
    for i in range(600):
        write_clip(d / f"c{i:03d}.wav", voice(0.5, f0=120.0 + (i % 40)))
    out = tmp_path / "r.csv"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-m", "emovox.cli", "batch", str(d), "--out", str(out),
                             "-m", str(tiny_model), "--workers", "2"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=_default_sigint)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not out.exists() or len(_rows(out)) < 1):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    kept = len(_rows(out))
    assert proc.returncode == 130 and 0 < kept < 600, (proc.returncode, kept, err)
    assert "Traceback" not in err and f"the {kept} answers of this run are kept" in err, err


def test_kill_leaves_no_executor_thread_to_race_the_exit_hook():
    """kill() returned while the executor's manager thread was still closing its wake-up
    pipe: the interpreter's exit hook then wrote to it and printed a traceback after a
    Ctrl-C ("Bad file descriptor", a clean-clone CI of stop 37)."""
    import time
    from concurrent.futures import ProcessPoolExecutor

    p = object.__new__(pool._Pool)
    p.ex = ProcessPoolExecutor(max_workers=1, mp_context=pool.pool_context())
    running = p.ex.submit(time.sleep, 30)
    p.ex.submit(time.sleep, 30)
    deadline = time.monotonic() + 30
    while not running.running() and time.monotonic() < deadline:
        time.sleep(0.01)
    manager = p.ex._executor_manager_thread
    started = time.monotonic()
    p.kill()
    assert manager is not None and not manager.is_alive()
    assert time.monotonic() - started < 10  # the sleeping worker was killed, not awaited


def test_one_batch_per_output_and_what_a_shared_output_keeps(tiny_model, tmp_path,
                                                             monkeypatch):
    """Two batches on one --out: the second removed rows of the first without a word; a
    retry made a shared results file 0600; a full disk ended in a bare errno; a link loop
    in a folder killed the whole batch, and FIFOs and dangling links vanished without a
    row (QA, stop 38)."""
    import stat

    from emovox.fileio import locked_beside
    from emovox.serving import batch as batch_mod
    from emovox.serving.batch import BatchStopped

    d = tmp_path / "clips"
    for i in range(4):
        write_clip(d / f"c{i}.wav", voice(0.6, f0=130.0 + 10 * i))
    (d / "bad.wav").write_text("not audio")
    (d / "l1.wav").symlink_to(d / "l2.wav")
    (d / "l2.wav").symlink_to(d / "l1.wav")
    (d / "gone.wav").symlink_to(d / "nothing.wav")
    os.mkfifo(d / "pipe.wav")
    out = tmp_path / "r.csv"
    with locked_beside(out, "the batch output"), pytest.raises(
            BlockingIOError, match="another emovox process is writing the batch output"):
        run_batch([str(d)], out, artifact=tiny_model, workers=1, processes=False)
    assert not out.exists()
    from emovox.serving.batch_adapt import run_speaker_batch  # its --out too (re-check, 38)

    with locked_beside(out, "the batch output"), pytest.raises(BlockingIOError):
        run_speaker_batch([str(d)], out, speaker_from="parent", artifact=tiny_model,
                          workers=1, processes=False)
    (tmp_path / ".odd.csv.lock").symlink_to(tmp_path / "victim")  # never followed
    with pytest.raises(OSError, match=r"cannot use the lock file .*\.odd\.csv\.lock"):
        run_batch([str(d)], tmp_path / "odd.csv", artifact=tiny_model, workers=1)
    assert not (tmp_path / "victim").exists()
    s = run_batch([str(d)], out, artifact=tiny_model, workers=1, processes=False)
    rows = {Path(r["path"]).name: r for r in _rows(out)}
    assert s.found == 9 and len(rows) == 9  # every entry a row: 4 answers, 5 error rows
    assert {n for n, r in rows.items() if r["error"]} == {"bad.wav", "l1.wav", "l2.wav",
                                                          "nothing.wav", "pipe.wav"}
    out.chmod(0o664)
    run_batch([str(d)], out, artifact=tiny_model, workers=1, processes=False)  # retries
    assert stat.S_IMODE(out.stat().st_mode) == 0o664 and len(_rows(out)) == 9
    adapted = tmp_path / "a.csv"
    run_speaker_batch([str(d)], adapted, speaker_from="parent", artifact=tiny_model,
                      workers=1, processes=False)
    adapted.chmod(0o600)  # the adapted rewrite keeps it too (it became 0644)
    run_speaker_batch([str(d)], adapted, speaker_from="parent", artifact=tiny_model,
                      workers=1, processes=False)
    assert stat.S_IMODE(adapted.stat().st_mode) == 0o600
    old = os.umask(0o077)  # a new adapted output follows the umask (it was made 0644)
    try:
        run_speaker_batch([str(d)], tmp_path / "u.csv", speaker_from="parent",
                          artifact=tiny_model, workers=1, processes=False)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "u.csv").stat().st_mode) == 0o600

    def full_disk(self, row):
        if self.n_written >= 2:
            raise OSError(28, "No space left on device")
        self.n_written += 1
        real(self, row)

    def close_full(self):  # the buffered rows fail again at close (a real full disk)
        self.f.close()
        raise OSError(28, "No space left on device")

    real = batch_mod.RowWriter.write
    monkeypatch.setattr(batch_mod.RowWriter, "n_written", 0, raising=False)
    monkeypatch.setattr(batch_mod.RowWriter, "write", full_disk)
    monkeypatch.setattr(batch_mod.RowWriter, "close", close_full)
    with pytest.raises(BatchStopped) as info:
        run_batch([str(d)], tmp_path / "full.csv", artifact=tiny_model, workers=1,
                  processes=False)
    assert info.value.summary.done == 2
    assert info.value.reason.endswith("full.csv failed (No space left on device)")


def test_a_pool_that_fails_to_start_a_worker_is_stopped_not_awaited(monkeypatch):
    """"Too many open files" while a worker started: the pool was shut down waiting for
    its workers, one of which waited for ever (a hung batch: odd-environment QA, stop 38)."""
    calls: list[str] = []

    class NoFds:
        def submit(self, *a, **k):
            raise OSError(24, "Too many open files")

        def shutdown(self, wait=True, cancel_futures=False):
            calls.append(f"shutdown(wait={wait})")

    monkeypatch.setattr(pool._Pool, "_new", lambda self: NoFds())
    with pytest.raises(OSError, match="Too many open files"):
        list(pool.process_rows([Path("a.wav")], artifact=None, backend="auto", workers=2,
                               max_duration=None, fmt="csv"))
    assert calls[0] == "shutdown(wait=False)"  # killed first: nothing waited for
