"""RAVDESS: the Ryerson Audio-Visual Database of Emotional Speech and Song.

Official file names are ``MM-VV-EE-II-SS-RR-AA.ext``:

========  ==============  ==========================================================
field     code            values
========  ==============  ==========================================================
MM        modality        01 audio-video, 02 video-only, 03 audio-only
VV        vocal channel   01 speech, 02 song
EE        emotion         01-08 in :class:`~emovox.labels.Emotion` order
II        intensity       01 normal, 02 strong (neutral has only 01)
SS        statement       01 "Kids are talking by the door", 02 "Dogs are sitting ..."
RR        repetition      01, 02
AA        actor           01-24; odd = male, even = female
========  ==============  ==========================================================

Song has only emotions 01-06. Any name that breaks one of these rules is reported in
:attr:`CorpusScan.skipped` with the reason, never guessed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path

from emovox.corpora.base import CorpusScan, Gender, ParseResult, Utterance, scan_files
from emovox.labels import EMOTIONS, Emotion

log = logging.getLogger(__name__)

NAME = "ravdess"

#: Raw label (the two-digit emotion code of the file name) -> canonical emotion.
LABEL_MAP: dict[str, Emotion | None] = {f"{i:02d}": e for i, e in enumerate(EMOTIONS, start=1)}

MODALITIES: dict[str, str] = {"01": "audio-video", "02": "video-only", "03": "audio-only"}
VOCAL_CHANNELS: dict[str, str] = {"01": "speech", "02": "song"}
INTENSITIES: dict[str, str] = {"01": "normal", "02": "strong"}
STATEMENTS: dict[str, str] = {
    "01": "Kids are talking by the door",
    "02": "Dogs are sitting by the door",
}
REPETITIONS: dict[str, str] = {"01": "1", "02": "2"}
#: Emotion codes that exist in the song recordings (no disgust, no surprised).
SONG_EMOTIONS: frozenset[str] = frozenset({"01", "02", "03", "04", "05", "06"})
N_ACTORS = 24

_NAME_RE = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")
_ACTOR_DIR_RE = re.compile(r"^actor_(\d+)$", re.IGNORECASE)


def actor_gender(actor: int) -> Gender:
    """RAVDESS actors: odd numbers are male, even numbers female."""
    return Gender.MALE if actor % 2 else Gender.FEMALE


def parse_name(path: Path) -> Utterance | str:
    """The :class:`Utterance` a RAVDESS file name describes, or why it is malformed."""
    m = _NAME_RE.match(path.stem)
    if m is None:
        return "not a RAVDESS name (expected MM-VV-EE-II-SS-RR-AA, two digits each)"
    mod, voc, emo, inten, stmt, rep, act = m.groups()
    checks = (
        ("modality", mod, MODALITIES),
        ("vocal channel", voc, VOCAL_CHANNELS),
        ("emotion", emo, LABEL_MAP),
        ("intensity", inten, INTENSITIES),
        ("statement", stmt, STATEMENTS),
        ("repetition", rep, REPETITIONS),
    )
    for field_name, code, allowed in checks:
        if code not in allowed:
            return f"{field_name} code {code} out of range ({'/'.join(allowed)})"
    actor = int(act)
    if not 1 <= actor <= N_ACTORS:
        return f"actor {act} out of range (01-{N_ACTORS})"
    if emo == "01" and inten != "01":
        return "neutral (01) has only normal intensity (01), got 02"
    if voc == "02" and emo not in SONG_EMOTIONS:
        return f"song has only emotions 01-06, got {emo} ({LABEL_MAP[emo]})"
    parent = _ACTOR_DIR_RE.match(path.parent.name)
    if parent is not None and int(parent.group(1)) != actor:
        return f"actor {act} in the name but the file is in folder {path.parent.name}"
    emotion = LABEL_MAP[emo]
    meta = {
        "modality": MODALITIES[mod],
        "vocal_channel": VOCAL_CHANNELS[voc],
        "emotion_code": emo,
        "emotion": str(emotion),
        "intensity": INTENSITIES[inten],
        "statement": STATEMENTS[stmt],
        "statement_code": stmt,
        "repetition": REPETITIONS[rep],
        "actor": act,
    }
    return Utterance(
        path=path,
        corpus=NAME,
        speaker=f"{NAME}:{act}",
        emotion=emotion,
        raw_label=emo,
        gender=actor_gender(actor),
        meta=meta,
    )


def scan(
    root: Path,
    *,
    detect_duplicates: bool = True,
    vocal_channels: Iterable[str] = ("speech", "song"),
) -> CorpusScan:
    """Read every RAVDESS audio file below ``root`` (any nesting, any audio extension).

    ``vocal_channels`` keeps only ``"speech"`` and/or ``"song"`` files (a single string
    is accepted too); the others are left out silently (they are not malformed). A name met
    again (the 48 kHz ``original-48k`` copies beside the 16 kHz clips) is read once, the
    first in path order, the others skipped with the reason.
    """
    channels = (vocal_channels,) if isinstance(vocal_channels, str) else tuple(vocal_channels)
    wanted = {str(v).lower() for v in channels}
    if not wanted or wanted - set(VOCAL_CHANNELS.values()):
        raise ValueError(
            f"vocal_channels must be a non-empty subset of ('speech', 'song'), got {channels!r}"
        )

    first: dict[str, Path] = {}  # RAVDESS name -> the file read for it

    def parse(path: Path) -> ParseResult:
        utt = parse_name(path)
        if isinstance(utt, Utterance) and utt.meta["vocal_channel"] not in wanted:
            return None
        if isinstance(utt, Utterance):
            # one name is one recording: the distribution's 48 kHz originals beside the
            # 16 kHz copies are not more clips (a random split put one copy on each side:
            # leakage the byte-level duplicate check cannot see; audit, stop 31)
            seen = first.setdefault(path.stem, path)
            if seen != path:
                return f"another copy of {seen.parent.name}/{seen.name} (same RAVDESS name)"
        return utt

    return scan_files(NAME, root, parse, detect_duplicates=detect_duplicates, logger=log)
