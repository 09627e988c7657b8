"""What makes a cached feature's numbers besides its settings: the source of the code that
computes them (:func:`code_digest`) and the releases of the libraries it runs on
(:func:`package_versions`, :func:`ffmpeg_version`), all parts of the feature cache's key
(:mod:`emovox.features.cache`).

Both are taken when this module is imported, once the modules they cover are imported too
(:data:`FINGERPRINT`): the digest used to be read from disk at the first extraction, so an
edit or a ``git pull`` between a run's start and its extraction filed the numbers of the
code in memory under the key of the code on disk (code review, stop 48). Extraction workers
are given the parent's :data:`FINGERPRINT` and refuse to work when theirs differs
(:mod:`emovox.features.workers`).
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import logging
import pkgutil
import subprocess
from pathlib import Path
from typing import Any

from emovox.provenance import installed_versions

log = logging.getLogger(__name__)

__all__ = ["FEATURE_PACKAGES", "FINGERPRINT", "code_digest", "ffmpeg_version",
           "package_versions"]

#: the distributions whose releases can change a feature's numbers (resampler, FFT, pitch
#: tracker, decoder, openSMILE): :data:`emovox.provenance.PACKAGES` without the ones only
#: models use
FEATURE_PACKAGES: tuple[str, ...] = ("numpy", "scipy", "librosa", "soxr", "soundfile", "numba",
                                     "opensmile")


def _import_covered() -> None:
    """Import every module :func:`code_digest` reads, so that the code in memory is the
    code digested (a module first imported at the first extraction was read from disk
    then)."""
    import emovox.audio
    import emovox.augment  # noqa: F401 - imported for its source's sake
    import emovox.features

    for pkg in (emovox.features, emovox.audio):
        for info in pkgutil.iter_modules(pkg.__path__):
            importlib.import_module(f"{pkg.__name__}.{info.name}")


@functools.cache
def _source_digest(augmented: bool) -> str:
    import emovox.audio
    import emovox.augment
    import emovox.features

    files = sorted(Path(emovox.features.__file__).parent.glob("*.py"))
    files += sorted(Path(emovox.audio.__file__).parent.glob("*.py"))
    if augmented:
        files.append(Path(emovox.augment.__file__))
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def code_digest(*, augmented: bool = False) -> str:
    """SHA-256 (16 hex digits) of the source files that make a cached feature's numbers:
    every module of ``emovox.features`` and ``emovox.audio`` (and ``emovox.augment`` when
    ``augmented``), in path order. Taken when this module is imported;
    ``code_digest.cache_clear()`` has the files read again (tests)."""
    # memoised by value: functools.cache on this function kept ``code_digest()`` and
    # ``code_digest(augmented=False)`` apart, and only the first was taken at import
    return _source_digest(bool(augmented))


code_digest.cache_clear = _source_digest.cache_clear  # type: ignore[attr-defined]


@functools.cache
def package_versions() -> dict[str, str]:
    """``{distribution: version}`` of the installed :data:`FEATURE_PACKAGES` (those not
    installed left out), and ``libsndfile``: the decoder soundfile wraps, a library of the
    system rather than a distribution."""
    versions = installed_versions(FEATURE_PACKAGES)
    try:
        import soundfile

        versions["libsndfile"] = str(soundfile.__libsndfile_version__)
    except (ImportError, OSError, AttributeError):  # pragma: no cover - audio needs it
        pass
    return versions


@functools.cache
def ffmpeg_version() -> str | None:
    """The first line of ``ffmpeg -version`` (its release and build), ``None`` without
    ffmpeg; asked once per process (one start-up of ffmpeg)."""
    from emovox.audio.ffmpeg import ffmpeg_exe

    exe = ffmpeg_exe()
    if exe is None:
        return None
    try:
        done = subprocess.run([exe, "-version"], capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        log.debug("ffmpeg -version failed: %s", exc)
        return "unknown"
    first = done.stdout.decode(errors="replace").strip().splitlines()[:1]
    return first[0].split(" Copyright")[0] if first else "unknown"


_import_covered()
#: this process's code digests and library versions, taken at import (see the module notes)
FINGERPRINT: dict[str, Any] = {"code": code_digest(), "code_augmented": code_digest(augmented=True),
                               "packages": package_versions()}
