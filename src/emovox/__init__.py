"""emovox: speech emotion recognition with honest, speaker-independent evaluation.

This package owns only ``__version__``; it imports nothing of its subpackages. They form
layers, each importing only the layers below it (import-linter checks this, ``make lint``;
the contracts are in pyproject.toml; ``|`` separates siblings that never import each other):

    cli
    api | web
    experiment
    training
    serving
    artifact
    models
    preprocess
    features | splits | calibration | plots | affect
    config | metrics
    augment | audio | corpora
    labels | errors | fileio

Each package's ``__init__`` docstring says what it owns and what it may import.
"""

import os
from importlib.metadata import PackageNotFoundError, version

# ONNX Runtime queues a record of each process (executable, OS, CPU, a device id) under
# $HOME/.cache/Microsoft for upload, creating $HOME if need be, from its import on; emovox
# sends nothing anywhere (odd-environment QA, stop 38). A user may still set it to 0.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

try:
    __version__ = version("emovox")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+src"

__all__ = ["__version__"]
