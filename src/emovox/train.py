"""Training PyTorch classifiers: normalisation fitted on training data, AdamW, a
learning-rate schedule, class-weighted CE or focal loss, SpecAugment and mixup on
training batches only, gradient clipping, early stopping on validation speakers.

:class:`TorchClassifier` implements the :class:`emovox.models.base.Model` protocol so
the experiment runner treats it like any scikit-learn pipeline.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from sklearn.metrics import balanced_accuracy_score
from sklearn.utils.class_weight import compute_class_weight
from torch import nn

from emovox.preprocess import Normaliser, pad_or_crop

log = logging.getLogger(__name__)


class Loss(str, Enum):
    CE = "ce"
    FOCAL = "focal"


class Schedule(str, Enum):
    PLATEAU = "plateau"  #: reduce LR x0.5 when validation UA stalls (seed 000 style)
    COSINE = "cosine"  #: one-cycle cosine with warm-up
    CONSTANT = "constant"


@dataclass
class TrainConfig:
    epochs: int = 40
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    loss: Loss = Loss.CE
    focal_gamma: float = 2.0
    label_smoothing: float = 0.0
    class_weights: bool = True
    patience: int = 10
    schedule: Schedule = Schedule.PLATEAU
    lr_plateau_factor: float = 0.5
    lr_plateau_patience: int = 0  #: 0 = a third of ``patience``
    grad_clip: float = 5.0
    specaugment: bool = False
    mixup_alpha: float = 0.0
    n_frames: int = 0  #: sequences padded/cropped to this many frames (0 = keep the net's own)
    select_k: int = 0  #: SelectKBest(f_classif) on training data (0 = keep all)
    threads: int = 2
    seed: int = 0

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> tuple[TrainConfig, dict[str, Any]]:
        """Split ``params`` into training keys (this class) and network keys (the rest)."""
        names = set(cls.__dataclass_fields__)
        tc = cls(**{k: v for k, v in params.items() if k in names})
        tc.loss = Loss(tc.loss)
        tc.schedule = Schedule(tc.schedule)
        return tc, {k: v for k, v in params.items() if k not in names}


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
    w = weight if weight is not None else torch.ones(logits.shape[-1])
    return -(target * w * (1 - p) ** gamma * logp).sum(-1).mean()


def spec_augment(
    x: torch.Tensor, gen: torch.Generator, n_time: int = 2, max_t: int = 30, n_freq: int = 2,
    max_f: int = 8,
) -> torch.Tensor:
    """SpecAugment masks (time and frequency) on a normalised batch. # (B, T, F)"""
    x = x.clone()
    b, t, f = x.shape
    for i in range(b):
        for _ in range(n_time):
            w = int(torch.randint(0, max_t + 1, (1,), generator=gen))
            s = int(torch.randint(0, max(1, t - w), (1,), generator=gen))
            x[i, s : s + w, :] = 0.0
        for _ in range(n_freq):
            w = int(torch.randint(0, max_f + 1, (1,), generator=gen))
            s = int(torch.randint(0, max(1, f - w), (1,), generator=gen))
            x[i, :, s : s + w] = 0.0
    return x


