"""Response schemas of the REST API (they document the API in its OpenAPI spec).

Since stop 51 the types are as tight as the server's answers and the shipped JSON Schemas
(``emovox/data/schema/prediction-v1.json``, ``timeline-v1.json``): labels are one of the
eight emotions (:class:`~emovox.labels.Emotion`), probabilities objects keyed by them, a
``no_speech`` reason one of :class:`~emovox.features.vad.NoSpeechReason`, and an error's
``error`` one of :class:`~emovox.serving.errcodes.ErrorCode`; each route's error responses
list the codes that route can send (:data:`ROUTE_ERRORS`, declared with the route through
:func:`error_responses`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from emovox.features.vad import NoSpeechReason
from emovox.labels import Emotion
from emovox.serving.adapt_uploads import MAX_REFERENCES
from emovox.serving.errcodes import ErrorCode

__all__ = ["ROUTE_ERRORS", "UPLOAD_FORMATS", "AdaptationRecord", "ErrorBody", "Evidence",
           "Health", "ModelCard", "PredictResponse", "Segment", "TimelineResponse",
           "TimelineSummary", "error_responses"]

#: the audio formats the API names to its clients (the upload field's help and the OpenAPI
#: description are made from it: the description left out opus and webm, stop 51)
UPLOAD_FORMATS: tuple[str, ...] = ("wav", "flac", "ogg", "opus", "mp3", "m4a", "webm")


class ErrorBody(BaseModel):
    error: ErrorCode = Field(description="machine-readable code, one of a stable list: " +
                             "; ".join(f"{c.value} ({c.status}): {c.meaning}" for c in ErrorCode))
    detail: str = Field(description="what is wrong and what to do about it, for a person")


Status = Literal["ok", "uncertain", "no_speech"]
#: calibrated probabilities: one key per label of the model (``GET /v1/model``'s
#: ``labels``; all eight for the bundled models), each an emotion
Probabilities = dict[Emotion, float]


class Evidence(BaseModel):
    start: float = Field(description="seconds")
    end: float = Field(description="seconds")
    weight: float = Field(description="share of the duration-weighted mean (weights sum to 1)")
    label: Emotion = Field(description="the window's own top emotion")
    confidence: float = Field(description="its calibrated probability")
    contribution: float = Field(
        description="share of the final label's probability mass (contributions sum to 1)")


class AdaptationRecord(BaseModel):
    """Speaker adaptation of the answer (only when asked for: ``references`` of
    ``/v1/predict``, ``adapt=self`` of ``/v1/timeline``; the same record as ``emovox predict
    --reference`` and ``emovox timeline --adapt self`` write)."""

    method: Literal["speaker_prior"] = Field(
        description="probabilities divided by the speaker's mean answer, renormalised")
    applied: bool = Field(description="false: left unadapted, reason says why")
    reference_clips: int = Field(description="usable reference clips (or speech windows of "
                                 "the recording itself) the speaker's mean answer is from")
    group: str | None = Field(description="'uploaded references', or 'self'")
    reason: str | None = Field(description="why not applied (null when applied)")
    prior: Probabilities | None = Field(
        description="the speaker's mean answer the probabilities were divided by; one "
                    "emotion near or above 0.5: the references may all carry it")
    warnings: list[str] | None = Field(None, description=(
        "present only when there are some: reference clips skipped (not audio, too long, "
        "no speech...), fewer than 16 usable references, references that sound mostly "
        "like one emotion"))


class PredictResponse(BaseModel):
    """The prediction document, schema ``emovox/data/schema/prediction-v1.json`` (the same
    fields as ``emovox predict --json``)."""

    model_config = ConfigDict(protected_namespaces=())
    schema_version: Literal["1"]
    source: str = Field(description="the upload's file name")
    status: Status = Field(description=(
        "ok; uncertain: top calibrated probability below 0.5 (label and probabilities still "
        "given); no_speech: no emotion (label, probabilities, arousal, valence are null)"))
    reason: NoSpeechReason | None = Field(description="why no_speech: silence, steady_sound, "
                                          "pure_tone, not_voiced, too_short (null otherwise)")
    reason_message: str | None
    label: Emotion | None = Field(description="the most probable of the eight emotions")
    confidence: float | None = Field(description="its calibrated probability, 0-1")
    confidence_level: Literal["high", "medium", "low"] | None = Field(
        description="high >= 0.70, medium 0.50-0.70, low < 0.50")
    probabilities: Probabilities | None = Field(description=(
        "calibrated probability of every label of the model (null for no_speech)"))
    arousal: float | None = Field(description="derived from the probabilities, in [-1, 1]")
    valence: float | None = Field(description="derived from the probabilities, in [-1, 1]")
    derived: list[str]
    derived_note: str
    duration: float = Field(description="seconds of audio")
    speech_seconds: float = Field(description="seconds of detected speech")
    n_windows: int = Field(description="windows the model classified (0 for no_speech)")
    evidence: list[Evidence] = Field(description="the windows behind the answer")
    model_id: str | None
    adaptation: AdaptationRecord | None = Field(None, description=(
        "only when reference clips were sent: the answer is adapted to their speaker"))
    warnings: list[str] | None = Field(None, description=(
        "only when there are some: what the decoder noticed about the upload (a WAV cut "
        "short, near-silence, several audio tracks, mains hum)"))


class Segment(BaseModel):
    kind: Literal["speech", "gap"] = Field(description="a classified window, or a gap")
    start: float
    end: float
    label: Emotion | None = Field(description="an emotion (null for a gap)")
    confidence: float | None
    probabilities: Probabilities | None
    arousal: float | None
    valence: float | None
    status: Literal["ok", "uncertain"] | None = Field(description=(  # always sent
        "ok, or uncertain when the confidence is under 0.5 (the CLI table's '?'); null for "
        "a gap"))


class TimelineSummary(BaseModel):
    status: Status
    reason: NoSpeechReason | None = Field(description="why no_speech (null otherwise)")
    dominant: Emotion | None = Field(description="top of the speech-time-weighted mean")
    speech_seconds: float
    gap_seconds: float
    n_windows: int
    share: Probabilities = Field(description="share of speech time per window label")
    mean_probabilities: Probabilities


class TimelineResponse(BaseModel):
    """The timeline document, schema ``emovox/data/schema/timeline-v1.json``."""

    model_config = ConfigDict(protected_namespaces=())
    schema_version: Literal["1"]
    source: str
    model_id: str | None
    duration: float
    window: float
    hop: float
    summary: TimelineSummary
    segments: list[Segment]
    adaptation: AdaptationRecord | None = Field(None, description=(
        "only with adapt=self: the windows are adapted to the recording's own speaker"))
    warnings: list[str] | None = Field(None, description=(
        "only when there are some: what the container says about the upload (a WAV cut "
        "short, several audio tracks of which only the first was read) and mains hum"))


class Limits(BaseModel):
    max_upload_bytes: int = Field(description="largest accepted upload (413 above)")
    max_duration_s: float = Field(description="longest accepted recording (422 above)")


class ModelCard(BaseModel):
    """Every field ``GET /v1/model`` sends (6 of its 17 were declared: API QA, stop 35)."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())
    model_id: str
    name: str | None = Field(None, description="the architecture or ensemble")
    backend: str = Field(description="the inference engine in use: onnx or torch")
    labels: list[Emotion] = Field(description="the emotions the model answers, in order")
    temperature: float = Field(description="the calibration temperature")
    calibration: dict[str, Any] | None = Field(
        None, description="how the temperature was fitted (source runs, ECE per corpus)")
    sr: int = Field(description="the sample rate the model reads (Hz)")
    n_frames: int | None = Field(None, description="frames per window")
    trim: bool | None = Field(None, description="whether silence is trimmed first")
    package_version: str | None = None
    n_params: int | None = Field(None, description="learned numbers")
    trained_on: dict[str, Any] | None = Field(
        None, description="clips, speakers, corpora and emotions of the training data")
    metrics: dict[str, Any] | None = None
    derived_note: str | None = Field(None, description="how arousal/valence are derived")
    cross_validation: dict[str, Any] | None = Field(
        description="speaker-independent CV: protocol, summary, pooled (confusion, recall)")
    model_card_markdown: str | None
    limits: Limits


