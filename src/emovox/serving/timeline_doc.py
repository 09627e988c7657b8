"""What a timeline says (:mod:`emovox.serving.timeline` builds it): its segments, its summary
by speech time, and its two outputs, the document (schema ``timeline-v1.json``) and the CSV.

Both outputs can be written as the segments settle, so that a recording of any length is
answered in bounded memory (code review, stop 48: ``emovox timeline`` kept every segment,
about 760 bytes each, and built its document whole: 10 h at ``--hop 0.06`` held some 3 GB).
The CSV is written row by row (:class:`TimelineCsv`). The document names its summary before
its segments, so its segments wait on disk (:class:`SegmentSpool`) until the summary is
known; :func:`write_timeline_json` then writes the same bytes as ``json.dumps(tl.to_dict(),
indent=2)``, one segment at a time.
"""

from __future__ import annotations

import csv
import json
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, TextIO

import numpy as np

from emovox.adaptation import Adaptation
from emovox.features.vad import DEFAULT_PARAMS, NoSpeechReason
from emovox.labels import LABELS
from emovox.serving.answer import (
    SCHEMA_VERSION,
    UNCERTAIN_BELOW,
    Status,
    rounded_probability,
)

__all__ = ["CSV_COLUMNS", "SILENCE", "Segment", "SegmentKind", "SegmentSpool", "Timeline",
           "TimelineCsv", "segment_row", "timeline_rows", "write_timeline_csv",
           "write_timeline_json"]

#: What the text table and older outputs call a gap (and batch used for a silent clip).
SILENCE = "silence"
#: Columns of ``emovox timeline --csv`` and of the web app's timeline download.
CSV_COLUMNS = ("start", "end", "kind", "label", "confidence", *LABELS, "arousal", "valence",
               "status")


class SegmentKind(str, Enum):
    SPEECH = "speech"  #: a classified window over speech
    GAP = "gap"  #: no speech (silence, noise, a tone...): not classified


@dataclass(frozen=True)
class Segment:
    """``[start, end)`` seconds: a speech window with its emotion and probabilities, or a
    gap (label, confidence, probabilities, arousal and valence ``None``)."""

    start: float
    end: float
    label: str | None
    confidence: float | None
    probabilities: dict[str, float] | None
    arousal: float | None
    valence: float | None
    kind: SegmentKind = SegmentKind.SPEECH
    own: float = 0.0  #: seconds this window stands for in the summary (0 for gaps)

    @property
    def status(self) -> Status | None:
        """``ok`` or ``uncertain`` (top probability under
        :data:`~emovox.serving.answer.UNCERTAIN_BELOW`) for a speech window; None for a gap."""
        if self.kind is SegmentKind.GAP or self.confidence is None:
            return None
        return Status.UNCERTAIN if self.confidence < UNCERTAIN_BELOW else Status.OK

    @property
    def silent(self) -> bool:
        """A gap (kept for callers of the old ``silence`` windows)."""
        return self.kind is SegmentKind.GAP

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "start": round(self.start, 3),
                "end": round(self.end, 3), "label": self.label,
                "confidence": self.confidence,
                "probabilities": None if self.probabilities is None
                else dict(self.probabilities),
                "arousal": self.arousal, "valence": self.valence,
                "status": None if self.status is None else self.status.value}


