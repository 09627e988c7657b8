"""Train a deployable model on every speaker and package it: weights, inference
front end, calibration temperature, ONNX export and a model card.

Settings come from cross-validation, never from a test set: the temperature is fitted on
the out-of-fold predictions of a CV run of the same model (``--calibrate RUN_DIR``), and
the card reports that run's speaker-independent metrics.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emovox.artifact.clips import clip_digests, trained_corpora, trained_digests
from emovox.artifact.dest import checked_destination
from emovox.artifact.paths import CARD_FILE
from emovox.augment import augment_summary
from emovox.config import ExperimentConfig
from emovox.corpora.base import speakers_text
from emovox.errors import ConfigError
from emovox.experiment.card import model_card
from emovox.experiment.dataset import (
    Dataset,
    adversary_speakers,
    check_adversary,
    featurise,
    gather,
    load_dataset,
)
from emovox.experiment.distil import (
    TeacherModels,
    mean_probabilities,
    open_teacher_models,
    teachers_heard,
)
from emovox.experiment.functional import functional_member, is_functional_folder, narrow_member
from emovox.experiment.members import ensemble_trained_on
from emovox.experiment.multicorpus import balance_corpora, corpus_classes, corpus_counts
from emovox.experiment.recipe import (
    check_recipe,
    checked_cv_run,
    fused_differences,
    metrics_with_also,
    read_also_runs,
    trained_val_speakers,
    warn_other_clips,
    warn_recipe,
)
from emovox.experiment.rescore import run_speeds
from emovox.experiment.rundir import read_cv_run
from emovox.experiment.runner import training_sources
from emovox.features.bandwidth import NARROW_BAND_FLOOR_DB
from emovox.fileio import claimed_folder
from emovox.labels import LABELS
from emovox.models import Family, ModelSpec, count_parameters, get_model_spec
from emovox.provenance import environment
from emovox.splits import pick_val_speakers
from emovox.training import build_model

log = logging.getLogger(__name__)

#: what to do when ``--out`` is the current folder (or holds it): staged_run_dir's words
_ELSEWHERE = "choose another --out (or run from elsewhere)"


@dataclass
class TrainedBundle:
    path: Path
    n_clips: int
    n_speakers: int
    seconds: float
    n_params: int
    calibration: dict[str, Any] | None
    #: of ``n_speakers`` / ``n_clips``, those used only for early stopping
    n_val_speakers: int = 0
    n_val_clips: int = 0
    #: the speakers in words: "8 speakers", "speakers unknown" (QA re-check, stop 34)
    speakers: str = ""


def _checked_destination_and_spec(cfg: ExperimentConfig, out: Path, force: bool) -> ModelSpec:
    """``cfg``'s model spec, its parameters typed, once ``out`` may be written: not one of
    the teachers (re-check, stop 32), not someone else's folder. Before any extraction."""
    from emovox.artifact import check_replaceable

    if any(Path(t).resolve() == out.resolve() for t in cfg.teachers):
        raise ConfigError(f"--out {out} is the teacher; write the student to another folder")
    check_replaceable(out, force)
    spec = get_model_spec(cfg.model.name)
    cfg.model.params = spec.validate(cfg.model.params)  # typed; bad keys fail before extraction
    if len(spec.inputs) != 1:
        raise ValueError(f"{spec.name} has several inputs; only single-input models are bundled")
    if spec.needs_validation and cfg.split.n_val_speakers < 1:  # re-check 2, stop 32
        raise ConfigError(f"{spec.name} chooses C on validation speakers: give "
                          "--val-speakers 1 or more")
    return spec


