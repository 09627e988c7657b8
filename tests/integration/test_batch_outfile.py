"""`emovox batch` never appends to, rewrites or loses what it did not write: foreign CSV and
JSON-lines files, the files of --speaker-from, a last row cut short, another model's rows."""

from __future__ import annotations

import json

import pytest
from cli_helpers import invoke, ok, read_csv, read_jsonl, text

pytestmark = pytest.mark.slow  # uses the cli_model trained with `emovox train`

FOREIGN_CSV = "name,age\nalice,30\nbob,40\n"


@pytest.mark.parametrize("name,content", [
    ("people.csv", FOREIGN_CSV),
    ("notes.jsonl", "my important notes\nline2\n"),
    ("other.jsonl", '{"name": "alice"}\n'),
])
def test_a_file_emovox_did_not_write_is_refused_and_left_alone(cli_model, good_clips, tmp_path,
                                                               name, content):
    out = tmp_path / name
    out.write_text(content)
    res = invoke(["batch", *good_clips, "--out", out, "-m", cli_model])
    ok(res, 2)
    assert "emovox appends to and rewrites only files it wrote" in text(res)
    assert out.read_text() == content


def test_speaker_from_refuses_foreign_output_and_sibling(cli_model, good_clips, tmp_path):
    out, sibling = tmp_path / "s.csv", tmp_path / "s.unadapted.csv"
    out.write_text(FOREIGN_CSV)
    res = invoke(["batch", *good_clips, "--speaker-from", "parent", "--out", out,
                  "-m", cli_model])
    ok(res, 2)
    assert out.read_text() == FOREIGN_CSV and not sibling.exists()
    out.unlink()
    sibling.write_text("my,data\n1,2\n")
    res = invoke(["batch", *good_clips, "--speaker-from", "parent", "--out", out,
                  "-m", cli_model])
    ok(res, 2)
    assert sibling.read_text() == "my,data\n1,2\n" and not out.exists()
    sibling.unlink()  # its own files are resumed and rewritten as before
    for _ in range(2):
        ok(invoke(["batch", *good_clips, "--speaker-from", "parent", "--out", out,
                   "-m", cli_model]))
    assert len(read_csv(out)) == len(read_csv(sibling)) == len(good_clips)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_a_row_cut_short_is_predicted_again(cli_model, good_clips, tmp_path, suffix):
    out = tmp_path / f"r{suffix}"
    ok(invoke(["batch", *good_clips, "--out", out, "-m", cli_model]))
    full = out.read_bytes()
    out.write_bytes(full[: len(full) - 25])  # a kill or a full disk mid-write
    res = invoke(["batch", *good_clips, "--out", out, "-m", cli_model])
    ok(res)
    assert f"{len(good_clips)} files: 1 predicted now" in text(res)
    rows = read_csv(out) if suffix == ".csv" else read_jsonl(out)
    key = "path" if suffix == ".csv" else "source"
    assert sorted(r[key] for r in rows) == sorted(str(p.resolve()) for p in good_clips)
    assert all(r["model_id"] for r in rows)


def test_another_models_rows_are_refused(cli_model, good_clips, tmp_path):
    out = tmp_path / "m.jsonl"
    ok(invoke(["batch", good_clips[0], "--out", out, "-m", cli_model]))
    rows = read_jsonl(out)
    mine = rows[0]["model_id"]
    out.write_text(json.dumps({**rows[0], "model_id": "other-0123456789ab"}) + "\n")
    before = out.read_text()
    res = invoke(["batch", *good_clips, "--out", out, "-m", cli_model])
    ok(res, 2)
    assert "other-0123456789ab" in text(res) and mine in text(res)
    assert out.read_text() == before
    csv_out = tmp_path / "m.csv"
    ok(invoke(["batch", good_clips[0], "--out", csv_out, "-m", cli_model]))
    assert read_csv(csv_out)[0]["model_id"] == mine


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_a_plain_run_never_mixes_into_adapted_answers(cli_model, good_clips, tmp_path, suffix):
    """A `--speaker-from` output re-run without it: refused with what to do, left as it was
    (before stop 29 JSON lines got unadapted rows appended, and a CSV was called foreign)."""
    out = tmp_path / f"a{suffix}"
    ok(invoke(["batch", *good_clips[:-1], "--speaker-from", "parent", "--out", out,
               "-m", cli_model]))
    before = out.read_bytes()
    res = invoke(["batch", *good_clips, "--out", out, "-m", cli_model])
    ok(res, 2)
    assert "holds answers adapted per speaker" in text(res) and "--speaker-from" in text(res)
    assert out.read_bytes() == before


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_speaker_from_keeps_the_answers_of_a_plain_run_in_its_out(cli_model, good_clips,
                                                                  tmp_path, suffix):
    """A plain run's --out, re-run with --speaker-from, was rewritten from the (new)
    .unadapted file: the rows of files not given again were lost (CLI QA, stop 33)."""
    out, raw = tmp_path / f"r{suffix}", tmp_path / f"r.unadapted{suffix}"
    ok(invoke(["batch", *good_clips, "--out", out, "-m", cli_model]))
    before = out.read_text()
    res = invoke(["batch", good_clips[0], "--speaker-from", "parent", "--out", out,
                  "-m", cli_model])
    ok(res)
    assert "answer(s) of a run without --speaker-from: they were moved to" in text(res)
    assert raw.read_text() == before  # moved whole, then resumed (nothing new to predict)
    read = read_csv if suffix == ".csv" else read_jsonl
    assert len(read(out)) == len(read(raw)) == len(good_clips)
    ok(invoke(["batch", good_clips[0], "--speaker-from", "parent", "--out", out,
               "-m", cli_model]))  # a re-run of the adapted run: as before
    assert len(read(out)) == len(good_clips)
    raw.write_text(before.splitlines(keepends=True)[0] + (
        before.splitlines(keepends=True)[1] if suffix == ".csv" else ""))
    out.write_text(before)  # plain answers beside an unadapted file lacking some: refused
    res = invoke(["batch", *good_clips, "--speaker-from", "parent", "--out", out,
                  "-m", cli_model])
    ok(res, 2)
    assert "exists too" in text(res) and out.read_text() == before
