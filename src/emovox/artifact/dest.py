"""Where a model folder may be written, said before any work (stop 56): never the current
folder or one holding it (:func:`checked_destination`: the folder is replaced whole, its
claim and copy made beside it by name), never inside a cross-validation run's ``models/``
(:func:`run_holding`: its fold models are what the run's figures were computed from), and a
copy of a model folder that fails says so in one line (:func:`copy_folder`)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from emovox.errors import ConfigError

__all__ = ["RUN_MARKERS", "checked_destination", "copy_folder", "run_holding"]

#: the files every run folder holds (``emovox.experiment.runfiles``: metrics.json and
#: predictions.csv); named here, as this layer may not import the experiment layer
RUN_MARKERS: tuple[str, ...] = ("metrics.json", "predictions.csv")


def checked_destination(out: str | Path, hint: str) -> Path:
    """``out`` as a model folder is written to: ConfigError when it is the current folder
    or holds it (``train --out . --force`` trained, then failed on its claim's name;
    ``export .`` left the shell in a deleted folder: audit, stop 56), ``hint`` saying what
    to do instead. ``out`` named ``.``, ``..`` or nothing is made absolute (its claim and
    copy go beside it, by name)."""
    out = Path(out)
    here = Path(os.path.abspath(out))
    cwd = Path.cwd()
    for p in dict.fromkeys((here, _resolved(here))):
        if p == cwd or p in cwd.parents:
            raise ConfigError(f"{here} is the current folder or holds it; {hint}")
    return here if out.name in ("", ".", "..") else out


def run_holding(folder: str | Path) -> Path | None:
    """The run folder whose ``models/`` holds ``folder`` (``evaluate --save-models`` writes
    its fold models there: ``RUN/models/foldK``), None for any other place. A fold model
    replaced (``train``, ``ensemble --force``) or recalibrated (``calibrate``) made its
    run unreadable for good: ``rescore`` found the stored probabilities differ (audit, stop
    56). The run is told by its files (:data:`RUN_MARKERS`); a folder being staged has
    none yet."""
    parent = _resolved(Path(os.path.abspath(folder)).parent)
    if parent.name != "models":
        return None
    run = parent.parent
    return run if all((run / f).is_file() for f in RUN_MARKERS) else None


def copy_folder(src: Path, dst: Path) -> None:
    """``shutil.copytree(src, dst)``; its :class:`shutil.Error` (a list of every file that
    failed, printed as a Python list) raised as one OSError naming the first (a full disk:
    audit, stop 56)."""
    try:
        shutil.copytree(src, dst)
    except shutil.Error as exc:
        failed = [f for f in (exc.args[0] if exc.args else []) if isinstance(f, tuple)]
        if not failed:
            raise OSError(f"cannot copy {src}: {' '.join(str(exc).split())[:200]}") from None
        name, why = str(failed[0][0]), str(failed[0][-1])
        more = f" (and {len(failed) - 1} more file(s))" if len(failed) > 1 else ""
        text = f"cannot copy {src}: {Path(name).name}: {_without_errno(why)}{more}"
        code = re.match(r"\[Errno (\d+)\]", why)
        raise (OSError(int(code[1]), text) if code else OSError(text)) from None


def _without_errno(why: str) -> str:
    """``[Errno 28] No space left on device: '/x'`` -> ``No space left on device``."""
    return re.sub(r"^\[Errno \d+\] ", "", why).split(": '")[0].strip()[:200]


def _resolved(p: Path) -> Path:
    try:
        return p.resolve()
    except (OSError, RuntimeError):  # a link loop: as given
        return p
