"""Several per-utterance normalisations of one log-mel side by side (``utt_norm="cmvn+gain"``)
and the ensemble that feeds each member its own block: members trained on different
normalisations of the same log-mel can be joined in one model with one ``Preprocess``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emovox.features import extract
from emovox.features.frontend import LogMelFrontEnd, UtteranceNorm
from emovox.features.uttnorm import utt_norm_modes, utt_norm_value, utterance_normalise
from emovox.models import ecapa, ensemble
from signals import SR, voice


def test_modes_parse_and_print():
    assert utt_norm_modes("cmvn") == (UtteranceNorm.CMVN,)
    assert utt_norm_modes(UtteranceNorm.GAIN) == (UtteranceNorm.GAIN,)
    assert utt_norm_modes("cmvn+gain") == (UtteranceNorm.CMVN, UtteranceNorm.GAIN)
    assert utt_norm_value((UtteranceNorm.GAIN, UtteranceNorm.NONE)) == "gain+none"
    for bad in ("cmvn+cmvn", "loudness", "cmvn+", ""):
        with pytest.raises(ValueError, match="utt_norm"):
            utt_norm_modes(bad)


def test_stacked_modes_are_each_mode_side_by_side():
    db = extract("logmel", voice(1.5), SR)  # (T, 64) dB
    got = utterance_normalise(db, "cmvn+gain")
    assert got.shape == (db.shape[0], 128) and got.dtype == np.float32
    np.testing.assert_array_equal(got[:, :64], utterance_normalise(db, "cmvn"))
    np.testing.assert_array_equal(got[:, 64:], utterance_normalise(db, "gain"))
    # the gain block keeps the spectral shape: one number removed, so its mean is 0 overall
    # but not per band; the CMVN block has every band at mean 0
    assert abs(got[:, 64:].mean()) < 1e-4 and np.abs(got[:, 64:].mean(axis=0)).max() > 1.0
    assert np.abs(got[:, :64].mean(axis=0)).max() < 1e-4


def test_the_numpy_front_end_matches_librosa_and_the_single_modes():
    w = voice(2.0)
    fe = LogMelFrontEnd.from_params(SR, utt_norm="cmvn+gain")
    assert fe.utt_norm == (UtteranceNorm.CMVN, UtteranceNorm.GAIN) and fe.width == 128
    out = fe(w)
    assert out.shape[1] == 128
    np.testing.assert_allclose(out, extract("logmel", w, SR, utt_norm="cmvn+gain"),
                               atol=2e-3)
    for i, mode in enumerate(("cmvn", "gain")):
        single = LogMelFrontEnd.from_params(SR, utt_norm=mode)
        assert single.width == 64
        np.testing.assert_allclose(out[:, 64 * i : 64 * (i + 1)], single(w), atol=1e-5)


def test_a_window_of_the_stacked_input_uses_the_whole_utterance_statistics():
    w = voice(4.0, f0=150.0)
    fe = LogMelFrontEnd.from_params(SR, utt_norm="cmvn+gain")
    whole = fe(w)
    part = fe(w, frames=(100, 356))
    assert part.shape == (256, 128)
    np.testing.assert_allclose(part, whole[100:356], atol=1e-4)


def test_stacked_front_end_round_trips_through_its_saved_form():
    fe = LogMelFrontEnd.from_params(SR, utt_norm="gain+cmvn")
    p, a = fe.params(), fe.arrays()
    assert p["utt_norm"] == "gain+cmvn"
    again = LogMelFrontEnd.from_saved(p, a)
    assert again.utt_norm == (UtteranceNorm.GAIN, UtteranceNorm.CMVN)
    w = voice(1.0)
    np.testing.assert_array_equal(again(w), fe(w))


def test_mfcc_chroma_refuses_stacked_modes():
    with pytest.raises(ValueError, match="utt_norm"):
        extract("mfcc_chroma", voice(0.5), SR, utt_norm="cmvn+gain")


def _members(n: int) -> list[dict]:
    return [{"module": "emovox.models.ecapa", "params": {"channels": 16}}] * n


def test_each_member_reads_its_own_block():
    torch.manual_seed(0)
    net = ensemble.build_net(8, (40, 128), members=_members(3), inputs=[0, 1, 0])
    net.eval()
    assert net.inputs == (0, 1, 0)
    x = torch.randn(2, 40, 128)  # (B, T, 2 * 64)
    with torch.no_grad():
        got = net(x).exp()
        want = sum(torch.softmax(m(x[..., 64 * b : 64 * (b + 1)]), dim=-1)
                   for m, b in zip(net.members, (0, 1, 0), strict=True)) / 3
        np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-6)
        # the second block is read by member 1 alone: changing it moves only that member
        y = x.clone()
        y[..., 64:] += 3.0
        moved = [not torch.allclose(m(y[..., 64 * b : 64 * (b + 1)]),
                                    m(x[..., 64 * b : 64 * (b + 1)]))
                 for m, b in zip(net.members, (0, 1, 0), strict=True)]
        assert moved == [False, True, False]


def test_one_block_is_the_ensemble_as_before():
    """Without ``inputs`` every member reads the whole input, as artifacts written before
    stacked inputs existed expect."""
    torch.manual_seed(0)
    net = ensemble.build_net(8, (40, 64), members=_members(2))
    assert net.inputs == (0, 0) and net.scale.shape == (2, 64)
    assert isinstance(net.members[0], type(ecapa.build_net(8, (40, 64), channels=16)))


@pytest.mark.parametrize("inputs, shape", [([0, 2], (40, 128)), ([0, 1], (40, 127)),
                                           ([1, 1], (40, 128)), ([0], (40, 64)),
                                           ([0, -1], (40, 64))])
def test_inputs_that_do_not_split_the_input_are_refused(inputs, shape):
    with pytest.raises(ValueError, match="inputs"):
        ensemble.build_net(8, shape, members=_members(2), inputs=inputs)
