"""Synthetic signals for the tests: sines, harmonic tones, noise, silence and clip writers.

Importable as ``signals`` from every test folder (``tests/`` is on ``sys.path`` through its
``conftest.py``). Every generator is deterministic; the noisy ones take a seed or a Generator.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SR = 16000


def n_samples(seconds: float, sr: int) -> int:
    return int(round(seconds * sr))


def sine(
    freq: float = 440.0, seconds: float = 1.0, sr: int = SR, amp: float = 0.5,
    dtype: type = np.float32,
) -> np.ndarray:
    """``amp * sin(2 pi freq t)`` of ``round(seconds * sr)`` samples."""
    t = np.arange(n_samples(seconds, sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(dtype)


def square(freq: float, seconds: float = 1.0, sr: int = SR, amp: float = 0.5) -> np.ndarray:
    """A square wave (sign of a sine with a small phase offset, off exact zeros), float32."""
    t = np.arange(n_samples(seconds, sr)) / sr
    return (amp * np.sign(np.sin(2 * np.pi * freq * t + 0.1))).astype(np.float32)


def harmonic(
    f0: float, seconds: float = 1.0, sr: int = SR, *, amp: float = 0.3, n_harmonics: int = 3,
    vibrato: float = 0.0, noise: float = 0.0, rng: np.random.Generator | None = None,
    glide: float = 0.0,
) -> np.ndarray:
    """Harmonics 1..n of ``f0`` with 1/k amplitudes, peak-normalised to ``amp``; ``vibrato``
    is the relative depth of a 5 Hz pitch wobble (voice-like), ``glide`` that of a slower
    1.7 Hz rise and fall (intonation: with it the spectrum never holds still, as a voice's
    does not, so :mod:`emovox.features.steady` does not take it for a beep); ``noise`` adds
    white noise of that standard deviation drawn from ``rng`` after normalising. float32."""
    t = np.arange(n_samples(seconds, sr)) / sr
    ks = range(1, n_harmonics + 1)
    if vibrato or glide:
        f = f0 * (1 + vibrato * np.sin(2 * np.pi * 5 * t)) \
            * (1 + glide * np.sin(2 * np.pi * 1.7 * t))
        phase = 2 * np.pi * np.cumsum(f) / sr
        w = sum(np.sin(k * phase) / k for k in ks)
    else:
        w = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in ks)
    w = amp * w / np.max(np.abs(w))
    if noise:
        w = w + noise * (rng or np.random.default_rng(0)).standard_normal(len(t))
    return w.astype(np.float32)


def voice(seconds: float, sr: int = SR, f0: float = 180.0) -> np.ndarray:
    """A voice-like harmonic tone with 10 % vibrato and a 20 % glide (its spectrum never
    holds still, as a voice's does not: a steadier one is a beep to
    :mod:`emovox.features.steady`), peak 0.3, in syllable-like bursts (:func:`syllables`)
    so that the speech detector takes it for speech."""
    return syllables(harmonic(f0, seconds, sr, vibrato=0.1, glide=0.2), sr)


def talk(seconds: float, sr: int = SR, seed: int = 0) -> np.ndarray:
    """Syllables as a voice says them: 0.15-0.3 s each (Hann-shaped), 0.05-0.15 s apart, each
    a harmonic tone (8 harmonics) whose pitch falls by 15 % from a start drawn in 110-160
    Hz, peak 0.3, with 0.2 s of silence before. float32."""
    rng = np.random.default_rng(seed)
    out = np.zeros(n_samples(seconds, sr), np.float32)
    a = n_samples(0.2, sr)
    while a < len(out) - n_samples(0.5, sr):
        n = n_samples(rng.uniform(0.15, 0.3), sr)
        f = np.linspace(1.0, 0.85, n) * rng.uniform(110.0, 160.0)
        phase = 2 * np.pi * np.cumsum(f) / sr
        syl = sum(np.sin(k * phase) / k for k in range(1, 9)) * np.hanning(n)
        out[a : a + n] = 0.3 * syl / np.max(np.abs(syl))
        a += n + n_samples(rng.uniform(0.05, 0.15), sr)
    return out


def emotion_tone(
    emotion: int, rng: np.random.Generator, seconds: float = 0.8, sr: int = SR,
    actor: int = 0, rep: int = 0,
) -> np.ndarray:
    """A harmonic tone whose pitch encodes the emotion code (so it is learnable), shifted a
    little per actor and repetition, moving like a voice (8 % vibrato, 15 % glide: a steady
    tone is a beep to the speech detector), with 1 % noise, 0.1 s quieter (noise only) at
    each end."""
    f0 = 120.0 * 2 ** (emotion / 4) * (1 + 0.02 * (actor % 3)) * (1 + 0.01 * rep)
    w = harmonic(f0, seconds, sr, noise=0.01, rng=rng, vibrato=0.08, glide=0.15)
    return w * syllables(np.ones_like(w), sr, on=seconds, lead=0.1)  # leading/trailing gaps


def noise(seconds: float = 1.0, sr: int = SR, amp: float = 0.1, seed: int = 0) -> np.ndarray:
    """Gaussian white noise of standard deviation ``amp``, float32."""
    rng = np.random.default_rng(seed)
    return (amp * rng.standard_normal(n_samples(seconds, sr))).astype(np.float32)


def pink_noise(seconds: float = 1.0, sr: int = SR, amp: float = 0.3, seed: int = 0) -> np.ndarray:
    """Pink (1/f power) noise, peak ``amp``, float32."""
    n = n_samples(seconds, sr)
    spec = np.fft.rfft(np.random.default_rng(seed).standard_normal(n))
    k = np.arange(len(spec), dtype=np.float64)
    k[0] = 1.0
    w = np.fft.irfft(spec / np.sqrt(k), n)
    return (amp * w / np.max(np.abs(w))).astype(np.float32)


def syllables(wave: np.ndarray, sr: int = SR, *, on: float = 0.3, off: float = 0.12,
              lead: float = 0.15) -> np.ndarray:
    """``wave`` cut into speech-like bursts: ``lead`` s of silence, then ``on`` s bursts
    (10 ms ramps) separated by ``off`` s of silence, and ``lead`` s of silence at the end.
    Steady tones are not speech to the detector; bursts of a voiced tone are."""
    n = len(wave)
    if n <= 2 * n_samples(lead, sr) + n_samples(0.05, sr):  # too short for bursts: as it is
        return np.asarray(wave, np.float32).copy()
    env = np.zeros(n, np.float32)
    a, ramp = n_samples(lead, sr), n_samples(0.01, sr)
    while a < n - n_samples(lead, sr):
        b = min(a + n_samples(on, sr), n - n_samples(lead, sr))
        seg = np.ones(b - a, np.float32)
        r = min(ramp, len(seg) // 2)
        if r:
            seg[:r] = np.linspace(0, 1, r)
            seg[-r:] = np.linspace(1, 0, r)
        env[a:b] = seg
        a = b + n_samples(off, sr)
    return (wave * env).astype(np.float32)


def blobs(n: int = 96, d: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` feature vectors ``(n, d)`` float32 in 8 separable Gaussian classes (labels
    ``arange(n) % 8``): a learnable toy problem for the trainers."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 8
    centres = rng.normal(0, 3, (8, d))
    return (centres[y] + rng.normal(0, 1, (n, d))).astype(np.float32), y


def silence(seconds: float = 1.0, sr: int = SR) -> np.ndarray:
    return np.zeros(n_samples(seconds, sr), np.float32)


def peak_hz(wave: np.ndarray, sr: int = SR) -> float:
    """Frequency (Hz) of the largest FFT magnitude bin of a Hann-windowed signal."""
    spec = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return float(np.fft.rfftfreq(len(wave), 1.0 / sr)[np.argmax(spec)])


def write_clip(path: Path, wave: np.ndarray, sr: int = SR, subtype: str | None = "PCM_16",
               **kw: object) -> Path:
    """Write ``wave`` (samples or samples x channels) to ``path``; returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, wave, sr, subtype=subtype, **kw)  # type: ignore[arg-type]
    return path


