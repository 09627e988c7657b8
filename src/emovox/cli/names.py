"""Names a user types: the bundled models (what ``--model`` of predict/batch/timeline/listen/
serve/app takes, and their deprecated old names), the registered architectures (what
``evaluate``/``train --model`` take), and the "did you mean" of a name that is neither.

Light by design: reads the bundled ``model.json`` files as plain JSON and the model
registry (:mod:`emovox.models`, which loads neither torch nor scikit-learn), so
``emovox models`` answers in well under a second.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from emovox.artifact.paths import (
    BUNDLED_MODELS,
    DEPRECATED_MODEL_NAMES,
    MODEL_JSON,
    RETIRED_MODELS,
    deprecated_name_note,
    is_bundled_name,
    retired_model_message,
)

#: How far a typo may be from a valid name to be suggested (difflib ratio).
SUGGEST_CUTOFF = 0.5


@dataclass(frozen=True)
class BundledModel:
    """One model shipped inside the package, as ``emovox models`` lists it."""

    name: str
    architecture: str
    kind: str
    n_params: int | None
    ua_mean: float | None
    ua_std: float | None
    protocol: str
    trained_on: str
    #: further CV runs of the same recipe the model card shows: ``(protocol, UA mean, std)``
    also: tuple[tuple[str, float, float], ...] = ()


def _bundled_folder(name: str) -> Path:
    return Path(str(resources.files("emovox"))) / BUNDLED_MODELS[name]


def _trained_on(doc: dict[str, Any]) -> str:
    t = doc.get("trained_on") or {}
    if not t:
        return ""
    corpus = t.get("corpus", "?")
    return f"{t.get('clips', '?')} clips, {len(t.get('speakers', []))} speakers ({corpus})"


def read_bundled(name: str) -> BundledModel | None:
    """What the bundled model ``name``'s ``model.json`` says (None if not installed)."""
    path = _bundled_folder(name) / MODEL_JSON
    if not path.is_file():
        return None
    doc = json.loads(path.read_text(encoding="utf-8"))
    metrics = doc.get("metrics") or doc.get("cross_validation") or {}
    ua = (metrics.get("summary") or {}).get("ua") or {}
    also = []
    for m in metrics.get("also") or []:
        a = (m.get("summary") or {}).get("ua") or {}
        if a.get("mean") is not None:
            also.append((str(m.get("protocol", "")), float(a["mean"]), float(a.get("std") or 0)))
    return BundledModel(
        name=name, architecture=str(doc.get("name", "?")), kind=str(doc.get("kind", "?")),
        n_params=doc.get("n_params"), ua_mean=ua.get("mean"), ua_std=ua.get("std"),
        protocol=str(metrics.get("protocol", "")), trained_on=_trained_on(doc),
        also=tuple(also),
    )


def bundled_models() -> list[BundledModel]:
    """Every bundled model that is installed, in :data:`BUNDLED_MODELS` order."""
    found = (read_bundled(n) for n in BUNDLED_MODELS)
    return [b for b in found if b is not None]


def did_you_mean(name: str, valid: Iterable[str], old_names: Mapping[str, str] | None = None,
                 ) -> str:
    """``" Did you mean 'x'?"`` (or 'x' or 'y') when a valid name is close, else ``""``.
    A name close to one of ``old_names`` (old -> current) suggests the current name."""
    old_names = old_names or {}
    close = difflib.get_close_matches(name, [*valid, *old_names], n=2, cutoff=SUGGEST_CUTOFF)
    shown: dict[str, str] = {}  # current name -> how it is shown
    for c in close:
        current = old_names.get(c, c)
        shown.setdefault(current, f"'{current}'" + (f" (formerly '{c}')" if c != current else ""))
    if not shown:
        return ""
    return " Did you mean " + " or ".join(shown.values()) + "?"


def renamed_model(model: str) -> tuple[str, str] | None:
    """``(current name, deprecation warning)`` when ``--model model`` is the old name of a
    bundled model (and no folder of that name exists), else None."""
    note = deprecated_name_note(model)
    if note is None or Path(model).exists():
        return None
    return DEPRECATED_MODEL_NAMES[model], note


def unknown_artifact_message(model: str) -> str | None:
    """Why ``--model model`` of a prediction command names nothing, or None when it is a
    bundled name (current or old) or an existing path."""
    if (retired := retired_model_message(model)) is not None:
        return retired
    if is_bundled_name(model) or Path(model).exists():
        return None
    from emovox.models import MODELS

    bundled = ", ".join(BUNDLED_MODELS)
    if Path(model).name != model or model.startswith("."):  # a path, not a name
        return f"model folder {model} does not exist (bundled models: {bundled})"
    if model in MODELS:
        return (f"'{model}' is an architecture (what `evaluate --model` and `train --model` "
                f"take), not a trained model; --model takes a bundled model ({bundled}) or "
                "a trained model folder. See `emovox models`.")
    suggest = did_you_mean(model, BUNDLED_MODELS, DEPRECATED_MODEL_NAMES)
    return (f"unknown model '{model}': neither a bundled model ({bundled}) nor an existing "
            f"model folder.{suggest} See `emovox models`.")


def unknown_architecture_message(model: str) -> str | None:
    """Why ``evaluate/train --model model`` names no registered architecture, or None."""
    from emovox.models import MODELS

    if model in MODELS:
        return None
    if model in RETIRED_MODELS:
        return (f"'{model}' was a bundled trained model (no longer bundled, see `emovox "
                f"models`); --model here takes an architecture: {', '.join(MODELS)}.")
    if is_bundled_name(model):
        return (f"'{model}' is a bundled trained model (what `predict --model` takes); "
                f"--model here takes an architecture: {', '.join(MODELS)}.")
    return (f"unknown architecture '{model}'.{did_you_mean(model, MODELS)} "
            f"Valid: {', '.join(MODELS)} (see `emovox models`).")
