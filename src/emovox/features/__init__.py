"""Acoustic features: pure ``(wave, sr, **params) -> np.ndarray`` functions and their registry.

Use :func:`extract` to compute a registered feature by name and :func:`feature_key` to get a
stable cache key for it::

    from emovox.features import extract, feature_key
    x = extract("mfcc", wave, 16000, deltas=2)      # (T, 60)
    key = feature_key("mfcc", deltas=2)             # JSON string

Registered features (16 kHz, ``n`` samples, default parameters):

==============  =======  ===================  ===================================================
name            kind     shape                what
==============  =======  ===================  ===================================================
logmel          sequence ``(T, 64)``          log-mel dB, 25 ms / 10 ms, ``T = 1 + n // 160``
mfcc            sequence ``(T, 20)``          MFCC (x3 columns with ``deltas=2``), 10 ms hop
mfcc_chroma     sequence ``(T, 72)``          20 MFCC + Δ + ΔΔ + 12 chroma per 10 ms frame
seed000         sequence ``(94, 60)``         60 MFCC of the clip forced to 3 s
seed001         vector   ``(162,)``           ZCR, chroma, MFCC, RMS, mel means
seed002         vector   ``(45,)``            MFCC/chroma/spectral/energy summary
seed003         vector   ``(340,)``           mean/std/min/max of 85 frame features
seed004         sequence ``(200, 40)``        40 MFCC, 20 ms hop, fixed 200 frames
egemaps         vector   ``(88,)``            openSMILE eGeMAPSv02 functionals (extra ``smile``)
compare         vector   ``(6373,)``          openSMILE ComParE_2016 functionals (extra ``smile``)
prosody         vector   ``(47,)``            eGeMAPS-like pitch/loudness/voice/spectral functionals
prosody_band    vector   ``(47,)``            the same over the telephone band, 300-3400 Hz
prosody_robust  vector   ``(41,)``            the 41 of them a telephone band moves least
prosody_vq      vector   ``(75,)``            prosody + jitter, shimmer, H1-H2, H1-A3, F1-F3
==============  =======  ===================  ===================================================

``seed000`` .. ``seed004`` are the feature sets of the five reference projects
(:mod:`emovox.features.reference`); the names are kept as they are part of cache keys.

Owns feature extraction (spectral, reference, smile, the NumPy log-mel front end
:mod:`~emovox.features.frontend`, the on-disk cache) and the per-speaker normalisation maths
(:mod:`~emovox.features.speaker_norm`), and the spectrograms the web app draws of a whole
recording (:mod:`~emovox.features.display`). May import audio, augment, errors, fileio
and the scientific stack; never preprocess, models or anything above (checked by
import-linter). librosa is imported inside the functions that call it, so importing this
package (or serving a model with a stored front end) does not load librosa.

Sequences are **time-major** ``(T, D)``; the frame-level functions in
:mod:`emovox.features.spectral` are feature-major ``(F, T)`` like librosa.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emovox.features import (
    mfcc_chroma,
    pooling,
    prosody,
    reference,
    smile,
    spectral,
    voice_quality,
)

__all__ = [
    "FEATURES",
    "FEATURE_VERSION",
    "FeatureSpec",
    "extract",
    "feature_key",
    "mfcc_chroma",
    "pooling",
    "prosody",
    "reference",
    "smile",
    "spectral",
    "voice_quality",
]

#: Bump whenever any registered feature's numbers change for the same name and params, so that
#: cached features computed by older code are never reused.
FEATURE_VERSION: int = 1


@dataclass(frozen=True)
class FeatureSpec:
    """A registered feature.

    Attributes:
        name: registry key.
        fn: ``fn(wave, sr, **params) -> np.ndarray`` (float32).
        params: default keyword parameters (JSON-serialisable); overrides must use these keys.
        kind: ``"vector"`` for ``(D,)`` or ``"sequence"`` for time-major ``(T, D)``.
        description: one line for humans.
        columns_of: ``(other, columns)`` when this vector is those columns of the registered
            vector feature ``other`` (with default parameters), e.g. ``prosody_robust``.
    """

    name: str
    fn: Callable[..., np.ndarray]
    params: dict[str, Any] = field(default_factory=dict)
    kind: str = "vector"
    description: str = ""
    columns_of: tuple[str, tuple[int, ...]] | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("vector", "sequence"):
            raise ValueError(f"kind must be 'vector' or 'sequence', got {self.kind!r}")


def _time_major(fn: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    """Wrap a feature-major ``(F, T)`` function so it returns time-major ``(T, F)``."""

    @functools.wraps(fn)
    def wrapper(wave: np.ndarray, sr: int, **params: Any) -> np.ndarray:
        return np.ascontiguousarray(fn(wave, sr, **params).T)

    return wrapper


def _defaults(fn: Callable[..., np.ndarray]) -> dict[str, Any]:
    """The keyword-only parameters of ``fn`` with their defaults (the registry's params)."""
    return {
        p.name: p.default
        for p in inspect.signature(fn).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


def _spec(name: str, fn: Callable[..., np.ndarray], kind: str, description: str,
          columns_of: tuple[str, tuple[int, ...]] | None = None) -> FeatureSpec:
    return FeatureSpec(name=name, fn=fn, params=_defaults(fn), kind=kind,
                       description=description, columns_of=columns_of)


FEATURES: dict[str, FeatureSpec] = {
    spec.name: spec
    for spec in (
        _spec(
            "logmel",
            _time_major(spectral.log_mel),
            "sequence",
            "log-mel spectrogram in dB, (T, n_mels)",
        ),
        _spec(
            "mfcc",
            _time_major(spectral.mfcc),
            "sequence",
            "MFCC (+ deltas), (T, n_mfcc * (1 + deltas))",
        ),
        _spec(
            "mfcc_chroma",
            mfcc_chroma.mfcc_chroma,
            "sequence",
            "MFCC + deltas + chroma per frame (optionally normalised per utterance), "
            "(T, n_mfcc * (1 + deltas) + 12)",
        ),
        _spec(
            "seed000",
            reference.reference000_mfcc_sequence,
            "sequence",
            "reference 000: 60 MFCC of the clip forced to 3 s, (94, 60) at 16 kHz",
        ),
        _spec(
            "seed001",
            reference.reference001_vector,
            "vector",
            "reference 001: means of ZCR, chroma, MFCC, RMS, mel power, (162,)",
        ),
        _spec(
            "seed002",
            reference.reference002_summary,
            "vector",
            "reference 002: MFCC/chroma/spectral/energy utterance summary, (45,)",
        ),
        _spec(
            "seed003",
            reference.reference003_frame_stats,
            "vector",
            "reference 003: mean/std/min/max of 85 frame features, "
            f"({reference.REFERENCE003_DIM},)",
        ),
        _spec(
            "seed004",
            reference.reference004_mfcc_frames,
            "sequence",
            "reference 004: 40 MFCC, 20 ms hop, fixed 200 frames, (200, 40)",
        ),
        _spec("egemaps", smile.egemaps, "vector", "openSMILE eGeMAPSv02 functionals, (88,)"),
        _spec("compare", smile.compare, "vector", "openSMILE ComParE_2016 functionals, (6373,)"),
        _spec("prosody", prosody.prosody, "vector",
              "eGeMAPS-like pitch, loudness, voice-quality, spectral-balance and timing "
              f"functionals in NumPy, gain-invariant, ({len(prosody.FEATURE_NAMES)},)"),
        _spec("prosody_band", prosody.prosody_band, "vector",
              "the prosody functionals with every spectral computation in the telephone "
              f"band, 300-3400 Hz, ({len(prosody.FEATURE_NAMES)},)"),
        _spec("prosody_robust", prosody.prosody_robust, "vector",
              "the prosody functionals a telephone band-pass moves by at most 2 standard "
              f"deviations, ({len(prosody.ROBUST_NAMES)},)",
              ("prosody", prosody.ROBUST_COLUMNS)),
        _spec("prosody_vq", voice_quality.prosody_vq, "vector",
              "the prosody functionals + eGeMAPS's period perturbation (jitter, shimmer), "
              "harmonic differences (H1-H2, H1-A3) and formants F1-F3 (frequency, bandwidth, "
              f"amplitude), gain-invariant, ({len(voice_quality.FEATURE_NAMES)},)"),
    )
}


def _get(name: str) -> FeatureSpec:
    try:
        return FEATURES[name]
    except KeyError:
        raise ValueError(
            f"unknown feature {name!r}; valid: {', '.join(sorted(FEATURES))}"
        ) from None


def _jsonable(value: Any) -> Any:
    """Normalise numpy scalars/arrays and tuples into plain JSON types."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (np.ndarray, tuple, list)):
        return [_jsonable(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def _params(spec: FeatureSpec, overrides: dict[str, Any]) -> dict[str, Any]:
    """Defaults merged with validated overrides (an int given for a float default -> float)."""
    unknown = sorted(set(overrides) - set(spec.params))
    if unknown:
        valid = ", ".join(sorted(spec.params)) or "(none)"
        raise ValueError(
            f"unknown parameter(s) {', '.join(unknown)} for feature {spec.name!r}; valid: {valid}"
        )
    merged = dict(spec.params)
    for key, value in overrides.items():
        value = _jsonable(value)
        default = spec.params[key]
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        merged[key] = value
    return merged


def extract(name: str, wave: np.ndarray, sr: int, **overrides: Any) -> np.ndarray:
    """Compute registered feature ``name`` on one waveform.

    Args:
        name: a key of :data:`FEATURES`.
        wave: mono waveform ``(n_samples,)``.
        sr: sampling rate in Hz.
        **overrides: parameters replacing the feature's defaults (keys of ``spec.params``).

    Returns:
        float32 ``(D,)`` for a vector feature or time-major ``(T, D)`` for a sequence.

    Raises:
        ValueError: unknown feature name (the message lists the valid ones) or parameter.
    """
    spec = _get(name)
    params = _params(spec, overrides)
    out = spec.fn(wave, sr, **params)
    return np.asarray(out, dtype=np.float32)


def feature_key(name: str, **overrides: Any) -> str:
    """A stable cache key for feature ``name`` with these parameters.

    Canonical JSON (sorted keys, no whitespace) of the name, the full parameter set (defaults
    merged with overrides, so passing a default explicitly gives the same key) and
    :data:`FEATURE_VERSION`. The sampling rate is not part of the key; callers that cache
    across rates must add it.

    Raises:
        ValueError: unknown feature name or parameter.
    """
    spec = _get(name)
    payload = {"feature": spec.name, "params": _params(spec, overrides), "version": FEATURE_VERSION}
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
