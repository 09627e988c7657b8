"""The results table of ``emovox report``: one row per cross-validation run directory.

:func:`collect_report` reads every run (a bad one becomes a :class:`RunProblem`, never an
exception, so the good runs are still tabulated); :func:`markdown_table` renders the rows.
Speaker-adapted runs (``--adapt speaker``) are never mixed with the speaker-independent
ones: they come after them, each labelled
"(speaker-adapted: uses unlabelled test-speaker audio)".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from emovox.config import Adapt, ExperimentConfig
from emovox.errors import ConfigError
from emovox.experiment.rundir import CONFIG_FILE, RunDirError, RunRecord, read_run, run_speakers

SCALAR_KEYS: tuple[str, ...] = ("ua", "wa", "macro_f1", "weighted_f1")


@dataclass(frozen=True)
class ReportRow:
    """One cross-validation run, as the table shows it."""

    run: Path
    model: str
    protocol: str
    speaker_independent: bool
    n_folds: int
    #: mean and std over folds of each of :data:`SCALAR_KEYS`
    scalars: dict[str, tuple[float, float]]
    worst_label: str
    worst_recall: float
    fit_seconds: float
    n_params: int
    #: ``--adapt`` of the run (runs written before the option: none)
    adapt: Adapt = Adapt.NONE
    #: what tells runs of one model and protocol apart: the folder, corpora, test-only
    #: corpora, corpus balance, chosen speakers (research QA, stop 32: identical rows,
    #: different numbers)
    recipe: str = ""
    #: the protocol's folds when the run had only some of them (``--folds``), else None
    protocol_folds: int | None = None


@dataclass(frozen=True)
class RunProblem:
    """A run directory that could not be tabulated, and why (one line)."""

    run: Path
    reason: str


@dataclass
class Report:
    rows: list[ReportRow] = field(default_factory=list)
    problems: list[RunProblem] = field(default_factory=list)


def report_row(rec: RunRecord) -> ReportRow:
    """The table row of a cross-validation run (KeyError/TypeError/ValueError if malformed)."""
    m = rec.metrics
    s = m["summary"]
    folds = m["folds"]
    if not folds:  # "0 folds" beside a mean and std (a review, stop 47)
        raise ValueError("its metrics.json lists no folds")
    return ReportRow(
        run=rec.path, protocol=str(m["protocol"]),
        model=str(m["model"]) + (" (distilled)" if m.get("teachers") else ""),
        speaker_independent=bool(m["speaker_independent"]), n_folds=len(folds),
        scalars={k: (float(s[k]["mean"]), float(s[k]["std"])) for k in SCALAR_KEYS},
        worst_label=str(m["worst_class"]["label"]),
        worst_recall=float(m["worst_class"]["recall"]),
        fit_seconds=float(sum(f["fit_seconds"] for f in folds)),
        n_params=int(max((f.get("n_params", 0) for f in folds), default=0)),
        adapt=Adapt(m.get("adapt", Adapt.NONE.value)), recipe=_recipe(rec.path, m),
        protocol_folds=(m["protocol_folds"] if isinstance(m.get("protocol_folds"), int)
                        and m["protocol_folds"] > len(folds) else None),
    )


def _recipe(path: Path, m: dict) -> str:
    """The row's last column: ``runs/x · ravdess+emovo · speakers 01,02 only · test-only urdu ·
    balanced`` (the folder as given; the corpora of a fused run from its per-corpus
    figures)."""
    parts = [f"`{str(path).replace('|', '%7C')}`"]  # as given: a | would end the cell
    corpora = m.get("corpora") if isinstance(m.get("corpora"), dict) else None
    corpora = corpora or (m.get("per_corpus") if isinstance(m.get("per_corpus"), dict) else None)
    if corpora:
        parts.append("+".join(map(str, corpora)))
    config = _run_config(path)
    parts += _own_data(config)  # which manifest or folder of one's own (own-data QA, stop 33)
    parts += [s] if (s := speakers_only(run_speakers(path))) else []  # a fused run's too
    if m.get("test_only_corpora"):
        parts.append("test-only " + "+".join(map(str, m["test_only_corpora"])))
    if m.get("balance_corpora"):
        parts.append("balanced")
    if isinstance(m.get("speeds"), list) and m["speeds"]:  # a rescored run's row looked like
        parts.append("speeds " + "/".join(f"{x:g}" for x in m["speeds"]))  # its source's (47)
    return " · ".join(parts)


def _run_config(run: Path) -> dict | None:
    """The run's ``config.yaml`` as a dict; None when it has none or it cannot be read (the
    row is still shown, without what only the config tells)."""
    try:
        return ExperimentConfig.load_yaml(run / CONFIG_FILE).to_dict()
    except (OSError, ValueError, ConfigError, yaml.YAMLError, AttributeError, TypeError,
            KeyError):
        return None


def _own_data(config: dict | None) -> list[str]:
    """``csv=own.csv`` for each manifest or folder of one's own data the run's config read
    (:func:`~emovox.experiment.recipe.own_data`); nothing when it has none."""
    from emovox.experiment.recipe import own_data

    try:
        return own_data(config) if config else []
    except (AttributeError, TypeError, KeyError):
        return []


#: speakers of a ``--speakers`` run named in full up to this many, then counted
_MAX_SPEAKERS_SHOWN = 8


def speakers_only(chosen: Sequence[str] | None) -> str:
    """``speakers 01,02 only`` for a run that used only some speakers (``--speakers``): such
    a run read as a complete protocol run, its folds "2" beside a ``--folds`` run's "2 of 4"
    (review, stop 52); the model card's cross-validation line says it too (stop 53). ""
    for a run of every speaker."""
    if not chosen:
        return ""
    names = [str(s).replace("|", "%7C") for s in chosen]  # a | would end a table cell
    if len(names) > _MAX_SPEAKERS_SHOWN:
        return f"{len(names)} speakers only ({','.join(names[:_MAX_SPEAKERS_SHOWN])},…)"
    return "speakers " + ",".join(names) + " only"


def collect_report(runs: Iterable[Path]) -> Report:
    """Rows for the cross-validation runs among ``runs``; every other path is a problem."""
    rep = Report()
    for run in runs:
        run = Path(run)
        try:
            rec = read_run(run, predictions=False)
        except RunDirError as exc:
            rep.problems.append(RunProblem(run, str(exc)))
            continue
        if not rec.is_cross_validation:
            rep.problems.append(RunProblem(run, f"{run}: not a cross-validation run "
                                                f"({rec.protocol})"))
            continue
        try:
            rep.rows.append(report_row(rec))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            rep.problems.append(RunProblem(run, f"{run}/metrics.json: malformed "
                                                f"({type(exc).__name__}: {exc})"))
    return rep


def mean_std(mean: float, std: float, n_folds: int) -> str:
    """``89.2 ± 1.3`` over folds; ``89.2`` for one fold, which has no spread (a random
    split's one test set read "89.2 ± 0.0", a spread of zero: review, stop 56)."""
    return f"{mean:.1f}" if n_folds == 1 else f"{mean:.1f} ± {std:.1f}"


def markdown_table(rows: Iterable[ReportRow]) -> list[str]:
    """The Markdown lines (header included) of ``rows``: the runs without adaptation first,
    in order, then the speaker-adapted ones, labelled as such."""
    lines = [
        "| model | protocol | folds | UA | WA | macro-F1 | weighted-F1 | worst class (recall) "
        "| fit time | parameters | run |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows = list(rows)
    for r in [r for r in rows if r.adapt is Adapt.NONE] + [
            r for r in rows if r.adapt is not Adapt.NONE]:
        cells = [mean_std(*r.scalars[k], r.n_folds) for k in SCALAR_KEYS]
        proto = r.protocol + ("" if r.speaker_independent else " (speaker-dependent)")
        if r.adapt is not Adapt.NONE:
            proto += f" ({r.adapt.label})"
        lines.append(
            f"| `{r.model}` | {proto} | {r.n_folds}"
            + (f" of {r.protocol_folds}" if r.protocol_folds else "") + " | " + " | ".join(cells)
            + f" | {r.worst_label} ({r.worst_recall:.1f}) | {r.fit_seconds / 60:.1f} min"
            f" | {r.n_params:,} | {r.recipe} |"
        )
    return lines


__all__ = ["Report", "ReportRow", "RunProblem", "collect_report", "markdown_table", "mean_std",
           "report_row", "speakers_only"]
