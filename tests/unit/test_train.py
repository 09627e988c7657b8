"""Training loop and artifacts: loss goes down on real actors, artifacts round-trip."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from sklearn.metrics import balanced_accuracy_score

from emovox.artifact import ArtifactError, save_model
from emovox.models import MODELS, Family, classical, mlp, resnet_mlp
from emovox.preprocess import pad_or_crop
from emovox.training import build_model
from emovox.training.batch_augment import freq_mixstyle, freq_warp, spec_augment, warp_bands
from emovox.training.trainer import TorchClassifier, focal_loss
from emovox.training.trainer import load_trained as load_model
from signals import blobs


def test_focal_loss_with_gamma_zero_is_cross_entropy():
    logits = torch.randn(5, 8, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 3, 7, 2, 2])
    fl = focal_loss(logits, F.one_hot(y, 8).float(), 0.0, None)
    assert float(fl) == pytest.approx(float(F.cross_entropy(logits, y)), rel=1e-6)
    # focusing lowers the loss of well-classified examples
    assert float(focal_loss(logits, F.one_hot(y, 8).float(), 2.0, None)) < float(fl)


def test_warp_bands_moves_a_formant_by_the_factor_and_keeps_the_edges():
    f = torch.arange(64, dtype=torch.float32)
    x = torch.exp(-0.5 * ((f - 20.0) / 2.0) ** 2).expand(2, 5, 64).clone()  # peak at band 20
    y = warp_bands(x, torch.tensor([1.1, 0.9]))
    peaks = (y[:, 0] * f).sum(1) / y[:, 0].sum(1)  # centroid
    assert peaks[0].item() == pytest.approx(20 / 1.1, abs=0.1)  # longer tract: lower formants
    assert peaks[1].item() == pytest.approx(20 / 0.9, abs=0.1)
    ramp = f.expand(1, 3, 64)
    assert warp_bands(ramp, torch.tensor([1.0]))[0, 0].tolist() == pytest.approx(f.tolist())
    for a in (0.9, 1.1):
        w = warp_bands(ramp, torch.tensor([a]))[0, 0]
        assert w[0].item() == 0.0 and w[-1].item() == pytest.approx(63.0)
        assert bool((w[1:] >= w[:-1]).all())  # monotone: no band folded over


def test_freq_warp_draws_factors_within_the_range():
    f = torch.arange(64, dtype=torch.float32)
    ramp = f.expand(256, 1, 64).clone()
    y = freq_warp(ramp, torch.Generator().manual_seed(0), 0.1)
    a = y[:, 0, 10] / 10  # below the knee, band 10 reads band 10 a
    assert a.min() >= 0.9 - 1e-5 and a.max() <= 1.1 + 1e-5 and a.std() > 0.04


def test_freq_mixstyle_swaps_spectral_envelopes_and_keeps_the_content():
    g = torch.Generator().manual_seed(0)
    content = torch.randn(2, 200, 16, generator=g)
    content = (content - content.mean(1, keepdim=True)) / content.std(1, keepdim=True,
                                                                      unbiased=False)
    env_mu = torch.stack([torch.linspace(-2, 2, 16), torch.linspace(3, 1, 16)])  # (2, F)
    env_sd = torch.stack([torch.full((16,), 0.5), torch.full((16,), 2.0)])
    x = content * env_sd[:, None] + env_mu[:, None]  # (2, T, F): two "speakers"
    perm = torch.tensor([1, 0])
    same = freq_mixstyle(x, torch.ones(2), perm)  # weight 1 on itself: unchanged
    torch.testing.assert_close(same, x, atol=1e-4, rtol=0)
    swapped = freq_mixstyle(x, torch.zeros(2), perm)  # all the other clip's envelope
    torch.testing.assert_close(swapped.mean(1), env_mu[[1, 0]], atol=1e-4, rtol=0)
    torch.testing.assert_close(swapped.std(1, unbiased=False), env_sd[[1, 0]], atol=1e-3,
                               rtol=0)
    # the content (each clip's normalised pattern over time) is its own
    z = (swapped - swapped.mean(1, keepdim=True)) / swapped.std(1, keepdim=True,
                                                                unbiased=False)
    torch.testing.assert_close(z, content, atol=1e-3, rtol=0)
    half = freq_mixstyle(x, torch.full((2,), 0.5), perm)
    torch.testing.assert_close(half.mean(1), env_mu.mean(0).expand(2, -1), atol=1e-4, rtol=0)


def test_mixstyle_settings_are_checked():
    from emovox.errors import ConfigError
    from emovox.models.params import TrainConfig

    assert TrainConfig.split({"mixstyle": "0.5"})[0].mixstyle == 0.5
    for bad in ({"mixstyle": 1.5}, {"mixstyle": -0.1}, {"mixstyle_alpha": 0}):
        with pytest.raises(ConfigError, match="mixstyle"):
            TrainConfig.split(bad)


def test_spec_augment_masks_without_touching_input():
    x = torch.ones(3, 100, 64)
    y = spec_augment(x, torch.Generator().manual_seed(0), max_t=20, max_f=8)
    assert torch.all(x == 1) and y.shape == x.shape
    assert (y == 0).any() and (y == 1).any()


def test_pad_or_crop():
    s = np.arange(10, dtype=np.float32)[:, None]
    assert pad_or_crop(s, 4)[:, 0].tolist() == [3, 4, 5, 6]
    p = pad_or_crop(s, 12)
    assert p.shape == (12, 1) and p[10:].sum() == 0


#: each feature's shape (a sequence's frames shortened: the models crop/pad to n_frames;
#: ComParE's 6373 columns cut to 256: its logistic regressions take any width, and took
#: minutes to converge on 6373 columns of noise)
FEATURE_SHAPES: dict[str, tuple[int, ...]] = {
    "logmel": (48, 64), "mfcc_chroma": (48, 72), "seed000": (94, 60), "seed001": (162,),
    "seed002": (45,), "seed003": (340,), "seed004": (200, 40), "egemaps": (88,),
    "compare": (256,), "prosody": (47,), "prosody_band": (47,), "prosody_robust": (41,),
    "prosody_vq": (75,),
}


def _toy_inputs(shape: tuple[int, ...], y: np.ndarray, seed: int) -> np.ndarray:
    """Noise of ``shape`` per row with a class-dependent offset, float32."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(len(y), *shape)) + 0.5 * y.reshape(-1, *[1] * len(shape))
    return x.astype(np.float32)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_registered_model_builds_and_predicts_probabilities(name):
    """Each registered model (its feature shapes; a fusion gets one array per input) trains
    for a step and answers (n, 8) probabilities."""
    spec = MODELS[name]
    y = np.arange(48) % 8
    xs = [_toy_inputs(FEATURE_SHAPES[inp.feature], y, k) for k, inp in enumerate(spec.inputs)]
    params: dict = {}
    if spec.family is Family.NEURAL:  # one quick epoch on short sequences
        params = {"epochs": 1, "threads": 1}
        if getattr(spec.defaults, "n_frames", 0):
            params["n_frames"] = FEATURE_SHAPES[spec.feature][0]
    model = build_model(spec, n_classes=8, seed=0, **params)

    def rows(a: slice):
        return [x[a] for x in xs] if len(xs) > 1 else xs[0][a]

    model.fit(rows(slice(0, 32)), y[:32], rows(slice(32, 40)), y[32:40])
    p = model.predict_proba(rows(slice(40, 48)))
    assert p.shape == (8, 8) and (p >= 0).all()
    np.testing.assert_allclose(p.sum(1), 1, atol=1e-5)


