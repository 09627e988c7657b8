"""Research commands: ``evaluate``, ``scan``, ``report``, ``fuse``, ``models``, ``train``,
``export``. Each parses its options, calls :mod:`emovox.experiment` (or corpora, models,
training) and hands the result to :mod:`emovox.cli.render`; heavy imports stay inside."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from emovox.augment import AugmentRecipe, recipe_config
from emovox.cli import bars, render
from emovox.cli.common import (
    USER_ERRORS,
    CorpusOpt,
    ExitCode,
    JobsOpt,
    ParamOpt,
    SeedOpt,
    SpeakerPatternOpt,
    VerboseOpt,
    check_model_option,
    csv_list,
    exit_failed,
    fail,
    model_params,
    setup_logging,
)
from emovox.cli.data_args import data_config
from emovox.cli.research_opts import (
    AdaptOpt,
    ArtifactOpt,
    AugmentOpt,
    AugmentRecipeOpt,
    BalanceOpt,
    CacheDirOpt,
    FoldsOpt,
    ProtocolOpt,
    SaveModelsOpt,
    SourcesOpt,
    SpeakersOpt,
    SplitSeedOpt,
    TeacherOpt,
    TestOnlyOpt,
    WeightsOpt,
    parse_folds,
    parse_weights,
)
from emovox.config import (
    Adapt,
    ExperimentConfig,
    ModelConfig,
    Protocol,
    SplitConfig,
    check_speaker_pattern,
)


def evaluate(
    ctx: typer.Context,
    data: SourcesOpt,
    model: Annotated[str, typer.Option("--model", help="Model name (see `emovox models`).")] = (
        "egemaps_logreg"
    ),
    protocol: ProtocolOpt = Protocol.EMOBOX,
    corpus: CorpusOpt = "ravdess",
    speaker_pattern: SpeakerPatternOpt = None,
    folds: FoldsOpt = "",
    speakers: SpeakersOpt = "",
    channels: Annotated[
        str, typer.Option(help="RAVDESS vocal channels to evaluate on: speech, song.")
    ] = "speech",
    train_extra: Annotated[
        str, typer.Option(help="Extra RAVDESS channels for training only, e.g. 'song'.")
    ] = "",
    param: ParamOpt = [],  # noqa: B006 - typer needs a literal default
    val_speakers: Annotated[int, typer.Option(
        min=0, help="Validation speakers per fold (--protocol random: 0 holds out no "
        "validation clips, more holds out 10 % of the training clips).")] = 2,
    augment: AugmentOpt = 0,
    augment_recipe: AugmentRecipeOpt = AugmentRecipe.CLASSIC,
    save_models: SaveModelsOpt = False,
    balance_corpora: BalanceOpt = False,
    test_only: TestOnlyOpt = "",
    adapt: AdaptOpt = Adapt.NONE,
    teacher: TeacherOpt = [],  # noqa: B006 - typer needs a literal default
    seed: SeedOpt = 0,
    split_seed: SplitSeedOpt = None,
    jobs: JobsOpt = 2,
    cache_dir: CacheDirOpt = None,
    out: Annotated[Path | None, typer.Option(help="Run directory (default runs/<model>-...).")
                   ] = None,
    artifact: ArtifactOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Cross-validate a model under a speaker split and write a run directory; or, with
    --artifact, score a trained model on another corpus."""
    if artifact is not None:  # options of cross-validation runs: refused, not ignored
        _evaluate_artifact(artifact, corpus, data, out, jobs, verbose, speaker_pattern,
                           _given(ctx, _CV_ONLY))
        return
    params = model_params(model, param)
    from emovox.experiment.rundest import default_run_dir
    from emovox.experiment.runner import run_experiment

    setup_logging(verbose)
    try:
        cfg = ExperimentConfig(
            data=data_config(
                data, corpus, vocal_channels=csv_list(channels),
                train_extra=csv_list(train_extra), speakers=csv_list(speakers),
                balance_corpora=balance_corpora, test_only=csv_list(test_only),
                speaker_pattern=speaker_pattern,
            ),
            split=SplitConfig(protocol=protocol, folds=parse_folds(folds),
                              n_val_speakers=val_speakers, seed=split_seed),
            model=ModelConfig(name=model, params=params),
            augment=recipe_config(augment_recipe, augment),
            seed=seed,
            cache_dir=str(cache_dir or ""),
            n_jobs=jobs,
            save_models=save_models,
            adapt=adapt,
            teachers=tuple(str(t) for t in teacher),
        )
        out = out or default_run_dir(f"{model}-{protocol.value}{_run_suffix(adapt)}")
        with bars.evaluate_progress() as bar:
            res = run_experiment(cfg, out, progress=bar.features, on_epoch=bar.epoch,
                                 on_fold=bar.fold)
    except USER_ERRORS as exc:
        fail(exc)
    render.evaluation(res, model, protocol, adapt.label)
    _per_corpus(res, adapt)


