"""A user's review of the product CLI (stop 53): `predict DIR` names `emovox batch`; a
damaged M4A's message names the file as given (no ffmpeg ``file:/abs/path``), in the CLI
as in the API; durations under 1 s keep two decimals; upload names keep what README says."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from cli_io import invoke
from signals import SR, ffmpeg_encode, needs_ffmpeg, voice, write_clip

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _invoke(args):
    return invoke(args)


def _text(res) -> str:
    """Output without colour codes and table borders, whitespace collapsed."""
    return " ".join(ANSI.sub("", res.output).replace("│", " ").split())


# 1. `predict DIR` ---------------------------------------------------------------------------


def test_predict_of_a_folder_names_emovox_batch(tmp_path):
    """It said only "Pass the path of one file"."""
    folder = tmp_path / "my clips"
    folder.mkdir()
    res = _invoke(["predict", folder])
    assert res.exit_code == 2, res.output
    assert f"emovox batch '{folder}' --out results.csv" in _text(res), res.output


def test_predict_of_a_folder_among_files_names_emovox_batch_in_its_row(tmp_path):
    """A folder beside a file is its own error row (exit 1): that row names `batch`, the
    other file's does not."""
    folder, empty = tmp_path / "clips", tmp_path / "empty.wav"
    folder.mkdir()
    empty.write_bytes(b"")
    res = _invoke(["predict", "--json", folder, empty])
    assert res.exit_code == 1, res.output
    docs = json.loads(res.stdout)
    assert f"emovox batch {folder} --out results.csv" in docs[0]["error"], docs
    assert "is a directory" in docs[0]["error"] and "batch" not in docs[1]["error"], docs


# 2. a damaged M4A: the same words in the CLI and the API -------------------------------------


def _cut_m4a(tmp_path: Path) -> bytes:
    """An M4A (its index at the end) cut to a third: ffmpeg says "moov atom not found" and
    names its input, ``file:/abs/path: Invalid data found when processing input``."""
    m4a = ffmpeg_encode(write_clip(tmp_path / "s.wav", voice(3.0)), tmp_path / "s.m4a",
                        "-c:a", "aac")
    return m4a.read_bytes()[: m4a.stat().st_size // 3]


@needs_ffmpeg
def test_a_damaged_m4a_is_named_as_given_in_the_cli_as_in_the_api(tmp_path, monkeypatch):
    """The CLI kept ffmpeg's ``file:/tmp/.../memo.m4a`` where the API named the upload."""
    from emovox.audio import load_audio
    from emovox.errors import AudioError
    from emovox.serving.uploads import named_errors, open_upload

    cut = _cut_m4a(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    (work / "memo.m4a").write_bytes(cut)
    monkeypatch.chdir(work)
    res = _invoke(["predict", "--json", "memo.m4a"])
    assert res.exit_code == 1, res.output
    cli = json.loads(res.stdout)["error"]
    assert "file:" not in cli and str(tmp_path) not in cli and "moov atom" in cli, cli
    assert cli.count("memo.m4a") >= 2, cli  # ffmpeg's own line names it too
    # the API's words, from memory (a private copy for ffmpeg) and from a spooled copy
    for spool in (1 << 20, 0):
        with pytest.raises(AudioError) as err, \
                open_upload(cut, "memo.m4a", spool_bytes=spool) as up, named_errors(up):
            load_audio(up.source, filename=up.name)
        assert str(err.value) == cli, (spool, str(err.value))


@needs_ffmpeg
def test_ffmpeg_words_name_a_path_given_whole(tmp_path):
    """The library's own message: the path as given, once per mention, no ``file:``."""
    from emovox.audio import load_audio
    from emovox.errors import AudioError

    bad = tmp_path / "take (1).m4a"
    bad.write_bytes(_cut_m4a(tmp_path))
    with pytest.raises(AudioError) as err:
        load_audio(bad)
    msg = str(err.value)
    assert "file:" not in msg and msg.startswith(f"{bad}: "), msg
    assert f"; {bad}: " in msg, msg  # ffmpeg's "Invalid data" line


def test_named_input_leaves_our_pipe_to_clean_stderr():
    from emovox.audio.ffmpeg import clean_stderr, named_input

    text = "pipe:0: Invalid data found when processing input"
    assert named_input(text, "pipe:0", "memo.m4a") == text
    assert clean_stderr(text, "pipe:0", "memo.m4a") == ["Invalid data found when processing "
                                                       "input"]
    said = "file:/x/a\\1.m4a: End of file; /x/a\\1.m4a again"
    assert named_input(said, "file:/x/a\\1.m4a", r"a\1 \g<0>.m4a") == \
        r"a\1 \g<0>.m4a: End of file; a\1 \g<0>.m4a again"


# 3. durations under 1 s -------------------------------------------------------------------


def test_seconds_shown_keeps_two_decimals_under_one_second():
    from emovox.audio.limits import seconds_shown

    assert [seconds_shown(x) for x in (0.25, 0.0, 0.994, 1.0, 3.57, 61.25)] == \
        ["0.25 s", "0.00 s", "0.99 s", "1.0 s", "3.6 s", "61.2 s"]
    assert seconds_shown(0.996) == "1.0 s"  # not "1.00 s" (review of the fix)


def test_timeline_of_a_quarter_second_says_0_25_s(tmp_path):
    """Its title said "0.2 s" (and its one row ended at "0.2")."""
    t = np.arange(int(0.25 * SR)) / SR
    clip = write_clip(tmp_path / "q.wav", (0.3 * np.sin(2 * np.pi * 180 * t)).astype(np.float32))
    res = _invoke(["timeline", clip])
    assert res.exit_code == 0, res.output
    out = _text(res)
    assert "q.wav · 0.25 s · window" in out and "0.00 0.25 no speech" in out, out


# 4. upload names, as README says ------------------------------------------------------------


def test_upload_names_keep_letters_digits_and_the_listed_signs_only():
    from emovox.serving.uploads import display_name

    kept = "Été 日本 ١٢ a_b (1)+,'!&%#@=-.wav"
    assert display_name(kept) == kept
    assert display_name("a–b 😀 \"x\" [1].wav") == "a_b _ _x_ _1_.wav"
    assert display_name("cafe\u0301.wav") == "caf\u00e9.wav"  # decomposed, as macOS sends
