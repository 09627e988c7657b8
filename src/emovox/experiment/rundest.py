"""Where a run directory goes: the destination checks and the staging that swaps a finished
run in whole (:func:`staged_run_dir`), and what is carried into it from other runs, never
through a link (:func:`carry_files`, :func:`refuse_links`). A destination that is not an
emovox run folder, or holds files emovox did not write, is never touched."""

from __future__ import annotations

import fnmatch
import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from emovox.artifact import foreign_files
from emovox.artifact.dest import (
    emovox_run_config,
    keep_unsaved,
    make_parents,
)
from emovox.errors import ConfigError
from emovox.experiment.rundir import (
    CONFIG_FILE,
    ERRORS_FILE,
    METRICS_FILE,
    PREDICTIONS_FILE,
    RunDirError,
    link_refused,
)
from emovox.experiment.runfiles import run_folder_lacks
from emovox.fileio import (
    CLAIM_LOCK,
    WRITER_KINDS,
    copy_unlinked,
    live_writers,
    make_claim,
    release_claim,
    remove_stale,
    swap_folder,
)

__all__ = ["RUNS_DIR", "RUN_ENTRIES", "RUN_KINDS", "carry_files", "check_run_destination",
           "default_run_dir", "is_run_dir", "refuse_links", "refuse_out_among",
           "run_folder_problem", "staged_run_dir"]

log = logging.getLogger(__name__)


#: parent of the run directories named by :func:`default_run_dir`
RUNS_DIR = Path("runs")


def default_run_dir(name: str) -> Path:
    """``runs/<name>-<YYYYmmdd-HHMMSS>``: where a run goes when no ``--out`` is given."""
    return RUNS_DIR / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


def is_run_dir(path: Path) -> bool:
    """True if ``path`` is a folder emovox wrote as a run directory (:func:`run_folder_problem`
    finds nothing missing)."""
    return run_folder_problem(path) is None


def run_folder_problem(path: Path) -> str | None:
    """What ``path`` lacks of a folder emovox wrote as a run directory, in words; None for
    one. A run folder holds what the readers require (a run's metrics.json and
    predictions.csv: :func:`~emovox.experiment.runfiles.run_folder_lacks`) or -- a run an
    older version left unfinished -- an emovox config.yaml beside something a run writes
    while it works (training curves, fold models). Someone else's metrics.json, or an empty
    models/, is no such thing: a folder of a copied config.yaml, a foreign metrics.json and
    an empty models/ was replaced whole (review, stop 53)."""
    path = Path(path)
    if not path.is_dir():
        return "not a folder"
    found, lacks = run_folder_lacks(path)
    if found is not None and not lacks:
        return None
    if (path / METRICS_FILE).exists() or (path / METRICS_FILE).is_symlink():
        return "; ".join(lacks)  # a metrics.json of no finished run: someone else's
    if not emovox_run_config(path):
        return f"no {METRICS_FILE} of a run, nor an emovox {CONFIG_FILE}"
    if any(e.name != CONFIG_FILE and _written_by_runs(e) and (
            e.name != "models" or any(f.name.startswith("fold") for f in e.iterdir()))
           for e in path.iterdir()):
        return None
    return (f"no {METRICS_FILE}, and nothing a run writes beside its {CONFIG_FILE} "
            "(training curves, fold models in models/foldK)")


#: what a combining command records in the metrics.json it writes (``kind`` of
#: :func:`check_run_destination`), and the command that wrote such a run
RUN_KINDS: dict[str, str] = {"fused_runs": "fuse", "merged_runs": "merge",
                             "switched_runs": "switch_runs", "rescored_from": "rescore"}


def check_run_destination(out: Path, kind: str | None = None) -> None:
    """Raise :class:`RunDirError` unless ``out`` is free, an empty folder or a run folder:
    emovox never overwrites what it did not write. ``kind`` (a key of :data:`RUN_KINDS`):
    only a run folder whose metrics.json records it is replaced, an earlier output of the
    same command -- ``fuse --out R`` on an ``evaluate`` run R deleted its config, training
    curves and fold models (review, stop 56). Never anywhere inside another run folder
    (:func:`_enclosing_run`): ``fuse --out RUN/models/fold9`` wrote a
    run among RUN's fold models; only its direct children were refused, and ``--out
    RUN/models/fold0/fused`` still was (review, stop 57)."""
    out = Path(out)
    if (run := _enclosing_run(out)) is not None:
        if Path(os.path.abspath(out)).parent.resolve().is_relative_to(run / "models"):
            raise RunDirError(f"{out} is in the models/ folder of the run {run}, which holds "
                              "its fold models only; choose another --out")
        raise RunDirError(f"{out} lies inside the run folder {run}, which holds that run's "
                          "files only; choose another --out")
    if not out.exists() and not out.is_symlink():
        return
    if out.is_symlink() or not out.is_dir():
        raise RunDirError(f"{out} exists and is not a folder; refusing to overwrite it")
    if any(out.iterdir()) and (why := run_folder_problem(out)):
        raise RunDirError(
            f"{out} exists and is not an emovox run folder ({why}); refusing to overwrite "
            "it (choose another --out or remove it yourself)"
        )
    # a claim's lock file is the run's too: a swap killed between its rename and removing
    # it leaves one (code review, stop 48)
    foreign = sorted(p.name for p in out.iterdir() if not _written_by_runs(p)
                     and not (p.name == CLAIM_LOCK and p.is_file() and not p.is_symlink()))
    if foreign:
        raise RunDirError(
            f"{out} is an emovox run folder but also holds {', '.join(foreign[:5])}"
            f"{' ...' if len(foreign) > 5 else ''}, which emovox did not write; refusing to "
            "replace it (choose another --out, or move those files first)"
        )
    if kind is not None and any(out.iterdir()):
        _check_kind(out, kind)


