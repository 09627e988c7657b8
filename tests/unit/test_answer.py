"""The answer (emovox.serving.answer) and the speech windows (emovox.serving.speech):
aggregation, evidence, status, regions and windows with known results."""

from __future__ import annotations

import numpy as np
import pytest

from emovox.serving.answer import (
    Prediction,
    Status,
    aggregate,
    confidence_band,
    evidence_of,
)
from emovox.serving.schema import load_schema, validate_document
from emovox.serving.speech import model_window_s, region_windows, speech_regions

LABELS = ("a", "b", "c")


def test_aggregate_is_the_duration_weighted_mean():
    probs = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1]])
    assert aggregate(probs, [3.0, 1.0]) == pytest.approx([0.65, 0.25, 0.1])
    for bad in ([], [1.0], [-1.0, 2.0], [0.0, 0.0]):
        with pytest.raises(ValueError):
            aggregate(probs, bad)


def test_evidence_contributions():
    probs = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1]])
    final = aggregate(probs, [3.0, 1.0])
    ev = evidence_of([(0.0, 3.0), (5.0, 6.0)], probs, [3.0, 1.0], LABELS, final)
    assert [e.label for e in ev] == ["a", "b"]
    assert [e.weight for e in ev] == pytest.approx([0.75, 0.25])
    # share of the final label's mass: 0.75*0.8 / 0.65 and 0.25*0.2 / 0.65
    assert [e.contribution for e in ev] == pytest.approx([0.6 / 0.65, 0.05 / 0.65])
    assert ev[1].to_dict() == {"start": 5.0, "end": 6.0, "weight": 0.25, "label": "b",
                               "confidence": 0.7, "contribution": round(0.05 / 0.65, 4)}


def test_confidence_bands():
    assert [confidence_band(c) for c in (0.9, 0.7, 0.69, 0.5, 0.49, None)] == \
        ["high", "high", "medium", "medium", "low", None]


def test_no_speech_document_is_valid_and_has_no_emotion():
    p = Prediction(None, None, None, None, None, 2.0, "x.wav", Status.NO_SPEECH,
                   "silence", "the recording is silent", 0.0, 0)
    d = p.to_dict()
    validate_document(d, "prediction")
    assert d["label"] is None and d["probabilities"] is None and d["evidence"] == []
    assert p.silent and not p.has_emotion
    bad = {**d, "label": "a"}  # an emotion with no_speech is refused by the schema
    with pytest.raises(Exception, match="None|null|not of type"):
        validate_document(bad, "prediction")
    with pytest.raises(Exception, match="required"):
        validate_document({k: v for k, v in d.items() if k != "status"}, "prediction")


def test_schema_files_ship_and_are_versioned():
    for kind in ("prediction", "timeline"):
        s = load_schema(kind)
        assert s["$schema"].endswith("2020-12/schema") and "v1" in s["$id"]
    for kind in ("prediction", "timeline"):
        assert load_schema(kind)["$defs"][kind]["properties"]["schema_version"] == {"const": "1"}
        validate_document({"schema_version": "1", "source": "x.wav", "error": "not audio"}, kind)


def test_regions_bridge_short_pauses_and_pad():
    segs = np.array([[1.0, 2.0], [2.3, 3.0], [5.0, 5.2], [9.95, 10.0]])
    got = np.array(speech_regions(segs, 10.0))
    assert got == pytest.approx(np.array([(0.9, 3.1), (4.9, 5.3), (9.85, 10.0)]))
    assert speech_regions(np.zeros((0, 2)), 3.0) == []


def test_windows_cover_the_tail_and_skip_blips():
    sr = 10
    # a 7 s region: windows 0-3, 1.5-4.5, 3-6, and 4-7 (aligned to the end)
    assert region_windows([(0.0, 7.0)], sr, 3.0, 1.5) == [(0, 30), (15, 45), (30, 60),
                                                           (40, 70)]
    # a short region is one shorter window; a 0.2 s blip is dropped when others exist
    assert region_windows([(1.0, 2.0), (4.0, 4.2)], sr, 3.0, 1.5) == [(10, 20)]
    assert region_windows([(4.0, 4.2)], sr, 3.0, 1.5) == [(40, 42)]  # unless it is all
    # a 6.1 s region: the end-aligned window would start 0.1 s after the last one (3-6),
    # so that one moves to the end instead of being nearly repeated
    assert region_windows([(0.0, 6.1)], sr, 3.0, 1.5) == [(0, 30), (15, 45), (31, 61)]
    assert region_windows([(0.0, 5.6)], sr, 3.0, 2.5) == [(0, 30), (26, 56)]
    # ... unless moving it would leave a hole (hop 2.8 of a 3 s window: 0-3 and 3.2-6.2)
    assert region_windows([(0.0, 6.2)], sr, 3.0, 2.8) == [(0, 30), (28, 58), (32, 62)]
    # a region one window + under half a hop long is one window, the region whole (two
    # nearly repeating each other before: QA, stop 39); from half a hop on, two
    assert region_windows([(0.0, 3.1)], sr, 3.0, 1.5) == [(0, 31)]
    assert region_windows([(0.0, 3.8)], sr, 3.0, 1.5) == [(0, 30), (8, 38)]


