"""Where a result was computed: the machine and the versions of the packages that decide the
numbers, recorded beside every cross-validation run (``metrics.json``) and trained model
(``trained_on``).

Training is seeded, but the same command on another CPU or with another NumPy, SciPy,
librosa or PyTorch release does not give the same weights (floating-point order, resampler
and library changes): a fold's UA moved by a few points between two machines. What was used
is therefore part of the record. Only metadata is read (no package is imported).

May import: the standard library only.
"""

from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["CPU_FEATURES", "PACKAGES", "environment", "installed_versions"]

#: the distributions whose versions can change a trained model or a feature
PACKAGES: tuple[str, ...] = ("torch", "numpy", "scipy", "librosa", "soxr", "soundfile",
                             "scikit-learn", "numba", "onnxruntime", "opensmile")


#: CPU instruction sets that choose PyTorch's and NumPy's kernels (so their rounding)
CPU_FEATURES: tuple[str, ...] = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16",
                                 "amx_tile")


def _cpu() -> tuple[str, list[str]]:
    """The CPU's model name and which of :data:`CPU_FEATURES` it has (``/proc/cpuinfo`` on
    Linux; elsewhere what ``platform`` knows, and no features)."""
    name, flags = "", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip().lower() == "model name" and not name:
                name = value.strip()
            elif key.strip().lower() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    return (name or platform.processor() or platform.machine(),
            [f for f in CPU_FEATURES if f in flags])


def environment() -> dict[str, Any]:
    """``{"python", "machine", "cpu", "cpu_features", "packages": {name: version}}`` of this
    process (packages that are not installed are left out)."""
    cpu, features = _cpu()
    return {"python": platform.python_version(), "machine": platform.machine(),
            "cpu": cpu, "cpu_features": features, "packages": installed_versions(PACKAGES)}


def installed_versions(names: Any) -> dict[str, str]:
    """``{distribution: version}`` of the installed distributions among ``names`` (the
    others left out): what a run records, and what the feature cache's key names."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions
