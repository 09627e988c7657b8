"""Speaker adaptation of answers in the product: the speaker's mean posterior, from unlabelled
clips of the same speaker, corrects each of that speaker's answers (the maths, what it
assumes and why: :mod:`emovox.adaptation`).

Three ways to get the speaker's clips, one per command:

* :func:`reference_prior` (``emovox predict --reference DIR``): a folder of clips of the same
  speaker (its subfolders too, with a warning when the clips used lie in several folders:
  all are taken as one speaker's); each usable clip (read, with speech) counts once, its
  probabilities being the answer :class:`~emovox.serving.predictor.Predictor` gives for it
  (the duration-weighted mean of its speech windows). Clips that fail or hold no speech are
  skipped with a warning, in a reference's words (:mod:`emovox.serving.reference_words`);
  fewer than :data:`~emovox.adaptation.MIN_REFERENCE_CLIPS` usable clips is an
  :class:`AdaptationError`.
* :class:`SpeakerGrouping` (``emovox batch --speaker-from parent|REGEX``): clips grouped by
  their parent folder's name, or by the first capture group of a regular expression searched
  in the file name; each group's prior comes from its own clips' answers
  (:mod:`emovox.serving.batch_adapt`). A group with fewer usable clips than the minimum is
  left unadapted and marked (``applied: false`` with a reason).
* :func:`adapt_timeline` (``emovox timeline --adapt self``): a long recording's speech
  windows, weighted by the seconds each stands for, are the prior of its own windows.

Every adapted answer carries an :class:`~emovox.adaptation.Adaptation` record (``adaptation``
in the JSON documents). ``no_speech`` answers are never adapted and never part of a prior.
The status is recomputed from the adapted confidence (``uncertain`` below
:data:`~emovox.serving.answer.UNCERTAIN_BELOW`).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from emovox.adaptation import (
    MIN_REFERENCE_CLIPS,
    RECOMMENDED_REFERENCE_CLIPS,
    Adaptation,
    adapt,
    dominant_class,
    references_mean,
    speaker_prior,
)
from emovox.affect import arousal_valence
from emovox.errors import ConfigError, EmovoxError
from emovox.fileio import file_sha256
from emovox.serving.answer import UNCERTAIN_BELOW, Prediction, Status, aggregate, evidence_of
from emovox.serving.reference_words import (
    folders_warning,
    link_notes,
    no_speech_skip,
    reference_words,
)
from emovox.serving.timeline import SegmentKind, Timeline

log = logging.getLogger(__name__)

__all__ = ["MIN_REFERENCE_CLIPS", "OWN_REFERENCE", "PARENT", "AdaptMode", "AdaptationError",
           "RepeatedClips", "SpeakerGrouping", "SpeakerPrior", "TooFewReferences",
           "adapt_outcomes", "adapt_prediction", "adapt_timeline", "adapted_status",
           "mark_own_reference", "prior_from_predictions", "prior_from_references",
           "reference_prior"]

#: ``--speaker-from parent``: the speaker is the clip's folder (of its resolved path)
PARENT = "parent"
#: the group of ``timeline --adapt self``
SELF_GROUP = "self"


class AdaptationError(EmovoxError):
    """Speaker adaptation was asked for but cannot be done (bad reference folder, too few
    usable reference clips, a grouping regex without a capture group, other labels)."""


class TooFewReferences(AdaptationError):
    """Fewer than :data:`MIN_REFERENCE_CLIPS` reference clips could be read and hold speech."""


@dataclass(frozen=True)
class SpeakerPrior:
    """A speaker's mean posterior and what it was computed from.

    Attributes:
        prior: ``(C,)`` in ``labels`` order, sums to 1.
        labels: the label order of ``prior``.
        n: clips (or windows) it was computed from.
        group: the speaker group, reference folder or ``"self"``.
        warnings: what the user should know about the references (go into the record).
        digests: SHA-256 of the reference clips' bytes (``predict --reference`` and
            uploaded references; empty otherwise), to tell a clip that is one of them.
    """

    prior: np.ndarray
    labels: tuple[str, ...]
    n: int
    group: str | None = None
    warnings: tuple[str, ...] = ()
    digests: frozenset[str] = frozenset()

    def record(self) -> Adaptation:
        return Adaptation(True, self.n, self.group,
                          prior=dict(zip(self.labels, map(float, self.prior), strict=True)),
                          warnings=self.warnings)

    def not_applied(self, reason: str) -> Adaptation:
        """The record of an answer this prior was offered to but not applied to (e.g. a
        ``no_speech`` answer), keeping the prior's warnings."""
        return Adaptation(False, self.n, self.group, reason, warnings=self.warnings)

    def few_clips_warning(self, what: str) -> str | None:
        """The warning for a prior from fewer than :data:`RECOMMENDED_REFERENCE_CLIPS` clips."""
        if self.n >= RECOMMENDED_REFERENCE_CLIPS:
            return None
        return (f"only {self.n} usable {what}: with fewer than {RECOMMENDED_REFERENCE_CLIPS}, "
                "adaptation was measured to help little (emovox's speaker-adaptation "
                "measurements on RAVDESS actors)")

    def dominant_warning(self, what: str) -> str | None:
        """The warning for a prior that is mostly one emotion (:func:`dominant_class`)."""
        top = dominant_class(references_mean(self.prior, self.n), self.labels)
        if top is None:
            return None
        return (f"{what} sound mostly {top[0]} (mean probability {100 * top[1]:.0f} %): if "
                "they all carry that emotion, adaptation removes it from the answers; use "
                "clips of several emotions")


