"""How much of the upper speech band a recording carries: the bandwidth of its channel.

A telephone line passes 300-3400 Hz, a narrow-band codec (AMR-NB, Opus at its lowest rates,
an 8 kHz recording played at 16 kHz) nothing above 4 kHz; a studio or a phone's own
microphone keeps fricative and breath energy up to 7-8 kHz. :func:`band_ratio_db` measures
it: the mean power spectral density over 4.5-7 kHz relative to the telephone band, in dB.
Clean RAVDESS / EMOVO clips: median -17.7 / -14.5 dB, 0.5th percentile -29.5 / -28.4; their
300-3400 Hz band-passed copies: 99.5th percentile -47.6 / -40.6 (``bench/bandwidth_gate.py``).

:data:`NARROW_BAND_FLOOR_DB` (the training side's 0.5th percentile minus 6 dB) is where an
ensemble's functional member hands over to its narrow-band alternative
(:attr:`emovox.preprocess.Preprocess.band_floor_db`). NumPy only, 1-2 ms per 3 s.
"""

from __future__ import annotations

import numpy as np

__all__ = ["HIGH_BAND", "LOW_BAND", "NARROW_BAND_FLOOR_DB", "band_ratio_db"]

#: the band that full-band speech carries and a telephone line does not (Hz)
HIGH_BAND: tuple[float, float] = (4500.0, 7000.0)
#: the telephone band (Hz)
LOW_BAND: tuple[float, float] = (300.0, 3400.0)
#: below this ratio a wave is narrow-band: the 0.5th percentile over the 2,028 clean RAVDESS +
#: EMOVO clips (-29.3 dB) minus 6 dB (``bench/bandwidth_gate.py``; training corpora only)
NARROW_BAND_FLOOR_DB: float = -35.3
#: power added to both bands: digital silence reads 0 dB instead of NaN
_EPS: float = 1e-20
#: frames transformed at once (memory: about _CHUNK * n_fft * 12 bytes)
_CHUNK: int = 512


def band_ratio_db(wave: np.ndarray, sr: int, *, n_fft: int = 512,
                  high: tuple[float, float] = HIGH_BAND,
                  low: tuple[float, float] = LOW_BAND) -> float:
    """Mean power spectral density over ``high`` relative to ``low``, in dB.

    Args:
        wave: mono waveform ``(n,)``, any scale (the ratio is gain-invariant).
        sr: its sampling rate (Hz).
        n_fft: frame length (samples) of the Hann-windowed frames, hop ``n_fft // 2``; a
            wave shorter than one frame is zero-padded to one.
        high, low: the two bands (Hz).

    Returns:
        ``10 log10(mean PSD(high) / mean PSD(low))`` over all frames (power-weighted, so
        loud frames dominate and silence hardly counts); ``-inf`` when ``sr`` cannot carry
        the high band (``sr / 2 < high[1]``: an 8 kHz recording is narrow-band by
        definition); 0.0 for digital silence.
    """
    if sr / 2 < high[1]:
        return float("-inf")
    x = np.asarray(wave, np.float32).reshape(-1)
    if len(x) < n_fft:
        x = np.pad(x, (0, n_fft - len(x)))
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[:: n_fft // 2]  # no copy
    window = np.hanning(n_fft).astype(np.float32)
    power = np.zeros(n_fft // 2 + 1)
    for i in range(0, len(frames), _CHUNK):  # bounded memory on long input
        spec = np.fft.rfft(frames[i : i + _CHUNK] * window, axis=1)  # (<=CHUNK, n_fft//2+1)
        power += np.sum(spec.real**2 + spec.imag**2, axis=0)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)

    def band(lo_hi: tuple[float, float]) -> float:
        sel = (freqs >= lo_hi[0]) & (freqs <= lo_hi[1])
        return float(np.mean(power[sel]))

    return float(10.0 * np.log10((band(high) + _EPS) / (band(low) + _EPS)))
