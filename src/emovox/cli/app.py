"""The ``emovox`` command line. A thin layer: parse, call the library, print."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from emovox import __version__
from emovox.config import DataConfig, ExperimentConfig, ModelConfig, Protocol, SplitConfig
from emovox.errors import EmovoxError

app = typer.Typer(
    name="emovox",
    help="Speech emotion recognition, evaluated honestly on speakers never heard.",
    no_args_is_help=True,
    add_completion=False,
)
# Tables keep a readable width when piped or captured (rich falls back to 80 columns).
console = Console(width=None if sys.stdout.isatty() else 120)
err_console = Console(stderr=True)

EXIT_USAGE = 2


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_path=False, show_time=False)],
        force=True,
    )


def _csv(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


def _parse_params(items: list[str]) -> dict:
    import yaml

    out: dict = {}
    for item in items:
        if "=" not in item:
            raise typer.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--param")
        k, v = item.split("=", 1)
        out[k.strip()] = yaml.safe_load(v)
    return out


def _model_params(model: str, items: list[str]) -> dict:
    """``-p KEY=VALUE`` items for ``model``, typed; exit 2 naming the valid keys on a bad
    one. Imports only the (light) model registry: runs before any heavy import."""
    from emovox.models import validate_params

    try:
        return validate_params(model, _parse_params(items))
    except (EmovoxError, ValueError) as exc:
        _fail(exc)
        raise


def _fail(exc: Exception) -> None:
    err_console.print(f"[bold red]error:[/] {exc}")
    raise typer.Exit(EXIT_USAGE)


def _version(value: bool) -> None:
    if value:
        console.print(f"emovox {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version.")
    ] = False,
) -> None:
    """emovox: which of eight emotions does a voice carry?"""


@app.command()
def evaluate(
    data: Annotated[Path, typer.Option("--data", help="Corpus root directory.")],
    model: Annotated[str, typer.Option("--model", help="Model name (see `emovox models`).")] = (
        "egemaps_logreg"
    ),
    protocol: Annotated[Protocol, typer.Option(help="Speaker split protocol.")] = Protocol.EMOBOX,
    corpus: Annotated[str, typer.Option(help="Corpus reader.")] = "ravdess",
    folds: Annotated[str, typer.Option(help="Run only these folds, e.g. '0,1'.")] = "",
    speakers: Annotated[
        str, typer.Option(help="Use only these speakers (corpus ids), e.g. '01,02,11'.")
    ] = "",
    channels: Annotated[
        str, typer.Option(help="RAVDESS vocal channels to evaluate on: speech, song.")
    ] = "speech",
    train_extra: Annotated[
        str, typer.Option(help="Extra RAVDESS channels for training only, e.g. 'song'.")
    ] = "",
    param: Annotated[
        list[str], typer.Option("--param", "-p", help="Model parameter KEY=VALUE (repeatable).")
    ] = [],  # noqa: B006 - typer needs a literal default
    val_speakers: Annotated[int, typer.Option(help="Validation speakers per fold.")] = 2,
    augment: Annotated[
        int, typer.Option(help="Augmented copies of each TRAINING clip (noise, pitch, stretch...).")
    ] = 0,
    save_models: Annotated[
        bool, typer.Option("--save-models", help="Save each fold's model in the run directory.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Extraction processes.")] = 2,
    cache_dir: Annotated[
        Path | None, typer.Option(help="Feature cache (default $EMOVOX_CACHE or ~/.cache/emovox).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Run directory (default runs/<model>-...).")] = (
        None
    ),
    artifact: Annotated[
        Path | None,
        typer.Option(help="Score this trained model folder on --corpus instead of training "
                     "('bundled' = the shipped model), over the classes both share."),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Cross-validate a model under a speaker split and write a run directory; or, with
    --artifact, score a trained model on another corpus."""
    if artifact is not None:
        _evaluate_artifact(artifact, corpus, data, out, jobs, verbose)
        return
    params = _model_params(model, param)
    from emovox.augment import AugmentConfig
    from emovox.experiment.runner import FoldResult, run_experiment
    from emovox.metrics import SCALARS

    _setup_logging(verbose)
    try:
        cfg = ExperimentConfig(
            data=DataConfig(
                corpus=corpus, root=str(data), vocal_channels=_csv(channels),
                train_extra=_csv(train_extra), speakers=_csv(speakers),
            ),
            split=SplitConfig(
                protocol=protocol, folds=tuple(int(k) for k in _csv(folds)),
                n_val_speakers=val_speakers,
            ),
            model=ModelConfig(name=model, params=params),
            augment=AugmentConfig(variants=augment),
            seed=seed,
            cache_dir=str(cache_dir or ""),
            n_jobs=jobs,
            save_models=save_models,
        )
        out = out or Path("runs") / f"{model}-{protocol.value}-{time.strftime('%Y%m%d-%H%M%S')}"
        with Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
            console=err_console, transient=True, disable=not err_console.is_terminal,
        ) as bar:
            feat_task = bar.add_task("features", total=None, info="")
            epoch_task = bar.add_task("training", total=None, info="", visible=False)
            folds_done = [0]

            def on_epoch(epoch: int, epochs: int, loss: float, val_ua: float) -> None:
                bar.update(epoch_task, visible=True, completed=epoch + 1, total=epochs,
                           info=f"fold {folds_done[0]} · loss {loss:.3f} · val UA {val_ua:.1f}")

            def on_fold(fr: FoldResult) -> None:
                folds_done[0] += 1
                err_console.log(f"fold {fr.index}: UA {fr.metrics.ua:.1f} "
                                f"WA {fr.metrics.wa:.1f} ({fr.fit_seconds:.0f} s)")

            res = run_experiment(
                cfg, out,
                progress=lambda done, total: bar.update(feat_task, completed=done, total=total),
                on_epoch=on_epoch, on_fold=on_fold,
            )
    except (EmovoxError, ValueError, OSError) as exc:
        _fail(exc)
        return

    kind = "speaker-independent" if protocol.speaker_independent else (
        "SPEAKER-DEPENDENT (same speakers in train and test; not comparable)"
    )
    table = Table(title=f"{model} · {protocol.value} ({kind})")
    for col in ("fold", "test speakers", "n", "UA", "WA", "macro-F1", "weighted-F1", "fit s"):
        table.add_column(col, justify="right")
    for f in res.folds:
        m = f.metrics
        table.add_row(
            str(f.index), ",".join(s.split(":")[-1] for s in f.test_speakers) or "random",
            str(f.n_test), f"{m.ua:.1f}", f"{m.wa:.1f}", f"{m.macro_f1:.1f}",
            f"{m.weighted_f1:.1f}", f"{f.fit_seconds:.1f}",
        )
    s = res.summary
    table.add_section()
    table.add_row(
        "mean ± std", "", str(sum(f.n_test for f in res.folds)),
        *(f"{s[k]['mean']:.1f} ± {s[k]['std']:.1f}" for k in SCALARS),
        f"{sum(f.fit_seconds for f in res.folds):.1f}",
    )
    console.print(table)
    worst, rec = res.pooled.worst_recall
    ext = res.extraction
    console.print(
        f"pooled UA {res.pooled.ua:.1f} · worst class {worst} ({rec:.1f} % recall) · "
        f"features: {ext['n_files']} files ({ext['n_cached']} cached, {ext['n_errors']} errors) "
        f"in {ext['seconds']:.1f} s · total {res.seconds:.1f} s"
    )
    console.print(f"run directory: {res.out_dir}")


