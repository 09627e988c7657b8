"""Matplotlib figures of the web app's analysis page: spectrogram, MFCCs and the
arousal/valence chart. Built on :class:`matplotlib.figure.Figure` directly (no pyplot state),
so concurrent sessions never share a figure. The model card's confusion matrix and recall bars
are :mod:`emovox.plots`' figures (as in run directories); the interactive charts (waveform,
probabilities, timeline, level) are in :mod:`emovox.web.charts`."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from emovox.affect import AROUSAL_VALENCE
from emovox.plots import emotion_colour


def _matrix_figure(x: np.ndarray, seconds_per_frame: float, ylabel: str, cbar: str,
                   cmap: str) -> Figure:
    fig = Figure(figsize=(12, 3.2), dpi=100)
    ax = fig.add_subplot()
    extent = (0.0, x.shape[1] * seconds_per_frame, 0.0, float(x.shape[0]))
    im = ax.imshow(x, origin="lower", aspect="auto", cmap=cmap, extent=extent,
                   interpolation="nearest")
    ax.set_xlabel("time (s)")
    ax.set_ylabel(ylabel)
    fig.colorbar(im, ax=ax, label=cbar, fraction=0.03, pad=0.01)
    fig.tight_layout()
    return fig


def log_mel_figure(mel: np.ndarray, seconds_per_frame: float) -> Figure:
    return _matrix_figure(mel, seconds_per_frame, "mel band", "dB re full scale", "magma")


def mfcc_figure(cep: np.ndarray, seconds_per_frame: float) -> Figure:
    return _matrix_figure(cep, seconds_per_frame, "coefficient", "value", "coolwarm")


#: Where each prototype's name sits relative to its dot (offset in points, alignment): the
#: three negative-valence, high-arousal emotions (angry, fearful, disgust) lie close together,
#: so their names go beside and below their dots, apart from one another.
_LABEL_PLACES: dict[str, tuple[tuple[float, float], str, str]] = {
    "neutral": ((5, 4), "left", "bottom"),
    "calm": ((5, -2), "left", "top"),
    "happy": ((0, -6), "center", "top"),
    "sad": ((5, -2), "left", "top"),
    "angry": ((-5, 2), "right", "bottom"),
    "fearful": ((-5, 0), "right", "center"),
    "disgust": ((0, -6), "center", "top"),
    "surprised": ((0, 6), "center", "bottom"),
}


def circumplex_figure(arousal: float | None, valence: float | None) -> Figure:
    """The emotion prototypes (each in its palette colour, named) on the valence/arousal
    plane, and the derived point of the prediction (none when there is nothing to place)."""
    fig = Figure(figsize=(3.2, 3.2), dpi=100)
    ax = fig.add_subplot()
    ax.add_patch(_circle())
    ax.axhline(0, color="#ccc", lw=0.8)
    ax.axvline(0, color="#ccc", lw=0.8)
    for emo, (a, v) in AROUSAL_VALENCE.items():
        name = str(emo)
        colour = emotion_colour(name)
        offset, ha, va = _LABEL_PLACES.get(name, ((4, 3), "left", "bottom"))
        ax.plot(v, a, "o", color=colour, ms=5)
        ax.annotate(name, (v, a), textcoords="offset points", xytext=offset, ha=ha, va=va,
                    fontsize=7.5, color=colour)
    if arousal is not None and valence is not None:
        ax.plot(valence, arousal, "o", mfc="none", mec="#111", mew=2.0, ms=11)
        ax.plot(valence, arousal, "o", color="#111", ms=3)
    ax.set_xlim(-1.1, 1.1)
    ax.set_ylim(-1.1, 1.1)
    ax.set_aspect("equal")
    ax.set_xlabel("valence")
    ax.set_ylabel("arousal")
    fig.tight_layout()
    return fig


def _circle():
    from matplotlib.patches import Circle

    return Circle((0, 0), 1.0, fill=False, color="#ddd")
