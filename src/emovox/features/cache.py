"""On-disk feature cache keyed by (audio content hash, feature config), and parallel
extraction over a list of files.

A corpus is decoded and featurised once: the key is the SHA-256 of the file's bytes
plus :func:`emovox.features.feature_key` of the feature name, its parameters and the
audio front-end settings, so renaming or moving files keeps the cache, and changing
any parameter misses it. The key also holds a digest of the source of the code that makes
the numbers (:func:`code_digest`: ``emovox.features`` and ``emovox.audio``, plus
``emovox.augment`` for augmented copies): an audit (stop 31) found ``prosody`` changed three
times without :data:`~emovox.features.FEATURE_VERSION` being bumped, its cached values no
longer what the code computes. Any edit there now misses the cache (a cache is only a
cache). The digest is taken when this module is imported, and the releases of the libraries
that make the numbers are in the key too (:mod:`emovox.features.codekey`; code review, stop
48: every key changed once then).

Extraction runs on worker processes (:mod:`emovox.features.workers`) that are started again
when one is killed. A clip longer than :data:`RESEARCH_MAX_DURATION_S` is an extraction
error (a 10-hour file in a corpus folder took about 15 GB per worker: code review, stop 48).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emovox.features.codekey import code_digest, ffmpeg_version, package_versions
from emovox.features.workers import (
    CodeChanged,
    WorkersDied,
    die_with_parent,
    extraction_pool,
    run_in_pool,
)
from emovox.fileio import atomic_path, file_sha256, mode_of

log = logging.getLogger(__name__)

__all__ = ["RESEARCH_MAX_DURATION_S", "STALE_TEMP_SECONDS", "AudioFrontEnd", "CodeChanged",
           "Extraction", "FeatureCache", "ProgressFn", "Variant", "WorkersDied", "code_digest",
           "content_hash", "default_cache_dir", "die_with_parent", "extract_files",
           "extraction_pool"]

ProgressFn = Callable[[int, int], None]

#: The longest clip research decodes, in seconds: the product's default limit
#: (``emovox.serving.service.DEFAULT_MAX_DURATION_S``, a layer above this one; a test checks
#: that they agree). Corpus clips last seconds (RAVDESS 5.3 s, EMOVO 14 s at most); a
#: 1-hour file took 1.9 GB to decode and featurise (code review, stop 48).
RESEARCH_MAX_DURATION_S = 600.0
#: Age (s) after which a temporary file in the cache is a killed writer's: a live writer
#: writes an entry in seconds, and two runs may share one cache.
STALE_TEMP_SECONDS = 3600.0
#: the temporary files atomic_path makes in the cache: ``.NAME.XXXXXXXX.tmp`` (mkstemp's 8
#: characters) of an entry (``HASH.npy``) or a side file (``key.json``, ``shape.json``)
_TEMP_NAME = re.compile(r"\.[\w.-]+\.(?:npy|json)\.[a-z0-9_]{8}\.tmp")


def default_cache_dir() -> Path:
    """``$EMOVOX_CACHE`` if set, else ``~/.cache/emovox``."""
    env = os.environ.get("EMOVOX_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "emovox"


def content_hash(path: Path) -> str:
    """SHA-256 (hex) of a file's bytes."""
    return file_sha256(path)


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    """The entries of ``folder`` (none when it cannot be listed)."""
    try:
        with os.scandir(folder) as it:
            return list(it)
    except OSError:
        return []


