"""Cross-validated experiments: corpora -> folds -> features -> model -> metrics -> run dir.

Several corpora are scored by the rule of :mod:`emovox.experiment.multicorpus`: each test
clip's probabilities are restricted to its corpus's classes (and renormalised);
``metrics.json`` adds the metrics of each corpus (``per_corpus``). With ``cfg.adapt`` =
speaker (corpus), every clip's features are normalised with its speaker's (corpus's) own
statistics (:mod:`emovox.experiment.adapt`: no labels, speakers (corpora) never straddle a
fold), and ``metrics.json`` records ``adapt``. ``-p adversary=W``: the training clips'
speakers (corpora) go to the trainer (:mod:`emovox.training.adversary`), and an adapted
run's unlabelled test clips. The run directory is :mod:`emovox.experiment.rundir`'s.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emovox import __version__
from emovox.config import Adapt, ExperimentConfig, Protocol
from emovox.corpora.base import Utterance
from emovox.errors import ConfigError
from emovox.experiment.adapt import (
    SpeakerAdapter,
    check_adapt_config,
    check_speaker_disjoint,
    fit_speaker_adapter,
    group_of,
    statistics_clips,
)
from emovox.experiment.dataset import (
    Dataset,
    adversary_speakers,
    check_adversary,
    featurise,
    gather,
    load_dataset,
    test_only_corpora,
)
from emovox.experiment.distil import Teachers, open_teachers
from emovox.experiment.multicorpus import (
    balance_corpora,
    corpus_classes,
    corpus_counts,
    per_corpus_metrics,
    per_corpus_record,
    restrict_to_corpus,
)
from emovox.experiment.rundest import check_run_destination, refuse_out_among, staged_run_dir
from emovox.experiment.rundir import (
    Prediction,
    Predictions,
    write_run,
)
from emovox.features.cache import ProgressFn, Variant
from emovox.labels import LABELS
from emovox.metrics import Metrics, compute_metrics, summarize
from emovox.models import Family, ModelSpec, count_parameters, get_model_spec, validation_matters
from emovox.provenance import environment
from emovox.splits import (
    EMOBOX_NEEDS_RAVDESS,
    Fold,
    TooFewForValidation,
    check_speakers,
    make_folds,
    warn_unheard_test_classes,
)
from emovox.training import build_model, check_device

log = logging.getLogger(__name__)


@dataclass
class FoldResult:
    index: int
    test_speakers: list[str]
    val_speakers: list[str]
    n_train: int
    n_val: int
    n_test: int
    fit_seconds: float
    metrics: Metrics
    n_params: int = 0
    #: for fusion models: each member's UA on the same test clips
    member_ua: dict[str, float] = field(default_factory=dict)
    #: best validation UA (validation speakers, training side) of a neural model: the
    #: number to compare configurations by, never the test UA
    val_ua: float | None = None
    #: UA on the fold's own (un-augmented) training clips: with val_ua, shows whether a
    #: recipe under-fits (both low) or over-fits (train high, validation low)
    train_ua: float | None = None
    #: leave-one-corpus-out: the held-out (tested) corpus
    held_out_corpus: str = ""
    #: distillation (``--teacher``): the teachers' model folders used in this fold
    teachers: list[str] = field(default_factory=list)
    #: distillation: UA of the soft targets (the teachers' mean) on the fold's training clips
    teacher_train_ua: float | None = None


@dataclass
class ExperimentResult:
    config: ExperimentConfig
    folds: list[FoldResult]
    pooled: Metrics
    summary: dict[str, dict[str, float]]
    out_dir: Path
    extraction: dict[str, Any]
    seconds: float
    #: metrics of each corpus's test clips, pooled over folds
    per_corpus: dict[str, Metrics] = field(default_factory=dict)
    #: clips per corpus in the experiment (after extraction failures)
    corpora: dict[str, int] = field(default_factory=dict)
    #: how many folds the protocol has over the data (more than ``folds`` with ``--folds``)
    protocol_folds: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "package_version": __version__,
            "model": self.config.model.name,
            "protocol": self.config.split.protocol.value,
            "speaker_independent": self.config.split.protocol.speaker_independent,
            "adapt": self.config.adapt.value,
            "summary": self.summary,
            "val_ua_mean": (
                float(np.mean([f.val_ua for f in self.folds]))
                if all(f.val_ua is not None for f in self.folds) else None
            ),
            "train_ua_mean": (
                float(np.mean([f.train_ua for f in self.folds]))
                if all(f.train_ua is not None for f in self.folds) else None
            ),
            "pooled": self.pooled.to_dict(),
            "worst_class": dict(zip(("label", "recall"), self.pooled.worst_recall, strict=True)),
            "folds": [
                {k: v for k, v in f.__dict__.items() if k != "metrics"} | {
                    "metrics": f.metrics.to_dict()
                }
                for f in self.folds
            ],
            "protocol_folds": self.protocol_folds,
            "corpora": self.corpora,
            "balance_corpora": self.config.data.balance_corpora,
            "test_only_corpora": list(self.config.data.test_only),
            "class_restriction": "each test clip's probabilities restricted to the classes "
                                 "of its corpus, renormalised",
            "per_corpus": per_corpus_record(self.per_corpus),
            "teachers": list(self.config.teachers),
            "extraction": self.extraction,
            "seconds_total": self.seconds,
            "environment": environment(),
        }


def training_sources(
    cfg: ExperimentConfig,
    spec: ModelSpec,
    utts: list[Utterance],
    feats: list[Any],
    y: np.ndarray,
    content_ids: list[str],
    train_idx: np.ndarray,
    adapter: SpeakerAdapter | None = None,
) -> tuple[Any, np.ndarray, np.ndarray]:
    """The training clips of a fold plus, when configured, their augmented variants:
    ``(x, labels, sources)``, ``sources[i]`` the index of item i's source clip (itself, or
    the clip an augmented variant was made from).

    Only ``train_idx`` is ever augmented: validation and test clips never reach
    :mod:`emovox.augment`. ``feats`` are used as given (already adapted when adapting);
    augmented variants are normalised by ``adapter`` with their speaker's statistics from
    the original clips.
    """
    x = [feats[i] for i in train_idx]
    labels = [y[train_idx]]
    sources = [np.asarray(train_idx)]
    for k in range(cfg.augment.variants):
        items, errors, _, _ = featurise(
            cfg, spec, [utts[i].path for i in train_idx], [content_ids[i] for i in train_idx],
            variant=Variant(cfg.augment, k, cfg.seed),
        )
        good = [j for j in range(len(items)) if j not in errors]
        if adapter is not None:
            x += [adapter.apply(items[j], adapter.group(utts[train_idx[j]])) for j in good]
        else:
            x += [items[j] for j in good]
        labels.append(y[train_idx][good])
        sources.append(np.asarray(train_idx)[good])
    return gather(x, np.arange(len(x))), np.concatenate(labels), np.concatenate(sources)


def _best_val_ua(model: Any) -> float | None:
    history = getattr(model, "history", None)
    return float(max(history.val_ua)) if history is not None and history.val_ua else None


def _save_fold_outputs(cfg: ExperimentConfig, model: Any, fold: int, out_dir: Path) -> None:
    history = getattr(model, "history", None)
    if history is not None and history.train_loss:
        from emovox.plots import plot_curves

        plot_curves(history.as_dict(), out_dir / f"curves_fold{fold}.png",
                    f"{cfg.model.name} fold {fold}")
        (out_dir / f"history_fold{fold}.json").write_text(json.dumps(history.as_dict()))
    if cfg.save_models:
        from emovox.artifact import save_model

        save_model(model, out_dir / "models" / f"fold{fold}", cfg.to_dict(), force=True)


@dataclass
class PreparedData:
    """The clips of an experiment whose features could be computed, with those features.

    ``errors`` lists the files dropped because extraction failed; ``extraction`` is the
    summary stored under ``"extraction"`` in metrics.json.
    """

    utts: list[Utterance]
    feats: list[Any]
    y: np.ndarray
    train_only: np.ndarray
    content_ids: list[str]
    errors: list[tuple[Path, str]]
    extraction: dict[str, Any]
    #: corpus name -> the class indices its clips carry (the scoring restriction)
    corpus_classes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    #: the per-speaker statistics ``feats`` were normalised with (``--adapt speaker``)
    adapter: SpeakerAdapter | None = None


def prepare_data(
    cfg: ExperimentConfig, spec: ModelSpec, progress: ProgressFn | None = None
) -> PreparedData:
    """Load the dataset of ``cfg``, featurise it for ``spec`` and drop failed files; with
    ``cfg.adapt`` = speaker, normalise every clip with its speaker's statistics."""
    check_adapt_config(cfg, [inp.params for inp in spec.inputs])
    ds = load_dataset(cfg.data)
    log.info("%s", ds.report)
    check_speakers(ds.utts, cfg.split.protocol)  # before extraction (QA, stop 37), and:
    check_adversary(cfg, ds.utts, test_only_corpora(cfg))
    # --folds 7, a one-corpus loco (were refused after extraction, 47), too many validation
    # speakers for a model that needs them (a classical one holds none out: protocol_folds;
    # was refused after extraction too, review, stop 53)
    select_folds(cfg, ds)
    items, ext_errors, n_cached, ext_seconds = featurise(
        cfg, spec, [u.path for u in ds.utts], ds.content_ids, progress)
    ok = np.array([i not in ext_errors for i in range(len(ds.utts))])
    feats = [f for i, f in enumerate(items) if ok[i]]
    errors = [(ds.utts[i].path, msg) for i, msg in sorted(ext_errors.items())]
    utts = [u for u, k in zip(ds.utts, ok, strict=True) if k]
    y = ds.y[ok]
    train_only = ds.train_only[ok]
    content_ids = [c for c, k in zip(ds.content_ids, ok, strict=True) if k]
    extraction = {
        "feature": "+".join(i.feature for i in spec.inputs), "n_files": len(ds.utts),
        "n_cached": n_cached, "n_errors": len(errors), "seconds": ext_seconds,
        "dropped_duplicates": ds.dropped_duplicates,
    }
    adapter = None
    if cfg.adapt is not Adapt.NONE:
        groups = [group_of(u, cfg.adapt) for u in utts]
        adapter = fit_speaker_adapter(feats, groups, statistics_clips(groups, train_only),
                                      cfg.adapt)
        feats = adapter.apply_all(feats, groups)
        extraction["adapt"] = adapter.summary()
        log.info("%s adaptation: %d groups (%d centred only: one clip)", cfg.adapt.value,
                 len(adapter.stats), adapter.n_centred_only)
    return PreparedData(utts, feats, y, train_only, content_ids, errors, extraction,
                        corpus_classes(utts, y), adapter)


