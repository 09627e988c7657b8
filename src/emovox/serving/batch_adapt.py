"""``emovox batch --speaker-from parent|REGEX``: predict every file, then adapt each speaker
group's answers to the group's own mean posterior -- two passes over the **predictions**,
not over the audio (:mod:`emovox.serving.adapt` says what the adaptation does).

1. The ordinary resumable batch (:func:`emovox.serving.batch.run_batch`) writes the
   unadapted answers to ``<out stem>.unadapted<suffix>`` beside ``--out``
   (:func:`unadapted_path`). That file is what a re-run resumes, so an answer is never
   adapted twice.
2. Every row of that file is given its speaker group (:class:`SpeakerGrouping`); each group
   with at least :data:`~emovox.adaptation.MIN_REFERENCE_CLIPS` answers with speech gets its
   prior from them (each clip once, the clip itself included); ``--out`` is then rewritten
   in full, atomically, with the adapted answers.

CSV output gains the columns :data:`ADAPT_FIELDS`: ``speaker_group``, ``adapted``
(``true``; ``false`` for a speech answer left unadapted: group too small or no group, and
for a ``no_speech`` answer of a group; empty for error rows and ungrouped ``no_speech``
rows), ``reference_clips`` (usable clips of the group) and ``adapt_note`` (why not adapted,
then the group's warnings: copies, clips left out of its baseline, fewer than 16 clips,
mostly one emotion; an adapted answer's then :data:`GROUP_OWN_REFERENCE`). JSON lines gain
``adaptation`` (schema ``prediction-v1.json``, with the same ``warnings``) on every answer
of a group and every speech answer. Batch answers are adapted as a whole (the
windows' own probabilities are not in the rows): the ``evidence`` of a recording answered
from several windows lists the windows as the model heard them, unadapted; a one-window
answer's evidence is the adapted answer.
"""

from __future__ import annotations

import array
import csv
import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emovox.adaptation import (
    MIN_REFERENCE_CLIPS,
    RECOMMENDED_REFERENCE_CLIPS,
    Adaptation,
    adapt,
    speaker_prior,
)
from emovox.affect import arousal_valence
from emovox.errors import ConfigError
from emovox.fileio import atomic_path, file_sha256, locked_beside, mode_of
from emovox.labels import LABELS
from emovox.serving.adapt import (
    OWN_REFERENCE,
    AdaptationError,
    SpeakerGrouping,
    SpeakerPrior,
    adapted_status,
)
from emovox.serving.answer import confidence_band, rounded_probability
from emovox.serving.batch import FIELDS, BatchSummary, is_error_row, read_rows, run_batch
from emovox.serving.inputs import path_of_text
from emovox.serving.outfile import (
    ADAPT_FIELDS,
    capped,
    check_ours,
    check_same_model,
    csv_sentences,
    spreadsheet_safe,
)

log = logging.getLogger(__name__)

__all__ = ["GROUP_OWN_REFERENCE", "AdaptSummary", "run_speaker_batch", "unadapted_path",
           "write_adapted"]

#: the note of every adapted answer: each is one of its group's reference clips, as
#: ``predict --reference`` says of a clip that is one of its references (:data:`OWN_REFERENCE`;
#: batch said nothing: review, stop 55)
GROUP_OWN_REFERENCE = ("every clip with speech in the group is one of its reference clips, "
                       "this one too: " + OWN_REFERENCE.partition(": ")[2])


@dataclass
class AdaptSummary:
    """What the adaptation pass did."""

    raw: Path  #: the unadapted answers (what a re-run resumes)
    groups: int = 0  #: speaker groups adapted
    adapted: int = 0  #: answers adapted
    small_groups: int = 0  #: groups with too few usable clips, left unadapted
    unadapted: int = 0  #: speech answers left unadapted (small group or no group)
    ungrouped: int = 0  #: files whose name the regex does not match
    uncertain: int = 0  #: answers of ``out`` that are ``uncertain`` (after adaptation)


def unadapted_path(out: Path) -> Path:
    """``results.csv`` -> ``results.unadapted.csv``."""
    return out.with_name(f"{out.stem}.unadapted{out.suffix}")