class FeatureCache:
    """``root/<feature-key-hash>/<content-hash[:2]>/<content-hash>.npy``, written atomically."""

    def __init__(self, root: Path, key: str, ndim: int | None = None) -> None:
        """``ndim``: dimensions of every value (1 for vectors, 2 for sequences), if known."""
        self.key = key
        self.ndim = ndim
        self.dim: int | None = None
        self.unwritable = False  #: a write failed: the features are used uncached
        self.dir = Path(root) / "features" / hashlib.sha256(key.encode()).hexdigest()[:16]
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # read what is there; put() says it cannot write
            log.debug("cannot make %s: %s", self.dir, exc)
        else:
            if self._side_text("key.json") != key:  # missing, torn, or a link
                self._write_side("key.json", key)
            self._sweep_temps()
        self._read_shape()

    def _side_text(self, name: str) -> str | None:
        """The text of the side file ``name``; None when it is missing, unreadable or a
        link (never read through: a planted link names a file outside the cache)."""
        f = self.dir / name
        try:
            return None if f.is_symlink() else f.read_text()
        except (OSError, UnicodeDecodeError):
            return None

    def _write_side(self, name: str, text: str) -> None:
        """Write the side file ``name`` whole or not at all, replacing a link rather than
        writing through it (written with write_text, a kill left an empty shape.json that
        was never rewritten, and a dangling key.json link made its target outside the
        cache: code review, stop 48)."""
        f = self.dir / name
        try:
            with atomic_path(f, mode=mode_of(f)) as tmp:
                tmp.write_text(text)
        except OSError as exc:  # a read-only cache still works
            log.debug("cannot write %s: %s", f, exc)

    def _sweep_temps(self) -> None:
        """Remove the temporary files of writers killed over :data:`STALE_TEMP_SECONDS` ago
        (a kill during put() left a ``.HASH.npy.XXXX.tmp`` for ever: 146 MB after three;
        code review, stop 48). Only names atomic_path makes, in this key's folder and its
        entry folders; links are neither followed nor removed."""
        if self.dir.is_symlink():
            return
        cutoff = time.time() - STALE_TEMP_SECONDS
        top = _entries(self.dir)
        removed = 0
        for e in top + [s for d in top if d.is_dir(follow_symlinks=False) and len(d.name) == 2
                        for s in _entries(Path(d.path))]:
            try:
                if _TEMP_NAME.fullmatch(e.name) and e.is_file(follow_symlinks=False) and \
                        e.stat(follow_symlinks=False).st_mtime < cutoff:
                    os.unlink(e.path)
                    removed += 1
            except OSError:
                pass
        if removed:
            log.info("removed %d temporary file(s) of killed cache writers in %s", removed,
                     self.dir)

    def _stored_dim(self) -> tuple[int | None, str | None]:
        """``(dim, None)`` from ``shape.json``, ``(None, None)`` when there is none, or
        ``(None, why)`` when it cannot be read (empty, garbage, a link)."""
        f = self.dir / "shape.json"
        if not f.exists() and not f.is_symlink():
            return None, None
        text = self._side_text("shape.json")
        if text is None:
            return None, "a link" if f.is_symlink() else "unreadable"
        try:
            return int(json.loads(text)["dim"]), None
        except (ValueError, KeyError, TypeError) as exc:
            return None, f"{type(exc).__name__}: {exc}"

    def _read_shape(self) -> None:
        dim, problem = self._stored_dim()
        if problem:
            log.warning("ignoring unreadable %s (%s); the next entry stored writes it again",
                        self.dir / "shape.json", problem)
        self.dim = dim

    def path(self, chash: str) -> Path:
        return self.dir / chash[:2] / f"{chash}.npy"

    def get(self, chash: str) -> np.ndarray | None:
        """The cached array, or None when absent or unusable (empty, torn, of another
        shape than this feature gives, or not finite): such an entry is logged, naming
        the file, and recomputed by the caller."""
        p = self.path(chash)
        if not p.exists():
            return None
        try:
            arr = np.load(p, allow_pickle=False)
        except Exception as exc:  # noqa: BLE001 - EOFError (0 bytes), OSError, ValueError...
            log.warning("ignoring unreadable cache entry %s (%s: %s); recomputing it",
                        p, type(exc).__name__, exc or "empty file")
            return None
        problem = self.problem(arr)
        if problem:
            log.warning("ignoring bad cache entry %s (%s); recomputing it", p, problem)
            return None
        return arr

    def problem(self, arr: np.ndarray) -> str | None:
        """Why ``arr`` cannot be a value of this cache's feature, or None if it can."""
        if not isinstance(arr, np.ndarray) or arr.dtype.kind != "f":
            return f"not a float array ({getattr(arr, 'dtype', type(arr))})"
        if self.ndim is not None and arr.ndim != self.ndim:
            return f"shape {arr.shape}, expected {self.ndim} dimension(s)"
        if arr.size == 0 and self.ndim == 1:
            return "empty"
        if self.dim is not None and arr.ndim and arr.shape[-1] != self.dim:
            return f"shape {arr.shape}, expected last dimension {self.dim}"
        if not np.all(np.isfinite(arr)):
            return "NaN or infinite values"
        return None

    def put(self, chash: str, arr: np.ndarray) -> None:
        """Store ``arr`` atomically (written, fsynced, then renamed into place). Arrays
        this cache would refuse to read back (NaN, wrong shape) are not stored."""
        problem = self.problem(np.asarray(arr))
        if problem:
            log.warning("not caching the features of %s: %s", chash[:12], problem)
            return
        if self.dim is None and arr.ndim:
            self._learn_dim(int(arr.shape[-1]))
        p = self.path(chash)
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(p, mode=None) as tmp, open(tmp, "wb") as f:
                np.save(f, np.ascontiguousarray(arr), allow_pickle=False)
        except OSError as exc:  # a read-only or full cache: the features are used uncached
            if not self.unwritable:  # (each clip became an extraction error, and a whole
                log.warning("cannot write the feature cache %s (%s): going on without "  # 38
                            "caching; set --cache-dir or EMOVOX_CACHE", self.dir,
                            exc.strerror or exc)
            self.unwritable = True

    def _learn_dim(self, dim: int) -> None:
        """Remember the feature's last dimension (``shape.json``) so that entries of
        another width are recognised as bad; the file is written when it is missing or
        unreadable (another process may have written it since this cache was opened)."""
        self.dim = dim
        if self._stored_dim()[0] is None:
            self._write_side("shape.json", json.dumps({"ndim": self.ndim, "dim": dim}))