def select_folds(cfg: ExperimentConfig, data: PreparedData | Dataset) -> list[Fold]:
    """The folds of ``cfg.split`` over ``data`` (only ``cfg.split.folds`` when given)."""
    return chosen_folds(cfg, protocol_folds(cfg, data))


def protocol_folds(cfg: ExperimentConfig, data: PreparedData | Dataset) -> list[Fold]:
    """Every fold of ``cfg.split``'s protocol over ``data``. A model that trains on its
    validation speakers anyway (:func:`~emovox.models.validation_matters`) holds none out
    when a fold has too few (it was refused: own-data QA, stop 33)."""

    def folds(n_val: int) -> list[Fold]:
        return make_folds(
            data.utts, cfg.split.protocol,
            seed=cfg.seed if cfg.split.seed is None else cfg.split.seed,
            n_val_speakers=n_val, test_size=cfg.split.test_size, train_only=data.train_only,
            content_ids=data.content_ids, test_only_corpora=test_only_corpora(cfg),
        )

    try:
        return folds(cfg.split.n_val_speakers)
    except TooFewForValidation as exc:
        if validation_matters(cfg.model.name):
            raise
        log.info("%s: no validation speakers held out (%s); it trains on every training "
                 "speaker either way", cfg.model.name, exc)
        return folds(0)


