"""The exact feature sets of the five public reference projects emovox re-evaluates.

Each function reproduces one reference project's feature extraction so its model can be
re-trained and scored under speaker-independent splits. They run at whatever rate they are
given (16 kHz is canonical in emovox). Unless stated otherwise they use librosa's defaults,
as the reference projects did: ``n_fft=2048``, ``hop_length=512``, Hann window, 128 Slaney
mel bands, 20 MFCCs.

The registered feature names stay ``seed000`` .. ``seed004`` (they are part of feature cache
keys, run configs and model artifacts); the code calls the projects "reference".

Outputs are float32; vectors are ``(D,)`` and sequences are time-major ``(T, D)``.
Tiny inputs (shorter than one 2048-sample window) are zero-padded at the end to one window,
so every function works down to an empty waveform; silence never yields NaN.

Dimensions at a glance:

=========  ======================  ==============================================
name       shape                   content
=========  ======================  ==============================================
seed000    ``(T, 60)``             60 MFCC of the wave padded/cropped to 3 s;
                                   ``T = 1 + round(3 sr) // 512`` (94 at 16 kHz)
seed001    ``(162,)``              means of ZCR, chroma, MFCC, RMS, mel power
seed002    ``(45,)``               MFCC/chroma/spectral/energy summary
seed003    ``(340,)``              mean/std/min/max of 85 frame-level features
seed004    ``(200, 40)``           40 MFCC, 20 ms hop, padded/cropped to 200 frames
=========  ======================  ==============================================
"""

from __future__ import annotations

import numpy as np

from emovox.features import pooling, spectral
from emovox.features.spectral import as_mono_padded, finite_float32

__all__ = [
    "REFERENCE003_DIM",
    "REFERENCE003_ROWS",
    "reference000_mfcc_sequence",
    "reference001_vector",
    "reference002_summary",
    "reference003_frame_stats",
    "reference004_mfcc_frames",
]

# librosa's defaults, which the reference projects relied on.
_N_FFT = 2048
_HOP = 512
_N_MELS = 128

#: Row layout of the reference-003 frame matrix, in order, with the number of rows each block has.
REFERENCE003_ROWS: tuple[tuple[str, int], ...] = (
    ("mfcc", 20),
    ("mfcc_delta", 20),
    ("mfcc_delta2", 20),
    ("spectral_centroid", 1),
    ("spectral_bandwidth", 1),
    ("spectral_rolloff", 1),
    ("spectral_contrast", 7),
    ("spectral_flatness", 1),
    ("zcr", 1),
    ("rms", 1),
    ("chroma", 12),
)
_REFERENCE003_STATS = ("mean", "std", "min", "max")
#: Length of the reference-003 vector: 85 frame features x 4 statistics = 340.
REFERENCE003_DIM: int = sum(n for _, n in REFERENCE003_ROWS) * len(_REFERENCE003_STATS)


def reference000_mfcc_sequence(
    wave: np.ndarray,
    sr: int,
    *,
    n_mfcc: int = 60,
    duration: float = 3.0,
    hop_length: int = 512,
) -> np.ndarray:
    """Reference project 000: a fixed-length MFCC sequence for a CNN/LSTM.

    The wave is forced to exactly ``duration`` seconds (``round(duration * sr)`` samples):
    the first ``duration`` seconds are kept and shorter waves are zero-padded at the end
    (``librosa.util.fix_length``, like loading with ``duration=3``). Then ``n_mfcc`` MFCCs
    with librosa defaults (n_fft 2048, 128 mels) and the given hop.

    Args:
        wave: mono waveform ``(n_samples,)``.
        sr: sampling rate in Hz.
        n_mfcc: number of cepstral coefficients.
        duration: clip length in seconds.
        hop_length: hop between frames in samples.

    Returns:
        float32 array ``(T, n_mfcc)``, time-major, ``T = 1 + round(duration*sr) // hop_length``
        whatever the input length (94 x 60 at 16 kHz with the defaults).
    """
    import librosa

    n_samples = int(round(duration * sr))
    y = librosa.util.fix_length(spectral.as_mono(wave), size=n_samples)
    m = spectral.mfcc(y, sr, n_mfcc=n_mfcc, n_mels=_N_MELS, n_fft=_N_FFT, hop_length=hop_length)
    return np.ascontiguousarray(m.T)


def reference001_vector(wave: np.ndarray, sr: int) -> np.ndarray:
    """Reference project 001: the 162-dim "mean of everything" vector.

    Time means (librosa defaults: n_fft 2048, hop 512) concatenated in this order:

    ======  ====  ==========================================================
    slice   dim   feature
    ======  ====  ==========================================================
    0       1     zero-crossing rate (crossings / sample)
    1:13    12    ``chroma_stft(S=|STFT|)`` (C..B)
    13:33   20    MFCC c0..c19 (128 mels)
    33      1     RMS (linear)
    34:162  128   mel spectrogram, **power** (not dB), 128 bands
    ======  ====  ==========================================================

    Faithful to the reference project, the chroma is computed from the STFT *magnitude* passed where
    librosa expects power (a quirk of the original code, kept so results are comparable).

    Returns:
        float32 array ``(162,)``.
    """
    import librosa

    y = as_mono_padded(wave, _N_FFT)
    zc = spectral.zcr(y, sr, frame_length=_N_FFT, hop_length=_HOP)
    mag = np.abs(librosa.stft(y, n_fft=_N_FFT, hop_length=_HOP))
    tuning = None if np.any(mag) else 0.0
    chrom = librosa.feature.chroma_stft(S=mag, sr=sr, tuning=tuning)
    mf = spectral.mfcc(y, sr, n_mfcc=20, n_mels=_N_MELS, n_fft=_N_FFT, hop_length=_HOP)
    energy = spectral.rms(y, sr, frame_length=_N_FFT, hop_length=_HOP)
    mel = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=_N_FFT, hop_length=_HOP)
    out = np.concatenate([f.mean(axis=1) for f in (zc, chrom, mf, energy, mel)])
    return finite_float32(out, "seed001")


