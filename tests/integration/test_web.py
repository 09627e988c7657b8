"""Web app: the Streamlit script under streamlit's AppTest (upload, microphone recording,
bad files, limits, no tracebacks), the serving logic it uses and `emovox app`."""

from __future__ import annotations

import pytest

from emovox.errors import AudioTooLong, EmptyAudio
from emovox.labels import LABELS
from emovox.serving import service as logic
from signals import clip_bytes, voice

SR = 16000


def wav(seconds: float, **kw) -> bytes:
    return clip_bytes(voice(seconds, **kw), SR, "WAV", "PCM_16")


# ------------------------------------------------------------------------------ logic


def test_analyse_and_timeline_csv(tiny_model):
    from emovox.serving.predictor import Predictor

    pred = Predictor.from_artifact(tiny_model)
    short = logic.analyse(pred, wav(2.0), "short.wav")
    assert short.timeline is None and short.prediction.label in LABELS
    assert short.duration == pytest.approx(2.0) and short.log_mel.shape[0] == 64
    assert short.mfcc.shape[0] == 20 and short.level.name in ("high", "medium", "low")
    long = logic.analyse(pred, wav(7.0), "dir/long.wav")
    assert long.name == "long.wav"
    segs = long.timeline.segments  # gap (0.15 s lead-in), 3 s windows over the speech, gap
    assert [s.kind.value for s in segs] == ["gap", "speech", "speech", "speech", "speech", "gap"]
    speech = [s for s in segs if s.kind.value == "speech"]
    assert [s.start for s in speech] == pytest.approx([0.03, 1.53, 3.03, 3.85])
    assert all(s.end - s.start == pytest.approx(3.0) for s in speech)
    assert speech[-1].end == pytest.approx(segs[-1].start) and segs[-1].end == pytest.approx(7.0)
    lines = logic.timeline_csv(long.timeline).splitlines()
    assert lines[0].split(",") == ["start", "end", "kind", "label", "confidence", *LABELS,
                                   "arousal", "valence"]
    assert len(lines) == 7 and lines[1].startswith("0.00,0.03,gap,,,")
    with pytest.raises(AudioTooLong, match="long.wav"):
        logic.analyse(pred, wav(7.0), "long.wav", max_duration=5.0)
    with pytest.raises(logic.UploadTooLarge):
        logic.analyse(pred, wav(2.0), "a.wav", max_bytes=1000)
    with pytest.raises(EmptyAudio):
        logic.analyse(pred, b"", "a.wav")
    card = logic.model_card(pred)
    assert logic.card_summary_rows(card["cross_validation"])[0] == {
        "metric": "UA (balanced accuracy)", "mean": 50.0, "std": 5.0}
    labels, cm = logic.confusion_of(card["cross_validation"])
    assert labels == list(LABELS) and cm.shape == (8, 8)


# ------------------------------------------------------------------------------ AppTest


@pytest.fixture
def app_env(tiny_model, monkeypatch):
    monkeypatch.setenv("EMOVOX_MODEL", str(tiny_model))
    monkeypatch.setenv("EMOVOX_MAX_UPLOAD_MB", "1")
    monkeypatch.setenv("EMOVOX_MAX_DURATION_S", "20")
    monkeypatch.delenv("EMOVOX_BACKEND", raising=False)
    return monkeypatch


def _app():
    from streamlit.testing.v1 import AppTest

    from emovox.web import APP_SCRIPT

    return AppTest.from_file(str(APP_SCRIPT), default_timeout=90)


def _texts(at) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    return "\n".join(parts)


def _no_traceback(at) -> None:
    assert len(at.exception) == 0, [e.value for e in at.exception]


