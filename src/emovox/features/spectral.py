"""Frame-level spectral features: thin, guarded wrappers around librosa.

Every function is pure: ``(wave, sr, *, params) -> np.ndarray`` with float32 output, no file
I/O and no global state.

Conventions shared by every function here:

* ``wave`` is a mono waveform, shape ``(n_samples,)``, any float dtype (converted to float32),
  amplitude in ``[-1, 1]`` full scale. ``sr`` is its sampling rate in Hz (16 kHz is the
  canonical rate, but nothing assumes it).
* Outputs are **feature-major** ``(F, T)`` like librosa: ``F`` features by ``T`` frames, with
  ``T = 1 + len(wave) // hop_length`` (frames are centred, as librosa's ``center=True``).
* A wave shorter than the analysis window (``n_fft`` / ``frame_length``), including an empty
  one, is zero-padded at the end to exactly one window before analysis, so tiny inputs give
  ``T = 1 + n_fft // hop_length`` frames instead of crashing or warning.
* Pooling frames to utterance statistics lives in :mod:`emovox.features.pooling`.
* Non-finite output values (which should not happen, but silence and degenerate inputs are
  where they would) are replaced with 0 and logged as a warning.
"""

from __future__ import annotations

import logging

import numpy as np

from emovox.errors import InvalidSamples
from emovox.features.uttnorm import utterance_normalise

logger = logging.getLogger(__name__)

__all__ = [
    "as_mono",
    "chroma",
    "log_mel",
    "mfcc",
    "rms",
    "spectral_bandwidth",
    "spectral_centroid",
    "spectral_contrast",
    "spectral_flatness",
    "spectral_rolloff",
    "zcr",
]

# --------------------------------------------------------------------------- helpers


def as_mono(wave: np.ndarray) -> np.ndarray:
    """Validate a waveform and return it as a contiguous 1-D float32 array.

    Args:
        wave: mono waveform, shape ``(n_samples,)``. A ``(1, n)`` or ``(n, 1)`` array is
            accepted and flattened; anything else with more than one channel is rejected.

    Raises:
        ValueError: the array is not mono.
        InvalidSamples: the waveform contains NaN or infinite samples.
    """
    x = np.asarray(wave, dtype=np.float32)
    if x.ndim == 2 and 1 in x.shape:
        x = x.reshape(-1)
    if x.ndim != 1:
        raise ValueError(f"expected a mono waveform of shape (n_samples,), got shape {x.shape}")
    if not np.isfinite(x.sum(dtype=np.float64)):  # no wave-sized temporary when all is finite
        bad = int(np.count_nonzero(~np.isfinite(x)))
        raise InvalidSamples(f"waveform contains {bad} non-finite (NaN/inf) samples")
    return np.ascontiguousarray(x)


def as_mono_padded(wave: np.ndarray, min_length: int) -> np.ndarray:
    """The wave as mono (:func:`as_mono`), zero-padded at the end to at least ``min_length``
    samples, so that a frame-based feature always has one full analysis window (a tiny or
    empty input then gives one frame of zeros instead of an error)."""
    x = as_mono(wave)
    if x.shape[0] < min_length:
        x = np.pad(x, (0, min_length - x.shape[0]))
    return x


def finite_float32(x: np.ndarray, name: str) -> np.ndarray:
    """``x`` as float32 with non-finite values replaced by 0; ``name`` (the feature) is
    named in the warning logged when any were replaced."""
    x = np.asarray(x, dtype=np.float32)
    bad = ~np.isfinite(x)
    if bad.any():
        logger.warning("%s produced %d non-finite values; replaced with 0", name, int(bad.sum()))
        x = np.where(bad, np.float32(0.0), x)
    return x


def _window(win_length: int | None, n_fft: int) -> int | None:
    """A window length librosa accepts: ``None`` (= n_fft) or clamped to at most ``n_fft``."""
    return None if win_length is None else min(int(win_length), int(n_fft))


# --------------------------------------------------------------------------- spectrograms


def log_mel(
    wave: np.ndarray,
    sr: int,
    *,
    n_mels: int = 64,
    n_fft: int = 512,
    win_length: int | None = 400,
    hop_length: int = 160,
    fmin: float = 20.0,
    fmax: float | None = None,
    top_db: float | None = 80.0,
    utt_norm: str = "none",
) -> np.ndarray:
    """Log-power mel spectrogram.

    Power mel spectrogram (Hann window, Slaney mel scale, Slaney-normalised filters) converted
    to dB relative to full scale (``ref=1.0``, so loudness is kept), floored at 1e-10 power
    (-100 dB) and clipped to ``top_db`` below the loudest bin. Defaults are 25 ms windows
    (``win_length=400``) and 10 ms hops (``hop_length=160``) at 16 kHz.

    Args:
        wave: mono waveform ``(n_samples,)``.
        sr: sampling rate in Hz.
        n_mels: number of mel bands.
        n_fft: FFT size in samples.
        win_length: window length in samples (``None`` = ``n_fft``; clamped to ``n_fft``).
        hop_length: hop between frames in samples.
        fmin: lowest band edge in Hz.
        fmax: highest band edge in Hz (``None`` = ``sr / 2``).
        top_db: dynamic range kept below the maximum, in dB (``None`` = no clipping).
        utt_norm: ``"none"`` (dB as computed), ``"cmvn"`` (per band: minus its mean over
            time, divided by its std; gain-invariant), ``"cmn"``, ``"gain"``, or several
            joined by ``"+"``, see :func:`emovox.features.uttnorm.utterance_normalise`.

    Returns:
        float32 array ``(n_mels, T)``: dB, or normalised dB with ``utt_norm``;
        ``(K * n_mels, T)`` for ``K`` modes joined by ``"+"``.
    """
    import librosa

    y = as_mono_padded(wave, n_fft)
    mel = librosa.feature.melspectrogram(
        y=y,
        sr=sr,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=_window(win_length, n_fft),
        n_mels=n_mels,
        fmin=fmin,
        fmax=fmax,
        power=2.0,
    )
    db = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=top_db)
    if utt_norm != "none":
        db = utterance_normalise(db.T, utt_norm).T
    return finite_float32(db, "log_mel")


