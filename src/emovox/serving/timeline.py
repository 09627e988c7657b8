"""Emotion timelines of long recordings: windows over the speech of a streamed file.

The file is read in blocks (:func:`emovox.audio.iter_blocks`), so memory stays flat for
hour-long recordings: the speech detector (:mod:`emovox.features.vad`) runs on each new
block and keeps one flag per 10 ms; a speech region is classified once it is closed (no
speech for :data:`~emovox.serving.speech.REGION_BRIDGE_S` after it), and the samples before
it are dropped. Only a block plus the open speech region is held, and a region that runs on
without a pause is classified in chunks of :data:`MAX_OPEN_REGION_S` (cut at the end of a
window, the next chunk's windows starting there), so what is held stays bounded.

Windows (``window`` s every ``hop`` s) cover each speech region, the last one aligned to the
region's end so the tail is never dropped (it replaces the one before it when it would start
less than half a hop after it); a region shorter than a window is one shorter
window. What lies between regions is an explicit **gap** segment (``kind="gap"``, no
label). The summary is weighted by speech time: each window counts for the seconds from its
start to the next window's start (its own seconds), so overlapping windows are not counted
twice.

The segments are handed on as they settle, in time order with the gaps between them (the
``emit`` of :func:`build_timeline`; by default the timeline keeps them), so that a caller
writing them out (``emovox timeline --csv`` and ``--json``:
:mod:`emovox.serving.timeline_doc`) holds none: what the detector keeps per frame is bounded
too, but for the level of each 10 ms, which its noise floor is taken over (code review,
stop 48).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from emovox.audio import (
    SILENCE_DBFS,
    TARGET_SR,
    WINDOW_SILENCE_DBFS,
    AudioSource,
    faint_note,
    file_notes,
    hum_note,
    iter_blocks,
    peak_frame_dbfs,
    remove_dc,
)
from emovox.features.steady import without_steady
from emovox.features.vad import (
    DEFAULT_PARAMS,
    NoSpeechReason,
    speech_segments,
    voiced_needed_s,
)
from emovox.serving.params import TIMELINE_HOP_S, TIMELINE_WINDOW_S, TimelineParams
from emovox.serving.speech import (
    MIN_REGION_S,
    REGION_BRIDGE_S,
    REGION_PAD_S,
    own_seconds,
    region_windows,
    speech_regions,
)
from emovox.serving.stream import SpeechStream
from emovox.serving.timeline_doc import (
    CSV_COLUMNS,
    SILENCE,
    Segment,
    SegmentKind,
    SegmentSpool,
    Timeline,
    TimelineCsv,
    timeline_rows,
    write_timeline_csv,
    write_timeline_json,
)

log = logging.getLogger(__name__)

#: the document's types and outputs live in :mod:`emovox.serving.timeline_doc` (split out
#: when they learnt to stream: code review, stop 48) and are still importable from here
__all__ = ["CSV_COLUMNS", "SILENCE", "Segment", "SegmentKind", "SegmentSpool", "Timeline",
           "TimelineCsv", "TimelineInterrupted", "build_timeline", "iter_windows",
           "timeline_rows", "write_timeline_csv", "write_timeline_json"]


def iter_windows(
    blocks: Iterator[tuple[float, np.ndarray]], win: int, hop: int, min_last: int
) -> Iterator[tuple[int, np.ndarray]]:
    """(start sample, window) of fixed windows over a stream of blocks (kept for callers;
    :func:`build_timeline` windows the speech only). A final shorter window is kept when it
    holds at least ``min_last`` new samples, or when it is the only one."""
    buf = np.zeros(0, np.float32)
    buf_start = pos = covered = 0
    for _, block in blocks:
        buf = np.concatenate([buf, block])
        while pos + win <= buf_start + len(buf):
            yield pos, buf[pos - buf_start : pos - buf_start + win]
            covered = pos + win
            pos += hop
        drop = min(pos - buf_start, len(buf))
        if drop > 0:
            buf = buf[drop:]
            buf_start += drop
    end = buf_start + len(buf)
    if pos < end and (end - covered >= min_last or covered == 0):
        yield pos, buf[pos - buf_start :]


class TimelineInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped :func:`build_timeline`; :attr:`timeline` is the timeline of what was
    read before it, finished as the whole would be (an interrupted ``emovox timeline``
    printed nothing, after minutes of work: QA, stop 37)."""

    def __init__(self, timeline: Timeline) -> None:
        super().__init__("interrupted")
        self.timeline = timeline


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
    filename: str | None = None,
    emit: Callable[[Segment], None] | None = None,
) -> Timeline:
    """Classify ``window``-second windows every ``hop`` seconds over the speech of ``src``.

    ``predictor`` is an :class:`emovox.serving.predictor.Predictor` (anything with
    ``span_probabilities(waves)``, ``affect(p)`` and ``labels``; ``window_probabilities``
    until stop 47). ``progress`` gets the
    seconds read so far; ``filename`` names bytes input in messages. ``silence_dbfs`` is no
    longer used (the speech detector decides) and is kept for callers; ``batch`` is
    accepted for the same reason (windows go to the network 64 at a time). ``emit``: each
    segment is handed to it as it settles, in time order, instead of being kept in the
    timeline's ``segments`` (left empty): memory then stays bounded whatever the length
    (code review, stop 48; :mod:`emovox.serving.timeline_doc` writes them as they come).

    Raises:
        emovox.errors.ConfigError: window or hop refused by :class:`TimelineParams`.
    """
    del silence_dbfs, batch
    window, hop = (p := TimelineParams(window, hop)).window, p.hop
    sr = TARGET_SR
    tl = Timeline(str(src) if isinstance(src, (str, Path)) else "<bytes>", 0.0, window, hop)
    st = SpeechStream(sr)
    state = {"done_s": 0.0, "speech_s": 0.0}  # classified up to; flagged speech in it
    flow = _Flow(tl.segments.append if emit is None else emit)

    def settle(final: bool) -> None:
        _settle(predictor, tl, st, state, window, hop, flow, final=final)
        flow.release(state["speech_s"])

    cut: list[str] = []  # a file that stops decoding part-way: its timeline up to there
    blocks = iter_blocks(src, block_s=block_s, sr=sr, filename=filename,  # bad input: here
                         notes=cut)
    tl.warnings = list(file_notes(src, filename=filename))
    name, hum = filename or (str(src) if isinstance(src, (str, Path)) else "<bytes>"), None
    peak = -np.inf  # loudest 64 ms frame, as predict's near-silence check measures it
    interrupted = False
    try:
        for _, block in blocks:
            # after the offset comes off, as predict measures it: a constant offset is
            # silence to both (API review, stop 51)
            peak = max(peak, peak_frame_dbfs(remove_dc(block)))
            if hum is None and (hum := hum_note(name, block, sr)):
                tl.warnings.append(hum)  # the first block with hum says it, once (stop 32)
            st.push(block)
            settle(final=False)
            if progress:
                progress(st.end / sr)
    except KeyboardInterrupt:  # Ctrl-C: what was read is finished and handed over (stop 37)
        interrupted = True
        cut.append(f"{name}: interrupted at {st.end / sr:.1f} s: the timeline covers the "
                   "audio read before that")
    tl.warnings += cut
    if not peak >= SILENCE_DBFS:  # said by predict, not by a timeline before (CLI QA, stop 33);
        tl.warnings = [w for w in tl.warnings if w != hum] + [  # not hum
            faint_note(name, digital=peak == -np.inf)]
        log.warning("%s", tl.warnings[-1])
    elif hum:  # logged as the decoder's notes are (CLI QA, stop 33), once the level is known
        log.warning("%s", hum)
    st.push(np.zeros(0, np.float32), final=True)
    settle(final=True)
    tl.duration, tl.detected_s = st.vad_pos / sr, state["speech_s"]
    flow.finish(tl)
    if interrupted:
        raise TimelineInterrupted(tl)
    return tl


