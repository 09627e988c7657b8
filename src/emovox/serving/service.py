"""What the web app and the REST API share, in plain functions (no Streamlit, no FastAPI).

* :class:`Settings`: model folder, upload size and duration limits, backend and API key,
  read from the environment (``EMOVOX_MODEL``, ``EMOVOX_MAX_UPLOAD_MB``,
  ``EMOVOX_MAX_DURATION_S``, ``EMOVOX_BACKEND``, ``EMOVOX_API_KEY``) so that ``emovox app``
  can hand them to the Streamlit script it starts;
* :func:`analyse`: one uploaded or recorded clip -> prediction, timeline, plot arrays;
* :func:`predict_upload` / :func:`timeline_from_upload`: a prediction or an emotion timeline
  of uploaded bytes or an uploaded file object (see :mod:`emovox.serving.uploads`);
* :func:`model_card`: what the model-card page and ``GET /v1/model`` show;
* :func:`user_message` / :func:`http_status`: the wording and status code of every error a
  user can cause, so neither front end ever shows a traceback or an object repr (the codes:
  :class:`~emovox.serving.errcodes.ErrorCode`, one documented list since stop 51).
"""

from __future__ import annotations

import dataclasses
import io
import logging
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from emovox.artifact import MAX_CARD_BYTES, ArtifactError, read_contained_text
from emovox.artifact.clips import public_trained_on
from emovox.audio import TOO_LONG_ADVICE, seconds_text
from emovox.errors import AudioTooLong, ConfigError, EmovoxError
from emovox.serving.answer import HIGH_CONFIDENCE, MEDIUM_CONFIDENCE, confidence_band, percent_text
from emovox.serving.errcodes import ErrorCode, http_status
from emovox.serving.oneline import code_text
from emovox.serving.params import TIMELINE_HOP_S, TIMELINE_WINDOW_S, TimelineParams
from emovox.serving.predictor import BACKENDS
from emovox.serving.timeline import Timeline, build_timeline, timeline_rows, write_timeline_csv
from emovox.serving.uploads import (
    UploadTooLarge,
    check_size,
    display_name,
    mime_type,
    named_errors,
    open_upload,
    safe_suffix,
    scrub,
    upload_message,
)

log = logging.getLogger(__name__)

__all__ = [
    "HIGH_CONFIDENCE",
    "MEDIUM_CONFIDENCE",
    "BACKENDS",
    "TIMELINE_HOP_S",
    "TIMELINE_WINDOW_S",
    "Analysis",
    "ConfidenceLevel",
    "EmovoxError",
    "ErrorCode",
    "Settings",
    "UploadTooLarge",
    "analyse",
    "card_summary_rows",
    "cv_title",
    "further_cv",
    "check_size",
    "confidence_level",
    "display_name",
    "http_status",
    "mime_type",
    "model_card",
    "percent_text",
    "predict_upload",
    "safe_suffix",
    "timeline_csv",
    "timeline_from_upload",
    "timeline_rows",
    "user_message",
]

ENV_MODEL = "EMOVOX_MODEL"
ENV_MAX_UPLOAD_MB = "EMOVOX_MAX_UPLOAD_MB"
ENV_MAX_DURATION_S = "EMOVOX_MAX_DURATION_S"
ENV_BACKEND = "EMOVOX_BACKEND"
ENV_API_KEY = "EMOVOX_API_KEY"
DEFAULT_MAX_UPLOAD_MB = 25.0
DEFAULT_MAX_DURATION_S = 600.0


#: Recordings longer than this (s) also get an emotion timeline.
TIMELINE_MIN_S = 5.0




# --------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------