@pytest.mark.slow
def test_training_is_deterministic():
    x, y = blobs()
    params = mlp.MlpConfig(epochs=3).to_params()
    a = TorchClassifier(mlp.build_net, n_classes=8, seed=3, **params)
    b = TorchClassifier(mlp.build_net, n_classes=8, seed=3, **params)
    pa = a.fit(x[:64], y[:64], x[64:], y[64:]).predict_proba(x)
    pb = b.fit(x[:64], y[:64], x[64:], y[64:]).predict_proba(x)
    assert np.array_equal(pa, pb)


@pytest.mark.slow
def test_early_stopping_uses_validation_and_keeps_best_epoch():
    x, y = blobs(seed=1)
    seen: list[dict] = []  # each epoch's weights, as they were when it was validated
    m = TorchClassifier(mlp.build_net, n_classes=8, seed=0,
                        on_epoch=lambda e, n, loss, ua: seen.append(
                            copy.deepcopy(m.net.state_dict())),
                        **mlp.MlpConfig(epochs=200, patience=3).to_params())
    m.fit(x[:64], y[:64], x[64:], y[64:])
    h = m.history
    assert len(h.val_ua) < 200  # stopped early
    assert h.best_epoch == int(np.argmax(h.val_ua))
    assert len(h.val_ua) - 1 - h.best_epoch == 3
    assert len(seen) == len(h.val_ua)
    final = m.net.state_dict()
    assert all(torch.equal(final[k], seen[h.best_epoch][k]) for k in final)  # the best's
    assert not all(torch.equal(final[k], seen[-1][k]) for k in final)  # not the last's
    # and the figure it was chosen on is the validation rows' UA of the kept model
    pred = m.predict_proba(x[64:]).argmax(1)
    assert 100 * balanced_accuracy_score(y[64:], pred) == pytest.approx(h.val_ua[h.best_epoch])


