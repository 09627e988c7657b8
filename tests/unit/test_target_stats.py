"""bench/target_stats.py: BatchNorm statistics re-estimated on target inputs (AdaBN)."""

import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import target_stats  # noqa: E402


def _net() -> "torch.nn.Module":
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.BatchNorm1d(3), torch.nn.Linear(3, 2),
                               torch.nn.BatchNorm1d(2)).eval()


def test_running_statistics_become_those_of_the_target():
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(300, 3)) * [1.0, 2.0, 0.5] + [5.0, -3.0, 0.0]).astype(np.float32)
    net = _net()
    target_stats.refit_batchnorm(net, x, np.random.default_rng(1))
    bn = net[0]
    assert not net.training and not bn.training
    # 300 items -> 3 batches of 100; the cumulative average of the batch means is the mean
    np.testing.assert_allclose(bn.running_mean.numpy(), x.mean(0), atol=1e-4)
    np.testing.assert_allclose(bn.running_var.numpy(), x.var(0, ddof=1), rtol=0.05)
    # the second layer's statistics are those of its input, the first layer normalised
    h = net[1](torch.from_numpy((x - x.mean(0)) / x.std(0))).detach().numpy()
    np.testing.assert_allclose(net[2].running_mean.numpy(), h.mean(0), atol=0.02)


def test_weights_are_not_touched_and_a_network_without_batchnorm_is_left_alone():
    net = _net()
    before = {k: v.clone() for k, v in net.state_dict().items() if "running" not in k
              and "num_batches" not in k}
    target_stats.refit_batchnorm(net, np.ones((10, 3), np.float32), np.random.default_rng(0))
    for k, v in before.items():
        assert torch.equal(net.state_dict()[k], v)
    lin = torch.nn.Linear(3, 2)
    w = lin.weight.clone()
    target_stats.refit_batchnorm(lin, np.ones((4, 3), np.float32), np.random.default_rng(0))
    assert torch.equal(lin.weight, w)


def test_restrict_keeps_only_the_corpus_classes():
    labels = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
    p = np.full((2, 8), 1 / 8)
    out = target_stats.restrict(p, labels, ["urdu", "ravdess"])
    assert out[0, labels.index("calm")] == 0 and out[0, labels.index("fearful")] == 0
    np.testing.assert_allclose(out[0, [0, 2, 3, 4]], 0.25)
    np.testing.assert_allclose(out[1], 1 / 8)