def _positive(env: Mapping[str, str], key: str, default: float, least: float = 0.0) -> float:
    """Setting ``key``: positive, finite, >= ``least``; ``default`` when unset or empty."""
    raw = env.get(key, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{key}={raw!r} is not a number") from None
    if not (value > 0 and math.isfinite(value)):
        raise ConfigError(f"{key}={raw!r} must be a positive number")
    if value < least:  # as `emovox serve` refuses it (API QA, stop 37: a 104-byte limit)
        raise ConfigError(f"{key}={raw!r} must be at least {least:g}")
    return value


def api_key_setting(raw: str | None, what: str) -> str | None:
    """The API key as the server compares it: unset -> None (no key); spaces around it
    removed (clients' header values are trimmed, so a key " k" locked every client out);
    only whitespace -> :class:`ConfigError` (API QA, stop 35); empty -> ConfigError too
    (``--api-key "$KEY"`` with ``KEY`` unset served without a key, without a word: API QA,
    stop 37)."""
    if raw is None:
        return None
    if not raw.strip():
        said = "empty" if not raw else "blank (only whitespace)"
        raise ConfigError(f"{what} is {said}: no client could present it; set a key, or "
                          "unset it to run without one")
    return raw.strip()


@dataclass(frozen=True)
class Settings:
    """Configuration of the web app and the API.

    Attributes:
        model: model folder; None = the bundled default model.
        max_upload_mb: largest accepted upload in MiB.
        max_duration_s: longest accepted recording in seconds.
        backend: inference engine, ``auto``, ``onnx`` or ``torch``.
        api_key: the REST API's key (``None``: no key needed); never handed to the web app.
    """

    model: Path | None = None
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB
    max_duration_s: float = DEFAULT_MAX_DURATION_S
    backend: str = "auto"
    api_key: str | None = field(default=None, repr=False)

    @property
    def max_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *,
                 api_key: bool = True) -> Settings:
        """Read ``EMOVOX_*`` variables (unset or empty ones take the defaults, but an empty
        API key is refused); the API key only with ``api_key`` (the web app reads none).

        Raises:
            ConfigError: a limit that is not a positive number, an unknown backend, or a
                blank API key.
        """
        env = os.environ if env is None else env
        model = env.get(ENV_MODEL, "").strip()
        backend = env.get(ENV_BACKEND, "").strip() or "auto"
        if backend not in BACKENDS:
            raise ConfigError(f"{ENV_BACKEND}={backend!r} must be one of {', '.join(BACKENDS)}")
        return cls(
            model=Path(model).expanduser() if model else None,
            max_upload_mb=_positive(env, ENV_MAX_UPLOAD_MB, DEFAULT_MAX_UPLOAD_MB, 0.001),
            max_duration_s=_positive(env, ENV_MAX_DURATION_S, DEFAULT_MAX_DURATION_S),
            backend=backend,
            # the web app reads no key: a blank one must not break its pages (stop 35)
            api_key=api_key_setting(env.get(ENV_API_KEY), ENV_API_KEY) if api_key else None,
        )

    def to_env(self) -> dict[str, str]:
        """The environment variables that make :meth:`from_env` return these settings
        (the API key excepted: it is for the API only and is never passed on)."""
        return {
            ENV_MODEL: str(self.model) if self.model is not None else "",
            ENV_MAX_UPLOAD_MB: f"{self.max_upload_mb:g}",
            ENV_MAX_DURATION_S: f"{self.max_duration_s:g}",
            ENV_BACKEND: self.backend,
        }


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfidenceLevel:
    name: str  # "high", "medium" or "low"
    colour: str  # a Streamlit markdown colour: green, orange, red
    hex: str


_LEVELS = {"high": ConfidenceLevel("high", "green", "#2e7d32"),
           "medium": ConfidenceLevel("medium", "orange", "#ef6c00"),
           "low": ConfidenceLevel("low", "red", "#c62828")}


def confidence_level(confidence: float) -> ConfidenceLevel:
    """high >= 70 %, medium 50-70 %, low < 50 % (:func:`emovox.serving.answer.confidence_band`:
    the bands of the JSON field ``confidence_level``)."""
    return _LEVELS[confidence_band(confidence) or "low"]


