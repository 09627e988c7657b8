"""Emotion timelines of long recordings: sliding windows over a streamed file.

The file is read in blocks (:func:`emovox.audio.iter_blocks`), so memory stays flat
for hour-long recordings: at most one block plus one window is held. Each window is
classified unless it is silent, in which case it is labelled ``silence``.
"""

from __future__ import annotations

import csv
import logging
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from emovox.audio import TARGET_SR, WINDOW_SILENCE_DBFS, AudioSource, is_silent, iter_blocks
from emovox.labels import LABELS
from emovox.serving.params import TIMELINE_HOP_S, TIMELINE_WINDOW_S, TimelineParams

log = logging.getLogger(__name__)

#: The label of a silent window (and of a silent clip in batch output).
SILENCE = "silence"
#: Columns of ``emovox timeline --csv`` and of the web app's timeline download.
CSV_COLUMNS = ("start", "end", "label", "confidence", *LABELS, "arousal", "valence")


@dataclass(frozen=True)
class Segment:
    """One window: ``[start, end)`` seconds, its emotion (or ``silence``) and probabilities."""

    start: float
    end: float
    label: str
    confidence: float
    probabilities: dict[str, float]
    arousal: float | None
    valence: float | None

    @property
    def silent(self) -> bool:
        return self.label == SILENCE


@dataclass
class Timeline:
    source: str
    duration: float
    window: float
    hop: float
    segments: list[Segment] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Share of voiced windows per emotion, mean probabilities over voiced windows,
        the dominant emotion, and how much of the recording was silent."""
        voiced = [s for s in self.segments if not s.silent]
        counts: dict[str, int] = defaultdict(int)
        for s in voiced:
            counts[s.label] += 1
        labels = list(voiced[0].probabilities) if voiced else []
        mean_p = {lab: float(np.mean([s.probabilities[lab] for s in voiced])) for lab in labels}
        return {
            "source": self.source,
            "duration_s": round(self.duration, 3),
            "windows": len(self.segments),
            "voiced_windows": len(voiced),
            "silent_windows": len(self.segments) - len(voiced),
            "dominant": max(mean_p, key=mean_p.get) if mean_p else SILENCE,
            "share": {k: v / len(voiced) for k, v in sorted(counts.items())} if voiced else {},
            "mean_probabilities": mean_p,
        }

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary(), "segments": [asdict(s) for s in self.segments]}


def iter_windows(
    blocks: Iterator[tuple[float, np.ndarray]], win: int, hop: int, min_last: int
) -> Iterator[tuple[int, np.ndarray]]:
    """(start sample, window) over a stream of blocks; a final shorter window is kept
    when it holds at least ``min_last`` samples not already covered, or when it is the
    only window (a file shorter than one window)."""
    buf = np.zeros(0, np.float32)
    buf_start = 0  # sample index of buf[0]
    pos = 0  # start of the next window
    covered = 0  # samples up to which windows already reached
    for _, block in blocks:
        buf = np.concatenate([buf, block])
        while pos + win <= buf_start + len(buf):
            yield pos, buf[pos - buf_start : pos - buf_start + win]
            covered = pos + win
            pos += hop
        drop = min(pos - buf_start, len(buf))  # hop > window: pos may lie beyond buf
        if drop > 0:
            buf = buf[drop:]
            buf_start += drop
    end = buf_start + len(buf)
    if pos < end and (end - covered >= min_last or covered == 0):
        yield pos, buf[pos - buf_start :]


def build_timeline(
    predictor: Any,
    src: AudioSource,
    *,
    window: float = TIMELINE_WINDOW_S,
    hop: float = TIMELINE_HOP_S,
    block_s: float = 60.0,
    silence_dbfs: float = WINDOW_SILENCE_DBFS,
    batch: int = 32,
    progress: Callable[[float], None] | None = None,
) -> Timeline:
    """Classify ``window``-second windows every ``hop`` seconds of ``src``.

    ``predictor`` is an :class:`emovox.serving.predictor.Predictor` (anything with
    ``predict_batch(waves, sr)``). Windows whose loudest frame is below ``silence_dbfs``
    (default :data:`emovox.audio.WINDOW_SILENCE_DBFS`, -45 dBFS) are labelled ``silence``
    without running the model. ``progress`` gets the seconds
    processed so far.

    Raises:
        emovox.errors.ConfigError: window or hop refused by :class:`TimelineParams`.
    """
    params = TimelineParams(window, hop)
    window, hop = params.window, params.hop
    sr = TARGET_SR
    win, step = int(round(window * sr)), int(round(hop * sr))
    tl = Timeline(str(src) if isinstance(src, (str, Path)) else "<bytes>", 0.0, window, hop)
    pending: list[tuple[int, np.ndarray]] = []

    def flush() -> None:
        voiced = [(s, w) for s, w in pending if not is_silent(w, threshold_dbfs=silence_dbfs)]
        preds = iter(predictor.predict_batch([w for _, w in voiced], sr) if voiced else [])
        voiced_starts = {s for s, _ in voiced}
        for s, w in pending:
            start, end = s / sr, (s + len(w)) / sr
            if s in voiced_starts:
                p = next(preds)
                tl.segments.append(Segment(start, end, p.label, p.confidence, p.probabilities,
                                           p.arousal, p.valence))
            else:
                tl.segments.append(Segment(start, end, SILENCE, 1.0, {}, None, None))
        pending.clear()
        if progress and tl.segments:
            progress(tl.segments[-1].end)

    seen = [0]  # samples streamed so far

    def counted() -> Iterator[tuple[float, np.ndarray]]:
        for start, block in iter_blocks(src, block_s=block_s, sr=sr):
            seen[0] += len(block)
            yield start, block

    for start, w in iter_windows(counted(), win, step, min_last=sr):
        pending.append((start, w))
        if len(pending) >= batch:
            flush()
    flush()
    tl.duration = seen[0] / sr
    return tl


def timeline_rows(tl: Timeline) -> list[dict[str, Any]]:
    """One flat dict per segment, rounded for display (columns :data:`CSV_COLUMNS`)."""
    rows = []
    for s in tl.segments:
        row: dict[str, Any] = {"start": round(s.start, 2), "end": round(s.end, 2),
                               "label": s.label, "confidence": round(s.confidence, 4)}
        for lab in LABELS:
            row[lab] = round(float(s.probabilities.get(lab, 0.0)), 4)
        row["arousal"] = None if s.arousal is None else round(s.arousal, 3)
        row["valence"] = None if s.valence is None else round(s.valence, 3)
        rows.append(row)
    return rows


def write_timeline_csv(tl: Timeline, out: TextIO) -> None:
    """The timeline as CSV (header :data:`CSV_COLUMNS`, one row per window, ``\\n`` line
    ends): what ``emovox timeline --csv`` prints and the web app offers for download."""
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for s in tl.segments:
        w.writerow([f"{s.start:.2f}", f"{s.end:.2f}", s.label, f"{s.confidence:.4f}",
                    *(f"{float(s.probabilities.get(lab, 0.0)):.4f}" for lab in LABELS),
                    "" if s.arousal is None else f"{s.arousal:.3f}",
                    "" if s.valence is None else f"{s.valence:.3f}"])