#: the warning of an answer whose clip is also one of its reference clips
OWN_REFERENCE = ("this clip is also one of the reference clips: its own answer is part of "
                 "the speaker's baseline, which pulls the adapted answer away from it")


class RepeatedClips:
    """Byte-identical reference clips counted once: 16 copies of one clip passed for 16
    clips of the speaker, silencing the few-clips warning (QA, stop 38)."""

    def __init__(self) -> None:
        self.first: dict[str, str] = {}

    def repeat_of(self, name: str, digest: str) -> str | None:
        """The skip reason when a clip with these bytes came before, else None (and the
        clip is remembered)."""
        if digest not in self.first:
            self.first[digest] = name
            return None
        return f"{name}: the same bytes as {self.first[digest]}, counted once"


def mark_own_reference(pred: Prediction, digest: str, sp: SpeakerPrior) -> Prediction:
    """``pred`` with :data:`OWN_REFERENCE` among its adaptation warnings when it was adapted
    and its clip's bytes (``digest``) are one of the clips the prior was built from
    (``sp.digests``)."""
    if digest not in sp.digests or pred.adaptation is None or not pred.adaptation.applied:
        return pred  # a clip left out of the baseline, or an answer not adapted (review, 45)
    record = dataclasses.replace(pred.adaptation,
                                 warnings=(*pred.adaptation.warnings, OWN_REFERENCE))
    return dataclasses.replace(pred, adaptation=record)


def adapted_status(confidence: float) -> Status:
    return Status.UNCERTAIN if confidence < UNCERTAIN_BELOW else Status.OK


def prior_from_predictions(predictions: Sequence[Prediction], labels: Sequence[str], *,
                           group: str | None = None) -> SpeakerPrior | None:
    """The prior of the answers with speech among ``predictions`` (each counts once); None
    when fewer than :data:`MIN_REFERENCE_CLIPS` of them have speech.

    Raises:
        AdaptationError: an answer's labels are not ``labels``.
    """
    rows = []
    for p in predictions:
        if p.probabilities is None:
            continue
        if tuple(p.probabilities) != tuple(labels):
            raise AdaptationError(f"{p.source}: answered with labels {list(p.probabilities)}, "
                                  f"not the model's {list(labels)}")
        rows.append([p.probabilities[lab] for lab in labels])
    if len(rows) < MIN_REFERENCE_CLIPS:
        return None
    return SpeakerPrior(speaker_prior(np.array(rows)), tuple(labels), len(rows), group)


