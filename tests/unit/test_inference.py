"""Inference: NumPy front end, ONNX export, Predictor backends, calibration, derived affect."""

from __future__ import annotations

import csv
import json
import logging
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emovox.affect import AROUSAL_VALENCE, arousal_valence
from emovox.artifact import (
    ArtifactError,
    attach_inference,
    read_meta,
    save_model,
)
from emovox.calibration import (
    apply_temperature,
    calibration_report,
    fit_temperature,
    softmax,
)
from emovox.errors import AudioFileNotFound, NotAudio
from emovox.experiment.rundir import fit_from_predictions_csv
from emovox.features import extract
from emovox.features.frontend import LogMelFrontEnd
from emovox.labels import LABELS, Emotion
from emovox.serving.predictor import Prediction, Predictor, Status
from emovox.training.export import export_onnx
from old_folders import saved_before_network_digest
from signals import harmonic

SR = 16000
N_FRAMES = 64


def tone(emotion: int, rng: np.random.Generator, dur: float = 0.6, sr: int = SR) -> np.ndarray:
    """A voice-like harmonic tone whose pitch encodes the class (a steady one would be a beep
    to the speech detector), with 0.1 s of near-silence each side."""
    f0 = 120.0 * 2 ** (emotion / 4) * (1 + 0.02 * rng.standard_normal())
    w = harmonic(f0, dur, sr, noise=0.01, rng=rng, vibrato=0.08, glide=0.15)
    pad = 1e-4 * rng.standard_normal(int(0.1 * sr))
    return np.concatenate([pad, w, pad]).astype(np.float32)


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory) -> dict[str, Path]:
    """A small trained crnn: ``raw`` (as save_model wrote it) and ``full`` (front end,
    temperature 1, model.onnx)."""
    from emovox.audio import trim_silence
    from emovox.models import crnn
    from emovox.training.trainer import TorchClassifier

    rng = np.random.default_rng(0)
    feats, y = [], []
    for i in range(32):
        w = trim_silence(tone(i % 8, rng), SR, top_db=40.0)
        feats.append(extract("logmel", w, SR))
        y.append(i % 8)
    y = np.array(y)
    model = TorchClassifier(
        crnn.build_net, n_classes=8, seed=0,
        **{**crnn.DEFAULTS, "schedule": "cosine", "n_frames": N_FRAMES, "epochs": 2},
    )
    model.fit(feats, y, feats[:8], y[:8])
    root = tmp_path_factory.mktemp("artifacts")
    raw = save_model(model, root / "raw", {"model": {"name": "crnn", "params": {}}})
    full = root / "full"
    shutil.copytree(raw, full)
    attach_inference(full)
    export_onnx(full)
    return {"raw": raw, "full": full, "root": root}


@pytest.fixture(scope="session")
def predictors(artifacts) -> dict[str, Predictor]:
    return {
        "onnx": Predictor.from_artifact(artifacts["full"], backend="onnx", threads=1),
        "torch": Predictor.from_artifact(artifacts["full"], backend="torch"),
    }


@pytest.fixture(scope="session")
def wav_file(tmp_path_factory) -> Path:
    """1 s tone at 22.05 kHz (so prediction resamples)."""
    rng = np.random.default_rng(1)
    path = tmp_path_factory.mktemp("wav") / "clip.wav"
    sf.write(path, tone(4, rng, dur=0.8, sr=22050), 22050, subtype="PCM_16")
    return path


# -- front end ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def frontend() -> LogMelFrontEnd:
    return LogMelFrontEnd.from_params(SR)


@pytest.mark.parametrize("n", [480, 16037, 0])
def test_frontend_matches_librosa_short_and_odd(frontend, n):
    wave = (0.1 * np.random.default_rng(n).standard_normal(n)).astype(np.float32)
    ref = extract("logmel", wave, SR)
    got = frontend(wave)
    assert got.shape == ref.shape == (frontend.n_frames(n), 64)
    assert np.abs(got - ref).max() <= 1e-3


