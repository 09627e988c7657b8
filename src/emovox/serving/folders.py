"""Which folder a model name or path means, and the id a model answers with (moved out of
:mod:`emovox.serving.predictor`, stop 45)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from emovox.artifact import (
    ArtifactError,
    bundled_name,
    model_digest,
    read_artifact,
    resolve_model_path,
    retired_model_message,
)

__all__ = ["model_folder", "model_id", "model_id_of"]


def model_folder(path: str | Path | None) -> Path:
    """The folder of the model ``path`` names (a bundled name, ``None`` for the default, or
    a folder); :class:`ArtifactError` when there is none."""
    if (retired := retired_model_message(path)) is not None:
        raise ArtifactError(retired)
    if path is None or bundled_name(path) is not None:
        path = resolve_model_path(path)
        if not (path / "model.json").is_file():
            raise ArtifactError(
                "no bundled default model is installed with this version of emovox "
                f"(expected {path}); pass the folder of a trained model instead (an "
                "artifact saved by 'emovox evaluate --save-models' or save_model)"
            )
    path = Path(path)
    if not path.exists():
        raise ArtifactError(f"model folder {path} does not exist")
    return path


def model_id_of(path: str | Path | None) -> str:
    """The :attr:`Predictor.model_id` the model ``path`` would answer with, without loading
    it into a runner (what ``emovox batch`` compares with an output's rows)."""
    path = model_folder(path)
    return model_id(path, read_artifact(path).meta)


def model_id(path: Path, meta: Any) -> str:
    """``"<model name>-<first 12 hex of the digest of every file it uses>"``."""
    return f"{meta.name}-{model_digest(path, meta)[:12]}"
