"""Training PyTorch classifiers: normalisation fitted on training data, AdamW, a
learning-rate schedule, class-weighted CE or focal loss, SpecAugment and mixup on
training batches only (optionally VTLP and Freq-MixStyle too), gradient clipping, early
stopping on validation speakers.

:class:`TorchClassifier` implements the :class:`emovox.models.base.Model` protocol so
the experiment runner treats it like any scikit-learn pipeline.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from sklearn.utils.class_weight import compute_class_weight
from torch import nn

from emovox.errors import ConfigError
from emovox.metrics import balanced_accuracy
from emovox.models.params import AdversaryOn, Device, Loss, Schedule, TrainConfig
from emovox.preprocess import Normaliser, pad_or_crop
from emovox.training.adversary import SpeakerAdversary, confusion_weight, speaker_codes
from emovox.training.batch_augment import augment_batch

log = logging.getLogger(__name__)


def to_array(x: np.ndarray | list[np.ndarray], n_frames: int) -> np.ndarray:
    """Stack features into (N, D) or (N, T, D); sequences are padded/cropped first."""
    if isinstance(x, np.ndarray):
        arr = x
    elif n_frames:
        arr = np.stack([pad_or_crop(s, n_frames) for s in x])
    else:
        arr = np.stack(x)
    if n_frames and arr.ndim == 3 and arr.shape[1] != n_frames:
        arr = np.stack([pad_or_crop(s, n_frames) for s in arr])
    return np.asarray(arr, np.float32)


def focal_loss(
    logits: torch.Tensor, target: torch.Tensor, gamma: float, weight: torch.Tensor | None
) -> torch.Tensor:
    """Categorical focal loss (Lin et al., 2017) on soft or hard targets. # (B, C), (B, C)"""
    logp = F.log_softmax(logits, dim=-1)
    p = logp.exp()
    w = weight if weight is not None else torch.ones(logits.shape[-1], device=logits.device)
    return -(target * w * (1 - p) ** gamma * logp).sum(-1).mean()


@dataclass
class History:
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_ua: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    best_epoch: int = -1
    seconds: float = 0.0
    #: with a speaker adversary: its accuracy (%) on each epoch's training batches
    adversary_acc: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        if not self.adversary_acc:
            del d["adversary_acc"]
        return d


def class_weights(y: np.ndarray, n_classes: int) -> torch.Tensor:
    """Balanced class weights of the classes present in ``y``; 1 for absent ones."""
    present = np.unique(y)
    w = np.ones(n_classes)
    w[present] = compute_class_weight("balanced", classes=present, y=y)
    return torch.tensor(w, dtype=torch.float32)


def torch_device(device: Device) -> torch.device:
    """The PyTorch device of ``device``; ConfigError when PyTorch cannot reach it."""
    if device is Device.CUDA and not torch.cuda.is_available():
        raise ConfigError("device=cuda: this PyTorch sees no CUDA GPU (a CPU build, or no "
                          "driver); leave device at cpu")
    return torch.device(device.value)


def make_scheduler(opt: torch.optim.Optimizer, tc: TrainConfig, steps_per_epoch: int) -> Any:
    """The LR scheduler of ``tc.schedule``: one-cycle cosine (stepped per batch),
    ReduceLROnPlateau on validation UA (stepped per epoch), or None."""
    if tc.schedule is Schedule.COSINE:
        return torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=tc.lr, total_steps=tc.epochs * steps_per_epoch, pct_start=0.15
        )
    if tc.schedule is Schedule.PLATEAU:
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode="max", factor=tc.lr_plateau_factor,
            patience=tc.lr_plateau_patience or max(1, tc.patience // 3),
        )
    return None


def batch_loss(logits: torch.Tensor, yb: torch.Tensor, tc: TrainConfig,
               weight: torch.Tensor | None, n_classes: int) -> torch.Tensor:
    """Training loss of a batch: ``logits`` (B, C) against soft targets ``yb`` (B, C)."""
    if tc.label_smoothing:  # for both losses (focal ignored it: a review, stop 47)
        yb = yb * (1 - tc.label_smoothing) + tc.label_smoothing / n_classes
    if tc.loss is Loss.FOCAL:
        return focal_loss(logits, yb, tc.focal_gamma, weight)
    w = weight if weight is not None else torch.ones(n_classes, device=logits.device)
    return -(yb * w * F.log_softmax(logits, -1)).sum(-1).mean()


