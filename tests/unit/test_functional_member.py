"""A linear model on utterance functionals inside a network ensemble: the member equals the
scikit-learn pipeline it comes from, the ensemble averages it with the networks, and the
one Preprocess feeds it the functional of the untrimmed wave."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emovox.audio import remove_dc
from emovox.errors import ConfigError
from emovox.experiment.functional import ABSENT_LOGIT, functional_state
from emovox.features.prosody import prosody
from emovox.models.classical import logreg
from emovox.models.ensemble import Ensemble, FunctionalMember, build_net
from emovox.preprocess import Preprocess
from signals import SR, blobs, harmonic, silence


def _fitted(n_classes: int = 8, present: tuple[int, ...] = (0, 2, 3, 5, 7)):
    x, y = blobs(n=120, d=6, seed=1)
    y = np.asarray(present)[np.asarray(y) % len(present)]
    model = logreg(n_classes=n_classes).fit(x, y, x[:0], y[:0])
    return model, x


def test_the_member_equals_the_pipeline_and_absent_classes_stay_near_zero() -> None:
    model, x = _fitted()
    member = FunctionalMember(6, 8)
    member.load_state_dict({k: torch.from_numpy(v) for k, v in
                            functional_state(model.pipeline, 8).items()})
    with torch.no_grad():
        got = torch.softmax(member(torch.from_numpy(x.astype(np.float32))), -1).numpy()
    np.testing.assert_allclose(got, model.predict_proba(x), atol=1e-5)
    assert got[:, [1, 4, 6]].max() < 1e-9
    assert functional_state(model.pipeline, 8)["linear.bias"][1] == ABSENT_LOGIT


def test_only_scaler_plus_softmax_regression_is_accepted() -> None:
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    with pytest.raises(ConfigError, match="StandardScaler \\+ LogisticRegression"):
        functional_state(Pipeline([("scale", StandardScaler()), ("clf", SVC())]), 8)
    two, x = _fitted(present=(1, 4))
    with pytest.raises(ConfigError, match="3 or more classes"):
        functional_state(two.pipeline, 8)


class _Const(torch.nn.Module):
    """A 'network' whose logits are fixed, whatever the input (for the averaging test)."""

    def __init__(self, logits: list[float]) -> None:
        super().__init__()
        self.register_buffer("logits", torch.tensor(logits))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(x.shape[0], -1) + 0 * x.sum()


def test_the_ensemble_averages_networks_and_the_functional_member() -> None:
    c = 3
    member = FunctionalMember(2, c)
    with torch.no_grad():
        member.linear.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]))
        member.linear.bias.zero_()
    ens = Ensemble([_Const([2.0, 0.0, 0.0]), _Const([0.0, 0.0, 2.0])], n_mels=4,
                   functional=member)
    x = torch.zeros(2, 5, 4 + 2)
    x[:, :, 4:] = torch.tensor([3.0, -1.0])  # the functional columns, on every frame
    got = torch.exp(ens(x))
    want = sum(torch.softmax(torch.tensor(v), 0)
               for v in ([2.0, 0, 0], [0, 0, 2.0], [3.0, -1.0, 0.0])) / 3
    torch.testing.assert_close(got, want.expand(2, -1))


@pytest.mark.parametrize("functional", [{"dim": 0}, {"dim": "47"}, {"dim": 3, "x": 1},
                                        {"dim": True}])
def test_build_net_refuses_a_bad_functional(functional) -> None:
    with pytest.raises(ValueError, match="functional"):
        build_net(3, (64, 67), members=[], functional=functional)


def test_one_network_and_a_functional_member_are_two_members() -> None:
    spec = {"module": "emovox.models.ecapa", "params": {"channels": 16, "dilations": [2],
                                                          "embedding": 16}}
    net = build_net(8, (64, 64 + 47), members=[spec], functional={"dim": 47})
    assert net.functional is not None and net.functional.dim == 47
    with pytest.raises(ValueError, match="do not split"):
        build_net(8, (64, 47), members=[spec], functional={"dim": 47})


@pytest.mark.parametrize(("member", "said"), [
    ("a", "member 1 must be"), ({"module": "emovox.models.ecapa", "params": [1]}, "member 1 must"),
    ({"module": "emovox.models.layers"}, "builds no network"),
    ({"module": "emovox.models.nope"}, "builds no network"),
])
def test_build_net_refuses_a_bad_member_in_one_line(member, said) -> None:
    """A member of model.json that is not a spec, or names a module without build_net,
    was an AttributeError / ModuleNotFoundError traceback (code review, stop 47)."""
    spec = {"module": "emovox.models.ecapa", "params": {"channels": 16, "dilations": [2],
                                                          "embedding": 16}}
    with pytest.raises(ValueError, match=said):
        build_net(8, (64, 64), members=[spec, member])


def test_preprocess_appends_the_functional_of_the_untrimmed_wave() -> None:
    pre = Preprocess(trim=True, n_frames=100, functional="prosody").with_logmel_frontend()
    wave = np.concatenate([silence(0.5), harmonic(160.0, 1.2, vibrato=0.03), silence(0.5)])
    prepared = pre.prepare(wave, SR)
    assert len(prepared.wave) < len(wave) and prepared.untrimmed is not None
    x = pre.window_features(prepared)
    assert x.shape == (100, 64 + 47)
    np.testing.assert_allclose(x[:, :64], pre.cropped_features(prepared.wave))
    np.testing.assert_allclose(x[0, 64:], prosody(wave, SR), rtol=1e-6)
    np.testing.assert_array_equal(x[-1, 64:], x[0, 64:])


def test_preprocess_functional_round_trips_and_old_params_have_none() -> None:
    pre = Preprocess(trim=True, functional="prosody")
    params = pre.to_params()
    assert params["functional"] == "prosody"
    assert Preprocess.from_params(params).functional == "prosody"
    assert "functional" not in Preprocess(trim=True).to_params()
    assert Preprocess.from_params(Preprocess(trim=True).to_params()).functional is None
    with pytest.raises(ValueError, match="functional"):
        Preprocess(functional="")
    for bad in ("no_such_feature", "mfcc", 3):  # unknown, a sequence, not a name
        with pytest.raises(ValueError, match="registered vector feature"):
            Preprocess.from_params({**params, "functional": bad})


def test_a_sequence_feature_is_refused_as_a_functional() -> None:
    pre = Preprocess(functional="mfcc")
    with pytest.raises(ValueError, match="not a vector feature"):
        pre.with_functional(np.zeros((10, 64), np.float32), harmonic(150.0, 0.5))


def _member(weight: list[list[float]]) -> FunctionalMember:
    w = torch.tensor(weight)
    member = FunctionalMember(w.shape[1], w.shape[0])
    with torch.no_grad():
        member.linear.weight.copy_(w)
        member.linear.bias.zero_()
    return member


def test_the_band_column_picks_the_full_band_or_the_narrow_band_member() -> None:
    """One network + a functional member on 3 columns, whose narrow-band alternative reads
    columns 2 and 0: the band column (1 full, 0 narrow) says which of the two is the
    ensemble's second member."""
    full = _member([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    narrow = _member([[0.0, 0.0], [0.0, 0.0], [1.0, 2.0]])
    ens = Ensemble([_Const([2.0, 0.0, 0.0])], n_mels=4, functional=full, narrow=narrow,
                   narrow_columns=[2, 0])
    x = torch.zeros(2, 5, 4 + 3 + 1)
    x[:, :, 4:7] = torch.tensor([3.0, -1.0, 0.5])
    x[0, :, 7], x[1, :, 7] = 1.0, 0.0  # clip 0 full band, clip 1 narrow band
    got = torch.exp(ens(x))
    net = torch.softmax(torch.tensor([2.0, 0, 0]), 0)
    wide = torch.softmax(torch.tensor([3.0, -1.0, 0.0]), 0)
    alt = torch.softmax(torch.tensor([0.0, 0.0, 0.5 + 2 * 3.0]), 0)
    torch.testing.assert_close(got[0], (net + wide) / 2)
    torch.testing.assert_close(got[1], (net + alt) / 2)
    plain = Ensemble([_Const([2.0, 0.0, 0.0])], n_mels=4, functional=full)
    assert "narrow_columns" not in plain.state_dict()  # earlier ensembles keep their keys


@pytest.mark.parametrize("functional", [{"dim": 3, "narrow": []}, {"dim": 3, "narrow": [3]},
                                        {"dim": 3, "narrow": [1, 1]},
                                        {"dim": 3, "narrow": [True]}, {"dim": 3, "narrow": 2}])
def test_build_net_refuses_bad_narrow_columns(functional) -> None:
    with pytest.raises(ValueError, match="narrow"):
        build_net(3, (64, 64 + 4), members=[{"module": "emovox.models.ecapa", "params": {}}],
                  functional=functional)


def test_build_net_reserves_the_band_column_after_the_functional() -> None:
    spec = {"module": "emovox.models.ecapa", "params": {"channels": 16, "dilations": [2],
                                                          "embedding": 16}}
    net = build_net(8, (64, 64 + 47 + 1), members=[spec],
                    functional={"dim": 47, "narrow": list(range(41))})
    assert net.narrow is not None and net.narrow.dim == 41
    assert net.narrow_columns.tolist() == list(range(41))
    with pytest.raises(ValueError, match="do not split"):
        build_net(8, (64, 47 + 1), members=[spec], functional={"dim": 47, "narrow": [0]})


def test_preprocess_appends_the_band_column_one_for_full_band_zero_for_a_phone_line() -> None:
    from emovox import augment as aug

    pre = Preprocess(trim=True, n_frames=50, functional="prosody",
                     band_floor_db=-35.3).with_logmel_frontend()
    rng = np.random.default_rng(0)
    wave = harmonic(150.0, 1.5, n_harmonics=50, vibrato=0.02, noise=0.01, rng=rng)
    for w, band in ((wave, 1.0), (aug.band_limit(wave, SR, 300.0, 3400.0), 0.0)):
        x = pre.window_features(pre.prepare(w, SR))
        assert x.shape == (50, 64 + 47 + 1)
        assert np.all(x[:, -1] == band)
        np.testing.assert_allclose(x[0, 64:-1], prosody(remove_dc(w), SR), rtol=1e-6)


def test_band_floor_round_trips_needs_a_functional_and_a_finite_number() -> None:
    pre = Preprocess(trim=True, functional="prosody", band_floor_db=-35)
    assert pre.band_floor_db == -35.0 and isinstance(pre.band_floor_db, float)
    assert Preprocess.from_params(pre.to_params()) == pre
    assert "band_floor_db" not in Preprocess(functional="prosody").to_params()
    for bad in ({"band_floor_db": -35.0}, {"functional": "prosody", "band_floor_db": "low"},
                {"functional": "prosody", "band_floor_db": float("nan")},
                {"functional": "prosody", "band_floor_db": True}):
        with pytest.raises(ValueError, match="band_floor_db"):
            Preprocess(**bad)
