"""Augmentation: known-answer transforms, determinism, and training clips only."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from emovox import augment as aug
from emovox.audio import load_audio
from emovox.config import DataConfig, ExperimentConfig, ModelConfig, SplitConfig
from emovox.experiment import run_experiment
from signals import peak_hz, sine

SR = 16000


def test_noise_hits_requested_snr():
    x = sine(440)
    y = aug.add_noise(x, np.random.default_rng(0), snr_db=10.0)
    snr = 10 * np.log10(np.mean(x**2) / np.mean((y - x) ** 2))
    assert snr == pytest.approx(10.0, abs=0.3)


def test_pitch_shift_moves_the_peak_by_semitones():
    y = aug.pitch_shift(sine(440), SR, 2.0)
    assert peak_hz(y, SR) == pytest.approx(440 * 2 ** (2 / 12), rel=0.02)


def test_time_stretch_changes_length_not_pitch():
    y = aug.time_stretch(sine(440), 1.25)
    assert len(y) == pytest.approx(SR / 1.25, rel=0.02)
    assert peak_hz(y, SR) == pytest.approx(440, rel=0.02)


def test_gain_and_shift():
    x = sine(440)
    assert np.max(np.abs(aug.gain(x, -6.0))) == pytest.approx(0.5 * 10 ** (-6 / 20), rel=1e-3)
    s = aug.time_shift(x, 100)
    assert np.all(s[:100] == 0) and np.array_equal(s[100:], x[:-100])
    assert np.array_equal(aug.time_shift(x, -100)[:-100], x[100:])


def test_augment_is_deterministic_per_clip_and_variant():
    x = sine(300)
    cfg = aug.AugmentConfig(variants=2)
    a = aug.augment(x, SR, cfg, aug.variant_rng(0, "abc", 0))
    b = aug.augment(x, SR, cfg, aug.variant_rng(0, "abc", 0))
    c = aug.augment(x, SR, cfg, aug.variant_rng(0, "abc", 1))
    assert np.array_equal(a, b)
    assert not (len(a) == len(c) and np.array_equal(a, c))
    assert np.array_equal(x, sine(300))  # input untouched


@pytest.mark.slow
def test_augmentation_touches_training_clips_only(fake_ravdess, tmp_path, monkeypatch):
    """Spy on every waveform that reaches augment(): none may be a validation or test clip."""
    seen: list[str] = []
    real = aug.augment

    def spy(wave, sr, cfg, rng):
        seen.append(hashlib.sha256(wave.tobytes()).hexdigest())
        return real(wave, sr, cfg, rng)

    monkeypatch.setattr(aug, "augment", spy)
    cfg = ExperimentConfig(
        data=DataConfig(root=str(fake_ravdess)),
        split=SplitConfig(folds=(0,), n_val_speakers=1),
        model=ModelConfig("egemaps_logreg"),
        augment=aug.AugmentConfig(variants=1, p_pitch=0.0, p_stretch=0.0),
        cache_dir=str(tmp_path / "cache"),
        n_jobs=1,
    )
    res = run_experiment(cfg, tmp_path / "run")
    fold = res.folds[0]
    # fake tree has actors 1-6: fold 0 tests actor 01 only; one validation actor
    assert fold.test_speakers == ["ravdess:01"] and len(fold.val_speakers) == 1
    held_out = {"Actor_01", f"Actor_{fold.val_speakers[0].split(':')[1]}"}
    protected = {
        hashlib.sha256(load_audio(p).wave.tobytes()).hexdigest()
        for d in held_out for p in (fake_ravdess / d).glob("*.wav")
    }
    train_hashes = {
        hashlib.sha256(load_audio(p).wave.tobytes()).hexdigest()
        for p in fake_ravdess.rglob("*.wav") if p.parent.name not in held_out
    }
    assert len(seen) == fold.n_train == 64  # 4 training actors x 16 clips, once each
    assert set(seen) == train_hashes
    assert not set(seen) & protected