def _settle(predictor: Any, tl: Timeline, st: SpeechStream, state: dict[str, float],
            window: float, hop: float, flow: _Flow, *, final: bool) -> None:
    """Classify what the stream has settled (regions closed before the horizon, and a chunk
    of a region open too long), and drop the samples no longer needed."""
    sr = st.sr
    regions, flags, level = st.regions()
    if len(level):
        tl.loudest_db = max(tl.loudest_db, float(np.max(level)))
    horizon = st.vad_pos / sr - (0 if final else REGION_BRIDGE_S + REGION_PAD_S + 0.05)
    regions = _not_done(regions, max(state["done_s"], st.buf_start / sr), horizon)
    todo, open_ = ([r for r in regions if r[1] <= horizon],
                   [r for r in regions if r[1] > horizon])
    chunk = None
    if open_ and (cut := _chunk_end(open_[0][0], horizon, window, hop, sr)) is not None:
        chunk = (open_[0][0], cut)  # no pause yet: the talk goes on after the cut
        todo, open_[0] = [*todo, chunk], (cut, open_[0][1])
    for r in todo:
        _classify_region(predictor, tl, st, r, flags, window, hop, state, flow,
                         goes_on=r is chunk)
    keep_from = open_[0][0] if open_ else max(horizon, state["done_s"])
    st.drop_before(min(st.vad_pos, int(keep_from * sr)))


