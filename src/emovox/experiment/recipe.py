"""Does a cross-validation run measure the model it is attached to? (``train --calibrate``,
``emovox calibrate``, ``emovox ensemble --calibrate``): the same validation hold-out, corpora,
vocal channels, corpus balance, model parameters and augmentation; each difference is
logged, since the card would show another recipe's figures and temperature.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from emovox.artifact.clips import DIGEST_HEX
from emovox.config import ExperimentConfig, folder_tail, read_capped, safe_yaml
from emovox.corpora import canonical_name
from emovox.errors import ConfigError
from emovox.experiment.rundir import (
    CONFIG_FILE,
    METRICS_FILE,
    PREDICTIONS_FILE,
    Prediction,
    Predictions,
    RunDirError,
    RunRecord,
    merged_parts,
    read_cv_run,
    read_metrics,
    read_predictions,
)

log = logging.getLogger(__name__)

#: how :func:`recipe_differences` says a run's config could not be read
UNREADABLE = "its config.yaml could not be read, so the recipes could not be compared"

__all__ = ["UNREADABLE", "Key", "check_recipe", "check_same_recipe", "checked_cv_run",
           "clip_depth", "clip_key", "combined_from", "fused_differences",
           "metrics_with_also", "prediction_keys", "read_also_runs", "recipe_differences",
           "refuse_copies", "refuse_shared_members", "trained_val_speakers",
           "warn_other_clips", "warn_recipe"]


def check_recipe(run: Path, cv: Any, trained_val: int | None, model: str) -> bool:
    """Log a warning when the CV run ``run`` (a :class:`~emovox.experiment.rundir.CvRun`)
    held out another number of validation speakers per fold than the model ``model`` was
    trained with (``trained_val``): early stopping on 2 speakers and fixed epochs on all
    are different recipes, so the card's figures would not measure the model. Returns
    whether the two agree (or cannot be told apart)."""
    ran = cv.metrics.get("val_speakers")
    if ran is None or trained_val is None or int(ran) == int(trained_val):
        return True
    log.warning("%s held out %d validation speaker(s) per fold but %s was trained with %d: "
                "its figures measure another recipe (evaluate with --val-speakers %d to "
                "match)", run, ran, model, trained_val, trained_val)
    return False


def checked_cv_run(run: Path | None, model: str, trained_val: int | None,
                    config: dict[str, Any] | None = None) -> Any:
    """The CV run ``run`` of ``model`` (None without one), its validation hold-out checked
    against the model's (:func:`check_recipe`), and its recipe against ``config`` (the
    model's experiment config: :func:`recipe_differences`)."""
    if not run:
        return None
    cv = read_cv_run(run, model)
    check_recipe(Path(run), cv, trained_val, model)
    if config and (diffs := recipe_differences(Path(run), config)):
        warn_recipe(Path(run), model, diffs)
    return cv


def warn_recipe(run: Path, model: object, diffs: list[str]) -> None:
    """Log what :func:`recipe_differences` found about ``run`` and ``model``."""
    if diffs and diffs[0].startswith(UNREADABLE):
        log.warning("%s: %s (%s)", run, UNREADABLE, diffs[0][len(UNREADABLE) + 2:])
    elif diffs:
        log.warning("%s was run with another recipe than %s (%s): the model card would show "
                    "figures and a temperature of that recipe, not of this model", run, model,
                    "; ".join(diffs))


def recipe_differences(run: Path, config: dict[str, Any]) -> list[str]:
    """What the CV run ``run`` (its ``config.yaml``) did otherwise than the experiment
    config ``config`` of a model: corpora trained on (a test-only corpus is not), vocal
    channels, corpus balance, model parameters (defaults filled in, ``threads`` aside),
    augmentation (when either side made copies) -- research QA, stop 32: a RAVDESS-only
    1-epoch run calibrated a 3-corpus model silently. Empty when they agree or the run has
    no config (a fused run); an unreadable config is said."""
    path = run / CONFIG_FILE
    if not path.is_file():
        return []
    try:
        text = read_capped(path)  # at most 1 MiB, no aliases (code review, stop 48)
        if not text.strip():  # an empty file read as all defaults (re-check 3)
            return [f"{UNREADABLE}: the file is empty"]
        return _compare(ExperimentConfig.from_dict(safe_yaml(text, path) or {}).to_dict(),
                        ExperimentConfig.from_dict(config).to_dict())
    except (OSError, ValueError, ConfigError, yaml.YAMLError, AttributeError, TypeError,
            KeyError) as exc:  # a config of another shape (re-check 2, stop 32)
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return [f"{UNREADABLE}: {why}"]


