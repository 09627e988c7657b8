"""On-disk feature cache keyed by (audio content hash, feature config), and parallel
extraction over a list of files.

A corpus is decoded and featurised once: the key is the SHA-256 of the file's bytes
plus :func:`emovox.features.feature_key` of the feature name, its parameters and the
audio front-end settings, so renaming or moving files keeps the cache, and changing
any parameter misses it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]


def default_cache_dir() -> Path:
    """``$EMOVOX_CACHE`` if set, else ``~/.cache/emovox``."""
    env = os.environ.get("EMOVOX_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "emovox"


def content_hash(path: Path) -> str:
    """SHA-256 (hex) of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class FeatureCache:
    """``root/<feature-key-hash>/<content-hash[:2]>/<content-hash>.npy``, written atomically."""

    def __init__(self, root: Path, key: str) -> None:
        self.key = key
        self.dir = Path(root) / "features" / hashlib.sha256(key.encode()).hexdigest()[:16]
        self.dir.mkdir(parents=True, exist_ok=True)
        meta = self.dir / "key.json"
        if not meta.exists():
            meta.write_text(key)

    def path(self, chash: str) -> Path:
        return self.dir / chash[:2] / f"{chash}.npy"

    def get(self, chash: str) -> np.ndarray | None:
        p = self.path(chash)
        if not p.exists():
            return None
        try:
            return np.load(p, allow_pickle=False)
        except (OSError, ValueError) as exc:  # a torn or corrupt entry: recompute it
            log.warning("ignoring unreadable cache entry %s: %s", p, exc)
            return None

    def put(self, chash: str, arr: np.ndarray) -> None:
        p = self.path(chash)
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.save(f, np.ascontiguousarray(arr), allow_pickle=False)
            os.replace(tmp, p)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


@dataclass
class AudioFrontEnd:
    """How a file becomes the waveform a feature sees."""

    sr: int = 16000
    trim: bool = False
    top_db: float = 40.0


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


def _extract_one(
    path: str, name: str, params: dict[str, Any], fe: AudioFrontEnd, chash: str,
    variant: Variant | None,
) -> np.ndarray:
    from emovox.audio import load_audio
    from emovox.features import extract

    audio = load_audio(path, sr=fe.sr, trim=fe.trim, top_db=fe.top_db)
    wave = audio.wave
    if variant is not None:
        from emovox.augment import augment, variant_rng

        rng = variant_rng(variant.seed, chash, variant.index)
        wave = augment(wave, audio.sr, variant.config, rng)
    return extract(name, wave, audio.sr, **params)


def _worker_init() -> None:
    # One BLAS/numba thread per worker: the pool already uses every core.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = "1"


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
    key_parts: dict[str, Any] = {"feature": feature_key(name, **params), "audio": fe.__dict__}
    if variant is not None:
        key_parts["augment"] = {
            "config": dataclasses.asdict(variant.config), "index": variant.index,
            "seed": variant.seed,
        }
    key = json.dumps(key_parts, sort_keys=True)
    cache = FeatureCache(cache_dir or default_cache_dir(), key)
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
        with ProcessPoolExecutor(max_workers=n_jobs, initializer=_worker_init) as pool:
            futs = {
                i: pool.submit(_extract_one, str(paths[i]), name, params, fe, hashes[i], variant)
                for i in todo
            }
            for i, fut in futs.items():
                _record(i, fut.result)
    return Extraction(out, errors, n_cached, time.perf_counter() - t0)