#: seconds of a speech region still open (no pause yet) after which its windows so far are
#: classified and its samples dropped: talk or sound without a 0.5 s pause was held whole,
#: as long as the recording (64 kB a second; a code review, stop 44). Checked once a block,
#: so such a region holds up to this plus a block (120 s in the command's 60 s blocks)
MAX_OPEN_REGION_S = 60.0


def _chunk_end(start: float, horizon: float, window: float, hop: float, sr: int
               ) -> float | None:
    """Where to cut a region open since ``start`` (s) once it has run past
    :data:`MAX_OPEN_REGION_S` before ``horizon``: the end of its last whole window (on the
    grid of windows from ``start``) ending at least ``window + hop / 2`` before ``horizon``;
    None while it is shorter. What stays held after the cut is then at least that long,
    so the piece left when the region closes gets whole windows, the last one ending at
    the region's end, as without a cut (cut at the last window before ``horizon``, a region
    closing just after it left a piece of 0-1.5 s: one short window, or dropped under
    0.3 s; a code review, stop 45)."""
    if horizon - start <= MAX_OPEN_REGION_S:
        return None
    a, win, step = round(start * sr), max(1, round(window * sr)), max(1, round(hop * sr))
    limit = int((horizon - window - hop / 2) * sr)
    return (a + (limit - a - win) // step * step + win) / sr


def _not_done(regions: list[tuple[float, float]], start: float, horizon: float
              ) -> list[tuple[float, float]]:
    """The ``regions`` (s) from ``start`` on (what is classified, or no longer held, ends
    there). The floor is taken over all read so far: when it falls (a loud machine stops),
    a region may reach back before ``start``; its part after ``start`` is kept when a
    region's worth or still open (ending after ``horizon``); it was skipped whole (code
    reviews, stop 42)."""
    return [(max(a, start), b) for a, b in regions
            if a >= start - 1e-9 or b - start >= MIN_REGION_S or b > horizon]


def _classify_region(predictor: Any, tl: Timeline, st: SpeechStream,
                     region: tuple[float, float], flags: np.ndarray, window: float,
                     hop: float, state: dict[str, float], flow: _Flow, *,
                     goes_on: bool = False) -> None:
    """Windows over one speech region -> speech segments. Its steady stretches (beeps, phone
    tones: :mod:`emovox.features.steady`) are taken out first and the speech around them
    kept; a part too short or not voiced becomes part of a gap. ``goes_on``: the region is
    a chunk cut from talk that continues, so a steady stretch shorter than a bridge at its
    end is bridged to the talk after it, as it is when the region is classified whole (it
    left a gap of up to a bridge before the cut and moved the windows: code review, 45)."""
    state["done_s"] = region[1]
    s, e = max(region[0], st.buf_start / st.sr), region[1]  # never before what is held
    hop_s, step = DEFAULT_PARAMS.hop_s, int(round(DEFAULT_PARAMS.hop_s * st.sr))
    f0, f1 = int(np.ceil(s / hop_s - 1e-9)), int(np.ceil(e / hop_s))
    blip = max(1, int(round(DEFAULT_PARAMS.min_segment_s / hop_s)))
    off = st.first  # flags[0] is that frame: they are kept over a window (code review, 48)
    kept, n_steady = without_steady(st.samples(f0 * step, f1 * step), st.sr,
                                    flags[f0 - off : f1 - off], blip)
    parts = [(s, e)]
    if n_steady:
        segs = speech_segments(kept) + f0 * hop_s
        parts = [(max(s, a), min(e, b)) for a, b in speech_regions(segs, e)]
        if goes_on and parts and e - parts[-1][1] < REGION_BRIDGE_S:
            parts[-1] = (parts[-1][0], e)
        if not parts:
            tl.dropped[NoSpeechReason.STEADY.value] = tl.dropped.get(
                NoSpeechReason.STEADY.value, 0) + 1
            return
    full = np.zeros(len(flags), dtype=bool)
    full[f0 - off : f0 - off + len(kept)] = kept
    for part in parts:
        state["speech_s"] += _classify_part(predictor, tl, st, part, full, window, hop, flow)


def _classify_part(predictor: Any, tl: Timeline, st: SpeechStream,
                   part: tuple[float, float],
                   flags: np.ndarray, window: float, hop: float, flow: _Flow) -> float:
    """Windows over one part of a region -> speech segments; returns the seconds of speech
    the detector flagged in it, whether it was classified or dropped. A part is voiced when
    ``min_voiced_s`` of it, or half of its speech, is (a word of 0.18 s among others was
    dropped as not voiced, and predict, which asks ``min_voiced_s`` of the whole input,
    labelled the recording: QA stop 30) (:func:`~emovox.features.vad.voiced_needed_s`)."""
    s, e = part
    f0, f1 = int(s / DEFAULT_PARAMS.hop_s), int(np.ceil(e / DEFAULT_PARAMS.hop_s))
    frames = f0 + np.flatnonzero(flags[f0 - st.first : f1 - st.first])  # from frame first
    speech_s = len(frames) * DEFAULT_PARAMS.hop_s
    why = None
    if e - s < MIN_REGION_S:
        why = NoSpeechReason.TOO_SHORT
    elif (scan := st.voicing(frames, need := voiced_needed_s(speech_s, part=True))).voiced \
            * DEFAULT_PARAMS.hop_s < need - 1e-9 or scan.unvoiced:
        why = NoSpeechReason.UNVOICED
    elif scan.held:  # voiced throughout, no pitch moving: a bell, a plucked string (stop 41)
        why = NoSpeechReason.STEADY
    if why is not None:
        tl.dropped[why.value] = tl.dropped.get(why.value, 0) + 1
        return speech_s
    spans = region_windows([part], st.sr, window, hop)
    if not spans:
        return speech_s
    probs = predictor.span_probabilities([st.samples(a, b) for a, b in spans])
    labels = list(predictor.labels)
    for (a, b), p, own in zip(spans, probs, own_seconds(spans, st.sr), strict=True):
        k = int(np.argmax(p))
        ar, va = predictor.affect(p)
        flow.add(Segment(
            a / st.sr, b / st.sr, labels[k], float(p[k]),
            {lab: float(q) for lab, q in zip(labels, p, strict=True)}, ar, va,
            SegmentKind.SPEECH, own))
    return speech_s


class _Flow:
    """Speech windows as they are classified -> the timeline's segments, in time order with
    the gaps between them, handed to ``emit`` as soon as they can no longer change (they
    were all kept to the end, then sorted and the gaps put in: code review, stop 48).
    Windows come in time order (each region's start past the last one classified). Until
    ``min_speech_s`` of speech was flagged they are held: with less in all the recording is
    ``too_short`` and they go, as in ``predict`` (a lone 0.2 s burst, a region of 0.4 s with
    its padding, was labelled in the timeline and refused by predict: QA stop 30). Short
    regions among others stay labelled, as predict's windows use them too."""

    def __init__(self, emit: Callable[[Segment], None]) -> None:
        self.emit = emit
        self.held: list[Segment] | None = []  # None once enough speech was flagged
        self.pos = 0.0  # the end of what was handed on

    def add(self, seg: Segment) -> None:
        if self.held is None:
            self._out(seg)
        else:
            self.held.append(seg)

    def release(self, speech_s: float) -> None:
        """Hand on the held windows once ``speech_s`` (flagged so far) is enough."""
        if self.held is not None and speech_s >= DEFAULT_PARAMS.min_speech_s:
            held, self.held = self.held, None
            for s in sorted(held, key=lambda s: s.start):
                self._out(s)

    def finish(self, tl: Timeline) -> None:
        """The end (``tl.duration``, ``tl.detected_s`` set): a recording with less than
        ``min_speech_s`` of speech in all (``detected_s``: flagged in every part, classified
        or not) is ``too_short``; beeps and tones taken out keep their own reason. Then the
        gap to the end."""
        if self.held is not None and 0.0 < tl.detected_s < DEFAULT_PARAMS.min_speech_s:
            n, self.held = len(self.held), None
            steady = NoSpeechReason.STEADY.value
            tl.dropped = {k: v for k, v in tl.dropped.items() if k == steady}
            tl.dropped[NoSpeechReason.TOO_SHORT.value] = max(1, n)
        self.release(np.inf)
        if tl.duration - self.pos > 1e-6:
            self.emit(Segment(self.pos, tl.duration, None, None, None, None, None,
                              SegmentKind.GAP))

    def _out(self, s: Segment) -> None:
        """A speech window, after the gap before it (wherever no window lies)."""
        if s.start - self.pos > 1e-6:
            self.emit(Segment(self.pos, s.start, None, None, None, None, None,
                              SegmentKind.GAP))
        self.emit(s)
        self.pos = max(self.pos, s.end)