#: evaluate's options that only cross-validation runs read (refused with --artifact)
_CV_ONLY = ("adapt", "folds", "teacher", "speakers", "train_extra", "param", "augment",
            "test_only", "save_models", "balance_corpora", "channels", "protocol", "model",
            "seed", "split_seed", "val_speakers", "cache_dir", "augment_recipe")


def _given(ctx: typer.Context, names: tuple[str, ...]) -> list[str]:
    """The options among ``names`` that the user gave (command line or environment), even
    at their default value (an explicit ``--seed 0`` passed as unset, stop 38). Sources
    are compared by name: typer carries its own copy of click's ``ParameterSource``."""
    return [max(p.opts, key=len) for p in ctx.command.params if p.name in names and getattr(
        ctx.get_parameter_source(p.name), "name", "DEFAULT") != "DEFAULT"]


def _run_suffix(adapt: Adapt) -> str:
    """What the default run folder name adds for ``adapt`` (``-adapt``, ``-corpus-adapt``)."""
    return {Adapt.NONE: "", Adapt.SPEAKER: "-adapt"}.get(adapt, f"-{adapt.value}-adapt")


def _per_corpus(res: Any, adapt: Adapt) -> None:
    render.adaptation_caveat(adapt.value)
    if len(res.corpora) > 1:
        render.console.print("per corpus (its classes only): " + " · ".join(
            f"{c} UA {m.ua:.1f} (n={m.n})" for c, m in res.per_corpus.items()))


def _evaluate_artifact(
    artifact: Path, corpus: str, data: list[str], out: Path | None, jobs: int, verbose: bool,
    speaker_pattern: str | None, given: list[str],
) -> None:
    """``evaluate --artifact``; ``given``: the cross-validation options given (refused:
    ``--speakers`` was ignored without a word and every speaker scored, QA re-check, 38)."""
    if given:
        fail(ValueError(f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to "
                        "cross-validation runs, not to --artifact"))
    from emovox.experiment.crosscorpus import evaluate_artifact

    setup_logging(verbose)
    art = None if str(artifact) == "bundled" else artifact
    try:
        one = data_config(data, corpus, speaker_pattern=speaker_pattern)
        if one.corpora:
            raise ValueError("--artifact scores one corpus: give one --data")
        corpus = one.corpus
        # no --out: the default folder, named so in a refusal (review, stop 57)
        res = evaluate_artifact(art, corpus, Path(one.root), out, workers=jobs,
                                speaker_pattern=speaker_pattern)
    except USER_ERRORS as exc:
        fail(exc)
    render.crosscorpus(res, corpus, res.out_dir)


