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
from emovox.serving.schema import validate_document

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
    """Windows over the speech only, the 4-8 s silence one explicit gap, the tail covered,
    the summary by speech time; JSON valid against the timeline schema."""
    args = ["timeline", long_file, "-m", cli_model, "--window", "3", "--hop", "1.5"]
    res = invoke([*args, "--json"])
    ok(res)
    doc = json.loads(res.stdout)
    validate_document(doc, "timeline")
    segs, summ = doc["segments"], doc["summary"]
    assert doc["duration"] == pytest.approx(20.0, abs=1e-3) and doc["model_id"]
    speech = [s for s in segs if s["kind"] == "speech"]
    gaps = [s for s in segs if s["kind"] == "gap"]
    assert any(s["start"] <= 4.0 and s["end"] >= 8.0 for s in gaps)  # the silence: one gap
    assert not any(s["start"] < 7.9 and s["end"] > 4.1 for s in speech)  # no window in it
    assert all(s["end"] - s["start"] <= 3.0 + 1e-6 for s in speech)
    assert speech[0]["start"] < 0.2 and speech[-1]["end"] >= 19.8  # the tail is covered
    assert segs[0]["start"] == 0.0 and segs[-1]["end"] == pytest.approx(20.0)
    assert all(a["end"] <= b["end"] for a, b in zip(segs, segs[1:], strict=False))
    for s in speech:
        assert s["label"] in LABELS and abs(sum(s["probabilities"].values()) - 1) <= 1e-4
        assert s["status"] == ("uncertain" if s["confidence"] < 0.5 else "ok")  # QA, stop 41
    for s in gaps:
        assert s["label"] is None and s["probabilities"] is None and s["arousal"] is None
        assert s["status"] is None
    assert summ["n_windows"] == len(speech) >= 8
    assert 15.0 <= summ["speech_seconds"] <= 16.5  # 4 + 12 s of tones, less their pauses
    assert summ["dominant"] in LABELS and summ["status"] in ("ok", "uncertain")
    assert summ["share"] and sum(summ["share"].values()) == pytest.approx(1.0)

    res_csv = invoke([*args, "--csv"])
    ok(res_csv)
    rows = list(csv.reader(io.StringIO(res_csv.stdout)))
    assert rows[0] == ["start", "end", "kind", "label", "confidence", *LABELS, "arousal",
                       "valence", "status"]
    assert len(rows) == len(segs) + 1
    assert [r[-1] for r in rows[1:]] == [s["status"] or "" for s in segs]
    assert [r[2] for r in rows[1:]] == [s["kind"] for s in segs]
    assert [r[3] for r in rows[1:]] == [s["label"] or "" for s in segs]
    assert [float(r[0]) for r in rows[1:]] == pytest.approx([s["start"] for s in segs],
                                                            abs=0.006)

    assert f"model {doc['model_id']}" in res_csv.stderr  # said nowhere before (QA, stop 40)
    table = invoke(args)
    ok(table)
    assert f"of speech in {len(speech)} windows" in text(table) and "no speech" in text(table)
    assert f"· model {doc['model_id']}" in text(table)
    # an uncertain window is marked "?" as predict marks an answer (CLI QA, stop 33)
    unsure = [s for s in speech if s["confidence"] < 0.5]
    assert text(table).count(" ? ") == len(unsure)


def test_a_timeline_without_speech_says_why(cli_model, tmp_path):
    path = tmp_path / "hum.wav"
    t = np.arange(4 * SR) / SR
    sf.write(path, (0.3 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32), SR)
    res = invoke(["timeline", path, "-m", cli_model])
    ok(res)  # was "no speech (no_speech)": the status, not the reason
    assert "overall: no speech (steady_sound: a steady sound (noise, hum," in text(res)


def test_timeline_windows_past_the_first_block(cli_model, tmp_path):
    """window 1 s every 1 s over 70 s (silence, then a voice from 63 s): the windows past
    the first 60 s block read the right samples, none lies past the end, the silence is one
    gap."""
    wave = np.zeros(70 * SR, np.float32)
    wave[63 * SR :] = tone(7.0)
    path = tmp_path / "gap.wav"
    sf.write(path, wave, SR, subtype="PCM_16")
    res = invoke(["timeline", path, "-m", cli_model, "--window", "1", "--hop", "1", "--json"])
    ok(res)
    segs = json.loads(res.stdout)["segments"]
    assert segs[0]["kind"] == "gap" and segs[0]["start"] == 0.0
    assert segs[0]["end"] == pytest.approx(63.05, abs=0.05)
    speech = segs[1:-1] if segs[-1]["kind"] == "gap" else segs[1:]
    assert all(s["kind"] == "speech" and s["label"] in LABELS for s in speech)
    assert len(speech) == 7 and speech[-1]["end"] == pytest.approx(69.9, abs=0.1)
    assert all(s["end"] <= 70.0 for s in segs)


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
    assert [Path(r["source"]) for r in doc] == [good_clips[0], *bad, good_clips[1]]
    check_prediction(doc[0])
    check_prediction(doc[-1])
    assert all(r["error"] for r in doc[1:-1])


