"""EMOVO: the Italian emotional speech corpus (Costantini et al., LREC 2014).

Six actors (``f1``-``f3`` female, ``m1``-``m3`` male), seven emotions, fourteen sentences.
File names are ``<emotion>-<speaker>-<sentence>``, e.g. ``dis-f1-b1.wav`` (disgust, speaker
f1, sentence b1), in one folder per speaker. Emotion codes are Italian: ``dis`` disgusto,
``gio`` gioia (joy -> happy), ``neu`` neutro, ``pau`` paura (fear), ``rab`` rabbia (anger),
``sor`` sorpresa (surprise), ``tri`` tristezza (sadness). There is no calm. When the file
sits in a speaker folder, folder and name must agree.

Licence: research use, distributed by its authors.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from emovox.corpora.base import CorpusScan, Gender, Utterance, scan_files
from emovox.labels import Emotion

log = logging.getLogger(__name__)

NAME = "emovo"

#: Raw label (Italian emotion code) -> canonical emotion.
LABEL_MAP: dict[str, Emotion | None] = {
    "dis": Emotion.DISGUST,
    "gio": Emotion.HAPPY,
    "neu": Emotion.NEUTRAL,
    "pau": Emotion.FEARFUL,
    "rab": Emotion.ANGRY,
    "sor": Emotion.SURPRISED,
    "tri": Emotion.SAD,
}

#: Italian emotion names, for ``meta``.
EMOTION_NAMES: dict[str, str] = {
    "dis": "disgusto", "gio": "gioia", "neu": "neutro", "pau": "paura", "rab": "rabbia",
    "sor": "sorpresa", "tri": "tristezza",
}

SPEAKERS: dict[str, Gender] = {
    **{s: Gender.FEMALE for s in ("f1", "f2", "f3")},
    **{s: Gender.MALE for s in ("m1", "m2", "m3")},
}

#: The fourteen sentence codes (``n*`` are nonsense sentences).
SENTENCES: frozenset[str] = frozenset(
    {"b1", "b2", "b3", "d1", "d2", "l1", "l2", "l3", "l4", "n1", "n2", "n3", "n4", "n5"}
)

_NAME_RE = re.compile(r"^([a-z]{3})-([a-z]\d)-([a-z]\d)$", re.IGNORECASE)


def parse_name(path: Path) -> Utterance | str:
    """The :class:`Utterance` an EMOVO file name (and folder) describes, or why not."""
    m = _NAME_RE.match(path.stem)
    if m is None:
        return "not an EMOVO name (expected <emotion>-<speaker>-<sentence>, e.g. dis-f1-b1)"
    code, spk, sentence = (g.lower() for g in m.groups())
    if code not in LABEL_MAP:
        return f"unknown emotion code {code} (expected one of {', '.join(LABEL_MAP)})"
    if spk not in SPEAKERS:
        return f"unknown speaker {spk} (expected one of {', '.join(SPEAKERS)})"
    if sentence not in SENTENCES:
        return f"unknown sentence code {sentence} (expected one of {', '.join(sorted(SENTENCES))})"
    folder = path.parent.name.lower()
    if folder in SPEAKERS and folder != spk:
        return f"speaker {spk} in the name but folder {path.parent.name}"
    return Utterance(
        path=path,
        corpus=NAME,
        speaker=f"{NAME}:{spk}",
        emotion=LABEL_MAP[code],
        raw_label=code,
        gender=SPEAKERS[spk],
        meta={"sentence": sentence, "emotion_name": EMOTION_NAMES[code]},
    )


def scan(root: Path, *, detect_duplicates: bool = True) -> CorpusScan:
    """Read every EMOVO audio file below ``root`` (any nesting)."""
    return scan_files(NAME, root, parse_name, detect_duplicates=detect_duplicates, logger=log)
