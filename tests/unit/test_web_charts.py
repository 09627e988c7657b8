"""The one emotion palette and the web app's chart builders (emovox.web.charts, figures):
pure functions, no Streamlit. Charts are checked through their Vega-Lite spec."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from emovox.labels import LABELS
from emovox.plots import EMOTION_COLOURS, NO_EMOTION_COLOUR, emotion_colour, recall_figure
from emovox.web import charts, figures, view

pytest.importorskip("altair")


def _spec(chart) -> dict:
    return chart.to_dict()


def _rows(spec: dict) -> list[dict]:
    """Every inline data row of a (layered) spec."""
    out = []
    for ds in spec.get("datasets", {}).values():
        out.extend(ds)
    return out


def _colours_hex(spec) -> set[str]:
    text = json.dumps(spec)
    return {c for c in EMOTION_COLOURS.values() if c in text}


def _contrast_on_white(hex_colour: str) -> float:
    rgb = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    lum = 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
    return 1.05 / (lum + 0.05)


def test_one_palette_distinct_readable_colours():
    assert list(EMOTION_COLOURS) == list(LABELS)
    assert len(set(EMOTION_COLOURS.values())) == len(LABELS)
    assert all(_contrast_on_white(c) >= 3.0 for c in EMOTION_COLOURS.values())
    assert emotion_colour("angry") == EMOTION_COLOURS["angry"]
    assert emotion_colour("silence") == emotion_colour(None) == NO_EMOTION_COLOUR
    scale = charts.emotion_scale().to_dict()
    assert scale["domain"] == list(LABELS) and scale["range"] == list(EMOTION_COLOURS.values())


def test_recall_bars_and_circumplex_use_the_palette():
    from matplotlib.colors import to_hex

    rec = recall_figure({lab: 50.0 for lab in LABELS})
    assert [to_hex(p.get_facecolor()) for p in rec.axes[0].patches] == \
        [EMOTION_COLOURS[lab] for lab in LABELS]
    fig = figures.circumplex_figure(0.2, -0.3)
    names = {t.get_text(): to_hex(t.get_color()) for t in fig.axes[0].texts}
    assert names == EMOTION_COLOURS


def test_circumplex_labels_do_not_overlap_and_stay_inside():
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = figures.circumplex_figure(0.8, -0.6)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    ax = fig.axes[0]
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in ax.texts]
    assert len(boxes) == len(LABELS)
    overlapping = [(a, b) for i, (a, ba) in enumerate(boxes) for b, bb in boxes[i + 1:]
                   if ba.overlaps(bb)]
    assert overlapping == []
    frame = ax.get_window_extent(renderer)
    outside = [a for a, b in boxes if b.x0 < frame.x0 or b.x1 > frame.x1
               or b.y0 < frame.y0 or b.y1 > frame.y1]
    assert outside == []


def test_circumplex_without_a_point():
    fig = figures.circumplex_figure(None, None)
    assert len(fig.axes[0].lines) == len(LABELS) + 2  # prototypes + the two axes


def test_probability_chart_colours_by_emotion_not_confidence():
    probs = {lab: (0.3 if lab == "sad" else 0.1) for lab in LABELS}
    spec = _spec(charts.probability_chart(probs, "sad"))
    assert _colours_hex(spec) == set(EMOTION_COLOURS.values())
    rows = _rows(spec)
    assert [r["predicted"] for r in rows] == [lab == "sad" for lab in LABELS]
    for old in ("#2e7d32", "#ef6c00", "#c62828"):  # the confidence-level colours
        assert old not in json.dumps(spec)


def _bands(n: int, hop: float = 1.5, window: float = 3.0) -> list[view.TimelineBand]:
    segs = []
    for i in range(n):
        lab = LABELS[(i // 7) % 8]
        if i % 11 == 10:
            segs.append({"start": i * hop, "end": i * hop + window, "label": "silence",
                         "confidence": 1.0, "probabilities": {}})
            continue
        segs.append({"start": i * hop, "end": i * hop + window, "label": lab,
                     "confidence": 0.3 + 0.6 * (i % 4) / 3,
                     "probabilities": {k: (0.5 if k == lab else 0.5 / 7) for k in LABELS}})
    return view.timeline_bands(segs)


def test_timeline_chart_one_band_per_window_gaps_and_hover():
    bands = _bands(12)
    spec = _spec(charts.timeline_chart(bands, 19.5))
    rows = _rows(spec)
    assert len(rows) == len(bands) == 11  # window 10 is silent: no band
    assert spec["mark"]["type"] == "rect" and spec["encoding"]["x2"]["field"] == "end"
    assert spec["encoding"]["color"]["scale"]["range"] == list(EMOTION_COLOURS.values())
    tips = [t["field"] for t in spec["encoding"]["tooltip"]]
    assert tips[:3] == ["window", "emotion", "confidence_shown"] and tips[3:] == list(LABELS)
    # every emotion as the headline writes it (".0%" showed 0.499 as "50%": review, stop 47)
    assert rows[0][LABELS[0]] == "50%" and rows[0][LABELS[1]] == "7%"
    edge = view.timeline_bands([{"start": 0.0, "end": 3.0, "label": "calm", "confidence": 0.499,
                                 "probabilities": {"calm": 0.499, "sad": 0.501}}])
    row = _rows(_spec(charts.timeline_chart(edge, 3.0)))[0]
    assert (row["calm"], row["sad"]) == ("49.9%", "50%")
    assert all(0.25 <= r["opacity"] <= 1.0 for r in rows)
    assert rows[0]["opacity"] < rows[3]["opacity"]  # confidence 0.3 vs 0.9
    gap_start = bands[9].end
    assert bands[10].start > gap_start  # silence is a gap, not a band
    assert spec["encoding"]["x"]["scale"]["domain"] == [0, 19.5]
    title = spec["title"]["text"]
    assert len(title) <= 24  # short: never wraps, even at phone width


def test_ten_minute_timeline_builds_fast_with_bounded_marks():
    bands = _bands(400)
    t0 = time.perf_counter()
    spec = _spec(charts.timeline_chart(bands, 601.5))
    took = time.perf_counter() - t0
    assert took < 2.0, took
    rows = _rows(spec)
    assert len(rows) == len(bands) <= 400  # one mark per speech window, no lines or points
    assert "layer" not in spec
    many = view.timeline_bands([{"start": i * 0.5, "end": i * 0.5 + 1, "label": "calm",
                                 "confidence": 0.5, "probabilities": {"calm": 0.5}}
                                for i in range(5000)])
    assert len(_rows(_spec(charts.timeline_chart(many, 2500.5)))) <= charts.MAX_TIMELINE_BANDS


def test_waveform_chart_is_true_scale_with_evidence_shading():
    t = np.linspace(0, 4, 100)
    lo, hi = -0.01 * np.ones(100), 0.01 * np.ones(100)
    plain = _spec(charts.waveform_chart(t, lo, hi))
    wave = plain["layer"][-1]
    assert wave["encoding"]["y"]["scale"]["domain"] == [-1, 1]  # not normalised to the signal
    assert len(plain["layer"]) == 1
    spans = view.evidence_spans([
        {"start": 0.0, "end": 2.0, "label": "angry", "contribution": 0.1, "weight": 1},
        {"start": 2.0, "end": 4.0, "label": "angry", "contribution": 0.3, "weight": 1}])
    shaded = _spec(charts.waveform_chart(t, lo, hi, spans, title="Waveform · evidence"))
    assert len(shaded["layer"]) == 2 and shaded["title"]["text"] == "Waveform · evidence"
    ev = [r for r in _rows(shaded) if "colour" in r]
    assert [r["colour"] for r in ev] == [EMOTION_COLOURS["angry"]] * 2
    assert ev[0]["opacity"] < ev[1]["opacity"]  # the heavier span is darker
    # the tooltip shows the answer's own "contribution", named so (it said "weight" for the
    # share of the top window: web QA, stop 38)
    assert [r["contribution"] for r in ev] == [0.1, 0.3]
    tips = json.dumps(shaded["layer"][0]["encoding"]["tooltip"])
    assert '"title": "contribution"' in tips and '"weight"' not in tips


def test_level_meter_marks_clipping_only():
    ok = view.SignalLevel(-6.0, -18.0, 0, 16000)
    spec = _spec(charts.level_meter_chart(ok))
    bars = [r for r in _rows(spec) if "measure" in r]
    assert [(r["measure"], r["dBFS"]) for r in bars] == [("peak", -6.0), ("RMS", -18.0)]
    assert "#455a64" in json.dumps(spec) and "#c62828" not in json.dumps(spec)
    silent = _spec(charts.level_meter_chart(view.SignalLevel(-np.inf, -np.inf, 0, 10)))
    assert [r["dBFS"] for r in _rows(silent) if "measure" in r] == [charts.METER_FLOOR_DBFS] * 2
    assert "#c62828" not in json.dumps(silent)  # no "very quiet" mark since stop 39
    # red as the answer says it (a clipped MP3: its own count of flat runs found none)
    assert "#c62828" in json.dumps(_spec(charts.level_meter_chart(ok, clipped=True)))
    assert view.says_clipped(["x.mp3: the recording is clipped: 130 samples (0.20%) sit"])
    assert not view.says_clipped(["x.mp3: mains hum at 50 Hz"])
    clipped = _spec(charts.level_meter_chart(view.SignalLevel(0.0, -3.0, 30, 16000)))
    assert "#c62828" in json.dumps(clipped)