@dataclass
class Timeline:
    source: str
    duration: float
    window: float
    hop: float
    #: every segment in time order; empty when they were handed on as they settled
    #: (``build_timeline(..., emit=...)``), whose outputs then take them from the caller
    segments: list[Segment] = field(default_factory=list)
    #: why candidate speech regions were left as gaps: reason code -> regions
    #: (:class:`~emovox.features.vad.NoSpeechReason` values); the summary's ``reason``
    dropped: dict[str, int] = field(default_factory=dict)
    #: the loudest frame read (dBFS): without any candidate region, silence or a steady sound
    loudest_db: float = -np.inf
    #: seconds the detector flagged as speech, classified or not: a ``too_short`` summary's
    #: ``speech_seconds``, as in ``predict`` (it said 0.0 where predict said 0.26: QA, stop 41)
    detected_s: float = 0.0
    #: set by :func:`emovox.serving.adapt.adapt_timeline` (``timeline --adapt self``)
    adaptation: Adaptation | None = None
    #: what the container says that the user should know (a WAV cut short, several audio
    #: tracks: :func:`emovox.audio.file_notes`), as a prediction's ``warnings``
    warnings: list[str] = field(default_factory=list)

    @property
    def speech(self) -> list[Segment]:
        return [s for s in self.segments if s.kind is SegmentKind.SPEECH]

    def no_speech_reason(self) -> NoSpeechReason:
        """Why no window was classified: too short a recording, else the reason most
        regions were dropped for, else silence (nothing above the detector's absolute floor)
        or a steady sound. The timeline judges regions as it streams, so for the same file
        its code can differ from ``predict``'s (a pure tone is ``steady_sound`` here)."""
        if self.duration < DEFAULT_PARAMS.min_speech_s:
            return NoSpeechReason.TOO_SHORT
        if self.dropped:
            return NoSpeechReason(max(sorted(self.dropped), key=self.dropped.__getitem__))
        if not self.loudest_db > DEFAULT_PARAMS.abs_floor_dbfs:
            return NoSpeechReason.SILENCE
        return NoSpeechReason.STEADY

    def summary(self, segments: Iterable[Segment] | None = None) -> dict[str, Any]:
        """By speech time: each emotion's share of the speech seconds (by its windows' top
        label), the speech-time-weighted mean probabilities, the dominant emotion, and the
        status (``no_speech`` without speech, ``uncertain`` when the dominant emotion's mean
        probability is below :data:`~emovox.serving.answer.UNCERTAIN_BELOW`). ``segments``
        (default :attr:`segments`) is read twice, one segment at a time, so a
        :class:`SegmentSpool` serves as well as a list: the first pass sums the seconds, the
        second the shares and probabilities, added in the same order as always, so the
        numbers are the same to the last bit (code review, stop 48)."""
        segs = self.segments if segments is None else segments
        secs: float = 0  # an int 0 as sum() starts, then float(): 0.0 (the API wrote 0.0)
        gaps: float = 0
        n = 0
        for s in segs:
            if s.kind is SegmentKind.SPEECH:
                secs, n = secs + s.own, n + 1
            elif s.kind is SegmentKind.GAP:
                gaps += s.end - s.start
        secs, gaps = float(secs), float(gaps)
        share, mean_p = _shares(segs, secs) if n and secs > 0 else ({}, {})
        dominant = max(mean_p, key=mean_p.__getitem__) if mean_p else None
        reason = self.no_speech_reason() if dominant is None else None
        if reason is NoSpeechReason.TOO_SHORT:
            secs = float(self.detected_s)  # how little there was
        status = Status.NO_SPEECH if dominant is None else (
            Status.UNCERTAIN if mean_p[dominant] < UNCERTAIN_BELOW else Status.OK)
        return {
            "status": status.value,
            "reason": reason.value if reason else None,
            "dominant": dominant,
            "speech_seconds": round(secs, 3),
            "gap_seconds": round(gaps, 3),
            "n_windows": n,
            "share": {k: round(min(1.0, share[k]), 6) for k in sorted(share)},
            "mean_probabilities": {k: rounded_probability(min(1.0, v), 6)
                                   for k, v in mean_p.items()},
        }

    def to_dict(self, *, model_id: str | None = None) -> dict[str, Any]:
        """The timeline document (schema ``timeline-v1.json``; ``adaptation`` only when the
        timeline was asked to adapt)."""
        return self.document(model_id, self.summary(), [s.to_dict() for s in self.segments])

    def document(self, model_id: str | None, summary: dict[str, Any],
                 segments: list[dict[str, Any]]) -> dict[str, Any]:
        """The document with this ``summary`` and these ``segments`` (dicts)."""
        doc = {"schema_version": SCHEMA_VERSION, "source": self.source, "model_id": model_id,
               "duration": round(self.duration, 3), "window": self.window, "hop": self.hop,
               "summary": summary, "segments": segments}
        if self.adaptation is not None:
            doc["adaptation"] = self.adaptation.to_dict()
        if self.warnings:
            doc["warnings"] = list(self.warnings)
        return doc


def _shares(segs: Iterable[Segment], secs: float
            ) -> tuple[dict[str, float], dict[str, float]]:
    """``(share of the speech seconds by top label, mean probabilities)`` of the speech
    windows of ``segs`` (``secs`` seconds of speech), each a sum in the windows' order."""
    share: dict[str, float] = {}
    weighted: dict[str, float] = {}
    labels: list[str] | None = None
    for s in segs:
        if s.kind is not SegmentKind.SPEECH:
            continue
        if labels is None:  # the first window's labels, in its order
            labels = list(s.probabilities or {})
            weighted = dict.fromkeys(labels, 0)  # sum() starts at an int 0 too
        share[s.label or ""] = share.get(s.label or "", 0.0) + s.own / secs
        for lab in labels:
            weighted[lab] += s.own * (s.probabilities or {})[lab]
    return share, {lab: float(w / secs) for lab, w in weighted.items()}