def chosen_folds(cfg: ExperimentConfig, folds: list[Fold]) -> list[Fold]:
    """``folds`` restricted to ``cfg.split.folds`` when given (else ConfigError naming them)."""
    if cfg.split.folds:
        by_index = {f.index: f for f in folds}
        if len(set(cfg.split.folds)) < len(cfg.split.folds):  # each clip counted twice in
            raise ConfigError(f"fold indices {list(cfg.split.folds)} repeat a fold; give "  # the
                              "each once")  # pooled metrics and predictions (code review, 47)
        bad = [k for k in cfg.split.folds if k not in by_index]
        if bad:  # EmoBox folds without a test speaker in the data are left out
            raise ConfigError(f"fold indices {bad}: this run's folds are "
                              f"{', '.join(map(str, by_index))}")
        folds = [by_index[k] for k in cfg.split.folds]
    return folds


def run_fold(
    cfg: ExperimentConfig,
    spec: ModelSpec,
    data: PreparedData,
    fold: Fold,
    out_dir: Path,
    on_epoch: Callable[[int, int, float, float], None] | None = None,
    teachers: Teachers | None = None,
) -> tuple[FoldResult, np.ndarray]:
    """Train on ``fold``'s training side, score its test side: (result, test probabilities).
    Curves, history and (with ``cfg.save_models``) the model go to ``out_dir``. With
    ``teachers``, fold ``fold.index``'s teachers give the training clips' soft targets."""
    feats, y = data.feats, data.y
    if data.adapter is not None:
        check_speaker_disjoint(fold, data.utts, data.adapter.mode)
    t_fit = time.perf_counter()
    train_idx = fold.train
    if cfg.data.balance_corpora:
        train_idx = balance_corpora(train_idx, data.utts,
                                    np.random.default_rng([cfg.seed, fold.index]))
    x_train, y_train, sources = training_sources(cfg, spec, data.utts, feats, y,
                                                 data.content_ids, train_idx, data.adapter)
    extra = {"on_epoch": on_epoch} if on_epoch and spec.family is Family.NEURAL else {}
    model = build_model(spec, n_classes=len(LABELS), seed=cfg.seed, **cfg.model.params,
                        **extra)
    fit_kw: dict[str, Any] = {}
    teacher_ua = None
    if teachers is not None:
        fit_kw["soft_targets"], teacher_ua = teachers.soft_targets(cfg, spec, data, fold,
                                                                   sources)
        log.info("fold %d: teachers' UA on the training clips %.1f", fold.index, teacher_ua)
    fit_kw.update(adversary_speakers(model, data.utts, sources, None if data.adapter is None
                                     else (feats, fold.test)))
    model.fit(x_train, y_train, gather(feats, fold.val), y[fold.val], **fit_kw)
    test_corpora = [data.utts[i].corpus for i in fold.test]

    def scored(p: np.ndarray) -> np.ndarray:
        return restrict_to_corpus(p, test_corpora, data.corpus_classes)

    proba = scored(model.predict_proba(gather(feats, fold.test)))
    fit_s = time.perf_counter() - t_fit
    train_proba = restrict_to_corpus(model.predict_proba(gather(feats, fold.train)),
                                     [data.utts[i].corpus for i in fold.train],
                                     data.corpus_classes)
    train_ua = compute_metrics(y[fold.train], train_proba.argmax(1), list(LABELS)).ua
    _save_fold_outputs(cfg, model, fold.index, out_dir)
    pred = proba.argmax(axis=1)
    m = compute_metrics(y[fold.test], pred, list(LABELS))
    member_ua = {
        name: compute_metrics(y[fold.test], scored(p).argmax(1), list(LABELS)).ua
        for name, p in getattr(model, "member_probas", lambda _: {})(
            gather(feats, fold.test)
        ).items()
    }
    fr = FoldResult(
        fold.index, list(fold.test_speakers), list(fold.val_speakers),
        len(fold.train), len(fold.val), len(fold.test), fit_s, m, count_parameters(model),
        member_ua, _best_val_ua(model), train_ua, fold.held_out_corpus,
        teachers.records(fold.index) if teachers is not None else [], teacher_ua,
    )
    log.info("fold %d: UA %.1f WA %.1f, training-speaker UA %.1f (%.1f s)", fold.index, m.ua,
             m.wa, train_ua, fit_s)
    return fr, proba


