"""Speaker (or corpus) adaptation of an experiment's features (``emovox evaluate --adapt
speaker|corpus``).

Every speaker's features are normalised with that speaker's own statistics
(:mod:`emovox.features.speaker_norm`: z-score per dimension for utterance vectors, per band
over all the speaker's frames for sequences), computed from that speaker's clips **without
labels**: the functions here never receive a label.

Why this never carries information across a split:

- a speaker's statistics come from that speaker's clips only, so a clip's normalised features
  depend on its own audio and the audio of its speaker's other clips, nothing else;
- every fold of a speaker-independent protocol puts each speaker wholly on one side
  (:func:`check_speaker_disjoint` checks it again for each fold; a speaker-dependent protocol
  is refused), so test speakers' statistics come from their unlabelled test clips only, and
  training/validation speakers' from their own clips;
- augmented copies of training clips are normalised with their speaker's statistics from the
  original clips (:meth:`SpeakerAdapter.apply`), never statistics of their own.

What the adapted figure assumes: at test time several clips of the same speaker are
available, unlabelled. That is a product feature (``predict --reference``) and not the
speaker-independent setting, so adapted runs are reported in their own rows.

Which clips feed a speaker's statistics: its clips that are tested in this experiment (the
evaluated vocal channels); a speaker with only training-only clips (e.g. RAVDESS song) uses
those.

``--adapt corpus`` is the same with the corpus as the group: every corpus's features are
z-scored with the statistics of all its clips (the classic remedy of cross-corpus emotion
recognition). It needs ``--protocol loco``, where every fold puts each corpus wholly on one
side, so the held-out corpus's statistics come from its unlabelled test clips only; it
assumes a batch of unlabelled recordings from the new source (a corpus, a call centre's
line), not one clip, and is reported apart like speaker adaptation.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from emovox.config import Adapt, ExperimentConfig, Protocol
from emovox.corpora.base import Utterance
from emovox.errors import ConfigError
from emovox.features.speaker_norm import SpeakerStats, normalise, stats_for
from emovox.splits import Fold

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SpeakerAdapter:
    """Per-speaker statistics of every input stream of a model.

    ``stats[speaker][k]`` normalises input ``k`` (items are arrays for single-input models,
    tuples of arrays for multi-input ones).
    """

    stats: dict[str, tuple[SpeakerStats, ...]]
    #: what a group is: a speaker (``Adapt.SPEAKER``) or a corpus (``Adapt.CORPUS``)
    mode: Adapt = Adapt.SPEAKER

    def group(self, utt: Utterance) -> str:
        """The group whose statistics normalise ``utt``: its speaker or its corpus."""
        return group_of(utt, self.mode)

    @property
    def n_centred_only(self) -> int:
        """Speakers whose vector statistics are a mean only (one clip)."""
        return sum(any(s.centred_only for s in st) for st in self.stats.values())

    def apply(self, item: Any, speaker: str) -> Any:
        """``item`` (array or tuple of arrays) normalised with ``speaker``'s statistics.

        Raises:
            KeyError: no statistics for ``speaker``.
        """
        st = self.stats[speaker]
        if isinstance(item, tuple):
            return tuple(normalise(x, s) for x, s in zip(item, st, strict=True))
        return normalise(item, st[0])

    def apply_all(self, items: Sequence[Any], speakers: Sequence[str]) -> list[Any]:
        """:meth:`apply` to every item with its speaker."""
        return [self.apply(x, s) for x, s in zip(items, speakers, strict=True)]

    def summary(self) -> dict[str, Any]:
        """What metrics.json records about the adaptation."""
        if self.mode is Adapt.CORPUS:
            return {"mode": self.mode.value, "n_corpora": len(self.stats),
                    "clips_per_corpus": {c: st[0].n_clips for c, st in sorted(self.stats.items())}}
        return {"mode": self.mode.value, "n_speakers": len(self.stats),
                "n_centred_only": self.n_centred_only,
                "clips_per_speaker": {s: st[0].n_clips for s, st in sorted(self.stats.items())}}


def group_of(utt: Utterance, mode: Adapt) -> str:
    """``utt``'s speaker (``Adapt.SPEAKER``) or corpus (``Adapt.CORPUS``)."""
    return utt.corpus if mode is Adapt.CORPUS else utt.speaker