def fused_differences(run: Path, configs: Sequence[dict[str, Any]]
                      ) -> list[tuple[Path, list[str]]]:
    """For an ``emovox fuse`` run (no config of its own): each run it fused, compared
    (:func:`recipe_differences`) with the experiment config in ``configs`` (an ensemble's
    members) of the same model; ``(fused run, differences)`` for each that differs, is not
    there any more, or is of a model no member is (stop 33: a fused run was not
    checked). Empty for a run that fused nothing."""
    try:
        fused = [_fused_run(run, r) for r in read_metrics(run).get("fused_runs") or []]
    except RunDirError:
        return []
    by_model: dict[str, list[dict[str, Any]]] = {}
    for c in configs:
        by_model.setdefault(str((c.get("model") or {}).get("name")), []).append(c)
    found = []
    for r in fused:
        try:
            name = str(read_metrics(r).get("model"))
        except RunDirError as exc:
            gone = not r.exists()  # deleted since: said so (QA re-check, stop 34)
            found.append((r, ["this run is not there any more" if gone else
                              f"{UNREADABLE}: {exc}"]))
            continue
        if name not in by_model:
            found.append((r, [f"its model {name} is none of the members' "
                              f"({', '.join(sorted(by_model))})"]))
        elif diffs := min((recipe_differences(r, c) for c in by_model[name]), key=len):
            found.append((r, diffs))
    return found


def _fused_run(fused: Path, member: str) -> Path:
    """A run ``fuse`` recorded (as given on its command line, so relative to the folder it
    was run from): there, else beside the fused run (``ensemble`` run from another folder
    found neither and compared nothing: QA re-check, stop 34)."""
    p = Path(member)
    if p.is_absolute() or p.exists():
        return p
    beside = Path(fused).parent / p
    return beside if beside.exists() else p


#: readers of a user's own data: the folder or manifest they read is what the data is
OWN_DATA_READERS = frozenset({"folder", "csv", "manifest"})


def own_data(config: dict[str, Any]) -> list[str]:
    """``READER=NAME`` of each folder or manifest a config reads with a reader of
    :data:`OWN_DATA_READERS` (the name only: the same data may sit elsewhere). Own-data QA,
    stop 33: a CV run on another manifest calibrated a model silently."""
    data = config["data"]
    sources = [(data.get("corpus"), data.get("root")), *(
        str(c).partition("=")[::2] for c in data.get("corpora") or ())]
    return sorted(f"{canonical_name(n)}={Path(str(r).strip()).name}" for n, r in sources
                  if canonical_name(n) in OWN_DATA_READERS)


def _compare(ran: dict[str, Any], ours: dict[str, Any]) -> list[str]:
    """The differences :func:`recipe_differences` names, between two config dicts."""

    def corpora(d: dict[str, Any]) -> list[str]:
        data = d["data"]
        names = [str(data["corpus"]), *(str(c).partition("=")[0] for c in data.get("corpora")
                                        or ())]
        test_only = {canonical_name(t) for t in data.get("test_only") or ()}
        return sorted({canonical_name(n) for n in names} - test_only)  # aliases alike

    diffs = [] if corpora(ran) == corpora(ours) else [
        f"corpora {'+'.join(corpora(ran))} vs {'+'.join(corpora(ours))}"]
    if own_data(ran) != own_data(ours):  # a public corpus lives anywhere; a user's own data
        diffs.append(f"data {', '.join(own_data(ran))} vs {', '.join(own_data(ours))}")
    for key in ("vocal_channels", "train_extra", "balance_corpora", "speakers"):
        if ran["data"].get(key) != ours["data"].get(key):
            diffs.append(f"{key} {ran['data'].get(key)} vs {ours['data'].get(key)}")
    params = _full_params(ran["model"], ours["model"])
    changed = sorted(k for k in set(params[0]) | set(params[1])
                     if params[0].get(k) != params[1].get(k))
    if changed:
        diffs.append("model parameters " + ", ".join(
            f"{k} {params[0].get(k)} vs {params[1].get(k)}" for k in changed))
    copies = [int((d.get("augment") or {}).get("variants", 0)) for d in (ran, ours)]
    if any(copies) and ran.get("augment") != ours.get("augment"):
        diffs.append("augmentation")
    return diffs


