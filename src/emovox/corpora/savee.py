"""SAVEE: the Surrey Audio-Visual Expressed Emotion database.

Four male speakers (DC, JE, JK, KL). The official layout is ``AudioData/<speaker>/a01.wav``;
flattened copies name files ``DC_a01.wav``. The code is the emotion (``a`` anger,
``d`` disgust, ``f`` fear, ``h`` happiness, ``n`` neutral, ``sa`` sadness, ``su`` surprise)
plus a two-digit sentence number (01-15, neutral 01-30). When both the name prefix and
the folder give a speaker they must agree.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from emovox.corpora.base import CorpusScan, Gender, Utterance, scan_files
from emovox.labels import Emotion

log = logging.getLogger(__name__)

NAME = "savee"

#: Raw label (emotion code) -> canonical emotion.
LABEL_MAP: dict[str, Emotion | None] = {
    "a": Emotion.ANGRY,
    "d": Emotion.DISGUST,
    "f": Emotion.FEARFUL,
    "h": Emotion.HAPPY,
    "n": Emotion.NEUTRAL,
    "sa": Emotion.SAD,
    "su": Emotion.SURPRISED,
}

SPEAKERS: tuple[str, ...] = ("DC", "JE", "JK", "KL")
#: Sentences per emotion code (neutral has twice as many).
SENTENCES: dict[str, int] = {code: (30 if code == "n" else 15) for code in LABEL_MAP}

_NAME_RE = re.compile(r"^(?:([A-Za-z]{2})_)?(sa|su|a|d|f|h|n)(\d{2})$", re.IGNORECASE)


def parse_name(path: Path) -> Utterance | str:
    """The :class:`Utterance` a SAVEE file name (and folder) describes, or why not."""
    m = _NAME_RE.match(path.stem)
    if m is None:
        return "not a SAVEE name (expected [SPK_]<a|d|f|h|n|sa|su><NN>)"
    prefix, code, num = m.group(1), m.group(2).lower(), m.group(3)
    folder = path.parent.name.upper()
    folder_speaker = folder if folder in SPEAKERS else None
    if prefix is not None:
        speaker = prefix.upper()
        if speaker not in SPEAKERS:
            return f"unknown speaker {prefix} (expected one of {', '.join(SPEAKERS)})"
        if folder_speaker is not None and folder_speaker != speaker:
            return f"speaker {speaker} in the name but folder {path.parent.name}"
    elif folder_speaker is not None:
        speaker = folder_speaker
    else:
        return f"no speaker: neither a SPK_ prefix nor a speaker folder ({', '.join(SPEAKERS)})"
    if not 1 <= int(num) <= SENTENCES[code]:
        return f"sentence {num} out of range for {code!r} (01-{SENTENCES[code]:02d})"
    return Utterance(
        path=path,
        corpus=NAME,
        speaker=f"{NAME}:{speaker}",
        emotion=LABEL_MAP[code],
        raw_label=code,
        gender=Gender.MALE,
        meta={"sentence": num, "code": f"{code}{num}"},
    )


def scan(root: Path, *, detect_duplicates: bool = True) -> CorpusScan:
    """Read every SAVEE audio file below ``root`` (any nesting)."""
    return scan_files(NAME, root, parse_name, detect_duplicates=detect_duplicates, logger=log)