def run_speaker_batch(inputs: Any, out: Path, *, speaker_from: str, **kwargs: Any
                      ) -> tuple[BatchSummary, AdaptSummary]:
    """:func:`~emovox.serving.batch.run_batch` into :func:`unadapted_path`, then
    :func:`write_adapted` into ``out``; ``kwargs`` go to ``run_batch``. A plain run's
    answers in ``out`` move to the unadapted file only once ``run_batch``'s checks passed
    (inputs, the unadapted file) and their own (another model's answers), and move back
    when the run stops before its first answer.

    Raises:
        ConfigError: a bad ``speaker_from``; an ``out`` or unadapted file emovox did not
        write (checked before anything is predicted).
        AdaptationError: a group's answers have different labels (another model's rows).
    """
    grouping = SpeakerGrouping.parse(speaker_from)
    out = Path(out)
    check_ours(out, ADAPT_FIELDS)  # rewritten in full below: it must be ours (raw: run_batch)
    raw = unadapted_path(out)
    moved: list[int] = []  # answers of a plain run moved from out to raw

    def keep() -> None:  # run_batch's refusals (inputs, raw) came first: a typo moved the
        moved.append(_keep_plain_answers(out, raw, kwargs.get("artifact")))  # file (56)

    with locked_beside(out, "the batch output"):  # a plain batch on it lost its answers
        try:  # (QA re-check, stop 38); raw: locked by run_batch
            summary = run_batch(inputs, raw, also_ours=(out,), before_run=keep, **kwargs)
        except BaseException as exc:
            if sum(moved) and not _answered(exc):
                _move_back(raw, out)  # stopped before its first answer: as it was
                moved.clear()
            raise
        finally:
            if sum(moved):
                log.warning("%s held %d answer(s) of a run without --speaker-from: they were "
                            "moved to %s, which this run resumes, and are adapted into %s",
                            out, sum(moved), raw, out)
        return summary, write_adapted(raw, out, grouping)


def _answered(exc: BaseException) -> bool:
    """Whether the batch that raised ``exc`` wrote an answer: a stopped or interrupted run
    says how many, and run_batch raises other errors as they are only before the first (an
    unforeseen one later moves the plain answers back with this run's: the next run moves
    them again)."""
    summary = getattr(exc, "summary", None)
    return isinstance(summary, BatchSummary) and summary.done > 0


def _move_back(raw: Path, out: Path) -> None:
    """``raw`` back to ``out``, where :func:`_keep_plain_answers` found it."""
    if raw.is_file() and not out.exists() and not out.is_symlink():
        raw.replace(out)


def _source(row: dict[str, Any]) -> str:
    return str(row.get("path") or row.get("source") or "")


def _keep_plain_answers(out: Path, raw: Path, artifact: Any = None) -> int:
    """``out`` holding the answers of a run without ``--speaker-from`` becomes ``raw``, which
    this run resumes and adapts: rewriting ``out`` from ``raw`` lost them (CLI QA, stop 33).
    Refused, before anything moves, when ``raw`` holds answers too (which to keep is the
    user's call) or ``out`` holds another model's than ``artifact``'s (the refusal named
    ``raw``, and to delete it: the user's only copy, stop 56). How many answers moved."""
    if not out.is_file() or out.stat().st_size == 0:
        return 0
    try:
        check_ours(out)  # without the adaptation columns: refuses a file of adapted answers
    except ConfigError:
        return 0  # adapted answers: rewritten from raw as before
    mine = {_source(r) for r in read_rows(out)}
    n = len(mine)
    if not n:
        return 0
    if raw.exists() and raw.stat().st_size:
        if mine <= {_source(r) for r in read_rows(raw)}:
            return 0  # the adapted file of a run whose rows all stayed as they were
        raise ConfigError(
            f"{out} holds {n} answer(s) of a run without --speaker-from, and {raw} exists too: "
            f"adapting would replace {out}'s rows with {raw}'s. Choose another --out, or move "
            "one of the two away (the files were left as they were).")
    check_ours(raw)  # not a link, a FIFO, a hard link
    from emovox.serving.predictor import model_id_of

    check_same_model(out, read_rows(out), model_id_of(artifact))  # as run_batch checks raw
    out.replace(raw)
    return n


def _probs(row: dict[str, Any], fmt: str) -> dict[str, float] | None:
    if is_error_row(row) or row.get("status") == "no_speech":
        return None
    if fmt == "jsonl":
        p = row.get("probabilities")
        return {k: float(v) for k, v in p.items()} if isinstance(p, dict) else None
    got = {lab: row.get(f"p_{lab}") for lab in LABELS}
    probs = {lab: float(v) for lab, v in got.items() if v not in (None, "")}
    return probs or None


@dataclass
class _Group:
    """What pass 1 keeps of one speaker group's answers with speech: their probabilities in
    one flat array of floats (one per label and clip, not a dict per row: the whole output
    and a dict per row took 411 MiB for 50,000 JSON lines; code review, stop 48; not a
    running sum either, which would change the priors in their last bits) and the digests
    of their files (copies count once)."""

    labels: tuple[str, ...]
    probs: array.array = field(default_factory=lambda: array.array("d"))
    seen: set[str] = field(default_factory=set)
    n: int = 0
    copies: int = 0
    mixed: bool = False  #: answers with other labels (another model's rows)

    def add(self, p: dict[str, float], digest: str | None) -> None:
        if digest in self.seen:
            self.copies += 1
            return
        if digest is not None:
            self.seen.add(digest)
        if tuple(p) != self.labels:
            self.mixed = True
            return
        self.probs.extend(p[lab] for lab in self.labels)
        self.n += 1


