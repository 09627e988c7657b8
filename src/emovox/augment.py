"""Waveform augmentation for TRAINING clips only. Every transform takes an explicit
:class:`numpy.random.Generator`; nothing here touches global random state.

The experiment runner asks for augmented variants of the training side of a fold
only; validation and test clips are never passed through this module.

Four recipes (:class:`AugmentRecipe`, ``evaluate --augment-recipe``):

* ``classic``: the reference projects' noise, pitch shift, time stretch, gain, time shift;
* ``channel``: channel and speaker variation for a model that must hold up on other
  microphones, rooms and voices — speed perturbation 0.9/1.0/1.1 (tempo and formants move
  together, the classic remedy for few speakers), synthetic reverberation, telephone or
  random band-limiting, random peaking EQ, coloured (white, pink, brown) noise at 5-30 dB SNR
  and gain over +-30 dB;
* ``channel_codec``: ``channel`` and, last, a lossy codec round trip on 30 % of the copies
  (GSM phone, Opus 12 kbit/s VoIP or MP3 32 kbit/s). The codec itself lives in
  :mod:`emovox.audio.codec` (ffmpeg); :func:`augment` takes it as its ``codec`` argument,
  which the feature cache passes;
* ``channel_hum``: ``channel`` and mains hum on 30 % of the copies (:func:`add_hum`: 50 or
  60 Hz, a pure line or a buzz with its harmonics, 35 to 10 dB under the clip's power), which
  the networks read in their lowest mel bands (README, "Mains hum");
* ``telephone``: only the telephone line, every copy band-passed to 300-3400 Hz and nothing
  else (for a linear model on spectral-balance functionals, which the wider recipe blurs).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import Enum

import numpy as np


class AugmentRecipe(str, Enum):
    CLASSIC = "classic"  #: noise, pitch, stretch, gain, shift (the reference projects')
    CHANNEL = "channel"  #: speed, reverb, band-limit, EQ, coloured noise, wide gain
    CHANNEL_CODEC = "channel_codec"  #: channel + a lossy codec round trip (ffmpeg)
    CHANNEL_HUM = "channel_hum"  #: channel + mains hum (50/60 Hz, pure or buzz)
    TELEPHONE = "telephone"  #: every copy band-passed to 300-3400 Hz, nothing else


@dataclass(frozen=True)
class AugmentConfig:
    """Which transforms to apply, each with its probability and range."""

    variants: int = 0  #: augmented copies of each training clip (0 = no augmentation)
    p_noise: float = 0.5
    snr_db: tuple[float, float] = (10.0, 30.0)
    #: noise colours drawn from (spectral exponent: 0 white, 1 pink, 2 brown)
    noise_colours: tuple[float, ...] = (0.0,)
    p_pitch: float = 0.5
    semitones: tuple[float, float] = (-2.0, 2.0)
    p_stretch: float = 0.3
    rate: tuple[float, float] = (0.85, 1.15)
    p_gain: float = 0.5
    gain_db: tuple[float, float] = (-6.0, 6.0)
    p_shift: float = 0.3
    max_shift_s: float = 0.3
    #: speed perturbation (resampling: tempo and pitch/formants together)
    p_speed: float = 0.0
    speeds: tuple[float, ...] = (0.9, 1.1)
    #: synthetic room reverberation, RT60 range (s)
    p_reverb: float = 0.0
    rt60_s: tuple[float, float] = (0.15, 0.8)
    #: band-limiting: telephone 300-3400 Hz, or a random low/high cut
    p_band: float = 0.0
    #: share of the band-limited copies that get the telephone band (the rest a random cut)
    telephone_share: float = 0.5
    #: random peaking EQ: up to 3 bands of +- ``eq_db``
    p_eq: float = 0.0
    eq_db: float = 10.0
    #: a lossy codec round trip, the last step (names of :class:`emovox.audio.codec.Codec`)
    p_codec: float = 0.0
    codecs: tuple[str, ...] = ("gsm", "opus_voip", "mp3_32k")
    #: mains hum (:func:`add_hum`), its level in dB relative to the signal's mean power
    p_hum: float = 0.0
    hum_db: tuple[float, float] = (-35.0, -10.0)


#: the ``channel`` recipe's probabilities and ranges (over :class:`AugmentConfig` defaults)
CHANNEL_RECIPE: dict[str, object] = {
    "p_pitch": 0.0, "p_stretch": 0.0, "p_shift": 0.3,
    "p_speed": 0.6, "p_reverb": 0.4, "p_band": 0.3, "p_eq": 0.4,
    "p_noise": 0.6, "snr_db": (5.0, 30.0), "noise_colours": (0.0, 1.0, 2.0),
    "p_gain": 0.8, "gain_db": (-30.0, 30.0),
}

#: the ``telephone`` recipe: every other transform off
TELEPHONE_RECIPE: dict[str, object] = {
    "p_noise": 0.0, "p_pitch": 0.0, "p_stretch": 0.0, "p_gain": 0.0, "p_shift": 0.0,
    "p_band": 1.0, "telephone_share": 1.0,
}


def recipe_config(recipe: AugmentRecipe, variants: int) -> AugmentConfig:
    """The :class:`AugmentConfig` of a named recipe with ``variants`` copies per clip."""
    cfg = AugmentConfig(variants=variants)
    recipe = AugmentRecipe(recipe)
    if recipe in (AugmentRecipe.CHANNEL, AugmentRecipe.CHANNEL_CODEC):
        cfg = replace(cfg, **CHANNEL_RECIPE)  # type: ignore[arg-type]
    if recipe is AugmentRecipe.CHANNEL_HUM:
        cfg = replace(cfg, **CHANNEL_RECIPE, p_hum=0.3)  # type: ignore[arg-type]
    if recipe is AugmentRecipe.CHANNEL_CODEC:
        cfg = replace(cfg, p_codec=0.3)
    if recipe is AugmentRecipe.TELEPHONE:
        cfg = replace(cfg, **TELEPHONE_RECIPE)  # type: ignore[arg-type]
    return cfg


#: the transforms of :class:`AugmentConfig` by their probability field, in the order applied
_TRANSFORMS: tuple[tuple[str, str], ...] = (
    ("p_reverb", "reverb"), ("p_band", "band-limit"), ("p_eq", "EQ"), ("p_speed", "speed"),
    ("p_pitch", "pitch"), ("p_stretch", "stretch"), ("p_shift", "shift"), ("p_gain", "gain"),
    ("p_hum", "hum"), ("p_noise", "noise"), ("p_codec", "codec"),
)


def augment_summary(config: dict[str, object] | None) -> str:
    """One line on a model's training augmentation, from its saved ``augment`` config dict
    (``AugmentConfig`` fields): "" without augmentation, else e.g. "2 augmented copies of
    each clip: reverb, band-limit, EQ, speed, shift, gain, noise (SNR 5-30 dB)"."""
    cfg = config or {}
    n = int(cfg.get("variants", 0) or 0)  # type: ignore[call-overload]
    if n <= 0:
        return ""
    names = [name for field, name in _TRANSFORMS if float(cfg.get(field, 0) or 0) > 0]  # type: ignore[arg-type]
    if "noise" in names and cfg.get("snr_db"):
        lo, hi = cfg["snr_db"]  # type: ignore[misc]
        names[names.index("noise")] = f"noise (SNR {lo:g}-{hi:g} dB)"
    if "band-limit" in names and float(cfg.get("telephone_share", 0.5)) >= 1.0:  # type: ignore[arg-type]
        names[names.index("band-limit")] = "telephone band (300-3400 Hz)"
    if "gain" in names and cfg.get("gain_db"):
        lo, hi = cfg["gain_db"]  # type: ignore[misc]
        names[names.index("gain")] = f"gain ({lo:+g} to {hi:+g} dB)"
    return f"{n} augmented cop{'y' if n == 1 else 'ies'} of each clip: {', '.join(names)}"