def test_own_seconds_count_each_second_of_speech_once():
    from emovox.serving.speech import own_seconds

    sr = 10
    # overlapping windows of one region: each up to the next start, the last whole
    assert own_seconds([(0, 30), (15, 45), (30, 60), (40, 70)], sr) == pytest.approx(
        [1.5, 1.5, 1.0, 3.0])
    # a region just over one window: the end-aligned window no longer doubles its weight
    assert own_seconds([(0, 26), (2, 28)], sr) == pytest.approx([0.2, 2.6])
    # windows of separate regions keep their whole length
    assert own_seconds([(0, 26), (50, 60)], sr) == pytest.approx([2.6, 1.0])
    assert own_seconds([], sr) == []


def test_model_window():
    class Pre:
        n_frames, sr, frontend, feature_params = 256, 16000, None, {"hop_length": 160}

    assert model_window_s(Pre()) == pytest.approx(2.56)
    Pre.n_frames = 0
    assert model_window_s(Pre()) == 3.0


@pytest.mark.parametrize(("p", "text"), [
    (0.4957, "49.6%"), (0.4996, "49.9%"), (0.4995, "49.9%"), (0.4949, "49%"), (0.5, "50%"),
    (0.6951, "69.5%"),
    (0.6999, "69.9%"), (0.7, "70%"), (0.83, "83%"), (0.004, "0%"), (1.0, "100%")])
def test_a_percentage_never_rounds_across_the_uncertain_line_or_a_band(p, text):
    """0.4957 was shown "angry ? 50%" beside "? = uncertain: top probability below 50 %"
    (QA, stop 37)."""
    from emovox.serving.answer import percent_text

    assert percent_text(p) == text


@pytest.mark.parametrize(("p", "digits", "written"), [
    (0.49996, 4, 0.4999), (0.49995, 4, 0.4999), (0.4999996, 6, 0.499999),
    (0.49994, 4, 0.4999), (0.5, 4, 0.5), (0.50004, 4, 0.5), (0.50006, 4, 0.5001),
    (0.69996, 4, 0.6999), (0.7, 6, 0.7), (0.12346, 4, 0.1235), (0.99996, 4, 1.0)])
def test_a_written_probability_never_rounds_across_the_uncertain_line_or_a_band(
        p, digits, written):
    """0.49996 was written "0.5" beside the status "uncertain" in CSV (code review)."""
    from emovox.serving.answer import UNCERTAIN_BELOW, rounded_probability

    got = rounded_probability(p, digits)
    assert got == written
    assert (got < UNCERTAIN_BELOW) is (p < UNCERTAIN_BELOW)


def _probs(conf: float) -> dict[str, float]:
    from emovox.labels import LABELS

    return {lab: conf if i == 0 else (1 - conf) / (len(LABELS) - 1)
            for i, lab in enumerate(LABELS)}


CONFIDENCES = (0.49996, 0.4999996, 0.49999999999999994, 0.5, 0.50004, 0.4999)


@pytest.mark.parametrize("conf", CONFIDENCES)
def test_csv_confidences_agree_with_the_status_beside_them(conf):
    """The confidence (and the label's probability column) written in batch's and the
    timeline's CSV is below 0.5 exactly when the row's status is uncertain (code review:
    0.49996 was "0.5 ... uncertain")."""
    import csv
    import io
    from pathlib import Path

    from emovox.labels import LABELS
    from emovox.serving.answer import UNCERTAIN_BELOW
    from emovox.serving.batch import row_for
    from emovox.serving.timeline_doc import Segment, TimelineCsv

    top, uncertain = LABELS[0], conf < UNCERTAIN_BELOW
    status = Status.UNCERTAIN if uncertain else Status.OK
    pred = Prediction(top, conf, _probs(conf), 0.1, 0.1, 2.0, "x.wav", status,
                      speech_seconds=2.0, n_windows=1)
    row = row_for(Path("x.wav"), pred, None)
    assert row["status"] == status.value
    assert (float(row["confidence"]) < UNCERTAIN_BELOW) is uncertain, row["confidence"]
    assert float(row[f"p_{top}"]) == float(row["confidence"])

    buf = io.StringIO()
    out = TimelineCsv(buf)
    out.add(Segment(0.0, 3.0, top, conf, _probs(conf), 0.1, 0.1))
    out.close()
    (seg,) = csv.DictReader(io.StringIO(buf.getvalue()))
    assert seg["status"] == status.value
    assert (float(seg["confidence"]) < UNCERTAIN_BELOW) is uncertain, seg["confidence"]
    assert float(seg[top]) == float(seg["confidence"])


@pytest.mark.parametrize("conf", CONFIDENCES)
def test_a_timeline_summary_mean_agrees_with_its_status(conf):
    from emovox.labels import LABELS
    from emovox.serving.answer import UNCERTAIN_BELOW
    from emovox.serving.timeline_doc import Segment, Timeline

    tl = Timeline("x.wav", 3.0, 3.0, 1.5,
                  segments=[Segment(0.0, 3.0, LABELS[0], conf, _probs(conf), 0.1, 0.1,
                                    own=3.0)])
    summ = tl.summary()
    shown = summ["mean_probabilities"][LABELS[0]]
    assert (summ["status"] == "uncertain") is (conf < UNCERTAIN_BELOW)
    assert (shown < UNCERTAIN_BELOW) is (conf < UNCERTAIN_BELOW), shown
