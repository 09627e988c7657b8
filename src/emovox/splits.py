"""Speaker-grouped folds, over one corpus or several. Every fold is checked: no speaker, no
clip and no audio content on two sides, every speaker id carrying its corpus (so two corpora's
speakers can never merge), and -- leave-one-corpus-out -- no clip of the held-out corpus on
the training side. Validation speakers come from the training side only.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from importlib import resources

import numpy as np
from sklearn.model_selection import train_test_split

from emovox.config import Protocol
from emovox.corpora.base import Utterance, is_unknown_speaker
from emovox.errors import ConfigError, LeakageError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fold:
    """Indices into the utterance list for one train/validation/test split."""

    index: int
    train: np.ndarray  # (n_train,) int
    val: np.ndarray  # (n_val,) int, training-side speakers held out for early stopping
    test: np.ndarray  # (n_test,) int
    test_speakers: tuple[str, ...]
    val_speakers: tuple[str, ...]
    speaker_independent: bool = True
    #: leave-one-corpus-out: the corpus of the test side, absent from train and validation
    held_out_corpus: str = ""
    #: corpora that are only ever tested (``test_only_corpora``), absent from train and val
    test_only_corpora: tuple[str, ...] = ()

    @property
    def fit(self) -> np.ndarray:
        """Everything the model may learn from: train + validation indices."""
        return np.concatenate([self.train, self.val])


def emobox_test_speakers() -> list[tuple[str, ...]]:
    """The six EmoBox RAVDESS folds: the four test actors of each, as ``ravdess:NN``."""
    text = resources.files("emovox.data").joinpath("ravdess_emobox_folds.json").read_text()
    return [tuple(f"ravdess:{a}" for a in fold) for fold in json.loads(text)["folds"]]


def speakers_of(utts: list[Utterance], idx: np.ndarray) -> set[str]:
    return {utts[i].speaker for i in idx}


def warn_unheard_test_classes(folds: list[Fold], y: np.ndarray, utts: list[Utterance],
                              labels: tuple[str, ...] | list[str], *,
                              fits_validation: bool = False) -> list[str]:
    """Warn (and return the warnings) for every fold whose test side holds a class its
    training side has no clip of: every such clip is scored as a miss (a class only one
    speaker had scored 0 in that speaker's fold without a word: own-data QA, stop 39).
    ``fits_validation``: the model learns from the validation clips too (classical models:
    a class only the validation speakers had was said unheard, re-check, stop 39)."""
    out = []
    for f in folds:
        learnt = f.fit if fits_validation else f.train
        for k in sorted(set(y[f.test].tolist()) - set(y[learnt].tolist())):
            idx = f.test[y[f.test] == k]
            out.append(f"fold {f.index}: {labels[k]} ({len(idx)} test clip(s), speaker(s) "
                       f"{', '.join(sorted(speakers_of(utts, idx)))}) has no training clip in "
                       "this fold: every one is scored as a miss")
            log.warning("%s", out[-1])
    return out


def check_fold(
    fold: Fold, utts: list[Utterance], content_ids: list[str] | None = None
) -> None:
    """Raise :class:`LeakageError` if anything is shared between the sides of ``fold``.

    Checks: an index on two sides; (speaker-independent folds) a speaker on two sides;
    (when ``content_ids`` is given, e.g. audio hashes) identical audio on two sides.
    """
    sides = {"train": fold.train, "val": fold.val, "test": fold.test}
    names = list(sides)
    for side, idx in sides.items():
        bad = sorted({utts[k].speaker for k in idx
                      if not utts[k].speaker.startswith(f"{utts[k].corpus}:")})
        if bad:
            raise LeakageError(f"fold {fold.index}: {side} speaker ids {bad[:3]} do not carry "
                               "their corpus (corpus:id); speakers of two corpora could merge")
    if fold.held_out_corpus:
        h = fold.held_out_corpus
        if any(utts[k].corpus != h for k in fold.test):
            raise LeakageError(f"fold {fold.index}: test side holds clips of corpora other "
                               f"than the held-out {h}")
        for side in ("train", "val"):
            if any(utts[k].corpus == h for k in sides[side]):
                raise LeakageError(f"fold {fold.index}: held-out corpus {h} is on the {side} side")
    for side in ("train", "val"):
        bad = sorted({utts[k].corpus for k in sides[side]} & set(fold.test_only_corpora))
        if bad:
            raise LeakageError(f"fold {fold.index}: test-only corpus {bad[0]} is on the "
                               f"{side} side")
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            both = np.intersect1d(sides[a], sides[b])
            if both.size:
                raise LeakageError(f"fold {fold.index}: {both.size} clips are in both {a} and {b}")
            if fold.speaker_independent:
                shared = speakers_of(utts, sides[a]) & speakers_of(utts, sides[b])
                if shared:
                    raise LeakageError(
                        f"fold {fold.index}: speakers {sorted(shared)} are in both {a} and {b}"
                    )
            if content_ids is not None:
                ca = {content_ids[k] for k in sides[a]}
                cb = {content_ids[k] for k in sides[b]}
                if ca & cb:
                    raise LeakageError(
                        f"fold {fold.index}: {len(ca & cb)} identical audio contents in both "
                        f"{a} and {b}"
                    )


#: why a run without RAVDESS cannot use the EmoBox folds, and what to use instead
EMOBOX_NEEDS_RAVDESS = ("the emobox protocol needs RAVDESS actors (ravdess:01..24); for other "
                        "data use --protocol loso (leave one speaker out), or loco with "
                        "several corpora")


class TooFewForValidation(ConfigError):
    """A fold's training side has too few speakers to hold out the validation speakers
    asked for (a model that trains on them anyway can do without: own-data QA, stop 33)."""


def pick_val_speakers(
    speakers: list[str], utts: list[Utterance], n: int, rng: np.random.Generator,
    *, where: str = "",
) -> list[str]:
    """``n`` validation speakers, balanced by gender where the corpus knows it and, when
    ``speakers`` span several corpora, taken from the corpora in turn (never a corpus's
    last speaker). One corpus draws exactly as before corpora were mixed. ``where``: whose
    training speakers they are, for the message (``" of fold 2"``; ``train`` has no folds:
    review, stop 52)."""
    if n <= 0:
        return []
    if n >= len(speakers):
        raise TooFewForValidation(
            f"cannot hold out {n} validation speakers from {len(speakers)} training "
            f"speaker{'' if len(speakers) == 1 else 's'}{where}: give --val-speakers "
            f"{max(0, len(speakers) - 1)} or fewer (0: train on every training speaker for "
            "the model's fixed epochs)")
    gender = {u.speaker: u.gender.value for u in utts}
    by_corpus: dict[str, list[str]] = {}
    for s in sorted(speakers):
        by_corpus.setdefault(s.split(":", 1)[0], []).append(s)
    orders = [
        _gender_order(spk, gender, rng)[: len(spk) - (len(by_corpus) > 1)]
        for _, spk in sorted(by_corpus.items())
    ]
    out: list[str] = []
    while len(out) < n and any(orders):
        for order in orders:
            if order and len(out) < n:
                out.append(order.pop(0))
    if len(out) < n:
        raise TooFewForValidation(f"cannot hold out {n} validation speakers and keep every "
                                  "training corpus on the training side")
    return out


def _gender_order(
    speakers: list[str], gender: dict[str, str], rng: np.random.Generator
) -> list[str]:
    """``speakers`` in the order validation takes them: genders in turn, random within."""
    groups: dict[str, list[str]] = {}
    for s in speakers:
        groups.setdefault(gender.get(s, "unknown"), []).append(s)
    pools = [list(rng.permutation(g)) for _, g in sorted(groups.items())]
    out: list[str] = []
    while any(pools):
        for pool in pools:
            if pool:
                out.append(str(pool.pop()))
    return out


def _test_sets(
    protocol: Protocol, speakers: np.ndarray, corpora: np.ndarray
) -> list[tuple[int, tuple[str, ...], str]]:
    """``(fold index, test speakers, held-out corpus or "")`` of each fold of a
    speaker-independent ``protocol``. An EmoBox fold keeps its number when folds without a
    speaker in the data are left out (``--speakers 01,02,11`` ran EmoBox folds 0 and 4 as
    "0" and "1": README QA, stop 38)."""
    present = set(speakers)
    if protocol is Protocol.EMOBOX:
        test_sets = emobox_test_speakers()
        unknown = {s for ts in test_sets for s in ts} - present
        if unknown == {s for ts in test_sets for s in ts}:
            raise ConfigError(EMOBOX_NEEDS_RAVDESS)
        kept = [tuple(s for s in ts if s in present) for ts in test_sets]
        return [(k, ts, "") for k, ts in enumerate(kept) if ts]
    if protocol is Protocol.LOSO:
        return [(k, (s,), "") for k, s in enumerate(sorted(present))]
    if protocol is Protocol.LOCO:
        names = list(dict.fromkeys(corpora.tolist()))
        if len(names) < 2:
            raise ConfigError(f"the loco protocol needs at least two corpora, got {names}")
        return [(k, tuple(sorted(set(speakers[corpora == c]))), c)
                for k, c in enumerate(names)]
    raise ConfigError(f"unknown protocol {protocol}")  # pragma: no cover - Enum is exhaustive


def check_speakers(utts: list[Utterance], protocol: Protocol) -> None:
    """ConfigError, before any feature is extracted, when ``loso`` cannot hold a speaker
    out: fewer than two speakers, e.g. a folder tree without ``--speaker-pattern`` whose
    speakers are all unknown (it was refused only after extraction, as "fold 0 (held out:
    folder:unknown) has no training speaker left": QA, stop 37)."""
    if protocol is not Protocol.LOSO:
        return
    speakers = {u.speaker for u in utts}
    if len(speakers) >= 2:
        return
    if all(is_unknown_speaker(s) for s in speakers):
        raise ConfigError("the loso protocol holds out one speaker at a time, and the data's "
                          "speakers are unknown: name them with --speaker-pattern (a folder "
                          "tree) or a speaker column (a CSV manifest)")
    raise ConfigError(f"the loso protocol needs two speakers or more; the data hold "
                      f"{len(speakers)}")


def _check_test_only(
    utts: list[Utterance], protocol: Protocol, test_only: tuple[str, ...]
) -> None:
    """ConfigError unless every test-only corpus is in ``utts`` and the protocol is loco."""
    if not test_only:
        return
    if protocol is not Protocol.LOCO:
        raise ConfigError(f"test-only corpora need --protocol loco, not {protocol.value}")
    present = list(dict.fromkeys(u.corpus for u in utts))
    missing = sorted(set(test_only) - set(present))
    if missing:
        raise ConfigError(f"test-only corpora {', '.join(missing)} are not in the data "
                          f"(corpora: {', '.join(present)})")


def _random_fold(utts: list[Utterance], train_only: np.ndarray, seed: int,
                 test_size: float, validate: bool) -> Fold:
    """The random protocol's one fold: a stratified ``test_size`` of the testable clips
    tested, 10 % of the other testable clips validating when ``validate``, and every other
    clip training. Training-only clips (``--train-extra``) never validate: they were drawn
    with the rest, so validation was partly a channel never tested (research audit, stop
    51; without training-only clips the draw is the one before)."""
    y = np.array([u.emotion.value if u.emotion else "" for u in utts])
    all_idx = np.arange(len(utts))
    testable = all_idx[~train_only]
    tr, te = train_test_split(testable, test_size=test_size, stratify=y[testable],
                              random_state=seed)
    va = np.array([], int)
    if validate:
        tr, va = train_test_split(tr, test_size=0.1, stratify=y[tr], random_state=seed)
    tr = np.concatenate([tr, all_idx[train_only]])
    return Fold(0, np.sort(tr), np.sort(va), np.sort(te), (), (), False)


def make_folds(
    utts: list[Utterance],
    protocol: Protocol,
    *,
    seed: int = 0,
    n_val_speakers: int = 2,
    test_size: float = 0.2,
    train_only: np.ndarray | None = None,
    content_ids: list[str] | None = None,
    test_only_corpora: tuple[str, ...] = (),
) -> list[Fold]:
    """Build and check the folds of ``protocol`` over ``utts`` (one corpus or several).

    ``emobox``: the six RAVDESS test folds; clips of other corpora are always on the
    training side, validation speakers are RAVDESS training actors (as without them).
    ``loco``: fold k tests every clip of corpus k (in order of first appearance) and trains
    on the others; validation speakers come from the training corpora, in turn.

    ``train_only`` (bool mask) marks clips that may be used for training but never
    tested (e.g. RAVDESS song clips added to speech training). Their speakers still
    follow the fold: a test speaker's training-only clips are dropped from that fold.

    ``random``: a stratified ``test_size`` of the clips is tested; 10 % of the rest
    validates (any ``n_val_speakers`` > 0; with 0 none does and every other clip trains).

    ``test_only_corpora`` (``loco`` only) are tested when held out and never trained or
    validated on: the loco figures of a recipe that leaves those corpora out of training.
    """
    n = len(utts)
    _check_test_only(utts, protocol, test_only_corpora)
    train_only = np.zeros(n, bool) if train_only is None else np.asarray(train_only, bool)
    rng = np.random.default_rng(seed)
    speakers = np.array([u.speaker for u in utts])
    all_idx = np.arange(n)
    folds: list[Fold] = []

    if protocol is Protocol.RANDOM:
        folds.append(_random_fold(utts, train_only, seed, test_size, n_val_speakers > 0))
    else:
        corpora = np.array([u.corpus for u in utts])
        for k, ts, held_out in _test_sets(protocol, speakers, corpora):
            is_test_spk = np.isin(speakers, ts)
            test = all_idx[is_test_spk & ~train_only]
            never_train = np.isin(corpora, test_only_corpora)
            train_spk = sorted(set(speakers[~is_test_spk & ~never_train]))
            if not train_spk and not test_only_corpora:  # research QA, stop 32
                what = held_out or ", ".join(map(str, ts))
                n_spk = len(set(speakers))
                why = ("the data hold 1 speaker; speaker-independent folds need at least two"
                       if n_spk == 1 else f"all {n_spk} speakers of the data are on its test "
                       "side; add speakers of the other folds")
                raise ConfigError(f"fold {k} (held out: {what}) has no training speaker "
                                  f"left: {why}")
            if not train_spk:
                raise ConfigError(f"fold {k} (held out: {held_out}) has no training corpus left "
                                  "once the test-only corpora are set aside")
            if protocol is Protocol.EMOBOX:  # validate on the tested corpus, as without extras
                train_spk = [s for s in train_spk if s.startswith("ravdess:")]
            val_spk = pick_val_speakers(train_spk, utts, n_val_speakers, rng,
                                        where=f" of fold {k}")
            is_val = np.isin(speakers, val_spk)
            val = all_idx[is_val & ~train_only]
            train = all_idx[~is_test_spk & ~is_val & ~never_train]
            folds.append(Fold(k, train, val, test, tuple(ts), tuple(val_spk), True, held_out,
                              tuple(test_only_corpora)))
    for f in [f for f in folds if not len(f.test)]:  # `--channels song --train-extra
        log.warning("fold %d (%s) has no clip to test: left out", f.index,  # speech`: RAVDESS
                    ", ".join(f.test_speakers))  # actor 18 sang nothing; its loso fold failed
    folds = [f for f in folds if len(f.test)]  # after every fold before it (code review, 47;
    for f in folds:  # left out once made, so the others keep their validation speakers)
        check_fold(f, utts, content_ids)
        log.info(
            "fold %d: %d train, %d val (%s), %d test (%s)",
            f.index, len(f.train), len(f.val), ",".join(f.val_speakers), len(f.test),
            ",".join(f.test_speakers) or "random clips",
        )
    return folds