@dataclass
class AudioFrontEnd:
    """How a file becomes the waveform a feature sees."""

    sr: int = 16000
    trim: bool = False
    top_db: float = 40.0
    #: the decoder removes a constant offset since stop 30 (in the cache key: features
    #: computed before it are not mixed with those computed after)
    dc_removed: bool = True


@dataclass
class Extraction:
    """Features of a list of files, in order. ``features[i]`` is None where ``errors`` has i."""

    features: list[np.ndarray | None]
    errors: dict[int, str] = field(default_factory=dict)
    n_cached: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class Variant:
    """An augmented copy: variant ``index`` of every clip under ``config`` and ``seed``."""

    config: Any  # emovox.augment.AugmentConfig
    index: int
    seed: int = 0


#: what a corpus clip over the limit is told (RESEARCH_MAX_DURATION_S)
_TOO_LONG_ADVICE = ("Research reads clips of up to RESEARCH_MAX_DURATION_S (the product's "
                    "default limit); cut it into shorter clips or leave it out of the corpus.")

#: the files this process has decoded for features: a second decode (an augmented copy)
#: logs nothing the first did not (the first may be a copy: its clean features cached)
_DECODED: set[str] = set()


def _extract_one(
    path: str, name: str, params: dict[str, Any], fe: AudioFrontEnd, chash: str,
    variant: Variant | None,
) -> np.ndarray:
    from emovox.audio import TOO_LONG_ADVICE, load_audio, notes_held_back
    from emovox.errors import AudioTooLong, EmptyAudio
    from emovox.features import extract

    # a clip decoded again (its augmented copies): its notes were said the first time (3
    # hum warnings), held back in this thread only (a process-wide level: code review, 54)
    try:  # bounded as the product is (none: a 1-hour clip took 1.9 GB; code review, 48)
        with notes_held_back(path in _DECODED):
            audio = load_audio(path, sr=fe.sr, trim=fe.trim, top_db=fe.top_db,
                               max_duration=RESEARCH_MAX_DURATION_S)
    except AudioTooLong as exc:  # the product's advice names options research lacks
        raise AudioTooLong(str(exc).replace(TOO_LONG_ADVICE, _TOO_LONG_ADVICE),
                           limit_s=exc.limit_s, mixdown=exc.mixdown) from None
    _DECODED.add(path)
    if audio.silent:  # the product answers no_speech; a model learnt it as, say, neutral,
        raise EmptyAudio(f"{path}: silent (its loudest frame is below -60 dBFS): nothing "
                         "to learn from or to score; left out (QA, stop 37)")  # (an error)
    wave = audio.wave
    if variant is not None:
        from emovox.audio.codec import Codec, codec_round_trip
        from emovox.augment import augment, variant_rng

        rng = variant_rng(variant.seed, chash, variant.index)
        wave = augment(wave, audio.sr, variant.config, rng,
                       codec=lambda w, sr, c: codec_round_trip(w, sr, Codec(c)))
    return extract(name, wave, audio.sr, **params)


#: augmentation settings added after caches existed: left out of the cache key while the
#: codec step is unused, so the variants of earlier recipes keep their cached features
_LATER_AUGMENT = ("p_codec", "codecs")
#: the same for the telephone share of band-limiting, left out at its first value
_LATER_DEFAULTS: dict[str, Any] = {"telephone_share": 0.5}


#: ... and the hum step (stop 42), left out while unused
_LATER_HUM = ("p_hum", "hum_db")