def _evaluate_artifact(
    artifact: Path, corpus: str, data: Path, out: Path | None, jobs: int, verbose: bool
) -> None:
    from emovox.experiment.crosscorpus import evaluate_artifact

    _setup_logging(verbose)
    art = None if str(artifact) == "bundled" else artifact
    out = out or Path("runs") / f"crosscorpus-{corpus}-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        res = evaluate_artifact(art, corpus, data, out, workers=jobs)
    except (EmovoxError, ValueError, OSError) as exc:
        _fail(exc)
        return
    m = res.metrics
    table = Table(title=f"cross-corpus · {corpus} · classes: {', '.join(res.classes)}")
    for col in ("n", "UA", "WA", "macro-F1", "weighted-F1", "worst class"):
        table.add_column(col, justify="right")
    worst, rec = m.worst_recall
    table.add_row(str(m.n), f"{m.ua:.1f}", f"{m.wa:.1f}", f"{m.macro_f1:.1f}",
                  f"{m.weighted_f1:.1f}", f"{worst} ({rec:.1f})")
    console.print(table)
    console.print(f"{res.n_errors} unreadable files · {res.seconds:.1f} s · run directory: {out}")


@app.command()
def scan(
    data: Annotated[Path, typer.Argument(help="Corpus root directory.")],
    corpus: Annotated[str, typer.Option(help="Corpus reader.")] = "ravdess",
) -> None:
    """Read a corpus tree and report what it holds: counts, speakers, problems."""
    from collections import Counter

    from emovox.corpora import scan_corpus

    _setup_logging(False)
    try:
        sc = scan_corpus(corpus, data)
    except (EmovoxError, ValueError, OSError) as exc:
        _fail(exc)
        return
    console.print(sc.summary())
    counts = Counter(str(u.emotion) if u.emotion else f"({u.raw_label})" for u in sc.utterances)
    table = Table(title=f"{corpus}: clips per label")
    table.add_column("label")
    table.add_column("clips", justify="right")
    for k, v in sorted(counts.items()):
        table.add_row(k, str(v))
    console.print(table)


