"""A per-file deadline in `emovox batch` (emovox.serving.pool, stop 51): a file whose read
never returns (a stuck network mount, a hung FUSE file system) stopped the batch for ever.
Past its deadline its worker process is killed, the file is an error row, the batch goes on.

A real hanging file cannot be made here (no FUSE; a FIFO is refused as "not a regular
file" before anything waits on it), so the decoder is made to hang on one file name: the
workers are forked, so the patch reaches them (the src has no hook for it)."""

from __future__ import annotations

import math
import multiprocessing as mp
import time
from pathlib import Path

import pytest

from emovox.errors import ConfigError
from emovox.serving import pool
from emovox.serving.batch import ERROR_LABEL, check_file_timeout, run_batch
from signals import voice, write_clip


@pytest.fixture()
def forked(monkeypatch):
    """Worker processes by fork, so a patch made here reaches them."""
    monkeypatch.setattr(pool, "pool_context", lambda: mp.get_context("fork"))


@pytest.fixture()
def slow_reads(monkeypatch, forked):
    """The decoder (as the workers import it) hangs for ever on ``hang*.wav`` and takes
    0.6 s over ``slow*.wav``; the others are read as usual."""
    import emovox.audio

    real = emovox.audio.load_audio

    def load_audio(path, *a, **k):
        if Path(path).name.startswith("hang"):
            time.sleep(3600)  # a read that never returns
        if Path(path).name.startswith("slow"):
            time.sleep(0.6)
        return real(path, *a, **k)

    monkeypatch.setattr(emovox.audio, "load_audio", load_audio)


@pytest.fixture()
def clip_dir(tmp_path) -> Path:
    d = tmp_path / "clips"
    for i, name in enumerate(["good0", "hang", "good1", "slow0", "slow1", "fast"]):
        write_clip(d / f"{name}.wav", voice(1.0, f0=140.0 + 20 * i))
    return d


def _no_children_left() -> None:
    assert mp.active_children() == []  # the hung worker was killed, the others ended


def _rows(tiny_model, files, deadline, **kw):
    return list(pool.process_rows(files, artifact=tiny_model, backend="auto",
                                  max_duration=None, fmt="csv", deadline=deadline, **kw))


def test_a_file_that_hangs_is_an_error_row_and_the_batch_goes_on(tiny_model, clip_dir,
                                                                  slow_reads):
    """One file per chunk: the chunk of the hanging file had its own deadline, so it is
    its error row at once (no second wait); the chunk after it is re-run in a new pool."""
    files = [clip_dir / n for n in ("good0.wav", "hang.wav", "good1.wav")]
    started = time.monotonic()
    rows = _rows(tiny_model, files, 1.0, workers=1, chunk=1)
    took = time.monotonic() - started
    assert [Path(r["path"]).name for r in rows] == ["good0.wav", "hang.wav", "good1.wav"]
    assert rows[1]["status"] == ERROR_LABEL
    assert rows[1]["error"] == pool.TIMEOUT_MESSAGE.format(s=1.0)
    assert "no answer within 1 s" in rows[1]["error"]
    assert [r["status"] for r in (rows[0], rows[2])] != [ERROR_LABEL] * 2
    assert not rows[0]["error"] and not rows[2]["error"] and rows[0]["n_windows"] != ""
    assert took < 30  # one deadline waited, not an hour
    _no_children_left()


def test_a_chunk_that_hangs_is_re_run_one_file_at_a_time(tiny_model, clip_dir, slow_reads):
    """A chunk of two files past 2 x its deadline: its files and those of the chunk in
    flight behind it go again one per task, each with its own deadline; only the hanging
    one is an error row, in its place."""
    files = [clip_dir / n for n in ("good0.wav", "hang.wav", "good1.wav", "fast.wav")]
    rows = _rows(tiny_model, files, 0.5, workers=1, chunk=2)
    assert [Path(r["path"]).name for r in rows] == [f.name for f in files]
    assert [r["error"] for r in rows] == ["", pool.TIMEOUT_MESSAGE.format(s=0.5), "", ""]
    _no_children_left()


def test_a_chunk_that_waited_in_the_queue_is_not_timed_out(tiny_model, clip_dir,
                                                           slow_reads):
    """Two chunks in flight for one worker: the second waits while the first runs. Counted
    from its submission it would pass its 0.9 s (0.6 s waiting + 0.6 s running); counted
    from when the chunk before it was handed out, it does not."""
    files = [clip_dir / n for n in ("fast.wav", "slow0.wav", "slow1.wav")]
    rows = _rows(tiny_model, files, 0.9, workers=1, chunk=1)
    assert [Path(r["path"]).name for r in rows] == [f.name for f in files]
    assert [r["error"] for r in rows] == ["", "", ""]
    _no_children_left()


