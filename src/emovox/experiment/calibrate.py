"""Calibrating a trained model folder afterwards (``emovox calibrate``): the CV run's
metrics for its card, a temperature fitted on the run's out-of-fold predictions, and the
speeds the run was read at (:mod:`.rescore`), written into the folder whole."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from emovox.artifact.clips import trained_corpora, trained_digests
from emovox.artifact.dest import checked_destination, copy_folder, run_holding
from emovox.artifact.paths import CARD_FILE
from emovox.errors import ConfigError
from emovox.experiment.card import model_card
from emovox.experiment.recipe import (
    check_recipe,
    metrics_with_also,
    read_also_runs,
    recipe_differences,
    trained_val_speakers,
    warn_other_clips,
    warn_recipe,
)
from emovox.experiment.rescore import run_speeds
from emovox.experiment.rundir import read_cv_run
from emovox.fileio import claimed_folder

__all__ = ["calibrate_bundle"]


def calibrate_bundle(path: Path, calibrate: Path, also: Sequence[Path] = ()) -> dict[str, Any]:
    """Attach the CV run ``calibrate`` to the trained model folder ``path`` afterwards: what
    ``train_bundle(..., calibrate=)`` does at training time (the run's metrics for the model
    card, the temperature fitted on its out-of-fold predictions), so a final model can be
    trained while its cross-validation still runs. ``also``: further CV runs pooled into the
    temperature fit (:func:`~emovox.experiment.rundir.fit_from_predictions_csv`). The model
    then reads each clip at the ``speeds`` the runs were read at (:mod:`.rescore`; once
    when they were not), so its temperature fits what it answers. Returns the calibration
    report."""
    from emovox.artifact import (
        attach_inference,
        foreign_files,
        read_artifact,
        replace_folder,
        update_artifact,
    )
    from emovox.experiment.rundir import fit_from_predictions_csv

    path = Path(path)
    real = _rewritable(path)  # said before the fit, in calibrate's words (audit, stop 56)
    meta = read_artifact(path).meta  # its files checked before anything is written (QA, 40)
    if foreign := foreign_files(path):  # said before the fit, in calibrate's words (46)
        raise ConfigError(f"{path} also holds {', '.join(foreign[:5])}, which emovox did not "
                          "write; calibrate rewrites the model folder whole: move them out "
                          "first")
    cv = read_cv_run(calibrate, meta.name)
    also_runs = read_also_runs(also, meta.name, calibrate)
    trained_val = trained_val_speakers(meta.experiment_config)
    caveats = []  # what was warned goes into the card too (it was said once: QA, stop 39)
    for run, c in zip([calibrate, *also], [cv, *also_runs], strict=True):
        check_recipe(Path(run), c, trained_val, meta.name)
        if n := warn_other_clips(Path(run), c, trained_digests(meta.trained_on),
                                 trained_corpora(meta.trained_on)):  # stops 35, 40
            caveats.append(f"{Path(run).name} tested {n} clip(s) of other data")
    for run in [calibrate, *also]:  # the --also runs too (re-check, stop 32)
        warn_recipe(Path(run), path, diffs := recipe_differences(Path(run),
                                                                  meta.experiment_config))
        if diffs:
            caveats.append(f"{Path(run).name} was run with another recipe ({'; '.join(diffs)})")
    speeds = run_speeds([c.metrics for c in [cv, *also_runs]], [calibrate, *also])
    calibration = fit_from_predictions_csv(cv.predictions,  # first: a failed fit writes
                                           also=[a.predictions for a in also_runs])  # nothing
    calibration |= {"caveats": caveats} if caveats else {}
    # written in a copy swapped in whole: metrics, temperature and card were three writes,
    # a failure between them leaving a model with new metrics and the old temperature
    with claimed_folder(real) as (tmp, others):  # (code review, stop 46; a "build" claim,
        # as train and ensemble make: each sees the other, and a killed one is cleaned up)
        if others:
            raise ConfigError(f"another emovox process (PID {others[0]}) is writing {path}")
        stage = tmp / real.name
        copy_folder(real, stage)  # a full disk said in one line (audit, stop 56)
        update_artifact(stage, meta.replace(  # read as the runs were read (emovox rescore)
            metrics=metrics_with_also(cv.metrics, also_runs),
            preprocess=meta.preprocess.replace(speeds=speeds)))
        meta = attach_inference(stage, temperature=calibration["temperature"],
                                calibration=calibration)
        (stage / CARD_FILE).write_text(model_card(meta.card_view()))
        replace_folder(stage, real, force=True)
    return calibration


def _rewritable(path: Path) -> Path:
    """The folder ``calibrate`` rewrites for ``path``: the one a link points to (as
    ``export`` does; the link was refused after the fit, in the words of an option
    calibrate has not), never the current folder or one holding it (its claim and copy
    are made beside it by name), nor a run's fold model (its run's figures were computed
    from it; rescore refused the run for good after: audit, stop 56)."""
    real = path.resolve() if path.is_symlink() else path
    real = checked_destination(real, "calibrate rewrites the model folder whole: run it "
                               "from elsewhere")
    if (run := run_holding(real)) is not None:
        raise ConfigError(f"{path} is a fold model of the run {run} (in its models/ folder): "
                          "its run's figures were computed from its probabilities (emovox "
                          "rescore re-reads them); calibrate a copy of it (cp -r) instead")
    return real
