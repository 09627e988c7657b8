"""What every command group shares: exit codes and the error -> exit code mapping, logging
set-up, option parsing helpers and the option types used by several commands."""

from __future__ import annotations

import errno
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from enum import Enum, IntEnum
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn, get_args

import typer
from rich.logging import RichHandler

from emovox.cli.render import err_console, error, warn
from emovox.errors import EmovoxError


class ExitCode(IntEnum):
    """Process exit status of every command."""

    OK = 0
    FAILED = 1  # some inputs failed (the others were processed)
    USAGE = 2  # usage or input error: nothing was done
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT); what was written is kept


#: Errors a user can cause (bad option, missing file, unreadable corpus...): a one-line
#: message and exit code 2, never a traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (EmovoxError, ValueError, OSError)


class OutputGone(Exception):
    """Writing a streamed output failed (``> /dev/full``) while an input was being read;
    ``__cause__`` is the OSError, raised again outside the input's error handling, where
    the entry point says "cannot write the output", exit 1, as for every command (``listen``
    and ``timeline --csv`` said the errno as an input error, exit 2: reviews, stops 47 and
    52). :func:`output_gone` settles it."""


#: what writing an output raises when the output, not the program, is at fault: a full
#: disk or quota, a file-size limit (``ulimit -f``: review, stop 52), an I/O error, a
#: closed pipe; the entry point says "cannot write the output", exit 1
OUTPUT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EPIPE})


def written(write: Any, *args: Any) -> Any:
    """``write(*args)`` of a streamed output, any OSError it raises raised as
    :class:`OutputGone` (it writes, it reads no input)."""
    try:
        return write(*args)
    except OSError as exc:
        raise OutputGone() from exc


def output_gone(gone: OutputGone) -> None:
    """A closed pipe (``| head``): stop quietly, what is still written going nowhere;
    anything else: ``gone`` again, for the entry point's one line and exit 1."""
    if isinstance(gone.__cause__, BrokenPipeError):
        drop_stdout()
        return
    raise gone


def drop_stdout() -> None:
    """The reader of stdout went away (``| head``): what is still written goes nowhere."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def fail(exc: BaseException) -> NoReturn:
    """Print ``exc`` as a one-line error and exit with :attr:`ExitCode.USAGE`."""
    error(exc)
    raise typer.Exit(int(ExitCode.USAGE))


def exit_failed(message: str) -> NoReturn:
    """Some inputs failed: say so on stderr and exit with :attr:`ExitCode.FAILED`."""
    err_console.print(message, soft_wrap=True)
    raise typer.Exit(int(ExitCode.FAILED))


def exit_interrupted(message: str) -> NoReturn:
    """Ctrl-C: say what was kept on stderr and exit 130 (128 + SIGINT), as a shell would."""
    err_console.print(message, soft_wrap=True)
    raise typer.Exit(int(ExitCode.INTERRUPTED))


class DeferredCtrlC:
    """Ctrl-C held until a safe point (QA re-check, stop 37: in `timeline` it landed inside
    onnxruntime's import, an 83-line traceback and exit 1, or inside a region being
    classified, which then showed as a gap). The first SIGINT or SIGTERM sets
    :attr:`pending`; the caller checks it where stopping is clean; a second one interrupts
    at once. A held SIGTERM is raised again as the block ends, so the command exits as
    SIGTERM says (it interrupted a streamed timeline between two segments: diff review,
    stop 48). Main thread only (elsewhere it does nothing)."""

    def __init__(self) -> None:
        self.pending = False
        self._terminated = False
        self._before: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.pending:
            raise KeyboardInterrupt
        self.pending = True
        self._terminated = signum == signal.SIGTERM

    def __enter__(self) -> DeferredCtrlC:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._before[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._before.items():
            signal.signal(sig, handler)
        if self._terminated:
            self._terminated = False
            signal.raise_signal(signal.SIGTERM)


def setup_logging(verbose: bool) -> None:
    """Log records on stderr: rich's layout on a terminal; one line each otherwise (rich
    wrapped them at 80 columns into a file or a pipe: CLI QA, stop 33)."""
    handler: logging.Handler
    if err_console.is_terminal:
        handler = RichHandler(console=err_console, show_path=False, show_time=False)
        fmt = "%(message)s"
    else:
        handler, fmt = logging.StreamHandler(sys.stderr), "%(levelname)-8s %(message)s"
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format=fmt,
                        handlers=[handler], force=True)


def csv_list(value: str) -> tuple[str, ...]:
    """``"a, b,,c"`` -> ``("a", "b", "c")``."""
    return tuple(v.strip() for v in value.split(",") if v.strip())


def parse_params(items: list[str]) -> dict[str, Any]:
    """``-p KEY=VALUE`` items -> a dict, each value read as YAML (numbers, booleans...)."""
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise typer.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--param")
        k, v = item.split("=", 1)
        out[k.strip()] = yaml.safe_load(v)
    return out


def given_once(hint: str = "give it once") -> Callable[..., list[Any] | None]:
    """The callback of an option declared repeatable only to refuse a repeat: the CLI's
    one-line usage error naming the values, then ``hint``, exit 2 (click keeps the last
    value of a single-valued option given twice, without a word: ``--reference A
    --reference B`` adapted to B alone, a review as a user, stop 54). The command takes the
    one value, ``values[0]``, or None. Shell completion, which parses the line as it stands
    (``ctx.resilient_parsing``), is told nothing (the error was printed into the prompt:
    code review, stop 54)."""

    def check(ctx: typer.Context, param: typer.CallbackParam, values: list[Any] | None
              ) -> list[Any] | None:
        if values and len(values) > 1 and not ctx.resilient_parsing:
            given = ", ".join(str(v) for v in values)
            fail(ValueError(f"{param.opts[0]} is given {len(values)} times ({given}): "
                            f"{hint}"))
        return values

    return check


def model_params(model: str, items: list[str]) -> dict[str, Any]:
    """``-p KEY=VALUE`` items for ``model``, typed; exit 2 naming the valid keys on a bad
    one. Imports only the (light) model registry: runs before any heavy import."""
    from emovox.cli.names import unknown_architecture_message
    from emovox.models import validate_params

    if (why := unknown_architecture_message(model)) is not None:
        fail(ValueError(why))
    try:
        return validate_params(model, parse_params(items))
    except (EmovoxError, ValueError) as exc:
        fail(exc)


def check_model_option(model: Path | None) -> Path | None:
    """``--model`` as the commands pass it on: exit 2 with "did you mean" when it is neither
    a bundled model nor an existing path (checked before anything is loaded); an old bundled
    name is replaced by the current one, with a one-line deprecation warning on stderr."""
    try:
        return model_option(model)
    except ValueError as exc:
        fail(exc)


def model_option(model: Path | None) -> Path | None:
    """:func:`check_model_option` that raises the refusal (ValueError) instead of exiting,
    for a command that says it in its own output too (``predict --json``, ``timeline
    --json``: a failure document per file; review, stop 57)."""
    from emovox.cli.names import renamed_model, unknown_artifact_message

    if model is None:
        return None
    if (why := unknown_artifact_message(str(model))) is not None:
        raise ValueError(why)
    if (renamed := renamed_model(str(model))) is not None:
        new, note = renamed
        warn(note)
        return Path(new)
    return model


def need_module(module: str, extra: str) -> None:
    """Exit 2 with the pip command to run when an optional dependency is missing."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        fail(RuntimeError(f"{module} is not installed; pip install 'emovox[{extra}]'"))