def scan(
    data: Annotated[Path, typer.Argument(help="Corpus root directory.")],
    corpus: CorpusOpt = "ravdess",
    speaker_pattern: SpeakerPatternOpt = None,
) -> None:
    """Read a corpus tree and report what it holds (or which reader matches it). Exit code 1
    if the reader labels no file there."""
    from emovox.corpora import (
        SPEAKER_PATTERN_FOLDER_ONLY,
        get_reader,
        reader_options,
        scan_corpus,
    )

    setup_logging(False)
    try:
        name = get_reader(corpus).NAME
        if speaker_pattern is not None and name != "folder":
            raise ValueError(SPEAKER_PATTERN_FOLDER_ONLY)
        check_speaker_pattern(speaker_pattern)
        with _held_logs("emovox.corpora") as held:
            sc = scan_corpus(corpus, data, **reader_options(name, speaker_pattern))
    except USER_ERRORS as exc:
        fail(exc)
    summary = sc.summary()
    for record in held:  # the reader logs its summary too: show it once
        if record.getMessage() != summary:
            logging.getLogger(record.name).handle(record)
    matches = []
    if not sc.labelled:
        from emovox.corpora.detect import matching_readers

        matches = matching_readers(data, exclude=(name,))
    render.scan(corpus, summary, sc.label_counts(), matches, data,
                nothing_labelled=not sc.labelled)
    if not sc.labelled:  # exit 0 let `scan DIR && evaluate --data DIR` go on (QA, stop 33)
        raise typer.Exit(int(ExitCode.FAILED))


@contextmanager
def _held_logs(logger_name: str) -> Iterator[list[logging.LogRecord]]:
    """Records of ``logger_name`` (and below) are kept in the yielded list, not shown."""
    held: list[logging.LogRecord] = []

    class _Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            held.append(record)

    target = logging.getLogger(logger_name)
    handler, propagate = _Keep(), target.propagate
    target.addHandler(handler)
    target.propagate = False
    try:
        yield held
    finally:
        target.removeHandler(handler)
        target.propagate = propagate


def report(
    runs: Annotated[list[Path], typer.Argument(help="Run directories written by `evaluate`.")],
) -> None:
    """A Markdown results table from run directories (numbers read from metrics.json)."""
    from emovox.experiment.report import collect_report, markdown_table

    rep = collect_report(runs)
    if not rep.rows:  # every directory skipped: say so and fail, not an empty table
        render.report(rep.problems, [])
        exit_failed(f"no run directory could be read ({len(rep.problems)} skipped)")
    render.report(rep.problems, markdown_table(rep.rows))


def fuse(
    runs: Annotated[list[Path], typer.Argument(help="Run directories of the same protocol.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory to write.")],
    weights: WeightsOpt = None,
) -> None:
    """Late fusion of finished CV runs: average their out-of-fold probabilities."""
    from emovox.experiment.fuse import fuse_runs

    try:
        res = fuse_runs(runs, out, parse_weights(weights))
    except (*USER_ERRORS, KeyError) as exc:
        fail(exc)
    render.fusion(res, out)


def merge(
    runs: Annotated[list[Path], typer.Argument(help="Runs of one configuration, other folds.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory to write.")],
) -> None:
    """Merge runs of the same configuration over disjoint folds (evaluate --folds K in
    separate processes) into one run directory."""
    from emovox.experiment.fuse import merge_runs

    try:
        res = merge_runs(runs, out)
    except (*USER_ERRORS, KeyError) as exc:
        fail(exc)
    render.run_line(out, res, "over folds " + ", ".join(str(f["index"]) for f in res["folds"]))
    render.adaptation_caveat(res.get("adapt"))


