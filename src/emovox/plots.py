"""Figures of results: confusion matrix, recall per class, training curves, and THE emotion
palette (:data:`EMOTION_COLOURS`) that every chart of emovox colours emotions with (the web
app's probability bars, timeline, waveform evidence and arousal/valence chart included).

The ``*_figure`` functions build a :class:`matplotlib.figure.Figure` without pyplot (no
global state: safe in threads and in the web app); the ``plot_*`` functions save one as a
PNG file of a run directory.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from emovox.labels import Emotion

#: One colour per emotion, used by every chart (matplotlib and the web app's Vega-Lite charts).
#: Distinct hues, each at least 3:1 contrast on white so an emotion's name can be written in
#: its colour. Confidence is never shown by changing the hue (use text or opacity).
EMOTION_COLOURS: dict[str, str] = {
    Emotion.NEUTRAL.value: "#6e6e6e",
    Emotion.CALM.value: "#2b8cbe",
    Emotion.HAPPY.value: "#b8860b",
    Emotion.SAD.value: "#1f4e9c",
    Emotion.ANGRY.value: "#d62828",
    Emotion.FEARFUL.value: "#8e44ad",
    Emotion.DISGUST.value: "#2e8b57",
    Emotion.SURPRISED.value: "#d95f02",
}
#: Colour of anything that is not an emotion (silence, no speech, unknown labels).
NO_EMOTION_COLOUR = "#b0b0b0"


def emotion_colour(label: str | None) -> str:
    """The palette colour of ``label`` (:data:`NO_EMOTION_COLOUR` for None or an unknown
    label such as ``silence``)."""
    return EMOTION_COLOURS.get(str(label), NO_EMOTION_COLOUR) if label is not None \
        else NO_EMOTION_COLOUR


def confusion_figure(
    confusion: Sequence[Sequence[int]] | np.ndarray, labels: Sequence[str], title: str = "",
    *, figsize: tuple[float, float] = (7, 6), dpi: int = 110,
) -> Figure:
    """Row-normalised confusion matrix (recall per true class) with counts."""
    cm = np.asarray(confusion, float)
    labels = list(labels)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig = Figure(figsize=figsize, dpi=dpi)
    ax = fig.add_subplot()
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center",
                    color="white" if norm[i, j] > 0.5 else "black", fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of true class")
    fig.tight_layout()
    return fig


def recall_figure(
    recall: Mapping[str, float], title: str = "",
    *, figsize: tuple[float, float] = (7, 3.5), dpi: int = 110,
) -> Figure:
    """Per-class recall (%) as a bar chart (each bar in its emotion's colour), with the
    chance level."""
    fig = Figure(figsize=figsize, dpi=dpi)
    ax = fig.add_subplot()
    names = list(recall)
    ax.bar(names, [float(recall[k]) for k in names], color=[emotion_colour(k) for k in names])
    if names:
        ax.axhline(100.0 / len(names), color="grey", ls="--", lw=1, label="chance")
        ax.legend(loc="upper right")
    ax.set_ylim(0, 100)
    ax.set_ylabel("recall (%)")
    if title:
        ax.set_title(title)
    ax.tick_params(axis="x", rotation=45)
    fig.tight_layout()
    return fig


def curves_figure(history: Mapping[str, Sequence[float]], title: str = "") -> Figure:
    """Training curves: loss (train, validation) and validation UA per epoch."""
    fig = Figure(figsize=(7, 3.5), dpi=110)
    ax1 = fig.add_subplot()
    if "train_loss" in history:
        ax1.plot(history["train_loss"], label="train loss", color="#c0504d")
    if "val_loss" in history:
        ax1.plot(history["val_loss"], label="val loss", color="#f79646")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss")
    if "val_ua" in history:
        ax2 = ax1.twinx()
        ax2.plot(history["val_ua"], label="val UA", color="#4472c4")
        ax2.set_ylabel("validation UA (%)")
        ax2.set_ylim(0, 100)
    fig.legend(loc="upper right")
    if title:
        ax1.set_title(title)
    fig.tight_layout()
    return fig


def plot_confusion(confusion: list[list[int]], labels: list[str], path: Path, title: str) -> None:
    """Row-normalised confusion matrix (recall per true class) with counts, as PNG."""
    confusion_figure(confusion, labels, title).savefig(path)


def plot_recall(recall: dict[str, float], path: Path, title: str) -> None:
    """Per-class recall (%) as a bar chart, as PNG."""
    recall_figure(recall, title).savefig(path)


def plot_curves(history: dict[str, list[float]], path: Path, title: str) -> None:
    """Training curves (loss and validation UA per epoch), as PNG."""
    curves_figure(history, title).savefig(path)


__all__ = [
    "EMOTION_COLOURS", "NO_EMOTION_COLOUR", "confusion_figure", "curves_figure", "emotion_colour",
    "plot_confusion", "plot_curves", "plot_recall", "recall_figure",
]