@pytest.mark.parametrize("kind", ["torch", "torch_select", "sklearn"])
def test_artifact_roundtrip_gives_identical_predictions(tmp_path, kind):
    x, y = blobs()
    if kind == "sklearn":
        model = classical.logreg(n_classes=8)
    else:
        extra = {"select_k": 6} if kind == "torch_select" else {}
        model = TorchClassifier(resnet_mlp.build_net, n_classes=8, seed=0,
                                **resnet_mlp.ResNetMlpConfig(epochs=3, **extra).to_params())
    model.fit(x[:64], y[:64], x[64:], y[64:])
    out = save_model(model, tmp_path / "m", {"model": {"name": kind}}, metrics={"ua": 1.0})
    loaded, meta = load_model(out)
    assert np.array_equal(loaded.predict_proba(x), model.predict_proba(x))
    assert meta.labels[0] == "neutral" and meta.kind.value in ("torch", "sklearn")
    assert json.loads((out / "model.json").read_text())["metrics"] == {"ua": 1.0}
    assert not list(tmp_path.glob(".m.tmp*"))  # atomic write left nothing behind
    with pytest.raises(FileExistsError, match="--force"):
        save_model(model, out, {})
    save_model(model, out, {}, force=True)


def test_artifact_errors(tmp_path):
    with pytest.raises(ArtifactError, match="model.json"):
        load_model(tmp_path)
    (tmp_path / "model.json").write_text(json.dumps({"format": "emovox-model",
                                                    "format_version": 1, "kind": "torch",
                                                    "labels": ["happy"],
                                                    "net_module": "os.path"}))
    with pytest.raises(ArtifactError, match="refusing"):
        load_model(tmp_path)


@pytest.mark.slow
def test_without_validation_every_epoch_runs_and_the_last_is_kept():
    x, y = blobs(seed=2)
    seen: list[tuple[float, dict]] = []
    m = TorchClassifier(mlp.build_net, n_classes=8, seed=0,
                        on_epoch=lambda e, n, loss, ua: seen.append(
                            (ua, copy.deepcopy(m.net.state_dict()))),
                        **mlp.MlpConfig(epochs=4, patience=1).to_params())
    m.fit(x[:64], y[:64], x[:0], y[:0])
    h = m.history
    assert len(h.train_loss) == 4 and h.best_epoch == 3  # no early stop: patience is moot
    assert h.val_ua == [] and h.val_loss == []  # no made-up validation figures
    assert all(math.isnan(ua) for ua, _ in seen)  # the progress callback is told "none"
    final = m.net.state_dict()
    assert all(torch.equal(final[k], seen[-1][1][k]) for k in final)  # the last epoch's
    assert not all(torch.equal(final[k], seen[0][1][k]) for k in final)


@pytest.mark.slow
def test_training_with_mixstyle_is_deterministic_and_changes_the_model():
    rng = np.random.default_rng(0)
    y = np.arange(32) % 8
    x = (rng.normal(size=(32, 40, 16)) + y[:, None, None] * 0.3).astype(np.float32)

    def fit(p: float) -> np.ndarray:
        model = build_model(MODELS["ecapa_gain"], n_classes=8, seed=1, epochs=2,
                            channels=16, n_frames=40, mixstyle=p, threads=1)
        return model.fit(x, y, x[:0], y[:0]).predict_proba(x)

    a, b = fit(1.0), fit(1.0)
    assert np.array_equal(a, b)
    assert not np.allclose(a, fit(0.0))