def choice(kind: Any, *decls: str, **kw: Any) -> Any:
    """``typer.Option(*decls, **kw)`` for a ``Literal[...]`` or an :class:`~enum.Enum`
    ``kind``: a value outside it is the CLI's one-line usage error, ``error: --adapt must be
    one of: none, self; got 'other'``, exit 2. Typer's own check said "Invalid value for
    '--adapt': Value error, 'other' is not one of 'none', 'self'.", a phrase of pydantic's
    (user review, stop 54). ``decls[0]``: the option's name, said in the error. The value
    is read by a parser (the member, or the value as it is) and refused by a callback, which
    is given the context: shell completion, which parses the line as it stands
    (``ctx.resilient_parsing``), is told nothing (code review, stop 54). ``kw``: no
    ``parser`` or ``callback``."""
    members = list(kind) if isinstance(kind, type) and issubclass(kind, Enum) else None
    values = [m.value for m in members] if members is not None else list(get_args(kind))
    accepted = members if members is not None else values  # what ``parse`` returns

    def parse(value: Any) -> Any:
        for i, v in enumerate(values):
            if value == v or (members is not None and value is members[i]):
                return accepted[i]
        return value  # refused by ``check``, unless the line is being completed

    def check(ctx: typer.Context, value: Any) -> Any:
        if value is None or ctx.resilient_parsing or value in accepted:
            return value
        fail(ValueError(f"{decls[0]} must be one of: {', '.join(map(str, values))}; "
                        f"got {value!r}"))

    return typer.Option(*decls, parser=parse, callback=check, **kw)


# Option types shared by several commands.
ModelOpt = Annotated[
    Path | None,
    typer.Option("--model", "-m", envvar="EMOVOX_MODEL", show_envvar=False,
                 help="Model folder, or a bundled model: default (CRNN + "
                 "ECAPA + ResLSTM ensemble, RAVDESS + EMOVO) or ravdess; see `emovox "
                 "models`. Default: $EMOVOX_MODEL, else default."),
]
BackendName = Literal["auto", "onnx", "torch"]
BackendOpt = Annotated[BackendName,
                       choice(BackendName, "--backend", help="Inference engine: auto, onnx "
                              "or torch.")]
ParamOpt = Annotated[
    list[str], typer.Option("--param", "-p", help="Model parameter KEY=VALUE (repeatable).")
]
SeedOpt = Annotated[int, typer.Option(help="Random seed.")]
JobsOpt = Annotated[int, typer.Option("--jobs", "-j", min=1, help="Extraction processes.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v")]
CorpusOpt = Annotated[str, typer.Option(help="Corpus reader.")]
SpeakerPatternOpt = Annotated[str | None, typer.Option(
    "--speaker-pattern", help="--corpus folder: a REGEX searched in each file name (without "
    "its extension; in its path below the emotion folder when the REGEX holds a '/') whose "
    "first group (or 'speaker' group) is the speaker, e.g. '^(\\w+?)_', or '^([^/]+)/' for "
    "EMOTION/SPEAKER/take.wav; files it finds no speaker in are skipped. Without it a folder "
    "tree's speakers are unknown.")]
DataOpt = Annotated[Path, typer.Option("--data", help="Corpus root directory.")]
