"""The run directory: the one writer and the one reader of what an experiment leaves.

A run directory holds:

- ``metrics.json``: the run's numbers (cross-validation: per fold, mean +- std over folds,
  pooled; cross-corpus: pooled over the shared classes). Always has ``"protocol"``.
- ``predictions.csv``: one row per test clip, columns in this order
  (:data:`PREDICTION_COLUMNS` then the probabilities, then ``error``):

  ========  =============================================================================
  fold      fold index of the clip's test side; empty for cross-corpus scoring
  path      the audio file
  speaker   globally unique speaker id (``ravdess:01``)
  corpus    corpus reader name (``ravdess``); empty in runs written before this column
  true      true label (canonical name)
  pred      predicted label; empty when the clip failed
  p_<lab>   probability of each label of the run, in the run's label order (six
            decimals); empty when the clip failed
  error     why the clip could not be scored; empty otherwise
  ========  =============================================================================

- ``config.yaml`` (cross-validation), ``errors.csv`` (``path,error``: files that failed at
  feature extraction), the plots ``confusion.png`` and ``recall.png``.

Runs are staged next to the destination and swapped in whole
(:func:`emovox.experiment.rundest.staged_run_dir`): no
stale files, no half runs; a destination that is not an emovox run folder is never touched.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from emovox.errors import ConfigError
from emovox.experiment.runfiles import (
    CONFIG_FILE,
    ERRORS_FILE,
    MERGED_INPUTS,
    METRICS_FILE,
    METRICS_MAX_BYTES,
    PREDICTIONS_FILE,
    RunDirError,
    check_run_folder,
    link_refused,
    merged_parts,
    part_records,
    read_metrics,
    read_unlinked,
    unlinked_fd,
)

if TYPE_CHECKING:
    from emovox.config import ExperimentConfig
    from emovox.metrics import Metrics

log = logging.getLogger(__name__)

#: leading columns of predictions.csv; ``p_<label>`` columns and ``error`` follow
PREDICTION_COLUMNS: tuple[str, ...] = ("fold", "path", "speaker", "corpus", "true", "pred")
PROBA_PREFIX = "p_"
#: probabilities are written with six decimals; readers floor them at half that step
PROBA_FLOOR = 5e-7


@dataclass
class Prediction:
    """One row of predictions.csv. ``proba`` is None (and ``error`` set) for a failed clip."""

    path: str
    speaker: str
    true: str
    pred: str = ""
    proba: tuple[float, ...] | None = None
    fold: int | None = None
    corpus: str = ""
    error: str = ""


@dataclass
class Predictions:
    """predictions.csv in memory: ``labels`` orders every row's ``proba``."""

    labels: list[str]
    rows: list[Prediction] = field(default_factory=list)

    def scored(self) -> list[Prediction]:
        """The rows that have probabilities (no error)."""
        return [r for r in self.rows if r.proba is not None]

    def probabilities(self) -> np.ndarray:
        """``(N, C)`` probabilities of the scored rows."""
        return np.array([r.proba for r in self.scored()], float).reshape(-1, len(self.labels))

    def true_indices(self) -> np.ndarray:
        """``(N,)`` index into ``labels`` of each scored row's true label."""
        try:
            return np.array([self.labels.index(r.true) for r in self.scored()], int)
        except ValueError as exc:
            raise ValueError(f"unknown label in column 'true' ({exc})") from None


@dataclass
class RunRecord:
    """A run directory as read back: its metrics.json and (when asked for) predictions."""

    path: Path
    metrics: dict[str, Any]
    predictions: Predictions | None = None

    @property
    def model(self) -> str:
        return str(self.metrics.get("model", "?"))

    @property
    def protocol(self) -> str:
        return str(self.metrics["protocol"])

    @property
    def speaker_independent(self) -> bool:
        return bool(self.metrics.get("speaker_independent"))

    @property
    def is_cross_validation(self) -> bool:
        return "summary" in self.metrics and "folds" in self.metrics

    @property
    def n_folds(self) -> int:
        return len(self.metrics.get("folds", []))


