"""`emovox batch --out` never loses a user's file (a destination audit, stop 56): a plain
run's --out re-run with --speaker-from was moved to OUT.unadapted.SUFFIX before the run's
refusals (an input typo, another model's answers), which then named that file and told the
user to delete it; a note appended to an output without a newline was removed as a "line
cut short". Batches run on a fake predictor (no model), over short tones in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_io import invoke
from emovox.errors import ConfigError
from emovox.serving import predictor as predictor_mod
from emovox.serving.batch import BatchInterrupted
from emovox.serving.batch_adapt import run_speaker_batch
from emovox.serving.outfile import (
    CSV_HEADERS,
    RECORD_START,
    check_ours,
    drop_partial_last_line,
)
from first_label import MODEL, install
from signals import sine, write_clip

NOTE = "my note: checked these by ear"
BATCH = ("--workers", "1", "--file-timeout", "0")


@pytest.fixture()
def fake(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch)


def _clips(tmp_path: Path, n: int = 3) -> Path:
    d = tmp_path / "spk1"
    for i in range(n):
        write_clip(d / f"c{i}.wav", sine(300.0 + 50 * i, 0.5))
    return d


def _text(res) -> str:
    return " ".join(res.output.replace("│", " ").split())


def _plain(tmp_path: Path, suffix: str, inputs: list[Path] | None = None) -> tuple[Path, bytes]:
    """A plain batch's output ``q<suffix>`` over the clips: ``(path, its bytes)``."""
    d = _clips(tmp_path)
    out = tmp_path / f"q{suffix}"
    res = invoke(["batch", *(inputs or [d]), "--out", out, *BATCH])
    assert res.exit_code == 0, res.output
    return out, out.read_bytes()


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_a_refused_input_leaves_a_plain_out_where_it_was(tmp_path, fake, suffix):
    """An input typo: exit 2 "no such file", but q.csv had been moved to q.unadapted.csv
    and a warning said its answers "are adapted into q.csv"."""
    out, before = _plain(tmp_path, suffix)
    res = invoke(["batch", tmp_path / "typo", "--out", out, "--speaker-from", "parent", *BATCH])
    assert res.exit_code == 2, res.output
    assert "typo" in _text(res) and "moved" not in _text(res)
    assert out.read_bytes() == before
    assert not (tmp_path / f"q.unadapted{suffix}").exists()


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_another_models_plain_answers_are_refused_before_they_move(tmp_path, fake, suffix):
    """The refusal named q.unadapted.csv, "delete the file to start over": the user's only
    copy of the answers, moved there a moment before."""
    out, before = _plain(tmp_path, suffix)
    other = before.replace(MODEL.encode(), b"other-0123456789ab")
    out.write_bytes(other)
    res = invoke(["batch", tmp_path / "spk1", "--out", out, "--speaker-from", "parent",
                  *BATCH])
    assert res.exit_code == 2, res.output
    said = _text(res)
    assert f"{out.name} holds answers of other-0123456789ab" in said.replace("\n", "")
    assert "unadapted" not in said and "moved" not in said
    assert out.read_bytes() == other
    assert not (tmp_path / f"q.unadapted{suffix}").exists()


@pytest.mark.parametrize("stop", [ConfigError("the model cannot be read"), KeyboardInterrupt()])
def test_a_run_stopped_before_its_first_answer_moves_the_plain_answers_back(
        tmp_path, fake, monkeypatch, stop):
    """Anything that stops the run after the move and before a new answer (the model not
    loading, Ctrl-C) leaves --out as it was."""
    d = _clips(tmp_path)
    out, before = _plain(tmp_path, ".csv", inputs=[d / "c0.wav"])

    def fails(cls, *a, **k):
        raise stop

    monkeypatch.setattr(predictor_mod.Predictor, "from_artifact", classmethod(fails))
    with pytest.raises(BatchInterrupted if isinstance(stop, KeyboardInterrupt)
                       else ConfigError):
        run_speaker_batch([str(d)], out, speaker_from="parent", workers=1, processes=False)
    assert out.read_bytes() == before and not (tmp_path / "q.unadapted.csv").exists()


def test_plain_answers_still_move_and_are_adapted(tmp_path, fake, caplog):
    d = _clips(tmp_path)
    out, before = _plain(tmp_path, ".csv", inputs=[d / "c0.wav"])
    s, adapted = run_speaker_batch([str(d)], out, speaker_from="parent", workers=1,
                                   processes=False)
    assert (s.found, s.skipped, s.done) == (3, 1, 2)
    assert adapted.raw.read_bytes().startswith(before)
    assert "moved to" in caplog.text and "speaker_group" in out.read_text().splitlines()[0]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_a_note_appended_without_newline_is_refused_not_removed(tmp_path, fake, suffix):
    """29 bytes of a user's note vanished, with the warning "ended in a line cut short"."""
    out, before = _plain(tmp_path, suffix)
    with open(out, "a", encoding="utf-8") as f:
        f.write(NOTE)
    res = invoke(["batch", tmp_path / "spk1", "--out", out, *BATCH])
    assert res.exit_code == 2, res.output
    assert "emovox appends to and rewrites only files it wrote" in _text(res)
    assert out.read_bytes() == before + NOTE.encode()


def test_only_a_last_line_that_starts_as_ours_is_cut_short(tmp_path):
    jsonl = tmp_path / "r.jsonl"
    first = json.dumps({"schema_version": "1", "source": "/a.wav", "error": "x"}) + "\n"
    for cut in (RECORD_START[:5], RECORD_START + '"1", "sou'):  # within and after the start
        jsonl.write_text(first + cut)
        check_ours(jsonl)
        assert drop_partial_last_line(jsonl) and jsonl.read_text() == first
    for foreign in (NOTE, '{"a": 1', "x"):
        jsonl.write_text(first + foreign)
        with pytest.raises(ConfigError, match="line 2 is not an emovox record"):
            check_ours(jsonl)
    csv_out = tmp_path / "r.csv"
    head = ",".join(CSV_HEADERS[-1]) + "\r\n/a.wav,ok\r\n"
    for cut in ("/b.w", '"/b,c.wav",o', '"/x/new\nline.w'):  # a path, quoted or not
        csv_out.write_text(head + cut, newline="")
        check_ours(csv_out)
        assert drop_partial_last_line(csv_out) and csv_out.read_bytes() == head.encode()
    for foreign in (NOTE, "total,3"):
        csv_out.write_text(head + foreign, newline="")
        with pytest.raises(ConfigError, match="row 3 is not an emovox row"):
            check_ours(csv_out)
