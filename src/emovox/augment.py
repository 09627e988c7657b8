"""Waveform augmentation for TRAINING clips only. Every transform takes an explicit
:class:`numpy.random.Generator`; nothing here touches global random state.

The experiment runner asks for augmented variants of the training side of a fold
only; validation and test clips are never passed through this module.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    """Which transforms to apply, each with its probability and range."""

    variants: int = 0  #: augmented copies of each training clip (0 = no augmentation)
    p_noise: float = 0.5
    snr_db: tuple[float, float] = (10.0, 30.0)
    p_pitch: float = 0.5
    semitones: tuple[float, float] = (-2.0, 2.0)
    p_stretch: float = 0.3
    rate: tuple[float, float] = (0.85, 1.15)
    p_gain: float = 0.5
    gain_db: tuple[float, float] = (-6.0, 6.0)
    p_shift: float = 0.3
    max_shift_s: float = 0.3


def add_noise(wave: np.ndarray, rng: np.random.Generator, snr_db: float) -> np.ndarray:
    """White Gaussian noise at ``snr_db`` relative to the signal's mean power."""
    power = float(np.mean(wave.astype(np.float64) ** 2))
    if power <= 0:
        return wave
    noise = rng.standard_normal(len(wave)) * np.sqrt(power / 10 ** (snr_db / 10))
    return (wave + noise).astype(np.float32)


def pitch_shift(wave: np.ndarray, sr: int, semitones: float) -> np.ndarray:
    import librosa

    return librosa.effects.pitch_shift(wave, sr=sr, n_steps=semitones).astype(np.float32)


def time_stretch(wave: np.ndarray, rate: float) -> np.ndarray:
    """Faster (rate > 1) or slower playback at the same pitch."""
    import librosa

    return librosa.effects.time_stretch(wave, rate=rate).astype(np.float32)


def gain(wave: np.ndarray, db: float) -> np.ndarray:
    return np.clip(wave * 10 ** (db / 20), -1.0, 1.0).astype(np.float32)


def time_shift(wave: np.ndarray, shift: int) -> np.ndarray:
    """Shift by ``shift`` samples (positive = later), zero-filled, same length."""
    out = np.zeros_like(wave)
    if shift >= 0:
        out[shift:] = wave[: len(wave) - shift]
    else:
        out[:shift] = wave[-shift:]
    return out


def augment(wave: np.ndarray, sr: int, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """One random augmentation of ``wave`` (n,) float32; returns a new array."""
    out = wave.astype(np.float32, copy=True)
    if rng.random() < cfg.p_pitch:
        out = pitch_shift(out, sr, rng.uniform(*cfg.semitones))
    if rng.random() < cfg.p_stretch:
        out = time_stretch(out, rng.uniform(*cfg.rate))
    if rng.random() < cfg.p_shift:
        m = int(cfg.max_shift_s * sr)
        out = time_shift(out, int(rng.integers(-m, m + 1)))
    if rng.random() < cfg.p_gain:
        out = gain(out, rng.uniform(*cfg.gain_db))
    if rng.random() < cfg.p_noise:
        out = add_noise(out, rng, rng.uniform(*cfg.snr_db))
    return out


def variant_rng(seed: int, content_id: str, variant: int) -> np.random.Generator:
    """The generator for variant ``variant`` of one clip: reproducible, independent of order."""
    digest = hashlib.sha256(f"{seed}:{content_id}:{variant}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))
