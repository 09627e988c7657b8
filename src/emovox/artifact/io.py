"""Reading and writing model folders: ``model.json`` (:class:`ArtifactMeta`) plus the weights
as ``weights.safetensors`` (networks; normaliser and front-end arrays included) or
``model.skops`` (scikit-learn). No pickle anywhere.

* :func:`read_artifact` / :func:`read_meta` are the one reader: every failure (missing file,
  JSON that is not an object or nested too deeply, a bad field, a truncated safetensors or
  skops file) is an :class:`ArtifactError` naming the file.
* :func:`write_artifact` is the one writer of a new folder (atomic: a temporary sibling renamed
  into place); :func:`update_artifact` rewrites ``model.json`` (and optionally the weights) of
  an existing one atomically. Both serialise through :meth:`ArtifactMeta.to_json`.
* An existing path is replaced only with ``force=True`` **and** only when it is an emovox
  model folder (a readable ``model.json``); any other file or folder is refused untouched.
* ``weights.safetensors``' header records the SHA-256 of ``model.json``'s network section
  (:mod:`emovox.artifact.network`); the reader refuses a section edited since, for both
  backends alike.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emovox.artifact.dest import keep_unsaved, run_holding
from emovox.artifact.meta import (
    ArtifactError,
    ArtifactMeta,
    ModelKind,
    json_default,
    parse_meta,
)
from emovox.artifact.network import check_network, network_digest, weights_metadata
from emovox.artifact.paths import (
    FOLDER_FILES,
    MAX_META_BYTES,
    MODEL_FILES,
    MODEL_JSON,
    ONNX_FILE,
    SKOPS_FILE,
    WEIGHTS_FILE,
    check_model_file_size,
    file_digest,
)
from emovox.errors import ConfigError
from emovox.fileio import atomic_path, mode_of, remove_stale, swap_folder
from emovox.preprocess import Normaliser, Preprocess

log = logging.getLogger(__name__)

__all__ = [
    "Artifact",
    "check_replaceable",
    "foreign_files",
    "keep_modes",
    "make_readable",
    "model_file_mode",
    "read_artifact",
    "read_meta",
    "read_tensors",
    "replace_folder",
    "update_artifact",
    "write_artifact",
    "write_json_atomic",
]


@dataclass(frozen=True, eq=False)
class Artifact:
    """A model folder as read: ``meta`` (its ``preprocess`` with the normaliser and stored
    front end attached), the network tensors (``net.*``; torch) or the pipeline (sklearn)."""

    path: Path
    meta: ArtifactMeta
    tensors: dict[str, np.ndarray]
    pipeline: Any = None


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------


def read_meta(path: str | Path) -> ArtifactMeta:
    """Validated ``model.json`` of the folder ``path`` (arrays not attached)."""
    path = Path(path)
    f = path / MODEL_JSON
    if not f.is_file():  # what was given instead, said (own-data QA, stop 39)
        what = ("no such folder" if not path.exists() else
                f"a file: give the folder that holds it, {path.parent}" if path.name ==
                MODEL_JSON else "a file, not a folder" if not path.is_dir() else
                f"no {MODEL_JSON}")
        raise ArtifactError(f"{path} is not an emovox model folder ({what})")
    try:
        with f.open("rb") as fh:  # read bounded: a huge file is refused, not loaded (stop 35)
            raw = fh.read(MAX_META_BYTES + 1)
        if len(raw) > MAX_META_BYTES:
            raise ArtifactError(f"{f}: larger than {MAX_META_BYTES:,} bytes: not a "
                                "model.json this package wrote")
        doc = json.loads(raw.decode("utf-8"))
        json.dumps(doc, ensure_ascii=False).encode("utf-8")  # "\ud800" escapes: no text
    except RecursionError:
        raise ArtifactError(f"{f}: JSON nested too deeply") from None
    except OSError as exc:  # was "not valid JSON ([Errno 13] ...)" (QA, stop 38)
        raise ArtifactError(f"{f}: cannot be read ({exc.strerror or _one_line(exc)})") from None
    except ValueError as exc:
        raise ArtifactError(f"{f}: not valid JSON ({_one_line(exc)})") from None
    return parse_meta(doc, f)


def read_tensors(path: str | Path) -> dict[str, np.ndarray]:
    """All arrays of ``weights.safetensors`` (NumPy)."""
    return _read_weights(Path(path))[0]


def _read_weights(path: Path, *, arrays: bool = True
                  ) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """All arrays of the folder's ``weights.safetensors`` (none unless ``arrays``) and its
    header metadata."""
    from safetensors import SafetensorError, safe_open

    f = path / WEIGHTS_FILE
    if not f.is_file():
        raise ArtifactError(f"{f}: is missing")
    try:
        check_model_file_size(f)
        with open(f, "rb"):  # permissions: safetensors says "No such file" (QA, stop 38)
            pass
        with safe_open(str(f), framework="numpy") as fh:
            return ({k: fh.get_tensor(k) for k in fh.keys()} if arrays else {},
                    dict(fh.metadata() or {}))
    except OSError as exc:
        raise ArtifactError(f"{f}: cannot be read ({exc.strerror or _one_line(exc)})") from None
    except (SafetensorError, ValueError) as exc:
        raise ArtifactError(f"{f}: unreadable ({_one_line(exc)})") from None


def check_digests(path: Path, meta: ArtifactMeta, skip: tuple[str, ...] = ()) -> None:
    """Raise :class:`ArtifactError` when a model file differs from the one ``model.json``
    was written with (``digests``): another model's ``model.onnx`` copied in answered under
    this one's name, labels and calibration (QA, stop 38). ``skip``: files about to be
    replaced (``export`` rewrites a stale graph)."""
    for name, recorded in meta.digests.items():
        f = path / name
        if name not in MODEL_FILES or name in skip or not f.is_file():
            continue
        check_model_file_size(f)
        try:
            digest = file_digest(f)
        except OSError as exc:
            raise ArtifactError(f"{f}: cannot be read ({exc.strerror or _one_line(exc)})"
                                ) from None
        if digest != recorded:
            raise ArtifactError(f"{f}: not the file this {MODEL_JSON} was written with (its "
                                f"SHA-256 differs from the one {MODEL_JSON} records); "
                                "re-train or re-export the model")


def read_artifact(path: str | Path, *, skip: tuple[str, ...] = ()) -> Artifact:
    """Read and validate the model folder ``path`` (``skip``: model files not checked, as
    :func:`check_digests`)."""
    from emovox.artifact.trust import load_pipeline

    path = Path(path)
    meta = read_meta(path)
    check_digests(path, meta, skip)
    if meta.kind is ModelKind.SKLEARN:
        return Artifact(path, meta, {}, load_pipeline(path / SKOPS_FILE))
    tensors, header = _read_weights(path)
    f = path / WEIGHTS_FILE
    try:
        norm = Normaliser.from_arrays(tensors)
    except KeyError:
        raise ArtifactError(f"{f}: norm.mean / norm.std are missing") from None
    pre = meta.preprocess.replace(norm=norm)
    stored = {"frontend.mel_basis", "frontend.window"} <= set(tensors)
    if meta.preprocess.feature == "logmel" and stored and meta.preprocess.frontend_params:
        from emovox.features.frontend import LogMelFrontEnd

        try:
            pre = pre.replace(frontend=LogMelFrontEnd.from_saved(
                meta.preprocess.frontend_params or {}, tensors))
        except (KeyError, ValueError, TypeError) as exc:
            raise ArtifactError(f"{path / MODEL_JSON}: field preprocess.frontend is bad "
                                f"({_one_line(exc)})") from None
    net = {k: v for k, v in tensors.items() if k.startswith("net.")}
    if not net:
        raise ArtifactError(f"{f}: holds no network weights (net.*)")
    _check_agree(path, meta, pre)
    check_network(path, meta, header)  # the same check for either backend (code review)
    return Artifact(path, meta.replace(preprocess=pre), net)


def _check_agree(path: Path, meta: ArtifactMeta, pre: Preprocess) -> None:
    """ArtifactError when fields every writer keeps equal disagree: a front end at another
    rate than the model's, ``n_frames`` other than the network's input length (100,000
    frames for a network trained on 256 cost 0.67 GB a window), normaliser statistics of
    another width (they broadcast silently): code review, stop 47."""
    shape = meta.network.input_shape if meta.network is not None else ()
    fe = pre.frontend
    why = None
    if fe is not None and fe.sr != pre.sr:
        why = f"preprocess.frontend.sr ({fe.sr}) is not preprocess.sr ({pre.sr})"
    elif len(shape) == 2 and pre.n_frames and pre.n_frames != shape[0]:
        why = f"preprocess.n_frames ({pre.n_frames}) is not the network's input ({shape[0]})"
    elif shape and pre.norm is not None and not (
            pre.norm.mean.shape == pre.norm.std.shape == (shape[-1],)):
        why = (f"the normaliser's statistics {pre.norm.mean.shape} do not fit the network's "
               f"input width ({shape[-1]})")
    if why:
        raise ArtifactError(f"{path / MODEL_JSON}: {why}; re-train or re-export the model")


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------


def check_replaceable(out: Path, force: bool) -> None:
    """Raise unless ``out`` may be (over)written: absent or an empty folder, or ``force``
    and an emovox model; never in a run's ``models/`` (:func:`~emovox.artifact.dest.
    run_holding`: ConfigError)."""
    out = Path(out)
    if (run := run_holding(out)) is not None:  # a fold model passed as any (audit, stop 56)
        raise ConfigError(f"{out} is in the models/ folder of the run {run}: its fold models "
                          "are what the run's figures were computed from (emovox rescore "
                          "re-reads them); choose another --out")
    _check_existing(out, force)


def _check_existing(out: Path, force: bool) -> None:
    """The part of :func:`check_replaceable` that may change while a model is built,
    checked again as it is moved in (:func:`replace_folder`)."""
    if not (out.exists() or out.is_symlink()):
        return
    if out.is_dir() and not out.is_symlink() and not any(out.iterdir()):
        return  # an empty folder, as evaluate takes one (it was refused: audit, stop 56)
    if not force:
        raise FileExistsError(f"{out} already exists; pass --force to overwrite it")
    if out.is_symlink() or not out.is_dir():
        raise FileExistsError(f"{out} exists and is not an emovox model folder; "
                              "--force only replaces model folders")
    try:
        read_meta(out)
    except ArtifactError as exc:  # its message names the folder once (said twice: QA, 39)
        raise FileExistsError(f"{exc}; --force only replaces model folders") from None
    foreign = foreign_files(out)
    if foreign:
        raise FileExistsError(
            f"{out} is an emovox model folder but also holds {', '.join(foreign[:5])}"
            f"{' ...' if len(foreign) > 5 else ''}, which emovox did not write; refusing to "
            "replace it (choose another --out, or move those files first)")


def foreign_files(folder: Path) -> list[str]:
    """The names in the model folder ``folder`` that emovox did not write, sorted."""
    return sorted(p.name for p in Path(folder).iterdir() if not _ours(p))


def _ours(p: Path) -> bool:
    """A file emovox writes in a model folder (:data:`FOLDER_FILES`), the temporary file
    of an interrupted write of one (``.model.json.abc123.tmp``), or a file manager's
    ``.DS_Store``: what ``--force`` may replace (QA re-check, stop 38)."""
    if not p.is_file() or p.is_symlink() and p.name not in FOLDER_FILES:
        return False
    return p.name in FOLDER_FILES or p.name == ".DS_Store" or any(
        p.name.startswith(f".{f}.") and p.name.endswith(".tmp") for f in FOLDER_FILES)


def replace_folder(stage: Path, out: Path, *, force: bool, keep: bool = False) -> Path:
    """Move the finished folder ``stage`` to ``out`` (see :func:`check_replaceable`; where
    ``out`` lies is the caller's to check before the work: ``export`` rewrites a run's fold
    model as itself, its weights and probabilities unchanged). ``keep``: refused now,
    ``stage`` is kept beside ``out`` (:func:`~emovox.artifact.dest.keep_unsaved`), the error
    naming it: ``train`` deleted the model it had trained (audit, stop 56)."""
    out = Path(out)
    try:
        _check_existing(out, force)
    except FileExistsError as exc:
        if not keep:
            raise
        make_readable(stage)
        kept = keep_unsaved(stage, out)
        raise FileExistsError(f"{exc}; the finished model is in {kept}") from None
    out.parent.mkdir(parents=True, exist_ok=True)
    folder = mode_of(out) if out.is_dir() else None
    if folder is not None:  # a replaced folder keeps its permissions (0700 stayed private
        keep_modes(out, stage)  # only until calibrate made it 0755: code review, stop 48)
    else:
        make_readable(stage)
    swap_folder(stage, out)
    if folder is not None:  # after the swap: a read-only stage (0555) cannot be moved
        os.chmod(out, folder)
    return out


def write_artifact(
    out: str | Path, meta: ArtifactMeta, *, tensors: dict[str, np.ndarray] | None = None,
    pipeline: Any = None, force: bool = False,
) -> Path:
    """Write a new model folder ``out``: ``model.json`` from ``meta``; for torch ``tensors``
    (``net.*``) plus the normaliser / front-end arrays of ``meta.preprocess`` to
    ``weights.safetensors``; for sklearn ``pipeline`` to ``model.skops``."""
    out = Path(out)
    check_replaceable(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(out.parent, out.name)  # what a killed writer left (stop 32)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-{os.getpid()}-"))
    try:
        stage = tmp / out.name
        stage.mkdir()
        if meta.kind is ModelKind.TORCH:
            _save_tensors(stage / WEIGHTS_FILE, _all_tensors(meta, tensors or {}),
                          weights_metadata(meta))
        else:
            import skops.io as sio

            sio.dump(pipeline, stage / SKOPS_FILE)
        _write_meta(stage, meta)
        replace_folder(stage, out, force=force)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def update_artifact(path: str | Path, meta: ArtifactMeta, *,
                    tensors: dict[str, np.ndarray] | None = None,
                    written: tuple[str, ...] = ()) -> Path:
    """Rewrite ``model.json`` of an existing folder from ``meta`` (and, with ``tensors``,
    ``weights.safetensors`` with those ``net.*`` arrays and the arrays of
    ``meta.preprocess``), each atomically, the weights first.

    The model files not rewritten here (nor named in ``written``: just written by the
    caller) must still be those the folder's ``model.json`` records: their digests are
    recomputed, and a swapped or damaged file would otherwise be recorded as the model's
    (``calibrate`` did so: QA, stop 40).

    The network section is the folder's own (the weights and ``model.onnx`` were made for
    it: ValueError for another), and is checked against the digest the weights' header
    records (:mod:`emovox.artifact.network`): a section edited by hand since is refused, not
    recorded as the model's; weights kept from a writer that recorded none are rewritten
    with the same arrays and the digest."""
    path = Path(path)
    old = read_meta(path)
    if _built_from(old) != _built_from(meta):
        raise ValueError(f"{path}: update_artifact keeps the network section (the weights and "
                         "model.onnx were made for it); write a new model folder instead")
    kept = dict(old.digests)
    for name in (*written, *((WEIGHTS_FILE,) if tensors is not None else ())):
        kept.pop(name, None)
    check_digests(path, meta.replace(digests=kept))
    arrays = None if tensors is None else _all_tensors(meta, tensors)
    if meta.kind is ModelKind.TORCH and WEIGHTS_FILE not in written:
        header = _read_weights(path, arrays=False)[1]  # the section edited by hand since
        check_network(path, old, header)  # it was saved is not recorded as the model's
        if arrays is None and header != (weights_metadata(meta) or {}):  # none recorded:
            arrays = read_tensors(path)  # the same arrays, with it
    if arrays is not None:
        with atomic_path(path / WEIGHTS_FILE, mode=model_file_mode(path / WEIGHTS_FILE)) as tmp:
            _save_tensors(tmp, arrays, weights_metadata(meta))
    _write_meta(path, meta)
    return path


def _built_from(meta: ArtifactMeta) -> str | None:
    """The digest of what the network of ``meta`` is built from (None: no network)."""
    return None if meta.network is None else network_digest(meta.network)


def _all_tensors(meta: ArtifactMeta, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {k: v for k, v in tensors.items() if k.startswith("net.")}
    pre = meta.preprocess
    if pre.norm is None:
        raise ValueError("a network artifact needs the normaliser statistics")
    out.update(pre.norm.arrays())
    if pre.frontend is not None:
        out.update(pre.frontend.arrays())
    return out


def _save_tensors(file: Path, tensors: dict[str, np.ndarray],
                  metadata: dict[str, str] | None = None) -> None:
    """Write ``tensors`` to the safetensors ``file``, with ``metadata`` in its header
    (:func:`~emovox.artifact.network.weights_metadata`)."""
    from safetensors import SafetensorError
    from safetensors.numpy import save_file

    try:
        save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(file),
                  metadata=metadata)
    except SafetensorError as exc:  # no OSError: a full disk was a traceback (audit, 56)
        why = _one_line(exc)
        code = re.search(r"\(os error (\d+)\)", why)
        if code is None:
            raise OSError(f"{file}: cannot be written ({why})") from None
        raise OSError(int(code[1]), why[:code.start()].strip() or why, str(file)) from None


def _write_meta(folder: Path, meta: ArtifactMeta) -> None:
    """The one writer of ``model.json``: digests of the model files, then the document. A
    ``model.onnx`` is the model's only once exported for it (``meta.onnx``): another
    model's graph copied into a folder without one was recorded as its own by
    ``calibrate`` (code review, stop 46)."""
    files = (WEIGHTS_FILE, SKOPS_FILE, *((ONNX_FILE,) if meta.onnx is not None else ()))
    digests = {name: file_digest(folder / name) for name in files if (folder / name).is_file()}
    write_json_atomic(folder / MODEL_JSON, meta.replace(digests=digests).to_json())


def make_readable(folder: Path) -> None:
    """mkdtemp creates 0700 folders: open the artifact to other users (0755 / 0644), so a
    service running under another account can load it."""
    os.chmod(folder, 0o755)
    for p in Path(folder).rglob("*"):
        os.chmod(p, 0o755 if p.is_dir() else 0o644)


def keep_modes(old: Path, stage: Path) -> None:
    """Give the files of the folder ``stage`` that replaces ``old`` the permission bits of
    their namesakes in ``old``, a new file those of ``old`` without execute bits (the
    folder's own bits are the caller's to set once it has moved)."""
    folder = mode_of(old)
    for p in Path(stage).iterdir():
        was = old / p.name
        keep = was.is_file() and not was.is_symlink()
        os.chmod(p, mode_of(was) if keep else folder & 0o666)


def model_file_mode(path: Path) -> int:
    """The permission bits a rewritten file of a model folder keeps: its own, or for a new
    one its folder's ``model.json``'s (0644 when there is none)."""
    for p in (path, path.parent / MODEL_JSON):
        if p.is_file():
            return mode_of(p)
    return 0o644


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON to a temporary sibling, then rename it over ``path`` (which keeps its
    permission bits: :func:`model_file_mode`)."""
    with atomic_path(path, mode=model_file_mode(path)) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=json_default))


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]
