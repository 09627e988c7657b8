"""``emovox rescore``: a finished CV run scored again by its saved fold models, each test
clip read at several playback speeds (:mod:`emovox.experiment.rescore`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from emovox.cli import render
from emovox.cli.common import USER_ERRORS, csv_list, fail, setup_logging


def rescore(
    run: Annotated[Path, typer.Argument(help="A CV run directory written with "
                                        "evaluate --save-models.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory to write.")],
    speeds: Annotated[str, typer.Option(
        help="Comma-separated playback speeds, each test clip read at all of them and the "
        "answers averaged (0.5-2, at most 5).")] = "0.9,1.0,1.1",
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log each fold.")] = False,
) -> None:
    """Score a finished CV run again with its saved fold models, each test clip read at
    several playback speeds (test-time speed augmentation). Fuse, merge and calibrate keep
    the speeds: a model calibrated on such a run reads each clip the same way."""
    from emovox.experiment.rescore import rescore_run

    setup_logging(verbose)
    try:
        try:
            factors = [float(x) for x in csv_list(speeds)]
        except ValueError:
            raise ValueError(f"--speeds: numbers separated by commas (e.g. 0.9,1,1.1), got "
                             f"{speeds!r}") from None
        res = rescore_run(run, out, speeds=factors)
    except (*USER_ERRORS, KeyError) as exc:
        fail(exc)
    render.run_line(out, res, f"read at speeds {res['speeds']}",
                    f" (pooled {res['pooled']['ua']:.1f})")