def _augment_key(config: dict[str, Any]) -> dict[str, Any]:
    """The cache key's view of an augmentation config (see :data:`_LATER_AUGMENT`)."""
    key = {k: v for k, v in config.items()
           if k not in _LATER_DEFAULTS or v != _LATER_DEFAULTS[k]}
    if not config.get("p_hum"):
        key = {k: v for k, v in key.items() if k not in _LATER_HUM}
    if config.get("p_codec"):
        return key
    return {k: v for k, v in key.items() if k not in _LATER_AUGMENT}


def _feature_ndim(name: str) -> int | None:
    from emovox.features import FEATURES

    spec = FEATURES.get(name)
    return None if spec is None else (1 if spec.kind == "vector" else 2)


def _cache_key(name: str, params: dict[str, Any], fe: AudioFrontEnd,
               variant: Variant | None) -> str:
    """The cache key of feature ``name``: its settings, the code's digest, the releases of
    the libraries that make its numbers (code review, stop 48: a key made before misses
    once), and an augmented copy's settings (with ffmpeg's release when it is used)."""
    from emovox.features import feature_key

    key_parts: dict[str, Any] = {"feature": feature_key(name, **params), "audio": fe.__dict__,
                                 "code": code_digest(augmented=variant is not None),
                                 "packages": package_versions()}
    if variant is not None:
        config = _augment_key(dataclasses.asdict(variant.config))
        key_parts["augment"] = {"config": config, "index": variant.index, "seed": variant.seed}
        if config.get("p_codec"):  # the codec round trips are ffmpeg's encoders
            key_parts["ffmpeg"] = ffmpeg_version()
    return json.dumps(key_parts, sort_keys=True)


def extract_files(
    paths: Sequence[Path],
    name: str,
    params: dict[str, Any] | None = None,
    *,
    frontend: AudioFrontEnd | None = None,
    cache_dir: Path | None = None,
    content_ids: Sequence[str] | None = None,
    n_jobs: int = 2,
    progress: ProgressFn | None = None,
    variant: Variant | None = None,
) -> Extraction:
    """Feature ``name`` of every file, from the cache where possible, else computed
    on ``n_jobs`` processes and stored. A file that fails is recorded in ``errors``
    (its message) and the rest go on. With ``variant``, the features of an augmented
    copy of each file (callers pass training clips only).

    Raises:
        WorkersDied: the worker processes kept dying (out of memory): no per-file errors;
            or some clips kill their worker even alone: the error names them (``culprits``).
        CodeChanged: a worker reads other code or libraries than this process.
    """
    from emovox.errors import EmovoxError

    params = dict(params or {})
    fe = frontend or AudioFrontEnd()
    key = _cache_key(name, params, fe, variant)
    cache = FeatureCache(cache_dir or default_cache_dir(), key, ndim=_feature_ndim(name))
    t0 = time.perf_counter()
    hashes = list(content_ids) if content_ids is not None else [content_hash(p) for p in paths]
    out: list[np.ndarray | None] = [None] * len(paths)
    errors: dict[int, str] = {}
    todo: list[int] = []
    for i, h in enumerate(hashes):
        arr = cache.get(h)
        if arr is None:
            todo.append(i)
        else:
            out[i] = arr
    n_cached = len(paths) - len(todo)
    done = n_cached
    if progress:
        progress(done, len(paths))
    log.info("%s: %d cached, %d to extract on %d process(es)", name, n_cached, len(todo), n_jobs)

    def _record(i: int, fut_result: Callable[[], np.ndarray]) -> None:
        nonlocal done
        try:
            arr = fut_result()
            cache.put(hashes[i], arr)
            out[i] = arr
        except CodeChanged:  # no file's fault: the run stops
            raise
        except EmovoxError as exc:
            errors[i] = str(exc)
            log.warning("skipping %s: %s", paths[i], exc)
        except Exception as exc:  # noqa: BLE001 - one bad file never stops the corpus
            errors[i] = f"{type(exc).__name__}: {exc}"
            log.warning("skipping %s: %s", paths[i], errors[i])
        done += 1
        if progress:
            progress(done, len(paths))

    tasks = {i: (str(paths[i]), name, params, fe, hashes[i], variant) for i in todo}
    if n_jobs <= 1 or len(todo) < 4:
        for i in todo:
            _record(i, lambda i=i: _extract_one(*tasks[i]))
    else:  # a worker's death is no file's error: its clips go to a new pool (stop 48)
        run_in_pool(_extract_one, tasks, n_jobs, lambda i, fut: _record(i, fut.result),
                    name=lambda i: str(paths[i]))
    return Extraction(out, errors, n_cached, time.perf_counter() - t0)
