"""Everything the command line shows: the two consoles, tables and summaries (progress bars:
:mod:`emovox.cli.bars`).

Commands compute (through the library) and hand the results here; nothing in this module
decides anything but layout. Imports only rich at import time; result types are used
duck-typed or imported lazily, so ``emovox --help`` stays light.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from emovox.audio.limits import seconds_shown


def is_tty(stream: Any) -> bool:
    """Whether ``stream`` is a terminal; a closed one (``>&-``) is ``None`` and is not (it
    crashed every command at import: QA, stop 38)."""
    return stream is not None and stream.isatty()


# Tables keep a readable width when piped or captured (rich falls back to 80 columns; a
# COLUMNS the user set wins); text lines are not wrapped there (CLI QA, stop 33: an error
# or a legend hard-wrapped at 80 or 120 columns into a file or a pipe).
console = Console(width=None if is_tty(sys.stdout) or os.environ.get("COLUMNS") else 120,
                  soft_wrap=not is_tty(sys.stdout),
                  file=None if sys.stdout is not None else open(os.devnull, "w"))  # noqa: SIM115
err_console = Console(stderr=True, soft_wrap=not is_tty(sys.stderr),
                      file=None if sys.stderr is not None else open(os.devnull, "w"))  # noqa: SIM115
#: tables narrower than this are drawn at this width (COLUMNS=20 drew every cell empty)
MIN_TABLE_WIDTH = 60
if console.width < MIN_TABLE_WIDTH:
    console.width = MIN_TABLE_WIDTH

AFFECT_NOTE = ("arousal/valence are derived from the class probabilities "
               "(circumplex mapping, emovox.affect), not predicted directly.")


#: control characters, and the invisible format characters that reorder or hide text
#: (U+202E turned the rest of a line around: QA re-check, stop 38)
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e"
                      "\u2060-\u2069\ufeff]")
#: the same and tabs and line ends, for what must stay on one line (a file name's newline
#: split its table row in two: code review, stop 46)
_CONTROL_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def shown(text: object, *, line: bool = False) -> str:
    """``text`` from outside (a file name, a model's name or card, an error naming them) as
    rich prints it literally: markup escaped, control characters written ``\\x1b`` (a
    model named ``[/bold]`` crashed ``predict`` and ``serve``; ESC sequences in a name
    reached the terminal: QA, stop 38); ``line``: tabs and line ends too (a file name in a
    table row or title)."""
    from rich.markup import escape

    return escape((_CONTROL_LINE if line else _CONTROL).sub(_escaped, str(text)))


def _escaped(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def error(message: object) -> None:
    """The one-line ``error:`` message of a usage or input error, on stderr."""
    err_console.print(f"[bold red]error:[/] {shown(message)}", soft_wrap=True)


def warn(message: object) -> None:
    """A one-line ``warning:`` on stderr (the command goes on)."""
    err_console.print(f"[bold yellow]warning:[/] {shown(message)}", soft_wrap=True)


# --------------------------------------------------------------------------------------------
# Research commands
# --------------------------------------------------------------------------------------------


def _table(title: str, columns: Sequence[str], justify: str | None = None) -> Table:
    """A table whose cells fold a word too long for a narrow terminal, never cut it with
    "…" (a model's name or a file name was unreadable at 60-80 columns: QA, stops 33-34)."""
    table = Table(title=title)
    for col in columns:
        table.add_column(col, justify=justify or "left", overflow="fold")  # type: ignore[arg-type]
    return table


def evaluation(res: Any, model: str, protocol: Any, adapted: str = "") -> None:
    """Per-fold table, mean ± std row and the pooled line of a cross-validation; ``adapted``:
    the adaptation's label (``Adapt.label``), which then replaces "speaker-independent"."""
    from emovox.metrics import SCALARS

    kind = adapted or ("speaker-independent" if protocol.speaker_independent else (
        "SPEAKER-DEPENDENT (same speakers in train and test; not comparable)"
    ))
    table = _table(f"{model} · {protocol.value} ({kind})",
                   ("fold", "test speakers", "n", "UA", "WA", "macro-F1", "weighted-F1",
                    "fit s"), justify="right")
    for f in res.folds:
        m = f.metrics
        table.add_row(
            str(f.index), shown(",".join(s.split(":", 1)[-1] for s in f.test_speakers))
            or "random",
            str(f.n_test), f"{m.ua:.1f}", f"{m.wa:.1f}", f"{m.macro_f1:.1f}",
            f"{m.weighted_f1:.1f}", f"{f.fit_seconds:.1f}",
        )
    s = res.summary
    table.add_section()
    table.add_row(
        "mean ± std", "(n, fit s: totals)", str(sum(f.n_test for f in res.folds)),
        *(_mean_std(s[k], len(res.folds)) for k in SCALARS),
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
    console.print(f"run directory: {shown(res.out_dir)}")


def crosscorpus(res: Any, corpus: str, out: Path) -> None:
    """The one-row table of a trained model scored on another corpus."""
    m = res.metrics
    table = _table(f"cross-corpus · {corpus} · classes: {', '.join(res.classes)}",
                   ("n", "UA", "WA", "macro-F1", "weighted-F1", "worst class"), justify="right")
    worst, rec = m.worst_recall
    table.add_row(str(m.n), f"{m.ua:.1f}", f"{m.wa:.1f}", f"{m.macro_f1:.1f}",
                  f"{m.weighted_f1:.1f}", f"{worst} ({rec:.1f})")
    console.print(table)
    console.print(f"{res.n_errors} unreadable files · {res.seconds:.1f} s · run directory: "
                  f"{shown(out)}")


def scan(corpus: str, summary: str, counts: Mapping[str, int], matches: Sequence[Any] = (),
         root: Path | None = None, nothing_labelled: bool = False) -> None:
    """The scan summary, clips per label, and (when nothing was labelled) the readers that
    match the tree."""
    console.print(summary, markup=False, highlight=False)
    if counts:
        table = _table(f"{corpus}: clips per label", ("label",))
        table.add_column("clips", justify="right")
        for k, v in sorted(counts.items()):
            table.add_row(k, str(v))
        console.print(table)
    if nothing_labelled and not matches and corpus == "csv":  # the rows said why (stop 39)
        console.print("No row of the manifest names a readable audio file with a label.")
    elif nothing_labelled and not matches:
        folder = ("" if corpus == "folder" else  # it was the folder reader (QA re-check)
                  "A tree with one folder per emotion reads with --corpus folder; any other with ")
        console.print("No corpus reader labels a file here. " + (folder or "Read it with ")
                      + "a CSV manifest (path,label[,speaker]): emovox scan MANIFEST.csv "
                      "--corpus csv", soft_wrap=True, markup=False)
    if matches:
        best = matches[0]
        others = ", ".join(f"{m.name} ({m.labelled})" for m in matches[1:])
        console.print(
            f"The {corpus} reader labels no file here, but the [bold]{best.name}[/] reader "
            f"labels {best.files_text}: "
            f"emovox scan {root} --corpus {best.name}"
            + (f" (also: {others})" if others else ""), soft_wrap=True)


def report(problems: Sequence[Any], lines: Sequence[str]) -> None:
    """Skipped run directories on stderr, the Markdown table on plain stdout."""
    for problem in problems:
        err_console.print(f"skipping {problem.reason}", markup=False, highlight=False,
                          soft_wrap=True)
    for line in lines:
        print(line)


def adaptation_caveat(adapt: str | None) -> None:
    """The line that keeps an adapted run's figures apart (``adapt``: ``Adapt`` value)."""
    from emovox.config import Adapt

    mode = Adapt(adapt or Adapt.NONE.value)
    if mode is not Adapt.NONE:
        console.print(f"({mode.label}: not comparable with speaker-independent figures)")


def _mean_std(stat: Mapping[str, float], n_folds: int) -> str:
    """A summary's ``{"mean", "std"}`` as the report writes it (no ± for one fold)."""
    from emovox.experiment.report import mean_std
    return mean_std(stat["mean"], stat["std"], n_folds)


def fusion(res: Mapping[str, Any], out: Path) -> None:
    s, n = res["summary"], len(res.get("folds") or ())
    console.print(f"{res['model']} · {res['protocol']}: " + " · ".join(
        f"{k} {_mean_std(s[k], n)}" for k in ("ua", "wa", "macro_f1")))
    adaptation_caveat(res.get("adapt"))
    per = res.get("per_corpus") or {}
    if len(per) > 1:
        console.print("per corpus (its classes only): " + " · ".join(
            f"{c} UA {m['ua']:.1f} (n={m['n']})" for c, m in per.items()))
    console.print(f"run directory: {shown(out)}")


def calibration_per_corpus(report: Mapping[str, Any]) -> None:
    """ECE per test corpus of a calibration fitted on several corpora (loco runs)."""
    per = report.get("per_corpus") or {}
    if not per:
        return
    t = _table("calibration per test corpus (ECE, 15 bins)",
               ["corpus", "n", "raw", "T above", "T without it", "ECE, T without it"], "right")
    for c, r in per.items():
        t.add_row(c, str(r["n"]), f"{r['ece_before']:.3f}", f"{r['ece_after']:.3f}",
                  f"{r.get('temperature_without', float('nan')):.3f}",
                  f"{r.get('ece_without', float('nan')):.3f}")
    console.print(t)


def _short(description: str) -> str:
    """A description without its parenthesised detail."""
    import re

    return re.sub(r"\s*\([^)]*\)", "", description)


def models(bundled: Sequence[Any], specs: Sequence[Any],
           old_names: Mapping[str, str] | None = None,
           retired: Mapping[str, str] | None = None) -> None:
    """Two tables: the bundled trained models (then their deprecated old names, old ->
    current, and the retired names with how to build them), then the architectures."""
    described = {spec.name: spec.description for spec in specs}
    table = _table("bundled models: predict/batch/timeline/listen/serve/app --model NAME",
                   ("name", "architecture", "what it is", "CV UA %", "trained on"))
    table.columns[0].min_width = max((len(b.name) for b in bundled), default=0)
    for b in bundled:
        ua = "" if b.ua_mean is None else f"{b.ua_mean:.1f} ± {b.ua_std or 0:.1f}"
        params = f" · {b.n_params:,} parameters" if b.n_params else ""
        members = b.architecture.removeprefix("fusion(").removesuffix(")").split("+")
        what = (f"ensemble of {' + '.join(members)}: probabilities averaged"
                if b.architecture.startswith("fusion(") else
                _short(described.get(b.architecture, b.kind)))
        cv = [f"{ua} ({b.protocol})" if ua and b.protocol else ua]
        cv += [f"{m:.1f} ± {sd:.1f} ({proto})" for proto, m, sd in b.also]
        table.add_row(shown(b.name), shown(b.architecture), shown(f"{what}{params}"),
                      "\n".join(cv), shown(b.trained_on))
    console.print(table)
    console.print("CV UA: unweighted accuracy over speakers never heard (cross-validation, "
                  "from the model's model.json). --model also takes a trained model folder.")
    for old, new in (old_names or {}).items():
        console.print(f"'{old}' is a deprecated alias of '{new}' (still accepted, with a "
                      "warning).")
    by_note: dict[str, list[str]] = {}
    for name, note in (retired or {}).items():
        by_note.setdefault(note, []).append(f"'{name}'")
    for note, names in by_note.items():
        console.print(f"{' / '.join(names)}: {note}", markup=False)
    table = _table("architectures: evaluate/train --model NAME",
                   ("name", "family", "feature", "origin", "description"))
    table.columns[0].min_width = max((len(spec.name) for spec in specs), default=0)
    for spec in specs:
        table.add_row(spec.name, spec.family.value, spec.feature, spec.origin, spec.description)
    console.print(table)


def trained(model: str, b: Any) -> None:
    """What ``emovox train`` packaged, and the calibration it fitted."""
    val = (f" ({b.n_val_clips} clips of {b.n_val_speakers} of them for early stopping only)"
           if getattr(b, "n_val_speakers", 0) else "")
    said = getattr(b, "speakers", "") or f"{b.n_speakers} speakers"  # "speakers unknown"
    console.print(f"trained {model} on {b.n_clips} clips of {said}{val} in "
                  f"{b.seconds:.0f} s ({b.n_params:,} parameters) -> {b.path}")
    if b.calibration:
        c = b.calibration
        console.print(f"temperature {c['temperature']:.3f}: ECE {c['ece_before']:.3f} -> "
                      f"{c['ece_after']:.3f} on the cross-validation's out-of-fold predictions "
                      "(in-sample: the temperature was fitted on them)")


# --------------------------------------------------------------------------------------------
# Product commands
# --------------------------------------------------------------------------------------------


def shown_names(paths: Sequence[Any]) -> list[str]:
    """File names for a table: the name alone, or the path as given when two share a name
    (a.wav of two folders: CLI QA, stop 33)."""
    names = [Path(p).name for p in paths]  # "." and ".." have none: as given (QA, stop 39)
    return [str(p) if names.count(n) > 1 or not n else n
            for p, n in zip(paths, names, strict=True)]


def predictions(model_id: str, outcomes: Sequence[Any], top: int) -> None:
    """One row per file: the emotion (``no speech`` with the reason when there is none, ``?``
    after an uncertain one), confidence, top-k, arousal/valence, seconds of speech used."""
    from emovox.serving.answer import percent_text

    table = _table(f"emovox · {shown(model_id)}",
                   ("file", "emotion", "confidence", f"top {top}", "arousal", "valence",
                    "speech"))
    for o, name in zip(outcomes, shown_names([o.path for o in outcomes]), strict=True):
        if o.error:
            table.add_row(shown(name, line=True), "[red]error[/]", "", shown(o.error), "", "", "")
            continue
        p = o.prediction
        if p.probabilities is None:  # no_speech: no emotion, no numbers; seconds of speech
            short = getattr(p.reason, "value", p.reason) == "too_short"  # only when too few
            table.add_row(shown(name, line=True), "[dim]no speech[/]", "",
                          p.reason_message or "", "", "",
                          seconds_shown(p.speech_seconds) if short else "")  # (QA, 37: not
            continue  # voiced noise showed "2.5 s" of speech beside "no speech")
        ranked = sorted(p.probabilities.items(), key=lambda kv: -kv[1])[:top]
        uncertain = p.status.value == "uncertain"
        table.add_row(
            shown(name, line=True), f"[bold]{p.label}[/]" + (" [yellow]?[/]" if uncertain else ""),
            percent_text(p.confidence), "  ".join(f"{k} {percent_text(v)}" for k, v in ranked),
            f"{p.arousal:+.2f}", f"{p.valence:+.2f}", seconds_shown(p.speech_seconds),
        )
    console.print(table)
    console.print(AFFECT_NOTE + " ? = uncertain: top probability below 50 %.")


def adapted_note(what: str) -> None:
    """The line under answers adapted to their speaker."""
    console.print(f"adapted to speaker ({shown(what, line=True)}): probabilities divided by "
                  "that speaker's mean answer (assumes the reference clips mix several "
                  "emotions).")


def batch_adaptation(a: Any, out: Path) -> None:
    """What ``batch --speaker-from`` adapted."""
    console.print(
        f"adapted to speaker: {a.adapted} answers in {a.groups} speaker groups "
        f"(written to {out}, {a.uncertain} uncertain after adaptation; the line above counts "
        f"the unadapted answers); {a.unadapted} left unadapted ({a.small_groups} groups with "
        f"too few clips, {a.ungrouped} files without a group) · unadapted answers in {a.raw}")


def truth(rep: Any) -> None:
    """``predict --truth``: true label (from the RAVDESS file name) beside the prediction,
    and a warning when the model was trained on these actors."""
    table = _table("true label (from the RAVDESS file name) vs prediction",
                   ("file", "true", "predicted", ""))
    for r, name in zip(rep.rows, shown_names([r.path or r.name for r in rep.rows]),
                       strict=True):
        mark = {True: "[green]✓[/]", False: "[red]✗[/]", None: ""}[r.correct]
        table.add_row(shown(name, line=True), r.truth or "[dim]not a RAVDESS name[/]",
                      r.predicted or "[red]error[/]", mark)
    console.print(table)
    scored = rep.scored
    if scored:
        right = sum(bool(r.correct) for r in scored)
        console.print(f"{right} of {len(scored)} right")
    if rep.training_speakers:
        actors = shown(", ".join(s.split(":", 1)[-1] for s in rep.training_speakers))
        console.print(
            f"[bold yellow]note:[/] actor(s) {actors} are among the speakers this model was "
            "trained on: these clips were heard in training, so this is NOT the accuracy on "
            "new voices (that is the cross-validated UA of `emovox models`).")
    elif scored and not rep.speakers_known:  # said nothing before (own-data QA, stop 33)
        console.print(
            "[bold yellow]note:[/] which speakers this model was trained on is not known "
            "(not recorded, or unknown in its data): these actors may have been heard in "
            "training, so this need not be the accuracy on new voices.")


def markdown(text: str) -> None:
    """A Markdown document (a model card) on stdout: rendered on a terminal, as it is into
    a file or pipe."""
    text = _CONTROL.sub(_escaped, text)  # no ESC sequences
    if console.is_terminal:
        from rich.markdown import Markdown

        console.print(Markdown(text))
    else:
        console.print(text, markup=False, highlight=False, soft_wrap=True)


def batch_summary(s: Any, out: Path) -> None:
    labels = ", ".join(f"{k} {v}" for k, v in s.labels.most_common())
    console.print(
        # failed files are counted once, as errors, not also as predicted (CLI QA, stop 33)
        f"{s.found} files: {s.done - s.errors} predicted now"
        + (f" ({s.changed} changed since their row)" if getattr(s, "changed", 0) else "")
        + f", {s.skipped} already in {shown(out)}, "
        f"{s.errors} error{'' if s.errors == 1 else 's'}"
        + (f" (+ {s.skipped_errors} error rows kept from before)" if s.skipped_errors else "")
        + f", {s.no_speech} without speech, {s.uncertain} uncertain · "
        f"{s.seconds:.1f} s" + (f"\n{labels}" if labels else "")
    )


def timeline(tl: Any, name: str, window: float, hop: float, model_id: str) -> None:
    """The segments table (speech windows and gaps) and the summary line (by speech time);
    its title names the model, as predict's does."""
    table = _table(f"{shown(name, line=True)} · {seconds_shown(tl.duration)} · "
                   f"window {window} s, hop {hop} s · model {shown(model_id)}",
                   ("start", "end", "emotion", "confidence"), justify="right")
    from rich.markup import escape

    from emovox.serving.answer import Status, percent_text

    # the hop's steps, as listen prints them (stop 46); two places in a file under 1 s,
    # whose end is no step (a 0.25 s file ended at "0.2": user review, stop 53)
    places = max(hop_places(hop), 2 if tl.duration < 1 else 1)
    for s in tl.segments:  # "?": an uncertain window, as predict marks an answer (stop 33)
        if s.silent and s.end - s.start < 0.05:
            continue  # a gap that shows as "0.0 0.0 no speech" (QA, stop 41); kept in --json
        table.add_row(f"{s.start:.{places}f}", f"{s.end:.{places}f}",
                      "[dim]no speech[/]" if s.silent else
                      s.label + (" ?" if s.status is Status.UNCERTAIN else ""),
                      "" if s.silent else percent_text(s.confidence))
    console.print(table)
    summ = tl.summary()
    ranked = sorted(summ["share"].items(), key=lambda kv: -kv[1])
    share = ", ".join(f"{k} {v:.0%}" for k, v in ranked)
    if summ["dominant"] is None:  # the reason in words, as predict says it (CLI QA, stop 33)
        why = tl.no_speech_reason().message.removeprefix("no speech: ")
        console.print(f"overall: [bold]no speech[/] ({summ['reason']}: {escape(why)})")
        return
    console.print(f"overall (mean probability over speech time): [bold]{summ['dominant']}[/] "
                  f"({summ['status']}) · top label by speech time: "
                  f"{share or 'none'} · {summ['speech_seconds']:.1f} s of speech in "
                  f"{summ['n_windows']} window{'' if summ['n_windows'] == 1 else 's'}, "
                  f"{summ['gap_seconds']:.1f} s without")
    ad = getattr(tl, "adaptation", None)
    if ad is not None and ad.applied:
        console.print(f"adapted to speaker ({ad.reference_clips} windows of this recording)")


def run_line(out: Any, res: dict[str, Any], how: str, tail: str = "") -> None:
    """One line for a run directory written by ``merge`` or ``rescore``: where, which
    model, ``how`` it was made, its UA over folds."""
    s = res["summary"]["ua"]
    console.print(f"{out}: {res.get('model', '?')} {how}: UA "
                  f"{_mean_std(s, len(res.get('folds') or ()))}{tail}")


def live_banner(stdin: bool, sr: int, model_id: str, window: float, hop: float,
                channels: int = 1) -> None:
    """The first line of ``emovox listen`` (on stderr): the stream is being read."""
    layout = "mono" if channels == 1 else f"{channels} channels mixed to mono"
    src = f"stdin (raw PCM s16le {layout}, {sr} Hz)" if stdin else f"the microphone ({sr} Hz)"
    err_console.print(f"listening to {src} · model {shown(model_id)} · {window:g} s windows, a "
                      f"line every {hop:g} s (Ctrl-C to stop)", highlight=False)


def hop_places(hop: float | None) -> int:
    """Decimals a time needs to show steps of ``hop`` seconds (1 to 3): at one, a 0.25 s hop
    printed 0.2, 0.5, 0.8 (code review, stop 46)."""
    if not hop:
        return 1
    return next((d for d in (1, 2) if abs(round(hop, d) - hop) < 1e-9), 3)


def live_line(update: Any, json_out: bool, hop: float = 1.0) -> None:
    """One line of ``emovox listen``, flushed at once (stdout is often a pipe); its time has
    as many decimals as the hop needs (up to 3): at one, a 0.25 s hop printed 0.2, 0.5, 0.8
    (code review, stop 46)."""
    import json

    if json_out:
        print(json.dumps(update.to_dict()), flush=True)
        return
    level = f"{update.level_dbfs:6.1f} dBFS" if update.level_dbfs > -999 else f"{'silent':>11}"
    end = f"{update.end:8.{hop_places(hop)}f}"
    if update.emotion is None:  # and why, in predict's table's words (review, stop 55)
        why = (update.reason_message or "").removeprefix("no speech: ")  # a stream's words
        print(f"{end} s  {'no speech':<10}{'':>8}  {level}{'  ' + why if why else ''}",
              flush=True)
    else:  # the mark stands apart from a one-decimal "49.8%" (QA, stop 39: "?49.8%")
        mark = " ?" if update.status.value == "uncertain" else "  "
        from emovox.serving.answer import percent_text

        print(f"{end} s  {update.emotion:<10}{mark}"
              f"{percent_text(update.confidence):>6}  {level}", flush=True)


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
    err_console.print(f"emovox API · model {shown(model_id)} ({backend})"
                      + (" · API key required" if api_key else ""))
    where = f"[{host}]" if ":" in host and not host.startswith("[") else host  # IPv6 URL
    err_console.print(f"docs at http://{shown(where)}:{port}/docs (Ctrl-C to stop)")