@app.command()
def report(
    runs: Annotated[list[Path], typer.Argument(help="Run directories written by `evaluate`.")],
) -> None:
    """A Markdown results table from run directories (numbers read from metrics.json)."""
    from emovox.experiment.report import collect_report, markdown_table

    rep = collect_report(runs)
    for problem in rep.problems:
        err_console.print(f"skipping {problem.reason}", markup=False, highlight=False,
                          soft_wrap=True)
    for line in markdown_table(rep.rows):
        print(line)


@app.command()
def fuse(
    runs: Annotated[list[Path], typer.Argument(help="Run directories of the same protocol.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory to write.")],
    weights: Annotated[str, typer.Option(help="Comma-separated weights (default equal).")] = "",
) -> None:
    """Late fusion of finished CV runs: average their out-of-fold probabilities."""
    from emovox.experiment.fuse import fuse_runs

    try:
        w = [float(x) for x in _csv(weights)] or None
        res = fuse_runs(runs, out, w)
    except (EmovoxError, ValueError, OSError, KeyError) as exc:
        _fail(exc)
        return
    s = res["summary"]
    console.print(f"{res['model']} · {res['protocol']}: " + " · ".join(
        f"{k} {s[k]['mean']:.1f} ± {s[k]['std']:.1f}" for k in ("ua", "wa", "macro_f1")))
    console.print(f"run directory: {out}")


@app.command()
def models() -> None:
    """List the registered models."""
    from emovox.models import MODELS

    table = Table(title="models")
    for col in ("name", "family", "feature", "origin", "description"):
        table.add_column(col)
    for spec in MODELS.values():
        table.add_row(spec.name, spec.family.value, spec.feature, spec.origin, spec.description)
    console.print(table)


def _load_predictor(model: Path | None, backend: str):
    from emovox.serving.predictor import Predictor

    return Predictor.from_artifact(model, backend=backend)


ModelOpt = Annotated[
    Path | None,
    typer.Option("--model", "-m", help="Model folder, or a bundled model: default (fast "
                 "crnn) or accurate (compare_lrcv). Default: default."),
]
BackendOpt = Annotated[str, typer.Option(help="Inference engine: auto, onnx or torch.")]