def adapt_prediction(pred: Prediction, sp: SpeakerPrior) -> Prediction:
    """``pred`` adapted to the speaker of ``sp``: each speech window's probabilities adapted,
    then aggregated again (duration-weighted) with new evidence; label, confidence, status,
    arousal and valence follow. A ``no_speech`` answer is not adapted: it gains a record that
    says so and keeps the references' warnings (what was skipped, too few, one emotion).

    Raises:
        AdaptationError: the answer's labels are not the prior's.
    """
    if pred.probabilities is None:
        return dataclasses.replace(
            pred, adaptation=sp.not_applied("the clip holds no speech: nothing to adapt"))
    labels = tuple(pred.probabilities)
    if labels != sp.labels:
        raise AdaptationError(f"{pred.source}: labels {list(labels)} differ from the "
                              f"reference's {list(sp.labels)} (another model?)")
    if pred.window_probs is not None and len(pred.window_probs) == len(pred.evidence) > 0:
        qw = adapt(pred.window_probs, sp.prior)
        weights = [e.weight for e in pred.evidence]
        p = aggregate(qw, weights)
        evidence = evidence_of([(e.start, e.end) for e in pred.evidence], qw, weights,
                               labels, p)
    else:  # an answer without its windows: the answer itself is adapted
        qw = None
        p = adapt(np.array([pred.probabilities[lab] for lab in labels]), sp.prior)
        evidence = pred.evidence
    k = int(np.argmax(p))
    a, v = arousal_valence(p, labels)
    return dataclasses.replace(
        pred, label=labels[k], confidence=float(p[k]),
        probabilities={lab: float(x) for lab, x in zip(labels, p, strict=True)},
        arousal=a, valence=v, status=adapted_status(float(p[k])), evidence=evidence,
        adaptation=sp.record(), window_probs=qw)


def prior_from_references(usable: Sequence[Prediction], skipped: Sequence[str],
                          labels: Sequence[str], *, group: str, what: str, offered: int,
                          digests: frozenset[str] = frozenset(),
                          notes: Sequence[str] = ()) -> SpeakerPrior:
    """The prior of reference clips already predicted (``usable``: answers with speech) and
    the clips that were not (``skipped``: ``"name: why"``), with its warnings (``notes``
    about the references as a whole, each skipped clip, each used clip's decoder notes,
    fewer than :data:`RECOMMENDED_REFERENCE_CLIPS`, mostly one emotion; the clips' in a
    reference's words: :func:`~emovox.serving.reference_words.reference_words`), logged and
    kept in the record. ``what`` names the references in messages (``"reference folder
    X"``); ``offered``: how many clips were given; ``digests``: the SHA-256 of the bytes of
    the ``usable`` ones (:func:`mark_own_reference`).

    Raises:
        TooFewReferences: fewer than :data:`MIN_REFERENCE_CLIPS` usable clips (the message
            names what was skipped).
        AdaptationError: an answer's labels are not ``labels``.
    """
    skipped = [reference_words(why) for why in skipped]  # "answered on", `emovox timeline`
    warnings = [*notes, *(f"reference clip skipped: {why}" for why in skipped)]
    warnings += [f"reference clip used despite: {reference_words(note)}"  # cut short (the
                 for p in usable for note in getattr(p, "warnings", ())]  # decoder's notes)
    sp = prior_from_predictions(usable, labels, group=group)
    if sp is None:
        said = "; ".join(why.rstrip(".") for why in skipped[:5])
        detail = f" (skipped: {said}{' ...' if len(skipped) > 5 else ''})" \
            if skipped else ""
        raise TooFewReferences(
            f"{what}: {len(usable)} usable clip(s) of {offered}, at least "
            f"{MIN_REFERENCE_CLIPS} clips with speech are needed{detail}")
    for w in (sp.few_clips_warning("reference clips"),
              sp.dominant_warning(f"the reference clips ({what})")):
        if w is not None:
            warnings.append(w)
    for w in warnings:
        log.warning("%s", w)
    return dataclasses.replace(sp, warnings=tuple(warnings), digests=digests)


