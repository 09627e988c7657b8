"""emovox.features.display: spectrograms to look at, a chunk at a time (web QA, stop 32: a
10-minute upload's whole STFT cost the app ~300 MB)."""

from __future__ import annotations

import numpy as np
import pytest

from emovox.features.display import display_spectrograms
from emovox.features.spectral import log_mel, mfcc
from signals import SR, voice


def _pool(x: np.ndarray, k: int) -> np.ndarray:
    if k == 1:
        return x
    m = x.shape[1] // k
    return x[:, : m * k].reshape(x.shape[0], m, k).mean(axis=2)


def test_a_short_recording_gets_exactly_the_feature_functions_arrays():
    w = voice(3.0)
    mel, cep, k = display_spectrograms(w, SR)
    assert k == 1
    np.testing.assert_array_equal(mel, log_mel(w, SR))
    np.testing.assert_array_equal(cep, mfcc(w, SR))


@pytest.mark.parametrize("seconds", [7.0, 7.013, 6.51, 2.0, 0.05])
def test_chunks_give_the_whole_computations_arrays(seconds):
    """In chunks of 2 s (with 320 samples of context), floored and averaged as a whole: the
    arrays of log_mel and mfcc averaged by k, for any length, with digital silence in it
    (where the 80 dB floor acts) -- web re-check, stop 32: per-chunk floors differed."""
    n = int(seconds * SR)
    w = np.resize(voice(3.0), n).astype(np.float32)
    w[n // 3: n // 2] = 0.0
    mel, cep, k = display_spectrograms(w, SR, max_frames=300, chunk_s=2.0)
    assert k == max(1, -(-(1 + n // 160) // 300))
    whole_mel, whole_cep = _pool(log_mel(w, SR), k), _pool(mfcc(w, SR), k)
    assert mel.shape == whole_mel.shape and cep.shape == whole_cep.shape
    np.testing.assert_allclose(mel, whole_mel, atol=1e-3)
    np.testing.assert_allclose(cep, whole_cep, atol=1e-2)


def test_a_long_recording_is_drawn_in_at_most_max_frames_columns_and_floored():
    w = np.concatenate([voice(20.0), np.zeros(20 * SR, np.float32)])  # digital silence
    mel, cep, k = display_spectrograms(w, SR, chunk_s=10.0)
    assert k == 2 and mel.shape == (64, 2000) and cep.shape == (20, 2000)
    assert mel.min() == pytest.approx(log_mel(w, SR).min())  # the whole's floor
    assert np.isfinite(mel).all() and np.isfinite(cep).all()
