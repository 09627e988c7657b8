"""The serving commands end to end through the real CLI: train, export, predict, batch
(local and Dask), timeline. One tiny model is trained once per session with
``emovox train`` on the fake RAVDESS tree (1 epoch: the model is barely better than chance,
which is all these tests need)."""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from emovox.cli import app
from emovox.labels import LABELS
from signals import harmonic

SR = 16000
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# what the bad-input folder holds, and what `predict` makes of each file
ERRORS = {"empty.wav": "empty", "notaudio.wav": "not audio"}
DECODABLE = {  # name -> duration (s) of the prediction
    "truncated.wav": 1.0,  # 2 s clip cut mid-sample halfway: the part that is there is read
    "short.wav": 0.1,  # no minimum length in `predict`: 0.1 s is padded to n_frames
    "silent.wav": 2.0,
    "stereo48k.wav": 1.5,
    "rate8k.wav": 1.5,
    "float64.wav": 1.5,
    "aiff_as.wav": 1.5,
}


def invoke(args: list[str], **kw):
    """``emovox ARGS`` in-process; the root logger (which the CLI reconfigures) is restored."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        return CliRunner().invoke(app, [str(a) for a in args], **kw)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def text(res) -> str:
    """stdout + stderr without colour codes, whitespace collapsed (rich wraps long lines)."""
    return " ".join(ANSI.sub("", res.output).split())


def ok(res, code: int = 0) -> None:
    assert res.exit_code == code, f"exit {res.exit_code}: {res.output}\n{res.exception!r}"


def tone(dur: float, sr: int = SR, f0: float = 220.0, seed: int = 0) -> np.ndarray:
    return harmonic(f0, dur, sr, noise=0.01, rng=np.random.default_rng(seed))


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def cli_model(fake_ravdess, tmp_path_factory) -> Path:
    """``emovox train`` (crnn, 1 epoch, 64 frames) -> a model folder with model.onnx."""
    root = tmp_path_factory.mktemp("cli-model")
    out = root / "model"
    res = invoke(["train", "--data", fake_ravdess, "--out", out, "-p", "epochs=1",
                  "-p", "n_frames=64", "-j", "1"],
                 env={"EMOVOX_CACHE": str(root / "cache")})
    ok(res)
    assert "trained crnn on 96 clips of 6 speakers" in text(res)
    assert {"model.json", "weights.safetensors", "model.onnx"} <= {p.name for p in out.iterdir()}
    return out


@pytest.fixture(scope="session")
def good_clips(fake_ravdess) -> list[Path]:
    return sorted(fake_ravdess.glob("Actor_01/*.wav"))[:2]


@pytest.fixture(scope="session")
def real_clips(shared_data) -> list[Path]:
    folder = shared_data / "ravdess" / "original-48k"
    clips = sorted(folder.glob("*.wav"))[:2]
    if len(clips) < 2:
        pytest.skip(f"no real clips in {folder} (set EMOVOX_SHARED_DATA)")
    return clips


@pytest.fixture(scope="session")
def bad_dir(tmp_path_factory) -> Path:
    """Awkward input, one file each (see ERRORS and DECODABLE)."""
    d = tmp_path_factory.mktemp("bad-input")
    (d / "empty.wav").write_bytes(b"")
    buf = io.BytesIO()
    sf.write(buf, tone(2.0), SR, format="WAV", subtype="PCM_16")
    data = buf.getvalue()
    assert data[36:40] == b"data"  # 44-byte header: the cut below lands mid-sample
    (d / "truncated.wav").write_bytes(data[: 44 + (len(data) - 44) // 2 + 1])
    (d / "notaudio.wav").write_text("this is a text file, not a recording\n" * 20)
    sf.write(d / "short.wav", tone(0.1), SR, subtype="PCM_16")
    sf.write(d / "silent.wav", np.zeros(2 * SR, np.float32), SR, subtype="PCM_16")
    stereo = np.stack([tone(1.5, 48000), tone(1.5, 48000, f0=330.0, seed=1)], axis=1)
    sf.write(d / "stereo48k.wav", stereo, 48000, subtype="PCM_16")
    sf.write(d / "rate8k.wav", tone(1.5, 8000), 8000, subtype="PCM_16")
    sf.write(d / "float64.wav", tone(1.5).astype(np.float64), SR, subtype="DOUBLE")
    buf = io.BytesIO()
    sf.write(buf, tone(1.5), SR, format="AIFF", subtype="PCM_16")
    (d / "aiff_as.wav").write_bytes(buf.getvalue())
    assert sorted(p.name for p in d.iterdir()) == sorted([*ERRORS, *DECODABLE])
    return d


def predict_json(model: Path, files: list[Path], *extra: str) -> list[dict]:
    res = invoke(["predict", *files, "--json", "-m", model, *extra])
    ok(res, 0)
    doc = json.loads(res.stdout)
    return doc if isinstance(doc, list) else [doc]


def check_prediction(r: dict) -> None:
    assert r["error"] is None
    p = r["probabilities"]
    assert list(p) == list(LABELS)
    assert abs(sum(p.values()) - 1.0) <= 1e-4
    assert all(0.0 <= v <= 1.0 for v in p.values())
    assert r["label"] == max(p, key=p.get) and r["confidence"] == p[r["label"]]
    assert -1.0 <= r["arousal"] <= 1.0 and -1.0 <= r["valence"] <= 1.0
    assert r["derived"] == ["arousal", "valence"]


# -- predict -------------------------------------------------------------------------------


def test_predict_real_clips(cli_model, real_clips):
    res = invoke(["predict", *real_clips, "-m", cli_model, "--top", "2"])
    ok(res)
    out = ANSI.sub("", res.stdout)
    for clip in real_clips:
        row = next(line for line in out.splitlines() if clip.name in line)
        assert row.count("%") == 3  # confidence + the top 2
    assert "derived from the class probabilities" in text(res)

    one = invoke(["predict", real_clips[0], "--json", "-m", cli_model])
    ok(one)
    doc = json.loads(one.stdout)
    assert isinstance(doc, dict) and doc["path"] == str(real_clips[0])  # one file: no list
    check_prediction(doc)
    assert doc["silent"] is False and 3.0 < doc["duration"] < 4.0

    both = predict_json(cli_model, real_clips, "--top", "2")
    assert [r["path"] for r in both] == [str(c) for c in real_clips]
    for r in both:
        check_prediction(r)  # --top only shortens the table; JSON has all 8
    ok(invoke(["predict", real_clips[0], "-m", cli_model, "--top", "9"]), 2)


def test_predict_bad_inputs(cli_model, bad_dir, good_clips):
    files = [*sorted(bad_dir.iterdir()), good_clips[0]]
    res = invoke(["predict", *files, "--json", "-m", cli_model])
    ok(res, 1)  # some files failed
    by_name = {Path(r["path"]).name: r for r in json.loads(res.stdout)}
    assert len(by_name) == len(files)
    for name, words in ERRORS.items():
        assert set(by_name[name]) == {"path", "error"}
        assert words in by_name[name]["error"] and name in by_name[name]["error"]
    for name, duration in {**DECODABLE, good_clips[0].name: 0.8}.items():
        r = by_name[name]
        check_prediction(r)
        assert r["duration"] == pytest.approx(duration, abs=0.01), name
        assert r["silent"] is (name == "silent.wav"), name
    assert "silent" in res.stderr  # the warning names the silent file

    table = invoke(["predict", *files, "-m", cli_model])
    ok(table, 1)
    rows = {line.split("│")[1].strip(): line for line in ANSI.sub("", table.stdout).splitlines()
            if line.count("│") > 2}
    assert "error" in rows["empty.wav"] and "error" in rows["notaudio.wav"]
    assert "silence" in rows["silent.wav"]
    assert "error" not in rows["short.wav"] and "%" in rows["short.wav"]


def test_predict_backends_agree(cli_model, good_clips, bad_dir):
    files = [*good_clips, bad_dir / "stereo48k.wav", bad_dir / "rate8k.wav"]
    onnx = predict_json(cli_model, files, "--backend", "onnx")
    torch = predict_json(cli_model, files, "--backend", "torch")
    for a, b in zip(onnx, torch, strict=True):
        assert a["path"] == b["path"]
        pa, pb = np.array(list(a["probabilities"].values())), np.array(
            list(b["probabilities"].values()))
        assert np.abs(pa - pb).max() <= 1e-4, a["path"]
        assert a["label"] == b["label"] or abs(a["confidence"] - b["confidence"]) <= 1e-4


def test_predict_backends_agree_real(cli_model, real_clips):
    onnx = predict_json(cli_model, real_clips, "--backend", "onnx")
    torch = predict_json(cli_model, real_clips, "--backend", "torch")
    for a, b in zip(onnx, torch, strict=True):
        for lab in LABELS:
            assert a["probabilities"][lab] == pytest.approx(b["probabilities"][lab], abs=1e-4)


# -- batch ---------------------------------------------------------------------------------


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def check_rows(rows: list[dict], n: int) -> None:
    assert len(rows) == n and len({r["path"] for r in rows}) == n
    by_name = {Path(r["path"]).name: r for r in rows}
    for name in ERRORS:
        assert by_name[name]["label"] == "error" and by_name[name]["error"].strip()
    assert by_name["silent.wav"]["label"] == "silence"
    for r in rows:
        if Path(r["path"]).name in ERRORS:
            continue
        assert r["error"] in ("", None) and r["label"] in (*LABELS, "silence")
        assert abs(sum(float(r[f"p_{lab}"]) for lab in LABELS) - 1.0) <= 1e-4


def test_batch_csv_resume(cli_model, bad_dir, good_clips, tmp_path):
    out = tmp_path / "results.csv"
    args = ["batch", bad_dir, *good_clips, "--out", out, "-m", cli_model]
    n = len(ERRORS) + len(DECODABLE) + len(good_clips)
    res = invoke(args)
    ok(res, 1)  # files failed: exit 1, with their count
    assert f"{n} files: {n} predicted now, 0 already in" in text(res)
    assert f"{len(ERRORS)} errors, 1 silent" in text(res)
    assert f"{len(ERRORS)} files failed" in text(res)
    rows = read_csv(out)
    check_rows(rows, n)
    assert all(Path(r["path"]).is_absolute() for r in rows)

    kept = invoke([*args, "--no-retry-errors"])
    ok(kept, 1)  # the error rows kept still count as failures
    assert f"{n} files: 0 predicted now, {n} already in" in text(kept)
    assert f"{len(ERRORS)} files failed" in text(kept)
    assert len(read_csv(out)) == n

    again = invoke(args)  # error rows are retried by default; the old ones are replaced
    ok(again, 1)
    assert f"{n} files: {len(ERRORS)} predicted now, {n - len(ERRORS)} already in" in text(again)
    check_rows(read_csv(out), n)

    rows = read_csv(out)
    good = [r for r in rows if r["label"] != "error"]
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
    assert len({r["path"] for r in rows}) == n


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


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
    assert f"{len(ERRORS)} predicted now" in text(retried)
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
        assert "max duration" in text(res), bad


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
        if r["label"] != "error":
            for lab in LABELS:
                assert float(dask[path][f"p_{lab}"]) == pytest.approx(float(r[f"p_{lab}"]),
                                                                      abs=1e-5)
    check_rows(list(dask.values()), len(local))


# -- timeline ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def long_file(tmp_path_factory) -> Path:
    """20 s: 4 s tone, 4 s digital silence, 12 s of three tones."""
    wave = np.concatenate([tone(4.0, f0=200.0), np.zeros(4 * SR, np.float32),
                           tone(4.0, f0=150.0, seed=1), tone(4.0, f0=300.0, seed=2),
                           tone(4.0, f0=250.0, seed=3)])
    path = tmp_path_factory.mktemp("timeline") / "long.wav"
    sf.write(path, wave, SR, subtype="PCM_16")
    return path


def test_timeline_json_and_csv(cli_model, long_file):
    args = ["timeline", long_file, "-m", cli_model, "--window", "3", "--hop", "1.5"]
    res = invoke([*args, "--json"])
    ok(res)
    doc = json.loads(res.stdout)
    segs, summ = doc["segments"], doc["summary"]
    assert summ["duration_s"] == pytest.approx(20.0, abs=1e-3)
    assert summ["windows"] == len(segs) == 12
    starts = [s["start"] for s in segs]
    assert starts == pytest.approx([1.5 * k for k in range(len(segs))])
    assert all(s["end"] - s["start"] == pytest.approx(3.0) for s in segs)
    # covered to the end but for a tail shorter than 1 s (shorter remainders are dropped)
    assert 19.0 <= segs[-1]["end"] <= 20.0
    silent = [s for s in segs if s["label"] == "silence"]
    assert any(4.0 <= s["start"] and s["end"] <= 8.0 for s in silent)
    assert all(s["end"] > 4.0 and s["start"] < 8.0 for s in silent)  # none in the tones
    for s in segs:
        if s["label"] == "silence":
            assert s["probabilities"] == {} and s["arousal"] is None
        else:
            assert s["label"] in LABELS and abs(sum(s["probabilities"].values()) - 1) <= 1e-4
    assert summ["silent_windows"] == len(silent)
    assert summ["voiced_windows"] == len(segs) - len(silent)
    assert summ["dominant"] in LABELS
    assert summ["share"] and sum(summ["share"].values()) == pytest.approx(1.0)

    res_csv = invoke([*args, "--csv"])
    ok(res_csv)
    rows = list(csv.reader(io.StringIO(res_csv.stdout)))
    assert rows[0] == ["start", "end", "label", "confidence", *LABELS, "arousal", "valence"]
    assert len(rows) == len(segs) + 1
    assert [r[2] for r in rows[1:]] == [s["label"] for s in segs]
    assert [float(r[0]) for r in rows[1:]] == pytest.approx(starts)

    table = invoke(args)
    ok(table)
    assert f"{len(silent)} silent of {len(segs)}" in text(table)


def test_timeline_windows_past_the_first_block(cli_model, tmp_path):
    """window 1 s every 1 s over 70 s (silence, then a tone from 63 s): the windows past the
    first 60 s block read the right samples (63-70 s is the tone), none lies past the end."""
    wave = np.zeros(70 * SR, np.float32)
    wave[63 * SR :] = tone(7.0)
    path = tmp_path / "gap.wav"
    sf.write(path, wave, SR, subtype="PCM_16")
    res = invoke(["timeline", path, "-m", cli_model, "--window", "1", "--hop", "1", "--json"])
    ok(res)
    segs = json.loads(res.stdout)["segments"]
    assert [s["start"] for s in segs] == [float(k) for k in range(70)]
    assert [s["label"] == "silence" for s in segs] == [True] * 63 + [False] * 7


@pytest.mark.parametrize(("window", "hop", "message"), [
    ("1", "7", "hop (7 s) must not exceed window (1 s)"),
    ("inf", "1.5", "window must be a finite number"),
    ("nan", "1.5", "window must be a finite number"),
    ("3", "inf", "hop must be a finite number"),
    ("0", "0.1", "window must be more than 0.25 s"),
    ("3", "0", "hop must be more than 0.05 s"),
])
def test_timeline_refuses_bad_window_and_hop(cli_model, good_clips, window, hop, message):
    """The same validation as the API (emovox.serving.params.TimelineParams): exit 2."""
    res = invoke(["timeline", good_clips[0], "-m", cli_model, "--window", window, "--hop", hop])
    ok(res, 2)
    assert message in text(res) and "Traceback" not in text(res)


def test_predict_max_duration_must_be_finite(cli_model, good_clips):
    for bad in ("inf", "nan", "0"):
        res = invoke(["predict", good_clips[0], "-m", cli_model, "--max-duration", bad])
        ok(res, 2)
        assert "--max-duration must be" in text(res), bad
    ok(invoke(["predict", good_clips[0], "-m", cli_model, "--max-duration", "1e9"]))


def test_predict_records_bad_files_and_goes_on(cli_model, good_clips, bad_dir, tmp_path):
    """Missing, a folder, not audio, empty: each becomes an error entry, the good clips are
    still predicted, and the exit code is 1 with the count."""
    bad = [tmp_path / "missing.wav", tmp_path, bad_dir / "notaudio.wav", bad_dir / "empty.wav"]
    res = invoke(["predict", good_clips[0], *bad, good_clips[1], "--json", "-m", cli_model])
    ok(res, 1)
    assert "4 of 6 files failed" in " ".join(res.stderr.split())
    doc = json.loads(res.stdout)
    assert [Path(r["path"]) for r in doc] == [good_clips[0], *bad, good_clips[1]]
    check_prediction(doc[0])
    check_prediction(doc[-1])
    assert all(r["error"] for r in doc[1:-1])


def test_windows_match_a_direct_slicing():
    from emovox.serving.timeline import _windows

    rng = np.random.default_rng(0)
    x = np.arange(1000, dtype=np.float32)
    for win, hop, min_last in [(100, 50, 30), (100, 370, 30), (100, 100, 1), (2000, 10, 500),
                               (64, 250, 20), (999, 1, 1)]:
        expected, pos, covered = [], 0, 0
        while pos + win <= len(x):
            expected.append((pos, x[pos : pos + win]))
            covered, pos = pos + win, pos + hop
        if pos < len(x) and (len(x) - covered >= min_last or covered == 0):
            expected.append((pos, x[pos:]))
        for _ in range(5):
            cuts = np.sort(rng.choice(np.arange(1, len(x)), size=rng.integers(0, 8),
                                      replace=False))
            blocks = ((0.0, b) for b in np.split(x, cuts))
            got = list(_windows(blocks, win, hop, min_last))
            assert [s for s, _ in got] == [s for s, _ in expected], (win, hop, cuts)
            for (_, a), (_, b) in zip(got, expected, strict=True):
                np.testing.assert_array_equal(a, b)


def test_timeline_of_a_file_shorter_than_a_second(cli_model, good_clips):
    """A 0.8 s voiced clip is one (short) window, not an empty timeline called silence."""
    res = invoke(["timeline", good_clips[0], "-m", cli_model, "--json"])
    ok(res)
    doc = json.loads(res.stdout)
    assert len(doc["segments"]) == 1
    seg = doc["segments"][0]
    assert seg["start"] == 0.0 and seg["end"] == pytest.approx(0.8, abs=1e-3)
    assert seg["label"] in LABELS and doc["summary"]["dominant"] == seg["label"]


# -- export / train guards -----------------------------------------------------------------


def test_export(cli_model, good_clips, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(cli_model, model)
    (model / "model.onnx").unlink()
    res = invoke(["export", model])
    ok(res)
    assert "wrote" in text(res) and (model / "model.onnx").is_file()
    ok(invoke(["predict", good_clips[0], "-m", model, "--backend", "onnx"]))

    empty = tmp_path / "empty"
    empty.mkdir()
    res = invoke(["export", empty])
    ok(res, 2)
    assert "no model.json" in text(res)


def snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(folder.iterdir())}


def test_train_refuses_existing_folder(cli_model, fake_ravdess, tmp_path):
    before = snapshot(cli_model)
    res = invoke(["train", "--data", fake_ravdess, "--out", cli_model, "-p", "epochs=1"],
                 env={"EMOVOX_CACHE": str(tmp_path / "cache")})
    ok(res, 2)
    assert "already exists" in text(res) and "--force" in text(res)
    assert snapshot(cli_model) == before
    assert not (tmp_path / "cache").exists()  # refused before any feature extraction


def test_serving_imports_no_heavy_or_upper_modules():
    """serving never imports torch/librosa at import time, nor api/web/cli/training; api and
    web never import each other."""
    import os
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import emovox.serving.service, emovox.serving.batch, emovox.serving.timeline\n"
        "import emovox.serving.inputs, emovox.serving.params, emovox.serving.uploads\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'librosa', 'fastapi',"
        " 'streamlit') or m.startswith(('emovox.api', 'emovox.web', 'emovox.cli',"
        " 'emovox.training', 'emovox.experiment'))]\n"
        "assert not bad, bad\n"
        "import emovox.api.server\n"
        "assert not [m for m in sys.modules if m.startswith('emovox.web')]\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ,
                            "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")})
    assert r.returncode == 0, r.stderr
    web = Path(__file__).resolve().parents[2] / "src" / "emovox" / "web"
    for f in web.glob("*.py"):
        assert "emovox.api" not in f.read_text(), f
