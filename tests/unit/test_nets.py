"""Shape, gradient and sanity tests for the PyTorch nets in emovox.models (fast, CPU, seeded)."""

from __future__ import annotations

import dataclasses
import inspect
import re
from types import ModuleType

import pytest
import torch
from torch import nn

from emovox.errors import ConfigError
from emovox.models import (
    MODELS,
    cnn_bilstm,
    cnn_gru_attention,
    conv1d,
    crnn,
    ecapa,
    mlp,
    reslstm,
    resnet_mlp,
)
from emovox.models import configs as model_configs
from emovox.models.params import ModelParams, TrainConfig
from emovox.training import build_model

N_CLASSES = 8

# module -> (documented input shape, a second input shape, (min, max) parameter count)
NETS: dict[ModuleType, tuple[tuple[int, ...], tuple[int, ...], tuple[int, int]]] = {
    cnn_bilstm: ((94, 60), (47, 60), (100_000, 1_000_000)),
    conv1d: ((162,), (100,), (200_000, 1_000_000)),
    resnet_mlp: ((40,), (20,), (20_000, 300_000)),
    mlp: ((340,), (128,), (100_000, 1_000_000)),
    cnn_gru_attention: ((200, 40), (150, 40), (50_000, 500_000)),
    crnn: ((300, 64), (150, 64), (100_000, 1_000_000)),
    ecapa: ((256, 64), (101, 64), (100_000, 1_000_000)),
    reslstm: ((256, 72), (101, 72), (300_000, 1_500_000)),
}
CONFIGS: dict[ModuleType, type[TrainConfig]] = {
    cnn_bilstm: cnn_bilstm.CnnBiLstmConfig,
    conv1d: conv1d.Conv1dConfig,
    resnet_mlp: resnet_mlp.ResNetMlpConfig,
    mlp: mlp.MlpConfig,
    cnn_gru_attention: cnn_gru_attention.CnnGruAttentionConfig,
    crnn: crnn.CrnnConfig,
    ecapa: ecapa.EcapaConfig,
    reslstm: reslstm.ResLstmConfig,
}
# registered model -> (input shape, parameter count of its network with default params),
# recorded on main before the configs were introduced: the refactor must not change a net
REGISTERED_NET_PARAMS: dict[str, tuple[tuple[int, ...], int]] = {
    "cnn_bilstm": ((94, 60), 359_240),
    "conv1d": ((162,), 557_288),
    "resnet_mlp": ((40,), 65_768),
    "mlp": ((340,), 341_640),
    "cnn_gru_attention": ((200, 40), 124_424),
    "crnn": ((256, 64), 356_088),
    "fusion": ((256, 64), 356_088),
    "fusion_lrcv": ((256, 64), 356_088),
    "crnn_cmvn": ((256, 64), 356_088),
    "ecapa_cmvn": ((256, 64), 301_840),  # added after the refactor, pinned when introduced
    "ecapa": ((256, 64), 301_840),  # ecapa_cmvn's network on the raw log-mel
    "ecapa_gain": ((256, 64), 301_840),  # the same network, gain-normalised log-mel
    "ecapa_cmn": ((256, 64), 301_840),  # the same network, mean-normalised bands
    "reslstm_cmvn": ((256, 72), 848_264),  # pinned when introduced
    "reslstm_logmel": ((256, 64), 876_936),  # pinned when introduced
}


def short_name(mod: ModuleType) -> str:
    return mod.__name__.rsplit(".", 1)[-1]


PARAMS = [pytest.param(m, *v, id=short_name(m)) for m, v in NETS.items()]


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def build(mod: ModuleType, shape: tuple[int, ...], **hp) -> nn.Module:
    return mod.build_net(N_CLASSES, shape, **hp)


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def first_layer(net: nn.Module) -> nn.Module:
    return next(m for m in net.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)))


@pytest.mark.parametrize(("mod", "shape", "other_shape", "param_range"), PARAMS)
def test_config_defaults_are_sane_and_frozen(mod, shape, other_shape, param_range) -> None:
    cfg = CONFIGS[mod]()
    assert cfg.epochs > 0 and cfg.batch_size > 0 and 0 < cfg.lr < 1
    assert cfg.net_keys(), "a network config adds its own fields"
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.epochs = 1  # type: ignore[misc]


