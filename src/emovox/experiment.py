"""Cross-validated experiments: corpus -> folds -> features -> model -> metrics -> run dir.

A run directory holds ``config.yaml``, ``metrics.json`` (per fold, mean +- std over
folds, pooled), ``predictions.csv`` (every test clip with its probabilities),
``errors.csv`` when files failed, and the plots ``confusion.png`` and ``recall.png``.
"""

from __future__ import annotations

import csv
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emovox import __version__
from emovox.config import DataConfig, ExperimentConfig, Protocol
from emovox.corpora import scan_corpus
from emovox.corpora.base import Utterance
from emovox.errors import ConfigError
from emovox.features.cache import (
    AudioFrontEnd,
    Extraction,
    ProgressFn,
    Variant,
    content_hash,
    extract_files,
)
from emovox.labels import LABELS, emotion_index
from emovox.metrics import Metrics, compute_metrics, summarize
from emovox.models import Family, ModelSpec, count_parameters, get_model_spec
from emovox.plots import plot_confusion, plot_recall
from emovox.splits import Fold, make_folds

log = logging.getLogger(__name__)


@dataclass
class Dataset:
    """Labelled utterances ready for splitting.

    ``train_only[i]`` marks clips that may be trained on but never tested (e.g. RAVDESS
    song clips when only speech is evaluated). Byte-identical duplicates are dropped
    (first copy kept) so the same audio can never sit on both sides of a fold.
    """

    utts: list[Utterance]
    train_only: np.ndarray
    content_ids: list[str]
    report: str
    dropped_duplicates: list[str] = field(default_factory=list)

    @property
    def y(self) -> np.ndarray:
        return np.array([emotion_index(u.emotion) for u in self.utts])


def load_dataset(cfg: DataConfig) -> Dataset:
    """Scan ``cfg.root`` with the ``cfg.corpus`` reader and apply the config's filters."""
    if not cfg.root:
        raise ConfigError("no data directory given (--data DIR)")
    scan = scan_corpus(cfg.corpus, Path(cfg.root), detect_duplicates=False)
    keep = set(cfg.vocal_channels) | set(cfg.train_extra)
    wanted = {s.lstrip("0") or "0" for s in cfg.speakers}
    utts: list[Utterance] = []
    train_only: list[bool] = []
    for u in scan.labelled:
        channel = u.meta.get("vocal_channel")
        if channel is not None and channel not in keep:
            continue
        if wanted and u.speaker.split(":", 1)[1].lstrip("0") not in wanted:
            continue
        utts.append(u)
        train_only.append(channel is not None and channel not in cfg.vocal_channels)
    if not utts:
        raise ConfigError(f"no labelled clips found under {cfg.root} with these filters")
    hashes = [content_hash(u.path) for u in utts]
    seen: dict[str, int] = {}
    kept: list[int] = []
    dropped: list[str] = []
    for i, h in enumerate(hashes):
        if h in seen:
            dropped.append(f"{utts[i].path.name} == {utts[seen[h]].path.name}")
        else:
            seen[h] = i
            kept.append(i)
    if dropped:
        log.warning("dropped %d byte-identical duplicate(s): %s", len(dropped), "; ".join(dropped))
    report = scan.summary()
    return Dataset(
        [utts[i] for i in kept],
        np.array([train_only[i] for i in kept], bool),
        [hashes[i] for i in kept],
        report,
        dropped,
    )


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


@dataclass
class ExperimentResult:
    config: ExperimentConfig
    folds: list[FoldResult]
    pooled: Metrics
    summary: dict[str, dict[str, float]]
    out_dir: Path
    extraction: dict[str, Any]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "package_version": __version__,
            "model": self.config.model.name,
            "protocol": self.config.split.protocol.value,
            "speaker_independent": self.config.split.protocol.speaker_independent,
            "summary": self.summary,
            "val_ua_mean": (
                float(np.mean([f.val_ua for f in self.folds]))
                if all(f.val_ua is not None for f in self.folds) else None
            ),
            "pooled": self.pooled.to_dict(),
            "worst_class": dict(zip(("label", "recall"), self.pooled.worst_recall, strict=True)),
            "folds": [
                {k: v for k, v in f.__dict__.items() if k != "metrics"} | {
                    "metrics": f.metrics.to_dict()
                }
                for f in self.folds
            ],
            "extraction": self.extraction,
            "seconds_total": self.seconds,
        }