def train_bundle(
    cfg: ExperimentConfig, out: Path, *, calibrate: Path | None = None, force: bool = False,
    onnx: bool = True,
) -> TrainedBundle:
    """Train ``cfg.model`` on all clips of ``cfg.data`` (no held-out speakers; the epoch
    count is the model's fixed setting) and write the artifact folder ``out`` atomically.
    Refuses to replace an existing ``out`` unless ``force``. ``cfg.teachers`` here are
    trained model folders (``train --teacher``): the student is distilled from the mean of
    their probabilities on its training clips (:mod:`emovox.experiment.distil`)."""
    out = checked_destination(out, _ELSEWHERE)  # before any work (audit, stop 56)
    spec = _checked_destination_and_spec(cfg, out, force)
    cv = checked_cv_run(calibrate, cfg.model.name, cfg.split.n_val_speakers, cfg.to_dict())
    teachers = open_teacher_models(cfg, spec)
    with claimed_folder(out) as (tmp, others):
        if others:  # both trained, the last to finish replacing the other (stop 35)
            raise ConfigError(f"another emovox process (PID {others[0]}) is training into "
                              f"{out} now; wait for it, or choose another --out")
        t0 = time.perf_counter()
        ds = load_dataset(cfg.data)
        check_adversary(cfg, ds.utts)
        _val_speakers(cfg, ds, np.arange(len(ds.utts)))  # refused before extraction (53)
        items, errors, _, _ = featurise(cfg, spec, [u.path for u in ds.utts], ds.content_ids)
        if cv:  # another own.csv of the same name (stop 35)
            warn_other_clips(Path(str(calibrate)), cv, ds.content_ids,
                             {u.corpus for u in ds.utts})
        idx = np.array([i for i in range(len(ds.utts)) if i not in errors], int)
        val_spk = _val_speakers(cfg, ds, idx)
        is_val = np.array([ds.utts[i].speaker in val_spk for i in idx], bool)
        train_idx = idx[~is_val]
        if cfg.data.balance_corpora:
            train_idx = balance_corpora(train_idx, ds.utts, np.random.default_rng(cfg.seed))
        model = _fit(cfg, spec, ds, items, train_idx, idx[is_val], teachers)
        seconds = time.perf_counter() - t0
        speakers = sorted({ds.utts[i].speaker for i in idx})
        # a network only early-stops on the validation clips; a classical model
        # (compare_lrcv) chooses C on them and is then refitted on them too (stop 32)
        val_only = ((sorted(val_spk), int(is_val.sum())) if spec.family is Family.NEURAL
                    else ([], 0))
        cv_metrics = cv.metrics if cv else None
        extra = {"name": cfg.model.name,
                 "trained_on": _trained_on(cfg, ds, idx, speakers, seconds, val_only)
                 | (teachers_heard(teachers, list(cfg.teachers)) if teachers else {}),
                 "n_params": count_parameters(model), "cross_validation": cv_metrics}
        calibration = _write_bundle(model, tmp / out.name, out, cfg, spec, extra, cv, force,
                                    onnx)
    return TrainedBundle(out, int(len(idx)), len(speakers), seconds, count_parameters(model),
                         calibration, len(val_only[0]), val_only[1], speakers_text(speakers))


def _val_speakers(cfg: ExperimentConfig, ds: Dataset, idx: np.ndarray) -> list[str]:
    """The validation speakers among the clips ``idx`` of ``ds``: only when asked for (early
    stopping, or compare_lrcv's choice of C, which then refits on everything); by default
    every speaker trains. TooFewForValidation when there are too few speakers: asked of
    every clip before extraction too (it came after minutes of it: review, stop 53)."""
    return pick_val_speakers(sorted({ds.utts[i].speaker for i in idx}), ds.utts,
                             cfg.split.n_val_speakers, np.random.default_rng(cfg.seed))


def _write_bundle(model: Any, stage: Path, out: Path, cfg: ExperimentConfig, spec: ModelSpec,
                  extra: dict[str, Any], cv: Any, force: bool, onnx: bool
                  ) -> dict[str, Any] | None:
    """``model`` saved to ``stage`` (calibrated on ``cv``, ONNX, card), moved to ``out``."""
    from emovox.artifact import attach_inference, preprocess_for_input, replace_folder, save_model

    save_model(model, stage, cfg.to_dict(), metrics=cv.metrics if cv else {},
               extra=extra, preprocess=preprocess_for_input(spec.inputs[0]))
    calibration = None
    if cv:
        from emovox.experiment.rundir import fit_from_predictions_csv

        calibration = fit_from_predictions_csv(cv.predictions)
    meta = attach_inference(stage, calibration=calibration,
                            temperature=calibration["temperature"] if calibration else None)
    if onnx and spec.family is Family.NEURAL:
        from emovox.training.export import export_onnx

        export_onnx(stage)
    (stage / CARD_FILE).write_text(model_card(meta.card_view()))
    replace_folder(stage, out, force=force, keep=True)
    return calibration


