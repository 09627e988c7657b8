"""`emovox batch` end to end through the real CLI: CSV/JSONL output, resume, globs, Dask."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from cli_helpers import (
    DECODABLE,
    ERRORS,
    NO_SPEECH,
    check_rows,
    invoke,
    ok,
    read_csv,
    read_jsonl,
    row_key,
    text,
)

from emovox.labels import LABELS

pytestmark = pytest.mark.slow  # uses the cli_model trained with `emovox train`; starts Dask workers

# -- batch ---------------------------------------------------------------------------------


def test_batch_csv_resume(cli_model, bad_dir, good_clips, tmp_path):
    out = tmp_path / "results.csv"
    args = ["batch", bad_dir, *good_clips, "--out", out, "-m", cli_model]
    n = len(ERRORS) + len(DECODABLE) + len(good_clips)
    res = invoke(args)
    ok(res, 1)  # files failed: exit 1, with their count
    assert f"{n} files: {n - len(ERRORS)} predicted now, 0 already in" in text(res)
    assert f"{len(ERRORS)} errors, {len(NO_SPEECH)} without speech" in text(res)
    assert f"{len(ERRORS)} files failed" in text(res)
    rows = read_csv(out)
    check_rows(rows, n)
    assert all(Path(r["path"]).is_absolute() for r in rows)

    kept = invoke([*args, "--no-retry-errors"])
    ok(kept, 1)  # the error rows kept still count as failures
    assert f"{n} files: 0 predicted now, {n} already in" in text(kept)
    assert f"0 errors (+ {len(ERRORS)} error rows kept from before)" in text(kept)
    assert f"{len(ERRORS)} files failed" in text(kept)
    assert len(read_csv(out)) == n

    again = invoke(args)  # error rows are retried by default; the old ones are replaced
    ok(again, 1)
    assert f"{n} files: 0 predicted now, {n - len(ERRORS)} already in" in text(again)
    check_rows(read_csv(out), n)

    rows = read_csv(out)
    good = [r for r in rows if r["status"] != "error"]
    dropped = {good[0]["path"], good[-1]["path"]}  # an AIFF-as-wav and a good clip
    with open(out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(r for r in rows if r["path"] not in dropped)
    resumed = invoke([*args, "--no-retry-errors"])
    ok(resumed, 1)
    assert f"{n} files: 2 predicted now, {n - 2} already in" in text(resumed)
    after = read_csv(out)
    check_rows(after, n)
    assert {r["path"] for r in after[-2:]} == dropped


def test_batch_all_good_exits_0(cli_model, good_clips, tmp_path):
    res = invoke(["batch", *good_clips, "--out", tmp_path / "r.csv", "-m", cli_model])
    ok(res, 0)
    assert "failed" not in text(res)


def test_batch_says_how_many_files_changed_since_their_row(cli_model, good_clips, tmp_path):
    clips = [shutil.copy(c, tmp_path / c.name) for c in good_clips]
    out = tmp_path / "r.csv"
    args = ["batch", *clips, "--out", out, "-m", cli_model]
    ok(invoke(args), 0)
    Path(clips[0]).write_bytes(Path(clips[0]).read_bytes()[:-3200])  # re-exported, shorter
    res = invoke(args)
    ok(res, 0)
    assert "2 files: 1 predicted now (1 changed since their row), 1 already in" in text(res)
    assert len(read_csv(out)) == 2


def test_batch_resume_key_is_the_resolved_path(cli_model, bad_dir, tmp_path, monkeypatch):
    """`bad` then `/abs/bad` (and `./bad/../bad`) are the same files: no duplicate rows."""
    monkeypatch.chdir(bad_dir.parent)
    out = tmp_path / "r.jsonl"
    common = ["--out", out, "-m", cli_model, "--no-retry-errors"]
    ok(invoke(["batch", bad_dir.name, *common]), 1)
    n = len(read_jsonl(out))
    for spelling in (bad_dir.resolve(), f"./{bad_dir.name}/../{bad_dir.name}",
                     f"{bad_dir.name}/*.wav"):
        res = invoke(["batch", spelling, *common])
        ok(res, 1)
        assert "0 predicted now" in text(res), spelling
    rows = read_jsonl(out)
    assert len(rows) == n == len(ERRORS) + len(DECODABLE)
    assert len({row_key(r) for r in rows}) == n


def test_batch_jsonl_and_usage_errors(cli_model, bad_dir, good_clips, tmp_path):
    out = tmp_path / "results.jsonl"
    args = ["batch", bad_dir, good_clips[0], "--out", out, "-m", cli_model]
    ok(invoke(args), 1)
    rows = read_jsonl(out)
    check_rows(rows, len(ERRORS) + len(DECODABLE) + 1)
    again = invoke([*args, "--no-retry-errors"])
    ok(again, 1)
    assert "0 predicted now" in text(again)
    retried = invoke(args)
    ok(retried, 1)
    assert f"0 predicted now, {len(DECODABLE) + 1} already in" in text(retried)
    assert f"{len(ERRORS)} errors" in text(retried)
    check_rows(read_jsonl(out), len(ERRORS) + len(DECODABLE) + 1)

    bad_out = invoke(["batch", bad_dir, "--out", tmp_path / "x.txt", "-m", cli_model])
    ok(bad_out, 2)
    assert "must end in .csv or .jsonl" in text(bad_out)
    assert not (tmp_path / "x.txt").exists()
    missing = invoke(["batch", tmp_path / "nope", "--out", tmp_path / "m.csv", "-m", cli_model])
    ok(missing, 2)
    assert "no such file" in text(missing) and "nope" in text(missing)
    assert not (tmp_path / "m.csv").exists()
    for bad in ("inf", "nan", "0", "-1"):
        res = invoke(["batch", good_clips[0], "--out", tmp_path / "d.csv", "-m", cli_model,
                      "--max-duration", bad])
        ok(res, 2)
        assert "--max-duration must be" in text(res), bad  # the option named (stop 57)


def test_batch_glob_survives_symlink_cycles(cli_model, good_clips, tmp_path):
    """Two symlink loops under the globbed folder: every file once, no hang."""
    root = tmp_path / "tree"
    (root / "a" / "b").mkdir(parents=True)
    shutil.copy(good_clips[0], root / "a" / "one.wav")
    shutil.copy(good_clips[1], root / "a" / "b" / "two.wav")
    (root / "a" / "b" / "loop").symlink_to(root / "a", target_is_directory=True)
    (root / "a" / "up").symlink_to(root, target_is_directory=True)
    out = tmp_path / "r.csv"
    res = invoke(["batch", f"{root}/**/*.wav", "--out", out, "-m", cli_model])
    ok(res, 0)
    rows = read_csv(out)
    assert sorted(Path(r["path"]).name for r in rows) == ["one.wav", "two.wav"]
    from emovox.serving.inputs import iter_glob

    assert [p.name for p in iter_glob(f"{root}/**/t*.wav")] == ["two.wav"]
    assert [p.name for p in iter_glob(f"{root}/a/*.wav")] == ["one.wav"]


def test_batch_non_utf8_name_is_escaped_and_resumes(cli_model, good_clips, tmp_path):
    """A file name that is not UTF-8 is written escaped (b\\xff) and the batch goes on,
    also when resumed."""
    import os

    folder = tmp_path / "in"
    folder.mkdir()
    odd = os.fsdecode(b"caf\xe9-\xff.wav")  # Latin-1 bytes: surrogates in Python
    try:
        shutil.copy(good_clips[0], folder / odd)
    except (UnicodeEncodeError, OSError):
        pytest.skip("this file system refuses non-UTF-8 names")
    (folder / "notes.wav").write_text("not audio\n" * 20)
    out = tmp_path / "r.csv"
    for _ in range(2):
        res = invoke(["batch", folder, "--out", out, "-m", cli_model])
        ok(res, 1)  # notes.wav failed (and is retried the second time)
    rows = read_csv(out)
    assert len(rows) == 2
    names = sorted(Path(r["path"]).name for r in rows)
    assert names == ["caf\\xe9-\\xff.wav", "notes.wav"]
    assert out.read_bytes().decode("utf-8")  # valid UTF-8 throughout


def test_batch_dask_matches_local(cli_model, bad_dir, good_clips, tmp_path):
    pytest.importorskip("dask.distributed")
    common = [bad_dir, *good_clips, "-m", cli_model, "--workers", "2"]
    ok(invoke(["batch", *common, "--out", tmp_path / "local.csv"]), 1)
    res = invoke(["batch", *common, "--out", tmp_path / "dask.csv", "--engine", "dask"])
    ok(res, 1)
    assert f"{len(ERRORS)} files failed" in text(res)
    local = {r["path"]: r for r in read_csv(tmp_path / "local.csv")}
    dask = {r["path"]: r for r in read_csv(tmp_path / "dask.csv")}
    assert set(dask) == set(local)
    for path, r in local.items():
        assert dask[path]["label"] == r["label"], path
        assert dask[path]["status"] == r["status"], path
        if r["p_angry"]:  # a prediction with probabilities
            for lab in LABELS:
                assert float(dask[path][f"p_{lab}"]) == pytest.approx(float(r[f"p_{lab}"]),
                                                                      abs=1e-5)
    check_rows(list(dask.values()), len(local))