def coloured_noise(n: int, rng: np.random.Generator, exponent: float) -> np.ndarray:
    """``n`` samples of zero-mean noise with power spectrum ~ 1/f**exponent (0 white, 1 pink,
    2 brown): unit variance exactly when coloured, in expectation when white (the white
    draw is the plain ``standard_normal`` the classic recipe always used)."""
    white = rng.standard_normal(n)
    if exponent == 0 or n < 4:
        return white
    spec = np.fft.rfft(white)
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    spec[0] = 0.0  # no DC
    noise = np.fft.irfft(spec / f ** (exponent / 2), n)
    return noise / (np.std(noise) + 1e-12)


def add_noise(wave: np.ndarray, rng: np.random.Generator, snr_db: float,
              exponent: float = 0.0) -> np.ndarray:
    """Noise (white by default, see :func:`coloured_noise`) at ``snr_db`` relative to the
    signal's mean power."""
    power = float(np.mean(wave.astype(np.float64) ** 2))
    if power <= 0:
        return wave
    noise = coloured_noise(len(wave), rng, exponent) * np.sqrt(power / 10 ** (snr_db / 10))
    return (wave + noise).astype(np.float32)


#: mains frequencies (Hz) :func:`add_hum` draws from
MAINS_HZ: tuple[float, float] = (50.0, 60.0)
#: a buzz's harmonics reach up to this frequency (Hz)
BUZZ_TOP_HZ: float = 1000.0