@dataclass
class History:
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_ua: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    best_epoch: int = -1
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


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
        self.train_cfg, self.net_params = TrainConfig.from_params(params)
        self.train_cfg.seed = seed
        self.on_epoch = on_epoch
        self.net: nn.Module | None = None
        self.norm: Normaliser | None = None
        self.input_shape: tuple[int, ...] = ()
        self.history = History()

    # -- data ---------------------------------------------------------------------------
    def _fit_normaliser(self, x: np.ndarray, y: np.ndarray) -> None:
        self.norm = Normaliser.fit(x, y, select_k=self.train_cfg.select_k)

    def _prepare(self, x: np.ndarray | list[np.ndarray]) -> torch.Tensor:
        assert self.norm is not None
        return torch.from_numpy(self.norm(to_array(x, self.train_cfg.n_frames)))

    # -- training -----------------------------------------------------------------------
    def fit(self, x_train, y_train, x_val, y_val) -> TorchClassifier:
        tc = self.train_cfg
        torch.set_num_threads(tc.threads)
        torch.manual_seed(tc.seed)
        gen = torch.Generator().manual_seed(tc.seed)
        np_rng = np.random.default_rng(tc.seed)
        xtr_np = to_array(x_train, tc.n_frames)
        self._fit_normaliser(xtr_np, np.asarray(y_train))
        xtr = torch.from_numpy(self.norm(xtr_np))  # type: ignore[misc]
        ytr = torch.as_tensor(np.asarray(y_train), dtype=torch.long)
        has_val = len(y_val) > 0
        xva = self._prepare(x_val) if has_val else None
        yva = np.asarray(y_val)
        self.input_shape = tuple(xtr.shape[1:])
        self.net = self.build_net(self.n_classes, self.input_shape, **self.net_params)
        net = self.net

        weight = None
        if tc.class_weights:
            present = np.unique(y_train)
            w = np.ones(self.n_classes)
            w[present] = compute_class_weight("balanced", classes=present, y=np.asarray(y_train))
            weight = torch.tensor(w, dtype=torch.float32)

        opt = torch.optim.AdamW(net.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
        steps_per_epoch = max(1, int(np.ceil(len(ytr) / tc.batch_size)))
        if tc.schedule is Schedule.COSINE:
            sched: Any = torch.optim.lr_scheduler.OneCycleLR(
                opt, max_lr=tc.lr, total_steps=tc.epochs * steps_per_epoch, pct_start=0.15
            )
        elif tc.schedule is Schedule.PLATEAU:
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
                opt, mode="max", factor=tc.lr_plateau_factor,
                patience=tc.lr_plateau_patience or max(1, tc.patience // 3),
            )
        else:
            sched = None

        best_ua, best_state, bad_epochs = -1.0, copy.deepcopy(net.state_dict()), 0
        t0 = time.perf_counter()
        for epoch in range(tc.epochs):
            net.train()
            perm = torch.randperm(len(ytr), generator=gen)
            total, count = 0.0, 0
            for s in range(0, len(perm), tc.batch_size):
                idx = perm[s : s + tc.batch_size]
                if len(idx) < 2:  # BatchNorm needs two samples
                    continue
                xb = xtr[idx]
                yb = F.one_hot(ytr[idx], self.n_classes).float()
                if tc.specaugment and xb.ndim == 3:
                    xb = spec_augment(xb, gen)
                if tc.mixup_alpha > 0:
                    lam = float(np_rng.beta(tc.mixup_alpha, tc.mixup_alpha))
                    j = torch.randperm(len(idx), generator=gen)
                    xb = lam * xb + (1 - lam) * xb[j]
                    yb = lam * yb + (1 - lam) * yb[j]
                logits = net(xb)  # (B, C)
                if tc.loss is Loss.FOCAL:
                    loss = focal_loss(logits, yb, tc.focal_gamma, weight)
                else:
                    if tc.label_smoothing:
                        yb = yb * (1 - tc.label_smoothing) + tc.label_smoothing / self.n_classes
                    w = weight if weight is not None else torch.ones(self.n_classes)
                    loss = -(yb * w * F.log_softmax(logits, -1)).sum(-1).mean()
                opt.zero_grad()
                loss.backward()
                if tc.grad_clip:
                    nn.utils.clip_grad_norm_(net.parameters(), tc.grad_clip)
                opt.step()
                if tc.schedule is Schedule.COSINE:
                    sched.step()
                total += float(loss.detach()) * len(idx)
                count += len(idx)
            train_loss = total / max(count, 1)
            self.history.train_loss.append(train_loss)
            self.history.lr.append(opt.param_groups[0]["lr"])
            if has_val:
                logits_va = self._logits(xva)
                ua = 100 * balanced_accuracy_score(yva, logits_va.argmax(1).numpy())
                vloss = float(F.cross_entropy(logits_va, torch.as_tensor(yva)))
            else:  # no validation speakers: keep the last epoch
                ua, vloss = float(epoch), float("nan")
            self.history.val_ua.append(ua)
            self.history.val_loss.append(vloss)
            if tc.schedule is Schedule.PLATEAU:
                sched.step(ua)
            if self.on_epoch:
                self.on_epoch(epoch, tc.epochs, train_loss, ua)
            if ua > best_ua:
                best_ua, bad_epochs = ua, 0
                best_state = copy.deepcopy(net.state_dict())
                self.history.best_epoch = epoch
            else:
                bad_epochs += 1
                if has_val and bad_epochs >= tc.patience:
                    log.info("early stop at epoch %d (best %d)", epoch, self.history.best_epoch)
                    break
        net.load_state_dict(best_state)
        net.eval()
        self.history.seconds = time.perf_counter() - t0
        return self

    @torch.no_grad()
    def _logits(self, x: torch.Tensor, batch: int = 256) -> torch.Tensor:
        assert self.net is not None
        self.net.eval()
        return torch.cat([self.net(x[i : i + batch]) for i in range(0, len(x), batch)])

    def predict_proba(self, x) -> np.ndarray:
        torch.set_num_threads(self.train_cfg.threads)
        return torch.softmax(self._logits(self._prepare(x)), -1).numpy().astype(np.float64)

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