class Health(BaseModel):
    model_config = ConfigDict(protected_namespaces=())
    status: Literal["ok", "unavailable"]
    model_loaded: bool
    model_id: str | None = None
    version: str
    detail: str | None = None


E = ErrorCode
_UPLOAD = (E.HTTP_ERROR, E.UNAUTHORIZED, E.UPLOAD_STALLED, E.UPLOAD_TOO_LARGE,
           E.UNSUPPORTED_MEDIA_TYPE, E.NOT_AUDIO, E.UNSUPPORTED_CODEC, E.AUDIO_TOO_LONG,
           E.BAD_AUDIO, E.INVALID_REQUEST, E.INCOMPLETE_UPLOAD)
_LAST = (E.INTERNAL_ERROR, E.MODEL_UNAVAILABLE, E.SHUTTING_DOWN, E.SERVER_BUSY,
         E.DEADLINE_EXCEEDED)
#: the error codes each route can send, with what a code means there when its general
#: meaning is not exact (a route's OpenAPI ``responses`` are made of them: the 422 of
#: ``GET /v1/model`` spoke of audio too long or damaged, which it never reads: stop 51)
ROUTE_ERRORS: dict[tuple[str, str], tuple[ErrorCode | tuple[ErrorCode, str], ...]] = {
    ("post", "/v1/predict"): (*_UPLOAD, E.TOO_MANY_REFERENCES, E.TOO_FEW_REFERENCES,
                              E.ADAPTATION_FAILED, *_LAST),
    ("post", "/v1/timeline"): (*_UPLOAD, (E.TOO_MANY_REFERENCES, f"more than {1 + MAX_REFERENCES} "
                                          "file parts (this route reads one, 'file')"), *_LAST),
    ("get", "/v1/model"): (E.UNAUTHORIZED, (E.INVALID_REQUEST, "a query parameter: this route "
                                            "reads none"), E.INTERNAL_ERROR,
                           E.MODEL_UNAVAILABLE),
}


def _description(entries: list[tuple[ErrorCode, str]]) -> str:
    return "; ".join(f"`{code.value}`: {meaning}" for code, meaning in entries)


def error_responses(codes: tuple[ErrorCode | tuple[ErrorCode, str], ...]
                    ) -> dict[int | str, dict[str, Any]]:
    """FastAPI ``responses`` for ``codes``: one per status, its description naming each code
    of that status and its meaning (a code's own, or the one given beside it)."""
    by_status: dict[int, list[tuple[ErrorCode, str]]] = {}
    for entry in codes:
        code, meaning = entry if isinstance(entry, tuple) else (entry, entry.meaning)
        by_status.setdefault(code.status, []).append((code, meaning))
    return {status: {"model": ErrorBody, "description": _description(by_status[status])}
            for status in sorted(by_status)}
