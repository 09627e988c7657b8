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

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("emovox")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+src"

__all__ = ["__version__"]
