"""Figures of results: confusion matrix, recall per class, training curves.

The ``*_figure`` functions build a :class:`matplotlib.figure.Figure` without pyplot (no
global state: safe in threads and in the web app); the ``plot_*`` functions save one as a
PNG file of a run directory.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure


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
    """Per-class recall (%) as a bar chart, with the chance level."""
    fig = Figure(figsize=figsize, dpi=dpi)
    ax = fig.add_subplot()
    names = list(recall)
    ax.bar(names, [float(recall[k]) for k in names], color="#4472c4")
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
    "confusion_figure", "curves_figure", "plot_confusion", "plot_curves", "plot_recall",
    "recall_figure",
]