# ---------------------------------------------------------------------------- writing


def write_predictions(path: Path, predictions: Predictions) -> None:
    """Write ``predictions.csv`` in the one schema (see the module docstring)."""
    probas = [f"{PROBA_PREFIX}{lab}" for lab in predictions.labels]
    # a file name that is not UTF-8 (Latin-1 names of an old zip) is written byte for byte and
    # read back so (rescore, distil find the file); it failed the run after every fold (code
    # review, stop 47)
    with open(path, "w", newline="", encoding="utf-8", errors="surrogateescape") as f:
        w = csv.writer(f)
        w.writerow([*PREDICTION_COLUMNS, *probas, "error"])
        for r in predictions.rows:
            p = [f"{v:.6f}" for v in r.proba] if r.proba is not None else [""] * len(probas)
            w.writerow(["" if r.fold is None else r.fold, r.path, r.speaker, r.corpus, r.true,
                        r.pred, *p, r.error])


def write_run(
    out: Path,
    metrics: dict[str, Any],
    predictions: Predictions,
    *,
    pooled: Metrics,
    titles: tuple[str, str],
    config: ExperimentConfig | None = None,
    errors: Sequence[tuple[Path, str]] = (),
) -> None:
    """Write a run directory into ``out`` (normally a
    :func:`~emovox.experiment.rundest.staged_run_dir` folder);
    ``titles``: those of the confusion and the recall plot of ``pooled``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if config is not None:
        config.save_yaml(out / CONFIG_FILE)
    (out / METRICS_FILE).write_text(json.dumps(metrics, indent=2))
    write_predictions(out / PREDICTIONS_FILE, predictions)
    if errors:
        with open(out / ERRORS_FILE, "w", newline="", encoding="utf-8",
                  errors="surrogateescape") as f:
            w = csv.writer(f)
            w.writerow(["path", "error"])
            w.writerows((str(p), msg) for p, msg in errors)
    from emovox.plots import plot_confusion, plot_recall

    plot_confusion(pooled.confusion, pooled.labels, out / "confusion.png", titles[0])
    plot_recall(pooled.recall, out / "recall.png", titles[1])


# ---------------------------------------------------------------------------- reading


def _float_or_none(cells: list[str]) -> tuple[float, ...] | None:
    """None for a failed clip (all empty); some cells empty: ValueError (stop 38)."""
    return None if all(c == "" for c in cells) else tuple(float(c) for c in cells)


def _open_text(path: Path, unlinked: bool) -> IO[str]:
    """``path`` opened for reading as written (a name not UTF-8 kept), through no link when
    ``unlinked`` (:func:`~emovox.experiment.runfiles.unlinked_fd`)."""
    return open(unlinked_fd(path) if unlinked else path, newline="", encoding="utf-8",
                errors="surrogateescape")


def read_predictions(path: Path, *, unlinked: bool = False) -> Predictions:
    """``predictions.csv`` (a file, or a run directory holding one) in any layout emovox
    has written: the columns are found by name, ``corpus``/``fold``/``error`` optional.
    ``unlinked``: read without following a link (:func:`link_refused` for one)."""
    path = Path(path)
    if path.is_dir():
        path = path / PREDICTIONS_FILE
    try:
        with _open_text(path, unlinked) as f:
            reader = csv.DictReader(f)
            names = list(reader.fieldnames or [])
            probas = [c for c in names if c.startswith(PROBA_PREFIX)]
            missing = [c for c in ("true",) if c not in names] or ([] if probas else ["p_*"])
            if missing:
                raise RunDirError(f"{path}: missing column(s) {', '.join(missing)}")
            rows = []
            for r in reader:  # a malformed row is named by its line (stop 39)
                try:
                    rows.append(Prediction(
                        path=r.get("path") or "", speaker=r.get("speaker") or "",
                        true=r["true"], pred=r.get("pred") or "",
                        proba=_float_or_none([r[c] for c in probas]),
                        fold=int(r["fold"]) if r.get("fold") else None,
                        corpus=r.get("corpus") or "", error=r.get("error") or ""))
                except (ValueError, TypeError) as exc:
                    raise RunDirError(f"{path}, line {reader.line_num}: malformed ({exc})"
                                      ) from None
    except OSError as exc:
        raise RunDirError(f"{path}: unreadable ({exc})") from None
    except (ValueError, csv.Error) as exc:  # NUL bytes, an unreadable encoding
        raise RunDirError(f"{path}: malformed ({exc})") from None
    return Predictions([c[len(PROBA_PREFIX):] for c in probas], rows)


def read_run(run: Path, *, predictions: bool = True, unlinked: bool = False) -> RunRecord:
    """Read the run directory ``run`` (metrics.json, and predictions.csv unless asked not
    to; :func:`check_run_folder`). ``unlinked``: each file is opened without following a
    link and refused when it is one (:func:`link_refused`): ``merge``, ``fuse`` and
    ``rescore`` read so what they carry into a new run, so a link swapped in after their
    check is not followed (code review)."""
    run = Path(run)
    meta = check_run_folder(run, unlinked=unlinked)
    return RunRecord(run, meta, read_predictions(run, unlinked=unlinked) if predictions
                     else None)


def read_run_config(run: Path, *, unlinked: bool = False) -> Any:
    """The parsed ``config.yaml`` of ``run``, capped and without aliases
    (:func:`~emovox.config.read_run_yaml`); ``unlinked``: read without following a link
    (:func:`read_unlinked`)."""
    from emovox.config import CONFIG_MAX_BYTES, read_run_yaml, safe_yaml

    path = Path(run) / CONFIG_FILE
    return safe_yaml(read_unlinked(path, CONFIG_MAX_BYTES), path) if unlinked \
        else read_run_yaml(path)


def saved_fold_model(run: Path, fold: int, metrics: dict[str, Any] | None = None, *,
                     _within: tuple[Path, ...] = ()) -> Path:
    """The folder of fold ``fold``'s model saved by ``evaluate --save-models``:
    ``models/fold{fold}`` in ``run`` or, for a merged run, in the part that ran the fold
    (:func:`merged_parts`; a merge of merged runs is followed down). A merged run keeps no
    models of its own: ``rescore`` of one said it had none (review, stop 52). RunDirError
    when none holds it. ``metrics``: ``run``'s, when already read."""
    own = Path(run) / "models" / f"fold{fold}"
    if (own / "model.json").is_file():
        return own
    if (key := Path(run).resolve()) in _within:  # a metrics.json that lists its own run
        raise RunDirError(f"{run} is listed among its own merged runs")
    for part in merged_parts(run, read_metrics(run) if metrics is None else metrics):
        m = read_metrics(part)
        if any(isinstance(f, dict) and f.get("index") == fold for f in m.get("folds") or []):
            return saved_fold_model(part, fold, m, _within=(*_within, key))
    raise RunDirError(f"{run}: no saved model for fold {fold} ({own}); write the run with "
                      "evaluate --save-models")