def ensemble(
    members: Annotated[list[Path], typer.Argument(
        help="Trained network model folders, and at most one linear model on utterance "
        "functionals (prosody_logreg) trained with the networks' trimming.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model folder to write.")],
    calibrate: Annotated[
        Path | None,
        typer.Option(help="`emovox fuse` run of the members' CV runs: temperature + card."),
    ] = None,
    calibrate_also: Annotated[
        list[Path],
        typer.Option("--calibrate-also",
                     help="Another fused CV run of the same recipe (e.g. its EmoBox run when "
                     "--calibrate is the loco one), pooled into the temperature fit."),
    ] = [],  # noqa: B006 - typer needs a literal default
    force: Annotated[bool, typer.Option("--force", help="Replace an existing model folder.")] = (
        False
    ),
    narrow_band: Annotated[
        Path | None,
        typer.Option("--narrow-band",
                     help="A linear model on columns of the functional member's feature "
                     "(prosody_robust_logreg) that answers instead of it for narrow-band "
                     "input (a telephone line)."),
    ] = None,
    band_floor_db: Annotated[
        float | None,
        typer.Option(help="Band ratio (dB, 4.5-7 kHz against 0.3-3.4 kHz) below which "
                     "input counts as narrow-band (with --narrow-band; default -35.3, "
                     "see the README's \"The bandwidth switch\")."),
    ] = None,
) -> None:
    """One model from several trained networks that read the same input (and optionally one
    linear model on utterance functionals): the mean of their probabilities, saved and
    exported to ONNX as one network."""
    from emovox.experiment.package import ensemble_bundle

    setup_logging(False)
    try:
        meta = ensemble_bundle(members, out, calibrate=calibrate, also=calibrate_also,
                               force=force, narrow=narrow_band,
                               **({"band_floor_db": band_floor_db}
                                  if band_floor_db is not None else {}))
    except (*USER_ERRORS, ImportError) as exc:
        fail(exc)
    render.console.print(f"wrote {out}: {meta.name}, {meta.n_params:,} parameters, "
                         f"temperature {meta.calibration.temperature:.3f}")
    render.calibration_per_corpus(meta.calibration.report or {})


def models(
    model: Annotated[Path | None, typer.Argument(
        help="A model folder or bundled name: show its model card instead.")] = None,
) -> None:
    """Bundled models (for predict --model) and architectures (for evaluate --model); with
    a MODEL, its model card (MODEL_CARD.md)."""
    from emovox.artifact.paths import DEPRECATED_MODEL_NAMES, RETIRED_MODELS
    from emovox.cli.names import bundled_models
    from emovox.models import MODELS

    if model is not None:  # `emovox models DIR` was an error (own-data QA, stop 33)
        _show_card(model)
        return
    render.models(bundled_models(), list(MODELS.values()), DEPRECATED_MODEL_NAMES,
                  RETIRED_MODELS)


def _show_card(model: Path) -> None:
    """Print a model folder's MODEL_CARD.md (read as the API reads it: the folder's own
    regular file, at most 256 KB); exit 2 for what is no model folder or has no card."""
    from emovox.artifact.paths import MAX_CARD_BYTES, model_folder, read_contained_text
    from emovox.serving.predictor import Predictor

    model = check_model_option(model)
    if model is not None and model.name == "model.json" and model.is_file():
        model = model.parent  # the folder's own model.json names the folder
    try:
        folder = model_folder(model)
        # a folder every answering command refuses is refused (QA, 40): loaded as they load
        Predictor.from_artifact(folder)  # it (labels or shapes the network does not fit)
        card = read_contained_text(folder, "MODEL_CARD.md", MAX_CARD_BYTES)
    except USER_ERRORS as exc:  # ArtifactError is an EmovoxError
        fail(exc)
    if card is None:
        fail(FileNotFoundError(f"{folder} has no MODEL_CARD.md (its model.json describes it)"))
    render.markdown(card)


