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
cache).
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import hashlib
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emovox.fileio import atomic_path, file_sha256

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]


def default_cache_dir() -> Path:
    """``$EMOVOX_CACHE`` if set, else ``~/.cache/emovox``."""
    env = os.environ.get("EMOVOX_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "emovox"


def content_hash(path: Path) -> str:
    """SHA-256 (hex) of a file's bytes."""
    return file_sha256(path)


class FeatureCache:
    """``root/<feature-key-hash>/<content-hash[:2]>/<content-hash>.npy``, written atomically."""

    def __init__(self, root: Path, key: str, ndim: int | None = None) -> None:
        """``ndim``: dimensions of every value (1 for vectors, 2 for sequences), if known."""
        self.key = key
        self.ndim = ndim
        self.dim: int | None = None
        self.unwritable = False  #: a write failed: the features are used uncached
        self.dir = Path(root) / "features" / hashlib.sha256(key.encode()).hexdigest()[:16]
        meta = self.dir / "key.json"
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            if not meta.exists():
                meta.write_text(key)
        except OSError as exc:  # read what is there; put() says it cannot write
            log.debug("cannot write %s: %s", meta, exc)
        self._read_shape()

    def _read_shape(self) -> None:
        try:
            shape = json.loads((self.dir / "shape.json").read_text())
            self.dim = int(shape["dim"])
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring unreadable %s: %s", self.dir / "shape.json", exc)

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
        another width are recognised as bad."""
        self.dim = dim
        f = self.dir / "shape.json"
        if not f.exists():
            try:
                f.write_text(json.dumps({"ndim": self.ndim, "dim": dim}))
            except OSError as exc:  # a read-only cache still works
                log.debug("cannot write %s: %s", f, exc)


@functools.cache
def code_digest(*, augmented: bool = False) -> str:
    """SHA-256 (16 hex digits) of the source files that make a cached feature's numbers:
    every module of ``emovox.features`` and ``emovox.audio`` (and ``emovox.augment`` when
    ``augmented``), in path order."""
    import emovox.audio
    import emovox.features

    files = sorted(Path(emovox.features.__file__).parent.glob("*.py"))
    files += sorted(Path(emovox.audio.__file__).parent.glob("*.py"))
    if augmented:
        import emovox.augment

        files.append(Path(emovox.augment.__file__))
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


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


#: the files this process has decoded for features: a second decode (an augmented copy)
#: logs nothing the first did not (the first may be a copy: its clean features cached)
_DECODED: set[str] = set()


def _extract_one(
    path: str, name: str, params: dict[str, Any], fe: AudioFrontEnd, chash: str,
    variant: Variant | None,
) -> np.ndarray:
    from emovox.audio import load_audio
    from emovox.errors import EmptyAudio
    from emovox.features import extract

    quiet = logging.getLogger("emovox.audio")  # a clip decoded again (its augmented
    level = quiet.level  # copies): its notes were said the first time (3 hum warnings)
    if path in _DECODED:
        quiet.setLevel(logging.ERROR)
    try:
        audio = load_audio(path, sr=fe.sr, trim=fe.trim, top_db=fe.top_db)
    finally:
        quiet.setLevel(level)
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


#: Linux prctl option: signal this process when its parent dies
_PR_SET_PDEATHSIG = 1
#: seconds between two parent checks of the portable watchdog
PARENT_POLL_SECONDS = 0.5


def die_with_parent(parent_pid: int, *, use_prctl: bool = True) -> str:
    """Make this (worker) process exit when ``parent_pid`` dies; returns how.

    On Linux ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` has the kernel kill it; elsewhere (or
    when prctl is unavailable) a daemon thread polls ``os.getppid()`` and exits the
    process once the parent is gone (the worker is re-parented to init or a subreaper).
    """
    first_ppid = os.getppid()  # parent_pid itself, or a fork server it started

    def parent_gone() -> bool:
        if os.getppid() != first_ppid:
            return True
        try:
            os.kill(parent_pid, 0)
        except ProcessLookupError:
            return True
        except OSError:  # exists, but not ours to signal
            pass
        return False

    if use_prctl and sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
                if parent_gone():  # the parent died before prctl took effect
                    os._exit(1)
                return "prctl"
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        while not parent_gone():
            time.sleep(PARENT_POLL_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="emovox-parent-watch", daemon=True).start()
    return "watchdog"


def _worker_init(parent_pid: int | None = None, use_prctl: bool = True) -> None:
    # One BLAS/numba thread per worker: the pool already uses every core.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = "1"
    # Workers die with the process that started them (killing `evaluate` kills them too).
    if parent_pid is not None:
        die_with_parent(parent_pid, use_prctl=use_prctl)


def extraction_pool(n_jobs: int, *, use_prctl: bool = True) -> ProcessPoolExecutor:
    """The process pool feature extraction runs on: its workers never outlive this process."""
    return ProcessPoolExecutor(max_workers=n_jobs, initializer=_worker_init,
                               initargs=(os.getpid(), use_prctl))


def _feature_ndim(name: str) -> int | None:
    from emovox.features import FEATURES

    spec = FEATURES.get(name)
    return None if spec is None else (1 if spec.kind == "vector" else 2)


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
    """
    from emovox.errors import EmovoxError
    from emovox.features import feature_key

    params = dict(params or {})
    fe = frontend or AudioFrontEnd()
    key_parts: dict[str, Any] = {"feature": feature_key(name, **params), "audio": fe.__dict__,
                                 "code": code_digest(augmented=variant is not None)}
    if variant is not None:
        key_parts["augment"] = {
            "config": _augment_key(dataclasses.asdict(variant.config)), "index": variant.index,
            "seed": variant.seed,
        }
    key = json.dumps(key_parts, sort_keys=True)
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
        except EmovoxError as exc:
            errors[i] = str(exc)
            log.warning("skipping %s: %s", paths[i], exc)
        except Exception as exc:  # noqa: BLE001 - one bad file never stops the corpus
            errors[i] = f"{type(exc).__name__}: {exc}"
            log.warning("skipping %s: %s", paths[i], errors[i])
        done += 1
        if progress:
            progress(done, len(paths))

    if n_jobs <= 1 or len(todo) < 4:
        for i in todo:
            _record(
                i, lambda i=i: _extract_one(str(paths[i]), name, params, fe, hashes[i], variant)
            )
    else:
        with extraction_pool(n_jobs) as pool:
            futs = {
                i: pool.submit(_extract_one, str(paths[i]), name, params, fe, hashes[i], variant)
                for i in todo
            }
            for i, fut in futs.items():
                _record(i, fut.result)
    return Extraction(out, errors, n_cached, time.perf_counter() - t0)