def reference_prior(predictor: Any, folder: Path, *, max_duration: float | None = None,
                    progress: Callable[[int, int], None] | None = None) -> SpeakerPrior:
    """The prior of the clips in ``folder`` and its subfolders, predicted by ``predictor``
    (:func:`prior_from_references`), all taken as one speaker's (a warning when the clips
    used come from more than one folder); byte-identical clips count once (the others are
    skipped, named). The decoder's notes of the clips are said once, in a reference's words,
    by the prior's warnings (the decoder's own log of them is held back, in this thread
    only: it said "answered on" them, and said a used clip's notes twice), and so are the
    symbolic links the folder's walk met (:func:`~emovox.serving.reference_words.
    link_notes`; they were logged in ``batch``'s words). ``progress(done, total)`` is
    called after each clip.

    Raises:
        AdaptationError: ``folder`` is missing or not a folder, holds no audio file, or
            (:class:`TooFewReferences`) fewer than :data:`MIN_REFERENCE_CLIPS` of its clips
            could be read and hold speech (the message names what was skipped).
    """
    from emovox.audio import notes_held_back
    from emovox.serving.batch import predict_files
    from emovox.serving.inputs import InputLinks, collect_inputs

    folder = Path(folder)
    if not folder.is_dir():
        raise AdaptationError(f"reference folder {folder} does not exist or is not a folder")
    met = InputLinks()
    files = collect_inputs([str(folder)], links=met)
    if not files:
        raise AdaptationError(f"reference folder {folder} holds no audio file")
    usable: list[Prediction] = []
    skipped: list[str] = []
    repeated, used, taken = RepeatedClips(), set(), []
    with notes_held_back():  # the decoder's notes come back in the answers
        for i, f in enumerate(files):
            digest = None
            try:  # a FIFO would block: predict_files refuses it (QA re-check, stop 38)
                digest = file_sha256(f) if f.is_file() else None
            except OSError:
                pass  # unreadable: predict_files says why
            repeat = repeated.repeat_of(f.name, digest) if digest is not None else None
            if repeat is not None:
                skipped.append(repeat)
            for o in [] if repeat else predict_files(predictor, [f], max_duration=max_duration):
                if o.error is not None:
                    head, _, rest = o.error.partition(": ")  # audio errors start with the path
                    why = rest if rest and Path(head).name == o.path.name else o.error
                    skipped.append(f"{o.path.name}: {why}")
                elif o.prediction.probabilities is None:
                    skipped.append(no_speech_skip(o.path.name, o.prediction))
                else:  # what the prior needs (probabilities, notes), not the windows: every
                    usable.append(dataclasses.replace(  # answer was kept whole, evidence and
                        o.prediction, evidence=(), window_probs=None))  # all (review, 48)
                    used.add(digest)
                    taken.append(f)
            if progress is not None:
                progress(i + 1, len(files))
    notes = [*link_notes(met), *(w for w in (folders_warning(taken),) if w)]
    return prior_from_references(usable, skipped, predictor.labels, group=str(folder),
                                 what=f"reference folder {folder}", offered=len(files),
                                 digests=frozenset(used - {None}), notes=notes)


