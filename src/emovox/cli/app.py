"""The ``emovox`` Typer application: the callback (``--version``), every command registered
in the order ``emovox --help`` lists them, and the console-script entry point."""

from __future__ import annotations

import contextlib
import inspect
import os
import signal
import sys
from collections.abc import Callable, Iterator
from typing import Annotated, NoReturn

import typer
import typer.core

from emovox import __version__
from emovox.cli import live, product, rescore, research, servers
from emovox.cli.common import OUTPUT_ERRNOS, OutputGone
from emovox.cli.render import console, err_console, is_tty

app = typer.Typer(
    name="emovox",
    help="Speech emotion recognition, evaluated honestly on speakers never heard.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},  # -h too (CLI QA, stop 33)
)


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


def _help(command: Callable[..., None]) -> str:
    """The command's docstring with its source line breaks removed (rich shows them as they
    are, which broke sentences in the middle in ``emovox --help``); paragraphs are kept."""
    doc = inspect.getdoc(command) or ""
    return "\n\n".join(" ".join(p.split()) for p in doc.split("\n\n"))


# Registration order is the order of `emovox --help`.
for _name, _command in (
    ("evaluate", research.evaluate), ("scan", research.scan), ("report", research.report),
    ("fuse", research.fuse), ("merge", research.merge), ("rescore", rescore.rescore),
    ("ensemble", research.ensemble),
    ("models", research.models), ("predict", product.predict), ("batch", product.batch),
    ("timeline", product.timeline), ("listen", live.listen), ("train", research.train),
    ("calibrate", research.calibrate), ("export", research.export), ("app", servers.web_app),
    ("serve", servers.serve),
):
    _text = _help(_command)  # short_help: click's plain list would cut it at 80 columns
    app.command(_name, help=_text, short_help=_text.split("\n\n")[0])(_command)


#: exit status after SIGTERM (``kill``, a batch scheduler's preemption): 128 + 15, as a
#: shell reports a process the signal ended; Ctrl-C's is ``ExitCode.INTERRUPTED`` (130)
TERMINATED = 128 + int(signal.SIGTERM)


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised as Ctrl-C is: what cleans up after Ctrl-C (a run's staging folder,
    a batch's kept answers) runs for it too."""


#: the process whose SIGTERM handler is set, and whether a SIGTERM has been raised there
_sigterm = {"owner": 0, "raised": False}


def _on_sigterm(_signum: int, _frame: object) -> None:
    if os.getpid() != _sigterm["owner"]:  # a child forked before its reset: ends as before
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)
        return
    if not _sigterm["raised"]:  # once: a second one (a scheduler's repeat) lets cleanup end
        _sigterm["raised"] = True
        raise _Terminated


@contextlib.contextmanager
def _sigterm_as_ctrl_c() -> Iterator[None]:
    """SIGTERM raises as Ctrl-C does (:class:`_Terminated`) during the block: its default
    action killed the process at once, and a run's hidden ``.NAME.staging-PID-*`` folder
    stayed behind for ever (code review, stop 48). Children forked meanwhile get the
    default action back (a pool ends a worker with SIGTERM, which must end it even inside a
    C call). The handler before is put back after (``main`` called in-process)."""
    if not _sigterm["owner"]:
        os.register_at_fork(after_in_child=_default_sigterm)
    _sigterm.update(owner=os.getpid(), raised=False)
    try:
        before = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread: left as it is
        before = None
    try:
        yield
    finally:
        if before is not None:
            signal.signal(signal.SIGTERM, before)


def _default_sigterm() -> None:
    if signal.getsignal(signal.SIGTERM) is _on_sigterm:
        with contextlib.suppress(ValueError, OSError):
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


def main() -> None:  # console-script entry point
    _replace_unencodable()
    if not (is_tty(sys.stdout) and is_tty(sys.stderr)):
        # help and usage errors into a file or a pipe as click writes them: rich boxed them
        # at 80 columns, cut long words with "…" and showed <bool> beside flags (stop 35)
        typer.core.HAS_RICH = False
    try:
        with _sigterm_as_ctrl_c():
            app()
    except KeyboardInterrupt:  # pragma: no cover
        err_console.print("interrupted")
        sys.exit(TERMINATED if _sigterm["raised"] else 130)
    except SystemExit as exc:  # a command's "interrupted" (130) after a SIGTERM: 143
        if _sigterm["raised"] and exc.code == 130:
            sys.exit(TERMINATED)
        raise
    except OutputGone as gone:  # a streamed output's write failed (listen, timeline --csv)
        _cannot_write(gone.__cause__)
    except OSError as exc:  # an output that takes nothing (> /dev/full): one line, exit 1
        if exc.errno not in OUTPUT_ERRNOS:  # (a traceback, exit 120: QA, stop 38)
            raise
        _cannot_write(exc)


def _cannot_write(exc: BaseException | None) -> NoReturn:
    _drop_output()
    with contextlib.suppress(OSError, AttributeError):
        why = getattr(exc, "strerror", None) or exc
        sys.stderr.write(f"error: cannot write the output ({why})\n")
        sys.stderr.flush()
    sys.exit(1)


def _replace_unencodable() -> None:
    """Characters the output's encoding cannot show are replaced (``?``), never an error:
    with an ASCII or Latin-1 output (``LC_ALL=C PYTHONUTF8=0``, ``PYTHONIOENCODING``)
    every table command ended in a UnicodeEncodeError traceback, its results lost (QA,
    stop 39)."""
    for stream in (sys.stdout, sys.stderr):
        enc = (getattr(stream, "encoding", None) or "").lower().replace("-", "")
        if enc and not enc.startswith("utf") and hasattr(stream, "reconfigure"):
            with contextlib.suppress(Exception):
                stream.reconfigure(errors="replace")


def _drop_output() -> None:
    """Point stdout at the null device, so the interpreter's last flush of what could not
    be written raises nothing more ("Exception ignored in ... <stdout>")."""
    with contextlib.suppress(OSError, AttributeError, ValueError):
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
