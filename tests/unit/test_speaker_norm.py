"""Per-speaker normalisation: known answers on synthetic arrays, the floor, bad inputs, and the
no-leak properties of the adapter (a speaker's output depends on its own clips only)."""

from __future__ import annotations

import numpy as np
import pytest

from emovox.config import Adapt, ExperimentConfig, Protocol, SplitConfig
from emovox.corpora.base import Utterance
from emovox.errors import ConfigError
from emovox.experiment.adapt import (
    check_adapt_config,
    check_speaker_disjoint,
    fit_speaker_adapter,
    statistics_clips,
)
from emovox.features.speaker_norm import (
    STD_FLOOR,
    frame_stats,
    normalise,
    stats_for,
    vector_stats,
)
from emovox.splits import Fold


def test_vector_stats_known_answer():
    x = np.array([[1.0, 10.0, 5.0], [3.0, 30.0, 5.0]])  # 2 clips, D = 3
    st = vector_stats(x)
    np.testing.assert_allclose(st.mean, [2.0, 20.0, 5.0])
    np.testing.assert_allclose(st.std, [1.0, 10.0, STD_FLOOR])  # constant dim -> floor
    assert (st.n_clips, st.n_frames, st.centred_only) == (2, 2, False)
    np.testing.assert_allclose(normalise(x[0], st), [-1.0, -1.0, 0.0])
    np.testing.assert_allclose(normalise(x[1], st), [1.0, 1.0, 0.0])