def _enclosing_run(out: Path) -> Path | None:
    """The nearest folder above ``out`` that is a run folder (:func:`run_folder_problem`:
    a run's own metrics.json and predictions.csv, or a run an older version left
    unfinished), None when none is. Files of those names from another tool do not make a
    run: a project folder holding them would have refused every ``--out`` below it."""
    parent = Path(os.path.abspath(out)).parent.resolve()
    return next((run for run in (parent, *parent.parents)
                 if _maybe_run(run) and run_folder_problem(run) is None), None)


def _maybe_run(folder: Path) -> bool:
    """Does ``folder`` hold a file a run folder is told by (cheap: no file read)?"""
    return any((folder / f).is_file() for f in (METRICS_FILE, CONFIG_FILE))


def _check_kind(out: Path, kind: str) -> None:
    """:class:`RunDirError` unless the run folder ``out`` was written by the command that
    records ``kind`` (:func:`check_run_destination`), naming what is there."""
    metrics, _ = run_folder_lacks(out)
    if metrics is not None and metrics.get(kind):
        return
    held = ", ".join(sorted(p.name + ("/" if p.is_dir() else "") for p in out.iterdir()
                            if p.name != CLAIM_LOCK))
    if metrics is None:
        what = "an unfinished emovox run"
    else:  # an evaluate --artifact output names no model (said "a run of None"): its id
        from emovox.experiment.crosscorpus import CROSS_CORPUS

        artifact = str(metrics.get("protocol")).startswith(CROSS_CORPUS)
        by = next((cmd for key, cmd in RUN_KINDS.items() if metrics.get(key)),
                  "evaluate --artifact" if artifact else "evaluate")
        what = f"a run of {metrics.get('model') or metrics.get('model_id')} written by `{by}`"
    raise RunDirError(
        f"{out} holds {what} ({held}), not an earlier output of `{RUN_KINDS[kind]}`; "
        "refusing to replace it (choose another --out, or remove it yourself)")


def refuse_out_among(out: Path, inputs: Iterable[tuple[Path, str]], why: str = "", *,
                     inside: bool = True, given: bool = True) -> None:
    """ConfigError when ``out`` is, lies inside or holds one of the folders ``inputs`` (each
    with the words that name it), ``why`` added: the swap replaced an input (``rescore
    MERGED --out PART`` deleted the fold model it had just read) or wrote a folder into one
    (review, stop 56). The one check of ``fuse``, ``merge``, ``rescore``, ``evaluate
    --artifact`` (its model folder and corpus: review, stop 57) and ``evaluate --teacher``.
    ``inside``: False lets ``out`` lie inside one (a corpus: a run folder there replaces
    nothing, and ``evaluate --artifact bundled --data .`` was refused: review, stop 57);
    ``given``: False when ``out`` is the default run folder, which the words name as such
    (they said "--out runs/..." to a user who gave none)."""
    target = Path(out).resolve()
    said, fix = (f"--out {out}", "write to another folder") if given else (
        f"the default run folder {out} (no --out given)", "give --out another folder")
    for folder, what in inputs:
        here = Path(folder).resolve()
        how = "is" if target == here else "lies inside" if inside and \
            target.is_relative_to(here) else "holds" if here.is_relative_to(target) else None
        if how is not None:
            raise ConfigError(f"{said} {how} {what}{why}; {fix}")


#: what a run folder holds: every file and folder :func:`write_run`, the runner and
#: :func:`~emovox.experiment.fuse.merge_runs` write (``models/``: ``--save-models``)
RUN_ENTRIES: tuple[str, ...] = (METRICS_FILE, PREDICTIONS_FILE, CONFIG_FILE, ERRORS_FILE,
                                "confusion.png", "recall.png", "curves_fold*.png",
                                "history_fold*.json", "models")


