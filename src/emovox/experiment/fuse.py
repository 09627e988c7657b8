"""Late fusion of finished cross-validation runs: average the out-of-fold probabilities
of several run directories clip by clip (fixed weights, never tuned on test speakers).

This gives exactly what a fusion model trained fold by fold would give when its members
are the runs' models (same folds, same seeds), without training anything again.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from emovox import __version__
from emovox.errors import ConfigError
from emovox.labels import LABELS
from emovox.metrics import compute_metrics, summarize
from emovox.plots import plot_confusion, plot_recall


def _read_run(run: Path) -> tuple[dict[str, Any], dict[tuple[str, str], dict[str, str]]]:
    meta = json.loads((run / "metrics.json").read_text())
    with open(run / "predictions.csv", newline="") as f:
        rows = {(r["fold"], r["path"]): r for r in csv.DictReader(f)}
    return meta, rows


def fuse_runs(runs: list[Path], out: Path, weights: list[float] | None = None) -> dict[str, Any]:
    """Fuse ``runs`` into the run directory ``out``; returns its metrics.json content."""
    if len(runs) < 2:
        raise ConfigError("fusion needs at least two run directories")
    w = np.asarray(weights or [1.0] * len(runs), float)
    if len(w) != len(runs) or np.any(w < 0) or w.sum() <= 0:
        raise ConfigError("one non-negative weight per run")
    w = w / w.sum()
    metas, tables = zip(*(_read_run(Path(r)) for r in runs), strict=True)
    protocols = {m["protocol"] for m in metas}
    if len(protocols) != 1:
        raise ConfigError(f"runs use different protocols: {sorted(protocols)}")
    keys = set(tables[0])
    for r, t in zip(runs[1:], tables[1:], strict=True):
        if set(t) != keys:
            raise ConfigError(f"{r} has other test clips or folds than {runs[0]}")
    order = sorted(keys, key=lambda k: (int(k[0]), k[1]))
    cols = [f"p_{lab}" for lab in LABELS]
    proba = sum(wi * np.array([[float(t[k][c]) for c in cols] for k in order])
                for wi, t in zip(w, tables, strict=True))
    y = np.array([LABELS.index(tables[0][k]["true"]) for k in order])
    folds = np.array([int(k[0]) for k in order])
    pred = proba.argmax(1)
    per_fold = [compute_metrics(y[folds == f], pred[folds == f], list(LABELS))
                for f in sorted(set(folds))]
    pooled = compute_metrics(y, pred, list(LABELS))
    name = "+".join(m["model"] for m in metas)
    result = {
        "package_version": __version__, "model": f"fusion({name})",
        "protocol": metas[0]["protocol"],
        "speaker_independent": all(m["speaker_independent"] for m in metas),
        "summary": summarize(per_fold), "pooled": pooled.to_dict(),
        "worst_class": dict(zip(("label", "recall"), pooled.worst_recall, strict=True)),
        "folds": [
            {"index": int(f), "metrics": m.to_dict(), "n_test": m.n,
             "fit_seconds": sum(next(x["fit_seconds"] for x in mt["folds"] if x["index"] == f)
                                for mt in metas),
             "n_params": sum(next(x.get("n_params", 0) for x in mt["folds"] if x["index"] == f)
                             for mt in metas)}
            for f, m in zip(sorted(set(folds)), per_fold, strict=True)
        ],
        "fused_runs": [str(r) for r in runs], "weights": w.tolist(),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(result, indent=2))
    with open(out / "predictions.csv", "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["fold", "path", "speaker", "true", "pred", *cols])
        for i, k in enumerate(order):
            r = tables[0][k]
            wr.writerow([k[0], k[1], r["speaker"], r["true"], LABELS[pred[i]],
                         *(f"{v:.6f}" for v in proba[i])])
    s = result["summary"]["ua"]
    plot_confusion(pooled.confusion, list(LABELS), out / "confusion.png",
                   f"fusion({name}): UA {s['mean']:.1f} ± {s['std']:.1f}")
    plot_recall(pooled.recall, out / "recall.png", f"fusion({name}): recall per class")
    return result