def test_frontend_stored_in_artifact(artifacts, predictors):
    meta = read_meta(artifacts["full"])
    assert meta.preprocess.frontend_params["n_mels"] == 64 and meta.preprocess.trim is True
    from safetensors.numpy import load_file

    t = load_file(str(artifacts["full"] / "weights.safetensors"))
    assert t["frontend.mel_basis"].shape == (64, 257) and t["frontend.window"].shape == (512,)
    fe = predictors["onnx"].preprocess.frontend
    assert isinstance(fe, LogMelFrontEnd)
    assert np.array_equal(fe.mel_basis, LogMelFrontEnd.from_params(SR).mel_basis)


# -- export -------------------------------------------------------------------------------


def test_onnx_matches_torch(artifacts):
    import onnxruntime as ort
    import torch

    from emovox.training.trainer import load_trained

    meta = read_meta(artifacts["full"])
    assert meta.onnx.file == "model.onnx" and meta.onnx.opset == 17
    assert meta.onnx.dynamic_time is True
    model, _ = load_trained(artifacts["full"])
    sess = ort.InferenceSession(str(artifacts["full"] / "model.onnx"),
                                providers=["CPUExecutionProvider"])
    for t in (N_FRAMES, 100):
        x = torch.randn(3, t, 64, generator=torch.Generator().manual_seed(t))
        with torch.no_grad():
            p_torch = torch.softmax(model.net(x), -1).numpy()
        p_onnx = softmax(sess.run(None, {"features": x.numpy()})[0])
        assert np.abs(p_onnx - p_torch).max() <= 1e-4


@pytest.mark.parametrize("shape", [[N_FRAMES, 99], [N_FRAMES], [N_FRAMES, 64, 2]])
def test_a_network_section_the_onnx_graph_does_not_fit_is_refused_by_both_backends(
        artifacts, tmp_path, shape):
    """model.json's network.input_shape edited: PyTorch refused the folder, ONNX answered
    with it (QA, stop 40); the graph's free time dimension matches any length. A folder
    saved since the weights record the network section's digest is refused by that first
    (tests/unit/test_network_section.py): this is one saved before."""
    shutil.copytree(artifacts["full"], tmp_path / "m")
    folder = saved_before_network_digest(tmp_path / "m")
    doc = json.loads((folder / "model.json").read_text())
    doc["network"]["input_shape"] = shape
    (folder / "model.json").write_text(json.dumps(doc))
    with pytest.raises(ArtifactError, match=r"model.onnx: takes input \(batch, time, 64\), "
                       r"model.json's network says \(batch, |do not fit the network's input|"
                       r"crnn expects input_shape \(T, M\)"):  # the shared check of build_net
        Predictor.from_artifact(folder, backend="onnx")  # (the normaliser's width: stop 47)
    with pytest.raises(ArtifactError):
        Predictor.from_artifact(folder, backend="torch")
    doc["network"]["input_shape"] = [N_FRAMES + 7, 64]  # another length: the graph takes any,
    (folder / "model.json").write_text(json.dumps(doc))  # but preprocess.n_frames is not it
    for backend in ("onnx", "torch"):  # (code review, stop 47)
        with pytest.raises(ArtifactError, match="n_frames .* is not the network's input"):
            Predictor.from_artifact(folder, backend=backend)


