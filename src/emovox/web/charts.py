"""The web app's interactive charts (Vega-Lite through Altair, which Streamlit ships): the
probabilities, the emotion timeline, the true-scale waveform with its evidence shading and
the level meter. Pure builders: they take plain data and return an Altair chart (no
Streamlit), so they are unit-tested and render the same in any Vega-Lite front end.

Every emotion is drawn in its colour from :data:`emovox.plots.EMOTION_COLOURS`; confidence is
shown as text or opacity, never as a hue. Charts size to their container (readable at phone
width) and keep their titles short enough never to wrap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from emovox.labels import LABELS
from emovox.plots import emotion_colour
from emovox.serving.answer import percent_text
from emovox.web.view import SignalLevel, TimelineBand

__all__ = [
    "MAX_TIMELINE_BANDS",
    "METER_FLOOR_DBFS",
    "emotion_scale",
    "level_meter_chart",
    "probability_chart",
    "timeline_chart",
    "waveform_chart",
]

#: Bands drawn at most by :func:`timeline_chart` (longer timelines are thinned evenly).
MAX_TIMELINE_BANDS = 1500
#: Bottom of the level meter's dBFS axis.
METER_FLOOR_DBFS = -80.0
_MIN_OPACITY = 0.25  # a band of confidence 0 is still visible
# Width fits the container; ``height`` is the plot's, axes and legend come on top of it.
_FIT_X = {"type": "fit-x", "contains": "padding"}


def _alt():
    import altair as alt

    return alt


def emotion_scale(labels: Sequence[str] = LABELS):
    """The Altair colour scale of the emotion palette."""
    alt = _alt()
    labels = list(labels)
    return alt.Scale(domain=labels, range=[emotion_colour(lab) for lab in labels])


def probability_chart(probabilities: Mapping[str, float], label: str | None):
    """Horizontal bars of every probability on a 0-100 % axis, each in its emotion's colour;
    the predicted emotion opaque, the others faded."""
    import pandas as pd

    alt = _alt()
    names = list(probabilities)
    df = pd.DataFrame({"emotion": names,
                       "probability": [float(probabilities[k]) for k in names],
                       "shown": [percent_text(float(probabilities[k])) for k in names],
                       "predicted": [k == label for k in names]})
    base = alt.Chart(df).encode(  # labels as the headline writes them: ".0%" made 0.4957
        y=alt.Y("emotion:N", sort=names, title=None),  # "50%" beside its "uncertain" (46)
        x=alt.X("probability:Q", scale=alt.Scale(domain=[0, 1]),
                axis=alt.Axis(format="%", title="probability", tickCount=5)),
        tooltip=["emotion", alt.Tooltip("shown:N", title="probability")],  # as the label
    )
    bars = base.mark_bar().encode(
        color=alt.Color("emotion:N", scale=emotion_scale(names), legend=None),
        opacity=alt.condition(alt.datum.predicted, alt.value(1.0), alt.value(0.45)))
    text = base.mark_text(align="left", dx=3).encode(text=alt.Text("shown:N"))
    return (bars + text).properties(height=240)


def _thin(bands: Sequence[TimelineBand], limit: int) -> list[TimelineBand]:
    if len(bands) <= limit:
        return list(bands)
    keep = np.unique(np.linspace(0, len(bands) - 1, limit).round().astype(int))
    return [bands[i] for i in keep]


def timeline_chart(bands: Sequence[TimelineBand], duration: float,
                   labels: Sequence[str] = LABELS, *, max_bands: int = MAX_TIMELINE_BANDS):
    """One band per speech window (colour = emotion, opacity = confidence), nothing over
    silence, every probability of the window on hover. At most ``max_bands`` marks are drawn,
    whatever the length of the recording."""
    import pandas as pd

    alt = _alt()
    labels = list(labels)
    rows = []
    for b in _thin(bands, max_bands):
        row: dict[str, Any] = {
            "start": b.start, "end": b.end, "track": "emotion", "emotion": b.label,
            "confidence": b.confidence, "confidence_shown": percent_text(b.confidence),
            "window": f"{b.window_start:.1f}–{b.window_end:.1f} s",
            "opacity": _MIN_OPACITY + (1 - _MIN_OPACITY) * min(1.0, max(0.0, b.confidence)),
        }
        row.update({lab: percent_text(float(b.probabilities.get(lab, 0.0)))
                    for lab in labels})  # as the headline writes them (".0%": 49.9 as 50)
        rows.append(row)
    cols = ["start", "end", "track", "emotion", "confidence", "confidence_shown", "window",
            "opacity", *labels]
    df = pd.DataFrame(rows, columns=cols)
    x_end = max(float(duration), max((b.end for b in bands), default=0.0), 1e-3)
    tooltip = [alt.Tooltip("window:N", title="window"), alt.Tooltip("emotion:N"),
               alt.Tooltip("confidence_shown:N", title="confidence")]
    tooltip += [alt.Tooltip(f"{lab}:N") for lab in labels]
    return alt.Chart(df, title=alt.Title("Emotion over time", anchor="start")).mark_rect(
    ).encode(
        x=alt.X("start:Q", title="time (s)", scale=alt.Scale(domain=[0, x_end], nice=False),
                axis=alt.Axis(tickCount=8, labelOverlap=True)),
        x2="end:Q",
        y=alt.Y("track:N", axis=None, title=None,  # one track: each band fills the height
                scale=alt.Scale(paddingInner=0, paddingOuter=0)),
        color=alt.Color("emotion:N", scale=emotion_scale(labels), title=None,
                        legend=alt.Legend(orient="bottom", columns=4, symbolType="square")),
        opacity=alt.Opacity("opacity:Q", scale=None, legend=None),
        tooltip=tooltip,
    ).properties(height=60, autosize=_FIT_X)


def waveform_chart(t: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                   evidence: Sequence[Mapping[str, Any]] = (), *, title: str = "Waveform"):
    """The min/max envelope on a true full-scale axis (-1 to 1: a quiet recording looks
    quiet), with the evidence spans (``{start, end, label, share}``, see
    :func:`emovox.web.view.evidence_spans`) shaded behind it in their emotion's colour,
    darker where they weighed more."""
    import pandas as pd

    alt = _alt()
    df = pd.DataFrame({"time": np.asarray(t, float), "min": np.asarray(lo, float),
                       "max": np.asarray(hi, float)})
    x_end = float(df["time"].max()) if len(df) else 1.0
    x = alt.X("time:Q", title="time (s)", scale=alt.Scale(domain=[0, max(x_end, 1e-3)],
                                                          nice=False),
              axis=alt.Axis(tickCount=8, labelOverlap=True))
    wave = alt.Chart(df).mark_area(color="#37474f", opacity=0.9, clip=True).encode(  # a float
        # WAV past full scale stays inside the fixed axis (web review, stop 52)
        x=x, y=alt.Y("min:Q", title="amplitude", scale=alt.Scale(domain=[-1, 1]),
                     axis=alt.Axis(values=[-1, -0.5, 0, 0.5, 1])),
        y2="max:Q", tooltip=[])
    layers = []
    if evidence:
        ev = pd.DataFrame([{"start": float(e["start"]), "end": float(e["end"]),
                            "emotion": str(e.get("label") or ""),
                            "contribution": float(e.get("contribution", 1.0)),
                            "opacity": 0.08 + 0.42 * float(e.get("share", 1.0)),
                            "colour": emotion_colour(e.get("label"))} for e in evidence])
        layers.append(alt.Chart(ev).mark_rect().encode(
            x=alt.X("start:Q", scale=alt.Scale(domain=[0, max(x_end, 1e-3)], nice=False)),
            x2="end:Q", color=alt.Color("colour:N", scale=None, legend=None),
            opacity=alt.Opacity("opacity:Q", scale=None, legend=None),
            tooltip=[alt.Tooltip("start:Q", format=".1f", title="from (s)"),
                     alt.Tooltip("end:Q", format=".1f", title="to (s)"),
                     alt.Tooltip("emotion:N"),
                     alt.Tooltip("contribution:Q", format=".1%",  # the JSON's field: it
                                 title="contribution")]))  # said "weight" (web QA, stop 38)
    return alt.layer(*layers, wave, title=alt.Title(title, anchor="start")).properties(
        height=150, autosize=_FIT_X)


def level_meter_chart(level: SignalLevel, clipped: bool | None = None):
    """Peak and RMS level as bars on a dBFS axis (:data:`METER_FLOOR_DBFS` to 0); the bars
    turn red when the recording is clipped (``clipped``: as the answer says it, which
    counts clipping per codec; default ``level.clipped``: the meter was not red for a
    clipped MP3 whose answer said so, re-check, stop 39). No "very quiet" mark: the
    bundled models are level-invariant (a -30 dBFS line warned on untouched corpus clips
    that were answered right: QA, stop 39), and near-silence is the answer's own warning."""
    import pandas as pd

    alt = _alt()
    floor = METER_FLOOR_DBFS

    def clamp(v: float) -> float:
        return float(min(0.0, max(floor, v))) if np.isfinite(v) else floor

    df = pd.DataFrame({"measure": ["peak", "RMS"],
                       "dBFS": [clamp(level.peak_dbfs), clamp(level.rms_dbfs)],
                       "start": [floor, floor]})
    red = level.clipped if clipped is None else clipped
    bars = alt.Chart(df).mark_bar(color="#c62828" if red else "#455a64", size=14
                                  ).encode(
        y=alt.Y("measure:N", sort=["peak", "RMS"], title=None),
        x=alt.X("start:Q", scale=alt.Scale(domain=[floor, 0], nice=False),
                axis=alt.Axis(title="level (dBFS)", values=list(range(int(floor), 1, 10)))),
        x2="dBFS:Q", tooltip=[alt.Tooltip("measure:N"), alt.Tooltip("dBFS:Q", format=".1f")])
    return bars.properties(height=44, autosize=_FIT_X)
