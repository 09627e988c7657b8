"""`emovox timeline` end to end through the real CLI, and `predict` on long or bad inputs."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from cli_helpers import SR, check_prediction, invoke, ok, text, tone

from emovox.labels import LABELS

pytestmark = pytest.mark.slow  # uses the cli_model trained with `emovox train`

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


def test_timeline_of_a_file_shorter_than_a_second(cli_model, good_clips):
    """A 0.8 s voiced clip is one (short) window, not an empty timeline called silence."""
    res = invoke(["timeline", good_clips[0], "-m", cli_model, "--json"])
    ok(res)
    doc = json.loads(res.stdout)
    assert len(doc["segments"]) == 1
    seg = doc["segments"][0]
    assert seg["start"] == 0.0 and seg["end"] == pytest.approx(0.8, abs=1e-3)
    assert seg["label"] in LABELS and doc["summary"]["dominant"] == seg["label"]