def user_message(exc: BaseException) -> str:
    """What to tell the user about ``exc`` (never a traceback)."""
    if isinstance(exc, EmovoxError):
        return scrub(str(exc))
    return ("Something went wrong while analysing this recording. "
            "Try another file; the details are in the server log.")


# --------------------------------------------------------------------------------------------
# Timelines
# --------------------------------------------------------------------------------------------


def _too_long(name: str, seconds: float, max_duration: float, why: str = "") -> AudioTooLong:
    limit = seconds_text(max_duration)
    return AudioTooLong(f"{name}: is {seconds:.2f} s long, longer than the {limit} s limit{why}. "
                        f"{TOO_LONG_ADVICE}")


def predict_upload(
    predictor: Any,
    data: bytes | BinaryIO,
    filename: str | None,
    *,
    max_bytes: int | None = None,
    max_duration: float | None = None,
) -> Any:
    """:meth:`Predictor.predict_file` of an upload (bytes or a file object): decoded from
    memory when small, else from a private temporary copy (deleted before this returns).

    Raises:
        UploadTooLarge, emovox.errors.AudioError: named after the upload.
    """
    with open_upload(data, filename, max_bytes=max_bytes) as up, named_errors(up):
        pred = predictor.predict_file(up.source, filename=up.name, max_duration=max_duration)
    # the upload's name, never the private temporary copy's path (its warnings too: a copy
    # over 1 MB named itself in them, re-check 2, stop 32)
    if not dataclasses.is_dataclass(pred):
        return pred
    return dataclasses.replace(pred, source=up.name, warnings=tuple(
        upload_message(up, w) for w in getattr(pred, "warnings", ()) or ()))


def timeline_from_upload(
    predictor: Any,
    data: bytes | BinaryIO,
    filename: str | None,
    *,
    params: TimelineParams | None = None,
    max_bytes: int | None = None,
    max_duration: float | None = None,
    header_check: Callable[[Any, float | None], None] | None = None,
) -> Timeline:
    """:func:`emovox.serving.timeline.build_timeline` of an upload.

    The upload is copied to a fresh private temporary directory (under
    :func:`tempfile.gettempdir`), which is deleted before this returns, whatever happens.
    The file is probed first, so non-audio is rejected with the client's file name in the
    message, a rate or channel count out of limits is refused as ``predict`` refuses it,
    and ``max_duration`` is enforced from the header and again while streaming.
    ``header_check(info, limit)``: called with the probe's
    :class:`~emovox.audio.AudioInfo` and the duration limit that applies once the header
    passed them, before anything is decoded; it may raise to refuse the recording (the
    API's window cap, on this one copy of the upload: stop 51).
    """
    from emovox.audio import check_limits, header_slack, mixdown_advice, probe, scaled_limit

    params = params or TimelineParams()
    with open_upload(data, filename, max_bytes=max_bytes, spool_bytes=0) as up, \
            named_errors(up):
        name = up.name
        info = probe(up.source, filename=name)  # typed errors, named after the upload
        check_limits(name, info.sr, info.channels)  # before its duration: a WAV saying
        why = ""  # 1 Hz was called 59,259 s long (API review, stop 51)
        if max_duration is not None:  # many channels or a high rate: less of it (CPU)
            asked, max_duration = max_duration, scaled_limit(max_duration, info.sr,
                                                             info.channels)
            if max_duration < asked:
                why = (f" for {info.channels} channels at {info.sr} Hz (the {asked:g} s limit "
                       "counts decoding work as stereo at 96 kHz; "
                       f"{mixdown_advice(info.channels, info.sr)} first)")
        if max_duration is not None and info.duration is not None:  # as load_audio: an
            if info.duration > max_duration + header_slack(info, max_duration):  # estimate
                raise _too_long(name, info.duration, max_duration, why)  # gets slack (47)
        if header_check is not None:
            header_check(info, max_duration)

        def guard(seconds: float) -> None:
            if max_duration is not None and seconds > max_duration + params.hop + 0.05:
                raise AudioTooLong(f"{name}: longer than the {seconds_text(max_duration)} s "
                                   f"limit{why}. {TOO_LONG_ADVICE}")

        tl = build_timeline(predictor, up.source, window=params.window, hop=params.hop,
                            progress=guard, filename=name)
    tl.source = name
    tl.warnings = [upload_message(up, w) for w in tl.warnings]
    if max_duration is not None and tl.duration > max_duration + 0.05:
        raise _too_long(name, tl.duration, max_duration, why)
    return tl