def train(
    data: SourcesOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="Model folder to write.")],
    model: Annotated[str, typer.Option("--model", help="Registered model name.")] = "crnn",
    corpus: CorpusOpt = "ravdess",
    speaker_pattern: SpeakerPatternOpt = None,
    channels: Annotated[str, typer.Option(help="RAVDESS vocal channels.")] = "speech",
    calibrate: Annotated[
        Path | None,
        typer.Option(help="CV run directory of the same model: temperature + model-card metrics."),
    ] = None,
    param: ParamOpt = [],  # noqa: B006 - typer needs a literal default
    augment: AugmentOpt = 0,
    augment_recipe: AugmentRecipeOpt = AugmentRecipe.CLASSIC,
    seed: SeedOpt = 0,
    jobs: JobsOpt = 2,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing model folder.")] = (
        False
    ),
    no_onnx: Annotated[bool, typer.Option("--no-onnx", help="Skip the ONNX export.")] = False,
    val_speakers: Annotated[
        int, typer.Option(min=0, help="Hold out N speakers for early stopping / compare_lrcv's C "
                          "(0 = train on every speaker for the model's fixed epochs).")
    ] = 0,
    balance_corpora: BalanceOpt = False,
    teacher: Annotated[
        list[Path], typer.Option("--teacher", help="Distil from this trained model folder "
                                 "(e.g. an `emovox ensemble`) reading the same input; repeat "
                                 "to average several.")
    ] = [],  # noqa: B006 - typer needs a literal default
    verbose: VerboseOpt = False,
) -> None:
    """Train a model on every speaker of one or several corpora and package it for
    `emovox predict`."""
    params = model_params(model, param)
    from emovox.experiment.package import train_bundle

    setup_logging(verbose)
    try:
        cfg = ExperimentConfig(
            data=data_config(data, corpus, vocal_channels=csv_list(channels),
                             balance_corpora=balance_corpora, speaker_pattern=speaker_pattern),
            split=SplitConfig(n_val_speakers=val_speakers),
            model=ModelConfig(name=model, params=params),
            augment=recipe_config(augment_recipe, augment),
            seed=seed, n_jobs=jobs, teachers=tuple(str(t) for t in teacher),
        )
        b = train_bundle(cfg, out, calibrate=calibrate, force=force, onnx=not no_onnx)
    except (*USER_ERRORS, ImportError) as exc:
        fail(exc)
    render.trained(model, b)


def calibrate(
    model: Annotated[Path, typer.Argument(help="A trained model folder (emovox train).")],
    cv: Annotated[Path, typer.Argument(help="CV run directory of the same model.")],
    also: Annotated[
        list[Path],
        typer.Option("--also", help="Another CV run of the same model pooled into the fit."),
    ] = [],  # noqa: B006 - typer needs a literal default
) -> None:
    """Attach a CV run to a trained model afterwards: model-card metrics and the temperature
    fitted on its out-of-fold predictions (what `train --calibrate` does while training)."""
    from emovox.experiment.calibrate import calibrate_bundle

    setup_logging(False)
    try:
        report = calibrate_bundle(model, cv, also)
    except USER_ERRORS as exc:
        fail(exc)
    render.console.print(
        f"{model}: temperature {report['temperature']:.3f}, ECE "
        f"{report['ece_before']:.3f} -> {report['ece_after']:.3f} on the run's out-of-fold "
        "predictions (in-sample: the temperature was fitted on them)")
    render.calibration_per_corpus(report)


def export(
    model: Annotated[Path, typer.Argument(help="A trained neural model folder.")],
    opset: Annotated[int, typer.Option(min=9, max=20, help="ONNX opset.")] = 17,
) -> None:
    """Export a neural model to ONNX (model.onnx beside its weights), verified against torch."""
    from emovox.training.export import export_onnx

    setup_logging(False)
    try:
        path = export_onnx(model, opset=opset)
    except (*USER_ERRORS, ImportError) as exc:
        fail(exc)
    except RuntimeError as exc:  # torch.onnx: an operator this opset cannot express
        first = (str(exc).strip().splitlines() or ["no detail"])[0]
        hint = "; try the default, 17" if opset != 17 else ""  # not when it was (QA, 40)
        fail(RuntimeError(f"{model}: ONNX export at opset {opset} failed ({first}){hint}"))
    render.console.print(f"wrote {path}")