def _gather(raw: Path, grouping: SpeakerGrouping, fmt: str
            ) -> tuple[dict[str, _Group], dict[str, list[int]]]:
    """Pass 1 over ``raw``, row by row: each group's answers with speech (:class:`_Group`),
    and ``{group: [rows without speech, error rows]}``, the clips left out of its baseline.
    Warns when ``grouping`` named no speaker in any file."""
    groups: dict[str, _Group] = {}
    left_out: dict[str, list[int]] = {}
    n_files = grouped = 0
    for row in read_rows(raw) if raw.exists() else ():
        g = _group(row, grouping)
        n_files += not is_error_row(row)
        grouped += g is not None
        p = _probs(row, fmt)
        if p is None:  # predict --reference names its skipped clips (review, stop 55)
            if (k := g if g is not None else grouping.group_of(_source(row))) is not None:
                left_out.setdefault(k, [0, 0])[is_error_row(row)] += 1
            continue
        if g is None:
            continue
        digest = _content(row)  # None: unreadable now, counted as itself
        groups.setdefault(g, _Group(tuple(p))).add(p, digest)
    if n_files and not grouped:
        log.warning("--speaker-from %r named no speaker in any of the %d file(s) (it is "
                    "searched in the %s): no answer was adapted", grouping.spec, n_files,
                    grouping.where)
    return groups, left_out


def _group(row: dict[str, Any], grouping: SpeakerGrouping) -> str | None:
    return None if is_error_row(row) else grouping.group_of(_source(row))


def _left_out_note(no_speech: int, failed: int) -> str | None:
    """The group's note on its clips left out of its baseline (None for none)."""
    parts = [f"{no_speech} clip(s) without speech"] if no_speech else []
    parts += [f"{failed} with an error"] if failed else []
    return f"left out of the group's baseline: {', '.join(parts)} (their rows say why)" \
        if parts else None


def _priors(groups: dict[str, _Group], left_out: dict[str, list[int]] | None = None
            ) -> dict[str, SpeakerPrior | Adaptation]:
    """``{group: its prior with its warnings, or why not, when too few clips}``. Files of a
    group with the same bytes count once, as ``predict --reference`` counts them: 16 copies
    of one clip were a baseline of 16 clips (code review, stop 45); the rows without speech
    or with an error of ``left_out`` are counted in a note, as predict names its skipped
    references (review, stop 55)."""
    out: dict[str, SpeakerPrior | Adaptation] = {}
    repeats = {g: f"{m.copies} file(s) with the same bytes as another of the group, counted "
               "once" for g, m in groups.items() if m.copies}
    skipped = {g: _left_out_note(*n) for g, n in (left_out or {}).items()}
    for g, note in repeats.items():
        log.warning("speaker group %r: %s", g, note)
    for g, m in groups.items():
        if m.mixed:
            raise AdaptationError(f"speaker group {g!r}: answers with different labels "
                                  "(rows of another model in the output?)")
        if m.n < MIN_REFERENCE_CLIPS:  # the copies said here too: a folder of 3 copies
            out[g] = Adaptation(  # read "1 clip with speech" and nothing more (review, 47)
                False, m.n, g, f"{m.n} clip(s) with speech in the group; at least "
                f"{MIN_REFERENCE_CLIPS} needed to adapt",
                warnings=tuple(w for w in (repeats.get(g), skipped.get(g)) if w))
            continue
        probs = np.frombuffer(m.probs, dtype=np.float64).reshape(m.n, len(m.labels))
        sp = SpeakerPrior(speaker_prior(probs), m.labels, m.n, g)
        dominant = sp.dominant_warning(f"the clips of group {g!r}")
        if dominant is not None:
            log.warning("%s", dominant)
        warnings = (repeats.get(g), skipped.get(g),
                    sp.few_clips_warning("clips with speech in the group"), dominant)
        out[g] = dataclasses.replace(sp, warnings=tuple(w for w in warnings if w))
    return out


def _content(row: dict[str, Any]) -> str | None:
    """SHA-256 of a row's file, or None when it cannot be read (it then counts as itself)."""
    try:
        path = path_of_text(_source(row))  # the row's text names one file (a byte 0xff too)
        return file_sha256(path) if path.is_file() else None
    except OSError:
        return None


