"""Figures for run directories (matplotlib, Agg backend, PNG files)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_confusion(confusion: list[list[int]], labels: list[str], path: Path, title: str) -> None:
    """Row-normalised confusion matrix (recall per true class) with counts, as PNG."""
    cm = np.asarray(confusion, float)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(7, 6), dpi=110)
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center",
                    color="white" if norm[i, j] > 0.5 else "black", fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of true class")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_recall(recall: dict[str, float], path: Path, title: str) -> None:
    """Per-class recall (%) as a bar chart, as PNG."""
    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=110)
    names = list(recall)
    ax.bar(names, [recall[k] for k in names], color="#4472c4")
    ax.axhline(100.0 / len(names), color="grey", ls="--", lw=1, label="chance")
    ax.set_ylim(0, 100)
    ax.set_ylabel("recall (%)")
    ax.set_title(title)
    ax.tick_params(axis="x", rotation=45)
    ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_curves(history: dict[str, list[float]], path: Path, title: str) -> None:
    """Training curves (loss and validation UA per epoch), as PNG."""
    fig, ax1 = plt.subplots(figsize=(7, 3.5), dpi=110)
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
    ax1.set_title(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