@pytest.mark.parametrize(("edit", "said"), [
    (lambda d: d["preprocess"]["frontend"].update(hop_length=1), "hop_length must be from 1 ms"),
    (lambda d: d["preprocess"]["frontend"].update(top_db=-80.0), "top_db must be None or a"),
    (lambda d: d["preprocess"].update(sr=8000), r"frontend.sr \(16000\) is not preprocess.sr"),
    (lambda d: d["preprocess"].update(n_frames=100_000), "is not the network's input"),
    (lambda d: d["preprocess"].update(frontend=None, feature_params={"n_fft": 1 << 20}),
     "n_fft must be a whole number from 16 to 16384"),
    (lambda d: d["calibration"].update(temprature=0.5), "calibration.temprature is not a"),
    (lambda d: d.update(calibraton={}), "field calibraton is not a field"),
    (lambda d: d["network"].update(input_shaep=[1]), "network.input_shaep is not a"),
    (lambda d: d["preprocess"]["frontend"].update(hop_lenght=80), "unknown setting 'hop_l"),
])
def test_a_model_json_no_writer_makes_is_refused_before_it_costs_anything(
        artifacts, tmp_path, edit, said):
    """Values no emovox writer produces were read and served: a hop of 1 sample (5787
    windows for a 10 s clip), n_frames 100,000 (0.67 GB a window), n_fft 2^20 built with
    librosa (32 GiB asked), a front end at another rate than the model's, a negative top_db
    (constant features), a misspelt key read as no setting (calibration.temprature: T = 1)
    (code review, stop 47). Each is one line naming the field."""
    folder = tmp_path / "m"
    shutil.copytree(artifacts["full"], folder)
    doc = json.loads((folder / "model.json").read_text())
    edit(doc)
    (folder / "model.json").write_text(json.dumps(doc))
    for backend in ("onnx", "torch"):
        with pytest.raises((ArtifactError, ValueError), match=said):
            Predictor.from_artifact(folder, backend=backend)


def test_export_rejects_sklearn(tmp_path):
    from emovox.models.classical import logreg

    rng = np.random.default_rng(0)
    m = logreg(n_classes=8).fit(rng.standard_normal((16, 4)), np.arange(16) % 8, [], [])
    path = save_model(m, tmp_path / "sk", {"model": {"name": "egemaps_logreg"}})
    with pytest.raises(ArtifactError, match="only neural models export to ONNX"):
        export_onnx(path)
    # (classical artifacts are served by the Predictor: see test_crosscorpus.py)


# -- predictor ----------------------------------------------------------------------------


def test_backends_agree_on_file(predictors, wav_file):
    a = predictors["onnx"].predict_file(wav_file)
    b = predictors["torch"].predict_file(wav_file)
    assert predictors["onnx"].backend == "onnx" and predictors["torch"].backend == "torch"
    pa = np.array(list(a.probabilities.values()))
    pb = np.array(list(b.probabilities.values()))
    assert np.abs(pa - pb).max() <= 1e-4
    assert list(a.probabilities) == list(LABELS) and abs(pa.sum() - 1) < 1e-9
    assert a.label == b.label and a.source.endswith("clip.wav") and not a.silent
    assert a.duration == pytest.approx(1.0, abs=1e-3)
    assert predictors["onnx"].model_id == predictors["torch"].model_id
    assert predictors["onnx"].model_id.startswith("crnn-")
    d = a.to_dict()
    assert d["derived"] == ["arousal", "valence"] and json.dumps(d)


def test_predict_wave_matches_training_pipeline(predictors, artifacts):
    """Predictor == TorchClassifier.predict_proba on the same trimmed log-mel (T = 1)."""
    from emovox.audio import trim_silence
    from emovox.training.trainer import load_trained

    model, _ = load_trained(artifacts["full"])
    wave = tone(2, np.random.default_rng(5))
    ref = model.predict_proba([extract("logmel", trim_silence(wave, SR), SR)])[0]
    got = predictors["onnx"].predict_wave(wave, SR)
    assert np.abs(np.array(list(got.probabilities.values())) - ref).max() <= 1e-4


def test_predict_batch_equals_single(predictors):
    rng = np.random.default_rng(2)
    waves = [tone(k, rng, dur=0.5 + 0.2 * k) for k in range(3)]
    for p in predictors.values():
        batch = p.predict_batch(waves, SR)
        single = [p.predict_wave(w, SR) for w in waves]
        for b, s in zip(batch, single, strict=True):
            assert np.allclose(list(b.probabilities.values()), list(s.probabilities.values()),
                               atol=1e-5)


