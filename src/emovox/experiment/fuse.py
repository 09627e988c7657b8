"""Combining finished cross-validation runs.

* :func:`fuse_runs` -- late fusion: average the out-of-fold probabilities of several run
  directories clip by clip (fixed weights, never tuned on test speakers). This gives exactly
  what a fusion model trained fold by fold would give when its members are the runs' models
  (same folds, same seeds), without training anything again.
* :func:`switch_runs` -- a member that reads each clip with one of two models by a property
  of the input (``emovox ensemble --narrow-band``): per clip, one run's probabilities or the
  other's.
* :func:`merge_runs` -- one run from runs of the same configuration over disjoint folds
  (``evaluate --folds k`` in separate processes or on separate machines): their predictions
  and fold records side by side, the summary recomputed over all folds.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from emovox import __version__
from emovox.config import Adapt
from emovox.errors import ConfigError
from emovox.experiment.multicorpus import per_corpus_metrics, per_corpus_record
from emovox.experiment.recipe import (
    Key,
    check_same_recipe,
    clip_depth,
    clip_key,
    refuse_copies,
    refuse_shared_members,
)
from emovox.experiment.report import mean_std
from emovox.experiment.rescore import run_speeds
from emovox.experiment.rundest import (
    carry_files,
    check_run_destination,
    refuse_links,
    refuse_out_among,
    staged_run_dir,
)
from emovox.experiment.rundir import (
    ERRORS_FILE,
    MERGED_INPUTS,
    Prediction,
    Predictions,
    RunRecord,
    part_records,
    read_run_config,
    write_run,
)
from emovox.experiment.rundir import read_run as read_any_run
from emovox.experiment.runfiles import METRICS_FILE, PREDICTIONS_FILE, check_fold_records
from emovox.fileio import file_sha256, live_writers, open_unlinked
from emovox.labels import LABELS
from emovox.metrics import Metrics, compute_metrics, summarize

log = logging.getLogger(__name__)


def read_run(run: Path) -> RunRecord:
    """A run to combine (:func:`emovox.experiment.rundir.read_run`), each file opened
    without following a link: one swapped in after :func:`refuse_links` is refused too,
    never followed out of the run folder (code review)."""
    return read_any_run(run, unlinked=True)


def _not_an_input(out: Path, runs: list[Path]) -> None:
    """Refuse an ``out`` that is one of the runs being combined (it would be replaced), lies
    inside one (it would be written into a run folder: review, stop 56) or holds one
    (:func:`~emovox.experiment.rundest.refuse_out_among`)."""
    refuse_out_among(out, [(r, f"{r}, one of the runs being combined") for r in runs])


def _each_once(runs: Sequence[Path]) -> None:
    """Refuse a run given twice (by its resolved path: ``r/a`` and ``./r/a/`` alike), as
    ``calibrate --also`` and ``ensemble`` do: ``fuse r/a r/a`` was "fusion(mlp+mlp)", one
    run under a fusion's name, and ``fuse r/a r/b r/a`` weighed ``r/a`` 2/3 without a word
    (review, stop 52). A copied folder: :func:`~emovox.experiment.recipe.refuse_copies`."""
    seen: set[Path] = set()
    for r in runs:
        if (key := Path(r).resolve()) in seen:
            raise ConfigError(f"the run {r} is given twice: give each run once; --weights "
                              "weighs them")
        seen.add(key)


def _settled(runs: Sequence[Path]) -> list[tuple[int, int] | None]:
    """Refuse runs another live emovox process is writing now (its staging folder beside
    the run): ``merge p1 p2`` while ``evaluate --out p2`` ran again read the old p2 without
    a word, or parts of both (code review, stop 48). Returns each run's identity, which
    :func:`_unchanged` checks once everything is read."""
    for run in runs:
        where = Path(os.path.abspath(run))  # "." has no name to look for beside it
        if others := live_writers(where.parent, where.name):
            raise ConfigError(f"another emovox process (PID {others[0]}) is writing {run} "
                              "now; wait for it to finish, then combine the runs")
    return [_identity(r) for r in runs]


def _identity(run: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(run)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _unchanged(runs: Sequence[Path], seen: list[tuple[int, int] | None]) -> None:
    """Refuse when a run was replaced while it was read (a writer that started after
    :func:`_settled` and swapped its run in): what was read may mix two versions."""
    for run, was in zip(runs, seen, strict=True):
        if _identity(run) != was:
            raise ConfigError(f"{run} was replaced while it was read; combine the runs again")


def _checked(run: RunRecord, named: bool) -> list[Prediction]:
    """The scored rows of ``run``, refused when they cannot be combined (``named``: its
    model named, as a fusion's name needs: :func:`check_fold_records`)."""
    if run.predictions is None or run.predictions.labels != list(LABELS):
        raise ConfigError(f"{run.path}: probabilities are not over the {len(LABELS)} labels")
    check_fold_records(run.path, run.metrics, named=named)
    rows = list(run.predictions.scored())
    for r in rows:
        if r.true not in LABELS:
            raise ConfigError(f"{run.path}: unknown label {r.true!r} in column 'true'")
    return rows


def _tables(runs: list[RunRecord], named: bool = True) -> list[dict[Key, Prediction]]:
    """Each run's clips by :data:`~emovox.experiment.recipe.Key`, the file named by as many
    trailing path parts as make every clip of every run distinct
    (:func:`~emovox.experiment.recipe.clip_depth`)."""
    rows = [_checked(r, named) for r in runs]
    depth = clip_depth(rows)
    tables = [{clip_key(p, depth): p for p in rs} for rs in rows]
    if all(len(t) == len(rs) for t, rs in zip(tables, rows, strict=True)):
        return tables
    bad = next(r for r, t, rs in zip(runs, tables, rows, strict=True) if len(t) < len(rs))
    raise ConfigError(f"{bad.path}: the same test clip is listed twice")


def _same_truth(first: dict[Key, Prediction], other: dict[Key, Prediction], a: Path,
                b: Path) -> None:
    """Refuse runs that label a clip differently (an edited manifest, a file moved between
    emotion folders): the fusion took the first run's label, its figures depending on the
    order the runs were given in (code review, stop 46)."""
    for k, p in first.items():
        if other[k].true != p.true:
            raise ConfigError(f"{a} and {b} label {p.path} differently ({p.true!r} vs "
                              f"{other[k].true!r}): they were not run on the same data")


def _errors_of(runs: Sequence[Path]) -> list[tuple[Path, str]]:
    """The files the runs could not read (their ``errors.csv``), each once: a merged or
    fused run lost them (QA, stop 37), though its metrics still counted them."""
    seen: dict[str, str] = {}
    for run in runs:
        try:  # never through a link: its rows were carried into the result (code review)
            if (fd := open_unlinked(Path(run) / ERRORS_FILE)) is None:
                log.warning("%s is a symbolic link or not a regular file: not read",
                            Path(run) / ERRORS_FILE)
                continue
            with open(fd, newline="", encoding="utf-8",
                      errors="surrogateescape") as f:  # as written (a name not UTF-8)
                for row in csv.DictReader(f):
                    seen.setdefault(row.get("path") or "", row.get("error") or "")
        except (OSError, csv.Error, UnicodeDecodeError):
            continue  # none, or unreadable: nothing to carry over
    return [(Path(p), msg) for p, msg in seen.items() if p]


def _fold_rows(runs: list[RunRecord], per_fold: list[Metrics], folds: list[int]) -> list[dict]:
    metas = [r.metrics for r in runs]
    for r in runs:  # predictions without a fold column were a StopIteration traceback
        if missing := sorted(set(folds) - {f.get("index") for f in r.metrics["folds"]}):
            raise ConfigError(f"{r.path}: its predictions name fold(s) {missing} that its "
                              "metrics.json has no record of (a predictions.csv without "
                              "its fold column?)")
    return [
        {"index": int(f), "metrics": m.to_dict(), "n_test": m.n,
         "fit_seconds": sum(next(x["fit_seconds"] for x in mt["folds"] if x["index"] == f)
                            for mt in metas),
         "n_params": sum(next(x.get("n_params", 0) for x in mt["folds"] if x["index"] == f)
                         for mt in metas)}
        for f, m in zip(folds, per_fold, strict=True)
    ]


def _per_corpus(y: np.ndarray, pred: np.ndarray, corpora: list[str]) -> dict[str, Any]:
    """``{"per_corpus": ...}``: the metrics of each corpus's clips, as the runner writes."""
    return {"per_corpus": per_corpus_record(per_corpus_metrics(y, pred, corpora))}


def _fused_adapt(metas: list[dict[str, Any]]) -> Adapt:
    """A fusion uses unlabelled test audio as soon as one member does: it is then an adapted
    run of that member's mode (speaker or corpus), reported apart from the
    speaker-independent ones; members adapted in two modes are refused."""
    used = {Adapt(m.get("adapt", Adapt.NONE.value)) for m in metas} - {Adapt.NONE}
    if len(used) > 1:
        raise ConfigError(f"runs adapted in different ways: {sorted(a.value for a in used)}")
    return used.pop() if used else Adapt.NONE


def _weights(weights: Sequence[float] | None, runs: Sequence[Path]) -> np.ndarray:
    """``weights`` (equal when None) divided by their sum; ConfigError naming a count that
    is not the runs' or a weight that is not a positive finite number (a run weighed 0
    contributes nothing: leave it out). Divided by the largest first: ``1e308,1e308,1``
    summed to infinity, every weight 0 and an all-neutral "fusion" (review, stop 56)."""
    if weights is None:
        return np.full(len(runs), 1 / len(runs))
    if len(weights) != len(runs):
        raise ConfigError(f"{len(runs)} runs, {len(weights)} weight"
                          f"{'' if len(weights) == 1 else 's'}: give one weight per run, "
                          "in the order of the runs")
    w = np.asarray(weights, float)
    for i, (x, r) in enumerate(zip(w, runs, strict=True), 1):
        if not (np.isfinite(x) and x > 0):
            raise ConfigError(f"weight {i} ({x:g}, for {r}) is not a positive finite number"
                              + ("; a run weighed 0 adds nothing: leave it out" if x == 0
                                 else ""))
    w = w / w.max()
    return w / w.sum()


def _inputs(runs: Sequence[Path]) -> list[dict[str, str | None]]:
    """``fused_inputs``: each run as given, resolved, and the SHA-256 of its
    predictions.csv and metrics.json (None for one that cannot be read), so a fusion can
    be traced to its members' files (review, stop 56)."""

    def sha(path: Path) -> str | None:
        try:
            return file_sha256(path)
        except OSError:
            return None

    return [{"given": str(r), "resolved": str(Path(r).resolve()),
             "predictions_sha256": sha(Path(r) / PREDICTIONS_FILE),
             "metrics_sha256": sha(Path(r) / METRICS_FILE)} for r in runs]


def fuse_runs(runs: list[Path], out: Path, weights: list[float] | None = None) -> dict[str, Any]:
    """Fuse ``runs`` into the run directory ``out``; returns its metrics.json content."""
    if len(runs) < 2:
        raise ConfigError("fusion needs at least two run directories")
    w = _weights(weights, runs)
    _each_once(runs)
    _not_an_input(out, runs)
    check_run_destination(out, "fused_runs")
    refuse_shared_members(runs)
    for r in runs:  # what the result is computed from and carries: never through a link
        refuse_links(Path(r))
    seen = _settled(runs)
    records = [read_run(Path(r)) for r in runs]
    metas = [r.metrics for r in records]
    tables = _tables(records)
    protocols = {m["protocol"] for m in metas}
    if len(protocols) != 1:
        raise ConfigError(f"runs use different protocols: {sorted(protocols)}")
    keys = set(tables[0])
    for r, t in zip(runs[1:], tables[1:], strict=True):
        if set(t) != keys:
            raise ConfigError(f"{r} has other test clips or folds than {runs[0]}")
        _same_truth(tables[0], t, runs[0], r)
    refuse_copies(records)  # a copied run folder (review, stop 53)
    order = sorted(keys)
    proba = sum(wi * np.array([t[k].proba for k in order]) for wi, t in zip(w, tables, strict=True))
    # weighted: named so (it is not the equal-weight ensemble `ensemble --calibrate` builds,
    # which took it as its own: code review, stop 46)
    parts = [m["model"] if np.allclose(w, w[0]) else f"{m['model']}*{wi:.3g}"
             for m, wi in zip(metas, w, strict=True)]
    name = "fusion(" + "+".join(parts) + ")"
    speeds = run_speeds(metas, runs)  # a fusion reads its members one way (stop 46)
    return _write_combined(out, records, tables[0], order, proba, name,
                           {"fused_runs": [str(r) for r in runs], "weights": w.tolist(),
                            "weights_given": None if weights is None else [
                                float(x) for x in weights],
                            "fused_inputs": _inputs(runs),
                            **({"speeds": list(speeds)} if speeds else {})}, seen)


def switch_runs(wide: Path, narrow: Path, out: Path,
                is_narrow: Callable[[Prediction], bool]) -> dict[str, Any]:
    """One run whose every clip takes ``narrow``'s probabilities where ``is_narrow(clip)``
    and ``wide``'s elsewhere: the cross-validation record of an ensemble member that switches
    between two models by a property of the input (``emovox ensemble --narrow-band``), built
    from the two runs' out-of-fold predictions (same folds, same clips). Returns its
    metrics.json content; ``switched_clips`` counts the clips that took ``narrow``'s, per
    corpus."""
    runs = [Path(wide), Path(narrow)]
    _not_an_input(out, runs)
    check_run_destination(out, "switched_runs")
    seen = _settled(runs)
    records = [read_run(r) for r in runs]
    if len({r.metrics["protocol"] for r in records}) != 1:
        raise ConfigError(f"{narrow} uses another protocol than {wide}")
    tables = _tables(records)
    if set(tables[1]) != set(tables[0]):
        raise ConfigError(f"{narrow} has other test clips or folds than {wide}")
    order = sorted(tables[0])
    chosen = [bool(is_narrow(tables[0][k])) for k in order]
    proba = np.array([tables[int(c)][k].proba for k, c in zip(order, chosen, strict=True)])
    counts: dict[str, list[int]] = {}
    for k, c in zip(order, chosen, strict=True):
        counts.setdefault(k[1], [0, 0])[0] += int(c)
        counts[k[1]][1] += 1
    name = "|".join(r.metrics["model"] for r in records)  # as `emovox ensemble` names it
    return _write_combined(out, records, tables[0], order, proba, name, {
        "switched_runs": {"wide": str(wide), "narrow": str(narrow)},
        "switched_clips": {c: {"narrow": n, "of": m} for c, (n, m) in sorted(counts.items())}},
        seen)


def _write_combined(out: Path, records: list[RunRecord], first: dict[Key, Prediction],
                    order: list[Key], proba: np.ndarray, name: str,
                    how: dict[str, Any], seen: list[tuple[int, int] | None]) -> dict[str, Any]:
    """Write the run directory of clip-by-clip combined probabilities ``proba`` (rows in
    ``order``; clips' truth and paths from ``first``), with ``how`` they were combined
    (``seen``: the runs' identities before they were read, :func:`_settled`)."""
    metas = [r.metrics for r in records]
    y = np.array([LABELS.index(first[k].true) for k in order])
    folds = np.array([k[0] for k in order])
    pred = proba.argmax(1)
    fold_ids = sorted(set(folds.tolist()))
    per_fold = [compute_metrics(y[folds == f], pred[folds == f], list(LABELS)) for f in fold_ids]
    pooled = compute_metrics(y, pred, list(LABELS))
    result = {
        "package_version": __version__,
        "model": name,
        "protocol": metas[0]["protocol"],
        "speaker_independent": all(m["speaker_independent"] for m in metas),
        "adapt": _fused_adapt(metas).value,
        "summary": summarize(per_fold), "pooled": pooled.to_dict(),
        "worst_class": dict(zip(("label", "recall"), pooled.worst_recall, strict=True)),
        "folds": _fold_rows(records, per_fold, fold_ids),
        **how,
        **_shared(metas),
        **environments(metas),
        **_per_corpus(y, pred, [k[1] for k in order]),
    }
    test_only = {tuple(m.get("test_only_corpora") or ()) for m in metas}
    if len(test_only) != 1:
        raise ConfigError(f"runs set aside different test-only corpora: {sorted(test_only)}")
    if test_only != {()}:
        result["test_only_corpora"] = list(test_only.pop())
    rows = [
        Prediction(first[k].path, first[k].speaker, first[k].true, LABELS[pred[i]],
                   tuple(float(v) for v in proba[i]), fold=k[0], corpus=first[k].corpus)
        for i, k in enumerate(order)
    ]
    s = result["summary"]["ua"]
    kind = "fused_runs" if "fused_runs" in how else "switched_runs"
    with staged_run_dir(Path(out), kind) as stage:
        write_run(stage, result, Predictions(list(LABELS), rows), pooled=pooled,
                  titles=(f"{name}: UA {mean_std(s['mean'], s['std'], len(fold_ids))}",
                          f"{name}: recall per class"),
                  errors=_errors_of([r.path for r in records]))
        _unchanged([r.path for r in records], seen)
    return result


#: run facts a combination keeps when every run agrees on them (a fused loco fold looked
#: like the whole protocol without ``protocol_folds``: code review, stop 46)
_SHARED_KEYS = ("protocol_folds", "balance_corpora", "teachers")


def _shared(metas: list[dict[str, Any]]) -> dict[str, Any]:
    """The :data:`_SHARED_KEYS` every run records alike; ``protocol_folds`` recorded
    differently is refused (runs of another protocol size; runs written before it was
    recorded have none)."""
    out = {}
    for k in _SHARED_KEYS:
        values = [m.get(k) for m in metas]
        if k == "protocol_folds" and len({json.dumps(v) for v in values if v is not None}) > 1:
            raise ConfigError(f"the runs come from protocols of different sizes "
                              f"(protocol_folds {values})")
        if values[0] is not None and all(v == values[0] for v in values):
            out[k] = values[0]
    return out


def _teachers(configs: list[dict[str, Any]]) -> list[str]:
    """Every part's teacher runs, in order, each once."""
    return list(dict.fromkeys(t for c in configs for t in c.get("teachers") or []))


def environments(metrics: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``environment`` record of runs combined into one: ``{"environment": E}`` when every
    run that recorded one recorded the same, ``{"environments": [E1, E2, ...]}`` (distinct, in
    order) when they differ, ``{}`` when none did (runs written before it was recorded)."""
    seen: list[Any] = []
    for m in metrics:
        for env in [m.get("environment"), *(m.get("environments") or [])]:
            if env is not None and env not in seen:
                seen.append(env)
    if not seen:
        return {}
    return {"environment": seen[0]} if len(seen) == 1 else {"environments": seen}


def merge_runs(runs: list[Path], out: Path) -> dict[str, Any]:
    """Merge runs of one configuration over disjoint folds into the run directory ``out``;
    returns its metrics.json content (per-fold records kept as they were, summary, pooled
    metrics and the validation/training UA means over all folds)."""
    import yaml

    if len(runs) < 2:
        raise ConfigError("merging needs at least two run directories")
    _not_an_input(out, runs)
    check_run_destination(out, "merged_runs")
    for r in runs:  # what the result is computed from and carries: never through a link
        refuse_links(Path(r))
    seen = _settled(runs)
    records = [read_run(Path(r)) for r in runs]
    configs = [read_run_config(Path(r), unlinked=True) for r in runs]  # capped (stop 48)
    check_same_recipe(configs, runs)
    run_speeds([r.metrics for r in records], runs)  # parts read alike (stop 46)
    fold_rows = [f for r in records for f in r.metrics["folds"]]
    if int(configs[0].get("split", {}).get("n_val_speakers", 1)) == 0:
        # no validation speakers, no validation UA (parts written before the trainer kept
        # an empty validation history stored the last epoch's index here)
        fold_rows = [{**f, "val_ua": None} for f in fold_rows]
    indices = [f["index"] for f in fold_rows]
    if len(set(indices)) != len(indices):
        shared = sorted({i for i in indices if indices.count(i) > 1})
        raise ConfigError(f"the runs share fold(s) {', '.join(map(str, shared))}: merge parts "
                          "that each hold other folds")
    rows = [p for table in _tables(records, named=False) for p in table.values()]
    y = np.array([LABELS.index(p.true) for p in rows])
    proba = np.array([p.proba for p in rows])
    folds = np.array([p.fold for p in rows])
    order = sorted(set(indices))
    per_fold = [compute_metrics(y[folds == f], proba[folds == f].argmax(1), list(LABELS))
                for f in order]
    pooled = compute_metrics(y, proba.argmax(1), list(LABELS))
    first = records[0].metrics

    def mean_of(key: str) -> float | None:
        vals = [f.get(key) for f in fold_rows]
        return float(np.mean(vals)) if all(v is not None for v in vals) else None

    result = {
        **{k: v for k, v in first.items()
           if k not in {"folds", "seconds_total", "per_corpus", "environment", "environments",
                        "rescored_from"}},
        "summary": summarize(per_fold), "pooled": pooled.to_dict(),
        "worst_class": dict(zip(("label", "recall"), pooled.worst_recall, strict=True)),
        "val_ua_mean": mean_of("val_ua"), "train_ua_mean": mean_of("train_ua"),
        "folds": sorted(fold_rows, key=lambda f: f["index"]),
        "seconds_total": sum(r.metrics.get("seconds_total", 0.0) for r in records),
        **environments([r.metrics for r in records]),
        "merged_runs": [str(r) for r in runs],
        MERGED_INPUTS: part_records([str(r) for r in runs], runs, out),  # (review, 57)
        "teachers": _teachers(configs),
        **_per_corpus(y, proba.argmax(1), [p.corpus for p in rows]),
    }
    config = dict(configs[0])
    config["split"] = {**config["split"], "folds": order}
    config["teachers"] = _teachers(configs)
    s = result["summary"]["ua"]
    with staged_run_dir(Path(out), "merged_runs") as stage:
        write_run(stage, result, Predictions(list(LABELS), sorted(rows, key=lambda p: (
            p.fold, p.path))), pooled=pooled, errors=_errors_of(runs),
                  titles=(f"{first['model']}: UA {mean_std(s['mean'], s['std'], len(order))}",
                          f"{first['model']}: recall per class"))
        (stage / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        for r in runs:  # each part's training curves stay with its folds (a link: skipped)
            carry_files([*Path(r).glob("history_fold*.json"),
                         *Path(r).glob("curves_fold*.png")], stage)
        _unchanged(runs, seen)
    return result


__all__ = ["fuse_runs", "merge_runs", "switch_runs"]
