"""``emovox --help``: each command's description is one flowing paragraph (the docstrings'
source line breaks broke sentences in the middle of rich's command list)."""

from __future__ import annotations

from typer.testing import CliRunner

from emovox.cli import app


def test_command_help_has_no_source_line_breaks():
    names = [c.name for c in app.registered_commands]
    assert names[:3] == ["evaluate", "scan", "report"] and "app" in names and "serve" in names
    for command in app.registered_commands:
        assert command.help and "\n" not in command.help, command.name


def test_help_lists_each_description_unbroken_on_a_wide_terminal():
    out = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"}).output
    assert "write a run directory; or, with --artifact, score a trained model" in out
    assert "resumable, bad files become error rows. Exit code 1 if any file failed." in out


def test_dash_h_is_help_everywhere():
    """`emovox predict -h` was "No such option: -h" (CLI QA, stop 33)."""
    for args in (["-h"], ["predict", "-h"], ["batch", "-h"], ["evaluate", "-h"]):
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 0 and "Usage:" in res.output, (args, res.output)


def test_help_and_usage_errors_into_a_pipe_are_plain_and_whole(capsys, monkeypatch):
    """Into a pipe or a file (pytest's capture is neither a terminal) rich boxed help and
    usage errors at 80 columns, cut long words with "…" and showed <bool> beside flags:
    the console script now lets click write them (stop 35)."""
    import sys

    import pytest
    import typer.core

    from emovox.cli.app import main

    monkeypatch.setattr(typer.core, "HAS_RICH", typer.core.HAS_RICH)  # restored after
    for argv, code in ((["predict", "--bogus"], 2), (["predict", "--help"], 0),
                       (["--help"], 0)):
        monkeypatch.setattr(sys, "argv", ["emovox", *argv])
        with pytest.raises(SystemExit) as done:
            main()
        assert done.value.code == code, argv
        res = capsys.readouterr()
        text = res.out + res.err
        assert "╭" not in text and "…" not in text and "<bool>" not in text, text
        if code:
            assert "Error: No such option: --bogus" in res.err
        elif argv == ["--help"]:  # each command's whole description, wrapped
            assert "directory; or, with --artifact, score a trained model on another" in text
        else:
            assert "emovox/data/schema/prediction-v1.json" in res.out


def test_plain_help_shows_no_rich_markup_escapes(capsys, monkeypatch):
    """`emovox listen --help | cat` printed `emovox\\[live]` (README audit, stop 36): in a
    pipe click prints help as written, so no help text may hold rich's escapes."""
    import sys

    import pytest
    import typer.core

    from emovox.cli.app import main

    monkeypatch.setattr(typer.core, "HAS_RICH", typer.core.HAS_RICH)  # restored after
    for command in [c.name for c in app.registered_commands]:
        monkeypatch.setattr(sys, "argv", ["emovox", command, "--help"])
        with pytest.raises(SystemExit) as done:
            main()
        assert done.value.code == 0, command
        out = capsys.readouterr().out
        assert "\\[" not in out and "[/" not in out and "[bold" not in out, (command, out)