def _trained_on(cfg: ExperimentConfig, ds: Dataset, idx: np.ndarray, speakers: list[str],
                seconds: float, val: tuple[list[str], int]) -> dict[str, Any]:
    """What a model folder says it was trained on (model.json ``trained_on``, the card).
    ``clips`` and ``speakers`` count every clip the fit saw; ``val``: the speakers (and
    their clips) of those used only for early stopping (research QA, stop 32)."""
    aug = augment_summary(cfg.to_dict().get("augment"))
    held = ({"validation_speakers": val[0], "validation_clips": val[1]} if val[0] else {})
    return {"clips": int(len(idx)), "speakers": speakers, **held,  # emotions: QA, stop 33
            "emotions": ds.emotion_counts(idx), "corpus": "+".join(ds.corpora),
            **({"labels_read_as": m} if (m := ds.labels_read_as(idx)) else {}),  # stop 39
            **({"labels_left_out": ds.left_out} if ds.left_out else {}),
            "corpora": corpus_counts([ds.utts[i] for i in idx]),
            "balance_corpora": cfg.data.balance_corpora, "channels": list(cfg.data.vocal_channels),
            **({"teachers": list(cfg.teachers)} if cfg.teachers else {}),
            **({"augment": aug} if aug else {}),
            "seconds": round(seconds, 1), "environment": environment(),
            **clip_digests(ds.content_ids[i] for i in idx)}  # by content (stop 35)


def _fit(cfg: ExperimentConfig, spec: ModelSpec, ds: Dataset, items: list[Any],
         train_idx: np.ndarray, val_idx: np.ndarray, teachers: TeacherModels | None) -> Any:
    """The model trained on ``train_idx`` (+ augmented variants of those clips, never of
    validation clips), early-stopped on ``val_idx``; distilled from ``teachers`` if given."""
    y = ds.y
    model = build_model(spec, n_classes=len(LABELS), seed=cfg.seed, **cfg.model.params)
    x_train, y_train, sources = training_sources(cfg, spec, ds.utts, items, y, ds.content_ids,
                                                 train_idx)
    fit_kw = {} if teachers is None else {"soft_targets": mean_probabilities(
        teachers.models, items, sources, [u.corpus for u in ds.utts], corpus_classes(ds.utts, y))}
    fit_kw.update(adversary_speakers(model, ds.utts, sources))
    return model.fit(x_train, y_train, gather(items, val_idx), y[val_idx], **fit_kw)


def _utt_norm(pre: Any) -> str:
    """A preprocessing's per-utterance normalisation (``"none"`` when it has none)."""
    return str(pre.feature_params.get("utt_norm", "none"))


def _but_utt_norm(pre: Any) -> Any:
    """``pre`` with its ``utt_norm`` taken out (what members must share)."""
    return pre.replace(feature_params={k: v for k, v in pre.feature_params.items()
                                       if k != "utt_norm"})


def _load_members(members: list[Path], allow_one: bool = False) -> list[tuple[Any, Any]]:
    """The trained member networks ``(TorchClassifier, ArtifactMeta)``; ConfigError unless
    every one is a network reading the same input with the same labels (a log-mel's
    per-utterance normalisation may differ: the ensemble then computes each, side by side).
    ``allow_one``: one network is enough (a functional member joins it)."""
    from emovox.training.trainer import load_trained

    if len(members) < (1 if allow_one else 2):
        raise ConfigError("an ensemble needs at least two trained model folders")
    loaded = [load_trained(Path(m)) for m in members]
    first = loaded[0][1]
    for path, (_, meta) in zip(members, loaded, strict=True):
        if meta.network is None:
            raise ConfigError(f"{path}: not a network model (only networks are ensembled)")
        if tuple(meta.labels) != tuple(LABELS):  # the ensemble is written with emovox's
            raise ConfigError(f"{path}: its labels are not emovox's eight in their order "  # own
                              f"({', '.join(LABELS)}); its answers would be read as others "
                              "(code review, stop 46)")
        pre, pre0 = meta.preprocess, first.preprocess
        same_input = pre == pre0 or (pre.feature == "logmel" and _but_utt_norm(pre)
                                     == _but_utt_norm(pre0) and "+" not in _utt_norm(pre))
        same = (same_input and meta.labels == first.labels
                and tuple(meta.network.input_shape) == tuple(first.network.input_shape))
        if not same:
            raise ConfigError(f"{path} reads another input or labels than {members[0]}")
    return loaded


