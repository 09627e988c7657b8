"""Response schemas of the REST API (they document the API in its OpenAPI spec)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ERRORS", "AdaptationRecord", "ErrorBody", "Evidence", "Health", "ModelCard",
           "PredictResponse", "Segment", "TimelineResponse", "TimelineSummary"]


class ErrorBody(BaseModel):
    error: str = Field(description="machine-readable code, e.g. upload_too_large, not_audio")
    detail: str = Field(description="what is wrong and what to do about it")


Status = Literal["ok", "uncertain", "no_speech"]


class Evidence(BaseModel):
    start: float = Field(description="seconds")
    end: float = Field(description="seconds")
    weight: float = Field(description="share of the duration-weighted mean (weights sum to 1)")
    label: str = Field(description="the window's own top emotion")
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
    prior: dict[str, float] | None = Field(
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
    reason: str | None = Field(description="why no_speech: silence, steady_sound, pure_tone, "
                               "not_voiced, too_short (null otherwise)")
    reason_message: str | None
    label: str | None = Field(description="the most probable of the eight emotions")
    confidence: float | None = Field(description="its calibrated probability, 0-1")
    confidence_level: Literal["high", "medium", "low"] | None = Field(
        description="high >= 0.70, medium 0.50-0.70, low < 0.50")
    probabilities: dict[str, float] | None
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
    label: str | None = Field(description="an emotion (null for a gap)")
    confidence: float | None
    probabilities: dict[str, float] | None
    arousal: float | None
    valence: float | None
    status: Literal["ok", "uncertain"] | None = Field(None, description=(
        "ok, or uncertain when the confidence is under 0.5 (the CLI table's '?'); null for "
        "a gap"))


class TimelineSummary(BaseModel):
    status: Status
    reason: str | None
    dominant: str | None = Field(description="top of the speech-time-weighted mean")
    speech_seconds: float
    gap_seconds: float
    n_windows: int
    share: dict[str, float] = Field(description="share of speech time per window label")
    mean_probabilities: dict[str, float]


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
    labels: list[str]
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


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in (
        (400, "a malformed request body (http_error): multipart data the parser refuses, "
              "e.g. no boundary, a compressed body"),
        (401, "missing or wrong API key (only when the server has one)"),
        (413, "upload larger than the size limit"),
        (415, "not audio, or an audio format that cannot be decoded here; a raw (not "
              "multipart) request body (unsupported_media_type)"),
        (422, "audio too long, empty or damaged; invalid parameters; speaker adaptation "
              "impossible (too_many_references, also for more file parts than the clip and "
              "32 references; too_few_references); more than 8 form text fields or one "
              "over 64 KiB; a multipart body cut before its closing boundary "
              "(incomplete_upload)"),
        (408, "the upload stalled: nothing of its body arrived for 30 s, or it averaged "
              "under 32 KiB/s after its first 30 s (upload_stalled)"),
        (500, "an unexpected error while analysing the recording (internal_error)"),
        (503, "the model is not available; on the upload routes also a server that stopped "
              "before answering (shutting_down), or too many uploads waiting for a slot "
              "(server_busy, with Retry-After)"),
    )
}