def fold_predictions(data: PreparedData, fold: Fold, proba: np.ndarray) -> list[Prediction]:
    """The predictions.csv rows of ``fold``'s test clips."""
    pred = proba.argmax(axis=1)
    return [
        Prediction(
            path=str(data.utts[i].path), speaker=data.utts[i].speaker, true=LABELS[data.y[i]],
            pred=LABELS[pred[j]], proba=tuple(float(v) for v in proba[j]), fold=fold.index,
            corpus=data.utts[i].corpus,
        )
        for j, i in enumerate(fold.test)
    ]


def _not_a_teacher(out_dir: Path, teachers: Sequence[str | Path]) -> None:
    """Refuse an ``out_dir`` that is a teacher run (or a part of one): the new run would
    replace it and its fold models (research QA, stop 32); nor one inside or holding one
    (:func:`~emovox.experiment.rundest.refuse_out_among`: ``--teacher T --out T/sub`` was
    accepted, review, stop 57)."""
    refuse_out_among(out_dir, [(Path(t), f"a teacher run ({t}, or a part of one)")
                               for t in teachers],
                     ": the student's run would replace it and its fold models, or be "
                     "written into it")


def run_experiment(
    cfg: ExperimentConfig,
    out_dir: Path,
    *,
    progress: ProgressFn | None = None,
    on_fold: Callable[[FoldResult], None] | None = None,
    on_epoch: Callable[[int, int, float, float], None] | None = None,
) -> ExperimentResult:
    """Run every fold of ``cfg`` and write the run directory ``out_dir``.

    ``out_dir`` is replaced whole when it is an earlier run; anything else there is
    refused (:class:`emovox.experiment.rundir.RunDirError`) before any work starts.
    """
    t0 = time.perf_counter()
    spec = get_model_spec(cfg.model.name)
    cfg.model.params = spec.validate(cfg.model.params)  # typed; bad keys fail before extraction
    check_device(cfg.model.params)  # device=cuda without a GPU: refused before extraction
    out_dir = Path(out_dir)
    check_run_destination(out_dir)
    if spec.needs_validation and cfg.split.n_val_speakers < 1:
        raise ConfigError(f"{spec.name} chooses C on validation speakers: give "
                          "--val-speakers 1 or more")
    _not_a_teacher(out_dir, cfg.teachers)
    test_only_corpora(cfg)
    if cfg.split.protocol is Protocol.EMOBOX and "ravdess" not in {
            n.lower() for n, _ in cfg.data.sources()}:
        missing = [root for _, root in cfg.data.sources() if not Path(root).exists()]
        if missing:  # a typo in a path is the first thing to say
            raise FileNotFoundError(f"corpus path not found: {missing[0]}")
        raise ConfigError(EMOBOX_NEEDS_RAVDESS)  # before extraction (own-data QA, stop 33)
    teachers = open_teachers(cfg, spec)  # refused here, before any feature is extracted
    if teachers is not None:  # nor one part of a merged teacher (re-check, stop 32)
        _not_a_teacher(out_dir, [p for run in teachers.runs for p in run.parts()])
    results: list[FoldResult] = []
    rows: list[Prediction] = []
    all_true: list[np.ndarray] = []
    all_pred: list[np.ndarray] = []
    all_corpora: list[str] = []
    # staged from before extraction: a second run into the same --out is refused at once
    with staged_run_dir(out_dir) as stage:
        data = prepare_data(cfg, spec, progress)
        every = protocol_folds(cfg, data)
        folds = chosen_folds(cfg, every)
        warn_unheard_test_classes(folds, data.y, data.utts, LABELS,  # own-data QA, stop 39
                                  fits_validation=spec.family is not Family.NEURAL)
        if teachers is not None:
            teachers.check_folds(folds, data)  # every fold, before any training
        for fold in folds:
            fr, proba = run_fold(cfg, spec, data, fold, stage, on_epoch, teachers)
            results.append(fr)
            if on_fold:
                on_fold(fr)
            all_true.append(data.y[fold.test])
            all_pred.append(proba.argmax(axis=1))
            all_corpora += [data.utts[i].corpus for i in fold.test]
            rows += fold_predictions(data, fold, proba)

        y_true, y_pred = np.concatenate(all_true), np.concatenate(all_pred)
        pooled = compute_metrics(y_true, y_pred, list(LABELS))
        result = ExperimentResult(
            cfg, results, pooled, summarize([r.metrics for r in results]), out_dir,
            data.extraction, time.perf_counter() - t0,
            per_corpus_metrics(y_true, y_pred, all_corpora), corpus_counts(data.utts),
            protocol_folds=len(every),
        )
        _write_run_dir(result, stage, Predictions(list(LABELS), rows), data.errors)
    return result


def _write_run_dir(
    result: ExperimentResult, stage: Path, predictions: Predictions,
    errors: list[tuple[Path, str]],
) -> None:
    name = f"{result.config.model.name} / {result.config.split.protocol.value}"
    if result.config.adapt is not Adapt.NONE:
        name += f" ({result.config.adapt.label})"
    s = result.summary
    write_run(
        stage, result.to_dict(), predictions, pooled=result.pooled, config=result.config,
        errors=errors,
        titles=(f"{name}: UA {s['ua']['mean']:.1f} ± {s['ua']['std']:.1f}",
                f"{name}: recall per class (pooled)"),
    )


__all__ = ["ExperimentResult", "FoldResult", "PreparedData", "Protocol", "fold_predictions",
           "chosen_folds", "prepare_data", "protocol_folds", "run_experiment", "run_fold",
           "select_folds", "training_sources"]