@dataclass(frozen=True)
class MemberInputs:
    """How an ensemble's one input feeds its members.

    Attributes:
        preprocess: the ensemble's :class:`~emovox.preprocess.Preprocess` (every
            normalisation the members read, side by side, without a normaliser).
        blocks: the column block each member reads.
        norms: each block's standardisation (its first reader's normaliser).
    """

    preprocess: Any
    blocks: tuple[int, ...]
    norms: tuple[Any, ...]

    @property
    def normaliser(self) -> Any:
        """The ensemble's normaliser: the blocks' standardisations side by side."""
        from emovox.preprocess import Normaliser

        if len(self.norms) == 1:
            return self.norms[0]
        return Normaliser(np.concatenate([n.mean for n in self.norms]),
                          np.concatenate([n.std for n in self.norms]))


def member_inputs(loaded: Sequence[tuple[Any, Any]]) -> MemberInputs:
    """The blocks of the ensemble's input: one per distinct ``utt_norm`` of the members, in
    the order they first appear (one block, and the first member's preprocessing unchanged,
    when all read the same)."""
    modes: list[str] = []
    blocks, norms = [], []
    for model, meta in loaded:
        mode = _utt_norm(meta.preprocess)
        if mode not in modes:
            modes.append(mode)
            norms.append(model.norm)
        blocks.append(modes.index(mode))
    pre = loaded[0][1].preprocess
    if len(modes) > 1:
        pre = pre.replace(feature_params={**pre.feature_params, "utt_norm": "+".join(modes)},
                          frontend=None, frontend_params=None)
    return MemberInputs(pre, tuple(blocks), tuple(norms))


def with_identity_columns(norm: Any, dim: int) -> Any:
    """``norm`` (a :class:`~emovox.preprocess.Normaliser` or ``None``) leaving ``dim`` more
    columns as they are (the functional member standardises its own)."""
    if norm is None or dim == 0:
        return norm
    from emovox.preprocess import Normaliser

    return Normaliser(np.concatenate([norm.mean, np.zeros(dim, norm.mean.dtype)]),
                      np.concatenate([norm.std, np.ones(dim, norm.std.dtype)]))


def _not_adapted(folder: Path) -> None:
    """Refuse a member trained on per-speaker normalised features (``evaluate --adapt
    speaker`` fold models): served alone it is refused, inside an ensemble it would not be."""
    from emovox.artifact import read_meta

    adapt = (read_meta(folder).experiment_config or {}).get("adapt", "none")
    if adapt not in (None, "none"):
        raise ConfigError(f"{folder} was trained on features normalised per {adapt} "
                          f"(--adapt {adapt}), which a single clip cannot give; use members "
                          "trained without --adapt")