@pytest.mark.parametrize("cls", [
    TrainConfig, *(getattr(model_configs, n) for n in dir(model_configs)
                   if n.endswith("Config") and n != "TrainConfig"),
], ids=lambda c: c.__name__)
def test_every_config_field_is_documented(cls: type[ModelParams]) -> None:
    """Each field a config class declares has a ``#:`` comment right above it."""
    lines = inspect.getsource(cls).splitlines()
    own = cls.__dict__.get("__annotations__", {})
    for name in own:
        if name == "HIDDEN":
            continue
        k = next(i for i, line in enumerate(lines) if line.strip().startswith(f"{name}:"))
        assert lines[k - 1].strip().startswith("#:"), f"{cls.__name__}.{name} has no doc comment"


@pytest.mark.parametrize(("mod", "shape", "other_shape", "param_range"), PARAMS)
def test_training_keys_do_not_change_the_network(mod, shape, other_shape, param_range) -> None:
    """build_net accepts the whole config (training keys included) and ignores the training
    part: same architecture as with no keys at all."""
    torch.manual_seed(0)
    plain = build(mod, shape)
    torch.manual_seed(0)
    full = build(mod, shape, **{**CONFIGS[mod]().to_params(), "epochs": 3, "lr": 0.5})
    assert str(plain) == str(full) and n_params(plain) == n_params(full)


@pytest.mark.parametrize(("mod", "shape", "other_shape", "param_range"), PARAMS)
def test_unknown_or_ill_typed_key_is_refused(mod, shape, other_shape, param_range) -> None:
    with pytest.raises(ConfigError, match="valid keys: .*dropout"):
        build(mod, shape, dropuot=0.1)
    with pytest.raises(ConfigError, match="dropout"):
        build(mod, shape, dropout="much") if mod is not mlp else build(mod, shape, dropouts="x")


@pytest.mark.parametrize("name", list(REGISTERED_NET_PARAMS))
def test_registered_defaults_build_the_same_network(name) -> None:
    """Default params of every registered neural model give the parameter count recorded
    before the refactor (and validated params build the same net as the defaults)."""
    shape, expected = REGISTERED_NET_PARAMS[name]
    spec = MODELS[name]
    model = build_model(spec, n_classes=N_CLASSES, seed=0)
    member = model.members[0][0] if hasattr(model, "members") else model
    assert n_params(member.build_net(N_CLASSES, shape, **member.net_params)) == expected
    again = build_model(spec, n_classes=N_CLASSES, seed=0, **spec.validate({"epochs": "2"}))
    member = again.members[0][0] if hasattr(again, "members") else again
    assert member.train_cfg.epochs == 2
    assert n_params(member.build_net(N_CLASSES, shape, **member.net_params)) == expected


@pytest.mark.parametrize(("mod", "shape", "other_shape", "param_range"), PARAMS)
def test_logits_shape_and_finite(mod, shape, other_shape, param_range) -> None:
    out = build(mod, shape)(torch.randn(4, *shape))
    assert out.shape == (4, N_CLASSES)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("mod", [cnn_bilstm, cnn_gru_attention, crnn, reslstm], ids=short_name)
def test_sequence_net_accepts_other_lengths(mod) -> None:
    """One sequence net takes any T (the trainer may feed T=150 to a net built for T=300)."""
    shape, other_shape, _ = NETS[mod]
    net = build(mod, shape).eval()
    with torch.no_grad():
        for t in (other_shape[0], shape[0] + 17):
            out = net(torch.randn(2, t, shape[1]))
            assert out.shape == (2, N_CLASSES) and torch.isfinite(out).all()


@pytest.mark.parametrize(("mod", "shape", "other_shape", "param_range"), PARAMS)
def test_builds_for_second_shape(mod, shape, other_shape, param_range) -> None:
    net = build(mod, other_shape).eval()
    out = net(torch.randn(3, *other_shape))
    assert out.shape == (3, N_CLASSES) and torch.isfinite(out).all()


@pytest.mark.parametrize(("mod", "shape", "other_shape", "param_range"), PARAMS)
def test_parameter_count_in_range(mod, shape, other_shape, param_range) -> None:
    lo, hi = param_range
    assert lo <= n_params(build(mod, shape)) <= hi


