"""The log-mel front end in pure NumPy, for inference without librosa.

:class:`LogMelFrontEnd` reproduces ``emovox.features.extract("logmel", wave, sr)`` (librosa's
``melspectrogram`` + ``power_to_db`` as wrapped by :func:`emovox.features.spectral.log_mel`)
to within ~1e-4 dB, from two arrays computed once with librosa and stored in the model
artifact:

* ``mel_basis``: the Slaney-scale, Slaney-normalised mel filterbank, ``(n_mels, 1 + n_fft // 2)``
  float32 (``librosa.filters.mel``);
* ``window``: the periodic Hann window of ``win_length`` samples, zero-padded (centred) to
  ``n_fft`` samples, float64 (``librosa.filters.get_window`` + ``librosa.util.pad_center``).

The computation follows librosa step by step (``center=True, pad_mode="constant"``):

1. ``wave`` as float32 mono; shorter than ``n_fft`` -> zero-padded at the end to ``n_fft``
   (what ``spectral.log_mel`` does before calling librosa);
2. ``n_fft // 2`` zeros on both sides; frames of ``n_fft`` samples every ``hop_length``
   samples, ``T = 1 + n // hop_length`` frames;
3. frame x window (float64), ``rfft``, rounded to complex64, ``|X|^2`` (float32);
4. mel projection ``S @ mel_basis.T`` -> ``(T, n_mels)`` power;
5. ``10 log10(max(amin, S))`` with ``amin = 1e-10`` (``ref = 1.0``: dB re full scale), then
   values more than ``top_db`` below the utterance maximum are raised to that floor;
6. optionally (``utt_norm``, :func:`utterance_normalise`) each band's mean over time is
   subtracted and its standard deviation divided out, so a constant gain (a quiet or loud
   recording, a microphone's level) cancels by construction.

Only :meth:`LogMelFrontEnd.from_params` imports librosa (to build the two arrays); calling
the front end needs NumPy only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np

from emovox.errors import InvalidSamples

__all__ = ["AMIN", "CMVN_MIN_STD_DB", "LogMelFrontEnd", "UtteranceNorm", "utterance_normalise"]

#: power floor before the log (librosa ``power_to_db`` ``amin``): -100 dB
AMIN: float = 1e-10

#: the scalar parameters stored in model.json (arrays go to safetensors)
_PARAMS = ("sr", "n_fft", "win_length", "hop_length", "n_mels", "fmin", "fmax", "top_db")
#: floor of the per-band standard deviation in :func:`utterance_normalise`, dB (a band that
#: barely moves, e.g. one pinned at the ``top_db`` floor, is not blown up to unit variance)
CMVN_MIN_STD_DB: float = 1.0


class UtteranceNorm(str, Enum):
    """Per-utterance normalisation of a log-mel (the ``utt_norm`` feature parameter)."""

    NONE = "none"  #: dB re full scale, as computed (loudness is part of the input)
    CMVN = "cmvn"  #: per band: minus the mean over time, divided by the std over time


def utterance_normalise(db: np.ndarray, mode: UtteranceNorm | str) -> np.ndarray:
    """Per-utterance normalisation of a time-major log-mel.

    Args:
        db: ``(T, n_mels)`` log-mel in dB.
        mode: :class:`UtteranceNorm` (or its value).

    Returns:
        float32 ``(T, n_mels)``: unchanged for ``NONE``; for ``CMVN`` each band has zero mean
        over time and unit standard deviation (std floored at :data:`CMVN_MIN_STD_DB`). A gain
        ``g`` adds ``20 log10 g`` dB to every bin, which the mean removes exactly (except where
        the -100 dB power floor binds, i.e. digital silence).
    """
    mode = UtteranceNorm(mode)
    if mode is UtteranceNorm.NONE:
        return np.asarray(db, np.float32)
    x = np.asarray(db, np.float64)
    mu = x.mean(axis=0, keepdims=True)
    sd = np.maximum(x.std(axis=0, keepdims=True), CMVN_MIN_STD_DB)
    return ((x - mu) / sd).astype(np.float32)


# Frames per STFT block in power_mel (a few tens of MB of FFT scratch at most; clips up to
# 40 s at a 10 ms hop are one block, i.e. computed exactly as before).
_FRAMES_PER_BLOCK = 4096


@dataclass(frozen=True, eq=False)
class LogMelFrontEnd:
    """Waveform -> time-major log-mel ``(T, n_mels)`` float32 dB, NumPy only.

    Attributes:
        sr: sample rate the filterbank was built for, in Hz.
        n_fft: FFT size in samples.
        win_length: Hann window length in samples (``<= n_fft``).
        hop_length: hop between frames in samples.
        n_mels: number of mel bands.
        fmin: lowest band edge in Hz.
        fmax: highest band edge in Hz (``None`` = ``sr / 2``).
        top_db: dynamic range kept below the maximum, dB (``None`` = no clipping).
        utt_norm: per-utterance normalisation applied last (:class:`UtteranceNorm`).
        mel_basis: ``(n_mels, 1 + n_fft // 2)`` float32 filterbank.
        window: ``(n_fft,)`` float64 analysis window.
    """

    sr: int
    n_fft: int
    win_length: int
    hop_length: int
    n_mels: int
    fmin: float
    fmax: float | None
    top_db: float | None
    mel_basis: np.ndarray = field(repr=False)
    window: np.ndarray = field(repr=False)
    utt_norm: UtteranceNorm = UtteranceNorm.NONE

    def __post_init__(self) -> None:
        n_bins = 1 + self.n_fft // 2
        mb = np.ascontiguousarray(self.mel_basis, dtype=np.float32)
        win = np.ascontiguousarray(self.window, dtype=np.float64)
        if mb.shape != (self.n_mels, n_bins):
            raise ValueError(f"mel_basis must be ({self.n_mels}, {n_bins}), got {mb.shape}")
        if win.shape != (self.n_fft,):
            raise ValueError(f"window must be ({self.n_fft},), got {win.shape}")
        if self.hop_length <= 0:
            raise ValueError(f"hop_length must be positive, got {self.hop_length}")
        object.__setattr__(self, "utt_norm", UtteranceNorm(self.utt_norm))
        object.__setattr__(self, "mel_basis", mb)
        object.__setattr__(self, "window", win)
        object.__setattr__(self, "_mel_t", np.ascontiguousarray(mb.T))  # (n_bins, n_mels)

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_params(
        cls,
        sr: int = 16000,
        *,
        n_mels: int = 64,
        n_fft: int = 512,
        win_length: int | None = 400,
        hop_length: int = 160,
        fmin: float = 20.0,
        fmax: float | None = None,
        top_db: float | None = 80.0,
        utt_norm: UtteranceNorm | str = UtteranceNorm.NONE,
    ) -> LogMelFrontEnd:
        """Build the filterbank and window with librosa (the only librosa use here).

        Defaults and argument names are those of :func:`emovox.features.spectral.log_mel`,
        so ``LogMelFrontEnd.from_params(sr, **logmel_params)`` matches that feature.
        """
        import librosa

        win = int(n_fft) if win_length is None else min(int(win_length), int(n_fft))
        mel_basis = librosa.filters.mel(
            sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, dtype=np.float32
        )
        window = librosa.util.pad_center(
            librosa.filters.get_window("hann", win, fftbins=True), size=n_fft
        )
        return cls(
            sr=int(sr), n_fft=int(n_fft), win_length=win, hop_length=int(hop_length),
            n_mels=int(n_mels), fmin=float(fmin), fmax=None if fmax is None else float(fmax),
            top_db=None if top_db is None else float(top_db),
            mel_basis=np.asarray(mel_basis, np.float32), window=np.asarray(window, np.float64),
            utt_norm=UtteranceNorm(utt_norm),
        )

    # -- (de)serialisation --------------------------------------------------------------
    def params(self) -> dict[str, Any]:
        """The JSON part (for ``model.json["frontend"]``; ``utt_norm`` only when set, so
        artifacts written before it existed read back unchanged)."""
        extra = {} if self.utt_norm is UtteranceNorm.NONE else {"utt_norm": self.utt_norm.value}
        return {"type": "logmel", **{k: getattr(self, k) for k in _PARAMS}, "amin": AMIN,
                **extra}

    def arrays(self, prefix: str = "frontend.") -> dict[str, np.ndarray]:
        """The array part (for the artifact's safetensors)."""
        return {f"{prefix}mel_basis": self.mel_basis, f"{prefix}window": self.window}

    @classmethod
    def from_saved(
        cls, params: dict[str, Any], arrays: dict[str, np.ndarray], prefix: str = "frontend."
    ) -> LogMelFrontEnd:
        """Inverse of :meth:`params` + :meth:`arrays`."""
        if params.get("type", "logmel") != "logmel":
            raise ValueError(f"not a log-mel front end: {params.get('type')!r}")
        return cls(
            **{k: params[k] for k in _PARAMS},
            mel_basis=arrays[f"{prefix}mel_basis"], window=arrays[f"{prefix}window"],
            utt_norm=UtteranceNorm(params.get("utt_norm", UtteranceNorm.NONE.value)),
        )

    # -- the computation ----------------------------------------------------------------
    def n_frames(self, n_samples: int) -> int:
        """Number of frames for a wave of ``n_samples`` samples."""
        n = max(int(n_samples), self.n_fft)
        return 1 + (n + 2 * (self.n_fft // 2) - self.n_fft) // self.hop_length

    def power_mel(self, wave: np.ndarray) -> np.ndarray:
        """Mel power spectrogram ``(T, n_mels)`` float32 (before the dB conversion)."""
        x = np.asarray(wave, dtype=np.float32)
        if x.ndim == 2 and 1 in x.shape:
            x = x.reshape(-1)
        if x.ndim != 1:
            raise ValueError(f"expected a mono waveform of shape (n_samples,), got {x.shape}")
        if not np.all(np.isfinite(x)):
            bad = int(np.count_nonzero(~np.isfinite(x)))
            raise InvalidSamples(f"waveform contains {bad} non-finite (NaN/inf) samples")
        if x.shape[0] < self.n_fft:
            x = np.pad(x, (0, self.n_fft - x.shape[0]))
        half = self.n_fft // 2
        padded = np.pad(x, (half, half))
        frames = np.lib.stride_tricks.sliding_window_view(padded, self.n_fft)[:: self.hop_length]
        out = []  # blocks of frames: scratch memory bounded by the block, not the clip length
        for i in range(0, frames.shape[0], _FRAMES_PER_BLOCK):
            block = frames[i : i + _FRAMES_PER_BLOCK]
            spec = np.fft.rfft(block * self.window, axis=-1).astype(np.complex64)  # (t, n_bins)
            power = np.abs(spec) ** 2  # float32
            out.append(power @ self._mel_t)  # type: ignore[attr-defined]  # (t, n_mels)
        return out[0] if len(out) == 1 else np.concatenate(out)

    def __call__(self, wave: np.ndarray) -> np.ndarray:
        """Log-mel dB ``(T, n_mels)`` float32 of a mono ``wave`` at :attr:`sr` Hz."""
        db = 10.0 * np.log10(np.maximum(np.float32(AMIN), self.power_mel(wave)))
        if self.top_db is not None:
            db = np.maximum(db, db.max() - np.float32(self.top_db))
        if self.utt_norm is not UtteranceNorm.NONE:
            db = utterance_normalise(db, self.utt_norm)
        return np.ascontiguousarray(db, dtype=np.float32)


def pad_or_crop(seq: np.ndarray, n_frames: int) -> np.ndarray:
    """(T, D) -> (n_frames, D): centre crop, or zero-pad at the end. Training and
    inference share this one definition."""
    t = seq.shape[0]
    if t >= n_frames:
        start = (t - n_frames) // 2
        return seq[start : start + n_frames]
    return np.pad(seq, ((0, n_frames - t), (0, 0)))
