"""EmoDB: the Berlin Database of Emotional Speech.

File names are ``<speaker:2 digits><text:a01..b10><emotion letter><version letter>``,
e.g. ``03a01Fa.wav``. Emotion letters are German initials: W Wut (anger), L Langeweile
(boredom, no canonical class), E Ekel (disgust), A Angst (fear), F Freude (happiness),
T Trauer (sadness), N neutral. Ten speakers, ten texts.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from emovox.corpora.base import CorpusScan, Gender, Utterance, scan_files
from emovox.labels import Emotion

log = logging.getLogger(__name__)

NAME = "emodb"

#: Raw label (emotion letter) -> canonical emotion; boredom has no RAVDESS class.
LABEL_MAP: dict[str, Emotion | None] = {
    "W": Emotion.ANGRY,
    "L": None,
    "E": Emotion.DISGUST,
    "A": Emotion.FEARFUL,
    "F": Emotion.HAPPY,
    "T": Emotion.SAD,
    "N": Emotion.NEUTRAL,
}

#: German emotion names, for ``meta``.
EMOTION_NAMES: dict[str, str] = {
    "W": "Wut (anger)",
    "L": "Langeweile (boredom)",
    "E": "Ekel (disgust)",
    "A": "Angst (fear)",
    "F": "Freude (happiness)",
    "T": "Trauer (sadness)",
    "N": "neutral",
}

#: Speaker gender per the EmoDB documentation.
SPEAKER_GENDER: dict[str, Gender] = {
    **{s: Gender.MALE for s in ("03", "10", "11", "12", "15")},
    **{s: Gender.FEMALE for s in ("08", "09", "13", "14", "16")},
}

#: The ten text codes of the corpus.
TEXTS: frozenset[str] = frozenset(
    {"a01", "a02", "a04", "a05", "a07", "b01", "b02", "b03", "b09", "b10"}
)

_NAME_RE = re.compile(r"^(\d{2})([ab]\d{2})([A-Z])([a-z])$")


def parse_name(path: Path) -> Utterance | str:
    """The :class:`Utterance` an EmoDB file name describes, or why it is malformed."""
    m = _NAME_RE.match(path.stem)
    if m is None:
        return "not an EmoDB name (expected <NN><a|b><NN><EMOTION><version>, e.g. 03a01Fa)"
    spk, text, letter, version = m.groups()
    if spk not in SPEAKER_GENDER:
        return f"unknown speaker {spk} (expected one of {', '.join(sorted(SPEAKER_GENDER))})"
    if text not in TEXTS:
        return f"unknown text code {text} (expected one of {', '.join(sorted(TEXTS))})"
    if letter not in LABEL_MAP:
        return f"unknown emotion letter {letter} (expected one of {''.join(LABEL_MAP)})"
    return Utterance(
        path=path,
        corpus=NAME,
        speaker=f"{NAME}:{spk}",
        emotion=LABEL_MAP[letter],
        raw_label=letter,
        gender=SPEAKER_GENDER[spk],
        meta={"text": text, "version": version, "emotion_name": EMOTION_NAMES[letter]},
    )


def scan(root: Path, *, detect_duplicates: bool = True) -> CorpusScan:
    """Read every EmoDB audio file below ``root`` (any nesting)."""
    return scan_files(NAME, root, parse_name, detect_duplicates=detect_duplicates, logger=log)
