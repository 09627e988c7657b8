"""Fake EMOVO and URDU trees with real-style names and learnable audio (the emotion's pitch,
as in the fake RAVDESS tree), for the multi-corpus tests. Importable as ``extra_trees``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emovox.corpora import emovo, urdu
from emovox.labels import emotion_index
from signals import emotion_tone, write_clip


def make_fake_emovo(root: Path, speakers: tuple[str, ...] = ("f1", "m1", "f2"),
                    sentences: tuple[str, ...] = ("b1", "n2")) -> Path:
    """``root/<speaker>/<emo>-<speaker>-<sentence>.wav``: 7 classes per speaker and sentence."""
    rng = np.random.default_rng(1)
    for k, spk in enumerate(speakers):
        for code, emotion in emovo.LABEL_MAP.items():
            for rep, sent in enumerate(sentences):
                wave = emotion_tone(emotion_index(emotion) + 1, rng, actor=k, rep=rep)
                write_clip(root / spk / f"{code}-{spk}-{sent}.wav", wave)
    return root


def make_fake_urdu(root: Path, speakers: tuple[str, ...] = ("SM1", "SF1", "SM2", "SF2"),
                   per_class: int = 2) -> Path:
    """``root/<Label>/<speaker>_F<k>_<letter><n>.wav``: 4 classes, ``per_class`` clips each."""
    rng = np.random.default_rng(2)
    letters = {folder: letter for letter, folder in urdu.LETTERS.items()}
    for k, spk in enumerate(speakers):
        for folder, emotion in urdu.LABEL_MAP.items():
            for rep in range(per_class):
                wave = emotion_tone(emotion_index(emotion) + 1, rng, actor=k, rep=rep)
                name = f"{spk}_F{rep + 1}_{letters[folder]}{10 * k + rep:03d}.wav"
                write_clip(root / folder / name, wave)
    return root