def _adapted_row(row: dict[str, Any], fmt: str, sp: SpeakerPrior) -> dict[str, Any]:
    p = _probs(row, fmt) or {}
    labels, record = sp.labels, sp.record()  # its own answer is in the baseline: said, as
    record = dataclasses.replace(  # predict --reference says it (review, stop 55)
        record, warnings=(*record.warnings, GROUP_OWN_REFERENCE))
    q = adapt(np.array([p[lab] for lab in labels]), sp.prior)
    k = int(np.argmax(q))
    a, v = arousal_valence(q, labels)
    conf = float(q[k])
    new = dict(row)
    if fmt == "csv":
        new |= {"label": labels[k], "confidence": rounded_probability(conf, 6),
                "status": adapted_status(conf).value, "arousal": round(a, 4),
                "valence": round(v, 4)}
        new |= {f"p_{lab}": rounded_probability(float(x), 6)
                for lab, x in zip(labels, q, strict=True)}
        return new | _csv_mark(record)
    new |= {"label": labels[k], "confidence": conf, "confidence_level": confidence_band(conf),
            "status": adapted_status(conf).value, "arousal": a, "valence": v,
            "probabilities": {lab: float(x) for lab, x in zip(labels, q, strict=True)},
            "adaptation": record.to_dict()}
    ev = row.get("evidence") or []
    if len(ev) == 1:  # one window: its evidence is the answer
        new["evidence"] = [{**ev[0], "label": labels[k],
                            "confidence": rounded_probability(conf, 4),
                            "contribution": 1.0}]
    return new


def _csv_mark(record: Adaptation | None, group: str | None = None) -> dict[str, Any]:
    """The adaptation columns of a CSV row, free text :func:`capped` (``group``: of a row
    without ``record``)."""
    if record is None:
        return {"speaker_group": spreadsheet_safe(capped(group or "")), "adapted": "",
                "reference_clips": "",
                "adapt_note": ""}
    note = csv_sentences(([record.reason] if record.reason else []) + list(record.warnings))
    return {"speaker_group": spreadsheet_safe(capped(record.group or "")),
            "adapted": str(record.applied).lower(),
            "reference_clips": record.reference_clips, "adapt_note": capped(note)}


def _one_row(row: dict[str, Any], group: str | None, fmt: str,
             priors: dict[str, SpeakerPrior | Adaptation], summary: AdaptSummary
             ) -> dict[str, Any]:
    if _probs(row, fmt) is None:  # error rows untouched; a no_speech row of a group says
        if is_error_row(row) or group is None:  # why it is not adapted, as predict
            return row | _csv_mark(None, group) if fmt == "csv" else row  # --reference
        sp, why = priors.get(group), "the clip holds no speech: nothing to adapt"  # (QA, 39)
        record = (sp.not_applied(why) if isinstance(sp, SpeakerPrior)
                  else dataclasses.replace(sp, reason=why) if sp is not None
                  else Adaptation(False, 0, group, why))
        return row | _csv_mark(record) if fmt == "csv" else row | {"adaptation": record.to_dict()}
    if group is None:
        summary.ungrouped += 1
        record = Adaptation(False, 0, None, "no speaker group: --speaker-from found no "
                            "speaker in the file's name or path")
    else:
        sp = priors[group]
        if isinstance(sp, SpeakerPrior):
            summary.adapted += 1
            return _adapted_row(row, fmt, sp)
        record = sp
    summary.unadapted += 1
    return row | _csv_mark(record) if fmt == "csv" else row | {"adaptation": record.to_dict()}


def write_adapted(raw: Path, out: Path, grouping: SpeakerGrouping) -> AdaptSummary:
    """Rewrite ``out`` (atomically) from the unadapted rows of ``raw``, adapted per group:
    two passes over ``raw``, each row by row (pass 1: each group's prior; pass 2: each row
    adapted and written), so that memory does not grow with the rows (it held every row
    twice: 411 MiB for 50,000 JSON lines; code review, stop 48)."""
    fmt = "csv" if out.suffix.lower() == ".csv" else "jsonl"
    priors = _priors(*_gather(raw, grouping, fmt))
    summary = AdaptSummary(raw=raw)
    adapted = [sp for sp in priors.values() if isinstance(sp, SpeakerPrior)]
    summary.groups = len(adapted)
    summary.small_groups = len(priors) - summary.groups
    few = sum(sp.n < RECOMMENDED_REFERENCE_CLIPS for sp in adapted)
    if few:
        log.warning("%d speaker group(s) adapted from fewer than %d clips: adaptation was "
                    "measured to help little or to hurt there (README, 'Speaker adaptation')",
                    few, RECOMMENDED_REFERENCE_CLIPS)
    with atomic_path(out, mode=mode_of(out)) as tmp, \
            open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS + ADAPT_FIELDS, extrasaction="ignore",
                           restval="") if fmt == "csv" else None
        if w is not None:
            w.writeheader()
        for row in read_rows(raw) if raw.exists() else ():
            new = _one_row(row, _group(row, grouping), fmt, priors, summary)
            summary.uncertain += new.get("status") == "uncertain"
            if w is not None:
                w.writerow(new)
            else:
                f.write(json.dumps(new) + "\n")
    return summary