def _full_params(*models: dict[str, Any]) -> list[dict[str, Any]]:
    """Each model's ``-p`` parameters with its defaults filled in (``threads`` left out); a
    side that does not validate gets the defaults under what it wrote, so only what it
    changed is named (re-checks 2 and 3, stop 32)."""
    from emovox.models import get_model_spec

    out = []
    for m in models:
        raw = dict(m.get("params") or {})
        try:
            spec = get_model_spec(str(m.get("name")))
        except (ValueError, ConfigError):
            out.append(raw)
            continue
        try:
            full = spec.configure(raw).to_params()
        except (ValueError, ConfigError, TypeError):
            full = {**spec.defaults.to_params(), **raw}
        out.append(full)
    return [{k: v for k, v in p.items() if k != "threads"} for p in out]


def trained_val_speakers(config: dict[str, Any]) -> int | None:
    """``split.n_val_speakers`` of a model's experiment config (None when absent)."""
    split = config.get("split") if isinstance(config, dict) else None
    value = split.get("n_val_speakers") if isinstance(split, dict) else None
    return int(value) if isinstance(value, int) else None


def read_also_runs(runs: Sequence[Path], model: str, main: Path | None = None) -> list[Any]:
    """Each further calibration run (checked like the main one: a speaker-independent CV run
    of ``model``), as :class:`~emovox.experiment.rundir.CvRun`. A run given twice, or the
    ``main`` run again, is refused: its predictions would count twice (QA, stop 40); so is
    a copy of one, however saved: two runs holding the same clip with the same
    probabilities (re-checks, stop 40: a copy with other line endings or rows in another
    order was pooled twice)."""
    seen: dict[Path, str] = {}
    for r in [*([main] if main is not None else []), *runs]:
        key = Path(r).resolve()
        if key in seen:
            raise ConfigError(f"the run {seen[key]} is given twice: give each calibration "
                              "run once")
        seen[key] = str(r)
    also = [read_cv_run(Path(r), model) for r in runs]
    given = [*([main] if main is not None and runs else []), *runs]
    preds = [read_predictions(Path(r) / PREDICTIONS_FILE)
             if (Path(r) / PREDICTIONS_FILE).is_file() else None for r in given]
    depth = clip_depth([[x for x in p.scored() if x.path] for p in preds if p is not None])
    held: dict[tuple[Any, ...], str] = {}
    for r, pred in zip(given, preds, strict=True):
        rows = prediction_keys(pred, depth) if pred is not None else set()
        for other in {held[k] for k in rows if k in held}:
            n = sum(held.get(k) == other for k in rows)
            raise ConfigError(f"the runs {other} and {r} hold {n} identical prediction(s) "
                              "(the same clip with the same probabilities: copies of one "
                              "run?): give each calibration run once")
        held.update(dict.fromkeys(rows, str(r)))
    return also


#: a clip across runs: (fold, corpus, speaker, file name with as many of its folders as
#: tell clips apart) -- not the path as written, which is relative to wherever each run was
#: started (``../shared/...`` vs ``/work/shared/...``)
Key = tuple[int, str, str, str]


def clip_key(r: Prediction, depth: int) -> Key:
    """The clip of the predictions.csv row ``r`` (:data:`Key`), its file named by its last
    ``depth`` path parts (:func:`clip_depth`)."""
    return (r.fold if r.fold is not None else -1, r.corpus, r.speaker,
            "/".join(Path(r.path).parts[-depth:]))


def clip_depth(rows: Sequence[Sequence[Prediction]]) -> int:
    """The fewest trailing path parts that name every clip of each run's ``rows`` apart
    (:func:`clip_key`): a folder per emotion holds ``angry/anna_1.wav`` and
    ``sad/anna_1.wav``, which the file name alone made one clip (QA, stop 37), while the
    same clips read from another folder still match. The longest path's parts when none
    does (a clip listed twice: the caller's to refuse)."""
    longest = max((len(Path(p.path).parts) for rs in rows for p in rs), default=1)
    return next((d for d in range(1, longest + 1)
                 if all(len({clip_key(p, d) for p in rs}) == len(rs) for rs in rows)),
                longest)


def prediction_keys(pred: Predictions, depth: int | None = None) -> set[tuple[Any, ...]]:
    """A key per scored row of a predictions.csv: the clip (:func:`clip_key`, its file by
    its last ``depth`` path parts, default :func:`clip_depth` of these rows: ``../data/a.wav``
    and ``/work/data/a.wav`` are one clip, from any working folder -- made absolute from
    the working folder, a copy whose paths were rewritten was told apart in one folder and
    not in another: review, stop 56) and its probabilities to 4 decimals, by label: the
    same answer however the file was saved."""
    rows = [r for r in pred.scored() if r.path]
    depth = clip_depth([rows]) if depth is None else depth
    order = sorted(range(len(pred.labels)), key=lambda i: pred.labels[i])
    return {(*clip_key(r, depth), *(f"{pred.labels[i]}={r.proba[i]:.4f}" for i in order))
            for r in rows if r.proba is not None}