def _assemble(members: list[Path], narrow: Path | None = None
              ) -> tuple[Any, list[tuple[Any, Any]], list[Any], MemberInputs, str]:
    """The ensemble classifier of trained folders ``members`` (networks and at most one
    functional member, which may have the narrow-band alternative ``narrow``), weights
    loaded: ``(classifier, networks, functional members, inputs, name)``."""
    import torch

    from emovox.models import ensemble
    from emovox.training.trainer import TorchClassifier

    for m in [*members, *([narrow] if narrow else [])]:  # re-check 2, stop 32
        _not_adapted(Path(m))
    nets = [m for m in members if not is_functional_folder(m)]
    funcs = [m for m in members if m not in nets]
    if len(funcs) > 1:
        raise ConfigError("an ensemble takes at most one functional (scikit-learn) member")
    if narrow is not None and not funcs:
        raise ConfigError("a narrow-band member needs a functional member to stand in for")
    loaded = _load_members(nets, allow_one=bool(funcs))
    first, meta0 = loaded[0]
    func = functional_member(funcs[0], meta0) if funcs else None
    alt, columns = narrow_member(narrow, meta0, func) if narrow and func else (None, [])
    inputs = member_inputs(loaded)
    specs = [{"module": m.network.module, "params": dict(m.network.params)} for _, m in loaded]
    names = [m.name for _, m in loaded] + ([func.meta.name] if func else [])
    if alt:
        names[-1] += f"|{alt.meta.name}"
    name = "fusion(" + "+".join(names) + ")"
    several: dict[str, Any] = {"inputs": list(inputs.blocks)} if len(inputs.norms) > 1 else {}
    extra_cols = (func.dim + (1 if alt else 0)) if func else 0
    if func:
        several["functional"] = {"dim": func.dim, **({"narrow": columns} if alt else {})}
    clf = TorchClassifier(ensemble.build_net, n_classes=first.n_classes, members=specs,
                          n_frames=first.train_cfg.n_frames, threads=first.train_cfg.threads,
                          **several)
    *lead, width = tuple(meta0.network.input_shape)  # (T, M): the blocks side by side
    clf.input_shape = (*lead, width * len(inputs.norms) + extra_cols)
    clf.norm = with_identity_columns(inputs.normaliser, extra_cols)
    clf.net = ensemble.build_net(first.n_classes, clf.input_shape, members=specs, **several)
    for spec, module in ((func, clf.net.functional), (alt, clf.net.narrow)):
        if spec:
            module.load_state_dict({k: torch.from_numpy(v) for k, v in spec.state.items()},
                                   strict=True)
    with torch.no_grad():
        for k, (model, _) in enumerate(loaded):
            clf.net.members[k].load_state_dict(model.net.state_dict())
            # member k was trained on (raw - mean_k) / std_k; the ensemble gets its block
            # as (raw - mean_0) / std_0: x_k = x std_0 / std_k + (mean_0 - mean_k) / std_k
            n0, nk = inputs.norms[inputs.blocks[k]], model.norm
            clf.net.scale[k] = torch.as_tensor(n0.std / nk.std, dtype=torch.float32)
            clf.net.shift[k] = torch.as_tensor((n0.mean - nk.mean) / nk.std, dtype=torch.float32)
    clf.net.eval()
    return clf, loaded, [f for f in (func, alt) if f], inputs, name


def _distinct_members(members: list[Path], out: Path, narrow: Path | None) -> None:
    """Refuse a member given twice (it would be counted, and weighted, twice) and an ``out``
    that is one of the members or inside one (``--force`` would replace it while it is
    read; research QA, stop 32; written into a member: audit, stop 56)."""
    paths = [Path(m).resolve() for m in [*members, *([narrow] if narrow else [])]]
    twice = sorted({str(m) for m, p in zip(members, paths, strict=False) if paths.count(p) > 1})
    if twice:
        raise ConfigError(f"a member is given twice: {', '.join(twice)}; give each model once "
                          "(seeds of one recipe are separate folders)")
    if (o := Path(out).resolve()) in paths or any(p in o.parents for p in paths):
        raise ConfigError(f"--out {out} is one of the members or inside one; write the "
                          "ensemble to another folder")
    # a copy of a network member (cp -r) has another path but the same weights: counted
    # twice too (review, stop 52: fusion(crnn_cmvn+crnn_cmvn) was written). Functional
    # members are left to their own checks (at most one; a narrow-band one reads other columns)
    seen: dict[str, Path] = {}
    for m in members:
        digest = _weights_digest(Path(m))
        if digest is not None and digest in seen:
            raise ConfigError(f"{seen[digest]} and {m} hold the same weights (one a copy of "
                              "the other?); give each model once: it would be counted, and "
                              "weighted, twice")
        if digest is not None:
            seen[digest] = Path(m)


def _weights_digest(folder: Path) -> str | None:
    """The SHA-256 of a network member's weights file: the one its ``model.json`` records
    (``digests``: checked against the bytes when the member loads), else the file hashed;
    None for a functional member or a folder that cannot say (loading it tells why)."""
    from emovox.artifact import WEIGHTS_FILE, ArtifactError, ModelKind, file_digest, read_meta

    try:
        meta = read_meta(folder)
        if meta.kind is ModelKind.SKLEARN:
            return None
        recorded = meta.digests.get(WEIGHTS_FILE)
        if isinstance(recorded, str):
            return recorded
        return file_digest(folder / WEIGHTS_FILE) if (folder / WEIGHTS_FILE).is_file() else None
    except (ArtifactError, OSError):
        return None


