"""Matplotlib figures of the web app's analysis page. Built on :class:`matplotlib.figure.Figure`
directly (no pyplot state), so concurrent sessions never share a figure. The model card's
confusion matrix and recall bars are :mod:`emovox.plots`' figures (as in run directories)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from emovox.affect import AROUSAL_VALENCE


def waveform_figure(t: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> Figure:
    fig = Figure(figsize=(12, 2.4), dpi=100)
    ax = fig.add_subplot()
    ax.fill_between(t, lo, hi, color="#4472c4", lw=0.5)
    ax.set_xlim(0, float(t[-1]) if len(t) and t[-1] > 0 else 1)
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("amplitude")
    fig.tight_layout()
    return fig


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


def circumplex_figure(arousal: float, valence: float) -> Figure:
    """The derived (valence, arousal) point among the emotion prototypes."""
    fig = Figure(figsize=(3.0, 3.0), dpi=90)
    ax = fig.add_subplot()
    ax.add_patch(_circle())
    ax.axhline(0, color="#bbb", lw=0.8)
    ax.axvline(0, color="#bbb", lw=0.8)
    for emo, (a, v) in AROUSAL_VALENCE.items():
        ax.plot(v, a, "o", color="#999", ms=4)
        ax.annotate(str(emo), (v, a), textcoords="offset points", xytext=(4, 3), fontsize=7,
                    color="#555")
    ax.plot(valence, arousal, "o", color="#c62828", ms=9)
    ax.set_xlim(-1.05, 1.05)
    ax.set_ylim(-1.05, 1.05)
    ax.set_aspect("equal")
    ax.set_xlabel("valence")
    ax.set_ylabel("arousal")
    fig.tight_layout()
    return fig


def _circle():
    from matplotlib.patches import Circle

    return Circle((0, 0), 1.0, fill=False, color="#ddd")
