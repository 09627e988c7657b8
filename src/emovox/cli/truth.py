"""``predict --truth``: the true label beside the prediction for files with official RAVDESS
names (read from the name by :func:`emovox.corpora.ravdess.parse_name`; nothing is decoded
again), and whether their actors are among those the model was trained on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emovox.corpora.base import Utterance, is_unknown_speaker
from emovox.corpora.ravdess import parse_name


@dataclass(frozen=True)
class TruthRow:
    """One file: its true emotion (None when its name is not a RAVDESS name), the model's
    answer (None when the file failed), and its actor's speaker id."""

    name: str
    truth: str | None
    predicted: str | None
    speaker: str | None
    #: the path as given (tells two files of one name apart)
    path: str = ""

    @property
    def correct(self) -> bool | None:
        if self.truth is None or self.predicted is None:
            return None
        return self.truth == self.predicted


@dataclass(frozen=True)
class TruthReport:
    rows: list[TruthRow]
    #: actors (``ravdess:NN``) of these files that the model was trained on
    training_speakers: list[str]
    #: False when the model does not record its training speakers (a CV fold model, an
    #: ensemble of such): nothing can be said of whether these actors were heard
    speakers_known: bool = True

    @property
    def scored(self) -> list[TruthRow]:
        return [r for r in self.rows if r.correct is not None]


def _predicted(outcome: Any) -> str | None:
    """The label ``predict`` shows for an outcome (None for a failed file)."""
    p = outcome.prediction
    if outcome.error or p is None:
        return None
    return p.label if p.has_emotion else "no speech"


def truth_report(outcomes: Sequence[Any], trained_on: dict[str, Any] | None) -> TruthReport:
    """Rows for ``predict``'s outcomes; ``trained_on`` is the model's ``model.json`` field
    (``speakers``: the corpus-prefixed speaker ids it was trained on)."""
    rows = []
    for o in outcomes:
        utt = parse_name(Path(o.path))
        ok = isinstance(utt, Utterance)
        rows.append(TruthRow(
            name=Path(o.path).name, truth=str(utt.emotion) if ok else None,
            predicted=_predicted(o), speaker=utt.speaker if ok else None, path=str(o.path),
        ))
    own = set((trained_on or {}).get("speakers") or ())
    # and its teachers' voices (train --teacher: research audit, stop 51)
    heard = own | set((trained_on or {}).get("teacher_speakers") or ())
    seen = sorted({r.speaker for r in rows if r.speaker in heard})
    known = bool(own) and not any(is_unknown_speaker(s) for s in heard)  # folder:unknown
    known = known and not (trained_on or {}).get("teachers_unlisted")
    return TruthReport(rows, seen, speakers_known=known)
