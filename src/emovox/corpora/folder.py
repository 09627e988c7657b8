"""A generic corpus laid out as one folder per label: ``root/<label>/**/*.wav``.

Folder names are matched case-insensitively against the canonical emotion names and
common synonyms (``anger``, ``fear``, ``disgusted``, ``surprise``, ``happiness``, ...; see
:data:`LABEL_MAP`). Files under an unknown folder name are kept with ``emotion=None`` and
their folder name as ``raw_label``, so :meth:`CorpusScan.summary` counts them. Files
directly in ``root`` have no label and are skipped.

Speakers are unknown (``"<corpus>:unknown"``) unless ``speaker_pattern`` extracts them
from the file name; with a pattern, a file it does not match is skipped, never lumped
into one anonymous speaker.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from emovox.corpora.base import (
    UNKNOWN_SPEAKER,
    CorpusScan,
    ParseResult,
    Utterance,
    scan_files,
)
from emovox.labels import Emotion

log = logging.getLogger(__name__)

NAME = "folder"

_SYNONYMS: dict[Emotion, tuple[str, ...]] = {
    Emotion.NEUTRAL: ("neutral", "neutrality", "neu"),
    Emotion.CALM: ("calm", "calmness", "relaxed"),
    Emotion.HAPPY: ("happy", "happiness", "hap", "joy", "joyful", "glad"),
    Emotion.SAD: ("sad", "sadness", "unhappy", "sorrow"),
    Emotion.ANGRY: ("angry", "anger", "ang", "mad"),
    Emotion.FEARFUL: ("fearful", "fear", "fea", "afraid", "scared"),
    Emotion.DISGUST: ("disgust", "disgusted", "dis"),
    Emotion.SURPRISED: (
        "surprised",
        "surprise",
        "sur",
        "ps",
        "pleasant_surprise",
        "pleasant_surprised",
    ),
}

#: Normalised label name -> canonical emotion (canonical names and common synonyms).
LABEL_MAP: dict[str, Emotion | None] = {
    name: emotion for emotion, names in _SYNONYMS.items() for name in names
}


def normalise_label(label: str) -> str:
    """Lower case, trimmed, runs of spaces/hyphens/underscores folded to one ``_``."""
    return re.sub(r"[\s\-_]+", "_", label.strip().lower()).strip("_")


def label_to_emotion(label: str) -> Emotion | None:
    """The canonical emotion a label name (or synonym) stands for, ``None`` if unknown."""
    return LABEL_MAP.get(normalise_label(label))


def compile_speaker_pattern(pattern: str | re.Pattern[str] | None) -> re.Pattern[str] | None:
    """Compile ``pattern``; the speaker is its ``speaker`` group, else group 1, else the match."""
    if pattern is None:
        return None
    try:
        return re.compile(pattern) if isinstance(pattern, str) else pattern
    except re.error as exc:
        raise ValueError(f"--speaker-pattern '{pattern}' is no regular expression: {exc}"
                         ) from exc


def extract_speaker(pattern: re.Pattern[str], stem: str) -> str | None:
    """The speaker id ``pattern`` finds in ``stem`` (``re.search``), or ``None``."""
    m = pattern.search(stem)
    if m is None:
        return None
    if "speaker" in pattern.groupindex:
        found = m.group("speaker")
    elif pattern.groups:
        found = m.group(1)
    else:
        found = m.group(0)
    return found or None


def scan(
    root: Path,
    *,
    detect_duplicates: bool = True,
    corpus: str = NAME,
    speaker_pattern: str | re.Pattern[str] | None = None,
) -> CorpusScan:
    """Read ``root/<label>/**/<audio>``; the label is the first folder below ``root``.

    ``corpus`` names the corpus in every :class:`Utterance` (and prefixes speakers);
    ``speaker_pattern`` is a regex searched in each file's stem (see
    :func:`extract_speaker`), e.g. ``r"^(\\d+)_"`` for ``12_take3.wav``; one holding a ``/``
    is searched in the path below the label folder, without the extension, e.g.
    ``r"^([^/]+)/"`` for ``angry/anna/take1.wav``.
    """
    root = Path(root)
    pattern = compile_speaker_pattern(speaker_pattern)

    def parse(path: Path) -> ParseResult:
        parts = path.relative_to(root).parts
        if len(parts) < 2:
            return "not inside a label folder"
        label = parts[0]
        if pattern is None:
            speaker = UNKNOWN_SPEAKER
        else:  # a '/' in the pattern: the path below the label folder (QA, stop 37: as
            in_path = "/" in pattern.pattern  # batch --speaker-from searches the path)
            where = Path(*parts[1:]).with_suffix("").as_posix() if in_path else path.stem
            found = extract_speaker(pattern, where)
            if found is None:
                return (f"--speaker-pattern '{pattern.pattern}' finds no speaker in the "
                        + ("path below the label folder" if in_path else "file name")
                        + " (searched without its extension)")
            speaker = found
        return Utterance(
            path=path,
            corpus=corpus,
            speaker=f"{corpus}:{speaker}",
            emotion=label_to_emotion(label),
            raw_label=label,
            meta={"label_folder": label},
        )

    return scan_files(corpus, root, parse, detect_duplicates=detect_duplicates, logger=log)
