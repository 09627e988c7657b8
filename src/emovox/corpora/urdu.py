"""URDU: spontaneous Urdu speech from talk shows (Latif et al., FIT 2018, arXiv:1812.10411).

One folder per label (``Angry``, ``Happy``, ``Neutral``, ``Sad``): four classes, no calm,
fearful, disgust or surprised. File names are ``S<M|F><n>_F<k>_<E><m>``, e.g.
``SM1_F10_A010.wav``: speaker ``SM1`` (``SM`` male, ``SF`` female), the speaker's file 10,
utterance 010 of emotion ``A`` (``A`` angry, ``H`` happy, ``N`` neutral, ``S`` sad). The
label is the folder; the letter in the name must agree with it (a file outside a label
folder is labelled by its letter).

Speaker ids are as the file names give them (29 in the release; the paper counts 38), so
two ids may in fact be one person -- nothing in the release tells.

Licence: research use only.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from emovox.corpora.base import CorpusScan, Gender, Utterance, scan_files
from emovox.labels import Emotion

log = logging.getLogger(__name__)

NAME = "urdu"

#: Raw label (label folder) -> canonical emotion.
LABEL_MAP: dict[str, Emotion | None] = {
    "Angry": Emotion.ANGRY,
    "Happy": Emotion.HAPPY,
    "Neutral": Emotion.NEUTRAL,
    "Sad": Emotion.SAD,
}

#: Emotion letter in the file name -> label folder.
LETTERS: dict[str, str] = {"A": "Angry", "H": "Happy", "N": "Neutral", "S": "Sad"}

_GENDER: dict[str, Gender] = {"M": Gender.MALE, "F": Gender.FEMALE}
_NAME_RE = re.compile(r"^S([MF])(\d+)_F(\d+)_([A-Z])(\d+)$", re.IGNORECASE)
_FOLDERS: dict[str, str] = {k.lower(): k for k in LABEL_MAP}


def parse_name(path: Path) -> Utterance | str:
    """The :class:`Utterance` an URDU file name and its label folder describe, or why not."""
    m = _NAME_RE.match(path.stem)
    if m is None:
        return "not an URDU name (expected S<M|F><n>_F<k>_<A|H|N|S><m>, e.g. SM1_F10_A010)"
    sex, num, file_no, letter, utt = m.groups()
    sex, letter = sex.upper(), letter.upper()
    if letter not in LETTERS:
        return f"unknown emotion letter {letter} (expected one of {''.join(LETTERS)})"
    folder = _FOLDERS.get(path.parent.name.lower())
    if folder is not None and folder != LETTERS[letter]:
        return f"emotion letter {letter} in the name but folder {path.parent.name}"
    label = folder or LETTERS[letter]
    speaker = f"S{sex}{int(num)}"
    return Utterance(
        path=path,
        corpus=NAME,
        speaker=f"{NAME}:{speaker}",
        emotion=LABEL_MAP[label],
        raw_label=label,
        gender=_GENDER[sex],
        meta={"file": file_no, "utterance": utt},
    )


def scan(root: Path, *, detect_duplicates: bool = True) -> CorpusScan:
    """Read every URDU audio file below ``root`` (any nesting)."""
    return scan_files(NAME, root, parse_name, detect_duplicates=detect_duplicates, logger=log)