def gather(feats: list[Any], idx: np.ndarray) -> Any:
    """Stack the features at ``idx`` into (N, ...) when shapes agree, else a list.

    For multi-input models each item is a tuple of arrays; the result is then a tuple
    with one gathered batch per input.
    """
    items = [feats[i] for i in idx]
    if items and isinstance(items[0], tuple):
        return tuple(gather([it[k] for it in items], np.arange(len(items)))
                     for k in range(len(items[0])))
    if items and all(a.shape == items[0].shape for a in items):
        return np.stack(items)
    return items


def _extract_inputs(
    cfg: ExperimentConfig, spec: ModelSpec, paths: list[Path], content_ids: list[str],
    progress: ProgressFn | None = None, variant: Variant | None = None,
) -> tuple[list[Any], dict[int, str], int, float]:
    """Features of every input of ``spec`` for ``paths``: (items, errors, n_cached, seconds).

    Items are arrays for single-input models and tuples of arrays for multi-input ones;
    a file that fails for any input is an error for the model.
    """
    from emovox.artifact import preprocess_for_input

    pres = [preprocess_for_input(inp) for inp in spec.inputs]  # the one Preprocess per input
    parts: list[Extraction] = [
        extract_files(
            paths, pre.feature or "", pre.feature_params,
            frontend=AudioFrontEnd(sr=pre.sr, trim=pre.trim, top_db=pre.top_db),
            cache_dir=Path(cfg.cache_dir) if cfg.cache_dir else None, content_ids=content_ids,
            n_jobs=cfg.n_jobs, progress=progress, variant=variant,
        )
        for pre in pres
    ]
    errors: dict[int, str] = {}
    for part in parts:
        for i, msg in part.errors.items():
            errors.setdefault(i, msg)
    if len(parts) == 1:
        items: list[Any] = list(parts[0].features)
    else:
        items = [tuple(p.features[i] for p in parts) for i in range(len(paths))]
    return (items, errors, min(p.n_cached for p in parts), sum(p.seconds for p in parts))


def training_set(
    cfg: ExperimentConfig,
    spec: ModelSpec,
    utts: list[Utterance],
    feats: list[Any],
    y: np.ndarray,
    content_ids: list[str],
    train_idx: np.ndarray,
) -> tuple[Any, np.ndarray]:
    """The training clips of a fold plus, when configured, their augmented variants.

    Only ``train_idx`` is ever augmented: validation and test clips never reach
    :mod:`emovox.augment`.
    """
    x = [feats[i] for i in train_idx]
    labels = [y[train_idx]]
    for k in range(cfg.augment.variants):
        items, errors, _, _ = _extract_inputs(
            cfg, spec, [utts[i].path for i in train_idx], [content_ids[i] for i in train_idx],
            variant=Variant(cfg.augment, k, cfg.seed),
        )
        good = [j for j in range(len(items)) if j not in errors]
        x += [items[j] for j in good]
        labels.append(y[train_idx][good])
    return gather(x, np.arange(len(x))), np.concatenate(labels)


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


