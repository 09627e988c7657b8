"""The trained-model folder ("artifact") format: owns ``model.json`` (:class:`ArtifactMeta`,
typed and versioned), the one reader (:func:`read_artifact`, :func:`read_meta`), the one writer
(:func:`write_artifact`, :func:`update_artifact`; :func:`save_model` and
:func:`attach_inference` build on them), the skops type allow-list, model path resolution
and the bundled model names.

A folder holds ``model.json`` and the weights: ``weights.safetensors`` (networks, with the
normaliser and front-end arrays; ``model.onnx`` after export) or ``model.skops``
(scikit-learn). Nothing in a model folder can run code (no pickle; skops with an exact type
allow-list). The weights' header records the SHA-256 of ``model.json``'s network section
(:mod:`emovox.artifact.network`): an edited section is refused by both backends alike.

May import: emovox.preprocess, emovox.features (frontend, lazily), emovox.models (the
registry, lazily), emovox.labels, emovox.errors, emovox.fileio. Never training, serving,
experiment or anything above (checked by import-linter).
"""

from emovox.artifact.build import (
    attach_inference,
    preprocess_for_input,
    preprocess_for_model,
    save_model,
)
from emovox.artifact.io import (
    Artifact,
    check_replaceable,
    foreign_files,
    keep_modes,
    make_readable,
    model_file_mode,
    read_artifact,
    read_meta,
    read_tensors,
    replace_folder,
    update_artifact,
    write_artifact,
    write_json_atomic,
)
from emovox.artifact.meta import (
    SCHEMA,
    SCHEMA_VERSION,
    ArtifactError,
    ArtifactMeta,
    Calibration,
    ModelKind,
    NetworkState,
    OnnxInfo,
    json_default,
    parse_meta,
)
from emovox.artifact.network import NETWORK_DIGEST_KEY, network_digest
from emovox.artifact.paths import (
    BUNDLED_MODELS,
    DEFAULT_MODEL_DIR,
    DEPRECATED_MODEL_NAMES,
    MAX_CARD_BYTES,
    MODEL_JSON,
    ONNX_FILE,
    RETIRED_MODELS,
    SKOPS_FILE,
    WEIGHTS_FILE,
    bundled_name,
    contained_file,
    default_model_path,
    deprecated_name_note,
    file_digest,
    is_bundled_name,
    model_digest,
    model_folder,
    read_contained_text,
    resolve_model_path,
    retired_model_message,
    weights_digest,
)
from emovox.artifact.trust import ALLOWED_TYPES, load_pipeline, skops_types

__all__ = [
    "ALLOWED_TYPES",
    "BUNDLED_MODELS",
    "DEFAULT_MODEL_DIR",
    "DEPRECATED_MODEL_NAMES",
    "MODEL_JSON",
    "NETWORK_DIGEST_KEY",
    "ONNX_FILE",
    "RETIRED_MODELS",
    "SCHEMA",
    "SCHEMA_VERSION",
    "SKOPS_FILE",
    "WEIGHTS_FILE",
    "Artifact",
    "ArtifactError",
    "ArtifactMeta",
    "Calibration",
    "ModelKind",
    "NetworkState",
    "OnnxInfo",
    "attach_inference",
    "bundled_name",
    "contained_file",
    "MAX_CARD_BYTES",
    "read_contained_text",
    "check_replaceable",
    "foreign_files",
    "default_model_path",
    "deprecated_name_note",
    "file_digest",
    "is_bundled_name",
    "json_default",
    "load_pipeline",
    "keep_modes",
    "make_readable",
    "model_file_mode",
    "model_digest",
    "network_digest",
    "parse_meta",
    "preprocess_for_input",
    "preprocess_for_model",
    "read_artifact",
    "read_meta",
    "read_tensors",
    "replace_folder",
    "model_folder",
    "resolve_model_path",
    "retired_model_message",
    "save_model",
    "skops_types",
    "update_artifact",
    "weights_digest",
    "write_artifact",
    "write_json_atomic",
]