def mfcc(
    wave: np.ndarray,
    sr: int,
    *,
    n_mfcc: int = 20,
    n_mels: int = 64,
    n_fft: int = 512,
    hop_length: int = 160,
    win_length: int | None = None,
    fmin: float = 0.0,
    fmax: float | None = None,
    deltas: int = 0,
) -> np.ndarray:
    """Mel-frequency cepstral coefficients, optionally with Δ and ΔΔ.

    librosa's MFCC: type-II orthonormal DCT of the log-power mel spectrogram
    (dB re 1.0, ``top_db=80``). Coefficient 0 carries overall log energy.

    Deltas use librosa's Savitzky-Golay ``delta`` with a 9-frame window; sequences shorter
    than 9 frames fall back to ``mode="nearest"`` edge handling instead of failing.

    Args:
        wave: mono waveform ``(n_samples,)``.
        sr: sampling rate in Hz.
        n_mfcc: number of cepstral coefficients.
        n_mels: number of mel bands before the DCT.
        n_fft: FFT size in samples.
        hop_length: hop between frames in samples.
        win_length: window length in samples (``None`` = ``n_fft``; clamped to ``n_fft``).
        fmin: lowest mel band edge in Hz.
        fmax: highest mel band edge in Hz (``None`` = ``sr / 2``).
        deltas: 0 = static only, 1 = static + Δ, 2 = static + Δ + ΔΔ.

    Returns:
        float32 array ``(n_mfcc * (1 + deltas), T)``: rows ``[c_0..c_{n-1}, Δ..., ΔΔ...]``.
    """
    import librosa

    if deltas not in (0, 1, 2):
        raise ValueError(f"deltas must be 0, 1 or 2, got {deltas!r}")
    y = as_mono_padded(wave, n_fft)
    m = librosa.feature.mfcc(
        y=y,
        sr=sr,
        n_mfcc=n_mfcc,
        n_mels=n_mels,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=_window(win_length, n_fft),
        fmin=fmin,
        fmax=fmax,
    )
    blocks = [m]
    if deltas:
        width = 9
        mode = "interp" if m.shape[1] >= width else "nearest"
        for order in range(1, deltas + 1):
            blocks.append(librosa.feature.delta(m, width=width, order=order, axis=-1, mode=mode))
    return finite_float32(np.concatenate(blocks, axis=0), "mfcc")


def chroma(
    wave: np.ndarray,
    sr: int,
    *,
    n_fft: int = 512,
    hop_length: int = 160,
    win_length: int | None = None,
    n_chroma: int = 12,
    tuning: float | None = None,
) -> np.ndarray:
    """Chromagram from the power STFT (librosa ``chroma_stft``).

    Row 0 is pitch class C, row 9 is A; each frame is max-normalised (peak = 1; a silent
    frame is all zeros). With ``tuning=None`` the tuning deviation is estimated from the
    signal, except for an all-zero signal where it is taken as 0.

    Args:
        wave: mono waveform ``(n_samples,)``.
        sr: sampling rate in Hz.
        n_fft: FFT size in samples.
        hop_length: hop between frames in samples.
        win_length: window length in samples (``None`` = ``n_fft``; clamped to ``n_fft``).
        n_chroma: number of chroma bins per octave.
        tuning: tuning deviation from A440 in fractions of a bin (``None`` = estimate).

    Returns:
        float32 array ``(n_chroma, T)`` in [0, 1].
    """
    import librosa

    y = as_mono_padded(wave, n_fft)
    if tuning is None and not np.any(y):
        tuning = 0.0  # nothing to estimate from; avoids librosa's empty-pitch warning
    c = librosa.feature.chroma_stft(
        y=y,
        sr=sr,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=_window(win_length, n_fft),
        n_chroma=n_chroma,
        tuning=tuning,
    )
    return finite_float32(c, "chroma")


# --------------------------------------------------------------------------- frame-level scalars