def add_hum(wave: np.ndarray, sr: int, rng: np.random.Generator, level_db: float, *,
            mains_hz: float | None = None, buzz: bool | None = None) -> np.ndarray:
    """Mains hum at ``level_db`` relative to the signal's mean power: 50 or 60 Hz (drawn
    unless ``mains_hz`` is given), off by up to 0.2 Hz, either a pure line or (half the time,
    unless ``buzz`` is given) a buzz, every harmonic up to :data:`BUZZ_TOP_HZ` with
    amplitude 1/k and a random phase (a ground loop or a rectifier's hum: its lines at
    100-180 Hz sit among a voice's lowest harmonics). Same length."""
    power = float(np.mean(wave.astype(np.float64) ** 2))
    if power <= 0 or len(wave) == 0:
        return wave
    mains = (float(rng.choice(MAINS_HZ)) if mains_hz is None else mains_hz) \
        + rng.uniform(-0.2, 0.2)
    if buzz is None:
        buzz = bool(rng.random() < 0.5)
    top = int(min(BUZZ_TOP_HZ, 0.45 * sr) // mains) if buzz else 1
    k = np.arange(1, max(1, top) + 1)
    phases = rng.uniform(0, 2 * np.pi, len(k))
    t = np.arange(len(wave)) / sr
    line = np.zeros(len(wave))
    for kk, ph in zip(k, phases, strict=True):
        line += np.sin(2 * np.pi * kk * mains * t + ph) / kk
    line *= np.sqrt(power * 10 ** (level_db / 10) / max(float(np.mean(line**2)), 1e-20))
    return (wave + line).astype(np.float32)


def pitch_shift(wave: np.ndarray, sr: int, semitones: float) -> np.ndarray:
    import librosa

    return librosa.effects.pitch_shift(wave, sr=sr, n_steps=semitones).astype(np.float32)


def time_stretch(wave: np.ndarray, rate: float) -> np.ndarray:
    """Faster (rate > 1) or slower playback at the same pitch."""
    import librosa

    return librosa.effects.time_stretch(wave, rate=rate).astype(np.float32)


def speed(wave: np.ndarray, sr: int, factor: float) -> np.ndarray:
    """Played ``factor`` times faster (tempo, pitch and formants all scale): resampled from
    ``sr`` to ``sr / factor`` with soxr and read back at ``sr``. Length ~ n / factor."""
    import soxr

    if factor == 1.0:
        return wave.astype(np.float32, copy=True)
    return soxr.resample(wave.astype(np.float32), sr, sr / factor).astype(np.float32)


def reverb(wave: np.ndarray, sr: int, rng: np.random.Generator, rt60_s: float) -> np.ndarray:
    """Convolution with a synthetic room impulse response: a direct path plus exponentially
    decaying Gaussian noise whose energy falls 60 dB in ``rt60_s`` seconds; the output keeps
    the input's length and peak level."""
    from scipy import signal as sps

    n_ir = max(2, int(rt60_s * sr))
    t = np.arange(n_ir) / sr
    ir = rng.standard_normal(n_ir) * np.exp(-6.9078 * t / rt60_s) * 0.3
    ir[0] = 1.0
    out = sps.fftconvolve(wave.astype(np.float64), ir)[: len(wave)]
    peak_in, peak_out = float(np.max(np.abs(wave), initial=0.0)), float(np.max(np.abs(out)))
    if peak_out > 0:
        out *= peak_in / peak_out
    return out.astype(np.float32)


def band_limit(wave: np.ndarray, sr: int, low_hz: float, high_hz: float) -> np.ndarray:
    """Band-pass ``low_hz``..``high_hz`` (4th-order Butterworth, zero phase); telephone
    speech is 300-3400 Hz."""
    from scipy import signal as sps

    high_hz = min(high_hz, 0.45 * sr)
    sos = sps.butter(4, [low_hz, high_hz], btype="bandpass", fs=sr, output="sos")
    return sps.sosfiltfilt(sos, wave.astype(np.float64)).astype(np.float32)


def peaking_eq(wave: np.ndarray, sr: int, centre_hz: float, gain_db: float,
               q: float = 1.0) -> np.ndarray:
    """One peaking-EQ biquad (RBJ cookbook): ``gain_db`` at ``centre_hz``, bandwidth ~1/q."""
    from scipy import signal as sps

    a = 10 ** (gain_db / 40)
    w0 = 2 * np.pi * centre_hz / sr
    alpha = np.sin(w0) / (2 * q)
    b = [1 + alpha * a, -2 * np.cos(w0), 1 - alpha * a]
    den = [1 + alpha / a, -2 * np.cos(w0), 1 - alpha / a]
    return sps.lfilter(b, den, wave.astype(np.float64)).astype(np.float32)


def gain(wave: np.ndarray, db: float) -> np.ndarray:
    return np.clip(wave * 10 ** (db / 20), -1.0, 1.0).astype(np.float32)


def time_shift(wave: np.ndarray, shift: int) -> np.ndarray:
    """Shift by ``shift`` samples (positive = later), zero-filled, same length; at most by
    half the wave (a shift past a short clip's length raised, or left all zeros that kept
    their emotion label: code review, stop 47)."""
    out = np.zeros_like(wave)
    half = len(wave) // 2
    shift = max(-half, min(half, int(shift)))
    if shift >= 0:
        out[shift:] = wave[: len(wave) - shift]
    else:
        out[:shift] = wave[-shift:]
    return out


def _channel(out: np.ndarray, sr: int, cfg: AugmentConfig,
             rng: np.random.Generator) -> np.ndarray:
    """Room, microphone and line: reverb, band-limit, EQ (in that order)."""
    if cfg.p_reverb > 0 and rng.random() < cfg.p_reverb:
        out = reverb(out, sr, rng, rng.uniform(*cfg.rt60_s))
    if cfg.p_band > 0 and rng.random() < cfg.p_band:
        if rng.random() < cfg.telephone_share:
            out = band_limit(out, sr, 300.0, 3400.0)
        else:
            out = band_limit(out, sr, rng.uniform(50, 400), rng.uniform(3000, 7600))
    if cfg.p_eq > 0 and rng.random() < cfg.p_eq:
        for _ in range(int(rng.integers(1, 4))):
            centre = float(np.exp(rng.uniform(np.log(150), np.log(6000))))
            out = peaking_eq(out, sr, centre, rng.uniform(-cfg.eq_db, cfg.eq_db),
                             rng.uniform(0.7, 2.0))
    return out


#: a codec round trip: (wave, sr, codec name) -> wave of the same length
CodecFn = Callable[[np.ndarray, int, str], np.ndarray]


def augment(wave: np.ndarray, sr: int, cfg: AugmentConfig, rng: np.random.Generator,
            codec: CodecFn | None = None) -> np.ndarray:
    """One random augmentation of ``wave`` (n,) float32; returns a new array (its length
    changes with stretch or speed). A transform whose probability is 0 draws nothing from
    ``rng``, so adding one leaves the other recipes' variants unchanged. ``codec`` performs
    the codec round trip of ``p_codec`` (required when ``p_codec`` > 0)."""
    out = wave.astype(np.float32, copy=True)
    if cfg.p_speed > 0 and rng.random() < cfg.p_speed:
        out = speed(out, sr, float(rng.choice(cfg.speeds)))
    if rng.random() < cfg.p_pitch:
        out = pitch_shift(out, sr, rng.uniform(*cfg.semitones))
    if rng.random() < cfg.p_stretch:
        out = time_stretch(out, rng.uniform(*cfg.rate))
    if rng.random() < cfg.p_shift:
        m = int(cfg.max_shift_s * sr)
        out = time_shift(out, int(rng.integers(-m, m + 1)))
    out = _channel(out, sr, cfg, rng)
    if cfg.p_hum > 0 and rng.random() < cfg.p_hum:  # on the line, before the gain
        out = add_hum(out, sr, rng, rng.uniform(*cfg.hum_db))
    if rng.random() < cfg.p_gain:
        out = gain(out, rng.uniform(*cfg.gain_db))
    if rng.random() < cfg.p_noise:
        snr = rng.uniform(*cfg.snr_db)
        colours = cfg.noise_colours
        colour = float(rng.choice(colours)) if len(colours) > 1 else colours[0]
        out = add_noise(out, rng, snr, colour)
    if cfg.p_codec > 0 and rng.random() < cfg.p_codec:
        if codec is None:
            raise ValueError("p_codec > 0 needs a codec function (emovox.audio.codec)")
        out = np.asarray(codec(out, sr, str(rng.choice(cfg.codecs))), np.float32)
    return out


def variant_rng(seed: int, content_id: str, variant: int) -> np.random.Generator:
    """The generator for variant ``variant`` of one clip: reproducible, independent of order."""
    digest = hashlib.sha256(f"{seed}:{content_id}:{variant}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))
