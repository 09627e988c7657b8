"""Matplotlib figures of the web app. Built on :class:`matplotlib.figure.Figure` directly
(no pyplot state), so concurrent sessions never share a figure."""

from __future__ import annotations

from collections.abc import Mapping

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


def confusion_figure(labels: list[str], counts: np.ndarray) -> Figure:
    """Row-normalised confusion matrix (recall per true class) with counts."""
    norm = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig = Figure(figsize=(6.5, 5.5), dpi=100)
    ax = fig.add_subplot()
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center", fontsize=8,
                    color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of true class")
    fig.tight_layout()
    return fig


def recall_figure(recall: Mapping[str, float]) -> Figure:
    """Per-class recall (%) with the chance level."""
    fig = Figure(figsize=(6.5, 3), dpi=100)
    ax = fig.add_subplot()
    names = list(recall)
    ax.bar(names, [float(recall[k]) for k in names], color="#4472c4")
    if names:
        ax.axhline(100.0 / len(names), color="grey", ls="--", lw=1, label="chance")
        ax.legend(loc="upper right")
    ax.set_ylim(0, 100)
    ax.set_ylabel("recall (%)")
    ax.tick_params(axis="x", rotation=45)
    fig.tight_layout()
    return fig