def test_without_a_deadline_nothing_is_timed(tiny_model, clip_dir, slow_reads):
    rows = _rows(tiny_model, [clip_dir / "slow0.wav", clip_dir / "fast.wav"], None,
                 workers=1, chunk=1)
    assert [r["error"] for r in rows] == ["", ""]


def test_a_hanging_file_in_a_batch_costs_one_error_row_kept_for_retry(tiny_model, clip_dir,
                                                                       slow_reads, tmp_path):
    """run_batch with one worker and a deadline: processes (a thread cannot be stopped);
    the timed-out row is an error row, counted as one and retried by the next run."""
    files = [str(clip_dir / n) for n in ("good0.wav", "hang.wav")]
    out = tmp_path / "r.csv"
    s = run_batch(files, out, artifact=tiny_model, workers=1, file_timeout=0.4)
    assert (s.done, s.errors, s.failed) == (2, 1, 1)
    again = run_batch(files, out, artifact=tiny_model, workers=1, file_timeout=0.4)
    assert (again.retried, again.done, again.errors) == (1, 1, 1)
    _no_children_left()


@pytest.mark.parametrize("bad", [-1, -0.5, math.nan, math.inf, -math.inf, "soon"])
def test_a_bad_deadline_is_refused(bad):
    with pytest.raises(ConfigError, match="file timeout must be"):
        check_file_timeout(bad)


def test_zero_or_none_is_no_deadline():
    assert check_file_timeout(0) is None and check_file_timeout(None) is None
    assert check_file_timeout("2.5") == 2.5


def test_a_deadline_needs_worker_processes(tmp_path):
    from emovox.serving.batch import Engine

    clip = write_clip(tmp_path / "a.wav", voice(0.5))
    with pytest.raises(ConfigError, match="threads cannot be stopped"):
        run_batch([str(clip)], tmp_path / "r.csv", workers=1, processes=False,
                  file_timeout=5)
    with pytest.raises(ConfigError, match="the Dask engine has none"):
        run_batch([str(clip)], tmp_path / "r.csv", engine=Engine.DASK, file_timeout=5)
    assert not (tmp_path / "r.csv").exists()


def test_a_pool_broken_while_starting_is_replaced_not_looped(monkeypatch):
    """With a deadline a new pool is first asked whether its model loaded; a pool found
    broken then is replaced, and every file still gets its row (no endless restart)."""
    from concurrent.futures import Future
    from concurrent.futures.process import BrokenProcessPool

    made = []

    class Broken:
        def __init__(self) -> None:
            self.broken = False
            made.append(self)

        def submit(self, fn, *args):
            if self.broken:
                raise BrokenProcessPool("a child process terminated abruptly")
            self.broken = True
            fut: Future = Future()
            fut.set_exception(BrokenProcessPool("a child process terminated abruptly"))
            return fut

        def shutdown(self, *a, **k):
            pass

    monkeypatch.setattr(pool._Pool, "_new", lambda self: Broken())
    rows = list(pool.process_rows([Path("a.wav"), Path("b.wav")], artifact=None,
                                  backend="auto", workers=1, max_duration=None, fmt="csv",
                                  deadline=5.0))
    assert [Path(r["path"]).name for r in rows] == ["a.wav", "b.wav"]
    assert {r["error"] for r in rows} == {pool.CRASH_MESSAGE} and len(made) < 20


def test_ctrl_c_with_a_deadline_keeps_what_was_written(tiny_model, tmp_path):
    """The deadline's timed waits still give way to Ctrl-C at once: the rows written are
    kept and counted, the workers killed, the next run goes on."""
    from emovox.serving.batch import BatchInterrupted

    files = [str(write_clip(tmp_path / "clips" / f"c{i:02d}.wav", voice(0.6, f0=120.0 + 5 * i)))
             for i in range(20)]  # 2 chunks

    def stop_at_10(done: int, total: int) -> None:
        if done == 10:
            raise KeyboardInterrupt

    out = tmp_path / "r.csv"
    with pytest.raises(BatchInterrupted) as info:
        run_batch(files, out, artifact=tiny_model, workers=2, file_timeout=30,
                  progress=stop_at_10)
    assert info.value.summary.done == 10
    _no_children_left()
    rest = run_batch(files, out, artifact=tiny_model, workers=2, file_timeout=30)
    assert (rest.skipped, rest.done, rest.errors) == (10, 10, 0)