@app.command()
def predict(
    files: Annotated[list[Path], typer.Argument(help="Audio files (wav, flac, ogg, mp3, m4a...).")],
    json_out: Annotated[bool, typer.Option("--json", help="JSON with all probabilities.")] = False,
    top: Annotated[int, typer.Option("--top", "-k", min=1, max=8, help="Probabilities shown.")] = 3,
    model: ModelOpt = None,
    backend: BackendOpt = "auto",
    max_duration: Annotated[
        float, typer.Option(help="Refuse longer files (s); use `timeline` for long ones.")
    ] = 600.0,
) -> None:
    """Which emotion does each clip carry? Exit code 1 if any file failed."""
    import json

    from emovox.serving.batch import failure_message
    from emovox.serving.params import check_max_duration

    _setup_logging(False)
    try:
        max_duration = check_max_duration(max_duration, "--max-duration")
        predictor = _load_predictor(model, backend)
    except (EmovoxError, ValueError, OSError) as exc:
        _fail(exc)
        return
    results: list[dict] = []
    failed = 0
    for f in files:
        try:
            p = predictor.predict_file(f, max_duration=max_duration)
            results.append({"path": str(f), **p.to_dict(), "error": None})
        except Exception as exc:  # noqa: BLE001 - one bad file never stops the others
            failed += 1
            results.append({"path": str(f), "error": failure_message(exc)})
    if json_out:
        print(json.dumps(results if len(results) > 1 else results[0], indent=2))
    else:
        table = Table(title=f"emovox · {predictor.model_id}")
        for col in ("file", "emotion", "confidence", f"top {top}", "arousal", "valence"):
            table.add_column(col)
        for r in results:
            if r["error"]:
                table.add_row(Path(r["path"]).name, "[red]error[/]", "", r["error"], "", "")
                continue
            ranked = sorted(r["probabilities"].items(), key=lambda kv: -kv[1])[:top]
            label = "silence" if r["silent"] else r["label"]
            table.add_row(
                Path(r["path"]).name, f"[bold]{label}[/]", f"{r['confidence']:.0%}",
                "  ".join(f"{k} {v:.0%}" for k, v in ranked),
                f"{r['arousal']:+.2f}", f"{r['valence']:+.2f}",
            )
        console.print(table)
        console.print("arousal/valence are derived from the class probabilities "
                      "(circumplex mapping, emovox.affect), not predicted directly.")
    if failed:
        err_console.print(f"{failed} of {len(files)} files failed")
        raise typer.Exit(1)