class SegmentSpool:
    """Segments kept in a temporary file in the order they were added, to be read back (any
    number of times, one at a time): what :func:`write_timeline_json` needs to name the
    summary before the segments without holding them (code review, stop 48). The file is
    in the system's temporary folder (about 300 bytes a segment) and goes when the spool is
    closed or collected."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile("w+", encoding="utf-8",
                                            prefix="emovox-timeline-")
        self.count = 0

    def add(self, seg: Segment) -> None:
        """One JSON line per segment (floats written as ``repr``: read back exactly)."""
        self._file.seek(0, 2)  # a reading pass may have left the position inside
        self._file.write(json.dumps([seg.start, seg.end, seg.label, seg.confidence,
                                     seg.probabilities, seg.arousal, seg.valence,
                                     seg.kind.value, seg.own], default=float) + "\n")
        self.count += 1

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[Segment]:
        self._file.seek(0)
        for _ in range(self.count):
            *head, kind, own = json.loads(self._file.readline())
            yield Segment(*head, SegmentKind(kind), own)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> SegmentSpool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: how the document's (empty) segments list reads in ``json.dumps(doc, indent=2)``: a key of
#: the top level is the only text after a newline and two spaces that starts with a quote
_EMPTY_SEGMENTS = '\n  "segments": []'


def write_timeline_json(tl: Timeline, out: TextIO, *, model_id: str | None = None,
                        segments: Iterable[Segment] | None = None) -> None:
    """``print(json.dumps(tl.to_dict(model_id=model_id), indent=2), file=out)``, byte for
    byte, writing one segment at a time: ``segments`` (default ``tl.segments``; read three
    times: a :class:`SegmentSpool` or a list) stand for ``tl.segments`` (code review, stop
    48: the document of 200,000 segments took 1 GB to build as a string)."""
    segs = tl.segments if segments is None else segments
    head = json.dumps(tl.document(model_id, tl.summary(segs), []), indent=2)
    before, after = head.split(_EMPTY_SEGMENTS, 1)
    out.write(before + _EMPTY_SEGMENTS[:-2])
    sep = "[\n    "  # json's layout of a list of the top level's values: 4 spaces an item
    for s in segs:
        out.write(sep + json.dumps(s.to_dict(), indent=2).replace("\n", "\n    "))
        sep = ",\n    "
    out.write(("[]" if sep.startswith("[") else "\n  ]") + after + "\n")


def segment_row(s: Segment) -> dict[str, Any]:
    """One segment as a flat dict, rounded for display (columns :data:`CSV_COLUMNS`; a gap
    has an empty label and no probabilities)."""
    probs = s.probabilities or {}
    row: dict[str, Any] = {"start": round(s.start, 3), "end": round(s.end, 3),
                           "kind": s.kind.value, "label": s.label,
                           "confidence": None if s.confidence is None
                           else rounded_probability(s.confidence, 4)}
    for lab in LABELS:  # the label's column is its confidence: rounded alike
        row[lab] = (None if s.probabilities is None
                    else rounded_probability(float(probs.get(lab, 0)), 4))
    row["arousal"] = None if s.arousal is None else round(s.arousal, 3)
    row["valence"] = None if s.valence is None else round(s.valence, 3)
    row["status"] = None if s.status is None else s.status.value  # the table's "?" (QA, 41)
    return row


def timeline_rows(tl: Timeline) -> list[dict[str, Any]]:
    """One flat dict per segment (:func:`segment_row`)."""
    return [segment_row(s) for s in tl.segments]


class TimelineCsv:
    """The timeline as CSV, a segment at a time (:func:`write_timeline_csv`): the header
    goes out with the first row, or at :meth:`close` when there is none."""

    def __init__(self, out: TextIO, adaptation: Adaptation | None = None) -> None:
        self._w = csv.writer(out, lineterminator="\n")
        self._adapted = None if adaptation is None else str(adaptation.applied).lower()
        self._started = False

    def _start(self) -> None:
        if not self._started:
            self._started = True
            self._w.writerow([*CSV_COLUMNS, *(["adapted"] if self._adapted else [])])

    def add(self, s: Segment) -> None:
        self._start()
        r = segment_row(s)
        cells = ["" if r[c] is None else (f"{r[c]:.3f}" if c in ("start", "end") else r[c])
                 for c in CSV_COLUMNS]
        if self._adapted:
            cells.append(self._adapted if r["kind"] == SegmentKind.SPEECH.value else "")
        self._w.writerow(cells)

    def close(self) -> None:
        self._start()


def write_timeline_csv(tl: Timeline, out: TextIO) -> None:
    """The timeline as CSV (header :data:`CSV_COLUMNS`, one row per segment, ``\\n`` line
    ends; gaps have empty emotion columns): what ``emovox timeline --csv`` prints and the
    web app offers for download. A timeline adapted to its speaker (``tl.adaptation``) has
    one more column, ``adapted`` (``true``/``false`` on speech rows, as ``batch``'s): a
    saved adapted CSV could not be told from an unadapted one (QA, stop 38)."""
    w = TimelineCsv(out, tl.adaptation)
    for s in tl.segments:
        w.add(s)
    w.close()