def timeline_csv(tl: Timeline) -> str:
    """The timeline as CSV text, the same columns as ``emovox timeline --csv``."""
    buf = io.StringIO()
    write_timeline_csv(tl, buf)
    return buf.getvalue()


# --------------------------------------------------------------------------------------------
# Analysis of one clip (the web app)
# --------------------------------------------------------------------------------------------


@dataclass
class Analysis:
    """Everything the web app shows about one clip."""

    name: str
    model_id: str
    duration: float
    prediction: Any  # emovox.serving.predictor.Prediction
    timeline: Any | None  # emovox.serving.timeline.Timeline, for recordings > TIMELINE_MIN_S
    envelope: tuple[np.ndarray, np.ndarray, np.ndarray] = field(repr=False)  # t, min, max
    log_mel: np.ndarray = field(repr=False)  # (n_mels, T) dB, pooled to <= 3000 frames
    mfcc: np.ndarray = field(repr=False)  # (20, T), pooled likewise
    frame_seconds: float = 0.01  # seconds per (pooled) spectrogram column
    #: the decoder judged it silent or nearly so (its loudest frame below -60 dBFS): an
    #: answer on it is unreliable (``emovox predict`` logs the same warning)
    silent: bool = False

    @property
    def level(self) -> ConfidenceLevel:
        return confidence_level(self.prediction.confidence)


