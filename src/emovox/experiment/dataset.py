"""The labelled clips of an experiment and their network/model inputs.

:func:`load_dataset` scans one or several corpora and applies the config's filters;
:func:`featurise` computes (or reads from the cache) every input of a model for a list of
files; :func:`gather` stacks the features of some clips into a batch.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emovox.config import Adapt, DataConfig, ExperimentConfig, Protocol
from emovox.corpora import (
    SPEAKER_PATTERN_FOLDER_ONLY,
    get_reader,
    reader_options,
    scan_corpus,
)
from emovox.corpora.base import Utterance, is_unknown_speaker
from emovox.corpora.detect import reader_hint
from emovox.errors import ConfigError
from emovox.features.cache import (
    AudioFrontEnd,
    Extraction,
    ProgressFn,
    Variant,
    content_hash,
    extract_files,
)
from emovox.labels import LABELS, emotion_index
from emovox.models import ModelSpec
from emovox.models.params import AdversaryOn, TrainConfig

log = logging.getLogger(__name__)

#: an emotion with fewer clips than this in the data is warned about
FEW_CLIPS = 5


@dataclass
class Dataset:
    """Labelled utterances ready for splitting.

    ``train_only[i]`` marks clips that may be trained on but never tested (e.g. RAVDESS
    song clips when only speech is evaluated). Byte-identical duplicates are dropped
    (first copy kept) so the same audio can never sit on both sides of a fold.
    """

    utts: list[Utterance]
    train_only: np.ndarray
    content_ids: list[str]
    report: str
    dropped_duplicates: list[str] = field(default_factory=list)
    #: labels outside the eight emotions and their clips, left out (the card says them)
    left_out: dict[str, int] = field(default_factory=dict)

    @property
    def y(self) -> np.ndarray:
        return np.array([emotion_index(u.emotion) for u in self.utts])

    @property
    def corpora(self) -> list[str]:
        """The corpus names of the clips, in order of first appearance."""
        return list(dict.fromkeys(u.corpus for u in self.utts))

    def labels_read_as(self, idx: np.ndarray) -> dict[str, str]:
        """The data's own label names among ``idx`` that are not the emotion they were
        read as (``{"anger": "angry"}``), for the card: a user's names were renamed in
        every answer without a trace (own-data QA, stop 39)."""
        pairs = {(self.utts[i].raw_label, self.utts[i].emotion.value) for i in idx
                 if self.utts[i].raw_label and self.utts[i].emotion is not None}
        return {raw: emo for raw, emo in sorted(pairs) if raw.strip().lower() != emo}

    def emotion_counts(self, idx: np.ndarray) -> dict[str, int]:
        """Clips of each of the eight emotions among ``idx`` (0 for one never seen)."""
        counts = np.bincount(self.y[idx], minlength=len(LABELS))
        return {e: int(n) for e, n in zip(LABELS, counts, strict=True)}


@dataclass
class Featurised:
    """Every input of a model for a list of files, in order.

    ``items[i]`` is an array for single-input models and a tuple of arrays for
    multi-input ones (None where ``errors`` has ``i``: a file that fails for any input
    is an error for the model).
    """

    items: list[Any]
    errors: dict[int, str]
    n_cached: int
    seconds: float

    def __iter__(self):  # unpacks as (items, errors, n_cached, seconds)
        return iter((self.items, self.errors, self.n_cached, self.seconds))


def speaker_filter(cfg: DataConfig, primary: str) -> dict[str, set[str]]:
    """``cfg.speakers`` as corpus name -> wanted corpus-local ids (leading zeros dropped);
    a bare id belongs to ``primary`` (the reader name of ``cfg.corpus``)."""
    wanted: dict[str, set[str]] = {}
    for entry in cfg.speakers:
        corpus, sep, local = entry.rpartition(":")
        corpus = get_reader(corpus).NAME if sep else primary
        wanted.setdefault(corpus, set()).add(local.lstrip("0") or "0")
    return wanted


def _natural(speaker: str) -> list[tuple[int, int | str]]:
    """Sort key: runs of digits by value, the rest by text (2 before 10, SF9 before SF10;
    numbers before letters)."""
    return [(0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"(\d+)", speaker) if p]


def _read_corpus(
    cfg: DataConfig, name: str, root: str, wanted: dict[str, set[str]]
) -> tuple[list[Utterance], list[bool], str, Counter[str]]:
    """The labelled clips of one corpus that pass the config's filters, their train-only
    flags, the scan summary and the labels left out (outside the eight emotions)."""
    scan = scan_corpus(name, Path(root), detect_duplicates=False,
                       **reader_options(name, cfg.speaker_pattern))
    if not scan.labelled:
        raws = sorted({u.raw_label for u in scan.unmapped})  # the labels read say why (45)
        read = (f"the labels read ({', '.join(raws[:8])}{' ...' if len(raws) > 8 else ''}) "
                f"name none of the emotions ({', '.join(LABELS)}, or a synonym such as "
                "anger, joy)" if raws else "")
        raise ConfigError(f"no labelled clips found under {root}: "
                          f"{read or reader_hint(root, name)}")
    keep = set(cfg.vocal_channels) | set(cfg.train_extra)
    ids = wanted.get(get_reader(name).NAME)
    if ids is not None:  # a typo would silently run another experiment (QA, stop 32)
        have = {(local := u.speaker.split(":", 1)[1]).lstrip("0") or "0": local
                for u in scan.labelled}
        if missing := sorted(ids - set(have), key=_natural):
            raise ConfigError(f"--speakers names {name} speaker(s) not in {root}: "
                              f"{', '.join(missing)} (it has "
                              f"{', '.join(sorted(have.values(), key=_natural))})")
    utts: list[Utterance] = []
    train_only: list[bool] = []
    channels = hasattr(get_reader(name), "VOCAL_CHANNELS")  # a manifest's own column of
    for u in scan.labelled:  # that name dropped rows silently (code review, stop 45)
        channel = u.meta.get("vocal_channel") if channels else None
        if channel is not None and channel not in keep:
            continue
        ids = wanted.get(u.corpus)  # "0" is speaker 0 (its clips were dropped: review, 45)
        if ids is not None and (u.speaker.split(":", 1)[1].lstrip("0") or "0") not in ids:
            continue
        utts.append(u)
        train_only.append(channel is not None and channel not in cfg.vocal_channels)
    if not utts:
        raise ConfigError(f"no labelled clips found under {root} ({name}) with these filters")
    if scan.unmapped:  # own-data QA, stop 33: left out without a word outside `scan`
        raws = Counter(u.raw_label for u in scan.unmapped)
        log.warning("%s: %d clip(s) with labels outside the eight emotions were left out: %s",
                    root, len(scan.unmapped), ", ".join(f"{r} ({n})" for r, n in
                                                        sorted(raws.items())))
    return utts, train_only, scan.summary(), Counter(u.raw_label for u in scan.unmapped)


def _conflict(a: Utterance, b: Utterance) -> str:
    """What two byte-identical clips are listed as differently (a labelling error to check:
    own-data QA, stop 33), or ``""``."""
    said = [f"{what} {x} and {y}" for what, x, y in (
        ("speakers", a.speaker, b.speaker), ("labels", a.emotion, b.emotion)) if x != y]
    return f" (listed as {'; '.join(said)}: check them)" if said else ""


def load_dataset(cfg: DataConfig) -> Dataset:
    """Scan every corpus of ``cfg`` (``cfg.corpus``/``cfg.root``, then ``cfg.corpora``) and
    apply the config's filters. Speaker ids carry their corpus (``emovo:f1``), so speakers
    of two corpora never merge; the same corpus twice is refused."""
    if not cfg.root:
        raise ConfigError("no data directory given (--data DIR)")
    sources = cfg.sources()
    names = [get_reader(name).NAME for name, _ in sources]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"corpus given twice: {', '.join(twice)} (one --data per corpus)")
    if cfg.speaker_pattern is not None and "folder" not in names:
        raise ConfigError(SPEAKER_PATTERN_FOLDER_ONLY)
    wanted = speaker_filter(cfg, names[0])
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        raise ConfigError(f"--speakers names corpora not in the data: {', '.join(unknown)}")
    utts: list[Utterance] = []
    train_only: list[bool] = []
    reports: list[str] = []
    left_out: Counter[str] = Counter()
    for name, root in sources:
        u, t, rep, out = _read_corpus(cfg, name, root, wanted)
        left_out += out
        utts += u
        train_only += t
        reports.append(rep)
    channels = {u.meta.get("vocal_channel") for u in utts}
    for c in sorted(set(cfg.train_extra) - channels):  # QA, stop 36: silently none
        log.warning("--train-extra %s: the data hold no %s clips (RAVDESS song is in "
                    "Audio_Song_Actors_01-24: give the folder that holds both)", c, c)
    hashes = [content_hash(u.path) for u in utts]
    seen: dict[str, int] = {}
    kept: list[int] = []
    dropped: list[str] = []
    for i, h in enumerate(hashes):
        if h in seen:
            dropped.append(f"{utts[i].path.name} == {utts[seen[h]].path.name}"
                           f"{_conflict(utts[i], utts[seen[h]])}")
        else:
            seen[h] = i
            kept.append(i)
    if dropped:
        log.warning("dropped %d byte-identical duplicate(s): %s", len(dropped), "; ".join(dropped))
    counts = Counter(utts[i].emotion.value for i in kept if utts[i].emotion is not None)
    if few := {e: n for e, n in sorted(counts.items()) if n < FEW_CLIPS}:  # QA, stop 33
        log.warning("few clips of %s: a model learns little of them (and a cross-validation "
                    "measures their recall on a handful of clips)",
                    ", ".join(f"{e} ({n})" for e, n in few.items()))
    emotions = {utts[i].emotion for i in kept if utts[i].emotion is not None}
    if len(emotions) == 1:  # research QA, stop 32: a network "trained" on one class
        raise ConfigError(f"the data hold one emotion only ({next(iter(emotions)).value}): "
                          "a classifier needs clips of at least two")
    return Dataset(
        [utts[i] for i in kept],
        np.array([train_only[i] for i in kept], bool),
        [hashes[i] for i in kept],
        "\n".join(reports),
        dropped,
        dict(sorted(left_out.items())),
    )


def adversary_speakers(model: Any, utts: list[Utterance], sources: np.ndarray,
                       unlabelled: tuple[Any, np.ndarray] | None = None) -> dict[str, Any]:
    """``{"speakers": (N,)}``, each training item's group the adversary names (its speaker or
    its corpus, by ``adversary_on``; an augmented copy's is its source clip's), for
    ``model.fit`` when it trains with an adversary (``-p adversary``,
    :mod:`emovox.training.adversary`); ``{}`` for any other model. ``unlabelled``:
    (every clip's features, indices into ``utts``) of clips the adversary also sees without
    their labels (an ``--adapt`` run's test clips), gathered and passed on with their groups
    only when there is an adversary."""
    tc = getattr(model, "train_cfg", None)
    if getattr(tc, "adversary", 0) <= 0:
        return {}
    def group(u: Utterance) -> str:
        return u.corpus if tc.adversary_on is AdversaryOn.CORPUS else u.speaker

    kw: dict[str, Any] = {"speakers": np.array([group(utts[i]) for i in sources])}
    if unlabelled is not None and len(unlabelled[1]):
        feats, idx = unlabelled
        kw["unlabelled"] = (gather(feats, idx), np.array([group(utts[i]) for i in idx]))
    return kw


def test_only_corpora(cfg: ExperimentConfig) -> tuple[str, ...]:
    """The reader names of ``cfg.data.test_only``; ConfigError for an unknown name or a
    protocol other than loco (checked before any feature is extracted)."""
    if not cfg.data.test_only:
        return ()
    if cfg.split.protocol is not Protocol.LOCO:
        raise ConfigError(f"--test-only needs --protocol loco, not {cfg.split.protocol.value}")
    try:
        return tuple(get_reader(n).NAME for n in cfg.data.test_only)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def check_adversary(cfg: ExperimentConfig, utts: list[Utterance],
                    test_only: tuple[str, ...] = ()) -> None:
    """ConfigError, before any feature is extracted, when the adversary (``-p adversary``)
    would name groups that are not there. ``adversary_on=speaker``: a corpus it reads whose
    clips have no speaker id (a folder corpus without ``--speaker-pattern``: all its clips
    were one speaker, silently; a code review, stop 45). ``adversary_on=corpus``: one corpus
    to name in some fold: ``train`` and every protocol but ``loco`` need two trained
    corpora; ``loco`` trains without the held-out one, and an ``--adapt`` run adds it
    (unlabelled); with ``--folds``, the folds chosen (a ``--test-only`` corpus's fold
    trains on every other; the trainer refused the others only after extraction: code
    review, stop 45)."""
    tc, _ = TrainConfig.split(cfg.model.params)
    if tc.adversary <= 0:
        return
    if tc.adversary_on is AdversaryOn.SPEAKER:
        read = set(test_only) if cfg.adapt is Adapt.NONE else set()
        unknown = sorted({u.corpus for u in utts if u.corpus not in read
                          and is_unknown_speaker(u.speaker)})
        if unknown:
            raise ConfigError(f"adversary_on=speaker names each clip's speaker, and clips of "
                              f"{', '.join(unknown)} have none: give --speaker-pattern, or "
                              "train without -p adversary")
        return
    trained = sorted({u.corpus for u in utts} - set(test_only))
    fewest = len(trained)
    if cfg.split.protocol is Protocol.LOCO:  # fold k holds out the k-th corpus to appear
        names = list(dict.fromkeys(u.corpus for u in utts))  # (emovox.splits)
        adds = cfg.adapt is not Adapt.NONE  # the held-out corpus, unlabelled
        fewest = min((len(set(trained) - {names[k]}) + adds
                      for k in (cfg.split.folds or range(len(names))) if k < len(names)),
                     default=fewest)
    if fewest < 2:
        raise ConfigError(f"adversary_on=corpus names each clip's corpus, and a fold here would "
                          f"train on one ({', '.join(trained) or 'none'}"
                          f"{'; loco holds one out' if cfg.split.protocol is Protocol.LOCO else ''}"
                          "): give more corpora (--data NAME=DIR), or --adapt corpus under loco")


def gather(feats: list[Any], idx: np.ndarray) -> Any:
    """Stack the features at ``idx`` into (N, ...) when shapes agree, else a list.

    For multi-input models each item is a tuple of arrays; the result is then a tuple
    with one gathered batch per input.
    """
    items = [feats[i] for i in idx]
    first = items[0] if items else (feats[0] if len(feats) else None)
    if isinstance(first, tuple):  # also for no item: one empty batch per input (QA, stop 36)
        return tuple(gather([it[k] for it in items], np.arange(len(items)))
                     for k in range(len(first)))
    if items and all(a.shape == items[0].shape for a in items):
        return np.stack(items)
    return items


def featurise(
    cfg: ExperimentConfig, spec: ModelSpec, paths: list[Path], content_ids: list[str],
    progress: ProgressFn | None = None, variant: Variant | None = None,
) -> Featurised:
    """Features of every input of ``spec`` for ``paths`` (see :class:`Featurised`; it
    unpacks as ``items, errors, n_cached, seconds``).

    Items are arrays for single-input models and tuples of arrays for multi-input ones;
    a file that fails for any input is an error for the model.
    """
    from emovox.artifact import preprocess_for_input

    pres = [preprocess_for_input(inp) for inp in spec.inputs]  # the one Preprocess per input
    parts: list[Extraction] = [
        extract_files(
            paths, pre.feature or "", pre.feature_params,
            frontend=AudioFrontEnd(sr=pre.sr, trim=pre.trim, top_db=pre.top_db),
            cache_dir=Path(cfg.cache_dir) if cfg.cache_dir else None, content_ids=content_ids,
            n_jobs=cfg.n_jobs, progress=progress, variant=variant,
        )
        for pre in pres
    ]
    errors: dict[int, str] = {}
    for part in parts:
        for i, msg in part.errors.items():
            errors.setdefault(i, msg)
    if paths and len(errors) == len(paths):  # was scikit-learn's "Expected 2D array" (stop 35)
        raise ConfigError(f"none of the {len(paths)} clips could be read (the first: "
                          f"{errors[min(errors)]})")
    if len(parts) == 1:
        items: list[Any] = list(parts[0].features)
    else:
        items = [tuple(p.features[i] for p in parts) for i in range(len(paths))]
    return Featurised(items, errors, min(p.n_cached for p in parts),
                      sum(p.seconds for p in parts))


__all__ = ["Dataset", "Featurised", "featurise", "gather", "load_dataset", "speaker_filter"]
