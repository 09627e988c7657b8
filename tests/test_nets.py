"""Shape, gradient and sanity tests for the PyTorch nets in emovox.models (fast, CPU, seeded)."""

from __future__ import annotations

from types import ModuleType

import pytest
import torch
from torch import nn

from emovox.models import cnn_bilstm, cnn_gru_attention, conv1d, crnn, mlp, resnet_mlp

N_CLASSES = 8
TRAINING_KEYS = {"epochs", "batch_size", "lr"}

# module -> (documented input shape, a second input shape, (min, max) parameter count)
NETS: dict[ModuleType, tuple[tuple[int, ...], tuple[int, ...], tuple[int, int]]] = {
    cnn_bilstm: ((94, 60), (47, 60), (100_000, 1_000_000)),
    conv1d: ((162,), (100,), (200_000, 1_000_000)),
    resnet_mlp: ((40,), (20,), (20_000, 300_000)),
    mlp: ((340,), (128,), (100_000, 1_000_000)),
    cnn_gru_attention: ((200, 40), (150, 40), (50_000, 500_000)),
    crnn: ((300, 64), (150, 64), (100_000, 1_000_000)),
}


def short_name(mod: ModuleType) -> str:
    return mod.__name__.rsplit(".", 1)[-1]


PARAMS = [pytest.param(m, *v, id=short_name(m)) for m, v in NETS.items()]


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def build(mod: ModuleType, shape: tuple[int, ...], **hp) -> nn.Module:
    """Build with the module's own DEFAULTS (training keys included: they must be ignored)."""
    return mod.build_net(N_CLASSES, shape, **{**mod.DEFAULTS, **hp})


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def first_layer(net: nn.Module) -> nn.Module:
    return next(m for m in net.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)))


@pytest.mark.parametrize(("mod", "shape", "other_shape", "param_range"), PARAMS)
def test_defaults_have_training_keys(mod, shape, other_shape, param_range) -> None:
    assert TRAINING_KEYS <= set(mod.DEFAULTS)
    assert mod.DEFAULTS["epochs"] > 0 and mod.DEFAULTS["batch_size"] > 0
    assert 0 < mod.DEFAULTS["lr"] < 1
    assert mod.DEFAULTS.get("loss", "ce") in ("ce", "focal")


@pytest.mark.parametrize(("mod", "shape", "other_shape", "param_range"), PARAMS)
def test_logits_shape_and_finite(mod, shape, other_shape, param_range) -> None:
    out = build(mod, shape)(torch.randn(4, *shape))
    assert out.shape == (4, N_CLASSES)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("mod", [cnn_bilstm, cnn_gru_attention, crnn], ids=short_name)
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
    with pytest.raises(ValueError):
        mod.build_net(N_CLASSES, bad)


def test_conv1d_matches_seed_layout() -> None:
    """162 -> 81 -> 41 -> 21 -> 11 steps ("same" pools), so Flatten gives 64 x 11 = 704."""
    net = conv1d.build_net(N_CLASSES, (162,))
    dense = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert [(d.in_features, d.out_features) for d in dense] == [(704, 32), (32, N_CLASSES)]
    convs = [m for m in net.modules() if isinstance(m, nn.Conv1d)]
    assert [c.out_channels for c in convs] == [256, 256, 128, 64]


def test_cnn_bilstm_last_step_pooling() -> None:
    net = cnn_bilstm.build_net(N_CLASSES, (94, 60), pooling="last")
    assert net(torch.randn(2, 94, 60)).shape == (2, N_CLASSES)
    with pytest.raises(ValueError):
        cnn_bilstm.build_net(N_CLASSES, (94, 60), pooling="max")


def test_cnn_gru_attention_unidirectional() -> None:
    net = cnn_gru_attention.build_net(N_CLASSES, (200, 40), bidirectional=False)
    assert net(torch.randn(2, 200, 40)).shape == (2, N_CLASSES)


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


def test_mlp_overfits_tiny_set() -> None:
    """16 random samples, 8 classes: 100 Adam steps must reach 100 % training accuracy."""
    x = torch.randn(16, 340)
    y = torch.arange(16) % N_CLASSES
    net = mlp.build_net(N_CLASSES, (340,))
    opt = torch.optim.Adam(net.parameters(), lr=mlp.DEFAULTS["lr"])
    net.train()
    for _ in range(100):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        acc = (net(x).argmax(dim=1) == y).float().mean().item()
    assert acc == 1.0