@app.command()
def batch(
    inputs: Annotated[list[str], typer.Argument(help="Folders (recursive), files or globs.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="results.csv or results.jsonl")],
    workers: Annotated[int, typer.Option(help="Parallel workers.")] = 2,
    engine: Annotated[str, typer.Option(help="local or dask.")] = "local",
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler address (default: a LocalCluster).")
    ] = None,
    model: ModelOpt = None,
    backend: BackendOpt = "auto",
    max_duration: Annotated[float, typer.Option(help="Refuse longer files (s).")] = 600.0,
    retry_errors: Annotated[
        bool, typer.Option("--retry-errors/--no-retry-errors",
                           help="Try files again whose row in --out is an error.")
    ] = True,
) -> None:
    """Predict every audio file into a CSV/JSONL; resumable, bad files become error rows.
    Exit code 1 if any file failed."""
    from emovox.serving.batch import Engine, run_batch

    _setup_logging(False)
    try:
        eng = Engine(engine)
        with Progress(
            TextColumn("[bold]predicting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=err_console, transient=True, disable=not err_console.is_terminal,
        ) as bar:
            task = bar.add_task("batch", total=None)
            s = run_batch(
                inputs, out, artifact=model, backend=backend, workers=workers, engine=eng,
                scheduler=scheduler, max_duration=max_duration, retry_errors=retry_errors,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    except (EmovoxError, ValueError, OSError, ImportError) as exc:
        _fail(exc)
        return
    labels = ", ".join(f"{k} {v}" for k, v in s.labels.most_common())
    console.print(
        f"{s.found} files: {s.done} predicted now, {s.skipped} already in {out}, "
        f"{s.errors} errors, {s.silent} silent · {s.seconds:.1f} s"
        + (f"\n{labels}" if labels else "")
    )
    if s.failed:
        err_console.print(f"{s.failed} files failed (error rows in {out})")
        raise typer.Exit(1)


@app.command()
def timeline(
    file: Annotated[Path, typer.Argument(help="A (long) recording.")],
    window: Annotated[float, typer.Option(help="Window length (s).")] = 3.0,
    hop: Annotated[float, typer.Option(help="Hop between windows (s).")] = 1.5,
    csv_out: Annotated[bool, typer.Option("--csv", help="Segments as CSV on stdout.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Summary + segments as JSON.")] = False,
    model: ModelOpt = None,
    backend: BackendOpt = "auto",
) -> None:
    """An emotion timeline of a long recording, streamed so memory stays flat."""
    import json

    from emovox.serving.timeline import build_timeline, write_timeline_csv

    _setup_logging(False)
    try:
        predictor = _load_predictor(model, backend)
        tl = build_timeline(predictor, file, window=window, hop=hop)
    except (EmovoxError, ValueError, OSError) as exc:
        _fail(exc)
        return
    if json_out:
        print(json.dumps(tl.to_dict(), indent=2))
        return
    if csv_out:
        write_timeline_csv(tl, sys.stdout)
        return
    table = Table(title=f"{file.name} · {tl.duration:.1f} s · window {window} s, hop {hop} s")
    for col in ("start", "end", "emotion", "confidence"):
        table.add_column(col, justify="right")
    for s in tl.segments:
        table.add_row(f"{s.start:.1f}", f"{s.end:.1f}",
                      "[dim]silence[/]" if s.silent else s.label,
                      "" if s.silent else f"{s.confidence:.0%}")
    console.print(table)
    summ = tl.summary()
    ranked = sorted(summ["share"].items(), key=lambda kv: -kv[1])
    share = ", ".join(f"{k} {v:.0%}" for k, v in ranked)
    console.print(f"dominant: [bold]{summ['dominant']}[/] · voiced windows: {share or 'none'} · "
                  f"{summ['silent_windows']} silent of {summ['windows']}")


@app.command()
def train(
    data: Annotated[Path, typer.Option("--data", help="Corpus root directory.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model folder to write.")],
    model: Annotated[str, typer.Option("--model", help="Registered model name.")] = "crnn",
    corpus: Annotated[str, typer.Option(help="Corpus reader.")] = "ravdess",
    channels: Annotated[str, typer.Option(help="RAVDESS vocal channels.")] = "speech",
    calibrate: Annotated[
        Path | None,
        typer.Option(help="CV run directory of the same model: temperature + model-card metrics."),
    ] = None,
    param: Annotated[
        list[str], typer.Option("--param", "-p", help="Model parameter KEY=VALUE (repeatable).")
    ] = [],  # noqa: B006 - typer needs a literal default
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Extraction processes.")] = 2,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing model folder.")] = (
        False
    ),
    no_onnx: Annotated[bool, typer.Option("--no-onnx", help="Skip the ONNX export.")] = False,
    val_speakers: Annotated[
        int, typer.Option(help="Hold out N speakers for early stopping / compare_lrcv's C "
                          "(0 = train on every speaker for the model's fixed epochs).")
    ] = 0,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Train a model on every speaker of a corpus and package it for `emovox predict`."""
    params = _model_params(model, param)
    from emovox.experiment.package import train_bundle

    _setup_logging(verbose)
    try:
        cfg = ExperimentConfig(
            data=DataConfig(corpus=corpus, root=str(data), vocal_channels=_csv(channels)),
            split=SplitConfig(n_val_speakers=val_speakers),
            model=ModelConfig(name=model, params=params),
            seed=seed, n_jobs=jobs,
        )
        b = train_bundle(cfg, out, calibrate=calibrate, force=force, onnx=not no_onnx)
    except (EmovoxError, ValueError, OSError, ImportError) as exc:
        _fail(exc)
        return
    console.print(f"trained {model} on {b.n_clips} clips of {b.n_speakers} speakers in "
                  f"{b.seconds:.0f} s ({b.n_params:,} parameters) -> {b.path}")
    if b.calibration:
        c = b.calibration
        console.print(f"temperature {c['temperature']:.3f}: ECE {c['ece_before']:.3f} -> "
                      f"{c['ece_after']:.3f} on the cross-validation's out-of-fold predictions")


@app.command()
def export(
    model: Annotated[Path, typer.Argument(help="A trained neural model folder.")],
    opset: Annotated[int, typer.Option(help="ONNX opset.")] = 17,
) -> None:
    """Export a neural model to ONNX (model.onnx beside its weights), verified against torch."""
    from emovox.training.export import export_onnx

    _setup_logging(False)
    try:
        path = export_onnx(model, opset=opset)
    except (EmovoxError, ValueError, OSError, ImportError) as exc:
        _fail(exc)
        return
    console.print(f"wrote {path}")


ServeModelOpt = Annotated[
    Path | None,
    typer.Option("--model", "-m", envvar="EMOVOX_MODEL",
                 help="Model folder, or a bundled model: default (fast crnn) or accurate "
                 "(compare_lrcv)."),
]
MaxUploadOpt = Annotated[
    float, typer.Option(envvar="EMOVOX_MAX_UPLOAD_MB", min=0.001, help="Upload limit (MB).")
]
MaxDurationOpt = Annotated[
    float, typer.Option(envvar="EMOVOX_MAX_DURATION_S", min=0.001,
                        help="Longest accepted recording (s).")
]


def _need(module: str, extra: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        _fail(RuntimeError(f"{module} is not installed; pip install 'emovox[{extra}]'"))


@app.command("app")
def web_app(
    model: ServeModelOpt = None,
    host: Annotated[str, typer.Option(help="Address to listen on (loopback by default).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="Port.")] = 8501,
    max_upload_mb: MaxUploadOpt = 25.0,
    max_duration: MaxDurationOpt = 600.0,
    backend: Annotated[str, typer.Option(envvar="EMOVOX_BACKEND", help="auto, onnx or torch.")] = (
        "auto"
    ),
    open_browser: Annotated[
        bool, typer.Option("--open/--no-open", help="Open a browser tab.")
    ] = False,
) -> None:
    """Start the web app (Streamlit): upload or record a voice, see its emotion."""
    import os
    import subprocess

    from emovox.serving.service import BACKENDS, Settings
    from emovox.web import streamlit_command

    _need("streamlit", "web")
    if backend not in BACKENDS:
        _fail(ValueError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}"))
    from emovox.artifact import resolve_model_path

    if model is not None:
        model = resolve_model_path(model)  # a bundled name (default, accurate) or a folder
        if not (model / "model.json").is_file():
            _fail(FileNotFoundError(f"{model} is not a model folder (no model.json)"))
    settings = Settings(model=model.resolve() if model else None, max_upload_mb=max_upload_mb,
                        max_duration_s=max_duration, backend=backend)
    argv, env = streamlit_command(settings, host=host, port=port, headless=not open_browser)
    env = {**os.environ, **env}
    err_console.print(f"emovox web app on http://{host}:{port} (Ctrl-C to stop)")
    if os.name == "posix":
        os.execve(argv[0], argv, env)  # the app replaces this process
    raise typer.Exit(subprocess.call(argv, env=env))  # pragma: no cover - not POSIX


@app.command()
def serve(
    model: ServeModelOpt = None,
    host: Annotated[str, typer.Option(help="Address to listen on (loopback by default).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    max_upload_mb: MaxUploadOpt = 25.0,
    max_duration: MaxDurationOpt = 600.0,
    backend: Annotated[str, typer.Option(envvar="EMOVOX_BACKEND", help="auto, onnx or torch.")] = (
        "auto"
    ),
    concurrency: Annotated[
        int | None,
        typer.Option(min=1, help="Requests decoding/predicting at once, others wait "
                     "(default: CPUs, at most 4)."),
    ] = None,
    threads: Annotated[
        int | None, typer.Option(min=1, help="Inference threads (default: the engine's).")
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    api_key: Annotated[
        str | None,
        typer.Option(envvar="EMOVOX_API_KEY", show_default=False,
                     help="Require this key (X-API-Key header or Authorization: Bearer) on "
                     "every request but /health and the docs."),
    ] = None,
) -> None:
    """Start the REST API (FastAPI + uvicorn); OpenAPI docs at /docs."""
    _need("fastapi", "api")
    _need("uvicorn", "api")
    _need("multipart", "api")
    import uvicorn

    from emovox.api.server import create_app, is_loopback
    from emovox.serving.predictor import Predictor

    _setup_logging(False)
    try:
        predictor = Predictor.from_artifact(model, backend=backend, threads=threads)
        api = create_app(predictor=predictor, max_bytes=int(max_upload_mb * 1024 * 1024),
                         max_duration=max_duration, max_concurrency=concurrency,
                         api_key=api_key or None)
    except (EmovoxError, ValueError, OSError) as exc:
        _fail(exc)
        return
    if not api_key and not is_loopback(host):
        err_console.print(
            f"[bold red]WARNING:[/] listening on {host}, reachable from other machines, "
            "WITHOUT an API key: anyone who can reach it can use it. Set --api-key (or "
            "EMOVOX_API_KEY), or bind 127.0.0.1 behind a reverse proxy.")
    err_console.print(f"emovox API · model {predictor.model_id} ({predictor.backend})"
                      + (" · API key required" if api_key else ""))
    err_console.print(f"docs at http://{host}:{port}/docs")
    uvicorn.run(api, host=host, port=port, log_level=log_level)


def main() -> None:  # console-script entry point
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
