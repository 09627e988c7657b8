"""What the web app shows, as plain data: recording level, the prediction's status, timeline
segments and the wording of errors. Pure functions (no Streamlit, no plotting), unit-tested.

The prediction is read as a plain dict (``Prediction.to_dict()``), with ``.get`` for the
fields of the speech-aware schema (``status``, ``reason``, ``speech_seconds``, ``n_windows``,
``evidence``), so the page works with both the older ``silent`` flag and the newer ``status``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np

from emovox.audio import ClipCounter, mixdown_advice, seconds_text
from emovox.errors import AudioTooLong
from emovox.serving.schema import prediction_document
from emovox.serving.uploads import UploadTooLarge
from emovox.web.modeltext import (  # (the page's names)
    card_markdown,
    md_code,
    md_name,
    md_named,
    md_text,
)

__all__ = [
    "PredictionView",
    "SignalLevel",
    "Status",
    "TimelineBand",
    "card_markdown",
    "evidence_spans",
    "md_code",
    "md_name",
    "md_named",
    "md_text",
    "no_speech_box",
    "page_warnings",
    "timeline_csv_name",
    "prediction_view",
    "signal_level",
    "timeline_bands",
    "timeline_summary_line",
    "says_clipped",
    "timeline_support",
    "web_error_message",
]

# --------------------------------------------------------------------------------------------
# Recording level
# --------------------------------------------------------------------------------------------


def _dbfs(x: float) -> float:
    return 20.0 * math.log10(x) if x > 0 else -math.inf


@dataclass(frozen=True)
class SignalLevel:
    """Level of a waveform at full scale 1.0 (RMS 1.0 = 0 dBFS, so a full-scale sine has
    RMS -3 dBFS and peak 0 dBFS).

    Attributes:
        peak_dbfs: loudest sample, dBFS (``-inf`` for digital silence).
        rms_dbfs: RMS over the whole recording, dBFS (``-inf`` for digital silence).
        clipped_samples: samples in runs at full scale (:class:`emovox.audio.ClipCounter`).
        n_samples: length of the waveform.
    """

    peak_dbfs: float
    rms_dbfs: float
    clipped_samples: int
    n_samples: int

    @property
    def clipped(self) -> bool:
        return self.clipped_samples > 0


def answer_download(prediction: Any) -> bytes:
    """The "Download the answer" file: the prediction document of the JSON Schema
    (``emovox/data/schema/prediction-v1.json``), exactly what the CLI and the API write."""
    import json

    return json.dumps(prediction_document(prediction), indent=2).encode()


def fmt_dbfs(x: float) -> str:
    """``-12.3 dBFS``; ``0.0``, never ``-0.0`` (a full-scale peak); ``-∞`` for no signal."""
    return "-∞ dBFS" if not math.isfinite(x) else f"{x + 0.0:.1f} dBFS".replace("-0.0 ", "0.0 ")


def page_warnings(answer: Sequence[str], timeline: Sequence[str] = (), *,
                  no_speech: bool = False) -> list[str]:
    """The warnings the page shows above the answer: the answer's (a WAV cut short, several
    tracks, mains hum; near-silence has its own box), then a mains hum only the timeline's
    60 s blocks found (in part of a long recording: web QA, stop 32), marked as the
    timeline's since the answer's download does not carry it; none of it on near-silent
    audio, where the answer says near-silence instead (re-check 2). A muted input's advice
    is said (the page showed "the recording is silent" alone: re-check, stop 39): in the
    no-speech box of a ``no_speech`` answer (:func:`no_speech_box`), not again here."""
    out = [n for n in answer if _SILENT not in n and not (no_speech and _MUTED in n)]
    if any(_SILENT in n or _MUTED in n or _HUM in n for n in answer):
        return out
    out += [f"The timeline found: {n}" for n in timeline if _HUM in n]
    return out


def no_speech_box(name: str, reason: str, answer: Sequence[str]) -> str:
    """The one box of an answer without speech: its reason in words, or, when every sample
    has one value, the answer's note saying so and what to check, the more precise of the
    two (an all-zero upload showed both, "silent (or a constant offset)" beside "every
    sample has the same value": review, stop 57). ``name``: the file's, as the notes
    start with it."""
    muted = next((n for n in answer if _MUTED in n), None)
    if muted is not None:
        return f"{muted} There is no voice to classify."
    return f"{name}: {reason.rstrip('.')}: there is no voice to classify."


def says_clipped(warnings: Sequence[str]) -> bool:
    """Whether an answer's warnings say its recording is clipped (the meter follows them)."""
    return any(_CLIPPED in w for w in warnings)


# what marks the decoder's notes (after the file's name)
_SILENT = ": the audio is silent or nearly so"
_MUTED = ": every sample has the same value"
_CLIPPED = ": the recording is clipped: "
_HUM = ": mains hum at "


def timeline_csv_name(name: str, adapted: bool) -> str:
    """The timeline download's file name; ``-adapted`` only when adaptation was applied
    (a checkbox ticked on too little speech changes nothing: QA stop 32)."""
    from pathlib import Path

    return f"{Path(name).stem or 'recording'}-timeline{'-adapted' if adapted else ''}.csv"


_BLOCK = 1 << 20  # samples per block: a 10-minute 48 kHz recording needs ~25 MB of scratch


def signal_level(wave: np.ndarray | Iterable[np.ndarray]) -> SignalLevel:
    """Peak and RMS level (dBFS) and clipping of a recording at full scale 1.0: a mono
    ``(n,)`` array, an ``(n, channels)`` one, or an iterable of ``(n, channels)`` blocks (the
    file as recorded: :func:`emovox.audio.iter_native_blocks`). Peak and clipping are per
    channel (a channel clipped beside a quiet one is not hidden by a mix-down; a run of
    full-scale samples is followed across blocks); RMS is over every channel's samples;
    ``n_samples`` counts them too. RMS is measured about each channel's mean, and the peak
    is the swing about it (at most the sample peak): a constant offset is no sound (faint
    speech on a 0.1 offset read -20 dBFS: QA stop 30); clipping counts the samples as
    recorded."""
    blocks = [wave] if isinstance(wave, np.ndarray) else wave
    n, clips, channels = 0, ClipCounter(), 0
    acc = np.zeros((4, 0))  # per channel: sum, sum of squares, min, max
    for blk in blocks:
        b = np.asarray(blk)
        b = b[:, None] if b.ndim == 1 else b.reshape(len(b), -1)
        if not channels:
            channels = b.shape[1]
            acc = np.array([[0.0] * channels, [0.0] * channels,
                            [math.inf] * channels, [-math.inf] * channels])
        for s in range(0, len(b), _BLOCK):
            chunk = b[s : s + _BLOCK].astype(np.float64)
            if chunk.size == 0:
                continue
            acc[0] += chunk.sum(axis=0)
            acc[1] += np.einsum("ij,ij->j", chunk, chunk)
            acc[2] = np.minimum(acc[2], chunk.min(axis=0))
            acc[3] = np.maximum(acc[3], chunk.max(axis=0))
            n += chunk.size
            clips.add(chunk)
    if n == 0:
        return SignalLevel(-math.inf, -math.inf, 0, 0)
    clipped = clips.clipped
    per = n / channels  # samples per channel
    mean = acc[0] / per
    swing = float(np.max(np.maximum(acc[3] - mean, mean - acc[2])))  # about the mean
    peak = min(swing, float(np.max(np.maximum(acc[3], -acc[2]))))  # at most the sample peak
    var = float(np.sum(np.maximum(acc[1] - per * mean * mean, 0.0)))
    return SignalLevel(_dbfs(peak), _dbfs(math.sqrt(var / n)), clipped, n)


# --------------------------------------------------------------------------------------------
# The prediction
# --------------------------------------------------------------------------------------------


class Status(str, Enum):
    """The prediction's status (the speech-aware schema's ``status``)."""

    OK = "ok"
    UNCERTAIN = "uncertain"
    NO_SPEECH = "no_speech"


_NO_SPEECH_REASON = "No speech was found in this recording: there is no voice to classify."


@dataclass(frozen=True)
class PredictionView:
    """What the page shows of a prediction. ``label``, ``probabilities``, ``arousal`` and
    ``valence`` are None when there is no emotion to show (no speech)."""

    status: Status
    reason: str | None
    label: str | None
    confidence: float | None
    probabilities: dict[str, float] | None
    arousal: float | None
    valence: float | None
    speech_seconds: float | None = None
    n_windows: int | None = None
    evidence: list[dict[str, Any]] = field(default_factory=list)

    @property
    def has_emotion(self) -> bool:
        return self.status is not Status.NO_SPEECH and self.label is not None


def _float(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def prediction_view(d: Mapping[str, Any]) -> PredictionView:
    """Read a prediction dict: ``status`` (``ok``/``uncertain``/``no_speech``) when present,
    else ``silent: true`` means no speech. No speech leaves no label, probability or point."""
    raw = d.get("status")
    try:
        status = Status(raw) if raw is not None else None
    except ValueError:
        status = None
    if status is None:
        status = Status.NO_SPEECH if d.get("silent") else Status.OK
    reason = d.get("reason_message") or d.get("reason")  # the words, else the code
    n = d.get("n_windows")
    speech_seconds = _float(d.get("speech_seconds"))
    n_windows = int(n) if isinstance(n, (int, float)) and math.isfinite(n) else None
    if status is Status.NO_SPEECH:
        return PredictionView(status, str(reason or _NO_SPEECH_REASON), None, None, None, None,
                              None, speech_seconds, n_windows)
    probs = d.get("probabilities") or {}
    return PredictionView(
        status=status, reason=str(reason) if reason else None, label=d.get("label"),
        confidence=_float(d.get("confidence")),
        probabilities={str(k): float(v) for k, v in probs.items()} or None,
        arousal=_float(d.get("arousal")), valence=_float(d.get("valence")),
        speech_seconds=speech_seconds, n_windows=n_windows,
        evidence=[dict(e) for e in (d.get("evidence") or []) if isinstance(e, Mapping)],
    )


def evidence_spans(evidence: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Evidence windows with a positive contribution as ``{start, end, label, contribution,
    share}`` where ``share`` is the contribution relative to the largest one (0-1]."""
    rows = []
    for e in evidence:
        start, end = _float(e.get("start")), _float(e.get("end"))
        c = _float(e.get("contribution"))
        if c is None:
            c = _float(e.get("weight"))
        if start is None or end is None or end <= start or c is None or c <= 0:
            continue
        rows.append({"start": start, "end": end, "label": e.get("label"), "contribution": c})
    top = max((r["contribution"] for r in rows), default=0.0)
    for r in rows:
        r["share"] = r["contribution"] / top
    return rows


# --------------------------------------------------------------------------------------------
# Timeline
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineBand:
    """One drawn band of the timeline chart: ``[start, end)`` seconds, the window it shows."""

    start: float
    end: float
    window_start: float
    window_end: float
    label: str
    confidence: float
    probabilities: dict[str, float]


def _is_silence(seg: Mapping[str, Any]) -> bool:
    label = seg.get("label")
    kind = str(seg.get("kind") or seg.get("status") or "").lower()
    return (label in (None, "", "silence") or kind in ("silence", "gap", "no_speech")
            or not seg.get("probabilities"))


def _minus(start: float, end: float, gaps: Sequence[tuple[float, float]]
           ) -> list[tuple[float, float]]:
    """``[start, end)`` without the intervals ``gaps`` (sorted by start)."""
    pieces = []
    for g0, g1 in gaps:
        if g1 <= start or g0 >= end:
            continue
        if g0 > start:
            pieces.append((start, g0))
        start = max(start, g1)
        if start >= end:
            break
    if end > start:
        pieces.append((start, end))
    return pieces


def timeline_bands(segments: Sequence[Mapping[str, Any]]) -> list[TimelineBand]:
    """One band per speech window, silence left out (a gap). Overlapping windows are cut at
    the midpoint between their centres, so the bands tile the speech without
    overlapping and each instant shows the window centred nearest to it; the seconds of a
    silent window (or silence gap) are cut out of its neighbours' bands."""
    speech = sorted((s for s in segments if not _is_silence(s)), key=lambda s: float(s["start"]))
    gaps = sorted((float(s["start"]), float(s["end"])) for s in segments if _is_silence(s))
    centres = [(float(s["start"]) + float(s["end"])) / 2 for s in speech]
    bands = []
    for i, s in enumerate(speech):
        start, end = float(s["start"]), float(s["end"])
        mid = (centres[i - 1] + centres[i]) / 2 if i > 0 else start
        if i > 0 and float(speech[i - 1]["end"]) > start:  # overlaps the previous window
            start = min(max(start, mid), float(speech[i - 1]["end"]))
        if i + 1 < len(speech) and float(speech[i + 1]["start"]) < end:
            end = max(min(end, (centres[i] + centres[i + 1]) / 2), float(speech[i + 1]["start"]))
        probs = {str(k): float(v) for k, v in (s.get("probabilities") or {}).items()}
        conf = _float(s.get("confidence"))
        for p0, p1 in _minus(start, end, gaps):
            bands.append(TimelineBand(p0, p1, float(s["start"]), float(s["end"]),
                                      str(s["label"]),
                                      conf if conf is not None else max(probs.values(),
                                                                        default=0.0),
                                      probs))
    return bands


def timeline_support(bands: Sequence[TimelineBand], label: str) -> list[dict[str, Any]]:
    """Where the timeline supports ``label``: each band weighted by its seconds times its
    probability of ``label``, in the shape of :func:`evidence_spans` (shown over the waveform
    when the prediction carries no ``evidence`` of its own)."""
    spans = [{"start": b.start, "end": b.end, "label": label,
              "contribution": (b.end - b.start) * b.probabilities.get(label, 0.0)}
             for b in bands]
    return evidence_spans(spans)


def timeline_summary_line(summary: Mapping[str, Any], window: float | None,
                          hop: float | None) -> str:
    """One Markdown line about a timeline summary (:meth:`Timeline.summary`'s fields:
    ``dominant``, ``status``, ``n_windows``, ``speech_seconds``, ``gap_seconds``; missing
    ones are left out)."""
    parts = []
    if summary.get("dominant"):
        mark = " (uncertain)" if summary.get("status") == "uncertain" else ""
        parts.append(f"Overall (mean probability over speech time): "
                     f"**{md_text(summary['dominant'])}**{mark}")
    n = summary.get("n_windows")
    if n is not None:
        size = f" of {window:g} s every {hop:g} s" if window and hop else ""
        parts.append(f"{n} window{'' if n == 1 else 's'}{size}")
    speech = _float(summary.get("speech_seconds"))
    if speech is not None:
        parts.append(f"{speech:.1f} s of speech")
    gaps = _float(summary.get("gap_seconds"))
    if gaps:
        parts.append(f"{gaps:.1f} s without")
    return " · ".join(parts) or "Emotion timeline"


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


def _sentence(text: str) -> str:
    """``text`` with its first letter capitalised (and nothing else: ``kHz`` stays)."""
    return text[:1].upper() + text[1:]


def web_error_message(exc: BaseException, default: str, *, name: str, max_duration_s: float,
                      max_upload_mb: float, recorded: bool = False) -> str:
    """The web user's wording of a limit error (the limits are the operator's: a web user
    can only send a shorter file); ``default`` for every other error. ``recorded``: the
    clip came from the page's microphone recorder, whose user can only record a shorter
    take (one over the size limit was told to "record it with the microphone button":
    code review)."""
    if recorded and isinstance(exc, UploadTooLarge):
        return (f"This microphone recording is larger than the {max_upload_mb:g} MB limit "
                "of this app. Record a shorter take.")
    if recorded and isinstance(exc, AudioTooLong) and exc.mixdown is None:
        return (f"This microphone recording is longer than the {max_duration_s:g} s limit "
                f"of this app. Record a shorter take, of at most {max_duration_s:g} s.")
    if isinstance(exc, AudioTooLong):
        damaged = (" Its header says so before decoding: if it is a shorter file that was "
                   "cut or damaged, re-export it.") if "declares" in str(exc) else ""
        if exc.mixdown is not None and exc.limit_s is not None:  # QA stop 32
            channels, rate = exc.mixdown
            return (f"{name} is longer than this app allows for {channels} channels at "
                    f"{rate} Hz: {seconds_text(exc.limit_s)} s (the {max_duration_s:g} s "
                    "limit counts decoding work, and so many channels or so high a rate "
                    f"cost more). {_sentence(mixdown_advice(channels, rate))}, or upload an "
                    f"excerpt of at most {seconds_text(exc.limit_s)} s.{damaged}")
        return (f"{name} is longer than the {max_duration_s:g} s limit of this app. Trim it, "
                f"or upload an excerpt of at most {max_duration_s:g} s.{damaged}")
    if isinstance(exc, UploadTooLarge):
        return (f"{name} is larger than the {max_upload_mb:g} MB upload limit of this app. "
                "Trim it to a shorter excerpt, or compress it (MP3, OGG or M4A). A long "
                "recording is better analysed with the command line, which has no upload "
                "limit: `emovox timeline FILE` (or `emovox batch` for many files).")
    return default
