"""The command line when its standard streams are odd (odd-environment QA, stop 38): an
output that takes nothing, a closed stdout, stderr or stdin, a 20-column terminal."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}


def _run(args: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emovox.cli", *args], env=kw.pop("env", ENV),
                          capture_output="stdout" not in kw and "stderr" not in kw, text=True,
                          timeout=120, **kw)


def test_an_output_that_takes_nothing_is_one_line_and_exit_1():
    """`> /dev/full`: an 86-line traceback and exit 120."""
    with open("/dev/full", "w") as full:
        r = _run(["models"], stdout=full, stderr=subprocess.PIPE)
    assert r.returncode == 1
    assert r.stderr.strip() == "error: cannot write the output (No space left on device)"
    pcm = (0.3 * np.sin(np.arange(3 * 16000) / 5) * 32767).astype("<i2").tobytes()
    with open("/dev/full", "w") as full:  # listen said "error: [Errno 28] ...", exit 2 (a
        r = _run(["listen", "-"], input=pcm.decode("latin-1"), stdout=full,  # usage error:
                 stderr=subprocess.PIPE)  # a review, stop 47)
    assert r.returncode == 1, r.stderr
    assert r.stderr.strip().endswith("error: cannot write the output (No space left on device)")
    clip = Path(__file__).resolve().parents[2] / "examples" / "tts_kids.wav"
    for fmt in ("--csv", "--json"):  # --csv's rows stream: "[Errno 28]", exit 2 (README
        with open("/dev/full", "w") as full:  # audit, stop 52)
            r = _run(["timeline", str(clip), fmt], stdout=full, stderr=subprocess.PIPE)
        assert r.returncode == 1, (fmt, r.stderr)
        assert r.stderr.strip().endswith("error: cannot write the output (No space left on "
                                         "device)"), r.stderr
    with tempfile.TemporaryFile("w") as small:  # ulimit -f: "[Errno 27]", exit 2 (a review,
        r = _run(["timeline", str(clip), "--csv"], stdout=small, stderr=subprocess.PIPE,
                 preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (100, 100)))
    assert r.returncode == 1 and "cannot write the output (File too large)" in r.stderr, \
        r.stderr  # stop 52)


def test_closed_streams_and_a_narrow_terminal(tmp_path: Path):
    """A closed stdout crashed every command at import ('NoneType' has no isatty), even
    `batch --out FILE`; a closed stdin crashed `listen -`; COLUMNS=20 drew empty cells."""
    clip = tmp_path / "a.wav"
    sf.write(clip, (0.1 * np.sin(np.arange(16000) / 5)).astype("float32"), 16000)
    out = tmp_path / "r.csv"
    r = _run(["batch", str(clip), "--out", str(out), "--workers", "1"],
             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
             preexec_fn=lambda: os.close(1))
    assert r.returncode == 0 and out.exists() and "Traceback" not in r.stderr, r.stderr
    r = _run(["listen", "-"], stdin=subprocess.DEVNULL, stderr=subprocess.PIPE,
             preexec_fn=lambda: os.close(0))
    assert r.returncode == 2 and "error: stdin is closed" in r.stderr, r.stderr
    r = _run(["models"], env={**ENV, "COLUMNS": "20"})
    assert r.returncode == 0 and "default" in r.stdout and "ravdess" in r.stdout


def test_nothing_is_written_under_home(tmp_path: Path):
    """ONNX Runtime queued a record of every run (executable, OS, CPU, a device id) under
    $HOME/.cache/Microsoft for upload, creating $HOME if need be (QA, stop 38)."""
    clip = tmp_path / "a.wav"
    sf.write(clip, (0.1 * np.sin(np.arange(16000) / 5)).astype("float32"), 16000)
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in ENV.items() if k != "ORT_DISABLE_TELEMETRY"}
    r = _run(["predict", str(clip), "--json"], env={**env, "HOME": str(home)})
    assert r.returncode == 0, r.stderr
    assert list(home.rglob("*")) == []


def test_an_output_that_cannot_show_every_character_loses_no_result():
    """ASCII or Latin-1 output (LC_ALL=C without UTF-8 mode, PYTHONIOENCODING): every table
    command ended in a UnicodeEncodeError traceback, its results lost (QA, stop 39);
    `python -m emovox` was refused."""
    for env in ({"PYTHONUTF8": "0", "LC_ALL": "C", "LANG": "C"}, {"PYTHONIOENCODING": "latin-1"}):
        r = _run(["models"], env={**ENV, **env}, encoding="latin-1")
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
        assert "default" in r.stdout and "UA" in r.stdout
    r = subprocess.run([sys.executable, "-m", "emovox", "--version"], env=ENV,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("emovox "), r.stderr


def test_a_streamed_output_that_goes_away_is_said_once_or_stops_quietly(monkeypatch):
    """`listen` and `timeline --csv` share one rule (stop 52): a full disk is the entry
    point's "cannot write the output", exit 1; a closed pipe (`| head`) stops quietly."""
    import errno

    import pytest

    from emovox.cli import common

    def fails(code):
        def write(*_):
            raise OSError(code, os.strerror(code)) if code != errno.EPIPE else \
                BrokenPipeError(code, os.strerror(code))
        return write

    dropped = []
    monkeypatch.setattr(common, "drop_stdout", lambda: dropped.append(1))
    assert common.written(lambda a, b: a + b, 1, 2) == 3
    for code in (errno.ENOSPC, errno.EFBIG, errno.EACCES):  # any failed write of it
        with pytest.raises(common.OutputGone) as gone:
            common.written(fails(code))
        with pytest.raises(common.OutputGone):
            common.output_gone(gone.value)
        assert gone.value.__cause__.errno == code
    with pytest.raises(common.OutputGone) as gone:
        common.written(fails(errno.EPIPE))
    common.output_gone(gone.value)
    assert dropped == [1]