def ensemble_bundle(members: list[Path], out: Path, *, calibrate: Path | None = None,
                    also: Sequence[Path] = (), force: bool = False, onnx: bool = True,
                    narrow: Path | None = None,
                    band_floor_db: float = NARROW_BAND_FLOOR_DB) -> Any:
    """One artifact ``out`` from trained network folders ``members``: an
    :class:`~emovox.models.ensemble.Ensemble` averaging their probabilities (equal weights),
    exported as one ONNX graph. ``calibrate``: the ``emovox fuse`` run of the members' CV runs
    (temperature and model-card metrics); ``also``: further such runs pooled into the
    temperature fit only. ``members`` may include one linear model on utterance
    functionals (:mod:`emovox.experiment.functional`), and ``narrow`` its narrow-band
    alternative, which answers for waves whose band ratio is below ``band_floor_db``.
    Returns the written :class:`ArtifactMeta`."""
    from emovox.artifact import attach_inference, check_replaceable, replace_folder, save_model

    out = checked_destination(out, _ELSEWHERE)  # before any work (audit, stop 56)
    _distinct_members(members, out, narrow)
    check_replaceable(out, force)
    clf, loaded, funcs, inputs, name = _assemble(members, narrow)
    cv = read_cv_run(calibrate, name) if calibrate else None
    if also and not cv:
        raise ConfigError("--calibrate-also needs --calibrate")
    also_runs = read_also_runs(also, name, calibrate)
    everyone = [*loaded, *[(None, f.meta) for f in funcs]]
    trained_on = ensemble_trained_on(everyone)
    if cv:
        vals = {trained_val_speakers(m.experiment_config) for _, m in loaded}
        member_val = next(iter(vals)) if len(vals) == 1 else None
        configs = [c for c in (m.experiment_config for m in [*(m for _, m in loaded),
                                                             *(f.meta for f in funcs)])
                   if isinstance(c, dict)]
        for run, c in zip([calibrate, *also], [cv, *also_runs], strict=True):
            check_recipe(Path(run), c, member_val, name)
            warn_other_clips(Path(run), c, trained_digests(trained_on),
                             trained_corpora(trained_on))  # stops 35, 40
            for fused, diffs in fused_differences(Path(run), configs):  # stop 33
                warn_recipe(fused, f"the members of {name}", diffs)
    cv_metrics = metrics_with_also(cv.metrics, also_runs) if cv else None
    # beside out, never in /tmp (a rename across file systems fails); one build at a time
    with claimed_folder(out) as (tmp, others):
        if others:
            raise ConfigError(f"another emovox process (PID {others[0]}) is building {out} "
                              "now; wait for it, or choose another --out")
        stage = tmp / out.name
        if len(funcs) > 1:
            trained_on["narrow_band"] = {"member": funcs[1].meta.name, "floor_db": band_floor_db}
        extra = {"name": name, "trained_on": trained_on,
                 "n_params": int(sum(p.numel() for p in clf.net.parameters())),
                 "cross_validation": cv_metrics}
        config = {"model": {"name": name, "params": {"members": [str(m) for m in members]}}}
        pre = inputs.preprocess.replace(speeds=run_speeds(  # read as its runs were (stop 46)
            [c.metrics for c in [cv, *also_runs]], [calibrate, *also]) if cv else ())
        if funcs:
            pre = pre.replace(functional=funcs[0].feature,
                              band_floor_db=band_floor_db if len(funcs) > 1 else None)
        save_model(clf, stage, config, metrics=cv_metrics or {}, extra=extra, preprocess=pre)
        calibration = None
        if cv:
            from emovox.experiment.rundir import fit_from_predictions_csv

            calibration = fit_from_predictions_csv(cv.predictions,
                                                   also=[a.predictions for a in also_runs])
        meta = attach_inference(stage, temperature=calibration["temperature"]
                                if calibration else None, calibration=calibration)
        if onnx:
            from emovox.training.export import export_onnx

            export_onnx(stage)
        (stage / CARD_FILE).write_text(model_card(meta.card_view()))
        replace_folder(stage, out, force=force, keep=True)
    return meta
