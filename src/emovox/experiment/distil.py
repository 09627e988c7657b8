"""Knowledge distillation inside cross-validation (``evaluate --teacher RUN``).

In fold ``k`` the teachers are fold ``k``'s own models of finished runs (``evaluate
--save-models``: ``RUN/models/fold{k}``; for a run made by ``emovox merge``, the part run of
``metrics.json["merged_runs"]`` that holds fold ``k``). A teacher must have been trained
without this fold's test speakers, so a teacher run is refused (:class:`ConfigError`) when

* its protocol, seed, validation-speaker count, speaker adaptation or data (corpora, roots,
  channels, speaker filter, test-only corpora) differ from this run's (checked before any
  feature is extracted), or
* it lacks fold ``k``'s model, or its fold ``k`` had other test (or validation) speakers, or
  it was run on another number of clips per corpus, or the fold's ``model.json`` names
  another model, data, split or fold (checked after the folds are made, before any
  training).

The soft target of a training clip is the mean of the teachers' probabilities (each
restricted to the classes of the clip's corpus, as test clips are scored); each teacher reads
its own input features (the student's when the inputs are the same, else extracted through
the feature cache). Augmented variants and corpus-balancing copies take their source clip's
target. Validation and test clips never get a teacher output; early stopping stays on
validation UA with the true labels. The loss is :func:`emovox.training.trainer.distil_loss`
(``-p distil_alpha``, ``-p distil_temperature``). Saved models load through
:func:`emovox.training.trainer.load_trained` (safetensors + JSON, or skops with the type
allow-list): nothing in a teacher's folder runs code.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from emovox.config import Adapt, ExperimentConfig, folder_tail, read_capped, read_run_yaml
from emovox.corpora import get_reader
from emovox.errors import ConfigError
from emovox.experiment.dataset import featurise, gather
from emovox.experiment.multicorpus import restrict_to_corpus
from emovox.experiment.rundir import METRICS_MAX_BYTES, RunDirError, merged_parts, read_metrics
from emovox.labels import LABELS
from emovox.metrics import compute_metrics
from emovox.models import Family, ModelSpec, get_model_spec

if TYPE_CHECKING:
    from emovox.experiment.runner import PreparedData
    from emovox.splits import Fold

log = logging.getLogger(__name__)

MODEL_JSON = "model.json"


@dataclass
class TeacherRun:
    """One ``--teacher`` run directory: its config, its metrics and its model's spec."""

    path: Path
    config: ExperimentConfig
    metrics: dict[str, Any]
    spec: ModelSpec

    @property
    def name(self) -> str:
        return f"{self.config.model.name} ({self.path})"

    def fold_record(self, k: int) -> dict[str, Any]:
        for f in self.metrics.get("folds") or []:
            if f.get("index") == k:
                return f
        raise ConfigError(f"teacher {self.path} has no fold {k} (its folds: "
                          f"{sorted(f.get('index') for f in self.metrics.get('folds') or [])})")

    def model_dir(self, k: int) -> Path:
        """The folder of fold ``k``'s saved model: ``models/fold{k}`` here or in the part
        (``merged_runs``) that ran fold ``k``; ConfigError when none holds it."""
        own = self.path / "models" / f"fold{k}"
        if (own / MODEL_JSON).is_file():
            return own
        for part in self.parts():
            m = _read_json(part / "metrics.json", "teacher part")
            if any(f.get("index") == k for f in m.get("folds") or []):
                found = part / "models" / f"fold{k}"
                if (found / MODEL_JSON).is_file():
                    return found
                raise ConfigError(f"teacher part {part} ran fold {k} but saved no model "
                                  f"({found} is missing): re-run it with --save-models")
        raise ConfigError(f"teacher {self.path} has no saved model of fold {k} ({own} is "
                          "missing): run the teacher with --save-models")

    def parts(self) -> list[Path]:
        """The part runs of a merged run (:func:`~emovox.experiment.rundir.merged_parts`,
        which ``rescore`` reads too)."""
        try:
            return merged_parts(self.path, self.metrics)
        except RunDirError as exc:
            raise ConfigError(f"teacher {exc}") from None


