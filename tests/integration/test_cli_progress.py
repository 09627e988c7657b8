"""Progress of long work on a terminal (stderr): multi-file ``predict`` and the ``timeline``
of a recording over a minute; none for a few files, a short file, or when stderr is not a
terminal."""

from __future__ import annotations

import io

import pytest
from cli_helpers import ANSI, invoke
from rich.console import Console

from emovox.cli import render
from signals import voice, write_clip


@pytest.fixture
def terminal(monkeypatch) -> io.StringIO:
    """stderr of the CLI as a terminal, captured."""
    buf = io.StringIO()
    monkeypatch.setattr(render, "err_console", Console(file=buf, force_terminal=True,
                                                       width=100))
    return buf


def test_predict_shows_progress_for_more_than_a_few_files(fake_ravdess, terminal):
    clips = sorted((fake_ravdess / "Actor_03").glob("*.wav"))
    res = invoke(["predict", *clips[:5]])
    assert res.exit_code == 0, res.output
    shown = ANSI.sub("", terminal.getvalue())
    assert "predicting" in shown and "5/5" in shown
    terminal.seek(0)
    terminal.truncate()
    assert invoke(["predict", *clips[:3]]).exit_code == 0
    assert "predicting" not in terminal.getvalue()


def test_predict_shows_no_progress_when_stderr_is_not_a_terminal(fake_ravdess):
    clips = sorted((fake_ravdess / "Actor_03").glob("*.wav"))
    res = invoke(["predict", *clips[:5]])
    assert res.exit_code == 0 and "predicting" not in res.output


def test_timeline_shows_progress_for_a_recording_over_a_minute(tmp_path, terminal):
    long, short = tmp_path / "long.wav", tmp_path / "short.wav"
    write_clip(long, voice(61.0))
    write_clip(short, voice(20.0))
    res = invoke(["timeline", long, "--csv"])
    assert res.exit_code == 0, res.output
    shown = ANSI.sub("", terminal.getvalue())
    assert "timeline" in shown and "61/61 s" in shown
    terminal.seek(0)
    terminal.truncate()
    assert invoke(["timeline", short, "--csv"]).exit_code == 0
    assert "timeline" not in terminal.getvalue()
