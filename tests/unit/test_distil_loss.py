"""The distillation loss of the trainer: KL term, temperature, alpha, mixup of soft targets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from emovox.errors import ConfigError
from emovox.models import mlp
from emovox.models.params import TrainConfig
from emovox.training import trainer
from emovox.training.trainer import (
    TorchClassifier,
    batch_loss,
    distil_kl,
    distil_loss,
    sharpen,
)
from signals import blobs


def _logits(seed: int = 0) -> torch.Tensor:
    return torch.randn(6, 8, generator=torch.Generator().manual_seed(seed)) * 3


@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.0])
def test_kl_is_zero_when_the_student_logits_are_the_teacher_log_probabilities(temperature):
    teacher = torch.softmax(_logits(0), -1)
    kl = distil_kl(torch.log(teacher), sharpen(teacher, temperature), temperature)
    assert float(kl) == pytest.approx(0.0, abs=1e-5)
    other = distil_kl(_logits(1), sharpen(teacher, temperature), temperature)
    assert float(other) > 0.01  # and positive for another student


def test_kl_matches_its_definition_and_handles_zero_teacher_probabilities():
    teacher = torch.softmax(_logits(2), -1)
    teacher[:, 1] = 0.0  # a class the clip's corpus lacks
    teacher = teacher / teacher.sum(-1, keepdim=True)
    t = 2.0
    q = sharpen(teacher, t)
    assert torch.allclose(q.sum(-1), torch.ones(6)) and bool((q[:, 1] == 0).all())
    s = F.log_softmax(_logits(3) / t, -1)
    manual = sum(float(q[i, c] * (torch.log(q[i, c]) - s[i, c]))
                 for i in range(6) for c in range(8) if q[i, c] > 0) / 6
    assert float(distil_kl(_logits(3), q, t)) == pytest.approx(t**2 * manual, rel=1e-5)
    assert torch.isfinite(distil_kl(_logits(3), q, t))


def test_sharpen_is_softmax_of_tempered_logits():
    logits = _logits(4)
    assert torch.allclose(sharpen(torch.softmax(logits, -1), 3.0),
                          torch.softmax(logits / 3.0, -1), atol=1e-6)
    assert torch.allclose(sharpen(torch.softmax(logits, -1), 1.0), torch.softmax(logits, -1),
                          atol=1e-6)


def test_distil_loss_mixes_hard_and_soft_terms_by_alpha():
    logits, y = _logits(5), F.one_hot(torch.tensor([0, 1, 2, 3, 4, 5]), 8).float()
    q = sharpen(torch.softmax(_logits(6), -1), 2.0)
    w = torch.rand(8, generator=torch.Generator().manual_seed(0)) + 0.5
    tc = TrainConfig(label_smoothing=0.1)
    hard = batch_loss(logits, y, tc, w, 8)
    soft = distil_kl(logits, q, 2.0)
    for alpha in (0.0, 0.3, 1.0):
        tca = TrainConfig(label_smoothing=0.1, distil_alpha=alpha, distil_temperature=2.0)
        got = distil_loss(logits, y, q, tca, w, 8)
        assert float(got) == pytest.approx(float((1 - alpha) * hard + alpha * soft), rel=1e-6)
    zero = TrainConfig(label_smoothing=0.1, distil_alpha=0.0)
    assert torch.equal(distil_loss(logits, y, q, zero, w, 8), hard)


def test_mixup_mixes_soft_targets_with_the_inputs_lambda_and_permutation(monkeypatch):
    """Soft targets = the one-hot of the NEXT class: after mixup each batch's soft targets
    must be the mixed labels shifted by one class (same lambda, same partner clips)."""
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    real = trainer.distil_loss

    def spy(logits, yb, qb, tc, weight, n):
        seen.append((yb.clone(), qb.clone()))
        return real(logits, yb, qb, tc, weight, n)

    monkeypatch.setattr(trainer, "distil_loss", spy)
    x, y = blobs()
    soft = np.eye(8)[(y[:64] + 1) % 8]
    m = TorchClassifier(mlp.build_net, n_classes=8, seed=0,
                        **mlp.MlpConfig(epochs=2, mixup_alpha=0.4,
                                        distil_temperature=3.0).to_params())
    m.fit(x[:64], y[:64], x[64:], y[64:], soft_targets=soft)
    assert len(seen) == 4  # 2 epochs x 2 batches
    mixed = 0
    for yb, qb in seen:
        assert torch.allclose(qb, torch.roll(yb, 1, dims=1), atol=1e-6)
        mixed += int(((yb > 0) & (yb < 1)).any())
    assert mixed > 0  # mixup did mix


def test_alpha_zero_reproduces_the_plain_training_run():
    x, y = blobs()
    params = mlp.MlpConfig(epochs=3, mixup_alpha=0.4).to_params()
    plain = TorchClassifier(mlp.build_net, n_classes=8, seed=1, **params)
    plain.fit(x[:64], y[:64], x[64:], y[64:])
    rng = np.random.default_rng(0)
    soft = rng.dirichlet(np.ones(8), 64)
    zero = TorchClassifier(mlp.build_net, n_classes=8, seed=1, **{**params, "distil_alpha": 0.0})
    zero.fit(x[:64], y[:64], x[64:], y[64:], soft_targets=soft)
    assert zero.history.train_loss == plain.history.train_loss
    assert np.array_equal(zero.predict_proba(x), plain.predict_proba(x))
    half = TorchClassifier(mlp.build_net, n_classes=8, seed=1, **params)
    half.fit(x[:64], y[:64], x[64:], y[64:], soft_targets=soft)
    assert half.history.train_loss != plain.history.train_loss


@pytest.mark.parametrize(("key", "value", "match"), [
    ("distil_alpha", 1.5, "distil_alpha"), ("distil_alpha", -0.1, "distil_alpha"),
    ("distil_temperature", 0.0, "distil_temperature"),
])
def test_bad_distillation_params_are_refused(key, value, match):
    with pytest.raises(ConfigError, match=match):  # at construction, before any training
        TorchClassifier(mlp.build_net, n_classes=8, seed=0,
                        **{**mlp.MlpConfig(epochs=1).to_params(), key: value})


def test_soft_targets_of_the_wrong_shape_are_refused():
    x, y = blobs()
    m = TorchClassifier(mlp.build_net, n_classes=8, seed=0, **mlp.MlpConfig(epochs=1).to_params())
    with pytest.raises(ValueError, match="soft targets of shape"):
        m.fit(x[:64], y[:64], x[64:], y[64:], soft_targets=np.full((63, 8), 1 / 8))


def test_label_smoothing_reaches_the_focal_loss_too():
    """`-p loss=focal -p label_smoothing=0.1` was accepted and the smoothing ignored (a
    review, stop 47): the focal loss now sees the smoothed targets, as the cross-entropy."""
    from emovox.models.params import Loss
    from emovox.training.trainer import focal_loss

    logits, y = _logits(7), F.one_hot(torch.tensor([0, 1, 2, 3, 4, 5]), 8).float()
    plain = batch_loss(logits, y, TrainConfig(loss=Loss.FOCAL), None, 8)
    smooth = batch_loss(logits, y, TrainConfig(loss=Loss.FOCAL, label_smoothing=0.3), None, 8)
    want = focal_loss(logits, y * 0.7 + 0.3 / 8, TrainConfig().focal_gamma, None)
    assert float(smooth) == pytest.approx(float(want), rel=1e-6)
    assert abs(float(smooth) - float(plain)) > 1e-3


def test_gradient_clipping_bounds_the_speaker_adversary_too(monkeypatch):
    """The adversary's parameters are trained by the same optimiser, but only the network's
    gradients were clipped (a review, stop 47)."""
    norms = []
    real = torch.optim.AdamW.step

    def spy(self, *a, **kw):
        for group in self.param_groups:
            grads = [p.grad for p in group["params"] if p.grad is not None]
            norms.append(float(torch.linalg.vector_norm(torch.stack(
                [torch.linalg.vector_norm(g) for g in grads]))) if grads else 0.0)
        return real(self, *a, **kw)

    monkeypatch.setattr(torch.optim.AdamW, "step", spy)
    x, y = blobs(128, 20, seed=1)
    speakers = np.array([f"s{i % 4}" for i in range(len(y))])
    clf = TorchClassifier(mlp.build_net, n_classes=8, seed=0, threads=1, epochs=1,
                          batch_size=64, grad_clip=0.01, adversary=1.0, hidden=(16,),
                          dropouts=(0.0,))
    clf.fit(x, y, x[:0], y[:0], speakers=speakers)
    assert norms and max(norms) <= 2 ** 0.5 * 0.01 + 1e-6  # network and adversary, 0.01 each
