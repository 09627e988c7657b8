"""A run folder's files: their names, what makes a folder a run folder
(:func:`check_run_folder`), its ``metrics.json`` (:func:`read_metrics`), the error of the
run-directory readers (:class:`RunDirError`) and reads that never follow a symbolic link out
of a run folder (:func:`read_unlinked`), and where the parts of a merged run lie
(:func:`merged_parts`). :mod:`emovox.experiment.rundir` re-exports them."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from emovox.errors import ConfigError
from emovox.fileio import open_unlinked

__all__ = ["CHECK_TOLERANCE", "CONFIG_FILE", "ERRORS_FILE", "MERGED_INPUTS", "METRICS_FILE",
           "METRICS_MAX_BYTES", "PREDICTIONS_FILE", "RunDirError", "check_fold_records",
           "check_run_folder", "link_refused", "merged_parts", "part_records", "read_metrics",
           "read_unlinked", "run_folder_lacks", "unlinked_fd"]

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
#: the most bytes a ``metrics.json`` may hold when read: about 23 KB for six folds, 1-2 KB a
#: fold more (a leave-one-speaker-out run of 20000 speakers fits); a bigger file is none
#: of ours, and was read whole wherever --out pointed (code review, stop 48)
METRICS_MAX_BYTES = 64 << 20
PREDICTIONS_FILE = "predictions.csv"
CONFIG_FILE = "config.yaml"
ERRORS_FILE = "errors.csv"
#: the largest difference of two probabilities of one clip taken for the same answer
#: (6 decimals in predictions.csv): ``rescore``'s check of a fold model's answers against
#: the stored ones, and :func:`merged_parts` telling a part from a run of its name
CHECK_TOLERANCE = 1e-3
#: what a merged run's metrics.json records of each part beside ``merged_runs`` (the
#: paths as merge was given them): :func:`part_records`
MERGED_INPUTS = "merged_inputs"


class RunDirError(ConfigError):
    """A run directory (or the path given for one) is missing, malformed or not ours."""


def link_refused(path: Path) -> RunDirError:
    """The error for a file of a run folder that is a symbolic link (or no regular file):
    what a result is computed from and carries is read as itself, never as whatever a link
    in a shared run folder points to (any file of this machine; emovox writes no link in a
    run: code review)."""
    if Path(path).is_symlink():
        return RunDirError(
            f"{path} is a symbolic link; emovox writes none in a run folder and does not "
            "follow one out of it. Replace it by a copy of the file it points to if you "
            "trust that file")
    return RunDirError(f"{path} is not a regular file (emovox writes only files there)")


def unlinked_fd(path: Path) -> int:
    """A read-only descriptor of the regular file ``path``, opened without following a link
    (:func:`~emovox.fileio.open_unlinked`): :func:`link_refused` for a link, even one
    swapped in after a check (code review); OSError when it is missing."""
    fd = open_unlinked(path)
    if fd is None:
        raise link_refused(path)
    return fd


def read_unlinked(path: Path, limit: int) -> str:
    """The UTF-8 text of the run folder's regular file ``path``, read without following a
    link (:func:`link_refused` for one): RunDirError naming it when it holds more than
    ``limit`` bytes; OSError when it cannot be read, UnicodeDecodeError when no UTF-8."""
    with os.fdopen(unlinked_fd(path), "rb") as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise RunDirError(f"{path}: larger than {limit // 1024} KiB, more than emovox writes "
                          "there; not read")
    return data.decode("utf-8")


def read_metrics(run: Path, *, unlinked: bool = False) -> dict[str, Any]:
    """``metrics.json`` of ``run``; :class:`RunDirError` naming the file if it is missing,
    truncated or not a run's metrics. ``unlinked``: read without following a link
    (:func:`read_unlinked`), as files carried into a new run are."""
    f = Path(run) / METRICS_FILE
    if not (f.is_file() or unlinked and f.is_symlink()):  # a missing folder said so (it
        raise RunDirError(  # said "no metrics.json": QA, 39)
            f"{run}: no {'such folder' if not Path(run).exists() else METRICS_FILE}")
    from emovox.config import read_capped

    try:
        meta = json.loads(read_unlinked(f, METRICS_MAX_BYTES) if unlinked
                          else read_capped(f, METRICS_MAX_BYTES))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise RunDirError(f"{f}: unreadable ({exc})") from None
    except ConfigError as exc:  # too big: it names the file
        raise RunDirError(str(exc)) from None
    if not isinstance(meta, dict) or not isinstance(meta.get("protocol"), str):
        raise RunDirError(f"{f}: not the metrics of an emovox run")
    return meta


def run_folder_lacks(run: Path, *, unlinked: bool = False
                     ) -> tuple[dict[str, Any] | None, list[str]]:
    """``(metrics, lacks)`` of the folder ``run``: its metrics.json (:func:`read_metrics`;
    None when it is none of a run's) and, in words, what it lacks of a run folder ([] for
    one). Every run emovox writes holds a run's metrics.json (naming its protocol) and
    predictions.csv: a copied config.yaml beside someone else's metrics.json and an empty
    models/ was taken for a run (review, stop 53)."""
    pred = Path(run) / PREDICTIONS_FILE
    lacks = [] if pred.is_file() or pred.is_symlink() or not Path(run).is_dir() else [
        f"no {PREDICTIONS_FILE}"]
    try:
        return read_metrics(run, unlinked=unlinked), lacks
    except RunDirError as exc:
        return None, [str(exc), *lacks]


def check_run_folder(run: Path, *, unlinked: bool = False) -> dict[str, Any]:
    """The metrics of the run folder ``run``; RunDirError naming what it lacks of one
    (:func:`run_folder_lacks`; :func:`read_metrics`' error when that is all)."""
    metrics, lacks = run_folder_lacks(run, unlinked=unlinked)
    if metrics is not None and not lacks:
        return metrics
    if metrics is None and len(lacks) == 1:
        raise RunDirError(lacks[0])
    said = [w.removeprefix(f"{run}: ") for w in lacks]  # the folder named once (review)
    raise RunDirError(f"{run} is not an emovox run folder: {'; '.join(said)} (a run folder "
                      f"holds {METRICS_FILE} and {PREDICTIONS_FILE})")


def check_fold_records(run: Path, metrics: dict[str, Any], *, named: bool = True) -> None:
    """:class:`RunDirError` naming ``run``'s metrics.json and the field, unless what
    ``fuse``, ``merge`` and ``switch_runs`` read of it is of its type: ``folds`` a list of
    records, each with an integer ``index``, a number ``fit_seconds`` and (if any) a number
    ``n_params``; ``named``: also a ``model`` name and a true/false ``speaker_independent``.
    A hand-edited record was a traceback (``folds: [0]``, ``fit_seconds: "abc"``, ``model:
    null``) or "error: 'fit_seconds'" (review, stop 56)."""
    where = Path(run) / METRICS_FILE

    def number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    folds = metrics.get("folds")
    if not isinstance(folds, list) or not folds:
        said = json.dumps(folds)[:40] if "folds" in metrics else "missing"
        raise RunDirError(f"{where}: no fold records (field 'folds' is {said}, not a list "
                          "of fold records)")
    for k, f in enumerate(folds):
        what = f"field 'folds' item {k}"
        if not isinstance(f, dict):
            raise RunDirError(f"{where}: {what} is {json.dumps(f)[:40]}, not a fold record")
        for key, ok in (("index", isinstance(f.get("index"), int) and number(f.get("index"))),
                        ("fit_seconds", number(f.get("fit_seconds"))),
                        ("n_params", number(f.get("n_params", 0)))):
            if not ok:
                said = json.dumps(f[key])[:40] if key in f else "missing"
                raise RunDirError(f"{where}: {what}: '{key}' is {said}, not "
                                  f"{'an integer' if key == 'index' else 'a number'}")
    for key, ok, kind in (("model", isinstance(metrics.get("model"), str) and
                           metrics.get("model"), "a model name"),
                          ("speaker_independent", isinstance(
                              metrics.get("speaker_independent"), bool), "true or false")):
        if named and not ok:
            said = json.dumps(metrics[key])[:40] if key in metrics else "missing"
            raise RunDirError(f"{where}: field '{key}' is {said}, not {kind}")


def part_records(given: Sequence[str], parts: Sequence[Path], out: Path
                 ) -> list[dict[str, str]]:
    """:data:`MERGED_INPUTS` of a run written to ``out`` from ``parts`` (named ``given``
    by the user): each part as given, resolved, and relative to ``out`` (resolved too).
    ``given`` alone is relative to the folder merge was run in: ``rescore ../exp2/m`` run
    from exp1, which held parts of the same names, read exp1's (review, stop 57)."""
    home = Path(out).resolve()
    records = []
    for name, part in zip(given, parts, strict=True):
        real = Path(part).resolve()
        record = {"given": str(name), "resolved": str(real)}
        try:
            record["relative"] = os.path.relpath(real, home)
        except ValueError:  # another drive: none
            pass
        records.append(record)
    return records


def merged_parts(run: Path, metrics: dict[str, Any], *, known: bool = False) -> list[Path]:
    """The part runs of a run made by ``emovox merge`` (``metrics["merged_runs"]``), each
    found where :data:`MERGED_INPUTS` records it (from ``run``'s folder, and resolved),
    else by its name as given (:func:`_part_named`); when two places hold a run, the one
    whose rows are ``run``'s (:func:`_told_apart`). RunDirError naming one found nowhere or
    not told apart; ``known``: such a part is left out instead (what cannot be found cannot
    be told: :func:`~emovox.experiment.recipe.combined_from`). ``[]`` for a run not
    merged."""
    given = metrics.get("merged_runs")
    given = given if isinstance(given, list) else []  # hand-edited: none
    records = metrics.get(MERGED_INPUTS)
    if not isinstance(records, list) or len(records) != len(given):
        records = [None] * len(given)
    home = Path(run).resolve()
    own = _OwnRows(Path(run), metrics)
    out = []
    for name, record in zip(given, records, strict=True):
        record = record if isinstance(record, dict) else {}
        places = [Path(os.path.normpath(home / v)) if key == "relative" else Path(v)
                  for key in ("relative", "resolved") if isinstance(v := record.get(key), str)]
        try:
            found = [p for p in places if (p / METRICS_FILE).is_file()] or \
                _part_named(run, str(name))
            out.append(_told_apart(run, str(name), found, own))
        except RunDirError:
            if not known:
                raise
    return out


def _part_named(run: Path, name: str) -> list[Path]:
    """Where the part ``name`` of the merged run ``run``, as merge was given it (a run
    merged before :data:`MERGED_INPUTS`, or its parts moved), may be: below the nearest
    ancestor of ``run`` that holds it, and from the working folder. The working folder
    alone read another folder's parts of the same names (review, stop 57); taking the one
    below first read the wrong ones run from the folder the merge ran in (review, stop 57):
    when both are there, :func:`_told_apart` tells them apart."""
    below = next((c for a in Path(run).resolve().parents
                  if ((c := a / name) / METRICS_FILE).is_file()), None)
    here = Path(name) if (Path(name) / METRICS_FILE).is_file() else None
    found = [p for p in (below, here) if p is not None]
    if not found:
        raise RunDirError(f"{run} was merged from {name}, which is not found (neither below "
                          "the merged run's folders nor from here: run from the folder the "
                          "merge was run in)")
    return found


class _OwnRows:
    """The rows of a merged run's predictions.csv by fold (:func:`_told_apart`), read once
    and only when two places hold a part; ``probabilities``: False for a rescored run,
    whose probabilities were read again (at its speeds), not its parts'."""

    def __init__(self, run: Path, metrics: dict[str, Any]) -> None:
        self.run = run
        self.probabilities = not metrics.get("rescored_from")
        self._rows: list[_Row] | None = None

    def of(self, folds: set[Any]) -> list[_Row]:
        if self._rows is None:
            self._rows = _rows_of(self.run)
        return [r for r in self._rows if r[0] in folds]


#: a scored row of a predictions.csv: ``(fold, path, {label: probability})``
_Row = tuple[Any, str, dict[str, float]]


def _rows_of(run: Path) -> list[_Row]:
    """The scored rows of ``run``'s predictions.csv, in (fold, path) order."""
    from emovox.experiment.rundir import read_predictions  # which imports this module

    pred = read_predictions(run)
    return sorted(((r.fold, r.path, dict(zip(pred.labels, r.proba, strict=True)))
                   for r in pred.scored()), key=lambda r: (-1 if r[0] is None else r[0], r[1]))


def _same(a: list[_Row], b: list[_Row], probabilities: bool) -> bool:
    """Are ``a`` and ``b`` the same clips of the same folds, with (``probabilities``) the
    same probabilities, each label within :data:`CHECK_TOLERANCE` (as ``rescore`` compares
    a fold model's answers with the stored ones)?"""
    if [r[:2] for r in a] != [r[:2] for r in b]:
        return False
    return not probabilities or all(
        abs(x.get(k, 0.0) - y.get(k, 0.0)) <= CHECK_TOLERANCE
        for (_, _, x), (_, _, y) in zip(a, b, strict=True) for k in x.keys() | y.keys())


def _told_apart(run: Path, name: str, found: list[Path], own: _OwnRows) -> Path:
    """The part ``name`` of the merged run ``run`` among the places ``found`` (best first)
    that hold a run of that name: the one place, else the one whose rows are the rows
    ``run``'s predictions.csv holds for its folds (merge copies them as they are). The
    first place was read silently: a merged run moved beside other runs of its parts'
    names read those (review, stop 57). Several alike (copies: an experiment copied whole)
    are one: the first. RunDirError when none is, or several differ."""
    places: list[Path] = []
    for p in found:
        if all(p.resolve() != q.resolve() for q in places):
            places.append(p)
    if len(places) == 1:
        return places[0]
    said = f"{run} was merged from {name}, found at both {' and '.join(map(str, places))}"
    try:
        rows = {p: _rows_of(p) for p in places}
        mine = {p: own.of({r[0] for r in rows[p]}) for p in places}
    except RunDirError as exc:
        raise RunDirError(f"{said}; which is the part cannot be told ({exc})") from None
    match = [p for p in places if rows[p] and _same(rows[p], mine[p], own.probabilities)]
    if match and all(_same(rows[match[0]], rows[p], True) for p in match):
        log.info("%s: %s is read (its rows are the merged run's)", said, match[0])
        return match[0]
    why = (f"neither holds the rows {run} has for its folds (re-run or edited since the "
           "merge?)" if not match else
           f"{run} was rescored (its probabilities are not its parts'), and both hold the "
           "clips of its folds, with different probabilities")
    raise RunDirError(f"{said}; {why}, so which is the part cannot be told: move away the "
                      "one that is not the part (or put back the part merge read)")