def _check_fold_model(run: TeacherRun, k: int) -> None:
    """ConfigError unless the model in fold ``k``'s folder says (its ``model.json``) that it
    was trained by ``run``'s model on ``run``'s data and split, in fold ``k``."""
    from emovox.artifact import read_meta

    path = run.model_dir(k)
    mcfg = ExperimentConfig.from_dict(read_meta(path).experiment_config or {})
    if (_data_view(mcfg) != _data_view(run.config) or mcfg.model.name != run.config.model.name
            or (mcfg.split.folds and k not in mcfg.split.folds)):
        raise ConfigError(f"teacher model {path} was not trained in fold {k} of {run.path} "
                          f"(its model.json: {mcfg.model.name}, folds "
                          f"{list(mcfg.split.folds) or 'all'}, other data or split)")


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        return json.loads(read_capped(path, METRICS_MAX_BYTES))  # bounded (code review, 48)
    except (OSError, ValueError, RecursionError) as exc:
        raise ConfigError(f"{what} {path.parent}: cannot read {path.name} ({exc})") from None


def _data_view(cfg: ExperimentConfig) -> dict[str, Any]:
    """What must be equal between a teacher run and this run: the split and the clips."""
    d = cfg.data
    try:
        sources = [(get_reader(n).NAME, folder_tail(r)) for n, r in d.sources()]  # as merge:
        # a teacher's relative roots were resolved against the student's folder (review, 47)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return {
        "protocol": cfg.split.protocol.value, "seed": cfg.seed,
        # the random protocol's clips come from these (its folds name no test speakers, so
        # the per-fold speaker check below cannot see a teacher split otherwise; audit,
        # stop 31: a teacher on split seed 1 had trained on 22 of 24 of the student's tests)
        "split seed": cfg.seed if cfg.split.seed is None else cfg.split.seed,
        "test size": cfg.split.test_size,
        "validation speakers": cfg.split.n_val_speakers, "adapt": cfg.adapt.value,
        "corpora": sources, "vocal channels": list(d.vocal_channels),
        "training-only channels": list(d.train_extra), "speakers": list(d.speakers),
        "test-only corpora": list(d.test_only),
    }


def check_student(cfg: ExperimentConfig, spec: ModelSpec) -> None:
    """ConfigError unless ``spec`` is one network trained by the torch trainer, without
    speaker adaptation, with valid ``distil_alpha`` / ``distil_temperature``."""
    if spec.family is not Family.NEURAL or spec.extra_inputs:
        raise ConfigError(f"--teacher needs a single neural student model, not {spec.name}")
    if cfg.adapt is not Adapt.NONE:
        raise ConfigError("--teacher cannot be combined with --adapt")
    tc = spec.configure(cfg.model.params)
    alpha, temp = getattr(tc, "distil_alpha", 0.5), getattr(tc, "distil_temperature", 2.0)
    if not 0 <= alpha <= 1:
        raise ConfigError(f"distil_alpha must lie in 0..1, got {alpha}")
    if not temp > 0:
        raise ConfigError(f"distil_temperature must be > 0, got {temp}")


def open_teacher(path: Path, cfg: ExperimentConfig) -> TeacherRun:
    """The run directory ``path`` as a teacher of ``cfg``; ConfigError when it is not a run,
    or when its protocol, seed or data differ from ``cfg``'s, or when it lacks one of
    ``cfg.split.folds``."""
    path = Path(path)
    # a run's metrics.json, read as every command reads it: a copied config.yaml beside
    # someone else's metrics.json was taken for a teacher until after extraction (stop 53)
    try:
        metrics = read_metrics(path)
        if not (path / "config.yaml").is_file():
            raise RunDirError(f"{path}: no config.yaml")
        if not metrics.get("folds"):
            raise RunDirError(f"{path / 'metrics.json'}: no fold records")
    except RunDirError as exc:
        raise ConfigError(f"teacher {path} is not a run directory of `emovox evaluate "
                          f"--save-models` ({exc})") from None
    try:
        tcfg = ExperimentConfig.from_dict(read_run_yaml(path / "config.yaml") or {})
        spec = get_model_spec(tcfg.model.name)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"teacher {path}: unreadable config.yaml ({exc})") from None
    run = TeacherRun(path, tcfg, metrics, spec)
    mine, theirs = _data_view(cfg), _data_view(tcfg)
    for key in mine:
        if mine[key] != theirs[key]:
            raise ConfigError(
                f"teacher {path} differs from this run in {key}: {theirs[key]} vs "
                f"{mine[key]}; a teacher must be trained on the same folds (same protocol, "
                "seed and data), never on this run's test speakers")
    # without --folds this run needs every fold the teacher ran (the same protocol and data):
    # each one's saved model looked for now, before extraction (an empty models/: stop 53)
    for k in cfg.split.folds or [f.get("index") for f in metrics["folds"]]:
        run.fold_record(k)
        run.model_dir(k)
    return run


