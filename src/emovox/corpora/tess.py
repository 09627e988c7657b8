"""TESS: the Toronto Emotional Speech Set.

Two female speakers (``OAF``, aged 64, and ``YAF``, aged 26) say "Say the word ___" in
seven emotions. File names are ``<speaker>_<word>_<emotion>.wav`` (``OAF_back_angry.wav``,
``YAF_dog_ps.wav``), usually inside ``<speaker>_<emotion>`` folders whose spelling
varies (``OAF_Pleasant_surprise``, ``YAF_pleasant_surprised``, ``OAF_Fear``). Matching is
case-insensitive; "ps", "pleasant_surprise" and "pleasant_surprised" are the same label.
A file whose folder names another speaker or emotion than its own name is skipped.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from emovox.corpora.base import CorpusScan, Gender, Utterance, scan_files
from emovox.labels import Emotion

log = logging.getLogger(__name__)

NAME = "tess"

#: Raw label -> canonical emotion. Raw labels are stored normalised (lower case, "ps").
LABEL_MAP: dict[str, Emotion | None] = {
    "angry": Emotion.ANGRY,
    "disgust": Emotion.DISGUST,
    "fear": Emotion.FEARFUL,
    "happy": Emotion.HAPPY,
    "neutral": Emotion.NEUTRAL,
    "ps": Emotion.SURPRISED,
    "pleasant_surprise": Emotion.SURPRISED,
    "pleasant_surprised": Emotion.SURPRISED,
    "sad": Emotion.SAD,
}

SPEAKERS: dict[str, str] = {"OAF": "older (64)", "YAF": "younger (26)"}

_EMO = r"(angry|disgust|fear|happy|neutral|sad|ps|pleasant_surprised?)"
_FILE_RE = re.compile(rf"^(OAF|YAF)_([a-z]+)_{_EMO}$", re.IGNORECASE)
_DIR_RE = re.compile(rf"^(OAF|YAF)_{_EMO}$", re.IGNORECASE)


def normalise_label(label: str) -> str:
    """Lower-case a TESS emotion label and fold the pleasant-surprise spellings to "ps"."""
    label = label.lower()
    return "ps" if label.startswith("pleasant_surprise") else label


def parse_name(path: Path) -> Utterance | str:
    """The :class:`Utterance` a TESS file name describes, or why it is malformed."""
    m = _FILE_RE.match(path.stem)
    if m is None:
        return "not a TESS name (expected OAF|YAF_<word>_<emotion>)"
    speaker, word, raw = m.group(1).upper(), m.group(2).lower(), normalise_label(m.group(3))
    folder = _DIR_RE.match(path.parent.name)
    if folder is not None:
        f_speaker, f_raw = folder.group(1).upper(), normalise_label(folder.group(2))
        if f_speaker != speaker:
            return f"speaker {speaker} in the name but folder {path.parent.name}"
        if f_raw != raw:
            return f"emotion {raw!r} in the name but folder {path.parent.name}"
    return Utterance(
        path=path,
        corpus=NAME,
        speaker=f"{NAME}:{speaker}",
        emotion=LABEL_MAP[raw],
        raw_label=raw,
        gender=Gender.FEMALE,
        meta={"word": word, "speaker_age": SPEAKERS[speaker]},
    )


def scan(root: Path, *, detect_duplicates: bool = True) -> CorpusScan:
    """Read every TESS audio file below ``root`` (any nesting)."""
    return scan_files(NAME, root, parse_name, detect_duplicates=detect_duplicates, logger=log)