def refuse_copies(records: Sequence[RunRecord]) -> None:
    """ConfigError naming two of the runs ``records`` whose predictions are the same, every
    clip with the same probabilities (:func:`prediction_keys`): one run copied to another
    folder (``cp -r``), which ``fuse`` weighed double (review, stop 53), as ``ensemble``
    refuses a copied member by its weights. Runs of other seeds over the same clips answer
    otherwise, and are no copies."""
    preds = [rec.predictions for rec in records]
    depth = clip_depth([[r for r in p.scored() if r.path] for p in preds if p is not None])
    seen: dict[frozenset[tuple[Any, ...]], Path] = {}
    for rec in records:
        if rec.predictions is None or not (
                key := frozenset(prediction_keys(rec.predictions, depth))):
            continue
        if key in seen:
            raise ConfigError(f"{seen[key]} and {rec.path} hold the same predictions (every "
                              "clip with the same probabilities: one a copy of the other, or "
                              "a recipe whose --seed changes nothing?); give each run once: "
                              "it would be weighed twice")
        seen[key] = rec.path


def combined_from(run: Path, _within: frozenset[Path] = frozenset()) -> set[Path]:
    """Every run the run ``run`` was combined from (``fuse``, ``merge``), followed down (a
    fusion of fusions), each resolved: a fused run's where ``fused_inputs`` recorded it,
    else as written from here, else below an ancestor of ``run``; a merged run's parts as
    :func:`~emovox.experiment.rundir.merged_parts` finds them (its ``merged_inputs``: by
    name only, a fusion of two merges sharing a part, run from a folder holding parts of
    the same names, weighed it twice: review, stop 57). One found nowhere, or not told
    apart, is left out: what cannot be found cannot be told. A switched member
    (``switched_runs``) is one member: its runs are not followed."""
    try:
        metrics = read_metrics(run)
    except RunDirError:
        return set()
    here = Path(run).resolve()
    fused = filter(None, (_found(here, c) for c in _members_named(metrics)))
    found: set[Path] = set()
    for where in [*fused, *merged_parts(Path(run), metrics, known=True)]:
        if (r := where.resolve()) not in _within | {here}:
            found |= {r, *combined_from(r, _within | {here})}
    return found


def _members_named(metrics: dict[str, Any]) -> list[list[str]]:
    """The runs a fused run's ``metrics`` names as its members: for each, the paths it may
    be found at, best first (the resolved path ``fused_inputs`` recorded, then as given)."""
    inputs = metrics.get("fused_inputs")
    named = [[str(i.get(k)) for k in ("resolved", "given") if isinstance(i.get(k), str)]
             for i in inputs if isinstance(i, dict)] if isinstance(inputs, list) else []
    value = metrics.get("fused_runs")
    if isinstance(value, list) and not named:  # fused_inputs names the same runs
        named += [[v] for v in value if isinstance(v, str)]
    return [[c for c in n if c] for n in named]


def _found(run: Path, candidates: list[str]) -> Path | None:
    """The first of ``candidates`` (paths) that is a run folder: an absolute one as it is, a
    relative one from here or below an ancestor of ``run`` when these all lead to one run.
    Two runs of one relative name (``p0`` of two merges, each made in its own folder) are
    neither: which one was meant cannot be told (a fusion of the two merges, run from one
    of their folders, was refused as weighing its ``p0`` twice: review, stop 56)."""
    for p in map(Path, candidates):
        places = [p] if p.is_absolute() else [p, *(a / p for a in run.parents)]
        runs = {c.resolve() for c in places if (c / METRICS_FILE).is_file()}
        if len(runs) == 1:
            return runs.pop()
    return None


def refuse_shared_members(runs: Sequence[Path]) -> None:
    """ConfigError when one of ``runs`` is among the runs another was combined from
    (:func:`combined_from`), or two were combined from one run: ``fuse A B FUSED_AB``
    weighed A and B twice (review, stop 56)."""
    made = [(r, Path(r).resolve(), combined_from(Path(r))) for r in runs]
    for i, (a, ra, ma) in enumerate(made):
        for b, rb, mb in made[i + 1:]:
            for x, rx, y, my in ((a, ra, b, mb), (b, rb, a, ma)):
                if rx in my:
                    raise ConfigError(f"{x} is one of the runs {y} was combined from: it "
                                      "would be weighed twice; give one of them")
            if shared := sorted(ma & mb):
                raise ConfigError(f"{a} and {b} were both combined from {shared[0]}: it "
                                  "would be weighed twice; give each run once")


