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
   subtracted and its standard deviation divided out (``cmvn``), or only the mean subtracted
   (``cmn``), or one mean over all bands and frames is subtracted (``gain``), so a constant
   gain (a quiet or loud recording, a microphone's level) cancels by construction; several
   modes (``cmvn+gain``) give each in turn side by side, ``(T, K n_mels)``, the input of an
   ensemble whose members were trained on different normalisations of this log-mel.

Only :meth:`LogMelFrontEnd.from_params` imports librosa (to build the two arrays); calling
the front end needs NumPy only.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emovox.features.spectral import as_mono_padded
from emovox.features.uttnorm import (
    CMVN_MIN_STD_DB,
    UtteranceNorm,
    UttNormValue,
    utt_norm_modes,
    utt_norm_value,
    utterance_normalise,
)

__all__ = ["AMIN", "CMVN_MIN_STD_DB", "LogMelFrontEnd", "UtteranceNorm", "utterance_normalise"]

#: power floor before the log (librosa ``power_to_db`` ``amin``): -100 dB
AMIN: float = 1e-10

#: the scalar parameters stored in model.json (arrays go to safetensors)
_PARAMS = ("sr", "n_fft", "win_length", "hop_length", "n_mels", "fmin", "fmax", "top_db")
#: bounds of a front end's settings (a model.json is read before anything is built: an n_fft
#: of 2^20 asked numpy for 32 GiB, a hop of 1 sample made 5787 windows of a 10 s clip, a
#: top_db of -80 constant features: code review, stop 47)
LIMITS = {"sr": (1000, 192_000), "n_fft": (16, 16_384), "n_mels": (1, 512)}


def check_params(sr: Any, n_fft: Any, win_length: Any, hop_length: Any, n_mels: Any,
                 top_db: Any) -> None:
    """ValueError naming the first setting out of its bounds: whole numbers within
    :data:`LIMITS`, ``hop_length <= win_length <= n_fft``, a hop of at least 1 ms and a
    ``top_db`` that is None or positive."""
    for name, v in (("sr", sr), ("n_fft", n_fft), ("n_mels", n_mels)):
        lo, hi = LIMITS[name]
        if not (isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi):
            raise ValueError(f"{name} must be a whole number from {lo} to {hi}, got {v!r}")
    for name, v in (("win_length", win_length), ("hop_length", hop_length)):
        if not (isinstance(v, int) and not isinstance(v, bool) and 0 < v <= n_fft):
            raise ValueError(f"{name} must be a whole number from 1 to n_fft ({n_fft}), got "
                             f"{v!r}")
    if hop_length > win_length or hop_length * 1000 < sr:
        raise ValueError(f"hop_length must be from 1 ms ({-(-sr // 1000)} samples) to "
                         f"win_length ({win_length}), got {hop_length}")
    if top_db is not None and not (isinstance(top_db, int | float) and 0 < top_db < 1e6):
        raise ValueError(f"top_db must be None or a positive number, got {top_db!r}")


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
        utt_norm: per-utterance normalisation applied last (:class:`UtteranceNorm`), or a
            tuple of them (each in turn, side by side: ``(T, len(utt_norm) * n_mels)``).
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
    utt_norm: UtteranceNorm | tuple[UtteranceNorm, ...] = UtteranceNorm.NONE

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
        object.__setattr__(self, "utt_norm", _one_or_several(self.utt_norm))
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
        utt_norm: UttNormValue = UtteranceNorm.NONE,
    ) -> LogMelFrontEnd:
        """Build the filterbank and window with librosa (the only librosa use here).

        Defaults and argument names are those of :func:`emovox.features.spectral.log_mel`,
        so ``LogMelFrontEnd.from_params(sr, **logmel_params)`` matches that feature.
        """
        import librosa

        win = int(n_fft) if win_length is None else min(int(win_length), int(n_fft))
        check_params(sr, n_fft, win, hop_length, n_mels, top_db)  # before any allocation
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
            utt_norm=_one_or_several(utt_norm),
        )

    @property
    def width(self) -> int:
        """Columns of the output: ``n_mels`` per normalisation mode."""
        return self.n_mels * len(utt_norm_modes(self.utt_norm))

    # -- (de)serialisation --------------------------------------------------------------
    def params(self) -> dict[str, Any]:
        """The JSON part (for ``model.json["frontend"]``; ``utt_norm`` only when set, so
        artifacts written before it existed read back unchanged)."""
        extra = ({} if self.utt_norm is UtteranceNorm.NONE
                 else {"utt_norm": utt_norm_value(self.utt_norm)})
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
        unknown = sorted(set(params) - {*_PARAMS, "type", "utt_norm", "amin"})
        if unknown:  # a misspelt hop_lenght was read as no setting (code review, stop 47)
            raise ValueError(f"unknown setting {unknown[0]!r}")
        check_params(*(params[k] for k in ("sr", "n_fft", "win_length", "hop_length",
                                           "n_mels", "top_db")))
        return cls(
            **{k: params[k] for k in _PARAMS},
            mel_basis=arrays[f"{prefix}mel_basis"], window=arrays[f"{prefix}window"],
            utt_norm=_one_or_several(params.get("utt_norm", UtteranceNorm.NONE.value)),
        )

    # -- the computation ----------------------------------------------------------------
    def n_frames(self, n_samples: int) -> int:
        """Number of frames for a wave of ``n_samples`` samples."""
        n = max(int(n_samples), self.n_fft)
        return 1 + (n + 2 * (self.n_fft // 2) - self.n_fft) // self.hop_length

    def power_mel(self, wave: np.ndarray) -> np.ndarray:
        """Mel power spectrogram ``(T, n_mels)`` float32 (before the dB conversion)."""
        x = as_mono_padded(wave, self.n_fft)
        total = self.n_frames(x.shape[0])
        out = [self._block_power(x, i, min(i + _FRAMES_PER_BLOCK, total))
               for i in range(0, total, _FRAMES_PER_BLOCK)]
        return out[0] if len(out) == 1 else np.concatenate(out)

    def __call__(self, wave: np.ndarray, frames: tuple[int, int] | None = None) -> np.ndarray:
        """Log-mel dB ``(T, n_mels)`` float32 of a mono ``wave`` at :attr:`sr` Hz.

        ``frames=(start, stop)`` computes only those frames, with the same numbers as
        ``self(wave)[start:stop]`` (the ``top_db`` floor still follows the maximum over the
        whole wave, found block by block): memory is bounded by the block, not the wave.
        With ``utt_norm`` the normalisation statistics are those of the whole utterance (as
        in training), gathered block by block in a second pass (equal to ``self(wave)[start:
        stop]`` within float rounding, ~1e-6).
        """
        x = as_mono_padded(wave, self.n_fft)
        total = self.n_frames(x.shape[0])
        lo, hi = (0, total) if frames is None else frames
        if not 0 <= lo < hi <= total:
            raise ValueError(f"frames must lie within [0, {total}], got {frames}")
        if frames is not None and self.utt_norm is not UtteranceNorm.NONE:
            return self._normalised_frames(x, total, lo, hi)
        kept: list[np.ndarray] = []
        peak = -np.inf
        # blocks on the same grid as power_mel, so every number is computed identically
        for i in range(0, total, _FRAMES_PER_BLOCK):
            j = min(i + _FRAMES_PER_BLOCK, total)
            wanted = i < hi and j > lo
            if not wanted and self.top_db is None:
                continue
            db = 10.0 * np.log10(np.maximum(np.float32(AMIN), self._block_power(x, i, j)))
            peak = max(peak, db.max())
            if wanted:
                kept.append(db[max(lo, i) - i : min(hi, j) - i])
        db = kept[0] if len(kept) == 1 else np.concatenate(kept)
        if self.top_db is not None:
            db = np.maximum(db, np.float32(peak) - np.float32(self.top_db))
        if self.utt_norm is not UtteranceNorm.NONE:
            db = utterance_normalise(db, self.utt_norm)
        return np.ascontiguousarray(db, dtype=np.float32)

    def _normalised_frames(self, x: np.ndarray, total: int, lo: int, hi: int) -> np.ndarray:
        """Frames ``lo..hi-1`` normalised with the statistics of all ``total`` frames: pass 1
        finds the peak (for the ``top_db`` floor), pass 2 sums each band (float64) and keeps
        the wanted frames; memory is bounded by the block, not the utterance."""
        blocks = [(i, min(i + _FRAMES_PER_BLOCK, total))
                  for i in range(0, total, _FRAMES_PER_BLOCK)]

        def computed_db(i: int, j: int) -> np.ndarray:
            return 10.0 * np.log10(np.maximum(np.float32(AMIN), self._block_power(x, i, j)))

        single = computed_db(*blocks[0]) if len(blocks) == 1 else None

        def block_db(i: int, j: int) -> np.ndarray:  # one block: one spectrogram, both passes
            return single if single is not None else computed_db(i, j)

        floor = None
        if self.top_db is not None:
            peak = max(float(block_db(i, j).max()) for i, j in blocks)
            floor = np.float32(peak) - np.float32(self.top_db)
        s1, s2 = np.zeros(self.n_mels), np.zeros(self.n_mels)
        kept: list[np.ndarray] = []
        for i, j in blocks:
            db = block_db(i, j)
            if floor is not None:
                db = np.maximum(db, floor)
            d = db.astype(np.float64)
            s1 += d.sum(axis=0)
            s2 += np.einsum("tm,tm->m", d, d)
            if i < hi and j > lo:
                kept.append(db[max(lo, i) - i : min(hi, j) - i])
        out = kept[0] if len(kept) == 1 else np.concatenate(kept)
        parts = [_normalised(out, mode, s1, s2, total)
                 for mode in utt_norm_modes(self.utt_norm)]
        return np.ascontiguousarray(parts[0] if len(parts) == 1 else np.concatenate(parts, 1))

    def _block_power(self, x: np.ndarray, start: int, stop: int) -> np.ndarray:
        """Mel power ``(stop - start, n_mels)`` of frames ``start..stop-1`` of ``x`` (``x``
        zero-padded by ``n_fft // 2`` on both sides, as librosa's ``center=True``), reading
        only the samples those frames cover."""
        half, hop = self.n_fft // 2, self.hop_length
        lo, hi = start * hop - half, (stop - 1) * hop + self.n_fft - half  # sample range
        seg = np.zeros(hi - lo, np.float32)
        a, b = max(lo, 0), min(hi, x.shape[0])
        if b > a:
            seg[a - lo : b - lo] = x[a:b]
        frames = np.lib.stride_tricks.sliding_window_view(seg, self.n_fft)[::hop]
        spec = np.fft.rfft(frames * self.window, axis=-1).astype(np.complex64, copy=False)
        power = np.abs(spec) ** 2  # (t, n_bins) float32
        return _one_thread_matmul(power, self._mel_t)  # type: ignore[attr-defined]


def _one_or_several(value: UttNormValue) -> UtteranceNorm | tuple[UtteranceNorm, ...]:
    """One mode as itself, several as a tuple (the field's two forms)."""
    modes = utt_norm_modes(value)
    return modes[0] if len(modes) == 1 else modes


def _normalised(db: np.ndarray, mode: UtteranceNorm, s1: np.ndarray, s2: np.ndarray,
                total: int) -> np.ndarray:
    """``db`` ``(t, n_mels)`` normalised by ``mode`` with the utterance's per-band sums
    ``s1`` (of dB) and ``s2`` (of dB squared) over its ``total`` frames (float64)."""
    if mode is UtteranceNorm.NONE:
        return np.asarray(db, np.float32)
    d = db.astype(np.float64)
    if mode is UtteranceNorm.GAIN:  # one mean over every band and frame
        return (d - s1.sum() / (total * db.shape[1])).astype(np.float32)
    mu = s1 / total
    if mode is UtteranceNorm.CMN:  # each band's mean, no scaling
        return (d - mu).astype(np.float32)
    sd = np.maximum(np.sqrt(np.maximum(s2 / total - mu * mu, 0.0)), CMVN_MIN_STD_DB)
    return ((d - mu) / sd).astype(np.float32)


_BLAS: dict[str, Any] = {}
_BLAS_LOCK = threading.Lock()


def _one_thread_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` on one BLAS thread. The mel projection is small (a few hundred frames x 257
    x 64): OpenBLAS splits it over every core anyway, and on a busy 2-core machine waiting
    for the second thread took 50-60 ms instead of 1 ms (measured). The thread count is
    restored afterwards; the lock keeps concurrent callers from restoring each other's
    setting. Without threadpoolctl, a plain ``a @ b``."""
    if "blas" not in _BLAS:
        try:
            from threadpoolctl import ThreadpoolController

            libs = ThreadpoolController().select(user_api="blas").lib_controllers
        except Exception:  # noqa: BLE001 - no threadpoolctl, or it cannot read the libraries
            libs = []
        _BLAS["blas"] = [c for c in libs if c.num_threads > 1]
    libs = _BLAS["blas"]
    if not libs:
        return a @ b
    with _BLAS_LOCK:
        before = [c.get_num_threads() for c in libs]
        for c in libs:
            c.set_num_threads(1)
        try:
            return a @ b
        finally:
            for c, n in zip(libs, before, strict=True):
                c.set_num_threads(n)