def open_teachers(cfg: ExperimentConfig, spec: ModelSpec) -> Teachers | None:
    """The teachers of ``cfg`` (None without ``cfg.teachers``), checked before extraction."""
    if not cfg.teachers:
        return None
    check_student(cfg, spec)
    return Teachers([open_teacher(Path(p), cfg) for p in cfg.teachers])


@dataclass
class Teachers:
    """The teacher runs of an experiment and the input features of those whose input is
    not the student's (extracted once, for every clip)."""

    runs: list[TeacherRun]
    _feats: dict[str, list[Any]] = field(default_factory=dict)

    def check_folds(self, folds: list[Fold], data: PreparedData) -> None:
        """ConfigError unless every teacher has each fold's model and ran each fold on the
        same test and validation speakers and on as many clips per corpus."""
        counts: dict[str, int] = {}
        for u in data.utts:
            counts[u.corpus] = counts.get(u.corpus, 0) + 1
        for run in self.runs:
            theirs = run.metrics.get("corpora")
            if theirs is not None and theirs != counts:
                raise ConfigError(f"teacher {run.path} was run on other clips ({theirs}) "
                                  f"than this run ({counts})")
            for fold in folds:
                rec = run.fold_record(fold.index)
                for key, what, mine in (("test_speakers", "test", fold.test_speakers),
                                        ("val_speakers", "validation", fold.val_speakers)):
                    if sorted(rec.get(key) or []) != sorted(mine):
                        raise ConfigError(
                            f"teacher {run.path} fold {fold.index} has other {what} speakers "
                            f"({', '.join(rec.get(key) or [])}) than this run's fold "
                            f"({', '.join(mine)}): a teacher must be run on the same "
                            "folds, never on this fold's test speakers")
                _check_fold_model(run, fold.index)

    def records(self, k: int) -> list[str]:
        """The model folders of fold ``k`` (recorded in metrics.json)."""
        return [str(run.model_dir(k)) for run in self.runs]

    def _features(self, run: TeacherRun, cfg: ExperimentConfig, spec: ModelSpec,
                  data: PreparedData) -> list[Any]:
        if run.spec.inputs == spec.inputs:
            return data.feats
        key = repr(run.spec.inputs)
        if key not in self._feats:
            items, errors, _, _ = featurise(cfg, run.spec, [u.path for u in data.utts],
                                            data.content_ids)
            if errors:
                i, msg = next(iter(errors.items()))
                raise ConfigError(f"teacher {run.name}: features of {data.utts[i].path} "
                                  f"failed ({msg})")
            self._feats[key] = items
        return self._feats[key]

    def soft_targets(self, cfg: ExperimentConfig, spec: ModelSpec, data: PreparedData,
                     fold: Fold, sources: np.ndarray) -> tuple[np.ndarray, float]:
        """(soft targets (len(sources), C), the teachers' UA on the fold's training clips):
        the mean of fold ``fold``'s teacher probabilities on the training clips
        ``sources`` (indices into ``data``; repeats allowed)."""
        from emovox.training.trainer import load_trained

        if not set(np.asarray(sources).tolist()) <= set(np.asarray(fold.train).tolist()):
            raise ValueError("soft targets are for training clips only")
        clips = np.unique(sources)
        corpora = [data.utts[i].corpus for i in clips]
        total = np.zeros((len(clips), len(LABELS)))
        for run in self.runs:
            model, _ = load_trained(run.model_dir(fold.index))
            feats = self._features(run, cfg, spec, data)
            p = model.predict_proba(gather(feats, clips))
            total += restrict_to_corpus(p, corpora, data.corpus_classes)
        mean = total / len(self.runs)
        ua = compute_metrics(data.y[clips], mean.argmax(1), list(LABELS)).ua
        return mean[np.searchsorted(clips, sources)], ua


@dataclass(frozen=True)
class TeacherModels:
    """``train --teacher``'s loaded models and what each says it was trained on."""

    models: list[Any]
    trained_on: list[dict[str, Any]]


