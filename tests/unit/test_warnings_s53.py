"""Review stop 53: a float file over full scale is said in every answer's ``warnings``
(``emovox predict --json``, the API, the web page), and a digitally silent file says that
it is silent once (its ``no_speech`` reason), its warning giving only the cause and what to
do; a near-silent voice keeps its near-silence warning."""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np
import pytest

from emovox.audio import load_audio
from emovox.audio.clipping import OVER_LEVEL, ClipCounter, over_note
from emovox.audio.signal import faint_note, peak_frame_dbfs
from emovox.web import view
from signals import SR, silence, voice, write_clip

OVER = "goes over full scale"


def _loud(gain: float = 2.0, seconds: float = 2.0) -> np.ndarray:
    """A voice whose peak is ``gain`` times full scale (2.0: +6.0 dBFS)."""
    v = voice(seconds)
    return (v / np.abs(v).max() * gain).astype(np.float32)


def _over_notes(path: Path) -> list[str]:
    return [n for n in load_audio(path).notes if OVER in n]


# ------------------------------------------------------------------ over full scale


@pytest.mark.parametrize("subtype", ["FLOAT", "DOUBLE"])
def test_a_float_file_over_full_scale_is_said(tmp_path, subtype):
    path = write_clip(tmp_path / "hot.wav", _loud(2.0), SR, subtype=subtype)
    (note,) = _over_notes(path)
    assert note.startswith(f"{path}: the recording goes over full scale: ")
    assert "+6.0 dBFS" in note and "at least 6.1 dB" in note and "clipped" not in note
    n_over = int(np.sum(np.abs(_loud(2.0)) > OVER_LEVEL))
    assert f"{n_over:,} samples" in note
    # stereo: one channel over full scale beside a quiet one is said too
    both = np.stack([_loud(1.5), _loud(0.5)], 1)
    (st,) = _over_notes(write_clip(tmp_path / "st.wav", both, 48_000, subtype="FLOAT"))
    assert "+3.5 dBFS" in st


def test_full_scale_itself_and_integer_formats_are_not_over(tmp_path):
    at_fs = write_clip(tmp_path / "fs.wav", _loud(1.0), SR, subtype="FLOAT")
    assert load_audio(at_fs).notes == ()  # a peak of exactly 1.0 is full scale, not over
    for subtype, ext in (("PCM_16", "wav"), ("PCM_24", "wav"), ("PCM_32", "wav"),
                         ("PCM_16", "flac")):
        clipped = np.clip(_loud(2.0), -1, 1)  # what conversion to integer PCM does
        path = write_clip(tmp_path / f"i_{subtype}.{ext}", clipped, SR, subtype=subtype)
        notes = load_audio(path).notes
        assert not any(OVER in n for n in notes), (subtype, notes)
        assert any("is clipped" in n for n in notes)  # said as what it is
    # a counter without a float subtype (the web meter's, ffmpeg's output) never says it
    c = ClipCounter(None)
    c.add(_loud(2.0))
    assert c.over > 0 and not any(OVER in n for n in c.notes("x"))


def test_over_note_words():
    assert "(under 0.01%)" in over_note("x", 2, 1e-6, 1.0000100)
    assert "under +0.05 dBFS" in over_note("x", 2, 1e-6, 1.0000100)
    assert "at least 0.1 dB" in over_note("x", 2, 1e-6, 1.0000100)
    assert "(25.00%)" in over_note("x", 10, 0.25, 4.0) and "+12.0 dBFS" in over_note(
        "x", 10, 0.25, 4.0)


# ------------------------------------------------------------------ digital silence


def _says_silent(text: str) -> bool:
    """Whether a message (after the file's name, when it starts with one) says silent."""
    return "silent" in text.split(".wav: ", 1)[-1].lower()


def test_a_digitally_silent_file_says_silent_once_in_its_warning_and_reason(tmp_path):
    path = write_clip(tmp_path / "zeros.wav", silence(2.0), SR)
    (note,) = load_audio(path).notes
    assert note == faint_note(str(path), digital=True)
    assert not _says_silent(note), note  # the reason says it
    assert "every sample has the same value" in note and "not muted" in note
    offset = write_clip(tmp_path / "offset.wav", silence(2.0) + 0.25, SR, subtype="FLOAT")
    assert load_audio(offset).notes == (faint_note(str(offset), digital=True),)


