"""``emovox listen``: a rolling emotion, one line per hop, from the microphone or from raw
PCM on stdin (:mod:`emovox.serving.live`)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Annotated, Any

import typer

from emovox.cli import render
from emovox.cli.common import (
    USER_ERRORS,
    BackendOpt,
    ModelOpt,
    OutputGone,
    check_model_option,
    drop_stdout,
    fail,
    output_gone,
    setup_logging,
    written,
)

STDIN = "-"


def listen(
    source: Annotated[
        str | None,
        typer.Argument(help="'-': raw PCM s16le mono on stdin, e.g. `ffmpeg -i URL -f s16le "
                       "-ar 16000 -ac 1 - | emovox listen -`. Omitted: the microphone "
                       "(needs PortAudio and pip install 'emovox[live]').",
                       show_default=False),
    ] = None,
    model: ModelOpt = None,
    backend: BackendOpt = "auto",
    window: Annotated[
        float | None,
        typer.Option(help="Seconds per answer (default: the model's input, 2.56 s for the "
                     "default model).", show_default=False),
    ] = None,
    hop: Annotated[float, typer.Option(help="Seconds between answers.")] = 1.0,
    rate: Annotated[
        int, typer.Option(min=8000, max=192000, help="Sample rate of the PCM on stdin (Hz).")
    ] = 16000,
    channels: Annotated[
        int, typer.Option(min=1, max=8, help="Interleaved channels of the PCM on stdin "
                          "(mixed into one as a file's are: a silent or hissing channel "
                          "left out, one in opposite polarity flipped).")
    ] = 1,
    device: Annotated[
        str | None, typer.Option(help="Microphone: input device name or number.")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Live: a rolling emotion from the microphone or raw PCM on stdin, a line per hop."""
    from emovox.serving.live import iter_microphone, iter_pcm, model_window_s
    from emovox.serving.live import listen as run_live

    setup_logging(False)  # its logged warnings as predict's and timeline's: "WARNING" first
    model = check_model_option(model)  # (they came bare, from logging's last resort: stop 53)
    if source not in (None, STDIN):
        fail(ValueError(f"listen reads '-' (raw PCM on stdin) or the microphone, got "
                        f"{source!r}; for a file use `emovox timeline {source}`, or pipe it: "
                        f"ffmpeg -i {source} -f s16le -ar 16000 -ac 1 - | emovox listen -"))
    if source == STDIN and sys.stdin is None:  # `<&-` (a traceback: QA, stop 38)
        fail(ValueError("stdin is closed: pipe raw PCM into it, e.g. ffmpeg -i URL -f s16le "
                        "-ar 16000 -ac 1 - | emovox listen -"))
    if source == STDIN and sys.stdin.isatty():
        fail(ValueError("stdin is a terminal: pipe raw PCM into it, e.g. ffmpeg -i URL "
                        "-f s16le -ar 16000 -ac 1 - | emovox listen -"))
    from emovox.serving.predictor import Predictor

    try:
        predictor = Predictor.from_artifact(model, backend=backend)
        sr = rate if source == STDIN else predictor.sr
        window = model_window_s(predictor) if window is None else window
        if source == STDIN:
            blocks = iter_pcm(sys.stdin.buffer, sr=sr, channels=channels)
        else:
            dev = int(device) if device is not None and device.isdigit() else device
            blocks = iter_microphone(sr=sr, device=dev, keep_s=window + hop)
        got = [0]  # samples read: how short an unanswered stream was (re-check, stop 39)
        blocks = _counted(blocks, got)
        updates = run_live(predictor, blocks, sr=sr, window=window, hop=hop,
                           name="stdin" if source == STDIN else "the microphone")
        written(render.live_banner, source == STDIN, sr, predictor.model_id, window, hop,
                 channels)
        lines = 0
        for lines, update in enumerate(updates, start=1):  # noqa: B007 - counted after
            written(render.live_line, update, json_out, hop)
        if not lines:  # an empty stream printed the banner alone (QA, stop 39)
            length = (f"{got[0] / sr:.2f} s" if got[0] >= sr / 100 else  # "0.00 s" for
                      f"{got[0]} sample{'s' if got[0] != 1 else ''}")  # 50 samples (stop 39)
            written(render.warn, f"the input ended after {length} of audio, too short to "
                     "judge: nothing was answered" if got[0] else
                     "the input ended with no audio: nothing was answered")
    except BrokenPipeError:  # the reader of stdout went away (`| head`): stop quietly
        drop_stdout()
    except OutputGone as gone:  # the entry point's one line, exit 1, as every command (it
        output_gone(gone)  # was exit 2, a usage error: a review, stop 47)
    except USER_ERRORS as exc:  # (an input that fails to read is named as itself)
        fail(exc)


def _counted(blocks: Iterator[Any], got: list[int]) -> Iterator[Any]:
    """``blocks``, adding their samples to ``got[0]`` as they pass (a gap, ``Skipped``,
    adds its samples too: they arrived)."""
    from emovox.serving.live import Skipped

    for b in blocks:
        got[0] += b.samples if isinstance(b, Skipped) else len(b)
        yield b