def load_teacher_models(paths: list[Path], spec: ModelSpec) -> TeacherModels:
    """``emovox train --teacher MODEL_DIR``: the trained models in ``paths`` (any artifact,
    e.g. an ``emovox ensemble``), each loaded without running code from its folder;
    ConfigError unless each reads the student ``spec``'s input (same feature, parameters,
    rate and trimming: its probabilities are computed on the student's features)."""
    from emovox.artifact import preprocess_for_input
    from emovox.features import feature_key
    from emovox.training.trainer import load_trained

    want = preprocess_for_input(spec.inputs[0])

    def key(pre: Any) -> tuple[Any, ...]:
        return (feature_key(pre.feature or "", **pre.feature_params), pre.sr, pre.trim,
                pre.top_db, pre.loudness, pre.functional)

    models: list[Any] = []
    heard: list[dict[str, Any]] = []
    for p in paths:
        model, meta = load_trained(Path(p))
        if meta.n_classes != len(LABELS) or key(meta.preprocess) != key(want):
            raise ConfigError(f"teacher model {p} reads another input or labels "
                              f"({meta.preprocess.feature} {meta.preprocess.feature_params}) "
                              f"than the student {spec.name} ({want.feature} "
                              f"{want.feature_params})")
        models.append(model)
        heard.append(meta.trained_on or {})
    return TeacherModels(models, heard)


def teachers_heard(teachers: TeacherModels, paths: list[str]) -> dict[str, Any]:
    """What ``train --teacher`` models heard, for the student's ``trained_on``: the union
    of their training speakers (``teacher_speakers``) and of their clip digests
    (``teacher_clip_digests``), and the teachers that list no speakers or no digests
    (``teachers_unlisted``). A student distilled from a teacher that heard a corpus is not
    speaker-independent on it (research audit, stop 51: only the teachers' paths were
    kept, so ``evaluate --artifact`` called such a score speaker-independent)."""
    from emovox.artifact.clips import (
        CLIP_DIGESTS,
        DIGEST_HEX,
        TEACHER_DIGESTS,
        clip_digests,
        trained_digests,
    )

    speakers: set[str] = set()
    digests: set[str] = set()
    unlisted: list[str] = []
    for on, path in zip(teachers.trained_on, paths, strict=True):
        heard = trained_digests(on)
        spk = on.get("speakers")
        # a teacher distilled in turn heard what its own teachers heard
        taught = trained_digests({CLIP_DIGESTS: on.get(TEACHER_DIGESTS)})
        if not spk or heard is None or any(len(d) < DIGEST_HEX for d in heard) \
                or on.get("teachers_unlisted") \
                or (on.get(TEACHER_DIGESTS) is not None and taught is None):
            unlisted.append(str(path))
        speakers.update(str(s) for s in [*(spk or []), *(on.get("teacher_speakers") or [])])
        taught = taught or frozenset()
        digests.update(d[:DIGEST_HEX] for d in (heard or frozenset()) | taught
                       if len(d) >= DIGEST_HEX)  # a wider record, cut to ours
    cut = clip_digests(digests)["clip_digests"]
    return {"teacher_speakers": sorted(speakers), TEACHER_DIGESTS: cut,
            **({"teachers_unlisted": unlisted} if unlisted else {})}


def open_teacher_models(cfg: ExperimentConfig, spec: ModelSpec) -> TeacherModels | None:
    """The teacher models of ``train --teacher`` (None without ``cfg.teachers``), checked
    and loaded before any feature is extracted."""
    if not cfg.teachers:
        return None
    check_student(cfg, spec)
    return load_teacher_models([Path(t) for t in cfg.teachers], spec)


def mean_probabilities(models: list[Any], feats: list[Any], sources: np.ndarray,
                       data_corpora: list[str],
                       classes: dict[str, tuple[int, ...]]) -> np.ndarray:
    """The mean of ``models``' probabilities on the clips ``sources`` (indices into
    ``feats``; repeats allowed), each restricted to its clip's corpus classes."""
    clips = np.unique(sources)
    corpora = [data_corpora[i] for i in clips]
    total = sum(restrict_to_corpus(m.predict_proba(gather(feats, clips)), corpora, classes)
                for m in models)
    return (total / len(models))[np.searchsorted(clips, sources)]


__all__ = [
    "TeacherModels", "TeacherRun", "Teachers", "check_student", "load_teacher_models",
    "mean_probabilities", "open_teacher", "open_teacher_models", "open_teachers",
    "teachers_heard",
]
