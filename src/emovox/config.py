"""One typed configuration tree, saved with every run and every artifact.

Everything an experiment does is decided here; ``to_dict``/``from_dict`` round-trip
through plain JSON/YAML types so a run directory or an artifact explains itself.
"""

from __future__ import annotations

import dataclasses
import os
import stat
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import yaml

from emovox.augment import AugmentConfig
from emovox.errors import ConfigError


class Protocol(str, Enum):
    """How speakers are split between training and test."""

    EMOBOX = "emobox"  #: the six fixed speaker-independent RAVDESS folds (4 test actors each)
    LOSO = "loso"  #: leave one speaker out
    RANDOM = "random"  #: stratified 80/20 clip split; speaker-DEPENDENT, for seed comparison only
    LOCO = "loco"  #: leave one corpus out: train on the other corpora, test on the held-out one

    @property
    def speaker_independent(self) -> bool:
        return self is not Protocol.RANDOM


class Adapt(str, Enum):
    """Which unlabelled statistics normalise the features of an evaluation."""

    NONE = "none"  #: features as extracted (the speaker-independent headline)
    SPEAKER = "speaker"  #: each speaker's features z-scored with that speaker's own statistics
    CORPUS = "corpus"  #: each corpus's features z-scored with that corpus's own statistics

    @property
    def label(self) -> str:
        """What a results row must say about a run with this mode ("" for none)."""
        if self is Adapt.SPEAKER:
            return "speaker-adapted: uses unlabelled test-speaker audio"
        if self is Adapt.CORPUS:
            return "corpus-adapted: uses unlabelled audio of the test corpus"
        return ""


#: RAVDESS's vocal channels (the only corpus with two); other corpora are speech
VOCAL_CHANNELS: tuple[str, ...] = ("speech", "song")


def check_speaker_pattern(pattern: str | None) -> None:
    """ConfigError when ``pattern`` (``--speaker-pattern``) is no regular expression or
    cannot find a speaker (empty)."""
    if pattern is None:
        return
    if not pattern:
        raise ConfigError("--speaker-pattern is empty: it would find no speaker")
    from emovox.corpora.folder import compile_speaker_pattern  # the reader's own check

    try:
        compile_speaker_pattern(pattern)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def folder_tail(path: str) -> str:
    """A data folder named by its last two parts, as two runs of the same corpus name it
    wherever it is mounted (``../shared/data/ravdess`` and ``/work/shared/data/ravdess``:
    ``data/ravdess``): runs started from other folders or machines compare by it."""
    return "/".join(Path(path).parts[-2:])


@dataclass
class DataConfig:
    corpus: str = "ravdess"
    root: str = ""
    #: RAVDESS vocal channels whose clips are *tested*; training may add ``train_extra``.
    vocal_channels: tuple[str, ...] = ("speech",)
    #: extra vocal channels used for training only (training-side speakers only), e.g. ("song",)
    train_extra: tuple[str, ...] = ()
    #: restrict to these speakers: ``corpus:id`` (``emovo:f1``), or a bare id (``"01"``) of
    #: ``corpus``; a corpus no entry names is kept whole; empty = all
    speakers: tuple[str, ...] = ()
    #: further corpora read beside ``corpus``/``root``, each ``"NAME=DIR"`` (``"emovo=..."``)
    corpora: tuple[str, ...] = ()
    #: oversample the training clips of each fold so that every corpus contributes as many
    #: clips as the largest one (training side only; validation and test are never touched)
    balance_corpora: bool = False
    #: corpora (reader names) that are tested when held out and never trained on
    #: (``--protocol loco`` only): the loco figures of a recipe that leaves them out
    test_only: tuple[str, ...] = ()
    #: the ``folder`` reader's speaker regex, searched in each file name (its ``speaker``
    #: group, else group 1, else the match): own data in one folder per emotion can then be
    #: split by speaker (own-data QA, stop 33); None: speakers unknown
    speaker_pattern: str | None = None

    def __post_init__(self) -> None:
        check_speaker_pattern(self.speaker_pattern)
        for what, values in (("--channels", self.vocal_channels),
                             ("--train-extra", self.train_extra)):
            if bad := sorted(set(values) - set(VOCAL_CHANNELS)):  # research QA, stop 32
                raise ConfigError(f"{what}: unknown vocal channel(s) {', '.join(bad)} "
                                  f"(known: {', '.join(VOCAL_CHANNELS)})")

    def sources(self) -> list[tuple[str, str]]:
        """``(reader name, root)`` of every corpus: ``corpus``/``root`` first, then
        :attr:`corpora`. ConfigError for an entry that is not ``NAME=DIR``."""
        out = [(self.corpus, self.root)]
        for entry in self.corpora:
            name, sep, root = str(entry).partition("=")
            if not sep or not name.strip() or not root.strip():
                raise ConfigError(f"corpus entry {entry!r} is not NAME=DIR")
            out.append((name.strip(), root.strip()))
        return out