def test_wave_probabilities_read_a_wave_as_clip_probabilities_read_its_file(
        predictors, wav_file):
    """A decoded waveform scores as its file does (the channel bench degrades waves), at the
    file's own rate and resampled from another one."""
    from emovox.audio import load_audio

    p = predictors["onnx"]
    audio = load_audio(wav_file, sr=p.sr, trim=False)
    from_file = p.clip_probabilities(wav_file)
    assert np.array_equal(p.wave_probabilities(audio.wave, audio.sr), from_file)
    twice = load_audio(wav_file, sr=2 * p.sr, trim=False)
    assert np.abs(p.wave_probabilities(twice.wave, twice.sr) - from_file).max() < 0.05


def test_reading_at_three_speeds_averages_the_views_before_the_temperature(predictors):
    """``Preprocess.speeds`` (stop 45): each window is read at every speed and the views'
    softmax averaged, then the temperature applied to its log: the known answer built from
    three predictors that each read at one speed, with temperature 1."""
    import dataclasses

    p = dataclasses.replace(predictors["onnx"], temperature=1.0)
    rng = np.random.default_rng(4)
    waves = [tone(k, rng, dur=0.5 + 0.3 * k) for k in (1, 5)]
    at = {f: dataclasses.replace(p, preprocess=p.preprocess.replace(speeds=(f,)))
          for f in (0.9, 1.0, 1.1)}
    assert np.array_equal(at[1.0].window_probabilities(waves), p.window_probabilities(waves))
    views = np.stack([q.window_probabilities(waves) for q in at.values()])  # (3, 2, C)
    assert np.abs(views[0] - views[2]).max() > 1e-5  # the speeds are heard (a 2-epoch net)
    tta = dataclasses.replace(p, preprocess=p.preprocess.replace(speeds=(0.9, 1.0, 1.1)))
    mean = views.mean(axis=0)
    assert tta.window_probabilities(waves) == pytest.approx(mean, abs=1e-6)
    hot = dataclasses.replace(tta, temperature=2.0)
    assert hot.window_probabilities(waves) == pytest.approx(softmax(np.log(mean) / 2.0),
                                                            abs=1e-6)
    with pytest.raises(ValueError, match="not 3 views"):
        p.predict_proba_features([np.zeros((N_FRAMES, 64), np.float32)] * 4, views=3)


def test_missing_frontend_falls_back_to_librosa(artifacts, predictors, caplog, wav_file):
    with caplog.at_level(logging.WARNING, logger="emovox.serving.predictor"):
        p = Predictor.from_artifact(artifacts["raw"])  # auto: no model.onnx -> torch
    assert p.backend == "torch" and "no stored log-mel front end" in caplog.text
    a = p.predict_file(wav_file).probabilities
    b = predictors["torch"].predict_file(wav_file).probabilities
    assert np.allclose(list(a.values()), list(b.values()), atol=1e-6)
    with pytest.raises(ArtifactError, match="model.onnx is missing"):
        Predictor.from_artifact(artifacts["raw"], backend="onnx")


def test_typed_errors_and_silence(predictors, tmp_path):
    p = predictors["onnx"]
    with pytest.raises(AudioFileNotFound):
        p.predict_file(tmp_path / "nope.wav")
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio at all, just some text\n" * 20)
    with pytest.raises(NotAudio):
        p.predict_file(text)
    silent = p.predict_wave(np.zeros(SR, np.float32), SR)
    assert silent.status is Status.NO_SPEECH and silent.reason == "silence"
    assert silent.silent and silent.duration == 1.0 and silent.n_windows == 0
    assert silent.label is None and silent.probabilities is None and silent.arousal is None