def test_timeline_of_a_file_shorter_than_a_second(cli_model, good_clips):
    """A 0.8 s voiced clip is one (short) window, not an empty timeline."""
    res = invoke(["timeline", good_clips[0], "-m", cli_model, "--json"])
    ok(res)
    doc = json.loads(res.stdout)
    validate_document(doc, "timeline")
    speech = [s for s in doc["segments"] if s["kind"] == "speech"]
    assert len(speech) == 1
    seg = speech[0]
    assert seg["start"] < 0.1 and seg["end"] == pytest.approx(0.8, abs=0.05)
    assert seg["label"] in LABELS and doc["summary"]["dominant"] == seg["label"]


@pytest.mark.parametrize("json_out", [True, False])
def test_timeline_of_a_refused_file(cli_model, bad_dir, json_out):
    """A file that is not audio: exit 2 with the reason; with --json stdout holds the
    failure document predict --json writes (it held nothing before stop 35)."""
    path = bad_dir / "notaudio.wav"
    res = invoke(["timeline", path, "-m", cli_model, *(["--json"] if json_out else [])])
    ok(res, 2)
    assert "not audio" in " ".join(res.stderr.split())
    if json_out:
        doc = json.loads(res.stdout)
        assert doc["source"] == str(path) and "not audio" in doc["error"]
        assert doc["schema_version"] == "1"
        validate_document(doc, "timeline")  # the timeline schema knows it (README QA, stop 38)
    else:
        assert res.stdout == ""
    # a bad option is no failure of the file: no document blames it (re-check, stop 35)
    res = invoke(["timeline", path, "-m", cli_model, "--window", "0", "--json"])
    ok(res, 2)
    assert res.stdout == "" and "window must be" in " ".join(res.stderr.split())


def test_an_interrupted_timeline_shows_what_was_read(cli_model, long_file, monkeypatch):
    """Ctrl-C after the first block printed nothing and exited 130 (QA, stop 37): the
    timeline of what was read is finished, printed, and the interruption said."""
    from emovox.serving import timeline as tl_mod
    from emovox.serving.predictor import Predictor

    real = tl_mod.build_timeline

    def ctrl_c_after_first_block(*args, **kwargs):
        calls = []

        def progress(s):
            calls.append(s)
            if len(calls) == 2:
                raise KeyboardInterrupt
        return real(*args, **{**kwargs, "block_s": 8.0, "progress": progress})

    with pytest.raises(tl_mod.TimelineInterrupted) as stop:
        ctrl_c_after_first_block(Predictor.from_artifact(cli_model), long_file)
    part = stop.value.timeline
    assert part.duration == pytest.approx(16.0, abs=0.01)  # two 8 s blocks were read
    assert part.warnings[-1].endswith("interrupted at 16.0 s: the timeline covers the audio "
                                      "read before that")
    assert part.segments and part.segments[-1].end == pytest.approx(16.0, abs=0.01)
    monkeypatch.setattr(tl_mod, "build_timeline", ctrl_c_after_first_block)
    res = invoke(["timeline", long_file, "-m", cli_model, "--csv"])
    assert res.exit_code == 130, text(res)
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert rows and float(rows[-1]["end"]) == pytest.approx(16.0, abs=0.01)
    assert "interrupted at 16.0 s" in text(res)


def test_times_show_the_hops_steps_and_a_newline_in_a_name_keeps_one_row(tmp_path):
    """`--hop 0.25` printed starts 0.1, 0.3, 0.6, 0.8 and the CSV 2 decimals where --json
    has 3; a file name's newline split its table row (code review, stop 46)."""
    from cli_helpers import invoke, text

    from signals import talk, write_clip

    clip = write_clip(tmp_path / "t\nx.wav", talk(4.0))
    res = invoke(["timeline", str(clip), "--window", "1", "--hop", "0.25"])
    assert res.exit_code == 0, text(res)
    assert "t\\x0ax.wav" in res.stdout and "t\nx.wav" not in res.stdout
    starts = [line.split()[1] for line in res.stdout.splitlines()
              if line.startswith("│") and line.split()[1][:1].isdigit()]
    steps = {round(float(b) - float(a), 2) for a, b in zip(starts, starts[1:], strict=False)}
    assert len(starts) > 4 and all(len(s.split(".")[1]) == 2 for s in starts)
    assert 0.25 in steps and not steps & {0.2, 0.3}
    csv_out = invoke(["timeline", str(clip), "--window", "1", "--hop", "0.125", "--csv"])
    assert all(len(row.split(",")[0].split(".")[1]) == 3
               for row in csv_out.stdout.splitlines()[1:])