@pytest.mark.slow
def test_app_upload_record_and_bad_file(app_env):
    pytest.importorskip("streamlit")
    at = _app().run()
    _no_traceback(at)
    assert not at.error
    assert "Upload a recording" in at.info[0].value
    texts = _texts(at)  # the model card tab
    assert "Speaker-independent cross-validation" in texts and "emobox" in texts
    assert "Weakest class: neutral" in texts
    assert len(at.image) == 2  # confusion matrix + recall per class

    at.file_uploader[0].upload("long voice.wav", wav(7.0), "audio/wav")
    at.run()
    _no_traceback(at)
    assert not at.error
    texts = _texts(at)
    assert any(f":{c}[" in texts for c in ("green", "orange", "red"))
    assert "confidence]" in texts and "long voice.wav · 7.0 s" in texts
    assert [m.label for m in at.metric] == ["Arousal", "Valence"]
    assert "Dominant emotion" in texts  # 7 s > 5 s: the timeline is shown
    assert [b.label for b in at.download_button] == ["Download the timeline (CSV)"]

    at.file_uploader[0].set_value(("notes.wav", b"this is not audio\n" * 30, "audio/wav"))
    at.run()
    _no_traceback(at)
    assert "notes.wav" in at.error[0].value and "not audio" in at.error[0].value

    at.audio_input[0].upload("recording.wav", wav(2.0, f0=220.0))
    at.run()
    _no_traceback(at)
    assert not at.error
    texts = _texts(at)
    assert "recording.wav · 2.0 s" in texts
    assert "Dominant emotion" not in texts and not at.download_button


def test_app_limits_and_failures(app_env, tiny_model):
    pytest.importorskip("streamlit")
    at = _app().run()
    at.file_uploader[0].upload("big.wav", wav(40.0), "audio/wav")  # 1.28 MB > 1 MB
    at.run()
    _no_traceback(at)
    assert "upload limit" in at.error[0].value

    at.file_uploader[0].set_value(("long.wav", wav(25.0), "audio/wav"))  # 0.8 MB, 25 s > 20 s
    at.run()
    _no_traceback(at)
    assert "longer than the 20 s limit" in at.error[0].value

    def boom(*a, **k):
        raise RuntimeError("secret internals")

    app_env.setattr(logic, "analyse", boom)
    at.file_uploader[0].set_value(("ok.wav", wav(2.0, f0=150.0), "audio/wav"))
    at.run()
    _no_traceback(at)
    assert "went wrong" in at.error[0].value and "secret" not in at.error[0].value

    app_env.setenv("EMOVOX_MODEL", str(tiny_model.parent / "missing"))
    at = _app().run()
    _no_traceback(at)
    assert "could not be loaded" in at.error[0].value and "does not exist" in at.error[0].value

    app_env.setenv("EMOVOX_MODEL", str(tiny_model))
    app_env.setenv("EMOVOX_MAX_UPLOAD_MB", "many")
    at = _app().run()
    _no_traceback(at)
    assert "EMOVOX_MAX_UPLOAD_MB='many' is not a number" in at.error[0].value


# ------------------------------------------------------------------------------ CLI


def test_app_command(tiny_model, monkeypatch, tmp_path):
    import os

    from typer.testing import CliRunner

    from emovox.cli import app
    from emovox.web import APP_SCRIPT

    captured = {}

    def fake_execve(path, argv, env):
        captured.update(path=path, argv=argv, env=env)
        raise SystemExit(0)

    monkeypatch.setattr(os, "execve", fake_execve)
    r = CliRunner().invoke(app, ["app", "--model", str(tiny_model), "--port", "8599",
                                 "--max-upload-mb", "2.5", "--max-duration", "90"])
    assert r.exit_code == 0, r.output
    argv = captured["argv"]
    assert argv[1:5] == ["-m", "streamlit", "run", str(APP_SCRIPT)]
    opts = dict(zip(argv[5::2], argv[6::2], strict=True))
    assert opts["--server.port"] == "8599" and opts["--server.address"] == "127.0.0.1"
    assert opts["--server.maxUploadSize"] == "3" and opts["--server.headless"] == "true"
    assert opts["--client.showErrorDetails"] == "none"
    assert opts["--browser.gatherUsageStats"] == "false"
    env = captured["env"]
    assert env["EMOVOX_MODEL"] == str(tiny_model.resolve())
    assert env["EMOVOX_MAX_UPLOAD_MB"] == "2.5" and env["EMOVOX_MAX_DURATION_S"] == "90"
    assert logic.Settings.from_env(env).max_duration_s == 90.0

    bad = CliRunner().invoke(app, ["app", "--model", str(tmp_path)])
    assert bad.exit_code == 2 and "no model.json" in " ".join(bad.output.split())
