"""Product commands: ``predict``, ``batch``, ``timeline``. Each calls :mod:`emovox.serving`
and hands the result to :mod:`emovox.cli.render`; exit code 1 when some inputs failed, 2
when nothing could be done (a usage error, e.g. no path given is a file)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn

import typer

from emovox.cli import bars, render
from emovox.cli.common import (
    USER_ERRORS,
    BackendOpt,
    DeferredCtrlC,
    ModelOpt,
    OutputGone,
    check_model_option,
    choice,
    exit_failed,
    exit_interrupted,
    fail,
    given_once,
    model_option,
    output_gone,
    setup_logging,
    written,
)

#: the values of ``batch --engine`` and ``timeline --adapt`` (the serving enums, Engine and
#: AdaptMode, are imported when a command runs, not to build the options)
_Engine = Literal["local", "dask"]
_AdaptSelf = Literal["none", "self"]


def predict(
    files: Annotated[list[Path], typer.Argument(  # readable: each file's own error row, the
        help="Audio files (wav, flac, ogg, mp3, m4a...).", readable=False)],  # others answered
    json_out: Annotated[bool, typer.Option(
        "--json", help="JSON (schema emovox/data/schema/prediction-v1.json).")] = False,
    top: Annotated[int, typer.Option("--top", "-k", min=1, max=8, help="Probabilities shown.")] = 3,
    model: ModelOpt = None,
    backend: BackendOpt = "auto",
    max_duration: Annotated[
        float, typer.Option(envvar="EMOVOX_MAX_DURATION_S",
                            help="Refuse longer files (s; less for more than stereo at 96 "
                                 "kHz); long ones are answered as a whole.")
    ] = 600.0,
    truth: Annotated[
        bool, typer.Option("--truth", help="Also show the true label of RAVDESS-named files "
                           "(read from the name) and whether the model heard their actors.")
    ] = False,
    reference: Annotated[  # a list only to refuse a second one (user review, stop 54)
        list[Path] | None, typer.Option(
            "--reference", callback=given_once("give one folder, holding all of the "
                                               "speaker's clips (subfolders are read too)"),
            metavar="DIR", help="Folder of unlabelled clips of the SAME speaker, in several "
            "emotions (at least 3 with speech); its subfolders are read too, all taken as "
            "that one speaker's. Answers are adapted to that speaker.")
    ] = None,
) -> None:
    """Which emotion does each clip carry? Exit code 1 if any file failed, 2 if no path
    given is a file (missing, a folder)."""
    ref = reference[0] if reference else None
    if truth and json_out:
        fail(ValueError("--truth adds a table; it cannot be combined with --json"))
    from emovox.serving.batch import predict_files
    from emovox.serving.params import check_max_duration
    from emovox.serving.predictor import Predictor

    setup_logging(False)
    try:  # a bad option value is no failure of the files: no document (re-check, stop 35)
        max_duration = check_max_duration(max_duration, "--max-duration")
    except USER_ERRORS as exc:
        fail(exc)
    try:
        model = model_option(model)
        predictor = Predictor.from_artifact(model, backend=backend)
        _refuse_no_file(files, json_out)  # after the model (a bad model is said first),
    except USER_ERRORS as exc:  # before any reference clip is read
        _refused(files, json_out, exc)
    prior = None if ref is None else _reference(predictor, ref, files, json_out, max_duration)
    outcomes = []
    with bars.files_progress(len(files)) as advance:
        for f in files:
            outcomes += [_batch_hint_row(o) for o in
                         predict_files(predictor, [f], max_duration=max_duration)]
            advance()
    if prior is not None:
        outcomes = _adapted(outcomes, prior)
    if json_out:
        _print_json([o.to_dict() for o in outcomes])
    else:
        render.predictions(predictor.model_id, outcomes, top)
        if prior is not None:
            _adaptation_note(outcomes, f"{prior.n} clips in {ref}")
        if truth:
            from emovox.cli.truth import truth_report

            render.truth(truth_report(outcomes, predictor.artifact_meta.trained_on))
    failed = sum(o.error is not None for o in outcomes)
    if failed:
        exit_failed(f"{failed} of {len(files)} files failed")


def _reference(predictor: Any, ref: Path, files: list[Path], json_out: bool,
               max_duration: float) -> Any:
    """The speaker prior of the reference folder ``ref``. A folder that cannot be used
    (missing, fewer than 3 usable clips...): :func:`_refused` (stdout was empty under
    ``--json``: code review, stop 56)."""
    from emovox.serving.adapt import reference_prior

    try:
        with bars.references_progress() as progress:
            return reference_prior(predictor, ref, max_duration=max_duration,
                                   progress=progress)
    except USER_ERRORS as exc:
        _refused(files, json_out, exc)


def _refused(files: list[Path], json_out: bool, exc: BaseException) -> NoReturn:
    """Exit 2 on ``exc``, which refuses the whole command (a model that cannot be loaded,
    an unusable ``--reference``); under ``--json`` each file's failure document on stdout
    first, its error ``exc``'s, as for a file that cannot be read: a bad ``--model`` left
    stdout empty, a JSON parse error to a script (review, stop 57).
    A bad option value is not such a refusal: it blames no file (re-check, stop 35)."""
    from emovox.serving.schema import failure_document

    if json_out:
        _print_json([failure_document(str(f), str(exc)) for f in files])
    fail(exc)


def _print_json(docs: list[dict[str, Any]]) -> None:
    """``docs`` as ``predict --json`` prints them: one document for one file, an array for
    several."""
    import json

    print(json.dumps(docs if len(docs) > 1 else docs[0], indent=2))


def _adapted(outcomes: list[Any], prior: Any) -> list[Any]:
    """``outcomes`` adapted to the reference speaker ``prior``; a clip that is itself one of
    the references is warned (said in the JSON only before: QA re-check, stop 38)."""
    from emovox.serving.adapt import OWN_REFERENCE, adapt_outcomes

    try:
        outcomes = adapt_outcomes(outcomes, prior)
    except USER_ERRORS as exc:
        fail(exc)
    for o in outcomes:
        if o.prediction is not None and o.prediction.adaptation is not None and \
                OWN_REFERENCE in o.prediction.adaptation.warnings:
            render.warn(f"{o.path.name}: {OWN_REFERENCE}")
    return outcomes


def _adaptation_note(outcomes: list[Any], what: str) -> None:
    """The lines under ``predict --reference``'s table: the answers adapted, and those the
    adaptation was not applied to, with the reason their JSON gives (it said "adapted to
    speaker" of a clip without speech, whose JSON said ``applied: false``: user review,
    stop 54). Failed files: their error rows say it."""
    records = [(name, o.prediction.adaptation) for o, name in
               zip(outcomes, render.shown_names([o.path for o in outcomes]), strict=True)
               if o.prediction is not None and o.prediction.adaptation is not None]
    if any(a.applied for _, a in records):
        render.adapted_note(what)
    not_applied: dict[str, list[str]] = {}
    for name, a in records:  # the names of the table's rows
        if not a.applied:
            not_applied.setdefault(a.reason or "", []).append(name)
    for why, names in not_applied.items():
        more = f" and {len(names) - 3} more" if len(names) > 3 else ""
        render.console.print(render.shown(  # line: a name's line end written \n, as in
            f"not adapted to speaker ({what}): {', '.join(names[:3])}{more} ({why})",
            line=True))  # the table (it split the line: code review, stop 54)


def _refuse_no_file(files: list[Path], json_out: bool) -> None:
    """Exit 2 when no path given is a file (each missing, a folder...): a usage error, as
    `timeline` of a missing file (it was exit 1, "1 of 1 files failed": code review). Some
    good paths: each bad one is its own error row."""
    from emovox.serving.batch import FileOutcome
    from emovox.serving.inputs import no_file_among

    if (why := no_file_among(files)) is None:
        return
    if json_out:  # a script reads stdout: the failure records, as `timeline --json` writes
        _print_json([FileOutcome(f, error=w + _batch_hint([f])).to_dict()
                     for f, w in zip(files, why, strict=True)])
    said = " ".join(w if w.endswith(".") else f"{w}." for w in why[:3])
    more = f" And {len(why) - 3} more." if len(why) > 3 else ""
    fail(FileNotFoundError((why[0] if len(why) == 1 else
                            f"none of the {len(why)} paths is a file: {said}{more}")
                           + _batch_hint(files)))


def _batch_hint(paths: list[Path]) -> str:
    """The command that predicts the files in those of ``paths`` that are folders (`batch`,
    recursive), as a sentence to add to predict's error ("" when none is one): `predict
    DIR` said only "Pass the path of one file" (user review, stop 53)."""
    import shlex

    folders = [p for p in paths if _is_dir(p)]
    if not folders:
        return ""
    args = " ".join(shlex.quote(str(p)) for p in folders)
    return f" To predict every audio file in a folder: `emovox batch {args} --out results.csv`."


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # a name too long: no folder; its own error says what it is
        return False


def _batch_hint_row(outcome: Any) -> Any:
    """``outcome`` (a :class:`~emovox.serving.batch.FileOutcome`), its error naming `emovox
    batch` when its path is a folder (:func:`_batch_hint`)."""
    import dataclasses

    if outcome.error is None or not (hint := _batch_hint([outcome.path])):
        return outcome
    return dataclasses.replace(outcome, error=outcome.error + hint)


#: the default of `batch --file-timeout` (emovox.serving.pool.DEFAULT_FILE_TIMEOUT_S; the
#: serving modules are imported when a command runs, not to build the options)
_FILE_TIMEOUT_S = 300.0
#: no default value, so that an explicit 300 is told from none (--engine dask refuses one)
FileTimeoutOpt = Annotated[float | None, typer.Option(
    envvar="EMOVOX_FILE_TIMEOUT_S", show_default=f"{_FILE_TIMEOUT_S:g}",
    help="Seconds a file may take to be read and predicted: then its worker process is "
    "killed and the file is an error row (a stuck mount; a chunk of 16 files is given 16 "
    "times that, then each file again alone); 0: no deadline. Not with --engine dask, which "
    "has none: any value but 0 is refused there.")]


def batch(
    inputs: Annotated[list[str], typer.Argument(
        help="Folders (recursive) and globs, whose files are taken by an audio extension "
             "(.wav, .flac, .mp3, .m4a, .ogg, .opus, ...), or files (any name).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="results.csv or results.jsonl")],
    workers: Annotated[int, typer.Option(
        min=1, max=1024, help="Worker processes, each with its own model (at most one per "
        "CPU, and locally per 16 files, are started; 1 with --file-timeout 0: in this "
        "process).")] = 2,
    engine: Annotated[_Engine, choice(_Engine, "--engine", help="local or dask.")] = "local",
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler address (default: a LocalCluster).")
    ] = None,
    model: ModelOpt = None,
    backend: BackendOpt = "auto",
    max_duration: Annotated[float, typer.Option(envvar="EMOVOX_MAX_DURATION_S",
                                                help="Refuse longer files (s; less for "
                                                     "more than stereo at 96 kHz).")] = 600.0,
    file_timeout: FileTimeoutOpt = None,
    retry_errors: Annotated[
        bool, typer.Option("--retry-errors/--no-retry-errors",
                           help="Try files again whose row in --out is an error.")
    ] = True,
    speaker_from: Annotated[
        str | None, typer.Option("--speaker-from", help="Adapt answers per speaker: 'parent' "
                                 "(each folder is a speaker) or a REGEX whose first group, "
                                 "searched in the file name (in the absolute path when the "
                                 "REGEX holds a '/'), is. Unadapted answers go to "
                                 "OUT_STEM.unadapted.SUFFIX.")
    ] = None,
) -> None:
    """Predict every audio file into a CSV/JSONL; resumable, bad files become error rows.
    Exit code 1 if any file failed."""
    model = check_model_option(model)
    from emovox.serving.batch import BatchInterrupted, BatchStopped, Engine, run_batch
    from emovox.serving.params import check_max_duration

    setup_logging(False)
    adapted = None
    try:  # the option named in its refusal (it said "max duration": review, stop 57)
        max_duration, eng = check_max_duration(max_duration, "--max-duration"), Engine(engine)
        if scheduler is not None and eng is not Engine.DASK:
            raise ValueError("--scheduler is a Dask scheduler address: it needs --engine dask")
        deadline = _file_deadline(file_timeout, eng)
        with bars.batch_progress() as progress:
            kw = dict(artifact=model, backend=backend, workers=workers, engine=eng,
                      scheduler=scheduler, max_duration=max_duration,
                      retry_errors=retry_errors, progress=progress, file_timeout=deadline)
            if speaker_from is None:
                s = run_batch(inputs, out, **kw)
            else:
                from emovox.serving.batch_adapt import run_speaker_batch

                s, adapted = run_speaker_batch(inputs, out, speaker_from=speaker_from, **kw)
    except BatchStopped as stop:  # e.g. the Dask cluster lost part-way (QA, stop 36)
        out = _written(out, speaker_from)
        render.batch_summary(stop.summary, out)
        fail(ValueError(f"{stop.reason}: the {stop.summary.done} answers of this run are "
                        f"kept in {out}; the same command goes on from there"))
    except (*USER_ERRORS, ImportError) as exc:
        fail(exc)
    except BatchInterrupted as stop:  # Ctrl-C: what was written stays (CLI QA, stop 33)
        out = _written(out, speaker_from)
        if not out.exists():  # nothing was answered, and the file it created is gone
            exit_interrupted("interrupted before the first answer: nothing was written")
        render.batch_summary(stop.summary, out)
        exit_interrupted(f"interrupted: the {stop.summary.done} answers of this run are kept "
                         f"in {out}; the same command goes on from there")
    except KeyboardInterrupt:  # while the model loaded or the inputs were listed
        exit_interrupted("interrupted before the first answer: nothing was written")
    if s.found == 0:
        from emovox.serving.inputs import INPUT_EXTENSIONS

        render.warn("no audio files found in the inputs (audio: "
                    f"{', '.join(sorted(INPUT_EXTENSIONS))})")
    render.batch_summary(s, adapted.raw if adapted else out)
    if adapted is not None:
        render.batch_adaptation(adapted, out)
    if s.failed:
        exit_failed(f"{s.failed} files failed (error rows in {out})")


def _file_deadline(file_timeout: float | None, engine: Any) -> float | None:
    """``--file-timeout`` checked: None for no deadline (0, or no value with the Dask
    engine, which has none; any other value given, 300 too, is refused there rather than
    ignored); no value with the local engine: :data:`_FILE_TIMEOUT_S`."""
    from emovox.serving.batch import Engine, check_file_timeout

    if file_timeout is None:
        return None if engine is Engine.DASK else _FILE_TIMEOUT_S
    deadline = check_file_timeout(file_timeout, "--file-timeout")
    if engine is Engine.DASK and deadline is not None:
        raise ValueError("--file-timeout does not apply to --engine dask (its workers have no "
                         "per-file deadline): leave it out, or give 0")
    return deadline


def _written(out: Path, speaker_from: str | None) -> Path:
    """The file a stopped batch wrote its answers to (unadapted ones with --speaker-from)."""
    if speaker_from is None:
        return out
    from emovox.serving.batch_adapt import unadapted_path

    return unadapted_path(out)


def timeline(
    file: Annotated[Path, typer.Argument(help="A (long) recording.")],
    window: Annotated[float, typer.Option(help="Window length (s).")] = 3.0,
    hop: Annotated[float, typer.Option(help="Hop between windows (s).")] = 1.5,
    csv_out: Annotated[bool, typer.Option("--csv", help="Segments as CSV on stdout.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Summary + segments as JSON.")] = False,
    model: ModelOpt = None,
    backend: BackendOpt = "auto",
    adapt: Annotated[
        _AdaptSelf, choice(_AdaptSelf, "--adapt", help="self: adapt the windows to the "
                           "recording's own speaker (its speech windows' mean; assumes "
                           "several emotions).")
    ] = "none",
) -> None:
    """An emotion timeline of a long recording, streamed so memory stays flat."""
    if csv_out and json_out:
        fail(ValueError("--csv and --json: choose one"))
    from emovox.serving.adapt import AdaptMode, adapt_timeline
    from emovox.serving.params import TimelineParams
    from emovox.serving.predictor import Predictor

    setup_logging(False)
    with DeferredCtrlC() as ctrl_c:  # Ctrl-C stops between blocks only (re-check, stop 37)
        try:
            mode = AdaptMode(adapt)
            TimelineParams(window, hop)  # an option error is no failure of the file: no
        except USER_ERRORS as exc:  # document blames it (re-check, stop 35)
            fail(exc)
        try:  # a model that cannot be loaded: the failure document (none: review, stop 57)
            predictor = Predictor.from_artifact(model_option(model), backend=backend)
        except USER_ERRORS as exc:
            _refused([file], json_out, exc)
        if ctrl_c.pending:
            exit_interrupted("interrupted before the first answer: nothing was computed")
        out = _TimelineOut("csv" if csv_out else "json" if json_out else None,
                           mode is AdaptMode.SELF, predictor.model_id)
        try:
            tl, stopped = _run_timeline(predictor, file, window, hop, ctrl_c, out.emit)
        except OutputGone as gone:  # stdout, not the input: exit 1 as every command;
            out.close()  # `--csv | head` stops quietly, as listen does
            output_gone(gone)
            return
        except USER_ERRORS as exc:
            out.close()  # a script reads stdout: the refusal as predict --json writes it
            _refused([file], json_out, exc)
    if mode is AdaptMode.SELF:
        adapt_timeline(tl, predictor.labels)
        if tl.adaptation is not None and not tl.adaptation.applied:
            render.warn(f"not adapted: {tl.adaptation.reason}")
        elif csv_out and tl.adaptation is not None:  # its rows say "adapted"; how, here
            render.err_console.print(f"adapted to speaker ({tl.adaptation.reference_clips} "
                                     "windows of this recording)")
    if csv_out or json_out:
        out.finish(tl)
    else:
        render.timeline(tl, file.name, window, hop, predictor.model_id)
    if stopped:
        exit_interrupted(stopped)


class _TimelineOut:
    """Where ``timeline --csv`` and ``--json`` write. Their segments go out as they settle
    (CSV rows to stdout; the document's to a :class:`~emovox.serving.timeline_doc.SegmentSpool`
    on disk, as its summary comes first), so memory stays bounded whatever the length (code
    review, stop 48: 10 h at --hop 0.06 held some 3 GB of segments, and --json built a
    string of 1 GB per 200,000 of them). The table and ``--adapt self`` (which adapts
    every window to all of them) still take the whole timeline (``emit`` None)."""

    def __init__(self, fmt: str | None, whole: bool, model_id: str) -> None:
        from emovox.serving.timeline_doc import SegmentSpool

        # the stdout of now: rich's progress bar puts its own in sys.stdout while it draws
        # on a terminal, and it would have sent the rows to stderr (code review, stop 48)
        self.stdout, self.model_id, self.fmt = sys.stdout, model_id, fmt
        self.csv: Any = None
        self.spool: SegmentSpool | None = None
        self.emit: Any = None  # where build_timeline hands each segment; None: it keeps them
        if fmt == "csv" and not whole:
            self.emit = self._row
        elif fmt == "json" and not whole:
            self.spool = SegmentSpool()
            self.emit = self.spool.add

    def _row(self, seg: Any) -> None:  # a full disk was an input error, exit 2 (stop 52)
        written(self._csv().add, seg)

    def _csv(self) -> Any:
        """The CSV writer, made with the first row (or at the end, for the header alone):
        a file refused at once leaves stdout empty, as before."""
        if self.csv is None:
            from emovox.serving.timeline_doc import TimelineCsv

            # which model answered, beside the CSV (it was said nowhere: QA, stop 40)
            render.err_console.print(f"model {render.shown(self.model_id)}")
            self.csv = TimelineCsv(self if self.stdout.isatty() else self.stdout)
        return self.csv

    def write(self, text: str) -> None:
        """Rows to a terminal: through rich's stdout while its bar is drawn (above it)."""
        sys.stdout.write(text)

    def finish(self, tl: Any) -> None:
        from emovox.serving.timeline_doc import write_timeline_csv, write_timeline_json

        if self.fmt == "json":  # the same bytes as print(json.dumps(tl.to_dict(), indent=2))
            write_timeline_json(tl, sys.stdout, model_id=self.model_id, segments=self.spool)
        elif self.emit is not None:
            self._csv().close()
        else:
            render.err_console.print(f"model {render.shown(self.model_id)}")
            write_timeline_csv(tl, sys.stdout)
        self.close()

    def close(self) -> None:
        if self.spool is not None:
            self.spool.close()


def _run_timeline(predictor: Any, file: Path, window: float, hop: float,
                  ctrl_c: DeferredCtrlC, emit: Any = None) -> tuple[Any, str | None]:
    """``(timeline, None)``, or after a Ctrl-C ``(the timeline of what was read, the
    warning saying where it stopped)``: the Ctrl-C is acted on between blocks, where the
    regions read so far are whole (QA, stop 37). ``emit``: each segment as it settles
    (:class:`_TimelineOut`), the timeline's own ``segments`` then left empty."""
    from emovox.serving.timeline import TimelineInterrupted, build_timeline

    try:
        with bars.seconds_progress(_duration(file)) as bar:

            def progress(seconds: float) -> None:
                bar(seconds)
                if ctrl_c.pending:
                    raise KeyboardInterrupt  # a clean point: after a block was settled

            return build_timeline(predictor, file, window=window, hop=hop,
                                  progress=progress, emit=emit), None
    except TimelineInterrupted as stop:
        return stop.timeline, stop.timeline.warnings[-1]


def _duration(file: Path) -> float | None:
    """The recording's length from its header (None if unknown or unreadable: the timeline
    then reports the problem itself)."""
    from emovox.audio import probe

    try:
        return probe(file).duration
    except Exception:  # noqa: BLE001 - only sizes the progress bar
        return None