def metrics_with_also(metrics: dict[str, Any], also_runs: Sequence[Any]) -> dict[str, Any]:
    """The main CV run's metrics with the further runs' headline metrics under ``"also"``
    (the model card and ``emovox models`` show them: e.g. RAVDESS EmoBox beside loco)."""
    return {**metrics, "also": [a.metrics for a in also_runs]} if also_runs else metrics


def warn_other_clips(run: Path, cv: Any, trained: Iterable[str] | None,
                     corpora: Iterable[str] = ()) -> int:
    """Log when clips that the CV run ``run`` tested are not among the model's training
    clips (``trained``: their SHA-256 digests, whole or cut): clips of one's own data (a
    manifest or folder: the run read another ``own.csv`` of the same name, or an edited
    one, stop 35) and clips of the model's own ``corpora`` (a run on other actors of
    RAVDESS, QA stop 40; a corpus the model was never trained on, held out by a ``loco``
    run, is not counted). The recipe check compares names only and could not tell.
    Returns how many (files gone since are not counted)."""
    from emovox.fileio import file_sha256

    if trained is None:
        return 0
    known = {d[:DIGEST_HEX] for d in trained}
    counted = OWN_DATA_READERS | {str(c).lower() for c in corpora}
    with open(cv.predictions, newline="", encoding="utf-8", errors="surrogateescape") as fh:
        rows = [r["path"] for r in csv.DictReader(fh)
                if (r.get("corpus") or "").lower() in counted and r.get("path")]
    other = read = 0
    for path in dict.fromkeys(rows):
        try:
            other += file_sha256(path)[:DIGEST_HEX] not in known
            read += 1
        except OSError:
            continue
    if other:
        log.warning("%s tested %d clip(s) that the model was not trained on (of %d): it read "
                    "other data (other speakers or files, another or an edited manifest or "
                    "folder), so its figures and temperature are not this model's", run,
                    other, read)
    return other


#: config keys that may differ between the parts of a merged run (``teachers``: each fold's
#: part may be taught by that fold's teacher parts; all parts distilled or none)
_PART_KEYS = {"folds", "cache_dir", "n_jobs", "teachers", "save_models"}


def _normal(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with every setting it does not name at its default: a part written before
    a setting existed ran with that default, so it is the same recipe."""
    try:
        return ExperimentConfig.from_dict(config).to_dict()
    except ConfigError:  # a config of another version: compared as written
        return config


def check_same_recipe(configs: list[dict[str, Any]], runs: list[Path]) -> None:
    """ConfigError unless the parts ``runs`` of a merge (their ``configs``) ran one
    configuration, the settings of :data:`_PART_KEYS` aside, naming what differs."""

    def strip(d: Any) -> Any:
        if isinstance(d, dict):
            return {k: strip(v) for k, v in d.items() if k not in _PART_KEYS}
        return d

    configs = [_data_named(_normal(c)) for c in configs]

    for r, c in zip(runs[1:], configs[1:], strict=True):
        if strip(c) != strip(configs[0]):
            keys = _differing_keys(strip(c), strip(configs[0]))
            raise ConfigError(f"{r} was run with another configuration than {runs[0]} "
                              f"({', '.join(keys[:6])}{', ...' if len(keys) > 6 else ''})")
        if bool(c.get("teachers")) != bool(configs[0].get("teachers")):
            raise ConfigError(f"{r} and {runs[0]}: one was distilled from teachers, the "
                              "other not")


def _data_named(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with its data folders named by their last two parts: the same corpus read
    from ``../shared/...`` on one machine and ``/work/shared/...`` on another was "another
    configuration" (code review, stop 46)."""
    data = config.get("data")
    if not isinstance(data, dict):
        return config

    def tail(path: Any) -> Any:
        return folder_tail(path) if isinstance(path, str) else path

    named = {**data, "root": tail(data.get("root"))}
    if isinstance(data.get("corpora"), list):
        named["corpora"] = [f"{c.split('=', 1)[0]}={tail(c.split('=', 1)[1])}"
                            if isinstance(c, str) and "=" in c else c for c in data["corpora"]]
    return {**config, "data": named}


def _differing_keys(a: Any, b: Any, prefix: str = "") -> list[str]:
    """The dotted names of the settings that differ between configs ``a`` and ``b``
    (``adapt``, ``model.params.epochs``, ...)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [k for key in sorted(set(a) | set(b), key=str)
                for k in _differing_keys(a.get(key), b.get(key), f"{prefix}{key}.")]
    return [] if a == b else [prefix.rstrip(".") or "config"]
