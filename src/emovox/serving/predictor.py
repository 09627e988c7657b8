"""Prediction with a trained model: one :class:`Predictor` for the CLI, the REST API and the
web app.

::

    from emovox.serving.predictor import Predictor
    pred = Predictor.from_artifact("runs/crnn/model")      # or None: the bundled model
    pred.predict_file("clip.wav").to_dict()
    # {"schema_version": "1", "status": "ok", "label": "angry", "confidence": 0.71,
    #  "probabilities": {...}, "speech_seconds": 1.9, "n_windows": 1, "evidence": [...], ...}

First the speech detector (:func:`emovox.features.vad.speech_verdict`) decides whether there is
speech at all: silence, steady noise, tones, a constant offset, square waves and less than
0.3 s of speech get ``status="no_speech"`` with a ``reason`` and no emotion (label,
probabilities, arousal and valence are ``None``; ``speech_seconds`` 0 unless too short). A
clip up to two model windows long (5.12 s for the bundled default) is then classified whole,
as in training; a longer recording is cut into model-length windows (hop half a window, the
tail covered) over its voiced speech regions (:mod:`emovox.serving.speech`, the timeline's
rule), in batches of 16, and the answer is the mean of their calibrated probabilities weighted
by each window's own seconds (each second of speech once), with the windows as ``evidence``
(:mod:`emovox.serving.answer`). A top probability below 0.5 (``UNCERTAIN_BELOW``) makes the
status ``uncertain``. A model folder that does not run is refused at load (:meth:`check_runs`).

What classifying one window does, exactly as in training: the artifact's
:class:`~emovox.preprocess.Preprocess` (the same object the training inputs were built with):

1. mono, resampled to 16 kHz with soxr (:func:`emovox.audio.resample`);
2. leading/trailing silence trimmed (``top_db`` 40) unless the whole signal is silent;
3. log-mel ``(T, 64)`` by :class:`emovox.features.frontend.LogMelFrontEnd` (NumPy; its filterbank is
   stored in the artifact), centre-cropped or zero-padded at the end to ``n_frames``;
4. standardised with the training mean/std stored in the artifact (NumPy);
5. the network: ONNX Runtime (``model.onnx``, written by ``emovox export`` /
   :func:`emovox.training.export.export_onnx`) or PyTorch (same probabilities within 1e-4);
6. ``softmax(logits / T)`` with the temperature ``T`` fitted on the cross-validation's
   out-of-fold predictions (:mod:`emovox.calibration`) and stored in the artifact
   (``T = 1`` when the artifact has none). With the preprocessing's ``speeds`` (test-time
   augmentation; no bundled model has them), steps 3-5 run once per speed on the window
   played at it, and ``T`` divides the log of the views' mean softmax.

Importing this module imports neither torch nor librosa; PyTorch is imported by the
``"torch"`` backend only, librosa only without a stored front end (a warning says so).
``arousal`` and ``valence`` of a :class:`Prediction` are *derived* from the class
probabilities with the fixed mapping of :mod:`emovox.affect`; the model does not predict them.

A :class:`Predictor` is safe to share between threads: ONNX Runtime sessions support
concurrent ``run`` calls, and the PyTorch backend serialises calls with a lock.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emovox.affect import DERIVED_NOTE, prototype_matrix
from emovox.artifact import ArtifactError, ArtifactMeta, ModelKind, read_artifact
from emovox.audio import AudioSource, load_audio
from emovox.calibration import softmax
from emovox.features.vad import NoSpeechReason, SpeechVerdict, speech_verdict
from emovox.preprocess import Preprocess
from emovox.serving.answer import (
    UNCERTAIN_BELOW,
    Evidence,
    Prediction,
    Status,
    aggregate,
    evidence_of,
)
from emovox.serving.folders import model_folder, model_id, model_id_of
from emovox.serving.runners import Runner, SklearnRunner, network_runner
from emovox.serving.speech import (
    LONG_INPUT_WINDOWS,
    model_window_s,
    own_seconds,
    region_windows,
    speech_regions,
    voiced_regions,
)

log = logging.getLogger(__name__)

__all__ = ["BACKENDS", "UNCERTAIN_BELOW", "Evidence", "Prediction", "Predictor", "Status",
           "model_id_of"]

BACKENDS = ("auto", "onnx", "torch")
_MAX_BATCH = 64  # items per network call in predict_proba_features
#: windows per network call in window_probabilities: the CRNN's activations for 64 windows of
#: 256 frames take ~200 MB; 16 keep a 10-minute recording under 200 MB
_WINDOW_BATCH = 16


# --------------------------------------------------------------------------------------------
# The predictor
# --------------------------------------------------------------------------------------------


@dataclass(eq=False)
class Predictor:
    """A loaded model ready to predict; build it with :meth:`from_artifact`.

    Attributes:
        labels: output label order.
        artifact_meta: the artifact's validated ``model.json``.
        temperature: calibration temperature applied to the logits (1.0 = none stored).
        model_id: ``"<model name>-<first 12 hex of the SHA-256 of every file it uses>"``
            (:func:`emovox.artifact.model_digest`).
        backend: ``"onnx"``, ``"torch"`` or ``"sklearn"``.
        path: the artifact folder.
        preprocess: waveform -> network input (:class:`~emovox.preprocess.Preprocess`).
        runner: network input -> logits (:mod:`emovox.serving.runners`).
    """

    labels: tuple[str, ...]
    artifact_meta: ArtifactMeta
    temperature: float
    model_id: str
    backend: str
    path: Path
    preprocess: Preprocess = field(repr=False)
    runner: Runner = field(repr=False)
    _protos: np.ndarray = field(init=False, repr=False)
    _unseen: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._protos = prototype_matrix(self.labels)
        self._unseen = np.array(self.artifact_meta.unseen_labels(), np.int64)

    # -- views kept for callers ---------------------------------------------------------
    @property
    def meta(self) -> dict[str, Any]:
        """Flat view of ``model.json`` (name, n_params, trained_on, cross_validation, ...)."""
        return self.artifact_meta.card_view()

    @property
    def sr(self) -> int:
        return self.preprocess.sr

    @property
    def n_frames(self) -> int:
        return self.preprocess.n_frames

    @property
    def trim(self) -> bool:
        return self.preprocess.trim

    @property
    def top_db(self) -> float:
        return self.preprocess.top_db

    def features(self, wave: np.ndarray) -> np.ndarray:
        """The model's feature of a prepared waveform (see :meth:`Preprocess.features`;
        without an ensemble's functional columns: :meth:`Preprocess.window_features`)."""
        return self.preprocess.features(wave)

    # -- loading ------------------------------------------------------------------------
    @classmethod
    def from_artifact(
        cls, path: str | Path | None = None, *, backend: str = "auto", threads: int | None = None
    ) -> Predictor:
        """Load the artifact folder ``path`` (``None``: the bundled default model).

        Args:
            path: folder with ``model.json`` (+ ``weights.safetensors``, ``model.onnx``), or
                a bundled model name (``default``). ``compare`` (formerly ``accurate``) is
                no longer bundled: the error says how to build it.
            backend: ``"onnx"`` (needs ``model.onnx``), ``"torch"``, or ``"auto"`` (ONNX when
                ``model.onnx`` exists, else PyTorch). Classical models use scikit-learn.
            threads: intra-op threads of ONNX Runtime / PyTorch (``None``: library default;
                note ``torch.set_num_threads`` is process-wide).

        Raises:
            ArtifactError: missing, malformed or unusable artifact (one line naming the
                file), or ``model.onnx`` missing/stale for ``backend="onnx"``.
        """
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        path = model_folder(path)
        art = read_artifact(path)
        meta = art.meta
        pre = _serving_preprocess(meta, path)
        if meta.kind is ModelKind.SKLEARN:
            runner: Runner = SklearnRunner(art.pipeline, meta.n_classes)
        else:
            runner = network_runner(art, backend, threads)
        pred = cls(labels=meta.labels, artifact_meta=meta, temperature=meta.temperature,
                   model_id=model_id(path, meta), backend=runner.backend, path=path, preprocess=pre,
                   runner=runner)
        pred.check_runs()
        return pred

    def check_runs(self) -> None:
        """1 s of seeded quiet noise through the whole pipeline at load (a few ms): a model
        whose parts disagree (labels vs outputs, front end vs input) or that answers
        non-finite numbers is refused here in one line, not on every clip later."""
        wave = (0.01 * np.random.default_rng(0).standard_normal(self.sr)).astype(np.float32)
        try:
            feats = self.preprocess.window_features(self.preprocess.prepare(wave, self.sr))
            p = np.asarray(self.predict_proba_features([feats]))
        except Exception as exc:  # noqa: BLE001 - anything a model folder makes fail here
            raise ArtifactError(f"{self.path}: the model does not run: "
                                f"{' '.join(str(exc).split())[:200]}") from None
        if p.ndim != 2 or p.shape != (1, len(self.labels)):
            raise ArtifactError(  # README audit, stop 36: was NumPy's concatenation message
                f"{self.path}: the model does not run: the network gives "
                f"{p.shape[-1] if p.ndim else 0} outputs but model.json's \"labels\" lists "
                f"{len(self.labels)}")
        if not np.isfinite(p).all():
            raise ArtifactError(f"{self.path}: the model does not run: it answers non-finite "
                                "probabilities (NaN or infinity)")

    def describe(self) -> dict[str, Any]:
        """What the API/web app show about the model (plain JSON types)."""
        meta = self.artifact_meta
        return {
            "model_id": self.model_id,
            "backend": self.backend,
            "labels": list(self.labels),
            "temperature": self.temperature,
            "calibration": meta.calibration.report,
            "sr": self.sr,
            "n_frames": self.n_frames,
            "trim": self.trim,
            "package_version": meta.package_version or None,
            "metrics": meta.metrics or {},
            "derived_note": DERIVED_NOTE,
        }

    # -- prediction ---------------------------------------------------------------------
    def predict_proba_features(self, feats: np.ndarray | Sequence[np.ndarray], *,
                               views: int = 1) -> np.ndarray:
        """Calibrated probabilities ``(B, n_labels)`` (float64) of raw (un-normalised)
        features: ``(B, T, D)`` log-mel dB, or a list of ``(T, D)`` arrays. Each item is
        padded/cropped to :attr:`n_frames` first. With ``views`` > 1, every ``views``
        consecutive items are one input read several ways (:meth:`Preprocess.views`): their
        softmax is averaged before the temperature, ``(B / views, n_labels)``."""
        items = list(feats) if not isinstance(feats, np.ndarray) else feats
        if len(items) % views:
            raise ValueError(f"{len(items)} items are not {views} views of each input")
        if len(items) == 0:
            return np.zeros((0, len(self.labels)))
        net = self.artifact_meta.network
        width = (net.input_shape[-1] if self.preprocess.functional is not None
                 and net is not None else None)  # an ensemble with a functional member
        if width is not None and any(np.shape(f)[-1] != width for f in items):
            raise ValueError(f"this model reads {width} feature columns, got "
                             f"{sorted({np.shape(f)[-1] for f in items})}: build them with "
                             "Preprocess.window_features (it adds an ensemble's functionals)")
        if self.n_frames:
            items = [self.preprocess.fit_length(f) for f in items]
        shapes = {np.shape(f) for f in items}
        if len(shapes) == 1:
            groups = [np.asarray(items, np.float32)]
        else:  # variable-length input to a model without n_frames: one at a time
            groups = [np.asarray(f, np.float32)[None] for f in items]
        z = np.concatenate([np.asarray(self.runner(self.preprocess.normalise(
            g[s : s + _MAX_BATCH])), np.float64) for g in groups
            for s in range(0, len(g), _MAX_BATCH)])  # (B, C) logits
        if views > 1:  # the views' mean probability, as its log: what T was fitted on
            z = np.log(np.maximum(softmax(z).reshape(-1, views, z.shape[-1]).mean(axis=1),
                                  1e-300))
        return self._proba(z)

    def predict_wave(self, wave: np.ndarray, sr: int, *, source: str = "<array>") -> Prediction:
        """The answer for one waveform: ``(n_samples,)`` or ``(n_samples, n_channels)``, any
        rate (resampled to 16 kHz), full scale 1.0. Non-speech gets ``status="no_speech"``;
        inputs longer than :data:`~emovox.serving.speech.LONG_INPUT_WINDOWS` model windows are
        classified window by window over their speech (:meth:`predict_batch`)."""
        return self.predict_batch([wave], sr, sources=[source])[0]

    def predict_batch(
        self, waves: Sequence[np.ndarray], sr: int, *, sources: Sequence[str] | None = None
    ) -> list[Prediction]:
        """The answers for several waveforms at sample rate ``sr``, with one network call per
        16 windows over all of them.

        Each waveform is checked for speech (:func:`emovox.features.vad.speech_verdict`);
        a short one (up to ``LONG_INPUT_WINDOWS`` model windows) is one window, prepared as
        in training (trimmed, centre-cropped/padded); a longer one is cut into model-length
        windows over its speech regions only, and the answer is the duration-weighted mean
        of the windows' calibrated probabilities (:func:`emovox.serving.answer.aggregate`).
        """
        if sources is not None and len(sources) != len(waves):
            raise ValueError(f"{len(waves)} waves but {len(sources)} sources")
        plans = [self._plan(w, sr) for w in waves]
        spans = [s for _, _, sp in plans for s in sp]
        xs = [x for x, _, _ in plans]
        owner = [i for i, (_, _, sp) in enumerate(plans) for _ in sp]
        probs = self.window_probabilities(
            [xs[i][a:b] for i, (a, b) in zip(owner, spans, strict=True)])
        out = []
        k = 0
        for i, (x, verdict, sp) in enumerate(plans):
            src = sources[i] if sources else "<array>"
            out.append(self._answer(x, verdict, sp, probs[k : k + len(sp)], src))
            k += len(sp)
        return out

    def window_probabilities(self, windows: Sequence[np.ndarray]) -> np.ndarray:
        """Calibrated probabilities ``(n, n_labels)`` of waveforms already at :attr:`sr`,
        each prepared as one training clip (trimmed, cropped/padded), and read at each of the
        preprocessing's ``speeds`` when it has them (their answers averaged); no speech
        check. The features are computed and classified 16 windows at a time, so memory does
        not grow with ``n``."""
        pp, out = self.preprocess, [np.zeros((0, len(self.labels)))]
        for s in range(0, len(windows), _WINDOW_BATCH):
            feats = [pp.window_features(v) for w in windows[s : s + _WINDOW_BATCH]
                     for v in pp.views(pp.prepare(w, self.sr))]
            out.append(self.predict_proba_features(feats, views=max(1, len(pp.speeds))))
        return np.concatenate(out)

    def span_probabilities(self, windows: Sequence[np.ndarray]) -> np.ndarray:
        """:meth:`window_probabilities`, but a window longer than ``LONG_INPUT_WINDOWS``
        model windows is read as predict reads a long input, in model windows at half a
        window's hop, averaged by each one's own seconds: read as one clip, all but its centre
        crop went unheard (`timeline --window 10` labelled 3 s of calm between 7 s of
        anger "calm": code review, stop 47)."""
        win = model_window_s(self.preprocess)
        n_long = LONG_INPUT_WINDOWS * win * self.sr
        if all(len(w) <= n_long for w in windows):
            return self.window_probabilities(windows)
        out = []
        for w in windows:
            if len(w) <= n_long:
                out.append(self.window_probabilities([w])[0])
                continue
            subs = region_windows([(0.0, len(w) / self.sr)], self.sr, win, win / 2)
            out.append(aggregate(self.window_probabilities([w[a:b] for a, b in subs]),
                                 own_seconds(subs, self.sr)))  # each second once, as predict
        return np.array(out)

    def affect(self, p: np.ndarray) -> tuple[float, float]:
        """Derived ``(arousal, valence)`` of a probability vector (:mod:`emovox.affect`)."""
        a, v = (p / p.sum()) @ self._protos
        return float(a), float(v)

    def predict_file(
        self,
        path_or_bytes: AudioSource,
        *,
        filename: str | None = None,
        max_duration: float | None = None,
    ) -> Prediction:
        """Decode a file (or its bytes) with :func:`emovox.audio.load_audio` and predict it.

        Raises:
            emovox.errors.AudioError: the typed decoding errors of ``load_audio``
                (AudioFileNotFound, NotAudio, EmptyAudio, AudioTooLong, ...).
        """
        audio = load_audio(path_or_bytes, sr=self.sr, trim=False, max_duration=max_duration,
                           filename=filename)
        pred = self.predict_wave(audio.wave, audio.sr, source=audio.source)
        return dataclasses.replace(pred, warnings=audio.notes) if audio.notes else pred

    def clip_probabilities(self, path_or_bytes: AudioSource, *,
                           max_duration: float | None = None) -> np.ndarray:
        """Calibrated probabilities ``(n_labels,)`` of a file read as one training clip:
        no speech check and no windows, exactly the view of cross-validation (what an
        evaluation on another corpus scores)."""
        audio = load_audio(path_or_bytes, sr=self.sr, trim=False, max_duration=max_duration)
        return self.wave_probabilities(audio.wave, audio.sr)

    def wave_probabilities(self, wave: np.ndarray, sr: int) -> np.ndarray:
        """Calibrated probabilities ``(n_labels,)`` of a waveform (any rate, full scale 1.0)
        read as one training clip, as :meth:`clip_probabilities` reads a file."""
        return self.window_probabilities([self.preprocess.replace(trim=False).prepare(
            wave, sr).wave])[0]

    def occlusion(self, wave: np.ndarray, sr: int, *, segment_s: float = 0.25
                  ) -> list[dict[str, float]]:
        """Which seconds of a clip drive its answer: the clip is classified again with each
        ``segment_s`` stretch replaced by silence (all stretches in one batched call); the
        drop of the answer's probability says how much that stretch mattered.

        Returns ``[{"start", "end", "drop"}, ...]`` (seconds; ``drop`` = probability of the
        clip's label minus its probability without the stretch, negative when removing it
        raises it); ``[]`` for non-speech. For clips (up to two model windows); longer
        recordings have their per-window ``evidence``. Costs one network call of
        ``duration / segment_s`` items.
        """
        if segment_s <= 0:
            raise ValueError(f"segment_s must be positive, got {segment_s}")
        x = self.preprocess.replace(trim=False).prepare(wave, sr).wave
        answer = self.predict_wave(x, self.sr)
        if answer.label is None or answer.probabilities is None:
            return []
        k = self.labels.index(answer.label)
        step = max(1, int(round(segment_s * self.sr)))
        spans = [(a, min(len(x), a + step)) for a in range(0, len(x), step)]
        occluded = []
        for a, b in spans:
            y = x.copy()
            y[a:b] = 0.0
            occluded.append(y)
        if len(x) <= LONG_INPUT_WINDOWS * model_window_s(self.preprocess) * self.sr:
            probs = self.window_probabilities(occluded)  # a clip: one window, as answered
        else:
            probs = np.array([[(q.probabilities or {}).get(lab, 0.0) for lab in self.labels]
                              for q in self.predict_batch(occluded, self.sr)])
        base = answer.probabilities[answer.label]
        return [{"start": round(a / self.sr, 3), "end": round(b / self.sr, 3),
                 "drop": round(float(base - p[k]), 4) + 0.0} for (a, b), p in zip(spans, probs,
                                                                            strict=True)]

    # -- internals ----------------------------------------------------------------------
    def _proba(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of ``(B, C)`` logits; unheard emotions get none."""
        z = np.asarray(logits, dtype=np.float64) / self.temperature
        if len(self._unseen):  # emotions the model never heard get none (QA, stop 37),
            z = z.copy()  # taken out before the softmax: zeroed after it, an unheard
            z[:, self._unseen] = -np.inf  # emotion that took all the mass left 0 / 0 =
        return softmax(z)  # NaN answered "ok" (code review, stop 47)

    def _plan(self, wave: np.ndarray, sr: int
              ) -> tuple[np.ndarray, SpeechVerdict, list[tuple[int, int]]]:
        """``(wave at the model rate, speech verdict, window sample ranges)``."""
        x, win_s = self.preprocess.at_rate(wave, sr), model_window_s(self.preprocess)
        long_input = len(x) > LONG_INPUT_WINDOWS * win_s * self.sr  # windowed by its regions
        verdict = speech_verdict(x, self.sr, by_pitch=long_input)  # pitch: as the timeline
        if not verdict.is_speech:
            return x, verdict, []
        if not long_input:
            return x, verdict, [(0, len(x))]  # a clip: as in training
        every = speech_regions(verdict.segments, len(x) / self.sr)  # beeps left out
        regions = voiced_regions(x, self.sr, every, verdict.segments)  # unvoiced bursts too
        if not regions:  # as the timeline would have it: every part a gap
            return x, dataclasses.replace(verdict, is_speech=False,
                                          reason=NoSpeechReason.UNVOICED), []
        if len(regions) < len(every):  # the detected seconds of the regions judged
            verdict = dataclasses.replace(verdict, speech_seconds=float(sum(
                max(0.0, min(e, b) - max(s, a)) for s, e in verdict.segments
                for a, b in regions)))
        return x, verdict, region_windows(regions, self.sr, win_s, win_s / 2)

    def _answer(self, x: np.ndarray, verdict: SpeechVerdict, spans: list[tuple[int, int]],
                probs: np.ndarray, source: str) -> Prediction:
        duration = len(x) / self.sr
        if not spans:
            reason = verdict.reason
            return Prediction(
                label=None, confidence=None, probabilities=None, arousal=None, valence=None,
                duration=duration, source=source, status=Status.NO_SPEECH,
                reason=reason.value if reason else None, n_windows=0,
                reason_message=reason.message if reason else None,
                speech_seconds=verdict.speech_seconds if reason is NoSpeechReason.TOO_SHORT
                else 0.0, model_id=self.model_id)  # unvoiced noise is no speech (QA, 40)
        weights = own_seconds(spans, self.sr)  # overlapping windows: each second once
        p = aggregate(probs, weights)
        k = int(np.argmax(p))
        a, v = self.affect(p)
        if spans == [(0, len(x))] and len(x) <= LONG_INPUT_WINDOWS * model_window_s(
                self.preprocess) * self.sr:  # a clip: the part its input was computed from
            spans = [self.preprocess.heard_span(x)]  # (web review, stop 52)
        secs = [(s / self.sr, e / self.sr) for s, e in spans]
        return Prediction(
            label=self.labels[k], confidence=float(p[k]),
            probabilities={lab: float(q) for lab, q in zip(self.labels, p, strict=True)},
            arousal=a, valence=v, duration=duration, source=source,
            status=Status.UNCERTAIN if p[k] < UNCERTAIN_BELOW else Status.OK,
            speech_seconds=verdict.speech_seconds, n_windows=len(spans),
            evidence=evidence_of(secs, probs, weights, self.labels, p), model_id=self.model_id,
            window_probs=np.asarray(probs, np.float64))


def _serving_preprocess(meta: ArtifactMeta, path: Path) -> Preprocess:
    """The artifact's preprocessing; a log-mel network without its stored front end gets one
    built with librosa (a warning says so)."""
    pre = meta.preprocess
    adapt = (meta.experiment_config or {}).get("adapt", "none")
    if adapt not in (None, "none"):  # research QA, stop 32: answered raw input silently
        raise ArtifactError(
            f"{path}: was trained on features normalised per {adapt} (evaluate --adapt "
            f"{adapt}), which a single clip cannot give; serve a model trained without --adapt")
    if pre.feature is None:
        raise ArtifactError(
            f"{path / 'model.json'}: field preprocess.feature is missing (and the model is "
            "not registered): which feature the model reads is unknown"
        )
    if meta.kind is ModelKind.TORCH and pre.feature == "logmel" and pre.frontend is None:
        log.warning(
            "%s: the artifact has no stored log-mel front end; building it with librosa "
            "(run emovox.artifact.attach_inference or 'emovox export' to store it)", path,
        )
        try:
            return pre.with_logmel_frontend()
        except ValueError as e:
            raise ArtifactError(f"{path}: {e}") from None
    if pre.frontend is None:
        log.info("%s: feature %r is computed with emovox.features", path, pre.feature)
    return pre
