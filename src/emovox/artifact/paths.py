"""Where models are: the bundled models by name, file names inside a model folder, and
the digests that identify a model (``model_id``)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
from importlib import resources
from pathlib import Path

import numpy as np

from emovox.artifact.meta import ArtifactError, ArtifactMeta, json_default
from emovox.fileio import file_sha256

log = logging.getLogger(__name__)

__all__ = [
    "BUNDLED_MODELS",
    "CARD_FILE",
    "DEFAULT_MODEL_DIR",
    "DEPRECATED_MODEL_NAMES",
    "FOLDER_FILES",
    "MAX_MODEL_FILE_BYTES",
    "MODEL_FILES",
    "MODEL_JSON",
    "ONNX_FILE",
    "RAVDESS_MODEL_DIR",
    "RETIRED_MODELS",
    "SKOPS_FILE",
    "WEIGHTS_FILE",
    "bundled_name",
    "check_model_file_size",
    "contained_file",
    "packaged_model_path",
    "read_contained_text",
    "default_model_path",
    "deprecated_name_note",
    "file_digest",
    "is_bundled_name",
    "model_digest",
    "model_folder",
    "resolve_model_path",
    "retired_model_message",
    "weights_digest",
]

MODEL_JSON = "model.json"
#: a model.json larger than this is refused unread (ours: 7-44 KB; stop 35)
MAX_META_BYTES = 16 * 2**20
WEIGHTS_FILE = "weights.safetensors"
ONNX_FILE = "model.onnx"
SKOPS_FILE = "model.skops"
#: every file a predictor may read besides model.json
MODEL_FILES: tuple[str, ...] = (WEIGHTS_FILE, ONNX_FILE, SKOPS_FILE)
#: a weights, ONNX or skops file larger than this (a skops archive: whose members unpack to
#: more) is refused before it is read (ours: 2.7-6.3 MB; a sparse file of 4 KB on disk
#: declaring a 6 GiB tensor took 12.6 GB of memory, a 3 MB zip bomb 6.7 GB: QA, stop 38)
MAX_MODEL_FILE_BYTES = 512 * 2**20
#: the model card emovox writes beside ``model.json``
CARD_FILE = "MODEL_CARD.md"
#: every file emovox writes in a model folder: ``--force`` replaces a folder holding only
#: these (a user's notes and recordings kept inside one were deleted: QA, stop 38)
FOLDER_FILES: tuple[str, ...] = (MODEL_JSON, *MODEL_FILES, CARD_FILE)

#: the bundled default model, relative to the ``emovox`` package
DEFAULT_MODEL_DIR = "data/default_model"
#: the bundled RAVDESS-only model (the default until the three-corpus one), relative to the
#: ``emovox`` package
RAVDESS_MODEL_DIR = "data/ravdess_model"
#: Models shipped inside the package, by name: ``default`` (the CRNN + ECAPA + ResLSTM
#: ensemble trained on RAVDESS + EMOVO, calibrated on leave-one-corpus-out predictions) and
#: ``ravdess`` (CRNN + ECAPA on RAVDESS alone: the one with a speaker-independent RAVDESS
#: figure). Both: numpy front end + one ONNX graph, level invariant.
BUNDLED_MODELS: dict[str, str] = {
    "default": DEFAULT_MODEL_DIR,
    "ravdess": RAVDESS_MODEL_DIR,
}
#: Old names of bundled models, still accepted with a warning: old name -> current name.
DEPRECATED_MODEL_NAMES: dict[str, str] = {}
_COMPARE_RECIPE = (
    "no longer bundled with emovox: its cold start (6 s and 480 MB, openSMILE) is over the "
    "1.5 s and 400 MB a bundled model may take. Build it from its recipe: emovox train "
    "--data RAVDESS_FOLDER --model compare_lrcv --val-speakers 2 --out compare_model (needs "
    "pip install 'emovox[smile]'), then pass --model compare_model")
#: Names of models that were bundled once and are no longer: name -> why and how to build it.
#: ``compare`` (``compare_lrcv``: openSMILE ComParE functionals + logistic regression; called
#: ``accurate`` before that) was retired by issue 13 (speed).
RETIRED_MODELS: dict[str, str] = {"compare": _COMPARE_RECIPE, "accurate": _COMPARE_RECIPE}
_warned: set[str] = set()


def contained_file(folder: str | Path, name: str) -> Path:
    """``folder / name``, refused when it leads out of the folder or is not a regular file.

    For files served to clients as they are (``MODEL_CARD.md``: linked to
    ``/proc/self/environ`` it sent the server's environment to ``GET /v1/model``; security
    QA, stop 31). The weights, graph and ``model.json`` are parsed, never echoed, and may
    be links into a shared store (a Hugging Face cache, git-annex). A missing file is
    returned as it is (callers say what is missing).

    Raises:
        ArtifactError: the file leads outside ``folder`` or is not a regular file.
    """
    f = Path(folder) / name
    if not (f.is_symlink() or f.exists()):
        return f
    real = f.resolve()
    if not real.is_relative_to(Path(folder).resolve()) or not real.is_file():
        raise ArtifactError(f"{f}: leads outside the model folder or is not a regular file; "
                            "copy the file itself into the folder")
    return f


#: A model folder's MODEL_CARD.md larger than this is not served or shown (ours are a few KB).
MAX_CARD_BYTES = 256 * 1024


def read_contained_text(folder: str | Path, name: str, max_bytes: int) -> str | None:
    """The text of ``folder / name`` (None when missing), read only when the file actually
    opened is a regular file inside ``folder`` (on Linux, the open file's own path is checked
    after opening, so a link swapped between the check and the read is caught: second
    re-check, stop 31) and under ``max_bytes``. Hard links are allowed: making one to a file
    needs the right to read it (Linux's protected hard links), and installers hard-link
    package files from their caches.

    Raises:
        ArtifactError: outside the folder, not a regular file, or too large.
    """
    f = contained_file(folder, name)
    if not f.exists():
        return None
    home = Path(folder).resolve()
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(f, flags)
    with os.fdopen(fd, "rb") as fh:
        opened = Path(f"/proc/self/fd/{fd}")
        if opened.is_symlink():  # Linux: the file this descriptor really is
            real = Path(os.readlink(opened))
            if not real.is_relative_to(home):
                raise ArtifactError(f"{f}: leads outside the model folder (it changed while "
                                    "it was read)")
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise ArtifactError(f"{f}: is not a regular file")
        if st.st_size > max_bytes:
            raise ArtifactError(f"{f}: over {max_bytes // 1024} KB")
        return fh.read(max_bytes + 1)[:max_bytes].decode("utf-8", "replace")


def default_model_path() -> Path:
    """Folder of the bundled default model (it may not exist)."""
    return Path(str(resources.files("emovox"))) / DEFAULT_MODEL_DIR


def is_bundled_name(name: str | Path) -> bool:
    """Whether ``name`` is a bundled model name, current or deprecated (no warning)."""
    return str(name) in BUNDLED_MODELS or str(name) in DEPRECATED_MODEL_NAMES


def deprecated_name_note(name: str | Path) -> str | None:
    """The one-line deprecation warning of an old bundled model name, else None."""
    new = DEPRECATED_MODEL_NAMES.get(str(name))
    if new is None:
        return None
    return (f"model name '{name}' is deprecated: the same model is now called '{new}' "
            f"(use --model {new}); '{name}' will be removed in a later version")


def bundled_name(path: str | Path) -> str | None:
    """The current bundled model name ``path`` stands for, or None (not a bundled name, or
    a model folder of that name here, which wins). An old name is mapped to its new one and
    logged as deprecated once per process. A path of that name that is no model folder (a
    data folder called ``ravdess``) no longer hides the bundled model: it is said, once
    (it was "ravdess is not an emovox model folder": QA, stop 40)."""
    name = str(path)
    if not is_bundled_name(name) or (Path(name) / MODEL_JSON).is_file():
        return None
    if Path(name).exists() and f"shadow:{name}" not in _warned:
        _warned.add(f"shadow:{name}")
        log.warning("'%s' here is not a model folder (no %s): the bundled model '%s' "
                    "answers", name, MODEL_JSON, name)
    if (note := deprecated_name_note(name)) is not None:
        if name not in _warned:
            _warned.add(name)
            log.warning(note)
        return DEPRECATED_MODEL_NAMES[name]
    return name


def retired_model_message(name: str | Path | None) -> str | None:
    """Why ``name`` no longer names a model and how to build it, when it is a retired
    bundled name and no path of that name exists; else None."""
    if name is None or str(name) not in RETIRED_MODELS or Path(str(name)).exists():
        return None
    return f"model '{name}' is {RETIRED_MODELS[str(name)]}"


def packaged_model_path(name: str) -> Path:
    """The packaged folder of the current bundled model ``name``, whatever the current
    folder holds (a Dask worker must not take a folder of that name in its own folder)."""
    return Path(str(resources.files("emovox"))) / BUNDLED_MODELS[name]


def resolve_model_path(path: str | Path | None) -> Path:
    """``None`` or a bundled name (an old one included) -> the packaged folder; anything
    else is a path."""
    if path is None:
        return default_model_path()
    if (name := bundled_name(path)) is not None:
        return packaged_model_path(name)
    return Path(path)


def model_folder(path: str | Path) -> Path:
    """A bundled model name or a folder -> the absolute model folder.

    Raises:
        FileNotFoundError: the folder has no ``model.json``.
    """
    folder = resolve_model_path(path)
    if not (folder / MODEL_JSON).is_file():
        raise FileNotFoundError(f"{folder} is not a model folder (no model.json)")
    return folder.resolve()


def weights_digest(tensors: dict[str, np.ndarray]) -> str:
    """SHA-256 of the network weights and normalisation statistics (``net.*``, ``norm.*``),
    independent of what else the safetensors file holds (the front end, say). Recorded in
    the ONNX export so a ``model.onnx`` left over from other weights is detected."""
    h = hashlib.sha256()
    for k in sorted(tensors):
        if not k.startswith(("net.", "norm.")):
            continue
        a = np.ascontiguousarray(tensors[k])
        h.update(f"{k}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def check_model_file_size(file: Path, size: int | None = None) -> None:
    """Raise :class:`ArtifactError` when ``file`` (or what it unpacks to: ``size``) is
    larger than :data:`MAX_MODEL_FILE_BYTES`."""
    size = Path(file).stat().st_size if size is None else size
    if size > MAX_MODEL_FILE_BYTES:
        raise ArtifactError(f"{file}: {size / 2**20:,.0f} MB, more than the "
                            f"{MAX_MODEL_FILE_BYTES // 2**20} MB a model file may hold: not a "
                            "file this package wrote")


def file_digest(file: Path) -> str:
    """SHA-256 of a file's bytes."""
    return file_sha256(file)


def model_digest(folder: Path, meta: ArtifactMeta) -> str:
    """SHA-256 over everything a predictor uses: the prediction-relevant part of
    ``model.json`` (kind, labels, preprocessing, network, calibration) and the bytes of
    every model file present (weights, ``model.onnx``, ``model.skops``): the digest
    ``model.json`` records for it (``read_artifact`` has checked it against the bytes: not
    hashed twice), hashed when it records none."""
    h = hashlib.sha256()
    doc = json.dumps(meta.prediction_fields(), sort_keys=True, default=json_default)
    h.update(b"model.json|" + doc.encode())
    for name in MODEL_FILES:
        f = Path(folder) / name
        if f.is_file():
            h.update(f"|{name}|{meta.digests.get(name) or file_digest(f)}".encode())
    return h.hexdigest()
