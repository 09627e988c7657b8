"""Where a model folder may be written, said before any work (stop 56): never the current
folder or one holding it (:func:`checked_destination`: the folder is replaced whole, its
claim and copy made beside it by name), never inside a cross-validation run's ``models/``
(:func:`run_holding`: its fold models are what the run's figures were computed from), and a
copy of a model folder that fails says so in one line (:func:`copy_folder`). A finished
folder that may not replace its destination after all is kept beside it
(:func:`keep_unsaved`); a destination's parents are made, or refused in words
(:func:`make_parents`)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from pathlib import Path

from emovox.errors import ConfigError

__all__ = ["RUN_MARKERS", "checked_destination", "copy_folder", "emovox_run_config",
           "keep_unsaved", "make_parents", "run_holding"]

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
    56). The run is told by its files (:data:`RUN_MARKERS`), or is one an older version left
    unfinished (:func:`_unfinished_run`); a folder being staged has none yet."""
    parent = _resolved(Path(os.path.abspath(folder)).parent)
    if parent.name != "models":
        return None
    run = parent.parent
    return run if _is_run(run) else None


def _is_run(run: Path) -> bool:
    """Is ``run`` a run folder: finished (:data:`RUN_MARKERS`) or left unfinished by an
    older version (:func:`_unfinished_run`)?"""
    return all((run / f).is_file() for f in RUN_MARKERS) or _unfinished_run(run)


def _unfinished_run(run: Path) -> bool:
    """Is ``run`` an ``evaluate`` run an older version left unfinished? It wrote the run
    folder in place: its config.yaml first, each fold's model (``models/foldK``) as the
    fold ended, metrics.json and predictions.csv last. So: no metrics.json, an emovox
    experiment config.yaml (:func:`emovox_run_config`) and a ``models/foldK`` folder; such
    a run was not recognised and its fold models were replaced (review, stop 57). Today's
    runner writes its config.yaml only at the end, into its staging folder."""
    if (run / "metrics.json").exists() or (run / "metrics.json").is_symlink():
        return False
    try:
        folds = any(f.is_dir() and re.fullmatch(r"fold\d+", f.name)
                    for f in (run / "models").iterdir())
    except OSError:
        return False
    return folds and (run / "config.yaml").is_file() and emovox_run_config(run)


def emovox_run_config(folder: Path) -> bool:
    """Is ``folder``'s config.yaml an emovox experiment config (capped, no YAML aliases: any
    --out was read whole, code review, stop 48), not any with these sections (a project
    folder with its own config.yaml and models/ was replaced whole: code review, stop 47)?"""
    import yaml

    from emovox.config import ExperimentConfig, read_run_yaml

    try:
        cfg = read_run_yaml(Path(folder) / "config.yaml")
        return isinstance(cfg, dict) and {"data", "model", "split"} <= set(cfg) and \
            ExperimentConfig.from_dict(cfg) is not None
    except (OSError, ValueError, OverflowError, yaml.YAMLError, ConfigError, AttributeError):
        return False


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


def keep_unsaved(stage: Path, out: Path) -> Path:
    """Move the finished folder ``stage`` that may not replace ``out`` to a fresh
    ``OUT.unsaved-<YYYYmmdd-HHMMSS>[-N]`` beside it, and return that. The name is made
    first (``mkdir``: nothing there is taken), then ``stage`` renamed over it: a kept run
    of the same second failed the rename, and the finished run was deleted (audit, stop
    56)."""
    out = Path(out)
    base = f"{out.name}.unsaved-{time.strftime('%Y%m%d-%H%M%S')}"
    for n in range(1, 1000):
        kept = out.parent / (base if n == 1 else f"{base}-{n}")
        try:
            os.mkdir(kept, 0o700)
        except FileExistsError:
            continue
        try:
            os.rename(stage, kept)  # over the empty folder just made
        except OSError:
            with contextlib.suppress(OSError):
                kept.rmdir()
            raise
        return kept
    raise FileExistsError(f"no free name {out.parent / base}-N to keep {stage} in")


def make_parents(out: str | Path) -> list[Path]:
    """Make the parent folders of ``out``; returns those made, innermost first. An OSError
    naming the folder, as ``claimed_folder`` words it: ``evaluate --out user.csv/sub``
    said "[Errno 17] File exists: '.../user.csv'" (audit, stop 56)."""
    parent = Path(out).parent
    made = [p for p in [parent, *parent.parents] if not p.exists()]
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise NotADirectoryError(f"cannot make the folder {parent}: a file of that name (or "
                                 "of one of its parents) is in the way") from None
    except OSError as exc:  # a read-only file system, no permission
        err = type(exc)(f"cannot make the folder {parent}: {exc.strerror or exc}")
        err.errno = exc.errno
        raise err from None
    return made


def _without_errno(why: str) -> str:
    """``[Errno 28] No space left on device: '/x'`` -> ``No space left on device``."""
    return re.sub(r"^\[Errno \d+\] ", "", why).split(": '")[0].strip()[:200]


def _resolved(p: Path) -> Path:
    try:
        return p.resolve()
    except (OSError, RuntimeError):  # a link loop: as given
        return p
