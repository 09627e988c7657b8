"""The ``emovox`` Typer application: the callback (``--version``), every command registered
in the order ``emovox --help`` lists them, and the console-script entry point."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from emovox import __version__
from emovox.cli import live, product, research, servers
from emovox.cli.render import console, err_console

app = typer.Typer(
    name="emovox",
    help="Speech emotion recognition, evaluated honestly on speakers never heard.",
    no_args_is_help=True,
    add_completion=False,
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


# Registration order is the order of `emovox --help`.
app.command()(research.evaluate)
app.command()(research.scan)
app.command()(research.report)
app.command()(research.fuse)
app.command()(research.merge)
app.command()(research.ensemble)
app.command()(research.models)
app.command()(product.predict)
app.command()(product.batch)
app.command()(product.timeline)
app.command()(live.listen)
app.command()(research.train)
app.command()(research.calibrate)
app.command()(research.export)
app.command("app")(servers.web_app)
app.command()(servers.serve)


def main() -> None:  # console-script entry point
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover
        err_console.print("interrupted")
        sys.exit(130)