def reference002_summary(wave: np.ndarray, sr: int) -> np.ndarray:
    """Reference project 002: a 45-dim utterance summary (librosa defaults: n_fft 2048, hop 512).

    ======  ====  ===============================================
    slice   dim   feature
    ======  ====  ===============================================
    0:13    13    MFCC c0..c12, mean over time
    13:26   13    MFCC c0..c12, standard deviation over time
    26:38   12    chroma_stft (C..B), mean
    38      1     spectral centroid mean (Hz)
    39      1     spectral centroid std (Hz)
    40      1     spectral bandwidth mean (Hz)
    41      1     spectral rolloff (85 %) mean (Hz)
    42      1     zero-crossing rate mean (crossings / sample)
    43      1     RMS mean (linear)
    44      1     RMS std (linear)
    ======  ====  ===============================================

    Returns:
        float32 array ``(45,)``.
    """
    y = as_mono_padded(wave, _N_FFT)
    kw = {"n_fft": _N_FFT, "hop_length": _HOP}
    mf = spectral.mfcc(y, sr, n_mfcc=13, n_mels=_N_MELS, **kw)
    chrom = spectral.chroma(y, sr, **kw)
    cent = spectral.spectral_centroid(y, sr, **kw)
    bw = spectral.spectral_bandwidth(y, sr, **kw)
    roll = spectral.spectral_rolloff(y, sr, **kw)
    zc = spectral.zcr(y, sr, frame_length=_N_FFT, hop_length=_HOP)
    energy = spectral.rms(y, sr, frame_length=_N_FFT, hop_length=_HOP)
    out = np.concatenate(
        [
            mf.mean(axis=1),
            mf.std(axis=1),
            chrom.mean(axis=1),
            [cent.mean(), cent.std(), bw.mean(), roll.mean(), zc.mean()],
            [energy.mean(), energy.std()],
        ]
    )
    return finite_float32(out, "seed002")


def reference003_frame_stats(wave: np.ndarray, sr: int) -> np.ndarray:
    """Reference project 003: mean/std/min/max of 85 frame-level features -> 340 dims.

    Frame matrix rows (librosa defaults: n_fft 2048, hop 512), see :data:`REFERENCE003_ROWS`:
    MFCC c0..c19 (0:20), Δ (20:40), ΔΔ (40:60), spectral centroid (60), bandwidth (61),
    rolloff (62), contrast 7 bands (63:70), flatness (70), ZCR (71), RMS (72),
    chroma C..B (73:85). The 85 x T matrix is pooled with
    :func:`~emovox.features.pooling.frame_stats` using ``("mean", "std", "min", "max")``,
    statistic-major: ``out[k * 85 + row]``.

    Spectral contrast uses octave bands from 200 Hz, which needs ``sr >= 12.8 kHz``.

    Returns:
        float32 array ``(340,)`` (:data:`REFERENCE003_DIM`).
    """
    y = as_mono_padded(wave, _N_FFT)
    kw = {"n_fft": _N_FFT, "hop_length": _HOP}
    frames = np.concatenate(
        [
            spectral.mfcc(y, sr, n_mfcc=20, n_mels=_N_MELS, deltas=2, **kw),
            spectral.spectral_centroid(y, sr, **kw),
            spectral.spectral_bandwidth(y, sr, **kw),
            spectral.spectral_rolloff(y, sr, **kw),
            spectral.spectral_contrast(y, sr, **kw),
            spectral.spectral_flatness(y, sr, **kw),
            spectral.zcr(y, sr, frame_length=_N_FFT, hop_length=_HOP),
            spectral.rms(y, sr, frame_length=_N_FFT, hop_length=_HOP),
            spectral.chroma(y, sr, **kw),
        ],
        axis=0,
    )
    return pooling.frame_stats(frames, _REFERENCE003_STATS)


def reference004_mfcc_frames(
    wave: np.ndarray, sr: int, *, n_mfcc: int = 40, n_frames: int = 200
) -> np.ndarray:
    """Reference project 004: a fixed ``(n_frames, n_mfcc)`` MFCC image.

    40 MFCCs from 64 mel bands with a 40 ms window (``win_length = int(0.04 sr)``, FFT size
    the next power of two: 1024 at 16 kHz) and a 20 ms hop (``hop_length = int(0.02 sr)``,
    320 at 16 kHz), so 200 frames cover about 4 s. The frame axis is then zero-padded at the
    end or centre-cropped to ``n_frames`` (:func:`~emovox.features.pooling.fix_length_frames`).

    Args:
        wave: mono waveform ``(n_samples,)``.
        sr: sampling rate in Hz.
        n_mfcc: number of cepstral coefficients.
        n_frames: number of output frames.

    Returns:
        float32 array ``(n_frames, n_mfcc)``, time-major.
    """
    hop = max(1, int(0.02 * sr))
    win = max(1, int(0.04 * sr))
    n_fft = 1 << (win - 1).bit_length()
    m = spectral.mfcc(
        wave, sr, n_mfcc=n_mfcc, n_mels=64, n_fft=n_fft, hop_length=hop, win_length=win
    )
    return np.ascontiguousarray(pooling.fix_length_frames(m, n_frames).T)