def _written_by_runs(entry: Path) -> bool:
    if entry.name == "models":  # --save-models writes fold folders of model files only
        return entry.is_dir() and not entry.is_symlink() and all(  # (a note in one was
            f.is_dir() and not f.is_symlink() and (  # deleted: code review, stop 48), or
                f.name.startswith("fold") and not foreign_files(f)  # export's claim on one
                or re.fullmatch(r"\.fold\d+\.(build|old|tmp|pending)-\d+-[0-9a-z_]+", f.name))
            for f in entry.iterdir())
    return any(fnmatch.fnmatchcase(entry.name, pat) for pat in RUN_ENTRIES) and \
        not entry.is_dir()


@contextmanager
def staged_run_dir(out: Path, kind: str | None = None,
                   check: Callable[[Path], None] | None = None) -> Iterator[Path]:
    """Yield a fresh staging folder next to ``out``; on success it replaces ``out`` whole
    (old files never linger), on error it is removed and ``out`` is left as it was.
    Refused (:class:`RunDirError`) while another live process stages ``out``: the
    staging folder is a claim, its lock held while the run works and already when it
    appears (:func:`~emovox.fileio.make_claim`: a PID told nothing across containers,
    code review, stop 48). ``kind``: what ``out`` may hold
    (:func:`check_run_destination`), checked before and after the work, as is ``check``
    (a further RunDirError of the caller's: ``evaluate --artifact``'s earlier output): a
    refusal after the work keeps the finished run beside ``out``."""
    out = Path(out)
    here = Path(os.path.abspath(out))  # "--out ." staged inside itself, and replaced it
    if Path.cwd() == here or here in Path.cwd().parents:  # left the shell in a deleted
        raise RunDirError(f"{here} is the current folder or holds it; choose another "
                          "--out (or run from elsewhere)")  # folder (code review, stop 48)
    check_run_destination(out, kind)
    if check is not None:
        check(out)
    made = make_parents(out)  # a file in the way, in words (audit, stop 56)
    remove_stale(out.parent, out.name)
    try:
        stage, claim = make_claim(out.parent, out.name, "staging")
    except OSError:
        _unstage(None, made)
        raise
    # after our claim: two at once both see; a model being built there too (`train --out
    # X` lost its model to an `evaluate --out X` that wrote X meanwhile: audit, stop 56)
    others = live_writers(out.parent, out.name, WRITER_KINDS)
    if others:
        _unstage(stage, made)
        release_claim(claim)
        raise RunDirError(
            f"another emovox process (PID {others[0]}) is writing {out} now; the one that "
            "finished last would replace the other's. Wait for it, or choose another --out "
            f"(if nothing is going on, remove {out.parent / f'.{out.name}'}.*-{others[0]}-*)")
    try:
        yield stage
        try:
            check_run_destination(out, kind)  # nothing foreign appeared there while we worked
            if check is not None:
                check(out)
        except RunDirError as exc:  # the finished run is kept, not thrown away (e.g. a
            kept = keep_unsaved(stage, out)  # --cache-dir inside --out: code review, 48)
            release_claim(claim, kept)
            raise RunDirError(f"{exc}; the finished run is in {kept}") from None
        swap_folder(stage, out)  # which removes the lock file from the run
    finally:
        if stage.exists():
            _unstage(stage, made if not out.exists() else [])
        release_claim(claim)


def _unstage(stage: Path | None, made: list[Path]) -> None:
    """Remove ``stage`` and the folders ``made`` for it (innermost first) while empty: a
    run refused before it wrote anything leaves no ``runs/`` behind."""
    if stage is not None:
        shutil.rmtree(stage, ignore_errors=True)
    for folder in made:
        try:
            folder.rmdir()
        except OSError:
            break


def refuse_links(run: Path, names: Iterable[str] = (METRICS_FILE, PREDICTIONS_FILE,
                                                   CONFIG_FILE)) -> None:
    """Raise :class:`RunDirError` when one of the files ``names`` of the run folder ``run``
    is a symbolic link: the files a result is computed from and carries are read as
    themselves, never as whatever a link in a shared run folder points to (any file of this
    machine; emovox writes no link in a run). Missing ones are the reader's to report.

    A check up front, before anything is read or written; it cannot hold the files still:
    the readers themselves open them without following a link (``read_run(...,
    unlinked=True)``, :func:`~emovox.experiment.rundir.read_run_config`), so a link swapped
    in after this check is refused there too (code review)."""
    for name in names:
        if (Path(run) / name).is_symlink():
            raise link_refused(Path(run) / name)


def carry_files(files: Iterable[Path], stage: Path) -> list[Path]:
    """Copy each of ``files`` (of other run folders) into ``stage`` under its name, never
    through a link (:func:`~emovox.fileio.copy_unlinked`): a link, or anything not a
    regular file, is skipped with a warning -- what the link pointed to (any file of this
    machine) was copied into the run (code review). Returns the files skipped."""
    skipped = []
    for f in files:
        if not copy_unlinked(f, Path(stage) / Path(f).name):
            log.warning("%s is a symbolic link or not a regular file: not copied (files of "
                        "a run folder are read as themselves, never through a link)", f)
            skipped.append(Path(f))
    return skipped