def test_a_near_silent_voice_keeps_its_near_silence_warning(tmp_path):
    v = voice(2.0)
    for db in (-61.0, -65.0):  # the loudest frame just below -60 dBFS, and lower
        w = (v * 10 ** ((db - peak_frame_dbfs(v)) / 20)).astype(np.float32)
        path = write_clip(tmp_path / f"faint{int(db)}.wav", w, SR, subtype="FLOAT")
        (note,) = load_audio(path).notes
        assert note == faint_note(str(path))
        assert "silent or nearly so (loudest frame below -60 dBFS)" in note
        assert "record closer" in note
    w = (v * 10 ** ((-59.0 - peak_frame_dbfs(v)) / 20)).astype(np.float32)
    assert load_audio(write_clip(tmp_path / "f59.wav", w, SR, subtype="FLOAT")).notes == ()


def test_the_web_page_says_silent_once():
    muted = faint_note("zeros.wav", digital=True)
    faint = faint_note("faint.wav")
    assert view.page_warnings([muted]) == [muted]  # the advice is shown
    assert view.page_warnings([faint]) == []  # near-silence has its own box
    hum = "x: mains hum at 50 Hz, 2 dB"
    assert view.page_warnings([muted], [hum]) == [muted]  # no timeline note beside it


# ------------------------------------------------------------------ CLI, API and web alike


@pytest.fixture
def clips(tmp_path) -> dict[str, Path]:
    return {"hot": write_clip(tmp_path / "hot.wav", _loud(2.0), SR, subtype="FLOAT"),
            "zeros": write_clip(tmp_path / "zeros.wav", silence(2.0), SR)}


def _check(docs: dict[str, dict]) -> None:
    hot, zeros = docs["hot"], docs["zeros"]
    assert [w for w in hot["warnings"] if OVER in w], hot.get("warnings")
    assert zeros["status"] == "no_speech" and zeros["reason"] == "silence"
    said = [zeros["reason_message"], *zeros["warnings"]]
    assert sum(map(_says_silent, said)) == 1, said
    assert any("not muted" in w for w in zeros["warnings"])
    # what the web page shows of the same answers: the no-speech box and page_warnings, one
    # box in the muted note's words (stop 57: the reason's "silent" beside it said it twice)
    pv = view.prediction_view(zeros)
    shown = [view.no_speech_box("zeros.wav", pv.reason, zeros["warnings"]),
             *view.page_warnings(zeros["warnings"], no_speech=True)]
    assert len(shown) == 1 and "not muted" in shown[0], shown
    assert any(OVER in w for w in view.page_warnings(hot["warnings"]))


def test_predict_json_and_the_api_say_it_alike(tiny_model, clips):
    from typer.testing import CliRunner

    from emovox.api.server import create_app
    from emovox.cli import app

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        res = CliRunner().invoke(app, ["predict", *map(str, clips.values()), "--json", "-m",
                                       str(tiny_model)])
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    assert res.exit_code == 0, res.output
    docs = dict(zip(clips, json.loads(res.stdout), strict=True))
    _check(docs)
    with warnings.catch_warnings():  # starlette's notice about httpx
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    with TestClient(create_app(tiny_model, max_bytes=4_000_000, max_duration=60)) as c:
        api = {k: c.post("/v1/predict", files={"file": (p.name, p.read_bytes(),
                                                        "application/octet-stream")}).json()
               for k, p in clips.items()}
    _check(api)
    assert all(w.startswith(f"{clips[k].name}: ") for k in api for w in api[k]["warnings"])


@pytest.mark.slow
def test_the_web_app_page_says_them(app_env):
    """The page itself (streamlit's AppTest on the tiny model): the over-full-scale warning
    is shown, and a silent upload has one box, the muted note (stop 57: it had two)."""
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest

    from emovox.web import APP_SCRIPT
    from signals import clip_bytes

    at = AppTest.from_file(str(APP_SCRIPT), default_timeout=90).run()
    at.file_uploader[0].upload("zeros.wav", clip_bytes(silence(2.0), SR, "WAV", "PCM_16"),
                               "audio/wav")
    at.run()
    assert len(at.exception) == 0, [e.value for e in at.exception]
    boxes = [w.value for w in at.warning] + [e.value for e in at.error]
    assert len(boxes) == 1 and "not muted" in boxes[0], boxes
    at.file_uploader[0].set_value(("hot.wav", clip_bytes(_loud(2.0), SR, "WAV", "FLOAT"),
                                   "audio/wav"))
    at.run()
    assert len(at.exception) == 0, [e.value for e in at.exception]
    assert len([w.value for w in at.warning if OVER in w.value]) == 1