def waveform_envelope(wave: np.ndarray, sr: int, points: int = 2000
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Min/max envelope of ``wave`` in at most ``points`` buckets: ``(t, lo, hi)``."""
    n = len(wave)
    if n == 0:
        z = np.zeros(1, np.float32)
        return z, z, z
    size = max(1, math.ceil(n / points))
    m = math.ceil(n / size)
    padded = np.pad(wave.astype(np.float32), (0, m * size - n), mode="edge").reshape(m, size)
    t = (np.arange(m) * size + size / 2) / sr
    return t, padded.min(axis=1), padded.max(axis=1)


def analyse(
    predictor: Any,
    data: bytes,
    filename: str | None,
    *,
    max_bytes: int | None = None,
    max_duration: float | None = None,
    timeline_min_s: float = TIMELINE_MIN_S,
    params: TimelineParams | None = None,
) -> Analysis:
    """Decode, predict, and (for recordings longer than ``timeline_min_s``) build the
    emotion timeline of one uploaded or recorded clip.

    Raises:
        UploadTooLarge: more than ``max_bytes``.
        emovox.errors.AudioError: not audio, empty, undecodable, longer than ``max_duration``.
    """
    from emovox.audio import load_audio
    from emovox.features.display import display_spectrograms

    name = display_name(filename)
    if max_bytes is not None:
        check_size(len(data), max_bytes, name)
    if not data:
        from emovox.errors import EmptyAudio

        raise EmptyAudio(f"{name}: the file is empty (0 bytes).")
    audio = load_audio(bytes(data), sr=predictor.sr, trim=False, max_duration=max_duration,
                       filename=name)
    prediction = predictor.predict_wave(audio.wave, audio.sr, source=name)
    if audio.notes and dataclasses.is_dataclass(prediction):
        prediction = dataclasses.replace(prediction, warnings=audio.notes)
    duration = len(audio.wave) / audio.sr
    tl = None
    if duration > timeline_min_s:  # no limit again: the clip was decoded whole within it
        # (an MP3 whose header over-estimates it passed decoding, then the timeline's
        # stricter header check lost the whole answer: code review, stop 46)
        tl = timeline_from_upload(predictor, data, name, params=params, max_duration=None)
    hop_length = 160
    mel, cep, k = display_spectrograms(audio.wave, audio.sr, hop_length=hop_length)
    return Analysis(
        name=name, model_id=predictor.model_id, duration=duration, prediction=prediction,
        timeline=tl, envelope=waveform_envelope(audio.wave, audio.sr), log_mel=mel, mfcc=cep,
        frame_seconds=k * hop_length / audio.sr, silent=bool(audio.silent),
    )


# --------------------------------------------------------------------------------------------
# Model card
# --------------------------------------------------------------------------------------------




def model_card(predictor: Any) -> dict[str, Any]:
    """What the model-card page and ``GET /v1/model`` show: :meth:`Predictor.describe`,
    the speaker-independent cross-validation stored in ``model.json``
    (``cross_validation``, else ``metrics``), training facts, and ``MODEL_CARD.md``."""
    meta = predictor.meta or {}
    card = dict(predictor.describe())
    cv = meta.get("cross_validation") or meta.get("metrics") or None
    if cv is not None and not (isinstance(cv, dict) and "summary" in cv):
        cv = None  # a metrics dict of another shape: not a CV result
    card.update({
        "name": meta.get("name") or (meta.get("config") or {}).get("model", {}).get("name"),
        "n_params": meta.get("n_params"),
        "trained_on": public_trained_on(meta.get("trained_on")),  # no digests (stop 35)
        "cross_validation": cv,
        "model_card_markdown": None,
    })
    try:  # served as it is: the folder's own file only
        card["model_card_markdown"] = read_contained_text(predictor.path, "MODEL_CARD.md",
                                                          MAX_CARD_BYTES)
    except (OSError, ArtifactError) as exc:
        log.warning("model card left out: %s", exc)
    return card


def card_summary_rows(cv: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The CV summary as rows ``{"metric", "mean", "std"}`` (percent)."""
    names = {"ua": "UA (balanced accuracy)", "wa": "WA (accuracy)", "macro_f1": "macro-F1",
             "weighted_f1": "weighted-F1"}
    summary = cv.get("summary") if isinstance(cv.get("summary"), Mapping) else {}
    rows = {k: v for k, v in summary.items()  # numbers only: "63.3%" in a hand-edited
            if isinstance(v, Mapping) and isinstance(v.get("mean"), int | float)}  # model
    return [{"metric": names.get(k, k), "mean": round(float(v["mean"]), 1),  # broke the web
             "std": round(float(v["std"]), 1) if isinstance(v.get("std"), int | float)
             else None} for k, v in rows.items()]  # app's model page (code review, stop 47)


def cv_title(cv: Mapping[str, Any]) -> str:
    """Loco or new speakers, in words; the protocol in code, one line (:func:`code_text`)."""
    protocol = code_text(cv.get("protocol", "?")) or "?"
    if protocol == "loco":
        return "Leave-one-corpus-out (protocol `loco`: each test corpus is never heard in training)"
    return (f"Speaker-independent cross-validation (protocol `{protocol}`: test actors are "
            "never heard in training)")


def further_cv(cv: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The further CV runs of the same recipe a model carries (``metrics.also``: runs pooled
    into its calibration, e.g. RAVDESS EmoBox beside leave-one-corpus-out)."""
    return [a for a in cv.get("also") or [] if isinstance(a, Mapping) and a.get("summary")]


def confusion_of(cv: Mapping[str, Any]) -> tuple[list[str], np.ndarray] | None:
    """``(labels, counts)`` of the pooled confusion matrix, if the CV result has one."""
    pooled = cv.get("pooled") or {}
    labels, cm = pooled.get("labels"), pooled.get("confusion")
    if not labels or not cm:
        return None
    arr = np.asarray(cm, float)
    if arr.shape != (len(labels), len(labels)):
        return None
    return list(labels), arr
