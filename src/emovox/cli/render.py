"""Everything the command line shows: the two consoles, progress bars, tables and summaries.

Commands compute (through the library) and hand the results here; nothing in this module
decides anything but layout. Imports only rich at import time; result types are used
duck-typed or imported lazily, so ``emovox --help`` stays light.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

# Tables keep a readable width when piped or captured (rich falls back to 80 columns).
console = Console(width=None if sys.stdout.isatty() else 120)
err_console = Console(stderr=True)

AFFECT_NOTE = ("arousal/valence are derived from the class probabilities "
               "(circumplex mapping, emovox.affect), not predicted directly.")


def error(message: object) -> None:
    """The one-line ``error:`` message of a usage or input error, on stderr."""
    err_console.print(f"[bold red]error:[/] {message}")


# --------------------------------------------------------------------------------------------
# Progress
# --------------------------------------------------------------------------------------------


class EvaluateProgress:
    """Feature-extraction and training bars of ``evaluate``, plus a log line per fold."""

    def __init__(self, bar: Progress) -> None:
        self.bar = bar
        self.feat_task = bar.add_task("features", total=None, info="")
        self.epoch_task = bar.add_task("training", total=None, info="", visible=False)
        self.folds_done = 0

    def features(self, done: int, total: int) -> None:
        self.bar.update(self.feat_task, completed=done, total=total)

    def epoch(self, epoch: int, epochs: int, loss: float, val_ua: float) -> None:
        self.bar.update(self.epoch_task, visible=True, completed=epoch + 1, total=epochs,
                        info=f"fold {self.folds_done} · loss {loss:.3f} · val UA {val_ua:.1f}")

    def fold(self, fr: Any) -> None:
        self.folds_done += 1
        err_console.log(f"fold {fr.index}: UA {fr.metrics.ua:.1f} "
                        f"WA {fr.metrics.wa:.1f} ({fr.fit_seconds:.0f} s)")


@contextmanager
def evaluate_progress() -> Iterator[EvaluateProgress]:
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
        console=err_console, transient=True, disable=not err_console.is_terminal,
    ) as bar:
        yield EvaluateProgress(bar)


@contextmanager
def batch_progress() -> Iterator[Any]:
    """A ``progress(done, total)`` callback drawing the ``batch`` bar."""
    with Progress(
        TextColumn("[bold]predicting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err_console, transient=True, disable=not err_console.is_terminal,
    ) as bar:
        task = bar.add_task("batch", total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


# --------------------------------------------------------------------------------------------
# Research commands
# --------------------------------------------------------------------------------------------


def _table(title: str, columns: Sequence[str], justify: str | None = None) -> Table:
    table = Table(title=title)
    for col in columns:
        if justify:
            table.add_column(col, justify=justify)  # type: ignore[arg-type]
        else:
            table.add_column(col)
    return table


def evaluation(res: Any, model: str, protocol: Any) -> None:
    """Per-fold table, mean ± std row and the pooled line of a cross-validation."""
    from emovox.metrics import SCALARS

    kind = "speaker-independent" if protocol.speaker_independent else (
        "SPEAKER-DEPENDENT (same speakers in train and test; not comparable)"
    )
    table = _table(f"{model} · {protocol.value} ({kind})",
                   ("fold", "test speakers", "n", "UA", "WA", "macro-F1", "weighted-F1",
                    "fit s"), justify="right")
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


def crosscorpus(res: Any, corpus: str, out: Path) -> None:
    """The one-row table of a trained model scored on another corpus."""
    m = res.metrics
    table = _table(f"cross-corpus · {corpus} · classes: {', '.join(res.classes)}",
                   ("n", "UA", "WA", "macro-F1", "weighted-F1", "worst class"), justify="right")
    worst, rec = m.worst_recall
    table.add_row(str(m.n), f"{m.ua:.1f}", f"{m.wa:.1f}", f"{m.macro_f1:.1f}",
                  f"{m.weighted_f1:.1f}", f"{worst} ({rec:.1f})")
    console.print(table)
    console.print(f"{res.n_errors} unreadable files · {res.seconds:.1f} s · run directory: {out}")


def scan(corpus: str, summary: str, counts: Mapping[str, int]) -> None:
    console.print(summary)
    table = _table(f"{corpus}: clips per label", ("label",))
    table.add_column("clips", justify="right")
    for k, v in sorted(counts.items()):
        table.add_row(k, str(v))
    console.print(table)


def report(problems: Sequence[Any], lines: Sequence[str]) -> None:
    """Skipped run directories on stderr, the Markdown table on plain stdout."""
    for problem in problems:
        err_console.print(f"skipping {problem.reason}", markup=False, highlight=False,
                          soft_wrap=True)
    for line in lines:
        print(line)


def fusion(res: Mapping[str, Any], out: Path) -> None:
    s = res["summary"]
    console.print(f"{res['model']} · {res['protocol']}: " + " · ".join(
        f"{k} {s[k]['mean']:.1f} ± {s[k]['std']:.1f}" for k in ("ua", "wa", "macro_f1")))
    console.print(f"run directory: {out}")


def models(specs: Sequence[Any]) -> None:
    table = _table("models", ("name", "family", "feature", "origin", "description"))
    for spec in specs:
        table.add_row(spec.name, spec.family.value, spec.feature, spec.origin, spec.description)
    console.print(table)


def trained(model: str, b: Any) -> None:
    """What ``emovox train`` packaged, and the calibration it fitted."""
    console.print(f"trained {model} on {b.n_clips} clips of {b.n_speakers} speakers in "
                  f"{b.seconds:.0f} s ({b.n_params:,} parameters) -> {b.path}")
    if b.calibration:
        c = b.calibration
        console.print(f"temperature {c['temperature']:.3f}: ECE {c['ece_before']:.3f} -> "
                      f"{c['ece_after']:.3f} on the cross-validation's out-of-fold predictions")


# --------------------------------------------------------------------------------------------
# Product commands
# --------------------------------------------------------------------------------------------


def predictions(model_id: str, outcomes: Sequence[Any], top: int) -> None:
    """One row per file: the emotion (``no speech`` with the reason when there is none, ``?``
    after an uncertain one), confidence, top-k, arousal/valence, seconds of speech used."""
    table = _table(f"emovox · {model_id}",
                   ("file", "emotion", "confidence", f"top {top}", "arousal", "valence",
                    "speech"))
    for o in outcomes:
        name = Path(o.path).name
        if o.error:
            table.add_row(name, "[red]error[/]", "", o.error, "", "", "")
            continue
        p = o.prediction
        if p.probabilities is None:  # no_speech: no emotion, no numbers
            table.add_row(name, "[dim]no speech[/]", "", p.reason_message or "", "", "",
                          f"{p.speech_seconds:.1f} s")
            continue
        ranked = sorted(p.probabilities.items(), key=lambda kv: -kv[1])[:top]
        uncertain = p.status.value == "uncertain"
        table.add_row(
            name, f"[bold]{p.label}[/]" + (" [yellow]?[/]" if uncertain else ""),
            f"{p.confidence:.0%}", "  ".join(f"{k} {v:.0%}" for k, v in ranked),
            f"{p.arousal:+.2f}", f"{p.valence:+.2f}", f"{p.speech_seconds:.1f} s",
        )
    console.print(table)
    console.print(AFFECT_NOTE + " ? = uncertain: top probability below 50 %.")


def batch_summary(s: Any, out: Path) -> None:
    labels = ", ".join(f"{k} {v}" for k, v in s.labels.most_common())
    console.print(
        f"{s.found} files: {s.done} predicted now, {s.skipped} already in {out}, "
        f"{s.errors} errors, {s.no_speech} without speech, {s.uncertain} uncertain · "
        f"{s.seconds:.1f} s" + (f"\n{labels}" if labels else "")
    )


def timeline(tl: Any, name: str, window: float, hop: float) -> None:
    """The segments table (speech windows and gaps) and the summary line (by speech time)."""
    table = _table(f"{name} · {tl.duration:.1f} s · window {window} s, hop {hop} s",
                   ("start", "end", "emotion", "confidence"), justify="right")
    for s in tl.segments:
        table.add_row(f"{s.start:.1f}", f"{s.end:.1f}",
                      "[dim]no speech[/]" if s.silent else s.label,
                      "" if s.silent else f"{s.confidence:.0%}")
    console.print(table)
    summ = tl.summary()
    ranked = sorted(summ["share"].items(), key=lambda kv: -kv[1])
    share = ", ".join(f"{k} {v:.0%}" for k, v in ranked)
    dominant = summ["dominant"] or "no speech"
    console.print(f"dominant: [bold]{dominant}[/] ({summ['status']}) · by speech time: "
                  f"{share or 'none'} · {summ['speech_seconds']:.1f} s of speech in "
                  f"{summ['n_windows']} windows, {summ['gap_seconds']:.1f} s without")


# --------------------------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------------------------


def api_banner(host: str, port: int, model_id: str, backend: str, api_key: bool,
               exposed: bool) -> None:
    """Startup lines of ``emovox serve``; a warning when it is open to other machines."""
    if exposed:
        err_console.print(
            f"[bold red]WARNING:[/] listening on {host}, reachable from other machines, "
            "WITHOUT an API key: anyone who can reach it can use it. Set --api-key (or "
            "EMOVOX_API_KEY), or bind 127.0.0.1 behind a reverse proxy.")
    err_console.print(f"emovox API · model {model_id} ({backend})"
                      + (" · API key required" if api_key else ""))
    err_console.print(f"docs at http://{host}:{port}/docs")
