"""Response schemas of the REST API (they document the API in its OpenAPI spec)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ERRORS", "ErrorBody", "Health", "ModelCard", "PredictResponse", "Segment",
           "TimelineResponse"]


class ErrorBody(BaseModel):
    error: str = Field(description="machine-readable code, e.g. upload_too_large, not_audio")
    detail: str = Field(description="what is wrong and what to do about it")


class PredictResponse(BaseModel):
    emotion: str = Field(description="the most probable of the eight emotions")
    confidence: float = Field(description="its calibrated probability, 0-1")
    confidence_level: Literal["high", "medium", "low"] = Field(
        description="high >= 0.70, medium 0.50-0.70, low < 0.50")
    probabilities: dict[str, float]
    arousal: float = Field(description="derived from the probabilities, in [-1, 1]")
    valence: float = Field(description="derived from the probabilities, in [-1, 1]")
    derived: list[str]
    derived_note: str
    duration: float = Field(description="seconds of audio")
    silent: bool = Field(description="the clip is silent; the emotion is then meaningless")
    filename: str
    model_id: str


class Segment(BaseModel):
    start: float
    end: float
    label: str = Field(description="an emotion, or 'silence'")
    confidence: float
    probabilities: dict[str, float]
    arousal: float | None
    valence: float | None


class TimelineResponse(BaseModel):
    filename: str
    model_id: str
    duration: float
    window: float
    hop: float
    summary: dict[str, Any]
    segments: list[Segment]


class ModelCard(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=())
    model_id: str
    backend: str
    labels: list[str]
    temperature: float
    cross_validation: dict[str, Any] | None = Field(
        description="speaker-independent CV: protocol, summary, pooled (confusion, recall)")
    model_card_markdown: str | None


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
        (401, "missing or wrong API key (only when the server has one)"),
        (413, "upload larger than the size limit"),
        (415, "not audio, or an audio format that cannot be decoded here"),
        (422, "audio too long, empty or damaged; or invalid parameters"),
        (503, "the model is not available"),
    )
}
