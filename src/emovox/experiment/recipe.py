"""Does a cross-validation run measure the model it is attached to? (``train --calibrate``,
``emovox calibrate``, ``emovox ensemble --calibrate``): the same validation hold-out, corpora,
vocal channels, corpus balance, model parameters and augmentation; each difference is
logged, since the card would show another recipe's figures and temperature.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from emovox.config import ExperimentConfig
from emovox.errors import ConfigError
from emovox.experiment.rundir import CONFIG_FILE, read_cv_run

log = logging.getLogger(__name__)

__all__ = ["check_recipe", "checked_cv_run", "recipe_differences", "trained_val_speakers"]


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
        log.warning("%s was run with another recipe than %s (%s): the model card would show "
                    "figures and a temperature of that recipe, not of this model", run, model,
                    "; ".join(diffs))
    return cv


def recipe_differences(run: Path, config: dict[str, Any]) -> list[str]:
    """What the CV run ``run`` (its ``config.yaml``) did otherwise than the experiment
    config ``config`` of a model: corpora, vocal channels, corpus balance, model parameters
    (``threads`` aside), augmentation (research QA, stop 32: a RAVDESS-only 1-epoch run
    calibrated a 3-corpus model silently). Empty when they agree or the run has no config
    (a fused run)."""
    try:
        ran = ExperimentConfig.load_yaml(run / CONFIG_FILE).to_dict()
        ours = ExperimentConfig.from_dict(config).to_dict()
    except (OSError, ValueError, ConfigError):
        return []

    def corpora(d: dict[str, Any]) -> list[str]:
        data = d["data"]
        return sorted([str(data["corpus"]).lower(), *(str(c).partition("=")[0].strip().lower()
                                                      for c in data.get("corpora") or ())])

    diffs = [] if corpora(ran) == corpora(ours) else [
        f"corpora {'+'.join(corpora(ran))} vs {'+'.join(corpora(ours))}"]
    for key in ("vocal_channels", "train_extra", "balance_corpora"):
        if ran["data"].get(key) != ours["data"].get(key):
            diffs.append(f"{key} {ran['data'].get(key)} vs {ours['data'].get(key)}")
    params = [{k: v for k, v in d["model"].get("params", {}).items() if k != "threads"}
              for d in (ran, ours)]
    if params[0] != params[1]:
        diffs.append(f"model parameters {params[0]} vs {params[1]}")
    if ran.get("augment") != ours.get("augment"):
        diffs.append("augmentation")
    return diffs


def trained_val_speakers(config: dict[str, Any]) -> int | None:
    """``split.n_val_speakers`` of a model's experiment config (None when absent)."""
    split = config.get("split") if isinstance(config, dict) else None
    value = split.get("n_val_speakers") if isinstance(split, dict) else None
    return int(value) if isinstance(value, int) else None
