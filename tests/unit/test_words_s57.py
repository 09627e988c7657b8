"""Review stop 57: the web page says a muted (every sample alike) upload in one box, the
answer's precise note, not beside the generic "silent" reason; warnings that mean something
else stay beside a no-speech box; ``listen`` words its no-speech reason for a stream ("the
input"), not for a file ("the recording")."""

from __future__ import annotations

import numpy as np
import pytest

from emovox.audio.clipping import clip_note
from emovox.audio.signal import faint_note
from emovox.features.vad import NoSpeechReason
from emovox.serving.live import listen
from emovox.web import view
from signals import SR, clip_bytes, silence, square, voice

MUTED = "every sample has the same value"
SILENT_REASON = NoSpeechReason.SILENCE.message


# ------------------------------------------------------------------ web: one box


def test_a_muted_no_speech_answer_is_one_box_in_the_notes_words():
    muted = faint_note("zeros.wav", digital=True)
    box = view.no_speech_box("zeros.wav", SILENT_REASON, [muted])
    assert box.startswith(muted) and box.endswith("There is no voice to classify.")
    assert "silent" not in box  # the reason's generic words are not said beside it
    assert view.page_warnings([muted], no_speech=True) == []  # said in the box, not again
    assert view.page_warnings([muted]) == [muted]  # (an answer with speech: as before)


def test_other_warnings_stay_beside_a_no_speech_box():
    clipped = clip_note("sq.wav", 32_000, 1.0)
    steady = NoSpeechReason.STEADY.message
    box = view.no_speech_box("sq.wav", steady, [clipped])
    assert box == f"sq.wav: {steady}: there is no voice to classify."  # the reason, as before
    assert view.page_warnings([clipped], no_speech=True) == [clipped]
    cut = "zeros.wav: holds 1 s of the 2 s its header declares"
    muted = faint_note("zeros.wav", digital=True)
    assert view.page_warnings([cut, muted], no_speech=True) == [cut]


@pytest.mark.slow
def test_the_web_page_shows_a_silent_upload_once(app_env):
    """The page itself (AppTest, tiny model): an all-zero WAV and a constant offset showed
    "the recording is silent (or a constant offset)" and "every sample has the same value"
    in two boxes; a clipped square wave keeps its no-speech box and its clipped warning."""
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest

    from emovox.web import APP_SCRIPT

    at = AppTest.from_file(str(APP_SCRIPT), default_timeout=90).run()
    uploads = [("zeros.wav", clip_bytes(silence(2.0), SR, "WAV", "PCM_16")),
               ("dc.wav", clip_bytes(silence(2.0) + 0.25, SR, "WAV", "FLOAT"))]
    at.file_uploader[0].upload(*uploads[0], "audio/wav")
    for i, (name, data) in enumerate(uploads):
        if i:
            at.file_uploader[0].set_value((name, data, "audio/wav"))
        at.run()
        assert len(at.exception) == 0, [e.value for e in at.exception]
        boxes = [w.value for w in at.warning] + [e.value for e in at.error]
        assert len(boxes) == 1, boxes
        assert boxes[0].startswith(f"{name}: {MUTED}") and "not muted" in boxes[0], boxes
    sq = np.clip(square(200.0, 2.0, amp=1.5), -1, 1)
    at.file_uploader[0].set_value(("sq.wav", clip_bytes(sq, SR, "WAV", "PCM_16"), "audio/wav"))
    at.run()
    boxes = [w.value for w in at.warning] + [e.value for e in at.error]
    assert len(boxes) == 2 and "steady sound" in boxes[0] and "is clipped" in boxes[1], boxes


# ------------------------------------------------------------------ listen: "the input"


class _Fake:
    def predict_wave(self, wave, sr, *, source="<array>"):
        from types import SimpleNamespace

        return SimpleNamespace(label="angry", confidence=0.9, status="ok",
                               probabilities={"angry": 0.9, "sad": 0.1})


def test_listen_words_a_dc_streams_reason_for_a_stream():
    stream = np.concatenate([voice(2.0), silence(2.0) + 0.25, silence(2.0)])
    ups = list(listen(_Fake(), [stream], window=2.0, hop=2.0))
    assert [u.to_dict()["reason"] for u in ups] == [None, "silence", "silence"]  # unchanged
    assert ups[0].reason_message is None
    for up in ups[1:]:  # the DC offset, then digital silence
        assert up.reason_message == "the input is silent (or a constant offset)"
    # a file's words stay a recording's (predict, timeline, API, web)
    assert SILENT_REASON == "the recording is silent (or a constant offset)"
    assert NoSpeechReason.STEADY.words("input") == NoSpeechReason.STEADY.message