def statistics_clips(speakers: Sequence[str], train_only: np.ndarray) -> np.ndarray:
    """Bool mask of the clips whose audio feeds their speaker's statistics: the tested
    (not training-only) clips of each speaker, or all its clips if it has none."""
    speakers = np.asarray(speakers)
    use = ~np.asarray(train_only, bool)
    for spk in set(speakers[~use]) - set(speakers[use]):
        use |= speakers == spk
    return use


def fit_speaker_adapter(items: Sequence[Any], speakers: Sequence[str],
                        use: np.ndarray | None = None,
                        mode: Adapt = Adapt.SPEAKER) -> SpeakerAdapter:
    """Statistics of each speaker from its own items (where ``use`` is True, default all).

    Args:
        items: one per clip: an array ``(D,)`` / ``(T, F)`` or a tuple of them.
        speakers: the group of each item: its speaker id (corpus-qualified, e.g.
            ``ravdess:01``), or its corpus name with ``mode=Adapt.CORPUS``.
        use: ``(N,)`` bool mask of the items that feed statistics.
        mode: what the groups are (recorded by the adapter).

    No labels are taken: nothing about a clip's emotion can reach any statistic.
    """
    if len(items) != len(speakers):
        raise ValueError(f"{len(items)} items but {len(speakers)} speakers")
    use = np.ones(len(items), bool) if use is None else np.asarray(use, bool)
    by_speaker: dict[str, list[Any]] = {}
    for item, spk, u in zip(items, speakers, use, strict=True):
        if u:
            by_speaker.setdefault(spk, []).append(item)
    stats: dict[str, tuple[SpeakerStats, ...]] = {}
    for spk, its in by_speaker.items():
        streams = list(zip(*its, strict=True)) if isinstance(its[0], tuple) else [its]
        stats[spk] = tuple(stats_for(list(s)) for s in streams)
    return SpeakerAdapter(stats, mode)


def check_speaker_disjoint(fold: Fold, utts: Sequence[Utterance],
                           mode: Adapt = Adapt.SPEAKER) -> None:
    """Refuse a fold where a test speaker (or corpus, with ``mode=Adapt.CORPUS``) also
    trains or validates: its statistics (from its test clips) would then reach the
    training side.

    Raises:
        ConfigError: a speaker (corpus) on both sides of ``fold``.
    """
    test = {group_of(utts[i], mode) for i in fold.test}
    both = sorted(test & {group_of(utts[i], mode) for i in fold.fit})
    if both:
        raise ConfigError(f"--adapt {mode.value} needs {mode.value}-disjoint folds; fold "
                          f"{fold.index} has {', '.join(both)} on both sides")


def check_adapt_config(cfg: ExperimentConfig, stream_params: Sequence[dict[str, Any]]) -> None:
    """Refuse speaker adaptation under a speaker-dependent protocol; warn where a stream is
    normalised per utterance already (``utt_norm=cmvn``: per-speaker statistics then change
    little, see the README)."""
    if cfg.adapt is Adapt.NONE:
        return
    if cfg.adapt is Adapt.CORPUS and cfg.split.protocol is not Protocol.LOCO:
        raise ConfigError(f"--adapt corpus needs --protocol loco, not "
                          f"{cfg.split.protocol.value}: a corpus's statistics would mix its "
                          "training and test clips")
    if not cfg.split.protocol.speaker_independent:
        raise ConfigError(f"--adapt {cfg.adapt.value} needs a speaker-independent protocol, "
                          f"not {cfg.split.protocol.value}: a speaker's statistics would mix "
                          "its training and test clips")
    if any(p.get("utt_norm") == "cmvn" for p in stream_params):
        log.warning("--adapt %s on a feature normalised per utterance (utt_norm=cmvn): little "
                    "left to adapt; use the plain model (crnn or ecapa: raw log-mel)",
                    cfg.adapt.value)


__all__ = [
    "SpeakerAdapter", "check_adapt_config", "check_speaker_disjoint", "fit_speaker_adapter",
    "group_of", "statistics_clips",
]
