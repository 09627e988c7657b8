"""The options of the research commands (``evaluate``, ``train``, ...), as typer
annotations: one home for their names and help texts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from emovox.augment import AugmentRecipe
from emovox.cli.common import choice
from emovox.config import Adapt, Protocol

AugmentOpt = Annotated[
    int, typer.Option(min=0, help="Augmented copies of each TRAINING clip (see "
                      "--augment-recipe).")
]
AugmentRecipeOpt = Annotated[
    AugmentRecipe, choice(AugmentRecipe, "--augment-recipe", help="What --augment copies "
                          "vary: classic (noise, pitch, stretch), channel (speed, reverb, band, "
                          "EQ, noise, gain) or channel_codec (channel + GSM/Opus/MP3 round "
                          "trips, ffmpeg), channel_hum (channel + 50/60 Hz mains hum) or "
                          "telephone (300-3400 Hz band-pass only).")
]

#: ``--data`` of evaluate/train: one corpus folder (read with ``--corpus``), or several
#: ``NAME=DIR`` (repeat the option)
SourcesOpt = Annotated[
    list[str],
    typer.Option("--data", help="Corpus root directory (read with --corpus), or NAME=DIR; "
                 "repeat for several corpora: --data ravdess=DIR --data emovo=DIR."),
]
ProtocolOpt = Annotated[
    Protocol, choice(Protocol, "--protocol", help="Speaker split protocol (loco: leave one "
                     "corpus out).")
]
AdaptOpt = Annotated[
    Adapt, choice(Adapt, "--adapt", help="speaker: normalise each speaker's features with its "
                  "own statistics, from its clips without labels (test speakers: their "
                  "unlabelled test clips). corpus: the same per corpus (--protocol loco only: "
                  "the held-out corpus from its unlabelled clips). Reported apart from "
                  "speaker-independent runs.")
]
BalanceOpt = Annotated[
    bool, typer.Option("--balance-corpora",
                       help="Oversample each training side so every corpus counts equally.")
]

SaveModelsOpt = Annotated[
    bool, typer.Option("--save-models", help="Save each fold's model in the run directory.")
]
TestOnlyOpt = Annotated[
    str, typer.Option("--test-only", help="Corpora (names, comma-separated) tested when held "
                      "out but never trained on; --protocol loco only, e.g. 'urdu'.")
]
TeacherOpt = Annotated[
    list[Path], typer.Option("--teacher", help="Distil: a run directory (evaluate --save-models, "
                             "or merged from such parts) whose fold-k model teaches fold k; "
                             "repeat to average several teachers.")
]
ArtifactOpt = Annotated[
    Path | None,
    typer.Option(help="Score this trained model folder on --corpus instead of training "
                 "('bundled' = the shipped model), over the classes both share."),
]

FoldsOpt = Annotated[str, typer.Option(help="Run only these folds, e.g. '0,1' (with --protocol "
                                        "emobox, EmoBox's fold numbers).")]
SpeakersOpt = Annotated[
    str, typer.Option(help="Use only these speakers (corpus ids), e.g. '01,02,11' or "
                      "'emovo:f1'; corpora not named are kept whole.")
]
SplitSeedOpt = Annotated[int | None, typer.Option(
    help="Seed of the split alone (random protocol's test clips, validation speakers); "
         "default --seed. Fix it and vary --seed for seed ensembles `emovox fuse` takes.")]
WeightsOpt = Annotated[str | None, typer.Option(
    help="Comma-separated positive weights, one per run in their order (default equal).")]
CacheDirOpt = Annotated[
    Path | None, typer.Option(file_okay=False, help="Feature cache folder (default "
                              "$EMOVOX_CACHE or ~/.cache/emovox).")
]


def parse_folds(folds: str) -> tuple[int, ...]:
    """The fold numbers of ``--folds`` (``'0,1'``); ValueError worded like ``--weights``
    and ``--speeds`` (Python's "invalid literal for int()" was shown: review, stop 52)."""
    try:
        return tuple(int(k) for k in folds.split(",") if k.strip())
    except ValueError:
        raise ValueError(f"--folds: fold numbers separated by commas, e.g. 0,1,2 (got "
                         f"{folds!r})") from None


def parse_weights(weights: str | None) -> list[float] | None:
    """The numbers of ``--weights`` (``'3,1'``), None when it is not given (equal weights).
    ValueError for a value given without numbers (``--weights "$W"`` with W unset was
    equal weights without a word) or with an empty item (``3,,14`` was read as 3,14):
    review, stop 56. Their count and signs are :func:`~emovox.experiment.fuse.fuse_runs`'s
    to check."""
    if weights is None:
        return None
    items = [x.strip() for x in weights.split(",")]
    if not any(items):
        raise ValueError(f"--weights {weights!r} holds no numbers: give one weight per run "
                         "(e.g. 3,1), or leave the option out for equal weights")
    if not all(items):
        raise ValueError(f"--weights {weights!r} has an empty item: give one number per run, "
                         "separated by commas (e.g. 3,1)")
    try:
        return [float(x) for x in items]
    except ValueError:
        raise ValueError(f"--weights: numbers separated by commas (e.g. 3,1), got "
                         f"{weights!r}") from None