def read_probabilities(path: Path, labels: Sequence[str] | None = None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """``(probs (N, C), y (N,))`` of the scored rows of a predictions.csv, for calibration.

    ``labels`` (default :data:`emovox.labels.LABELS`) must all have a probability column;
    the result follows their order. Probabilities were written with six decimals, so they
    are floored at :data:`PROBA_FLOOR` and renormalised. ValueError for probabilities that
    are not finite numbers in [0, 1] summing to 1."""
    return read_scored(path, labels)[:2]


def read_scored(path: Path, labels: Sequence[str] | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`read_probabilities` plus the corpus of each row, ``(probs, y, corpora (N,))``."""
    from emovox.labels import LABELS

    labels = list(labels or LABELS)
    try:
        preds = read_predictions(path)
    except RunDirError as exc:
        raise ValueError(str(exc)) from None
    missing = [f"{PROBA_PREFIX}{lab}" for lab in labels if lab not in preds.labels]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
    if not preds.scored():
        raise ValueError(f"{path}: no predictions")
    try:
        y = np.array([labels.index(r.true) for r in preds.scored()])
    except ValueError as exc:
        raise ValueError(f"{path}: unknown label in column 'true' ({exc})") from None
    full = preds.probabilities()  # all -0.5 fitted T = 20: every answer uncertain (QA, 38)
    bad = ~(np.isfinite(full) & (full > -1e-6) & (full < 1 + 1e-6)).all(1) | (
        np.abs(full.sum(1) - 1) > 1e-3)
    if bad.any():
        raise ValueError(f"{path}: {int(bad.sum())} row(s) whose probabilities are not finite "
                         f"numbers in [0, 1] summing to 1 (first: scored row "
                         f"{np.argmax(bad) + 1}, {preds.scored()[np.argmax(bad)].path})")
    cols = [preds.labels.index(lab) for lab in labels]
    p = np.maximum(full[:, cols], PROBA_FLOOR)
    corpora = np.array([r.corpus for r in preds.scored()], dtype=str)
    return p / p.sum(axis=1, keepdims=True), y, corpora


def fit_from_predictions_csv(path: Path, n_bins: int = 15, also: Sequence[Path] = ()
                             ) -> dict[str, Any]:
    """Fit the temperature on the out-of-fold predictions in ``predictions.csv`` and report
    ECE/NLL before and after (:func:`emovox.calibration.calibration_report`; adds
    ``"source"``).

    ``also``: predictions.csv files of further CV runs (e.g. the EmoBox run of a recipe
    whose headline run is leave-one-corpus-out) pooled into the fit. Their rows are
    reported as ``"corpus (protocol)"`` groups, and a group's fit "without it" leaves out
    every row of its corpus, whichever run it comes from (``"also"`` lists them)."""
    from emovox.calibration import calibration_report, fit_temperature, group_calibration_report

    p, y, corpora = read_scored(path)
    groups = corpora
    for extra in also:
        p2, y2, c2 = read_scored(Path(extra))
        protocol = read_metrics(Path(extra).parent).get("protocol", "cv")
        p, y = np.vstack([p, p2]), np.concatenate([y, y2])
        corpora = np.concatenate([corpora, c2])
        groups = np.concatenate([groups, np.char.add(c2, f" ({protocol})")])
    t = fit_temperature(p, y)
    report = {**calibration_report(p, y, t, n_bins), "source": str(path)}
    if also:
        report["also"] = [str(a) for a in also]
    if len(set(groups.tolist())) > 1:
        report["per_corpus"] = group_calibration_report(p, y, groups, t, n_bins,
                                                        exclude_by=corpora)
    return report


@dataclass
class CvRun:
    """What packaging a model takes from its cross-validation run."""

    metrics: dict[str, Any]
    predictions: Path


def run_val_speakers(run: Path) -> int | None:
    """Validation speakers held out per fold by the CV run ``run`` (``split.n_val_speakers``
    of its config.yaml); for an ``emovox fuse`` run, that of the runs it fused when they all
    agree (their paths as recorded: from here, else beside the fused run, as ``ensemble``
    finds them). ``None`` when it cannot be told (no config, runs moved or disagreeing)."""
    return _run_setting(Path(run), lambda c: int(c["split"]["n_val_speakers"]))


def run_speakers(run: Path) -> tuple[str, ...] | None:
    """The speakers the CV run ``run`` was restricted to (``data.speakers``: ``--speakers``;
    ``()`` for every speaker), found as :func:`run_val_speakers` finds its hold-out (a
    fused run: its runs'). ``None`` when it cannot be told."""

    def chosen(config: dict[str, Any]) -> tuple[str, ...]:
        speakers = config["data"].get("speakers")
        return tuple(map(str, speakers)) if isinstance(speakers, (list, tuple)) else ()

    return _run_setting(Path(run), chosen)


def _run_setting(run: Path, read: Callable[[dict[str, Any]], Any]) -> Any:
    """``read`` of the config.yaml of ``run``, or of every run an ``emovox fuse`` run fused
    when they agree; None when it cannot be told."""
    import yaml

    from emovox.config import read_run_yaml

    if (run / CONFIG_FILE).is_file():
        try:
            return read(read_run_yaml(run / CONFIG_FILE) or {})
        except (OSError, yaml.YAMLError, ConfigError, AttributeError, KeyError, TypeError,
                ValueError):
            return None
    try:
        fused = read_metrics(run).get("fused_runs") or []
    except RunDirError:
        return None
    values = {_run_setting(p if (p := Path(r)).is_absolute() or p.exists() else
                           run.parent / p, read) for r in fused if Path(r) != run}
    return values.pop() if len(values) == 1 else None


def read_cv_run(run: Path, model: str) -> CvRun:
    """The speaker-independent CV run of ``model`` at ``run``: its headline metrics
    (protocol, summary, pooled, worst class) and the path of its predictions.csv."""
    run = Path(run)
    m = check_run_folder(run)
    if m.get("model") != model:  # an evaluate --artifact run has no model (QA, stop 39)
        raise RunDirError(f"{run} is a CV run of {m.get('model')!r}, not {model!r}" if m.get(
            "model") else f"{run} is not a cross-validation run (protocol {m['protocol']})")
    if not m.get("speaker_independent"):
        raise RunDirError(f"{run} is not speaker-independent; calibrate on held-out speakers")
    if m.get("adapt", "none") != "none":  # research QA, stop 32: shown as the headline
        raise RunDirError(
            f"{run} was run with --adapt {m['adapt']} (the unlabelled audio of its test "
            f"{'corpus' if m['adapt'] == 'corpus' else 'speakers'} used): "
            "its figures are not what a model answers on one clip of a new speaker, and a "
            "temperature fitted on them would be too. Calibrate on a run without --adapt.")
    try:
        metrics = {k: m[k] for k in ("protocol", "summary", "pooled", "worst_class")}
    except KeyError as exc:
        raise RunDirError(f"{run / METRICS_FILE}: not a cross-validation run (no {exc})") from None
    if len(m.get("per_corpus") or {}) > 1:
        metrics["per_corpus"] = m["per_corpus"]
    if m.get("test_only_corpora"):
        metrics["test_only_corpora"] = list(m["test_only_corpora"])
    metrics |= {"speeds": list(m["speeds"])} if m.get("speeds") else {}  # emovox rescore
    ran = [f.get("index") for f in m.get("folds") or []]  # some folds only: the card says
    if isinstance(m.get("protocol_folds"), int) and 0 < len(ran) < m["protocol_folds"]:
        metrics.update(protocol_folds=m["protocol_folds"], fold_indices=ran)
    val_speakers = run_val_speakers(run)
    from emovox.models import validation_matters

    if val_speakers is not None and validation_matters(model):
        metrics["val_speakers"] = val_speakers
    if speakers := run_speakers(run):  # the card names them, as `report` does (stop 53)
        metrics["speakers"] = list(speakers)
    return CvRun(metrics, run / PREDICTIONS_FILE)


__all__ = ["CONFIG_FILE", "ERRORS_FILE", "MERGED_INPUTS", "METRICS_FILE", "METRICS_MAX_BYTES",
           "PREDICTIONS_FILE", "PREDICTION_COLUMNS", "CvRun", "Prediction", "Predictions",
           "RunDirError", "RunRecord", "check_run_folder", "fit_from_predictions_csv",
           "link_refused", "merged_parts", "part_records", "read_cv_run", "read_metrics",
           "read_predictions", "read_probabilities", "read_run", "read_run_config",
           "read_scored", "read_unlinked", "run_speakers", "run_val_speakers",
           "saved_fold_model", "unlinked_fd", "write_predictions", "write_run"]
