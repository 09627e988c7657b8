"""The one :class:`Preprocess`: how a waveform becomes the network's input, for training and
for serving alike.

A :class:`Preprocess` holds every setting between the audio file and the model: the sample
rate, silence trimming (``trim`` and ``top_db``), loudness handling, the feature (name and
parameters, optionally its stored NumPy front end), the crop/pad policy (``n_frames``: centre
crop, zero-pad at the end) and the normaliser statistics fitted on the training inputs only.
It is saved in the model artifact (:mod:`emovox.artifact`) and used by the training-side
input building (:mod:`emovox.experiment`, :mod:`emovox.training.trainer`) and by the
:class:`~emovox.serving.predictor.Predictor`, so both build bit-identical network input.

Importing this module imports neither torch nor librosa (feature extraction imports
:mod:`emovox.features` lazily; a stored log-mel front end needs NumPy only).

May import: numpy, emovox.audio, emovox.errors, emovox.features and emovox.augment (lazily).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

import numpy as np

from emovox.audio import (
    MAX_SAMPLE_RATE,
    MIN_SAMPLE_RATE,
    TARGET_SR,
    is_silent,
    remove_dc,
    resample,
    silent_and_trimmed,
    to_mono,
    trim_bounds,
)
from emovox.audio.header import MAX_PROCESSED_SAMPLE
from emovox.errors import EmptyAudio, InvalidSamples

if TYPE_CHECKING:
    from emovox.features.frontend import LogMelFrontEnd

__all__ = [
    "MAX_FRAMES",
    "TRIM_TOP_DB",
    "Loudness",
    "Normaliser",
    "PreparedWave",
    "Preprocess",
    "checked_speeds",
    "pad_or_crop",
]

#: silence-trimming threshold (dB below the loudest frame): the one home of this default
TRIM_TOP_DB: float = 40.0
#: the feature read by models that do not say otherwise
DEFAULT_FEATURE: str = "logmel"
#: the longest network input a model may declare (frames): 1,000 s at a 10 ms hop. A bound
#: on what a model.json can make the process allocate, far above any real model (256).
MAX_FRAMES: int = 100_000


class Loudness(str, Enum):
    """Loudness handling before the features (only ``none`` exists so far)."""

    NONE = "none"  #: the waveform is used as decoded (full scale 1.0)


def pad_or_crop(seq: np.ndarray, n_frames: int) -> np.ndarray:
    """(T, D) -> (n_frames, D): centre crop, or zero-pad at the end. Training and
    inference share this one definition."""
    t = seq.shape[0]
    if t >= n_frames:
        start = (t - n_frames) // 2
        return seq[start : start + n_frames]
    return np.pad(seq, ((0, n_frames - t), (0, 0)))


@dataclass(frozen=True, eq=False)
class Normaliser:
    """Per-feature mean/std (and optional selected columns), fitted on training data only.

    Attributes:
        mean, std: ``(D,)`` statistics of the training inputs (``std`` floored: a constant
            column gets 1.0).
        keep: selected feature columns (vector inputs with ``select_k``), or ``None``.
    """

    mean: np.ndarray
    std: np.ndarray
    keep: np.ndarray | None = None

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray | None = None, *, select_k: int = 0) -> Normaliser:
        """Statistics of the training inputs ``x`` ``(N, D)`` or ``(N, T, D)``; with
        ``select_k`` (vectors only) the ``k`` best columns by ANOVA F on ``y`` are kept."""
        keep = None
        if x.ndim == 2 and 0 < select_k < x.shape[1]:
            from sklearn.feature_selection import SelectKBest, f_classif

            sel = SelectKBest(f_classif, k=select_k).fit(x, y)
            keep = np.flatnonzero(sel.get_support())
            x = x[:, keep]
        flat = x.reshape(-1, x.shape[-1])
        std = flat.std(axis=0)
        return cls(flat.mean(axis=0), np.where(std > 1e-8, std, 1.0), keep)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.keep is not None:
            x = x[..., self.keep]
        return np.ascontiguousarray((x - self.mean) / self.std, dtype=np.float32)

    def arrays(self, prefix: str = "norm.") -> dict[str, np.ndarray]:
        """The statistics as arrays for the artifact's safetensors."""
        out = {f"{prefix}mean": np.asarray(self.mean, np.float32),
               f"{prefix}std": np.asarray(self.std, np.float32)}
        if self.keep is not None:
            out[f"{prefix}keep"] = np.asarray(self.keep, np.int64)
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], prefix: str = "norm.") -> Normaliser:
        """Inverse of :meth:`arrays` (``KeyError`` when mean/std are missing)."""
        keep = arrays.get(f"{prefix}keep")
        return cls(np.asarray(arrays[f"{prefix}mean"], np.float32),
                   np.asarray(arrays[f"{prefix}std"], np.float32),
                   None if keep is None else np.asarray(keep, np.int64))


