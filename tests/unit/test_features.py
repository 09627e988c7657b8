"""Known-answer tests for emovox.features on synthetic signals (fast, deterministic)."""

from __future__ import annotations

import json
import sys

import librosa
import numpy as np
import pytest

from emovox.errors import InvalidSamples
from emovox.features import (
    FEATURE_VERSION,
    FEATURES,
    FeatureSpec,
    extract,
    feature_key,
    pooling,
    reference,
    smile,
    spectral,
)
from signals import harmonic, noise, sine, square

SR = 16_000
A_PITCH_CLASS = 9  # chroma rows run C, C#, D, D#, E, F, F#, G, G#, A, A#, B


def expected_shape(name: str, n_samples: int) -> tuple[int, ...]:
    """Shapes of every registered feature with default params at 16 kHz."""
    frames_10ms = 1 + max(n_samples, 512) // 160
    return {
        "logmel": (frames_10ms, 64),
        "mfcc": (frames_10ms, 20),
        "mfcc_chroma": (frames_10ms, 72),
        "seed000": (1 + 48_000 // 512, 60),
        "seed001": (162,),
        "seed002": (45,),
        "seed003": (340,),
        "seed004": (200, 40),
        "egemaps": (88,),
        "compare": (6373,),
        "prosody": (47,),
        "prosody_band": (47,),
        "prosody_robust": (41,),
        "prosody_vq": (75,),
    }[name]


# --------------------------------------------------------------------------- known answers


def test_chroma_peaks_at_a_for_440hz() -> None:
    c = spectral.chroma(sine(440.0), SR)
    assert c.shape[0] == 12
    assert int(np.argmax(c.mean(axis=1))) == A_PITCH_CLASS


def test_log_mel_peak_band_contains_1khz() -> None:
    n_mels, fmin = 64, 20.0
    s = spectral.log_mel(sine(1000.0), SR, n_mels=n_mels, fmin=fmin)
    assert s.shape[0] == n_mels
    k = int(np.argmax(s.mean(axis=1)))
    # Band k of librosa's mel filterbank is a triangle from edge k to edge k + 2.
    edges = librosa.mel_frequencies(n_mels=n_mels + 2, fmin=fmin, fmax=SR / 2)
    assert edges[k] <= 1000.0 <= edges[k + 2]


def test_log_mel_is_db_clipped_to_top_db() -> None:
    s = spectral.log_mel(sine(1000.0), SR, top_db=80.0)
    assert s.max() - s.min() <= 80.0 + 1e-3
    # dB re 1.0 (not re the max): loudness is kept and the max is not pinned to 0 dB.
    assert -100.0 < s.max() < 60.0
    louder = spectral.log_mel(2 * sine(1000.0), SR, top_db=80.0)
    assert louder.max() - s.max() == pytest.approx(20 * np.log10(2), abs=1e-3)


@pytest.mark.parametrize("freq", [500.0, 1000.0, 2500.0])
def test_spectral_centroid_of_sine_is_its_frequency(freq: float) -> None:
    c = spectral.spectral_centroid(sine(freq), SR)
    assert c.shape[0] == 1
    assert np.median(c) == pytest.approx(freq, rel=0.10)


@pytest.mark.parametrize("freq", [250.0, 500.0, 1000.0])
def test_zcr_of_square_wave_is_2f_over_sr(freq: float) -> None:
    z = spectral.zcr(square(freq), SR)
    assert z.shape[0] == 1
    interior = z[0, 2:-2]  # edge frames see padding
    assert interior.mean() == pytest.approx(2 * freq / SR, rel=0.05)


def test_zcr_of_white_noise_is_one_half() -> None:
    z = spectral.zcr(noise(), SR)
    assert z.mean() == pytest.approx(0.5, abs=0.02)


def test_rms_of_sine_is_amplitude_over_sqrt2() -> None:
    r = spectral.rms(sine(1000.0, amp=0.5), SR)
    assert np.median(r) == pytest.approx(0.5 / np.sqrt(2), rel=0.02)


def test_spectral_flatness_separates_tone_and_noise() -> None:
    tone = spectral.spectral_flatness(sine(1000.0), SR).mean()
    white = spectral.spectral_flatness(noise(), SR).mean()
    assert tone < 0.05 < 0.3 < white


def test_mfcc_gain_changes_only_c0() -> None:
    """A gain g adds 20 log10 g dB to every mel band; the orthonormal DCT puts a constant
    offset d only into c0, as d * sqrt(n_mels). c1.. are unchanged."""
    n_mels, gain = 64, 4.0
    x = noise(amp=0.05)
    quiet = spectral.mfcc(x, SR, n_mels=n_mels)
    loud = spectral.mfcc(gain * x, SR, n_mels=n_mels)
    offset_db = 20 * np.log10(gain)
    np.testing.assert_allclose(loud[0] - quiet[0], offset_db * np.sqrt(n_mels), rtol=1e-3)
    np.testing.assert_allclose(loud[1:], quiet[1:], atol=1e-2)


@pytest.mark.parametrize(("deltas", "rows"), [(0, 20), (1, 40), (2, 60)])
def test_mfcc_deltas_multiply_rows(deltas: int, rows: int) -> None:
    for seconds in (1.0, 0.05):  # 0.05 s: fewer frames than the delta window
        m = spectral.mfcc(noise(seconds), SR, n_mfcc=20, deltas=deltas)
        assert m.shape[0] == rows
        assert np.isfinite(m).all()


def test_mfcc_delta_of_stationary_signal_is_small() -> None:
    m = spectral.mfcc(noise(2.0, amp=0.1), SR, deltas=1)
    statics, delta = m[:20, 5:-5], m[20:, 5:-5]
    assert np.abs(delta).mean() < 0.5 * np.abs(statics).mean()


def test_mfcc_rejects_bad_deltas() -> None:
    with pytest.raises(ValueError, match="deltas"):
        spectral.mfcc(noise(), SR, deltas=3)


def test_spectral_contrast_has_n_bands_plus_one_rows() -> None:
    assert spectral.spectral_contrast(noise(), SR).shape[0] == 7
    assert spectral.spectral_bandwidth(noise(), SR).shape[0] == 1
    assert spectral.spectral_rolloff(noise(), SR).shape[0] == 1


# --------------------------------------------------------------------------- pooling / shaping


def test_frame_stats_values_and_layout() -> None:
    frames = np.array([[1.0, 2.0, 3.0, 4.0], [5.0, 5.0, 5.0, 5.0]])
    out = pooling.frame_stats(frames)
    assert out.shape == (8,)
    assert out.dtype == np.float32
    # statistic-major: [means, stds, mins, maxs]
    np.testing.assert_allclose(out, [2.5, 5.0, np.std([1, 2, 3, 4]), 0.0, 1, 5, 4, 5])


def test_frame_stats_all_statistics() -> None:
    rng = np.random.default_rng(1)
    frames = rng.standard_normal((3, 50))
    stats = pooling.STATS
    out = pooling.frame_stats(frames, stats)
    assert out.shape == (3 * len(stats),)
    by = dict(zip(stats, out.reshape(len(stats), 3), strict=True))
    np.testing.assert_allclose(by["median"], np.median(frames, axis=1), rtol=1e-5)
    np.testing.assert_allclose(by["p10"], np.percentile(frames, 10, axis=1), rtol=1e-5)
    np.testing.assert_allclose(by["p90"], np.percentile(frames, 90, axis=1), rtol=1e-5)
    centred = frames - frames.mean(axis=1, keepdims=True)
    var = (centred**2).mean(axis=1)
    np.testing.assert_allclose(by["skew"], (centred**3).mean(axis=1) / var**1.5, rtol=1e-4)
    np.testing.assert_allclose(by["kurtosis"], (centred**4).mean(axis=1) / var**2 - 3, rtol=1e-4)


def test_frame_stats_constant_and_empty_rows_are_finite() -> None:
    const = pooling.frame_stats(np.ones((2, 10)), ("skew", "kurtosis", "std"))
    np.testing.assert_array_equal(const, np.zeros(6))
    empty = pooling.frame_stats(np.zeros((4, 0)), ("mean", "p90"))
    np.testing.assert_array_equal(empty, np.zeros(8))
    with pytest.raises(ValueError, match="unknown statistic"):
        pooling.frame_stats(np.ones((2, 3)), ("mode",))


def test_fix_length_frames_pads_end_and_centre_crops() -> None:
    x = np.arange(10, dtype=np.float32).reshape(1, 10)
    padded = pooling.fix_length_frames(x, 13)
    assert padded.shape == (1, 13)
    np.testing.assert_array_equal(padded[0], [*range(10), 0, 0, 0])
    cropped = pooling.fix_length_frames(x, 4)
    np.testing.assert_array_equal(cropped[0], [3, 4, 5, 6])
    assert pooling.fix_length_frames(x, 10).shape == (1, 10)


# --------------------------------------------------------------------------- registry


def test_registry_keys_and_specs() -> None:
    assert set(FEATURES) == {
        "logmel",
        "mfcc",
        "mfcc_chroma",
        "seed000",
        "seed001",
        "seed002",
        "seed003",
        "seed004",
        "egemaps",
        "compare",
        "prosody",
        "prosody_band",
        "prosody_robust",
        "prosody_vq",
    }
    for name, spec in FEATURES.items():
        assert isinstance(spec, FeatureSpec)
        assert spec.name == name
        assert spec.kind in ("vector", "sequence")
        assert spec.description
        json.dumps(spec.params)  # JSON-serialisable


@pytest.mark.parametrize("seconds", [1.0, 5.0, 0.05])
@pytest.mark.parametrize("name", sorted(FEATURES))
def test_registered_shapes(name: str, seconds: float) -> None:
    x = noise(seconds)
    out = extract(name, x, SR)
    assert out.shape == expected_shape(name, x.shape[0])
    assert out.dtype == np.float32
    assert np.isfinite(out).all()
    assert out.ndim == (1 if FEATURES[name].kind == "vector" else 2)


@pytest.mark.parametrize("name", sorted(FEATURES))
def test_silence_is_finite(name: str) -> None:
    out = extract(name, np.zeros(SR, dtype=np.float32), SR)
    assert out.shape == expected_shape(name, SR)
    assert np.isfinite(out).all()


@pytest.mark.parametrize("name", ["logmel", "mfcc", "seed001", "seed003", "seed004"])
def test_empty_wave_is_finite(name: str) -> None:
    out = extract(name, np.zeros(0, dtype=np.float32), SR)
    assert np.isfinite(out).all()


def test_sequence_features_are_time_major_transposes() -> None:
    x = noise(1.0)
    np.testing.assert_array_equal(extract("logmel", x, SR), spectral.log_mel(x, SR).T)
    np.testing.assert_array_equal(
        extract("mfcc", x, SR, deltas=2), spectral.mfcc(x, SR, deltas=2).T
    )
    assert extract("mfcc", x, SR, deltas=2).shape == (101, 60)


def test_extract_is_deterministic_and_respects_sr() -> None:
    x = noise(1.0, sr=22_050)
    a = extract("logmel", x, 22_050, hop_length=256)
    b = extract("logmel", x, 22_050, hop_length=256)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (1 + 22_050 // 256, 64)
    # a 1 kHz tone peaks in the mel band centred nearest 1 kHz at either rate; the mel
    # scale spans 20 Hz..sr/2, so that band is another one at 22.05 kHz than at 16 kHz
    peaks = []
    for sr in (22_050, SR):
        mel = extract("logmel", sine(1000.0, 1.0, sr=sr), sr)
        centres = librosa.mel_frequencies(64 + 2, fmin=20.0, fmax=sr / 2)[1:-1]
        peaks.append(int(np.abs(centres - 1000.0).argmin()))
        assert int(mel.mean(0).argmax()) == peaks[-1], sr
    assert peaks[0] != peaks[1]


def test_extract_unknown_name_and_param() -> None:
    with pytest.raises(ValueError, match="valid:.*logmel.*seed004"):
        extract("wav2vec", noise(), SR)
    with pytest.raises(ValueError, match="n_melz"):
        extract("logmel", noise(), SR, n_melz=40)


def test_feature_key_is_stable_and_parameter_sensitive() -> None:
    key = feature_key("mfcc")
    assert key == feature_key("mfcc")
    assert json.loads(key) == {
        "feature": "mfcc",
        "params": FEATURES["mfcc"].params,
        "version": FEATURE_VERSION,
    }
    assert feature_key("mfcc", deltas=0) == key  # explicit default == implicit default
    assert feature_key("mfcc", deltas=2) != key
    assert feature_key("mfcc", n_mfcc=np.int64(13)) == feature_key("mfcc", n_mfcc=13)
    assert feature_key("logmel", fmin=20) == feature_key("logmel", fmin=20.0)
    assert feature_key("logmel") != feature_key("mfcc")
    with pytest.raises(ValueError, match="unknown feature"):
        feature_key("nope")
    with pytest.raises(ValueError, match="unknown parameter"):
        feature_key("seed001", n_mfcc=13)


def test_invalid_waveforms_are_rejected() -> None:
    with pytest.raises(ValueError, match="mono"):
        extract("logmel", np.zeros((2, SR), dtype=np.float32), SR)
    bad = noise()
    bad[10] = np.nan
    with pytest.raises(InvalidSamples):
        extract("mfcc", bad, SR)


# --------------------------------------------------------------------------- reference projects


def test_reference000_keeps_first_3s_and_pads() -> None:
    x = noise(5.0)
    np.testing.assert_array_equal(
        reference.reference000_mfcc_sequence(x, SR),
        reference.reference000_mfcc_sequence(x[: 3 * SR], SR),
    )
    short = noise(1.0)
    padded = np.concatenate([short, np.zeros(2 * SR, dtype=np.float32)])
    np.testing.assert_array_equal(
        reference.reference000_mfcc_sequence(short, SR),
        reference.reference000_mfcc_sequence(padded, SR),
    )


def test_seed_layouts_put_440hz_at_pitch_class_a() -> None:
    x = sine(440.0)
    v1 = reference.reference001_vector(x, SR)
    assert int(np.argmax(v1[1:13])) == A_PITCH_CLASS
    assert v1[0] == pytest.approx(2 * 440 / SR, rel=0.05)  # ZCR mean first
    v2 = reference.reference002_summary(x, SR)
    assert int(np.argmax(v2[26:38])) == A_PITCH_CLASS
    assert v2[38] == pytest.approx(440.0, rel=0.10)  # centroid mean
    assert v2[43] == pytest.approx(0.5 / np.sqrt(2), rel=0.05)  # RMS mean
    v3 = reference.reference003_frame_stats(x, SR)
    assert v3.shape == (reference.REFERENCE003_DIM,) == (340,)
    n_rows = 85
    means = v3[:n_rows]
    assert int(np.argmax(means[73:85])) == A_PITCH_CLASS  # chroma block
    assert means[71] == pytest.approx(2 * 440 / SR, rel=0.05)  # ZCR row


def test_reference004_frames_cover_4s() -> None:
    x = noise(4.0)
    m = reference.reference004_mfcc_frames(x, SR)
    assert m.shape == (200, 40)
    # 4 s at a 20 ms hop is 201 frames: exactly one is cropped, so no zero padding.
    assert np.all(np.abs(m).sum(axis=1) > 0)
    short = reference.reference004_mfcc_frames(noise(1.0), SR)
    assert np.all(short[60:] == 0)  # 1 s = 51 frames, the rest is zero padding


# --------------------------------------------------------------------------- openSMILE


def test_egemaps_f0_of_200hz_tone() -> None:
    names = smile.feature_names("egemaps")
    assert len(names) == 88
    values = smile.egemaps(harmonic(200.0, seconds=2.0, n_harmonics=10), SR)
    idx = names.index("F0semitoneFrom27.5Hz_sma3nz_amean")
    assert values[idx] == pytest.approx(12 * np.log2(200.0 / 27.5), abs=1.0)


def test_compare_names_match_values() -> None:
    names = smile.feature_names("compare")
    assert len(names) == 6373
    assert smile.compare(noise(0.5), SR).shape == (6373,)


def test_smile_very_short_input_is_padded_not_nan() -> None:
    for n in (0, 10, 800):
        out = smile.egemaps(noise(n / SR), SR)
        assert out.shape == (88,)
        assert np.isfinite(out).all()


def test_smile_caches_one_extractor_per_set() -> None:
    smile.egemaps(noise(0.5), SR)
    first = smile._SMILES[("eGeMAPSv02", "Functionals")]
    smile.egemaps(noise(0.5), SR)
    assert smile._SMILES[("eGeMAPSv02", "Functionals")] is first


def test_missing_opensmile_raises_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(smile, "_SMILES", {})
    monkeypatch.setitem(sys.modules, "opensmile", None)  # makes `import opensmile` fail
    with pytest.raises(ImportError, match=r"pip install emovox\[smile\]"):
        smile.egemaps(noise(0.5), SR)
    with pytest.raises(ValueError, match="unknown openSMILE feature set"):
        smile.feature_names("gemaps-typo")
