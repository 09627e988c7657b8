"""The one versioned JSON format of emovox's answers, and the functions that build it.

Every producer (``emovox predict --json``, ``emovox batch`` JSON lines, ``emovox timeline
--json``, ``POST /v1/predict``, ``POST /v1/timeline``, the web app's downloads) writes the
documents built here, described by JSON Schema files shipped in the package
(``emovox/data/schema/prediction-v1.json`` and ``timeline-v1.json``), each with
``schema_version``::

    from emovox.serving.schema import prediction_document, validate_document
    doc = prediction_document(predictor.predict_file("clip.wav"))
    validate_document(doc, "prediction")            # needs the jsonschema package (dev extra)

Both documents may carry an optional ``adaptation`` object (speaker adaptation:
``predict --reference``, ``batch --speaker-from``, ``timeline --adapt self``;
:mod:`emovox.serving.adapt`); documents of answers that were not asked to adapt leave it out,
so version 1 documents written before it still validate.

:func:`validate_document` imports ``jsonschema`` lazily (it is a development dependency,
not needed to produce the documents).
"""

from __future__ import annotations

import json
from enum import Enum
from functools import lru_cache
from importlib import resources
from typing import Any

from emovox.serving.answer import SCHEMA_VERSION

__all__ = [
    "SCHEMA_VERSION",
    "DocumentKind",
    "failure_document",
    "load_schema",
    "prediction_document",
    "timeline_document",
    "validate_document",
]


class DocumentKind(str, Enum):
    PREDICTION = "prediction"
    TIMELINE = "timeline"


@lru_cache(maxsize=4)
def _schema_text(kind: DocumentKind) -> str:
    name = f"{kind.value}-v{SCHEMA_VERSION}.json"
    return resources.files("emovox.data").joinpath("schema", name).read_text(encoding="utf-8")


def load_schema(kind: DocumentKind | str) -> dict[str, Any]:
    """The JSON Schema (a fresh dict) of ``kind``: ``prediction`` or ``timeline``."""
    return json.loads(_schema_text(DocumentKind(kind)))


def prediction_document(prediction: Any) -> dict[str, Any]:
    """The prediction document of a :class:`~emovox.serving.answer.Prediction` (what the
    web app offers for download; the CLI and the API write the same fields)."""
    return prediction.to_dict()


def failure_document(source: str, error: str, **extra: Any) -> dict[str, Any]:
    """The record of an input that could not be read (CLI and batch output)."""
    return {"schema_version": SCHEMA_VERSION, "source": source, **extra, "error": error}


def timeline_document(timeline: Any, *, model_id: str | None = None) -> dict[str, Any]:
    """The timeline document of a :class:`~emovox.serving.timeline.Timeline`."""
    return timeline.to_dict(model_id=model_id)


def validate_document(doc: Any, kind: DocumentKind | str) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``doc`` is a valid ``kind`` document.

    Raises:
        ImportError: ``jsonschema`` is not installed (``pip install 'emovox[dev]'``).
    """
    try:
        import jsonschema
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("validating needs the jsonschema package: pip install jsonschema"
                          ) from exc
    schema = load_schema(kind)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    cls(schema).validate(doc)
