"""Augmentation: known-answer transforms, determinism, and training clips only."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, replace

import numpy as np
import pytest
from scipy.signal import welch

from emovox import augment as aug
from emovox.audio import load_audio
from emovox.config import DataConfig, ExperimentConfig, ModelConfig, SplitConfig
from emovox.experiment import run_experiment
from signals import peak_hz, sine, voice

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
    short = np.ones(3200, np.float32)  # a shift past a short clip raised, or left all zeros
    for shift in (4000, -4000):  # (code review, stop 47): at most half the clip
        out = aug.time_shift(short, shift)
        assert len(out) == 3200 and np.count_nonzero(out) == 1600


def _slope_db_per_octave(y: np.ndarray) -> float:
    """Least-squares slope of the power spectrum (dB) against log2 frequency, 100-4000 Hz."""
    f, p = welch(y, SR, nperseg=4096)
    band = (f >= 100) & (f <= 4000)
    return float(np.polyfit(np.log2(f[band]), 10 * np.log10(p[band]), 1)[0])


@pytest.mark.parametrize(("exponent", "slope"), [(0.0, 0.0), (1.0, -3.0), (2.0, -6.0)])
def test_coloured_noise_has_its_spectral_slope(exponent, slope):
    n = aug.coloured_noise(SR * 4, np.random.default_rng(0), exponent)
    assert np.std(n) == pytest.approx(1.0, rel=0.02) and abs(np.mean(n)) < 0.02
    assert _slope_db_per_octave(n) == pytest.approx(slope, abs=0.5)


def test_coloured_noise_hits_requested_snr():
    x = sine(440)
    y = aug.add_noise(x, np.random.default_rng(1), snr_db=5.0, exponent=1.0)
    snr = 10 * np.log10(np.mean(x**2) / np.mean((y - x) ** 2))
    assert snr == pytest.approx(5.0, abs=0.3)


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_scales_length_and_pitch_together(factor):
    y = aug.speed(sine(440), SR, factor)
    assert len(y) == pytest.approx(SR / factor, abs=2)
    assert peak_hz(y, SR) == pytest.approx(440 * factor, rel=0.01)


def test_telephone_band_removes_what_is_outside_300_3400_hz():
    low, mid, high = (aug.band_limit(sine(hz), SR, 300.0, 3400.0) for hz in (100, 1000, 6000))
    rms = [float(np.sqrt(np.mean(y[2000:-2000] ** 2))) for y in (low, mid, high)]
    assert rms[1] == pytest.approx(0.5 / np.sqrt(2), rel=0.05)  # passband kept
    assert rms[0] < 0.05 * rms[1] and rms[2] < 0.01 * rms[1]


def test_peaking_eq_gain_at_its_centre_only():
    boosted = aug.peaking_eq(sine(1000), SR, 1000.0, 6.0, q=2.0)
    far = aug.peaking_eq(sine(100), SR, 1000.0, 6.0, q=2.0)
    ratio = np.std(boosted[4000:]) / np.std(sine(1000)[4000:])
    assert 20 * np.log10(ratio) == pytest.approx(6.0, abs=0.2)
    assert 20 * np.log10(np.std(far[4000:]) / np.std(sine(100)[4000:])) == pytest.approx(
        0.0, abs=0.5)


def test_reverb_keeps_length_and_peak_and_adds_a_tail():
    x = np.zeros(SR, np.float32)
    x[1000:1100] = sine(1000)[:100]
    y = aug.reverb(x, SR, np.random.default_rng(0), rt60_s=0.5)
    assert len(y) == len(x)
    assert np.max(np.abs(y)) == pytest.approx(np.max(np.abs(x)), rel=1e-5)
    assert np.sqrt(np.mean(y[3000:6000] ** 2)) > 1e-3  # energy after the burst ended
    assert np.all(x[3000:6000] == 0)


def test_channel_recipe_changes_the_signal_and_leaves_classic_streams_alone():
    x = sine(300)
    ch = aug.recipe_config(aug.AugmentRecipe.CHANNEL, 1)
    assert ch.p_speed > 0 and ch.gain_db == (-30.0, 30.0)
    outs = [aug.augment(x, SR, ch, aug.variant_rng(0, "abc", k)) for k in range(4)]
    assert all(np.all(np.isfinite(o)) for o in outs)
    assert len({len(o) for o in outs} | {len(x)}) > 1  # speed perturbation ran somewhere
    # classic = the defaults; transforms with p == 0 draw nothing from the generator, so
    # classic variants are exactly what the code produced before the channel recipe existed
    classic = aug.recipe_config(aug.AugmentRecipe.CLASSIC, 1)
    assert classic == aug.AugmentConfig(variants=1)
    calls: list[str] = []

    class Spy:
        def __init__(self, rng):
            self.rng = rng

        def __getattr__(self, name):
            calls.append(name)
            return getattr(self.rng, name)

    off = aug.AugmentConfig(p_pitch=0, p_stretch=0, p_shift=0, p_gain=0, p_noise=0)
    aug.augment(x, SR, off, Spy(np.random.default_rng(0)))
    assert calls == ["random"] * 5  # one coin per classic transform, none for the others


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

    def spy(wave, sr, cfg, rng, **kw):
        seen.append(hashlib.sha256(wave.tobytes()).hexdigest())
        return real(wave, sr, cfg, rng, **kw)

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


def test_augment_summary_names_the_recipe_s_transforms():
    from dataclasses import asdict

    assert aug.augment_summary(None) == ""
    assert aug.augment_summary(asdict(aug.AugmentConfig())) == ""  # 0 variants: none
    chan = aug.augment_summary(asdict(aug.recipe_config(aug.AugmentRecipe.CHANNEL, 2)))
    assert chan == ("2 augmented copies of each clip: reverb, band-limit, EQ, speed, shift, "
                    "gain (-30 to +30 dB), noise (SNR 5-30 dB)")
    classic = aug.augment_summary(asdict(aug.recipe_config(aug.AugmentRecipe.CLASSIC, 1)))
    assert classic.startswith("1 augmented copy of each clip: pitch, stretch, shift")
    assert "reverb" not in classic and "speed" not in classic


def test_the_codec_step_comes_last_and_only_with_a_codec_function():
    from dataclasses import replace

    x = voice(1.0).astype(np.float32)
    cfg = replace(aug.recipe_config(aug.AugmentRecipe.CHANNEL_CODEC, 1), p_codec=1.0)
    seen: list[str] = []

    def fake_codec(w, sr, name):
        seen.append(name)
        return w * 0.5

    plain = aug.augment(x, SR, replace(cfg, p_codec=0.0), aug.variant_rng(0, "abc", 0))
    coded = aug.augment(x, SR, cfg, aug.variant_rng(0, "abc", 0), codec=fake_codec)
    np.testing.assert_allclose(coded, plain * 0.5, rtol=1e-6)  # the same draws, then the codec
    assert len(seen) == 1 and seen[0] in cfg.codecs
    with pytest.raises(ValueError, match="codec function"):
        aug.augment(x, SR, cfg, aug.variant_rng(0, "abc", 0))
    assert aug.recipe_config(aug.AugmentRecipe.CHANNEL_CODEC, 2).p_codec == 0.3
    assert aug.recipe_config(aug.AugmentRecipe.CHANNEL, 2).p_codec == 0.0
    from dataclasses import asdict

    assert aug.augment_summary(asdict(aug.recipe_config(aug.AugmentRecipe.CHANNEL_CODEC, 2))
                               ).endswith("noise (SNR 5-30 dB), codec")


def test_telephone_recipe_band_passes_every_copy_and_does_nothing_else():
    rng = np.random.default_rng(5)
    x = rng.standard_normal(SR).astype(np.float32) * 0.1
    tel = aug.recipe_config(aug.AugmentRecipe.TELEPHONE, 1)
    want = aug.band_limit(x, SR, 300.0, 3400.0)
    for k in range(4):  # no gain, noise, shift or random cut: the same output every time
        np.testing.assert_allclose(aug.augment(x, SR, tel, aug.variant_rng(0, "c", k)), want,
                                   atol=1e-6)
    assert "telephone band (300-3400 Hz)" in aug.augment_summary(asdict(tel))
    assert "noise" not in aug.augment_summary(asdict(tel))


def test_channel_recipe_still_splits_band_limits_between_telephone_and_random_cuts():
    ch = replace(aug.recipe_config(aug.AugmentRecipe.CHANNEL, 1), p_reverb=0, p_eq=0,
                 p_speed=0, p_shift=0, p_gain=0, p_noise=0, p_band=1.0)
    x = np.random.default_rng(6).standard_normal(SR).astype(np.float32) * 0.1
    tel = aug.band_limit(x, SR, 300.0, 3400.0)
    same = [np.allclose(aug.augment(x, SR, ch, aug.variant_rng(0, "c", k)), tel, atol=1e-6)
            for k in range(40)]
    assert 5 < sum(same) < 35  # about half the copies


def test_hum_is_a_mains_line_or_buzz_at_the_asked_level():
    x = voice(1.0).astype(np.float32)
    p_x = float(np.mean(x.astype(np.float64) ** 2))
    kinds = set()
    for k in range(12):
        y = aug.add_hum(x, SR, np.random.default_rng(k), -20.0)
        hum = (y - x).astype(np.float64)
        assert len(y) == len(x) and y.dtype == np.float32
        assert 10 * np.log10(np.mean(hum**2) / p_x) == pytest.approx(-20.0, abs=0.01)
        spec = np.abs(np.fft.rfft(hum * np.hanning(len(hum))))
        freqs = np.fft.rfftfreq(len(hum), 1 / SR)
        peak = freqs[np.argmax(spec)]
        assert min(abs(peak - 50), abs(peak - 60)) <= 1.0  # the fundamental is the loudest
        harmonics = spec[(freqs > 90) & (freqs < 1000)].max() / spec.max()
        kinds.add("buzz" if harmonics > 0.2 else "line")
    assert kinds == {"buzz", "line"}
    silent = np.zeros(SR, np.float32)
    assert np.array_equal(aug.add_hum(silent, SR, np.random.default_rng(0), -20.0), silent)


def test_channel_hum_recipe_adds_hum_to_the_channel_recipe_and_leaves_others_alone():
    from dataclasses import asdict, replace

    hum = aug.recipe_config(aug.AugmentRecipe.CHANNEL_HUM, 2)
    chan = aug.recipe_config(aug.AugmentRecipe.CHANNEL, 2)
    assert hum.p_hum == 0.3 and chan.p_hum == 0.0
    assert replace(hum, p_hum=0.0) == chan
    assert "hum, noise (SNR 5-30 dB)" in aug.augment_summary(asdict(hum))
    x = voice(1.0).astype(np.float32)
    # p_hum = 0 draws nothing: the channel recipe's copies are those it always made
    only_hum = replace(chan, p_reverb=0, p_band=0, p_eq=0, p_speed=0, p_shift=0, p_gain=0,
                       p_noise=0, p_hum=1.0)
    y = aug.augment(x, SR, only_hum, aug.variant_rng(0, "c", 0))
    assert not np.allclose(y, x)
    z = aug.augment(x, SR, replace(only_hum, p_hum=0.0), aug.variant_rng(0, "c", 0))
    np.testing.assert_array_equal(z, x)