def run_experiment(
    cfg: ExperimentConfig,
    out_dir: Path,
    *,
    progress: ProgressFn | None = None,
    on_fold: Callable[[FoldResult], None] | None = None,
    on_epoch: Callable[[int, int, float, float], None] | None = None,
) -> ExperimentResult:
    """Run every fold of ``cfg`` and write the run directory ``out_dir``."""
    t0 = time.perf_counter()
    spec = get_model_spec(cfg.model.name)
    ds = load_dataset(cfg.data)
    log.info("%s", ds.report)

    items, ext_errors, n_cached, ext_seconds = _extract_inputs(
        cfg, spec, [u.path for u in ds.utts], ds.content_ids, progress
    )
    ok = np.array([i not in ext_errors for i in range(len(ds.utts))])
    feats = [f for i, f in enumerate(items) if ok[i]]
    errors = [(ds.utts[i].path, msg) for i, msg in sorted(ext_errors.items())]
    utts = [u for u, k in zip(ds.utts, ok, strict=True) if k]
    y = ds.y[ok]
    train_only = ds.train_only[ok]
    content_ids = [c for c, k in zip(ds.content_ids, ok, strict=True) if k]

    folds: list[Fold] = make_folds(
        utts,
        cfg.split.protocol,
        seed=cfg.seed,
        n_val_speakers=cfg.split.n_val_speakers,
        test_size=cfg.split.test_size,
        train_only=train_only,
        content_ids=content_ids,
    )
    if cfg.split.folds:
        bad = [k for k in cfg.split.folds if not 0 <= k < len(folds)]
        if bad:
            raise ConfigError(f"fold indices {bad} out of range 0..{len(folds) - 1}")
        folds = [folds[k] for k in cfg.split.folds]

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg.save_yaml(out_dir / "config.yaml")

    results: list[FoldResult] = []
    rows: list[dict[str, Any]] = []
    all_true: list[np.ndarray] = []
    all_pred: list[np.ndarray] = []
    for fold in folds:
        t_fit = time.perf_counter()
        x_train, y_train = training_set(cfg, spec, utts, feats, y, content_ids, fold.train)
        extra = {"on_epoch": on_epoch} if on_epoch and spec.family is Family.NEURAL else {}
        model = spec.build(n_classes=len(LABELS), seed=cfg.seed, **cfg.model.params, **extra)
        model.fit(x_train, y_train, gather(feats, fold.val), y[fold.val])
        proba = model.predict_proba(gather(feats, fold.test))
        fit_s = time.perf_counter() - t_fit
        _save_fold_outputs(cfg, model, fold.index, out_dir)
        pred = proba.argmax(axis=1)
        m = compute_metrics(y[fold.test], pred, list(LABELS))
        member_ua = {
            name: compute_metrics(y[fold.test], p.argmax(1), list(LABELS)).ua
            for name, p in getattr(model, "member_probas", lambda _: {})(
                gather(feats, fold.test)
            ).items()
        }
        fr = FoldResult(
            fold.index, list(fold.test_speakers), list(fold.val_speakers),
            len(fold.train), len(fold.val), len(fold.test), fit_s, m, count_parameters(model),
            member_ua, _best_val_ua(model),
        )
        results.append(fr)
        if on_fold:
            on_fold(fr)
        log.info("fold %d: UA %.1f WA %.1f (%.1f s)", fold.index, m.ua, m.wa, fit_s)
        all_true.append(y[fold.test])
        all_pred.append(pred)
        for j, i in enumerate(fold.test):
            u = utts[i]
            rows.append(
                {"fold": fold.index, "path": str(u.path), "speaker": u.speaker,
                 "true": LABELS[y[i]], "pred": LABELS[pred[j]]}
                | {f"p_{lab}": f"{proba[j, c]:.6f}" for c, lab in enumerate(LABELS)}
            )

    pooled = compute_metrics(np.concatenate(all_true), np.concatenate(all_pred), list(LABELS))
    result = ExperimentResult(
        cfg, results, pooled, summarize([r.metrics for r in results]), out_dir,
        {"feature": "+".join(i.feature for i in spec.inputs), "n_files": len(ds.utts),
         "n_cached": n_cached, "n_errors": len(errors), "seconds": ext_seconds,
         "dropped_duplicates": ds.dropped_duplicates},
        time.perf_counter() - t0,
    )
    _write_run_dir(result, rows, errors)
    return result


def _write_run_dir(
    result: ExperimentResult, rows: list[dict[str, Any]], errors: list[tuple[Path, str]]
) -> None:
    out = result.out_dir
    (out / "metrics.json").write_text(json.dumps(result.to_dict(), indent=2))
    with open(out / "predictions.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    if errors:
        with open(out / "errors.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["path", "error"])
            w.writerows((str(p), msg) for p, msg in errors)
    name = f"{result.config.model.name} / {result.config.split.protocol.value}"
    s = result.summary
    plot_confusion(
        result.pooled.confusion, result.pooled.labels, out / "confusion.png",
        f"{name}: UA {s['ua']['mean']:.1f} ± {s['ua']['std']:.1f}",
    )
    plot_recall(result.pooled.recall, out / "recall.png", f"{name}: recall per class (pooled)")


__all__ = [
    "Dataset", "ExperimentResult", "FoldResult", "Protocol", "load_dataset", "run_experiment",
]
