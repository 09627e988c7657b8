"""End-to-end: `emovox evaluate` on two EmoBox folds of real RAVDESS, a few actors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from emovox.cli import app

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def speech(shared_ravdess) -> Path:
    return shared_ravdess / "Audio_Speech_Actors_01-24"


def test_evaluate_two_folds_on_six_actors(tmp_path, speech):
    out = tmp_path / "run"
    args = [
        "evaluate", "--data", str(speech), "--protocol", "emobox", "--model", "egemaps_logreg",
        "--folds", "0,1", "--speakers", "01,11,04,10,02,03", "--val-speakers", "1",
        "--cache-dir", str(tmp_path / "cache"), "--out", str(out), "--jobs", "2",
    ]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "mean ± std" in res.output and "speaker-independent" in res.output

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["protocol"] == "emobox" and metrics["speaker_independent"] is True
    folds = metrics["folds"]
    assert [f["test_speakers"] for f in folds] == [
        ["ravdess:01", "ravdess:11"], ["ravdess:04", "ravdess:10"]
    ]
    for f in folds:
        assert f["n_test"] == 120  # 2 actors x 60 speech clips
        assert not set(f["val_speakers"]) & set(f["test_speakers"])
    # well above chance (12.5 %) even with 3 training actors, below perfection
    assert 20.0 < metrics["summary"]["ua"]["mean"] < 100.0
    assert yaml.safe_load((out / "config.yaml").read_text())["model"]["name"] == "egemaps_logreg"

    rows = list(csv.DictReader(open(out / "predictions.csv")))
    assert len(rows) == 240
    assert {r["speaker"] for r in rows} == {"ravdess:01", "ravdess:11", "ravdess:04", "ravdess:10"}
    for r in rows[:10]:
        total = sum(float(r[f"p_{lab}"]) for lab in metrics["pooled"]["labels"])
        assert total == pytest.approx(1.0, abs=1e-4)
    assert (out / "confusion.png").stat().st_size > 1000
    assert (out / "recall.png").stat().st_size > 1000

    rep = CliRunner().invoke(app, ["report", str(out), str(tmp_path / "missing")])
    assert rep.exit_code == 0
    row = [ln for ln in rep.output.splitlines() if ln.startswith("| `egemaps_logreg`")][0]
    assert f"{metrics['summary']['ua']['mean']:.1f} ± " in row and "| emobox |" in row

    # second run hits the feature cache
    res2 = CliRunner().invoke(app, args[:-4] + ["--out", str(tmp_path / "run2"), "--jobs", "1"])
    assert res2.exit_code == 0, res2.output
    assert json.loads((tmp_path / "run2/metrics.json").read_text())["extraction"]["n_cached"] == 360


def test_evaluate_bad_inputs(tmp_path, fake_ravdess):
    r = CliRunner().invoke(app, ["evaluate", "--data", str(tmp_path / "nope")])
    assert r.exit_code == 2 and "not found" in r.output
    # valid data: the model name alone is refused, before any feature is extracted
    r = CliRunner().invoke(app, ["evaluate", "--data", str(fake_ravdess), "--model", "nonsense",
                                 "--cache-dir", str(tmp_path / "cache"),
                                 "--out", str(tmp_path / "run")])
    assert r.exit_code == 2 and "unknown architecture 'nonsense'" in r.output, r.output
    assert "not found" not in r.output
    assert not (tmp_path / "cache").exists() and not (tmp_path / "run").exists()