def test_vector_stats_zscore_each_dimension():
    rng = np.random.default_rng(0)
    x = rng.normal([3.0, -7.0, 100.0], [0.5, 2.0, 40.0], size=(50, 3))
    st = vector_stats(list(x))
    z = np.stack([normalise(v, st) for v in x])
    np.testing.assert_allclose(z.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(z.std(0), 1.0, atol=1e-5)


def test_one_clip_speaker_is_centred_only():
    st = vector_stats([np.array([4.0, -2.0])])
    assert st.centred_only and st.n_clips == 1
    np.testing.assert_allclose(st.std, [1.0, 1.0])
    np.testing.assert_allclose(normalise(np.array([5.0, 0.0]), st), [1.0, 2.0])


def test_floor_bounds_the_std():
    x = np.array([[0.0], [2e-3]])  # std 1e-3
    assert vector_stats(x, std_floor=0.1).std[0] == pytest.approx(0.1)
    assert vector_stats(x, std_floor=1e-6).std[0] == pytest.approx(1e-3)


def test_frame_stats_pool_all_frames_not_per_utterance():
    """Band 0: clip a frames 0, 0 and clip b frames 6, 6, 6, 6 -> pooled mean 4 (per-utterance
    means 0 and 6 would average to 3), std sqrt(8)."""
    a = np.array([[0.0, 1.0], [0.0, 3.0]])
    b = np.array([[6.0, 1.0], [6.0, 3.0], [6.0, 1.0], [6.0, 3.0]])
    st = frame_stats([a, b])
    np.testing.assert_allclose(st.mean, [4.0, 2.0])
    np.testing.assert_allclose(st.std, [np.sqrt(8.0), 1.0])
    assert (st.n_clips, st.n_frames) == (2, 6)
    out = normalise(a, st)
    assert out.shape == (2, 2) and out.dtype == np.float32
    np.testing.assert_allclose(out[:, 0], -4.0 / np.sqrt(8.0), rtol=1e-6)
    np.testing.assert_allclose(out[:, 1], [-1.0, 1.0])


def test_one_clip_of_frames_gives_per_utterance_statistics():
    seq = np.array([[1.0], [3.0], [5.0]])
    st = frame_stats([seq])
    assert not st.centred_only
    np.testing.assert_allclose(normalise(seq, st)[:, 0],
                               np.array([-2.0, 0.0, 2.0]) / np.sqrt(8.0 / 3.0), rtol=1e-6)


def test_stats_for_dispatches_on_axes():
    assert stats_for([np.zeros(3), np.ones(3)]).n_frames == 2
    assert stats_for([np.zeros((5, 3))]).n_frames == 5


@pytest.mark.parametrize("bad, match", [
    (np.zeros((0, 3)), "N >= 1"),
    (np.zeros(3), "N >= 1"),
    (np.array([[np.nan, 1.0], [1.0, 1.0]]), "NaN"),
])
def test_vector_stats_bad_inputs(bad, match):
    with pytest.raises(ValueError, match=match):
        vector_stats(bad)


@pytest.mark.parametrize("bad, match", [
    ([], "none"),
    ([np.zeros((1, 3))], "at least 2 frames"),
    ([np.zeros((4, 3)), np.zeros((4, 2))], "one F"),
    ([np.zeros(4)], r"\(T, F\)"),
    ([np.full((3, 2), np.inf)], "NaN or inf"),
])
def test_frame_stats_bad_inputs(bad, match):
    with pytest.raises(ValueError, match=match):
        frame_stats(bad)


def test_bad_floor_and_dimension_mismatch():
    with pytest.raises(ValueError, match="std_floor"):
        vector_stats(np.ones((2, 2)), std_floor=0.0)
    with pytest.raises(ValueError, match="std_floor"):
        frame_stats([np.ones((2, 2))], std_floor=-1.0)
    with pytest.raises(ValueError, match="dimension 3 != statistics dimension 2"):
        normalise(np.zeros(3), vector_stats(np.ones((2, 2))))


# -- the adapter: what a speaker's normalised features depend on --------------------------

def _clips(rng, n_speakers=3, n_clips=4, d=5):
    items = [rng.normal(size=d) * (s + 1) + 10 * s for s in range(n_speakers)
             for _ in range(n_clips)]
    speakers = [f"c:{s}" for s in range(n_speakers) for _ in range(n_clips)]
    return items, speakers


def test_adapter_output_of_a_speaker_ignores_other_speakers_audio():
    rng = np.random.default_rng(1)
    items, speakers = _clips(rng)
    before = fit_speaker_adapter(items, speakers).apply_all(items, speakers)
    changed = list(items)
    for i, s in enumerate(speakers):
        if s == "c:1":
            changed[i] = rng.normal(size=5) * 50.0  # another speaker's audio, all different
    after = fit_speaker_adapter(changed, speakers).apply_all(changed, speakers)
    for i, s in enumerate(speakers):
        if s != "c:1":
            np.testing.assert_array_equal(before[i], after[i])
        else:
            assert not np.allclose(before[i], after[i])  # the check can fail


def test_adapter_is_order_free_and_per_speaker_zscored():
    rng = np.random.default_rng(2)
    items, speakers = _clips(rng)
    perm = rng.permutation(len(items))
    a = fit_speaker_adapter(items, speakers).apply_all(items, speakers)
    b = fit_speaker_adapter([items[i] for i in perm], [speakers[i] for i in perm])
    for i in perm:
        np.testing.assert_allclose(b.apply(items[i], speakers[i]), a[i], rtol=1e-6)
    spk = np.array(speakers)
    for s in set(speakers):
        z = np.stack([a[i] for i in np.flatnonzero(spk == s)])
        np.testing.assert_allclose(z.mean(0), 0.0, atol=1e-5)
        np.testing.assert_allclose(z.std(0), 1.0, atol=1e-5)


def test_adapter_normalises_each_stream_of_a_multi_input_item():
    items = [(np.array([1.0, 2.0]), np.array([[0.0], [2.0]])),
             (np.array([3.0, 6.0]), np.array([[4.0], [6.0]]))]
    ad = fit_speaker_adapter(items, ["s", "s"])
    vec, seq = ad.apply(items[0], "s")
    np.testing.assert_allclose(vec, [-1.0, -1.0])
    np.testing.assert_allclose(seq[:, 0], (np.array([0.0, 2.0]) - 3.0) / np.sqrt(5.0))
    assert ad.n_centred_only == 0
    assert fit_speaker_adapter(items[:1], ["s"]).n_centred_only == 1
    with pytest.raises(KeyError):
        ad.apply(items[0], "someone else")


def test_use_mask_chooses_the_statistics_clips():
    items = [np.array([0.0]), np.array([2.0]), np.array([100.0])]
    ad = fit_speaker_adapter(items, ["s", "s", "s"], use=np.array([True, True, False]))
    np.testing.assert_allclose(ad.apply(items[2], "s"), [99.0])  # mean 1, std 1
    with pytest.raises(ValueError, match="3 items but 2 speakers"):
        fit_speaker_adapter(items, ["s", "s"])


def test_statistics_clips_prefer_tested_clips():
    use = statistics_clips(["a", "a", "b", "b"], np.array([False, True, True, True]))
    assert use.tolist() == [True, False, True, True]  # b has only training-only clips


def _utt(speaker: str) -> Utterance:
    from pathlib import Path

    return Utterance(Path(f"{speaker}.wav"), "c", speaker, None, "")


def test_a_fold_with_a_speaker_on_both_sides_is_refused():
    utts = [_utt("c:1"), _utt("c:2"), _utt("c:2")]
    ok = Fold(0, np.array([0]), np.array([], int), np.array([1, 2]), ("c:2",), ())
    check_speaker_disjoint(ok, utts)
    bad = Fold(1, np.array([0, 1]), np.array([], int), np.array([2]), ("c:2",), ())
    with pytest.raises(ConfigError, match="fold 1 has c:2 on both sides"):
        check_speaker_disjoint(bad, utts)


def test_speaker_dependent_protocol_is_refused():
    cfg = ExperimentConfig(split=SplitConfig(protocol=Protocol.RANDOM), adapt=Adapt.SPEAKER)
    with pytest.raises(ConfigError, match="speaker-independent protocol"):
        check_adapt_config(cfg, [{}])
    cfg.adapt = Adapt.NONE
    check_adapt_config(cfg, [{}])  # nothing to refuse without adaptation


def test_adapt_round_trips_through_the_config():
    cfg = ExperimentConfig(adapt=Adapt.SPEAKER)
    assert cfg.to_dict()["adapt"] == "speaker"
    assert ExperimentConfig.from_dict(cfg.to_dict()).adapt is Adapt.SPEAKER
    assert ExperimentConfig.from_dict({}).adapt is Adapt.NONE
    assert ExperimentConfig.from_dict({"adapt": "corpus"}).adapt is Adapt.CORPUS
    with pytest.raises(ConfigError, match="invalid experiment config"):
        ExperimentConfig.from_dict({"adapt": "dialect"})


def test_raw_log_mel_models_adapt_without_the_per_utterance_warning(caplog):
    """`ecapa` / `crnn` read the raw log-mel, which --adapt speaker normalises per speaker;
    their *_cmvn twins normalise per utterance already, and adapting them warns."""
    from emovox.models import get_model_spec

    cfg = ExperimentConfig(adapt=Adapt.SPEAKER)
    for name, warns in (("ecapa", False), ("crnn", False), ("ecapa_cmvn", True),
                        ("crnn_cmvn", True)):
        caplog.clear()
        with caplog.at_level("WARNING"):
            check_adapt_config(cfg, [inp.params for inp in get_model_spec(name).inputs])
        assert ("normalised per utterance" in caplog.text) is warns, name