def adapt_timeline(tl: Timeline, labels: Sequence[str]) -> Timeline:
    """Adapt a timeline's speech windows to the recording's own speaker: the prior is the
    mean of its windows' probabilities weighted by the seconds each stands for. With fewer
    than :data:`MIN_REFERENCE_CLIPS` windows nothing changes and ``tl.adaptation`` says why.
    Returns ``tl`` (changed in place)."""
    speech = [s for s in tl.segments if s.kind is SegmentKind.SPEECH and s.probabilities]
    if len(speech) < MIN_REFERENCE_CLIPS:
        tl.adaptation = Adaptation(False, len(speech), SELF_GROUP,
                                   f"{len(speech)} speech window(s); at least "
                                   f"{MIN_REFERENCE_CLIPS} needed to adapt")
        return tl
    labels = tuple(labels)
    probs = np.array([[s.probabilities[lab] for lab in labels] for s in speech])  # type: ignore[index]
    own = np.array([s.own for s in speech])
    sp = SpeakerPrior(speaker_prior(probs, own if own.sum() > 0 else None), labels,
                      len(speech), SELF_GROUP)
    dominant = sp.dominant_warning("the recording's speech windows")
    if dominant is not None:
        log.warning("%s", dominant)
        sp = dataclasses.replace(sp, warnings=(dominant,))
    q = adapt(probs, sp.prior)
    new = {id(s): (s, qi) for s, qi in zip(speech, q, strict=True)}
    segments = []
    for s in tl.segments:
        if id(s) not in new:
            segments.append(s)
            continue
        qi = new[id(s)][1]
        k = int(np.argmax(qi))
        a, v = arousal_valence(qi, labels)
        segments.append(dataclasses.replace(
            s, label=labels[k], confidence=float(qi[k]), arousal=a, valence=v,
            probabilities={lab: float(x) for lab, x in zip(labels, qi, strict=True)}))
    tl.segments = segments
    tl.adaptation = sp.record()
    return tl


@dataclass(frozen=True)
class SpeakerGrouping:
    """How ``batch --speaker-from`` names a clip's speaker: ``parent`` (the clip's folder) or
    a regular expression whose first capture group, searched in the file name (in the whole
    path when it holds a ``/``), is the speaker (``"(Actor_\\d+)"``, ``"^(\\w+?)_"``,
    ``"speakers/(\\w+)/"``)."""

    spec: str
    pattern: re.Pattern[str] | None = None

    @classmethod
    def parse(cls, spec: str) -> SpeakerGrouping:
        """Raises ConfigError: an empty spec, a bad regex or one without a capture group."""
        if not spec:
            raise ConfigError("--speaker-from needs 'parent' or a REGEX with a capture group")
        if spec == PARENT:
            return cls(spec)
        try:
            pattern = re.compile(spec)
        except re.error as exc:
            raise ConfigError(f"--speaker-from {spec!r} is not a valid regular expression: "
                              f"{exc}") from None
        if pattern.groups < 1:
            raise ConfigError(f"--speaker-from {spec!r} has no capture group: put the "
                              "speaker part in parentheses, e.g. '^(\\w+?)_'")
        return cls(spec, pattern)

    @property
    def where(self) -> str:
        """What the speaker is read from: ``"folder"``, ``"resolved path"`` (a regex with a
        ``/`` is searched in the file's absolute path, symbolic links followed: the path
        batch output records) or ``"file name"``."""
        if self.pattern is None:
            return "folder"
        return "resolved path" if "/" in self.spec else "file name"

    def group_of(self, path: str | Path) -> str | None:
        """The speaker of ``path`` (batch output's resolved absolute path): its folder
        (``/data/spkA/session1``, not the bare ``session1``, which two speakers' folders may
        share), or the regex's first capture group searched in the file name (in the whole
        path when the regex holds a ``/``); None when there is no folder, no match, or an
        empty group."""
        p = Path(path)
        if self.pattern is None:
            return p.parent.as_posix() if p.parent.name else None
        m = self.pattern.search(p.as_posix() if self.where == "resolved path" else p.name)
        return (m.group(1) or None) if m else None


def adapt_outcomes(outcomes: Sequence[Any], sp: SpeakerPrior) -> list[Any]:
    """``emovox predict`` outcomes (:class:`~emovox.serving.batch.FileOutcome`) with their
    answers adapted to ``sp`` (marked when the clip is one of the reference clips:
    :func:`mark_own_reference`); failures and ``no_speech`` answers unchanged."""
    out = []
    for o in outcomes:
        if o.prediction is not None:
            p = adapt_prediction(o.prediction, sp)
            try:
                p = mark_own_reference(p, file_sha256(o.path), sp) if sp.digests else p
            except OSError:  # gone since it was read: nothing to compare
                pass
            o = dataclasses.replace(o, prediction=p)
        out.append(o)
    return out


class AdaptMode(str, Enum):
    """``timeline --adapt``: ``none`` (default) or ``self`` (the recording's own windows)."""

    NONE = "none"
    SELF = "self"
