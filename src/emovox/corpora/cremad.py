"""CREMA-D: the Crowd-sourced Emotional Multimodal Actors Dataset.

File names are ``<actor>_<sentence>_<emotion>_<level>``, e.g. ``1001_DFA_ANG_XX.wav``:
actors 1001-1091, twelve sentence codes, six emotions (no calm, no surprised) and an
intensity level (LO, MD, HI, or XX unspecified).

Speaker gender is not in the file name; it comes from the corpus's
``VideoDemographics.csv`` (columns ``ActorID`` and ``Sex``) when the caller passes it as
``demographics``, and is :attr:`Gender.UNKNOWN` otherwise.
"""

from __future__ import annotations

import csv
import logging
import re
from pathlib import Path

from emovox.corpora.base import CorpusScan, Gender, ParseResult, Utterance, scan_files
from emovox.labels import Emotion

log = logging.getLogger(__name__)

NAME = "cremad"

#: Raw label (emotion code) -> canonical emotion.
LABEL_MAP: dict[str, Emotion | None] = {
    "ANG": Emotion.ANGRY,
    "DIS": Emotion.DISGUST,
    "FEA": Emotion.FEARFUL,
    "HAP": Emotion.HAPPY,
    "NEU": Emotion.NEUTRAL,
    "SAD": Emotion.SAD,
}

SENTENCES: dict[str, str] = {
    "IEO": "It's eleven o'clock",
    "TIE": "That is exactly what happened",
    "IOM": "I'm on my way to the meeting",
    "IWW": "I wonder what this is about",
    "TAI": "The airplane is almost full",
    "MTI": "Maybe tomorrow it will be cold",
    "IWL": "I would like a new alarm clock",
    "ITH": "I think I have a doctor's appointment",
    "DFA": "Don't forget a jacket",
    "ITS": "I think I've seen this before",
    "TSI": "The surface is slick",
    "WSI": "We'll stop in a couple of minutes",
}
LEVELS: dict[str, str] = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified"}
ACTOR_RANGE: tuple[int, int] = (1001, 1091)

_NAME_RE = re.compile(r"^(\d{4})_([A-Za-z]{3})_([A-Za-z]{3})_([A-Za-z]{2})$")
_SEX: dict[str, Gender] = {
    "male": Gender.MALE,
    "m": Gender.MALE,
    "female": Gender.FEMALE,
    "f": Gender.FEMALE,
}


def read_demographics(path: Path) -> dict[str, Gender]:
    """Actor id (``"1001"``) -> gender, from CREMA-D's ``VideoDemographics.csv``.

    Raises ``FileNotFoundError`` if the file is missing and ``ValueError`` if it lacks
    the ``ActorID`` or ``Sex`` column. Unrecognised sex values map to UNKNOWN.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CREMA-D demographics file not found: {path}")
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        fields = {(f or "").strip().lower(): f for f in reader.fieldnames or []}
        if "actorid" not in fields or "sex" not in fields:
            raise ValueError(f"{path}: expected columns ActorID and Sex, found {reader.fieldnames}")
        id_col, sex_col = fields["actorid"], fields["sex"]
        genders: dict[str, Gender] = {}
        for row in reader:
            actor = (row.get(id_col) or "").strip()
            if actor:
                sex = (row.get(sex_col) or "").strip().lower()
                genders[actor] = _SEX.get(sex, Gender.UNKNOWN)
    return genders


def parse_name(path: Path, genders: dict[str, Gender] | None = None) -> Utterance | str:
    """The :class:`Utterance` a CREMA-D file name describes, or why it is malformed."""
    m = _NAME_RE.match(path.stem)
    if m is None:
        return "not a CREMA-D name (expected <actor>_<SENTENCE>_<EMOTION>_<LEVEL>)"
    actor = m.group(1)
    sentence, emo, level = (g.upper() for g in m.groups()[1:])
    lo, hi = ACTOR_RANGE
    if not lo <= int(actor) <= hi:
        return f"actor {actor} out of range ({lo}-{hi})"
    if sentence not in SENTENCES:
        return f"unknown sentence code {sentence}"
    if emo not in LABEL_MAP:
        return f"unknown emotion code {emo} (expected one of {', '.join(LABEL_MAP)})"
    if level not in LEVELS:
        return f"unknown level {level} (expected one of {', '.join(LEVELS)})"
    return Utterance(
        path=path,
        corpus=NAME,
        speaker=f"{NAME}:{actor}",
        emotion=LABEL_MAP[emo],
        raw_label=emo,
        gender=(genders or {}).get(actor, Gender.UNKNOWN),
        meta={
            "actor": actor,
            "sentence_code": sentence,
            "sentence": SENTENCES[sentence],
            "level": LEVELS[level],
        },
    )


def scan(
    root: Path, *, detect_duplicates: bool = True, demographics: Path | None = None
) -> CorpusScan:
    """Read every CREMA-D audio file below ``root`` (any nesting).

    ``demographics``: path to ``VideoDemographics.csv``; without it every gender is UNKNOWN.
    """
    genders = read_demographics(demographics) if demographics is not None else None

    def parse(path: Path) -> ParseResult:
        return parse_name(path, genders)

    result = scan_files(NAME, root, parse, detect_duplicates=detect_duplicates, logger=log)
    if genders is not None:
        missing = sorted({u.meta["actor"] for u in result.utterances} - set(genders))
        if missing:
            log.warning("%d CREMA-D actors not in %s: %s", len(missing), demographics, missing)
    return result