@dataclass(frozen=True)
class PreparedWave:
    """A waveform ready for the features, with what was known before trimming."""

    wave: np.ndarray
    duration: float  #: seconds at :attr:`Preprocess.sr`, before trimming
    silent: bool  #: loudest frame below -60 dBFS
    #: the wave before trimming (the same array when nothing was trimmed), at the same rate
    untrimmed: np.ndarray | None = None


@dataclass(frozen=True)
class Preprocess:
    """Waveform -> network input, the same at training and at serving time.

    Attributes:
        sr: sample rate the features read, Hz.
        trim: cut leading/trailing silence more than ``top_db`` below the loudest frame
            (faint input too: the cut is relative, so it does not depend on the level).
        top_db: the trimming threshold, dB.
        loudness: loudness handling before the features.
        feature: registered feature name (:mod:`emovox.features`); ``None`` when an old
            artifact did not record it.
        feature_params: overrides of the feature's default parameters.
        n_frames: sequences are centre-cropped / zero-padded at the end to this many frames
            (0 = unchanged).
        norm: normaliser statistics (``None`` = identity, e.g. scikit-learn pipelines that
            scale inside).
        frontend: stored NumPy log-mel front end (``feature == "logmel"`` only); without it
            the feature is computed by :func:`emovox.features.extract` (librosa).
        functional: a registered *vector* feature (e.g. ``"prosody"``) of the whole wave
            before trimming, appended to every frame of the sequence as further columns,
            ``(T, F + D)`` (:meth:`window_features`): how an ensemble feeds a linear member
            on utterance functionals through the one network input (``None``: nothing).
        band_floor_db: with a ``functional``, one more column after it: 1.0 when the wave's
            band ratio (:func:`emovox.features.bandwidth.band_ratio_db`, 4.5-7 kHz against
            0.3-3.4 kHz) reaches this floor, 0.0 below it (narrow band: a telephone line),
            read by an ensemble whose functional member has a narrow-band alternative
            (``None``: no such column).
        speeds: playback speeds at which each window is also read, its answers averaged
            (test-time augmentation, stop 45: :meth:`views`; ``()``: read once as recorded).
            Only for networks trained on speed-perturbed copies (the channel recipe's
            0.9-1.1): the README's "Test-time speed augmentation".
    """

    sr: int = TARGET_SR
    trim: bool = False
    top_db: float = TRIM_TOP_DB
    loudness: Loudness = Loudness.NONE
    feature: str | None = DEFAULT_FEATURE
    feature_params: dict[str, Any] = field(default_factory=dict)
    n_frames: int = 0
    norm: Normaliser | None = field(default=None, compare=False, repr=False)
    frontend: LogMelFrontEnd | None = field(default=None, compare=False, repr=False)
    #: the stored front end's parameters as read from model.json (arrays attached on read)
    frontend_params: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    functional: str | None = None
    band_floor_db: float | None = None
    speeds: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if not (isinstance(self.sr, int) and MIN_SAMPLE_RATE <= self.sr <= MAX_SAMPLE_RATE):
            raise ValueError(f"sr must be an integer from {MIN_SAMPLE_RATE} to "
                             f"{MAX_SAMPLE_RATE} Hz, got {self.sr!r}")
        if not (isinstance(self.top_db, (int, float)) and math.isfinite(self.top_db)
                and self.top_db > 0):
            raise ValueError(f"top_db must be a positive number, got {self.top_db!r}")
        if not (isinstance(self.n_frames, int) and 0 <= self.n_frames <= MAX_FRAMES):
            raise ValueError(f"n_frames must be an integer from 0 to {MAX_FRAMES}, got "
                             f"{self.n_frames!r}")
        if not isinstance(self.feature_params, dict):
            raise ValueError(f"feature_params must be a mapping, got {self.feature_params!r}")
        if self.functional is not None and not (isinstance(self.functional, str)
                                                and self.functional):
            raise ValueError(f"functional must be a feature name, got {self.functional!r}")
        if self.band_floor_db is not None:
            floor = self.band_floor_db
            if (self.functional is None or isinstance(floor, bool)
                    or not isinstance(floor, (int, float)) or not math.isfinite(floor)):
                raise ValueError(f"band_floor_db must be a finite number (dB) next to a "
                                 f"functional, got {floor!r}")
            object.__setattr__(self, "band_floor_db", float(floor))
        object.__setattr__(self, "speeds", checked_speeds(self.speeds))
        object.__setattr__(self, "loudness", Loudness(self.loudness))
        object.__setattr__(self, "top_db", float(self.top_db))
        object.__setattr__(self, "trim", bool(self.trim))

    # -- building ---------------------------------------------------------------------------
    def replace(self, **changes: Any) -> Preprocess:
        """A copy with ``changes`` (e.g. ``norm=Normaliser.fit(x)``)."""
        return dataclasses.replace(self, **changes)

    # -- the steps --------------------------------------------------------------------------
    def at_rate(self, wave: np.ndarray, sr: int) -> np.ndarray:
        """Mono, finite check, resampled to :attr:`sr`, constant offset removed:
        :meth:`prepare` without the silence check and the trim."""
        x = np.asarray(wave)
        if x.ndim == 2 and x.shape[0] < x.shape[1] and x.shape[0] <= 8:
            x = to_mono(x, channel_axis=0)  # (n_channels, n_samples)
        else:
            x = to_mono(x)
        if x.size == 0:
            raise EmptyAudio("the waveform has no samples")
        hi, lo = float(x.max()), float(x.min())  # NaN propagates; no whole-wave temporaries
        if not (math.isfinite(hi) and math.isfinite(lo)):
            bad = int(np.count_nonzero(~np.isfinite(x)))
            raise InvalidSamples(f"the waveform contains {bad} non-finite (NaN/inf) samples")
        if max(hi, -lo) > MAX_PROCESSED_SAMPLE:  # a decoded file stays within it (stop 51)
            raise InvalidSamples(f"the waveform has samples beyond +-{MAX_PROCESSED_SAMPLE:g} "
                                 "(full scale is 1.0)")
        if int(sr) != self.sr:  # the offset off first: resampling its edges rings (stop 47)
            x = resample(remove_dc(x), int(sr), self.sr)
        return remove_dc(x)  # as load_audio does: a constant offset is no sound

    def prepare(self, wave: np.ndarray, sr: int) -> PreparedWave:
        """Mono, finite check, resample to :attr:`sr`, trim."""
        x = self.at_rate(wave, sr)
        duration = len(x) / self.sr
        if not self.trim:
            return PreparedWave(x, duration, bool(is_silent(x)), x)
        silent, t = silent_and_trimmed(x, self.sr, top_db=self.top_db)  # one pass for both
        untrimmed = x
        if 0 < len(t) < len(x):  # faint input too: trimming is relative to its loudest frame
            x = np.ascontiguousarray(t)  # (a faint clip's answer flipped: QA, stop 39)
        return PreparedWave(x, duration, bool(silent), untrimmed)

    def heard_span(self, wave: np.ndarray) -> tuple[int, int]:
        """``(start, end)``: the samples of ``wave`` (mono, at :attr:`sr`, as
        :meth:`at_rate` gives it) that one window's network input is computed from: the part
        :meth:`prepare` keeps after trimming, narrowed to the centre crop of :attr:`n_frames`
        frames (:meth:`cropped_features`) when it is longer; with :attr:`speeds`, the widest
        of the views' spans; exact to the sample (the window's nonzero reach) for the
        frames read. The rest of the trimmed wave still reaches the input through what is
        computed over all of it: the front end's per-utterance normalisation (``utt_norm``,
        the bundled models' CMVN), its log-mel floor (``top_db``), the offset removal. The
        whole wave when a :attr:`functional` member reads it untrimmed; the trimmed wave
        when the crop is unknown (no stored front end). A clip of up to two model inputs is
        one window: this is what its answer read (web review, stop 52)."""
        n = len(wave)
        if self.functional is not None or n == 0:
            return 0, n
        a, b = 0, n
        if self.trim:
            s, e = trim_bounds(np.asarray(wave, np.float32), self.sr, self.top_db)
            if 0 < e - s < n:  # as prepare: trimming everything keeps the wave
                a, b = s, e
        fe = self.frontend
        if fe is None or not self.n_frames:
            return a, b
        lo, hi = b, a
        for f in self.speeds or (1.0,):
            m = max(1, int(round((b - a) / f)))  # the view's length (augment.speed)
            total = fe.n_frames(m)
            if total <= self.n_frames:  # padded, not cropped: all of it is heard
                return a, b
            first = (total - self.n_frames) // 2  # pad_or_crop's centre crop
            nz = np.flatnonzero(np.asarray(fe.window))  # the window's reach in a frame
            lead = fe.n_fft // 2 - int(nz[0])  # frame j starts j * hop - n_fft // 2
            s = max(0, first * fe.hop_length - lead)
            e = min(m, (first + self.n_frames - 1) * fe.hop_length - lead + int(nz[-1]) - int(
                nz[0]) + 1)
            lo, hi = min(lo, a + int(s * f)), max(hi, a + int(math.ceil(e * f)))
        return lo, min(hi, b)

    def views(self, prepared: PreparedWave) -> list[PreparedWave]:
        """The prepared wave as the network reads it: itself, or with :attr:`speeds` one
        copy per speed (``emovox.augment.speed``: tempo, pitch and formants scale together,
        length ``n / speed``; the untrimmed wave, which a functional member reads, likewise)."""
        if not self.speeds:
            return [prepared]
        from emovox.augment import speed

        def at(x: np.ndarray | None, f: float) -> np.ndarray | None:
            return None if x is None else speed(x, self.sr, f)

        return [prepared if f == 1.0 else dataclasses.replace(
            prepared, wave=at(prepared.wave, f), untrimmed=at(prepared.untrimmed, f))
            for f in self.speeds]

    def prepare_wave(self, wave: np.ndarray, sr: int) -> np.ndarray:
        """The waveform the features see (see :meth:`prepare`)."""
        return self.prepare(wave, sr).wave

    def features(self, wave: np.ndarray) -> np.ndarray:
        """Feature of a prepared waveform: ``(T, F)`` for sequences, ``(F,)`` for vectors
        (without the :attr:`functional` columns: :meth:`window_features` adds them)."""
        if self.frontend is not None:
            return self.frontend(wave)
        if self.feature is None:
            raise ValueError("this preprocessing does not say which feature the model reads")
        from emovox.features import extract

        return extract(self.feature, wave, self.sr, **self.feature_params)

    def window_features(self, prepared: PreparedWave) -> np.ndarray:
        """The model's input features of one prepared item: :meth:`cropped_features` of its
        (trimmed) wave, with the :attr:`functional` of the wave *before* trimming appended to
        every frame (``(T, F + D)``; a functional member is trained on untrimmed clips)."""
        seq = self.cropped_features(prepared.wave)
        whole = prepared.untrimmed if prepared.untrimmed is not None else prepared.wave
        return self.with_functional(seq, whole)

    def with_functional(self, seq: np.ndarray, wave: np.ndarray) -> np.ndarray:
        """``seq`` ``(T, F)`` with the :attr:`functional` vector of ``wave`` appended to every
        frame, ``(T, F + D)`` (``(T, F + D + 1)`` with the band column of
        :attr:`band_floor_db`); unchanged without one."""
        if self.functional is None:
            return seq
        from emovox.features import extract

        vec = np.asarray(extract(self.functional, wave, self.sr), np.float32)
        if vec.ndim != 1:
            raise ValueError(f"functional {self.functional!r} is not a vector feature "
                             f"(shape {vec.shape})")
        if self.band_floor_db is not None:
            from emovox.features.bandwidth import band_ratio_db

            full = band_ratio_db(wave, self.sr) >= self.band_floor_db
            vec = np.append(vec, np.float32(1.0 if full else 0.0))
        seq = np.asarray(seq, np.float32)
        return np.concatenate([seq, np.broadcast_to(vec, (seq.shape[0], vec.shape[0]))], axis=1)

    def with_logmel_frontend(self) -> Preprocess:
        """This preprocessing with its NumPy log-mel front end built (with librosa) from
        :attr:`feature_params` on top of the ``logmel`` feature's defaults.

        Raises:
            ValueError: the feature is not ``logmel``, or a parameter is not one of its keys.
        """
        from emovox.features import FEATURES
        from emovox.features.frontend import LogMelFrontEnd

        if self.feature != "logmel":
            raise ValueError(f"a log-mel front end needs feature 'logmel', not {self.feature!r}")
        defaults = dict(FEATURES["logmel"].params)
        bad = set(self.feature_params) - set(defaults)
        if bad:
            raise ValueError(f"unknown logmel parameter(s) {sorted(bad)}")
        return self.replace(frontend=LogMelFrontEnd.from_params(
            self.sr, **{**defaults, **self.feature_params}))

    def cropped_features(self, wave: np.ndarray) -> np.ndarray:
        """``fit_length(features(wave))`` without computing the frames the centre crop drops:
        with a stored front end and :attr:`n_frames`, only the kept frames are computed
        (same numbers), so a long input costs memory for the window, not the whole wave."""
        fe = self.frontend
        if fe is None or not self.n_frames:
            return self.fit_length(self.features(wave))
        total = fe.n_frames(len(wave))
        if total <= self.n_frames:
            return self.fit_length(self.features(wave))
        start = (total - self.n_frames) // 2  # the centre crop of pad_or_crop
        return np.asarray(fe(wave, frames=(start, start + self.n_frames)), np.float32)

    def fit_length(self, feats: np.ndarray) -> np.ndarray:
        """Crop/pad a ``(T, F)`` sequence to :attr:`n_frames` (vectors pass unchanged)."""
        if self.n_frames and np.ndim(feats) == 2:
            return pad_or_crop(np.asarray(feats, np.float32), self.n_frames)
        return np.asarray(feats, np.float32)

    def normalise(self, x: np.ndarray) -> np.ndarray:
        """Apply the normaliser (identity without one) to ``(..., F)`` float input."""
        if self.norm is None:
            return np.ascontiguousarray(x, dtype=np.float32)
        return self.norm(x)

    def network_input(self, feats: np.ndarray) -> np.ndarray:
        """Normalised network input ``(T', F')`` (or ``(F',)``) of one item's features."""
        return self.normalise(self.fit_length(feats))

    # -- (de)serialisation ------------------------------------------------------------------
    def to_params(self) -> dict[str, Any]:
        """The JSON part (arrays of the normaliser and front end are stored separately)."""
        return {
            "sr": self.sr, "trim": self.trim, "top_db": self.top_db,
            "loudness": self.loudness.value, "feature": self.feature,
            "feature_params": dict(self.feature_params), "n_frames": self.n_frames,
            "frontend": self.frontend.params() if self.frontend is not None
            else self.frontend_params,
            "normaliser": self.norm is not None,
            **({"functional": self.functional} if self.functional is not None else {}),
            **({"band_floor_db": self.band_floor_db} if self.band_floor_db is not None
               else {}),
            **({"speeds": list(self.speeds)} if self.speeds else {}),
        }

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Preprocess:
        """Scalars of :meth:`to_params` (arrays are attached by the artifact reader).
        Raises ``ValueError``/``TypeError`` naming the bad field."""
        known = {"sr", "trim", "top_db", "loudness", "feature", "feature_params", "n_frames",
                 "frontend", "normaliser", "functional", "band_floor_db", "speeds"}
        unknown = set(params) - known
        if unknown:
            raise ValueError(f"unknown field(s) {sorted(unknown)}")
        feature = params.get("feature", DEFAULT_FEATURE)
        if feature is not None:
            from emovox.features import FEATURES

            if not isinstance(feature, str) or feature not in FEATURES:
                raise ValueError(f"feature must name a registered feature, got {feature!r}")
        trim = params.get("trim", False)
        if not isinstance(trim, bool):
            raise ValueError(f"trim must be true or false, got {trim!r}")
        fe = params.get("frontend")
        if fe is not None and not isinstance(fe, dict):
            raise ValueError(f"frontend must be an object, got {fe!r}")
        functional = params.get("functional")
        if functional is not None:
            from emovox.features import FEATURES

            spec = FEATURES.get(functional) if isinstance(functional, str) else None
            if spec is None or spec.kind != "vector":
                raise ValueError(f"functional must name a registered vector feature, got "
                                 f"{functional!r}")
        return cls(
            frontend_params=fe, sr=params.get("sr", TARGET_SR), trim=trim,
            top_db=params.get("top_db", TRIM_TOP_DB),
            loudness=Loudness(params.get("loudness", Loudness.NONE.value)), feature=feature,
            feature_params=params.get("feature_params") or {},
            n_frames=params.get("n_frames", 0) or 0, functional=functional,
            band_floor_db=params.get("band_floor_db"), speeds=params.get("speeds", ()),
        )


#: the most speeds a model may read each window at, and their range
MAX_SPEEDS, SPEED_RANGE = 5, (0.5, 2.0)


def checked_speeds(speeds: Any) -> tuple[float, ...]:
    """``speeds`` as a tuple of distinct floats in :data:`SPEED_RANGE`, at most
    :data:`MAX_SPEEDS` of them; ValueError naming the field otherwise."""
    lo, hi = SPEED_RANGE
    ok = isinstance(speeds, (list, tuple)) and len(speeds) <= MAX_SPEEDS and all(
        isinstance(f, (int, float)) and not isinstance(f, bool) and math.isfinite(f)
        and lo <= f <= hi for f in speeds) and len(set(speeds)) == len(speeds)
    if not ok:
        raise ValueError(f"speeds must be up to {MAX_SPEEDS} distinct numbers from {lo:g} to "
                         f"{hi:g}, got {speeds!r}")
    return tuple(float(f) for f in speeds)