def test_default_model_missing_is_a_clear_error(tmp_path, monkeypatch):
    """An install without the bundled default (a trimmed wheel) says so and what to pass
    instead; the bundled folder here is an empty one."""
    from emovox.artifact import paths

    empty = tmp_path / "no_default"
    empty.mkdir()
    monkeypatch.setattr(paths, "default_model_path", lambda: empty)
    with pytest.raises(ArtifactError) as err:
        Predictor.from_artifact(None)
    said = str(err.value)
    assert said.startswith("no bundled default model is installed with this version of "
                           f"emovox (expected {empty}); pass the folder of a trained model")
    assert "emovox evaluate --save-models" in said and "\n" not in said


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_concurrent_predictions_match_sequential(predictors, backend):
    p = predictors[backend]
    rng = np.random.default_rng(3)
    waves = [tone(k % 8, rng, dur=0.4) for k in range(20)]
    sequential = [p.predict_wave(w, SR) for w in waves]
    results: dict[int, Prediction] = {}
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(t * 5, t * 5 + 5):
                results[i] = p.predict_wave(waves[i], SR)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    for i, s in enumerate(sequential):
        assert np.allclose(list(results[i].probabilities.values()),
                           list(s.probabilities.values()), atol=1e-6)


def test_import_pulls_in_neither_torch_nor_librosa():
    code = (
        "import sys, emovox.serving.predictor, emovox.serving.runners, emovox.artifact, "
        "emovox.preprocess; "
        "bad = [m for m in ('torch', 'librosa') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_bundled_onnx_prediction_imports_neither_torch_nor_librosa(wav_file):
    """The README's promise: the ONNX path with a stored front end needs neither."""
    code = (
        "import sys; from emovox.serving.predictor import Predictor; "
        f"p = Predictor.from_artifact('default'); p.predict_file({str(wav_file)!r}); "
        "assert p.backend == 'onnx', p.backend; "
        "bad = [m for m in ('torch', 'librosa') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.parametrize("top_db", [80.0, None])
def test_cropped_features_equal_the_full_path(top_db):
    """A clip far longer than the window (loudest part outside it, several STFT blocks):
    the network input computed from the centre frames only is bitwise the full path's."""
    from emovox.preprocess import Preprocess

    rng = np.random.default_rng(3)
    quiet = 0.01 * rng.standard_normal(SR * 50).astype(np.float32)  # 5000 frames: 2 blocks
    quiet[SR * 5 : SR * 6] *= 50.0  # the loudest second, far from the centre
    quiet[SR * 25 - 3000 : SR * 25 + 3000] = 0.0  # digital silence in the window: top_db floor
    fe = LogMelFrontEnd.from_params(SR, top_db=top_db)
    pre = Preprocess(sr=SR, trim=False, feature="logmel", frontend=fe, n_frames=N_FRAMES)
    full = pre.fit_length(pre.features(quiet))
    cropped = pre.cropped_features(quiet)
    assert cropped.shape == full.shape == (N_FRAMES, 64)
    assert np.array_equal(cropped, full)
    if top_db is not None:  # the floor follows the whole clip's maximum, not the window's
        alone = fe(quiet[SR * 25 - 8000 : SR * 25 + 8000])
        assert full.min() > alone.min() + 1.0
    assert np.array_equal(fe(quiet), fe(quiet, frames=(0, fe.n_frames(len(quiet)))))
    assert np.array_equal(fe(quiet)[4090:4100], fe(quiet, frames=(4090, 4100)))  # across blocks
    short = quiet[: SR // 4]  # shorter than the window: padded, same as before
    assert np.array_equal(pre.cropped_features(short), pre.fit_length(pre.features(short)))


# -- calibration --------------------------------------------------------------------------


def _overconfident(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """About 60 % accurate predictions with ~95 % confidence."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 8, n)
    logits = rng.standard_normal((n, 8))
    logits[np.arange(n), y] += 1.5
    return softmax(4.0 * logits), y


def test_temperature_fit_softens_overconfidence(tmp_path):
    p, y = _overconfident()
    t = fit_temperature(p, y)
    assert t > 1.5
    rep = calibration_report(p, y, t)
    assert rep["ece_after"] < rep["ece_before"] and rep["nll_after"] < rep["nll_before"]
    assert np.array_equal(apply_temperature(p, t).argmax(1), p.argmax(1))
    # the same from an experiment's predictions.csv
    f = tmp_path / "predictions.csv"
    with open(f, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["fold", "true", "pred", *[f"p_{lab}" for lab in LABELS]])
        for row, k in zip(p, y, strict=True):
            w.writerow([0, LABELS[k], LABELS[row.argmax()], *[f"{v:.6f}" for v in row]])
    rep_csv = fit_from_predictions_csv(f)
    assert rep_csv["temperature"] == pytest.approx(t, rel=0.02)
    assert rep_csv["ece_after"] < rep_csv["ece_before"] and rep_csv["n"] == len(y)


def test_temperature_stored_and_applied(artifacts, predictors, wav_file):
    hot = artifacts["root"] / "hot"
    if not hot.exists():
        shutil.copytree(artifacts["full"], hot)
    attach_inference(hot, temperature=2.0, calibration={"ece_before": 0.2})
    meta = read_meta(hot)
    assert meta.temperature == 2.0 and meta.calibration.report == {"ece_before": 0.2}
    p2 = Predictor.from_artifact(hot, backend="onnx")
    # the temperature changes predictions, so it is part of the model id
    assert p2.temperature == 2.0 and p2.model_id != predictors["onnx"].model_id
    base = np.array(list(predictors["onnx"].predict_file(wav_file).probabilities.values()))
    got = np.array(list(p2.predict_file(wav_file).probabilities.values()))
    assert np.allclose(got, softmax(np.log(base) / 2.0), atol=1e-6)
    assert got.max() < base.max()


# -- derived arousal / valence ------------------------------------------------------------


def test_arousal_valence_mapping():
    onehot = np.eye(8)[LABELS.index("angry")]
    assert arousal_valence(onehot) == pytest.approx(AROUSAL_VALENCE[Emotion.ANGRY])
    mean = np.mean([AROUSAL_VALENCE[Emotion(lab)] for lab in LABELS], axis=0)
    assert arousal_valence(np.full(8, 1 / 8)) == pytest.approx(tuple(mean))
    assert arousal_valence({lab: float(lab == "sad") for lab in LABELS}) == pytest.approx(
        AROUSAL_VALENCE[Emotion.SAD])
    assert all(-1 <= a <= 1 and -1 <= v <= 1 for a, v in AROUSAL_VALENCE.values())
    assert set(AROUSAL_VALENCE) == set(Emotion)


def test_prediction_affect_is_weighted_mean(predictors, wav_file):
    pred = predictors["onnx"].predict_file(wav_file)
    assert (pred.arousal, pred.valence) == pytest.approx(arousal_valence(pred.probabilities))


# -- whole recordings ---------------------------------------------------------------------


def test_long_recording_is_classified_over_its_speech_only(predictors):
    """Three tones with 2 s of silence between them (7.4 s, > 2 windows of 0.64 s): windows
    only over the tones, in one network call, mean of the windows' probabilities weighted by
    their seconds, evidence that sums to 1."""
    p = predictors["onnx"]
    rng = np.random.default_rng(7)
    gap = np.zeros(2 * SR, np.float32)
    wave = np.concatenate([tone(2, rng, dur=1.0), gap, tone(2, rng, dur=0.5), gap,
                           tone(2, rng, dur=0.8)])
    calls = []
    runner = p.runner

    class Spy:
        backend = runner.backend

        def __call__(self, x):
            calls.append(len(x))
            return runner(x)

    spied = Predictor(labels=p.labels, artifact_meta=p.artifact_meta, temperature=1.0,
                      model_id="spy", backend=p.backend, path=p.path,
                      preprocess=p.preprocess, runner=Spy())
    got = spied.predict_wave(wave, SR)
    assert got.status in (Status.OK, Status.UNCERTAIN) and got.label in got.probabilities
    assert calls == [got.n_windows] and got.n_windows >= 3  # one batched network call
    speech = [(0.1, 1.1), (3.3, 3.8), (6.0, 6.8)]  # where the tones are (s)
    for e in got.evidence:
        assert any(a - 0.15 <= e.start and e.end <= b + 0.15 for a, b in speech), e
    assert sum(e.weight for e in got.evidence) == pytest.approx(1.0)
    assert sum(e.contribution for e in got.evidence) == pytest.approx(1.0)
    assert 2.0 < got.speech_seconds < 2.6 and got.duration == pytest.approx(len(wave) / SR)
    # the answer is the weighted mean of what each window alone gets
    spans = [(int(round(e.start * SR)), int(round(e.end * SR))) for e in got.evidence]
    probs = p.window_probabilities([wave[a:b] for a, b in spans])
    mean = np.average(probs, axis=0, weights=[b - a for a, b in spans])
    assert np.allclose(list(got.probabilities.values()), mean, atol=1e-5)


def test_unvoiced_bursts_between_utterances_are_not_windows(predictors):
    """White-noise bursts between utterances were windows of predict's answer while the
    timeline called them gaps (QA, stop 38): a region whose speech is not voiced is left
    out by the timeline's rule; none voiced: no_speech (unvoiced)."""
    from emovox.features.vad import NoSpeechReason
    from emovox.serving.timeline import SegmentKind, build_timeline
    from signals import clip_bytes, noise, voice

    p = predictors["onnx"]
    gap = np.zeros(SR, np.float32)
    burst = [noise(1.2, amp=0.05, seed=1), noise(1.2, amp=0.05, seed=2)]
    wave = np.concatenate([voice(1.2), gap, burst[0], gap, voice(1.2, f0=150), gap, burst[1],
                           gap, voice(1.2, f0=210)]).astype(np.float32)
    got = p.predict_wave(wave, SR)
    assert got.status in (Status.OK, Status.UNCERTAIN) and got.n_windows >= 3
    for e in got.evidence:  # the bursts: 2.2-3.4 s and 6.6-7.8 s
        assert e.end <= 2.2 or 3.4 <= e.start <= 6.6 or e.start >= 7.8, e
    assert 2.5 < got.speech_seconds < 3.7  # the seconds judged: 3 x 1.2 s of voice at most
    tl = build_timeline(p, clip_bytes(wave, SR))  # the timeline agrees: gaps there
    speech = [(s.start, s.end) for s in tl.segments if s.kind is SegmentKind.SPEECH]
    assert speech and all(b <= 2.2 or 3.4 <= a <= 6.6 or a >= 7.8 for a, b in speech), speech
    only = np.concatenate([gap, burst[0], gap, burst[1], gap, burst[0], gap]).astype(np.float32)
    none = p.predict_wave(only, SR)
    assert none.status is Status.NO_SPEECH and none.reason == NoSpeechReason.UNVOICED.value


def test_uncertain_below_half_and_documented_threshold(predictors):
    from emovox.serving.answer import UNCERTAIN_BELOW

    assert UNCERTAIN_BELOW == 0.5
    p = predictors["onnx"]
    got = p.predict_wave(tone(3, np.random.default_rng(3)), SR)
    assert (got.status is Status.UNCERTAIN) is (got.confidence < UNCERTAIN_BELOW)
    assert got.to_dict()["confidence_level"] in ("high", "medium", "low")


def test_clip_probabilities_skip_the_speech_check(predictors, tmp_path):
    """Evaluation reads every clip, even one the product would call no_speech."""
    p = predictors["onnx"]
    path = tmp_path / "hum.wav"
    sf.write(path, harmonic(200.0, 1.0), SR)
    assert p.predict_file(path).status is Status.NO_SPEECH
    probs = p.clip_probabilities(path)
    assert probs.shape == (8,) and probs.sum() == pytest.approx(1.0)


def test_occlusion_names_the_seconds_that_matter(predictors):
    """Silencing the voiced part changes the answer's probability; silencing the silence
    around it changes nothing; non-speech has no occlusion map."""
    p = predictors["onnx"]
    wave = np.concatenate([np.zeros(SR // 2, np.float32), tone(5, np.random.default_rng(4)),
                           np.zeros(SR // 2, np.float32)])
    occ = p.occlusion(wave, SR, segment_s=0.25)
    assert [o["start"] for o in occ] == pytest.approx([0.25 * k for k in range(len(occ))])
    assert occ[-1]["end"] == pytest.approx(len(wave) / SR)
    silent_part = [o for o in occ if o["end"] <= 0.5]
    assert all(o["drop"] == 0.0 for o in silent_part)  # trimmed away either way
    assert any(o["drop"] != 0.0 for o in occ)  # the voice matters (tiny model: a little)
    assert p.occlusion(np.zeros(SR, np.float32), SR) == []
    with pytest.raises(ValueError):
        p.occlusion(wave, SR, segment_s=0)


def test_a_window_longer_than_two_model_windows_is_heard_whole(predictors):
    """`timeline --window 10`: each window was read as one clip, centre-cropped to the
    model's 2.56 s, so 7 of its 10 s went unheard (code review, stop 47). A window up to two
    model windows is still one clip (as predict reads a clip); a longer one is read in model
    windows at half a window's hop, averaged by their own seconds (as predict reads a long
    input)."""
    from emovox.serving.speech import model_window_s, region_windows

    p = predictors["onnx"]
    rng = np.random.default_rng(7)
    win = model_window_s(p.preprocess)  # (the test model's: 0.64 s)
    short = tone(2, rng, dur=2 * win - 0.25)
    long = np.concatenate([tone(k, rng, dur=1.5) for k in (1, 4, 6)])
    np.testing.assert_array_equal(p.span_probabilities([short]),
                                  p.window_probabilities([short]))
    subs = region_windows([(0.0, len(long) / p.sr)], p.sr, win, win / 2)
    assert len(subs) >= 5
    from emovox.serving.answer import aggregate
    from emovox.serving.speech import own_seconds

    want = aggregate(p.window_probabilities([long[a:b] for a, b in subs]),
                     own_seconds(subs, p.sr))  # each second counted once, as predict
    got = p.span_probabilities([short, long])
    np.testing.assert_allclose(got[1], want, atol=1e-6)
    np.testing.assert_array_equal(got[0], p.window_probabilities([short])[0])
    assert np.abs(got[1] - p.window_probabilities([long])[0]).max() > 1e-5  # heard whole


def test_a_clips_evidence_is_the_part_its_input_was_computed_from(predictors):
    """A one-window clip longer than the model's input: its evidence is the trimmed sound's
    centre crop, not the whole clip (web review, stop 52), and the two backends agree."""
    from signals import voice

    rng = np.random.default_rng(7)
    x = np.concatenate([1e-4 * rng.standard_normal(SR * 3 // 10), voice(0.95, sr=SR)]).astype(
        np.float32)  # 0.3 s of near-silence, then 0.95 s of voice: one window (of 0.64 s)
    for p in predictors.values():
        got = p.predict_wave(x, SR)
        assert got.n_windows == 1 and len(got.evidence) == 1
        e = got.evidence[0]
        s, t = p.preprocess.heard_span(p.preprocess.at_rate(x, SR))
        assert (e.start, e.end) == (s / SR, t / SR)
        assert 0.3 < e.start and e.end - e.start == pytest.approx(N_FRAMES * 0.01, abs=0.03)
        assert e.end < len(x) / SR and e.weight == 1.0