def clip_bytes(wave: np.ndarray, sr: int = SR, fmt: str = "WAV",
               subtype: str | None = None) -> bytes:
    """``wave`` encoded in memory as ``fmt`` (WAV, FLAC, AIFF, OGG...)."""
    buf = io.BytesIO()
    sf.write(buf, wave, sr, format=fmt, subtype=subtype)
    return buf.getvalue()


FFMPEG = shutil.which("ffmpeg")
needs_ffmpeg = pytest.mark.skipif(
    FFMPEG is None, reason="ffmpeg is not installed (apt-get install ffmpeg) - needed for m4a/webm"
)


def ffmpeg_encode(src: Path, dst: Path, *codec_args: str) -> Path:
    """Re-encode ``src`` into ``dst`` with ffmpeg (``codec_args`` such as ``-c:a aac``)."""
    cmd = [FFMPEG or "ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(src)]
    subprocess.run([*cmd, *codec_args, str(dst)], check=True)
    return dst


def _non_speech_set() -> dict[str, np.ndarray]:
    """The synthetic non-speech inputs that must get no emotion (3 s each at 16 kHz, but the
    0.1 s clip)."""
    return {
        "white noise": noise(3.0, amp=0.1),
        "pink noise": pink_noise(3.0),
        "440 Hz tone": sine(440.0, 3.0),
        "digital silence": silence(3.0),
        "DC offset": np.full(n_samples(3.0, SR), 0.3, np.float32),
        "square wave": np.clip(20 * sine(220.0, 3.0, amp=1.0), -0.9, 0.9),
        "0.1 s clip": voice(0.1),
    }


#: white & pink noise, a 440 Hz tone, silence, DC, a clipped square wave, a 0.1 s clip
NON_SPEECH_SET = _non_speech_set()


def gated(wave: np.ndarray, on: float, off: float, sr: int = SR) -> np.ndarray:
    """``wave`` switched on for ``on`` s and off for ``off`` s, from the start."""
    t = np.arange(len(wave)) / sr
    return (wave * ((t % (on + off)) < on)).astype(np.float32)


def _phone_tones() -> dict[str, np.ndarray]:
    """What a phone line plays that is not a voice (3 s each): level and voicing alone
    take these for speech (README, stop 29)."""
    saw = ((np.arange(n_samples(3.0, SR)) * 150 / SR) % 1.0 - 0.5).astype(np.float32)
    t = np.arange(n_samples(3.0, SR)) / SR
    uk_cadence = (t < 0.4) | ((t >= 0.6) & (t < 1.0)) | (t >= 2.6)  # 0.4 on 0.2 off 0.4 on
    return {
        "busy tone": gated(sine(480.0, 3.0, amp=0.2) + sine(620.0, 3.0, amp=0.2), 0.5, 0.5),
        "ring-back tone": gated(sine(440.0, 3.0, amp=0.2) + sine(480.0, 3.0, amp=0.2), 1.0,
                                0.5),
        "UK ring tone": ((sine(400.0, 3.0, amp=0.2) + sine(450.0, 3.0, amp=0.2))
                         * uk_cadence).astype(np.float32),
        "Japanese ring-back": gated(sine(400.0, 3.0, amp=0.3)
                                    * (1 + 0.5 * np.sin(2 * np.pi * 16 * t)), 1.0, 1.0),
        "gated square wave": gated(square(150.0, 3.0), 0.25, 0.25),
        "gated sawtooth": gated(saw, 0.25, 0.25),
    }


#: busy and ring-back tones (US, UK, Japan), gated square and sawtooth waves
PHONE_TONES = _phone_tones()
