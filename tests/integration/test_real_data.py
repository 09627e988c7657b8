"""The real RAVDESS copy in the shared data: decoding, scanning, the NumPy front end and a
short training run. Every test skips (naming the path and ``EMOVOX_SHARED_DATA``) when the
data is absent."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from emovox.audio import load_audio, probe
from emovox.corpora import Gender, scan_corpus
from emovox.features import extract
from emovox.features.frontend import LogMelFrontEnd
from emovox.labels import Emotion, emotion_index
from emovox.models import resnet_mlp
from emovox.training.trainer import TorchClassifier

pytestmark = pytest.mark.slow

SR = 16000


@pytest.fixture(scope="module")
def original_48k(shared_data) -> Path:
    folder = shared_data / "ravdess" / "original-48k"
    if not sorted(folder.glob("*.wav")):
        pytest.skip(f"no real RAVDESS clip under {folder} (set EMOVOX_SHARED_DATA)")
    return folder


def test_real_ravdess_file(original_48k) -> None:
    clip = original_48k / "03-01-02-01-01-02-01.wav"
    if not clip.is_file():
        pytest.skip(f"RAVDESS sample {clip} not present")
    info = probe(clip)
    a = load_audio(clip)
    assert (a.sr, a.orig_sr) == (16000, 48000) and a.wave.ndim == 1
    assert a.orig_channels == info.channels
    assert 3.0 <= a.duration <= 6.0
    assert a.duration == pytest.approx(info.duration, abs=1e-3)
    assert not a.silent and np.isfinite(a.wave).all()


def test_real_ravdess_speech(shared_ravdess) -> None:
    speech = shared_ravdess / "Audio_Speech_Actors_01-24"
    t0 = time.perf_counter()
    scan = scan_corpus("ravdess", speech)
    elapsed = time.perf_counter() - t0
    assert len(scan.utterances) == 1440
    assert scan.skipped == []
    assert len({u.speaker for u in scan.utterances}) == 24
    assert {u.meta["vocal_channel"] for u in scan.utterances} == {"speech"}
    per_emotion = {e: sum(u.emotion is e for u in scan.utterances) for e in Emotion}
    assert per_emotion == {e: (96 if e is Emotion.NEUTRAL else 192) for e in Emotion}
    assert sum(u.gender is Gender.MALE for u in scan.utterances) == 720
    a = speech / "Actor_07" / "03-01-03-01-02-01-07.flac"
    b = speech / "Actor_07" / "03-01-03-01-02-02-07.flac"
    identical = a.read_bytes() == b.read_bytes()
    assert ([a, b] in scan.duplicates) == identical
    # In this copy the known pair is the only byte-identical group (if it is one at all).
    assert scan.duplicates == ([[a, b]] if identical else [])
    assert elapsed < 5.0


def test_frontend_matches_librosa_on_real_clip(original_48k) -> None:
    clip = sorted(original_48k.glob("*.wav"))[0]
    wave = load_audio(clip, sr=SR, trim=True).wave
    ref = extract("logmel", wave, SR)
    got = LogMelFrontEnd.from_params(SR)(wave)
    assert got.shape == ref.shape and got.dtype == np.float32
    assert np.abs(got - ref).max() <= 1e-3


def test_training_on_real_actors_reduces_loss(shared_ravdess) -> None:
    """A few epochs on two real actors: training loss falls and training UA beats chance."""
    scan = scan_corpus("ravdess", shared_ravdess / "Audio_Speech_Actors_01-24",
                       detect_duplicates=False)
    utts = [u for u in scan.labelled if u.speaker in ("ravdess:01", "ravdess:02")]
    x = np.stack([extract("seed002", load_audio(u.path).wave, 16000) for u in utts])
    y = np.array([emotion_index(u.emotion) for u in utts])
    model = TorchClassifier(resnet_mlp.build_net, n_classes=8, seed=0,
                            **resnet_mlp.ResNetMlpConfig(epochs=25, select_k=0).to_params())
    model.fit(x, y, x[:0], y[:0])
    losses = model.history.train_loss
    assert len(losses) == 25 and losses[-1] < 0.6 * losses[0]
    acc = (model.predict_proba(x).argmax(1) == y).mean()
    assert acc > 0.5  # chance is 1/8