@dataclass
class FeatureConfig:
    name: str = "egemaps"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class SplitConfig:
    protocol: Protocol = Protocol.EMOBOX
    #: run only these fold indices (0-based); empty = all folds
    folds: tuple[int, ...] = ()
    #: validation speakers drawn from each fold's training side (never from its test side)
    n_val_speakers: int = 2
    test_size: float = 0.2  # random protocol only
    #: the split's own seed (the random protocol's clips, the validation speakers drawn);
    #: None = the experiment's ``seed``. Fixing it while ``seed`` varies gives seed
    #: ensembles over the same test clips (``emovox fuse`` needs them).
    seed: int | None = None


@dataclass
class ModelConfig:
    name: str = "egemaps_logreg"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class ExperimentConfig:
    data: DataConfig = field(default_factory=DataConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    seed: int = 0
    cache_dir: str = ""
    n_jobs: int = 2
    #: save each fold's trained model (safetensors/skops) in the run directory
    save_models: bool = False
    #: speaker adaptation of the features (``--adapt``): statistics of each speaker's own
    #: clips, no labels (see :mod:`emovox.experiment.adapt`); reported in separate rows
    adapt: Adapt = Adapt.NONE
    #: knowledge distillation (``--teacher``): run directories whose fold ``k`` models
    #: (saved with ``--save-models``; or a merged run whose parts hold them) give the soft
    #: targets of fold ``k``'s training clips; see :mod:`emovox.experiment.distil`
    teachers: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ExperimentConfig:
        try:
            return cls(
                data=DataConfig(**_tuples(d.get("data", {}))),
                split=SplitConfig(
                    **{
                        **_tuples(d.get("split", {})),
                        "protocol": Protocol(d.get("split", {}).get("protocol", "emobox")),
                    }
                ),
                model=ModelConfig(**d.get("model", {})),
                augment=AugmentConfig(**_tuples(d.get("augment", {}))),
                save_models=bool(d.get("save_models", False)),
                seed=int(d.get("seed", 0)),
                cache_dir=str(d.get("cache_dir", "")),
                n_jobs=int(d.get("n_jobs", 2)),
                adapt=Adapt(d.get("adapt", Adapt.NONE.value)),
                teachers=tuple(str(t) for t in d.get("teachers") or ()),
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"invalid experiment config: {exc}") from exc

    def save_yaml(self, path: Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def load_yaml(cls, path: Path) -> ExperimentConfig:
        """The config saved at ``path`` (:func:`read_run_yaml`: ConfigError when it is
        too big or holds aliases)."""
        return cls.from_dict(read_run_yaml(path) or {})


#: the most bytes a run's ``config.yaml`` may hold: emovox writes about 1 KB (a long
#: speaker list some KB); a bigger one is no config of ours (code review, stop 48)
CONFIG_MAX_BYTES = 1 << 20


def read_capped(path: str | Path, limit: int = CONFIG_MAX_BYTES) -> str:
    """The UTF-8 text of the regular file ``path`` (OSError when it cannot be read,
    UnicodeDecodeError when it is no UTF-8); ConfigError naming it when it holds more than
    ``limit`` bytes, or is no regular file (a FIFO blocked the reader). What a run folder
    holds is read whole by ``emovox report``, ``calibrate`` and the ``--out`` check: a file
    there of any size was (code review, stop 48)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ConfigError(f"{path}: not a regular file")
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise ConfigError(f"{path}: larger than {limit // 1024} KiB, more than emovox writes "
                          "there; not read")
    return data.decode("utf-8")


class _NoAliasLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` refusing aliases (``*name``): each repeats a whole subtree, so a
    file of a few hundred bytes could unfold into gigabytes (479 bytes of nested aliases
    took 46 MiB and 2.7 s, two levels more 4.6 GB: code review, stop 48). emovox writes
    none (``yaml.safe_dump`` of fresh lists and dicts)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise ConfigError(f"{self.name}: line {event.start_mark.line + 1}: a YAML alias "
                              f"(*{event.anchor}), which emovox never writes; not read")
        return super().compose_node(parent, index)


def safe_yaml(text: str, name: str | Path) -> Any:
    """``yaml.safe_load`` of ``text`` (read from ``name``) without aliases: ConfigError
    naming ``name`` for an alias or nesting too deep; yaml.YAMLError for other faults."""
    loader = _NoAliasLoader(text)
    loader.name = str(name)  # what its marks and errors name
    try:
        return loader.get_single_data()
    except RecursionError:
        raise ConfigError(f"{name}: nested too deep; not read") from None
    finally:
        loader.dispose()


def read_run_yaml(path: str | Path) -> Any:
    """A run folder's YAML file (``config.yaml``) at most :data:`CONFIG_MAX_BYTES`, without
    aliases (:func:`read_capped`, :func:`safe_yaml`)."""
    return safe_yaml(read_capped(path), path)


def _plain(x: Any) -> Any:
    """Enums to values, tuples to lists, Paths to str: YAML/JSON-safe."""
    if isinstance(x, Enum):
        return x.value
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    if isinstance(x, Path):
        return str(x)
    return x


def _tuples(d: dict[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
