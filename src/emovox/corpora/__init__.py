"""Corpus readers: turn a corpus tree (or a CSV manifest) into labelled file paths.

No reader decodes audio; they read file and folder names (and file bytes, to find
byte-identical duplicates). Each reader module exposes ``NAME``, ``LABEL_MAP`` (raw
label -> canonical :class:`~emovox.labels.Emotion` or ``None``) and
``scan(root, *, detect_duplicates=True, **options) -> CorpusScan``.

Owns the corpus readers (RAVDESS, CREMA-D, TESS, SAVEE, EmoDB, EMOVO, URDU, a labelled
folder, a CSV manifest), :class:`~emovox.corpora.base.Utterance` and duplicate detection.
May import only :mod:`emovox.labels` (and the standard library): never audio, features or
anything above (checked by import-linter).

>>> scan = scan_corpus("ravdess", "data/ravdess/Audio_Speech_Actors_01-24")  # doctest: +SKIP
>>> print(scan.summary())  # doctest: +SKIP
"""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType
from typing import Any

from emovox.corpora import cremad, emodb, emovo, folder, manifest, ravdess, savee, tess, urdu
from emovox.corpora.base import (
    AUDIO_EXTENSIONS,
    CorpusScan,
    Gender,
    Utterance,
    find_duplicates,
    iter_audio_files,
)
from emovox.labels import Emotion

#: Reader modules by corpus name.
CORPORA: dict[str, ModuleType] = {
    "ravdess": ravdess,
    "tess": tess,
    "savee": savee,
    "emodb": emodb,
    "cremad": cremad,
    "emovo": emovo,
    "urdu": urdu,
    "folder": folder,
    "csv": manifest,
}

#: Other spellings accepted by :func:`scan_corpus` (after lower-casing and dropping
#: ``-``, ``_`` and spaces): ``"CREMA-D"``, ``"emo_db"``, ``"manifest"``...
_ALIASES: dict[str, str] = {"manifest": "csv", "berlin": "emodb"}


def canonical_name(name: str) -> str:
    """The registered name of corpus ``name`` (``"CREMA-D"`` -> ``"cremad"``, ``"manifest"``
    -> ``"csv"``); an unknown name lower-cased and stripped."""
    try:
        return _resolve_name(name)
    except ValueError:
        return str(name).strip().lower()


def _resolve_name(name: str) -> str:
    key = re.sub(r"[\s\-_]+", "", str(name).lower())
    key = _ALIASES.get(key, key)
    if key not in CORPORA:
        raise ValueError(f"unknown corpus {name!r}; valid names: {', '.join(CORPORA)}")
    return key


def get_reader(name: str) -> ModuleType:
    """The reader module for ``name`` (see :data:`CORPORA`); ValueError if unknown."""
    return CORPORA[_resolve_name(name)]


def scan_corpus(name: str, root: str | Path, **kw: Any) -> CorpusScan:
    """Scan ``root`` with the reader called ``name``; ``kw`` are that reader's options.

    Raises ``ValueError`` for an unknown corpus name (listing the valid ones) and
    ``FileNotFoundError`` when ``root`` does not exist.
    """
    return get_reader(name).scan(Path(root), **kw)


#: why ``--speaker-pattern`` is refused for a reader other than ``folder``
SPEAKER_PATTERN_FOLDER_ONLY = ("--speaker-pattern names the speakers of a folder-per-emotion "
                               "tree (--corpus folder); the other readers know their speakers")


def reader_options(name: str, speaker_pattern: str | None) -> dict[str, Any]:
    """The options of reader ``name``'s ``scan`` that a config sets: ``speaker_pattern`` for
    the ``folder`` reader (the only one that takes it)."""
    if speaker_pattern is not None and get_reader(name).NAME == "folder":
        return {"speaker_pattern": speaker_pattern}
    return {}


def corpus_label_map(name: str) -> dict[str, Emotion | None]:
    """A copy of the raw-label -> canonical-emotion map of the reader called ``name``."""
    return dict(get_reader(name).LABEL_MAP)


__all__ = [
    "AUDIO_EXTENSIONS",
    "CORPORA",
    "CorpusScan",
    "SPEAKER_PATTERN_FOLDER_ONLY",
    "Gender",
    "Utterance",
    "canonical_name",
    "corpus_label_map",
    "reader_options",
    "find_duplicates",
    "get_reader",
    "iter_audio_files",
    "scan_corpus",
]