def sharpen(p: torch.Tensor, temperature: float) -> torch.Tensor:
    """``p ** (1 / T)`` renormalised per row (zeros stay zero): the teacher's distribution
    at temperature T, which is ``softmax(logits / T)`` when ``p = softmax(logits)``. # (B, C)"""
    logp = torch.log(p.clamp_min(0))  # (B, C); -inf where p == 0
    return torch.softmax(logp / temperature, -1)


def distil_kl(logits: torch.Tensor, teacher_t: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T^2 * KL(teacher_T || softmax(logits / T))``, the mean over the batch; ``teacher_t``
    (B, C) is already at temperature T (:func:`sharpen`). Zero when the student's tempered
    distribution equals it."""
    log_s = F.log_softmax(logits / temperature, -1)  # (B, C)
    kl = torch.xlogy(teacher_t, teacher_t) - teacher_t * log_s  # (B, C); 0 log 0 = 0
    return temperature**2 * kl.sum(-1).mean()


def distil_loss(logits: torch.Tensor, yb: torch.Tensor, teacher_t: torch.Tensor,
                tc: TrainConfig, weight: torch.Tensor | None, n_classes: int) -> torch.Tensor:
    """``(1 - alpha) * batch_loss(hard labels) + alpha * T^2 * KL(teacher_T || student_T)``
    (alpha = ``tc.distil_alpha``, T = ``tc.distil_temperature``)."""
    hard = batch_loss(logits, yb, tc, weight, n_classes)
    if tc.distil_alpha == 0:
        return hard
    soft = distil_kl(logits, teacher_t, tc.distil_temperature)
    return (1 - tc.distil_alpha) * hard + tc.distil_alpha * soft


def check_distil(tc: TrainConfig) -> None:
    """ValueError unless 0 <= distil_alpha <= 1 and distil_temperature > 0."""
    if not 0 <= tc.distil_alpha <= 1:
        raise ValueError(f"distil_alpha must lie in 0..1, got {tc.distil_alpha}")
    if not tc.distil_temperature > 0:
        raise ValueError(f"distil_temperature must be > 0, got {tc.distil_temperature}")


@dataclass
class _Step:
    """What one optimisation step needs besides the batch."""

    opt: torch.optim.Optimizer
    per_step_sched: Any  #: stepped after every batch (one-cycle), or None
    weight: torch.Tensor | None  #: class weights, or None
    gen: torch.Generator  #: shuffling, SpecAugment and mixup permutations
    np_rng: np.random.Generator  #: mixup coefficients
    #: the adversary and each training clip's one-hot group (speaker or corpus) (N, S)
    adversary: SpeakerAdversary | None = None
    speakers: torch.Tensor | None = None
    #: unlabelled clips the adversary also sees (M, ...) and their one-hot groups (M, S)
    unlabelled: tuple[torch.Tensor, torch.Tensor] | None = None
    #: which unlabelled clips join each batch (its own: the other draws stay as without)
    unl_gen: torch.Generator | None = None


def _device_of(net: nn.Module) -> torch.device:
    """The device of ``net``'s parameters (the CPU for a network without any)."""
    return next(net.parameters(), torch.empty(0)).device


EpochFn = Callable[[int, int, float, float], None]  # epoch, epochs, train loss, val UA


class TorchClassifier:
    """A network from ``build_net`` plus everything needed to train and apply it."""

    def __init__(
        self,
        build_net: Callable[..., nn.Module],
        *,
        n_classes: int,
        seed: int = 0,
        on_epoch: EpochFn | None = None,
        **params: Any,
    ) -> None:
        self.build_net = build_net
        self.n_classes = n_classes
        train_cfg, self.net_params = TrainConfig.split(params)
        self.train_cfg = replace(train_cfg, seed=seed)
        self.on_epoch = on_epoch
        self.net: nn.Module | None = None
        self.norm: Normaliser | None = None
        self.input_shape: tuple[int, ...] = ()
        self.history = History()
        #: the teacher's tempered probabilities of the training clips, during fit only
        self._soft: torch.Tensor | None = None

    # -- data ---------------------------------------------------------------------------
    def _fit_normaliser(self, x: np.ndarray, y: np.ndarray) -> None:
        self.norm = Normaliser.fit(x, y, select_k=self.train_cfg.select_k)

    def network_input(self, x: np.ndarray | list[np.ndarray]) -> torch.Tensor:
        """Features -> the normalised tensor the network reads (padded/cropped, normalised)."""
        assert self.norm is not None
        return torch.from_numpy(self.norm(to_array(x, self.train_cfg.n_frames)))

    # -- training -----------------------------------------------------------------------
    def fit(self, x_train, y_train, x_val, y_val,
            soft_targets: np.ndarray | None = None,
            speakers: np.ndarray | None = None,
            unlabelled: tuple[Any, np.ndarray] | None = None) -> TorchClassifier:
        """Train on ``x_train``/``y_train``, stop early on validation UA (true labels).
        ``soft_targets`` (N, C): a teacher's probabilities for each training clip; the loss
        then adds their KL term (:func:`distil_loss`), mixed by mixup like the labels.
        ``speakers`` (N,): each training clip's group the adversary names (its speaker or
        corpus: ``adversary_on``), needed by ``adversary > 0``
        (:mod:`emovox.training.adversary`) and ignored otherwise. ``unlabelled``: (features
        (M, ...), groups (M,)) of clips without labels (an ``--adapt`` run's test clips):
        each batch adds as many of them, drawn at random, augmented as the labelled ones,
        for the adversary's loss; they pass through the network in the same batch, so they
        also enter its BatchNorm statistics (batch and running)."""
        tc = self.train_cfg
        dev = torch_device(tc.device)
        torch.set_num_threads(tc.threads)
        torch.manual_seed(tc.seed)  # the network's initial weights come from this state
        gen = torch.Generator().manual_seed(tc.seed)
        np_rng = np.random.default_rng(tc.seed)
        xtr_np = to_array(x_train, tc.n_frames)
        self._fit_normaliser(xtr_np, np.asarray(y_train))
        xtr = torch.from_numpy(self.norm(xtr_np))  # type: ignore[misc]
        ytr = torch.as_tensor(np.asarray(y_train), dtype=torch.long)
        if soft_targets is not None:
            check_distil(tc)
            if np.shape(soft_targets) != (len(ytr), self.n_classes):
                raise ValueError(f"soft targets of shape {np.shape(soft_targets)} for "
                                 f"{len(ytr)} clips and {self.n_classes} classes")
            self._soft = sharpen(torch.as_tensor(np.asarray(soft_targets), dtype=torch.float32),
                                 tc.distil_temperature)
        xva = self.network_input(x_val) if len(y_val) > 0 else None
        self.input_shape = tuple(xtr.shape[1:])
        self.net = self.build_net(self.n_classes, self.input_shape, **self.net_params)
        weight = (class_weights(np.asarray(y_train), self.n_classes).to(dev)
                  if tc.class_weights else None)
        with torch.random.fork_rng():  # building it draws nothing the network's dropout
            adversary, spk, unl = (self._adversary(speakers, len(ytr), unlabelled)  # would
                                   if tc.adversary > 0 else (None, None, None))  # (review 45)
        try:  # built on the CPU: the same initial weights on any device; moved back at the end
            self.net.to(dev)
            if adversary is not None:
                adversary.to(dev)
            trained = [*self.net.parameters(), *(adversary.parameters() if adversary else [])]
            opt = torch.optim.AdamW(trained, lr=tc.lr, weight_decay=tc.weight_decay)
            sched = make_scheduler(opt, tc, max(1, int(np.ceil(len(ytr) / tc.batch_size))))
            step = _Step(opt, sched if tc.schedule is Schedule.COSINE else None, weight, gen,
                         np_rng, adversary, spk, unl, torch.Generator().manual_seed(tc.seed + 1))
            self._train(step, xtr, ytr, xva, np.asarray(y_val),
                        sched if tc.schedule is Schedule.PLATEAU else None)
        finally:
            if adversary is not None:
                adversary.detach()
            self.net.to("cpu")  # saved, exported and served from the CPU
        self._soft = None
        return self

    def _adversary(self, speakers: np.ndarray | None, n: int,
                   unlabelled: tuple[Any, np.ndarray] | None = None,
                   ) -> tuple[SpeakerAdversary, torch.Tensor, Any]:
        """The adversary on the network's embedding, the training clips' one-hot groups
        (N, S) and the unlabelled clips' (network input (M, ...), one-hot groups (M, S)) or
        None."""
        tc = self.train_cfg
        if speakers is None or len(speakers) != n:
            what = "speakers" if tc.adversary_on is AdversaryOn.SPEAKER else "corpora"
            raise ValueError(f"adversary={tc.adversary} needs each of the {n} training "
                             f"clips' {what}")
        extra = np.asarray([] if unlabelled is None else unlabelled[1], dtype=str)
        codes, n_spk = speaker_codes(np.concatenate([np.asarray(speakers, dtype=str), extra]))
        if n_spk < 2:
            raise ValueError(f"adversary_on={tc.adversary_on.value} needs clips of >= 2 "
                             f"groups to tell apart; these clips have one ({speakers[0]})")
        assert self.net is not None
        log.info("%s adversary: %d groups (%d unlabelled clips), final weight %g",
                 tc.adversary_on.value, n_spk, len(extra), tc.adversary)
        hot = F.one_hot(torch.from_numpy(codes), n_spk).float()  # (N + M, S)
        unl = None
        if unlabelled is not None and len(extra):
            xu = self.network_input(unlabelled[0])  # (M, ...)
            if tuple(xu.shape[1:]) != self.input_shape:
                raise ValueError(f"unlabelled clips of shape {tuple(xu.shape[1:])}, training "
                                 f"clips {self.input_shape}: set n_frames")
            unl = (xu, hot[n:])
        return SpeakerAdversary(self.net, n_spk), hot[:n], unl

    def _train(self, step: _Step, xtr: torch.Tensor, ytr: torch.Tensor,
               xva: torch.Tensor | None, yva: np.ndarray, plateau: Any) -> None:
        """Epochs with early stopping on validation UA; leaves the best epoch's weights.

        Without validation speakers (``xva is None``) every epoch runs, the last epoch's
        weights are kept, the history has no validation entries and a plateau schedule
        never steps (its LR stays at ``lr``)."""
        tc, net = self.train_cfg, self.net
        assert net is not None
        best_ua, best_state, bad_epochs = -1.0, copy.deepcopy(net.state_dict()), 0
        t0 = time.perf_counter()
        for epoch in range(tc.epochs):
            train_loss = self._train_epoch(step, xtr, ytr, epoch / max(tc.epochs - 1, 1))
            self.history.train_loss.append(train_loss)
            self.history.lr.append(step.opt.param_groups[0]["lr"])
            if xva is None:
                self.history.best_epoch = epoch
                if self.on_epoch:
                    self.on_epoch(epoch, tc.epochs, train_loss, math.nan)
                continue
            ua, vloss = self._validate(xva, yva)
            self.history.val_ua.append(ua)
            self.history.val_loss.append(vloss)
            if plateau is not None:
                plateau.step(ua)
            if self.on_epoch:
                self.on_epoch(epoch, tc.epochs, train_loss, ua)
            if ua > best_ua:
                best_ua, bad_epochs = ua, 0
                best_state = copy.deepcopy(net.state_dict())
                self.history.best_epoch = epoch
            else:
                bad_epochs += 1
                if bad_epochs >= tc.patience:
                    log.info("early stop at epoch %d (best %d)", epoch, self.history.best_epoch)
                    break
        if xva is not None:
            net.load_state_dict(best_state)
        net.eval()
        self.history.seconds = time.perf_counter() - t0

    def _train_epoch(self, step: _Step, xtr: torch.Tensor, ytr: torch.Tensor,
                     progress: float = 1.0) -> float:
        """One pass over the shuffled training clips; returns the mean training loss
        (``progress``, 0..1: how far training is, for the adversary's ramp)."""
        tc, net = self.train_cfg, self.net
        assert net is not None
        net.train()
        perm = torch.randperm(len(ytr), generator=step.gen)
        total, count, hits, seen = 0.0, 0, 0.0, 0
        for s in range(0, len(perm), tc.batch_size):
            idx = perm[s : s + tc.batch_size]
            if len(idx) < 2:  # BatchNorm needs two samples
                continue
            xb = xtr[idx]
            yb = F.one_hot(ytr[idx], self.n_classes).float()
            qb = self._soft[idx] if self._soft is not None else None
            sb = step.speakers[idx] if step.speakers is not None else None
            halves = [len(idx)]
            if step.unlabelled is not None:  # as many unlabelled clips, for the adversary
                assert step.unl_gen is not None and sb is not None
                j = torch.randint(len(step.unlabelled[0]), (len(idx),), generator=step.unl_gen)
                xb = torch.cat([xb, step.unlabelled[0][j]])  # (2B, ...)
                sb = torch.cat([sb, step.unlabelled[1][j]])  # (2B, S)
                halves.append(len(idx))
            xb, yb, qb, sb = augment_batch(tc, step.gen, step.np_rng, xb, yb, qb, sb,
                                           halves)  # drawn on the CPU on any device
            dev = _device_of(net)
            xb, yb = xb.to(dev), yb.to(dev)
            qb = qb.to(dev) if qb is not None else None
            sb = sb.to(dev) if sb is not None else None
            out = net(xb)[: len(idx)]  # (B, C): the emotion loss reads the labelled half
            loss = (batch_loss(out, yb, tc, step.weight, self.n_classes) if qb is None else
                    distil_loss(out, yb, qb, tc, step.weight, self.n_classes))
            if step.adversary is not None and sb is not None:
                loss = loss + step.adversary.loss(sb, confusion_weight(tc.adversary, progress))
                hits += step.adversary.hits
                seen += len(sb)
            step.opt.zero_grad()
            loss.backward()
            if tc.grad_clip:  # the adversary's own norm clipped too, apart (it was left
                nn.utils.clip_grad_norm_(net.parameters(), tc.grad_clip)  # out: review, 47)
                if step.adversary is not None:
                    nn.utils.clip_grad_norm_(step.adversary.parameters(), tc.grad_clip)
            step.opt.step()
            if step.per_step_sched is not None:
                step.per_step_sched.step()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
        if step.adversary is not None:
            self.history.adversary_acc.append(100 * hits / max(seen, 1))
        return total / max(count, 1)

    def _validate(self, xva: torch.Tensor, yva: np.ndarray) -> tuple[float, float]:
        """(UA in %, cross-entropy) on the validation speakers."""
        logits_va = self._logits(xva)
        # without scikit-learn's "y_pred contains classes not in y_true" on stderr, its file
        # path and all: a corpus with 4 of the 8 emotions predicts others (review, stop 52)
        ua = 100 * balanced_accuracy(yva, logits_va.argmax(1).numpy())
        return ua, float(F.cross_entropy(logits_va, torch.as_tensor(yva)))

    @torch.no_grad()
    def _logits(self, x: torch.Tensor, batch: int = 256) -> torch.Tensor:
        """The network's logits (N, C) on the CPU, computed where the network is."""
        assert self.net is not None
        self.net.eval()
        dev = _device_of(self.net)
        return torch.cat([self.net(x[i : i + batch].to(dev)).cpu()
                          for i in range(0, len(x), batch)])

    def predict_proba(self, x) -> np.ndarray:
        torch.set_num_threads(self.train_cfg.threads)
        return torch.softmax(self._logits(self.network_input(x)), -1).numpy().astype(np.float64)

    # -- state for the artifact writer (emovox.artifact.save_model) ----------------------
    def state(self) -> dict[str, Any]:
        """Everything the artifact stores: ``net.*`` tensors (NumPy), the network's module and
        params, input shape, training config and history, ``n_frames`` and the normaliser."""
        assert self.net is not None and self.norm is not None, "model is not trained"
        return {
            "tensors": {f"net.{k}": v.detach().contiguous().numpy()
                        for k, v in self.net.state_dict().items()},
            "module": self.build_net.__module__, "params": dict(self.net_params),
            "input_shape": list(self.input_shape),
            "train": {k: getattr(v, "value", v) for k, v in self.train_cfg.__dict__.items()},
            "history": self.history.as_dict(), "n_frames": self.train_cfg.n_frames,
            "normaliser": self.norm,
        }


def load_trained(path: Any) -> tuple[Any, Any]:
    """A saved artifact as a trainable-side model: ``(TorchClassifier | SklearnModel,
    ArtifactMeta)`` (the inverse of :func:`emovox.artifact.save_model`)."""
    import importlib

    from emovox.artifact import ModelKind, read_artifact
    from emovox.models.classical import SklearnModel
    from emovox.serving.runners import build_network

    art = read_artifact(path)
    meta = art.meta
    if meta.kind is ModelKind.SKLEARN:
        return SklearnModel(art.pipeline, meta.n_classes), meta
    assert meta.network is not None
    module = importlib.import_module(meta.network.module)
    params = {**meta.network.train, **meta.network.params}
    seed = params.pop("seed", 0)
    model = TorchClassifier(module.build_net, n_classes=meta.n_classes, seed=seed, **params)
    model.input_shape = tuple(meta.network.input_shape)
    model.net = build_network(art)
    model.norm = meta.preprocess.norm
    return model, meta