@pytest.mark.parametrize(("mod", "shape", "other_shape", "param_range"), PARAMS)
def test_gradient_reaches_first_layer(mod, shape, other_shape, param_range) -> None:
    net = build(mod, shape).train()
    loss = nn.functional.cross_entropy(net(torch.randn(4, *shape)), torch.arange(4))
    loss.backward()
    grad = first_layer(net).weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


@pytest.mark.parametrize(("mod", "shape", "other_shape", "param_range"), PARAMS)
def test_eval_mode_is_deterministic(mod, shape, other_shape, param_range) -> None:
    net = build(mod, shape)
    net.train()
    net(torch.randn(8, *shape))  # move BatchNorm running statistics off their init
    net.eval()
    x = torch.randn(4, *shape)
    with torch.no_grad():
        a, b = net(x), net(x)
    assert torch.equal(a, b)
    # and a sample's logits do not depend on the rest of the batch in eval mode
    with torch.no_grad():
        single = net(x[:1])
    torch.testing.assert_close(single, a[:1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("mod", "shape", "other_shape", "param_range"), PARAMS)
def test_rejects_wrong_input_rank(mod, shape, other_shape, param_range) -> None:
    bad = (*shape, 3) if len(shape) == 1 else shape[:1]
    want = r"\(D,\)" if len(shape) == 1 else r"\(T, [FM]\)"  # the rank it takes, not another
    with pytest.raises(ValueError, match=rf"^{short_name(mod)} expects input_shape {want}, "
                                         rf"got {re.escape(str(bad))}$"):
        mod.build_net(N_CLASSES, bad)


def test_conv1d_matches_seed_layout() -> None:
    """162 -> 81 -> 41 -> 21 -> 11 steps ("same" pools), so Flatten gives 64 x 11 = 704."""
    net = conv1d.build_net(N_CLASSES, (162,))
    dense = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert [(d.in_features, d.out_features) for d in dense] == [(704, 32), (32, N_CLASSES)]
    convs = [m for m in net.modules() if isinstance(m, nn.Conv1d)]
    assert [c.out_channels for c in convs] == [256, 256, 128, 64]


def _bilstm_outputs(net: cnn_bilstm.CnnBiLstm, x: torch.Tensor) -> torch.Tensor:
    """The BiLSTM outputs (B, T', 2H) the pooling sees, computed from the submodules."""
    h, _ = net.lstm(net.conv(x.transpose(1, 2)).transpose(1, 2))
    return h


@pytest.mark.parametrize("pooling", ["mean", "last"])
def test_cnn_bilstm_pooling_is_applied(pooling) -> None:
    """The head sees the time-mean (``mean``) or the last step (``last``) of the BiLSTM
    outputs, and the two give different logits for the same weights."""
    net = cnn_bilstm.build_net(N_CLASSES, (94, 60), pooling=pooling).eval()
    x = torch.randn(3, 94, 60)
    with torch.no_grad():
        h = _bilstm_outputs(net, x)
        pooled = h.mean(dim=1) if pooling == "mean" else h[:, -1]
        torch.testing.assert_close(net(x), net.head(pooled))
        other = h[:, -1] if pooling == "mean" else h.mean(dim=1)
        assert not torch.allclose(net(x), net.head(other), atol=1e-4)
    with pytest.raises(ConfigError, match="mean|last"):
        cnn_bilstm.build_net(N_CLASSES, (94, 60), pooling="max")


def test_cnn_gru_attention_unidirectional() -> None:
    """bidirectional=False: one direction of 2 x gru_hidden units whose outputs at step t
    do not depend on later frames (the bidirectional GRU's do)."""
    uni = cnn_gru_attention.build_net(N_CLASSES, (200, 40), bidirectional=False).eval()
    bi = cnn_gru_attention.build_net(N_CLASSES, (200, 40)).eval()
    assert uni(torch.randn(2, 200, 40)).shape == (2, N_CLASSES)
    assert not uni.gru.bidirectional and uni.gru.hidden_size == 128
    assert bi.gru.bidirectional and bi.gru.hidden_size == 64
    assert n_params(uni) == 149_000 and n_params(bi) == 124_424
    z = torch.randn(2, 50, 128)
    z2 = z.clone()
    z2[:, 30:] += 1.0  # change only the late frames
    with torch.no_grad():
        for net, causal in ((uni, True), (bi, False)):
            a, b = net.gru(z)[0][:, :30], net.gru(z2)[0][:, :30]
            assert torch.equal(a, b) is causal


@pytest.mark.slow
def test_crnn_with_aux_vector() -> None:
    net = crnn.build_net(N_CLASSES, (300, 64), n_aux=88)
    x, aux = torch.randn(4, 300, 64), torch.randn(4, 88)
    out = net(x, aux)
    assert out.shape == (4, N_CLASSES) and torch.isfinite(out).all()
    out.sum().backward()
    assert net.aux_norm.weight.grad is not None and net.aux_norm.weight.grad.abs().sum() > 0
    net.eval()
    with torch.no_grad():
        assert torch.equal(net(x, aux), net(x, aux))
        assert not torch.equal(net(x, aux), net(x, aux + 1.0))  # aux does reach the logits
    with pytest.raises(ValueError):
        net(x)  # built with n_aux > 0: aux is required
    with pytest.raises(ValueError):
        crnn.build_net(N_CLASSES, (300, 64))(x, aux)  # built without aux


def test_crnn_attentive_stats_pool_is_weighted_mean_and_std() -> None:
    pool = crnn.AttentiveStatsPool(6, 4)
    nn.init.zeros_(pool.score.weight)  # uniform attention -> plain mean and (biased) std
    h = torch.randn(3, 10, 6)
    out = pool(h)
    torch.testing.assert_close(out[:, :6], h.mean(dim=1))
    torch.testing.assert_close(out[:, 6:], h.std(dim=1, unbiased=False), rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_mlp_overfits_tiny_set() -> None:
    """16 random samples, 8 classes: 100 Adam steps must reach 100 % training accuracy."""
    x = torch.randn(16, 340)
    y = torch.arange(16) % N_CLASSES
    net = mlp.build_net(N_CLASSES, (340,))
    opt = torch.optim.Adam(net.parameters(), lr=mlp.MlpConfig().lr)
    net.train()
    for _ in range(100):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        acc = (net(x).argmax(dim=1) == y).float().mean().item()
    assert acc == 1.0


class _NoGate(nn.Module):
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(z)


def test_ecapa_convolutions_see_a_bounded_window_and_se_adds_global_context() -> None:
    """Before pooling, the convolution path of an ECAPA frame reaches 3 (2 + 3 + 4) = 27
    frames of 20 ms to each side (three Res2 groups of 3-tap convs dilated 2, 3, 4 in
    cascade, after a stride-2 stem): with the squeeze-excitation gates held at 1, a change
    at input frame 40 (frame 20 after the stem) moves frames 20 +- 28 at most; with the
    gates (a mean over all frames) every frame moves."""
    net = ecapa.build_net(N_CLASSES, (256, 64)).eval()

    def changed_frames() -> torch.Tensor:
        def frames(x: torch.Tensor) -> torch.Tensor:
            h = net.stem(net.input_norm(x.transpose(1, 2)))
            outs = []
            for block in net.blocks:
                h = block(h)
                outs.append(h)
            return net.mfa(torch.cat(outs, dim=1))  # (B, 3 C, T / 2)

        x = torch.randn(1, 256, 64, generator=torch.Generator().manual_seed(0))
        y = x.clone()
        y[0, 40] += 5.0
        with torch.no_grad():
            diff = (frames(x) - frames(y)).abs().amax(dim=1)[0]  # (T / 2,)
        return torch.nonzero(diff > 1e-6).flatten()

    assert len(changed_frames()) == 128  # SE gates: global context
    for block in net.blocks:
        block.se = _NoGate()
    changed = changed_frames()
    assert changed.min() <= 20 <= changed.max()
    assert changed.max() <= 20 + 28 and changed.min() >= 20 - 28


@pytest.mark.parametrize(("mod", "shape", "other_shape", "param_range"), PARAMS)
def test_every_network_takes_a_speaker_adversary(mod, shape, other_shape, param_range) -> None:
    """The adversary reads what each network's head reads (a CRNN's head begins with a
    dense layer of its own, conv1d's with a flatten)."""
    from emovox.training.adversary import SpeakerAdversary

    net = build(mod, shape)
    adversary = SpeakerAdversary(net, 3)
    net(torch.randn(4, *shape))
    loss = adversary.loss(torch.eye(3)[[0, 1, 2, 0]], 1.0)
    loss.backward()
    assert torch.isfinite(loss) and any(p.grad is not None for p in net.parameters())
    adversary.detach()
