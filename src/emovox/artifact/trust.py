"""Loading ``model.skops`` without running code from the model folder.

skops reconstructs objects from a JSON schema; every node names a type. We refuse a file
unless **every** type it names is in :data:`ALLOWED_TYPES`, the exact set of types that the
pipelines ``emovox evaluate/train`` write contain (``tests/unit/test_artifact.py`` rebuilds every
classical model on random data and checks that this set is exactly what they produce, so it
cannot drift). Nothing is trusted by prefix: a ``FunctionTransformer`` or any NumPy function
(e.g. ``numpy.testing._private.utils.runstring``, which calls ``exec``) is refused before
anything is constructed.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from emovox.artifact.meta import ArtifactError
from emovox.artifact.paths import check_model_file_size

__all__ = ["ALLOWED_TYPES", "load_pipeline", "skops_types"]

#: every type (``module.qualname``) in the scikit-learn pipelines of emovox's classical models
ALLOWED_TYPES: frozenset[str] = frozenset({
    "builtins.dict",
    "builtins.list",
    "builtins.str",
    "builtins.tuple",
    "numpy.float64",
    "numpy.ndarray",
    "sklearn.calibration.CalibratedClassifierCV",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.svm._classes.SVC",
})


def _walk(node: Any, acc: set[str]) -> None:
    if isinstance(node, dict):
        if "__class__" in node:
            acc.add(f"{node.get('__module__')}.{node['__class__']}")
            content = node.get("content")  # a bound method names its method in content.func:
            if node.get("__loader__") == "MethodNode" and isinstance(content, dict):  # its
                acc.add(f"{node.get('__module__')}.{node['__class__']}.{content.get('func')}")
                # class alone is allowed (a StandardScaler's fit got through: stop 48)
        for v in node.values():
            _walk(v, acc)
    elif isinstance(node, list):
        for v in node:
            _walk(v, acc)


def skops_types(file: Path) -> set[str]:
    """Every type named in the schema of the skops file ``file``.

    Raises:
        ArtifactError: not a readable skops archive (truncated, garbage, no schema).
    """
    try:
        check_model_file_size(file)
        with zipfile.ZipFile(file) as z:  # unpacked sizes checked before anything is read
            check_model_file_size(file, sum(i.file_size for i in z.infolist()))
            schema = json.loads(z.read("schema.json"))
    except (zipfile.BadZipFile, KeyError, ValueError, RecursionError, OSError) as exc:
        raise ArtifactError(f"{file}: not a readable skops file ({type(exc).__name__}: "
                            f"{_one_line(exc)})") from None
    acc: set[str] = set()
    try:
        _walk(schema, acc)
    except RecursionError:
        raise ArtifactError(f"{file}: skops schema is nested too deeply") from None
    return acc


def load_pipeline(file: Path) -> Any:
    """The scikit-learn pipeline in ``file``, after checking every type it names.

    Raises:
        ArtifactError: unreadable file, or a type outside :data:`ALLOWED_TYPES`.
    """
    file = Path(file)
    if not file.is_file():  # before importing skops and scikit-learn (6-12 s: QA, stop 38)
        raise ArtifactError(f"{file}: is missing")
    import skops.io as sio

    bad = sorted(skops_types(file) - ALLOWED_TYPES)
    if bad:
        raise ArtifactError(f"{file}: refusing to load types that emovox pipelines never "
                            f"contain: {', '.join(bad)}")
    try:
        untrusted = sio.get_untrusted_types(file=file)
        if set(untrusted) - ALLOWED_TYPES:  # skops's own list: a second, independent check
            raise ArtifactError(f"{file}: unexpected types {sorted(untrusted)}")
        return sio.load(file, trusted=list(untrusted))
    except ArtifactError:
        raise
    except Exception as exc:  # skops raises many types on a damaged archive
        raise ArtifactError(f"{file}: cannot be loaded ({type(exc).__name__}: "
                            f"{_one_line(exc)})") from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]