def rms(wave: np.ndarray, sr: int, *, frame_length: int = 512, hop_length: int = 160) -> np.ndarray:
    """Root-mean-square amplitude per frame (linear, full scale = 1).

    Args:
        wave: mono waveform ``(n_samples,)``.
        sr: sampling rate in Hz (unused; kept for a uniform signature).
        frame_length: frame length in samples.
        hop_length: hop between frames in samples.

    Returns:
        float32 array ``(1, T)``.
    """
    import librosa

    del sr
    y = as_mono_padded(wave, frame_length)
    r = librosa.feature.rms(y=y, frame_length=frame_length, hop_length=hop_length)
    return finite_float32(r, "rms")


def zcr(wave: np.ndarray, sr: int, *, frame_length: int = 512, hop_length: int = 160) -> np.ndarray:
    """Zero-crossing rate per frame, in crossings per sample (0..1).

    A sinusoid or square wave at ``f`` Hz gives about ``2 f / sr``; white noise about 0.5.

    Args:
        wave: mono waveform ``(n_samples,)``.
        sr: sampling rate in Hz (unused; kept for a uniform signature).
        frame_length: frame length in samples.
        hop_length: hop between frames in samples.

    Returns:
        float32 array ``(1, T)``.
    """
    import librosa

    del sr
    y = as_mono_padded(wave, frame_length)
    z = librosa.feature.zero_crossing_rate(y=y, frame_length=frame_length, hop_length=hop_length)
    return finite_float32(z, "zcr")


def spectral_centroid(
    wave: np.ndarray,
    sr: int,
    *,
    n_fft: int = 512,
    hop_length: int = 160,
    win_length: int | None = None,
) -> np.ndarray:
    """Magnitude-weighted mean frequency per frame, in Hz.

    Returns:
        float32 array ``(1, T)`` in Hz (0 for silent frames).
    """
    import librosa

    y = as_mono_padded(wave, n_fft)
    c = librosa.feature.spectral_centroid(
        y=y, sr=sr, n_fft=n_fft, hop_length=hop_length, win_length=_window(win_length, n_fft)
    )
    return finite_float32(c, "spectral_centroid")


def spectral_bandwidth(
    wave: np.ndarray,
    sr: int,
    *,
    n_fft: int = 512,
    hop_length: int = 160,
    win_length: int | None = None,
    p: float = 2.0,
) -> np.ndarray:
    """Order-``p`` spread of the magnitude spectrum around its centroid, in Hz.

    Returns:
        float32 array ``(1, T)`` in Hz.
    """
    import librosa

    y = as_mono_padded(wave, n_fft)
    b = librosa.feature.spectral_bandwidth(
        y=y,
        sr=sr,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=_window(win_length, n_fft),
        p=p,
    )
    return finite_float32(b, "spectral_bandwidth")


def spectral_rolloff(
    wave: np.ndarray,
    sr: int,
    *,
    n_fft: int = 512,
    hop_length: int = 160,
    win_length: int | None = None,
    roll_percent: float = 0.85,
) -> np.ndarray:
    """Frequency below which ``roll_percent`` of the frame's spectral magnitude lies, in Hz.

    Returns:
        float32 array ``(1, T)`` in Hz.
    """
    import librosa

    y = as_mono_padded(wave, n_fft)
    r = librosa.feature.spectral_rolloff(
        y=y,
        sr=sr,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=_window(win_length, n_fft),
        roll_percent=roll_percent,
    )
    return finite_float32(r, "spectral_rolloff")


def spectral_contrast(
    wave: np.ndarray,
    sr: int,
    *,
    n_fft: int = 512,
    hop_length: int = 160,
    win_length: int | None = None,
    n_bands: int = 6,
    fmin: float = 200.0,
) -> np.ndarray:
    """Peak-to-valley contrast per octave sub-band, in dB.

    Bands are ``[0, fmin], [fmin, 2 fmin], ..., [fmin 2^(n_bands-1), sr/2]``; librosa requires
    ``fmin * 2^(n_bands-1) < sr / 2`` (true for the defaults at sr >= 12.8 kHz).

    Returns:
        float32 array ``(n_bands + 1, T)`` in dB.
    """
    import librosa

    y = as_mono_padded(wave, n_fft)
    c = librosa.feature.spectral_contrast(
        y=y,
        sr=sr,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=_window(win_length, n_fft),
        n_bands=n_bands,
        fmin=fmin,
    )
    return finite_float32(c, "spectral_contrast")


def spectral_flatness(
    wave: np.ndarray,
    sr: int,
    *,
    n_fft: int = 512,
    hop_length: int = 160,
    win_length: int | None = None,
) -> np.ndarray:
    """Wiener entropy: geometric / arithmetic mean of the power spectrum (0 = tonal, 1 = white).

    Args:
        sr: sampling rate in Hz (unused; kept for a uniform signature).

    Returns:
        float32 array ``(1, T)``, unitless in [0, 1].
    """
    import librosa

    del sr
    y = as_mono_padded(wave, n_fft)
    f = librosa.feature.spectral_flatness(
        y=y, n_fft=n_fft, hop_length=hop_length, win_length=_window(win_length, n_fft)
    )
    return finite_float32(f, "spectral_flatness")
