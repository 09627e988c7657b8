"""Speaker-adversarial training (``-p adversary=W``): the confusion loss, its ramp, which
weights each term trains, and a toy problem where the speakers must become harder to read."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from torch import nn

from emovox.errors import ConfigError
from emovox.models import ecapa, mlp, validate_params
from emovox.models.params import AdversaryOn, TrainConfig
from emovox.training.adversary import (
    SpeakerAdversary,
    confusion,
    confusion_weight,
    speaker_codes,
)
from emovox.training.trainer import TorchClassifier


def test_confusion_is_log_s_at_uniform_and_larger_when_sure():
    flat = torch.zeros(4, 5)
    sure = torch.tensor([[9.0, 0, 0, 0, 0]] * 4)
    assert float(confusion(flat)) == pytest.approx(math.log(5))
    assert float(confusion(sure)) > math.log(5) + 1


def test_ramp_starts_at_zero_reaches_the_weight_and_clamps():
    assert confusion_weight(2.0, 0.0) == 0.0
    assert confusion_weight(2.0, 1.0) == pytest.approx(2.0, rel=1e-3)
    assert confusion_weight(2.0, 5.0) == confusion_weight(2.0, 1.0)
    ramp = [confusion_weight(1.0, p) for p in np.linspace(0, 1, 11)]
    assert ramp == sorted(ramp) and ramp[5] == pytest.approx(0.9866, abs=1e-4)


def test_speaker_codes_number_the_names():
    codes, n = speaker_codes(["b", "a", "b", "c"])
    assert n == 3 and codes.tolist() == [1, 0, 1, 2]


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Linear(3, 4)
        self.head = nn.Sequential(nn.Dropout(0.0), nn.Linear(4, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def _grads(weight: float) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    net = _Net()
    adv = SpeakerAdversary(net, 3, hidden=5)
    net(torch.randn(6, 3))
    adv.loss(torch.eye(3)[[0, 1, 2, 0, 1, 2]], weight).backward()
    return adv.classifier[0].weight.grad.clone(), net.body.weight.grad


def test_the_adversary_learns_from_its_own_term_and_the_network_from_the_confusion():
    adv_0, body_0 = _grads(0.0)
    adv_1, body_1 = _grads(1.0)
    assert float(body_0.abs().sum()) == 0  # with weight 0 nothing reaches the network
    assert float(body_1.abs().sum()) > 0
    assert torch.equal(adv_0, adv_1)  # the confusion term never trains the adversary
    assert float(adv_0.abs().sum()) > 0


def test_the_adversary_reads_the_head_s_input_and_leaves_no_hook():
    net = ecapa.build_net(8, (40, 16), channels=16, embedding=24)
    adv = SpeakerAdversary(net, 4)
    assert adv.classifier[0].in_features == 24
    net.eval()
    net(torch.randn(2, 40, 16))
    assert adv._embedding is not None and adv._embedding.shape == (2, 24)
    adv.detach()
    assert not net.head._forward_pre_hooks


def test_adversary_misuse_is_refused():
    with pytest.raises(ValueError, match="no head"):
        SpeakerAdversary(nn.Linear(3, 2), 3)
    with pytest.raises(ValueError, match=">= 2 training speakers"):
        SpeakerAdversary(_Net(), 1)
    with pytest.raises(RuntimeError, match="forward"):
        SpeakerAdversary(_Net(), 2).loss(torch.eye(2), 1.0)
    for bad in (-0.1, 11.0):
        with pytest.raises(ConfigError, match="adversary"):
            TrainConfig(adversary=bad)
    for fusion in ("fusion", "fusion_lrcv"):  # refused before any feature is extracted
        with pytest.raises(ConfigError, match="inside a fusion"):
            validate_params(fusion, {"adversary": "1"})
    assert validate_params("crnn_cmvn", {"adversary": "1"}) == {"adversary": 1.0}


def _toy(n: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """4 emotions and 8 speakers, each told by its own 6 dimensions."""
    rng = np.random.default_rng(0)
    y, spk = np.arange(n) % 4, (np.arange(n) // 4) % 8
    emo_c, spk_c = rng.normal(0, 2, (4, 6)), rng.normal(0, 2, (8, 6))
    x = np.concatenate([emo_c[y] + rng.normal(0, 1, (n, 6)),
                        spk_c[spk] + rng.normal(0, 1, (n, 6))], 1).astype(np.float32)
    return x, y, spk


def _fit(weight: float, x, y, spk) -> TorchClassifier:
    params = mlp.MlpConfig(epochs=30, hidden=(32, 16), dropouts=(0.0, 0.0),
                           adversary=weight).to_params()
    model = TorchClassifier(mlp.build_net, n_classes=4, seed=0, **params)
    return model.fit(x[:192], y[:192], x[:0], y[:0], speakers=spk[:192].astype(str))


def _embedding(model: TorchClassifier, x: np.ndarray) -> np.ndarray:
    seen: list[torch.Tensor] = []
    hook = model.net.head.register_forward_pre_hook(lambda _m, a: seen.append(a[0]))
    model.predict_proba(x)
    hook.remove()
    return torch.cat(seen).numpy()


def test_the_embedding_tells_speakers_apart_less_and_emotions_as_well():
    """A probe fitted on the training clips' embeddings names the held-out clips' speakers
    less often after adversarial training (39 % -> 20 % measured, chance 12.5 %), while the
    emotions stay learnt."""
    x, y, spk = _toy()
    probe = {}
    for w in (0.0, 3.0):
        model = _fit(w, x, y, spk)
        z = _embedding(model, x)
        probe[w] = LogisticRegression(max_iter=2000).fit(z[:192], spk[:192]).score(
            z[192:], spk[192:])
        emotion = float((model.predict_proba(x[192:]).argmax(1) == y[192:]).mean())
        assert emotion >= 0.9
        assert not any("classifier" in k for k in model.state()["tensors"])
        assert not model.net.head._forward_pre_hooks
        history = model.history.as_dict()
        if w:  # the adversary's accuracy on the training batches, one figure per epoch
            assert len(history["adversary_acc"]) == 30
            assert all(0 <= a <= 100 for a in history["adversary_acc"])
        else:
            assert "adversary_acc" not in history
    assert probe[3.0] <= probe[0.0] - 0.1


def test_adversarial_training_is_deterministic_and_needs_the_speakers():
    x, y, spk = _toy(64)
    a = _fit(1.0, x, y, spk).predict_proba(x)
    assert np.array_equal(a, _fit(1.0, x, y, spk).predict_proba(x))
    assert not np.allclose(a, _fit(0.0, x, y, spk).predict_proba(x))
    params = mlp.MlpConfig(epochs=1, adversary=1.0).to_params()
    with pytest.raises(ValueError, match="speakers"):
        TorchClassifier(mlp.build_net, n_classes=4, **params).fit(x, y, x[:0], y[:0])


def test_unlabelled_clips_reach_the_adversary_only(monkeypatch):
    """``adversary_on=corpus`` with unlabelled clips of another corpus (an adapted run's test
    clips): each batch adds as many of them for the adversary, which then names both corpora;
    their labels are never asked for, and without an adversary they are not used at all."""
    x, y, _ = _toy(128)
    rng = np.random.default_rng(1)
    target = (x[:64] + rng.normal(3, 1, (64, x.shape[1]))).astype(np.float32)
    corpora = np.array(["ravdess"] * 96)
    unlabelled = (target, np.array(["emovo"] * 64))

    def fit(weight: float, **kw) -> TorchClassifier:
        params = mlp.MlpConfig(epochs=5, hidden=(32, 16), dropouts=(0.0, 0.0),
                               adversary=weight, adversary_on="corpus").to_params()
        model = TorchClassifier(mlp.build_net, n_classes=4, seed=0, **params)
        return model.fit(x[:96], y[:96], x[:0], y[:0], **kw)

    batches: list[torch.Tensor] = []
    real = SpeakerAdversary.loss

    def spy(self, targets, weight):
        batches.append(targets.clone())
        return real(self, targets, weight)

    with monkeypatch.context() as m:
        m.setattr(SpeakerAdversary, "loss", spy)
        with_target = fit(1.0, speakers=corpora, unlabelled=unlabelled)
    assert len(batches) == 5 * 3  # 96 clips in batches of 32, 5 epochs
    for t in batches:  # 32 training clips, then 32 unlabelled ones: codes emovo 0, ravdess 1
        assert t.shape == (64, 2)
        assert torch.equal(t[:32, 1], torch.ones(32)) and torch.equal(t[32:, 0], torch.ones(32))
    alone = fit(1.0, speakers=np.array(["ravdess"] * 48 + ["emovo"] * 48))
    assert not np.allclose(with_target.predict_proba(x), alone.predict_proba(x))
    plain = mlp.MlpConfig(epochs=5, hidden=(32, 16), dropouts=(0.0, 0.0)).to_params()
    a = TorchClassifier(mlp.build_net, n_classes=4, seed=0, **plain).fit(
        x[:96], y[:96], x[:0], y[:0], speakers=corpora, unlabelled=unlabelled)
    b = TorchClassifier(mlp.build_net, n_classes=4, seed=0, **plain).fit(x[:96], y[:96], x[:0],
                                                                         y[:0])
    assert np.array_equal(a.predict_proba(x), b.predict_proba(x))
    with pytest.raises(ValueError, match=">= 2 groups"):  # one corpus and nothing else
        fit(1.0, speakers=corpora)
    with pytest.raises(ValueError, match="training clips' corpora"):
        fit(1.0)


def test_adversary_on_is_checked():
    assert validate_params("ecapa_cmvn", {"adversary": "1", "adversary_on": "corpus"}) == {
        "adversary": 1.0, "adversary_on": AdversaryOn.CORPUS}
    with pytest.raises(ConfigError, match="needs adversary=W"):
        validate_params("ecapa_cmvn", {"adversary_on": "corpus"})
    with pytest.raises(ConfigError, match="adversary_on"):
        validate_params("ecapa_cmvn", {"adversary": "1", "adversary_on": "gender"})


def test_the_batch_augmentations_treat_both_halves_alike_and_mix_within_each():
    """Code review, stop 45: SpecAugment and mixup reached the labelled half only, so the
    adversary could tell the halves apart by their augmentation alone (82-88 % on copies of
    the training clips). Now every row is masked alike and mixup pairs rows of one half."""
    from emovox.training.batch_augment import augment_batch

    tc = TrainConfig(specaugment=True, mixup_alpha=0.4)
    x = torch.arange(8, dtype=torch.float32).view(8, 1, 1).expand(8, 64, 32).contiguous()
    y = torch.eye(4)[torch.arange(4)]
    s = torch.eye(8)  # each row its own group: the mix shows who its partner was
    xb, yb, _, sb = augment_batch(tc, torch.Generator().manual_seed(0),
                                  np.random.default_rng(0), x, y, None, s, [4, 4])
    masked = (xb == 0).float().mean(dim=(1, 2))
    assert (masked[4:] > 0).all()  # the unlabelled rows are masked too (row 0 holds zeros)
    assert sb[:4, 4:].sum() == 0 and sb[4:, :4].sum() == 0  # partners within each half
    assert yb.shape == (4, 4) and torch.allclose(yb.sum(1), torch.ones(4))


def test_building_the_adversary_does_not_reseed_the_network():
    """Code review, stop 45: building the adversary drew from the generator dropout uses, so
    W = 0 and W > 0 differed even where the confusion term is still 0 (one epoch: its ramp
    starts at 0). With dropout, one epoch: the same network either way."""
    x, y, spk = _toy(64)

    def fit(weight: float) -> np.ndarray:
        params = mlp.MlpConfig(epochs=1, hidden=(32, 16), dropouts=(0.3, 0.3),
                               adversary=weight).to_params()
        model = TorchClassifier(mlp.build_net, n_classes=4, seed=0, **params)
        return model.fit(x, y, x[:0], y[:0], speakers=spk.astype(str)).predict_proba(x)

    assert np.array_equal(fit(0.0), fit(1.0))
