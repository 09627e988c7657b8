"""Speaker adaptation in the web app, under streamlit's AppTest with the tiny model: reference
clips of the same speaker show the adapted answer next to the one as heard (bad references
skipped with a warning, too few refused with a message, never a traceback), and the timeline's
"adapt to the recording's own speaker" checkbox."""

from __future__ import annotations

import json

import numpy as np
import pytest

from emovox.labels import LABELS
from signals import clip_bytes, voice

SR = 16000
F0S = (140.0, 190.0, 240.0, 300.0)

pytest.importorskip("streamlit")


def wav(seconds: float, **kw) -> bytes:
    return clip_bytes(voice(seconds, **kw), SR, "WAV", "PCM_16")


@pytest.fixture
def at(app_env):
    from streamlit.testing.v1 import AppTest

    from emovox.web import APP_SCRIPT

    return AppTest.from_file(str(APP_SCRIPT), default_timeout=90).run()


def _no_traceback(at) -> None:
    assert len(at.exception) == 0, [e.value for e in at.exception]


def _table(at, column: str):
    """The page's dataframe with ``column`` (the model card tab has one too), or None."""
    return next((d.value for d in at.dataframe if column in d.value.columns), None)


def _refs(at):
    up = next(u for u in at.file_uploader if u.accept_multiple_files)
    assert up.label == "Same speaker's reference clips"
    return up


def test_reference_clips_show_the_adapted_answer_next_to_the_heard_one(at):
    assert at.file_uploader[0].accept_multiple_files is False  # the main uploader comes first
    refs = [(f"r{i}.wav", wav(1.5, f0=F0S[i]), "audio/wav") for i in range(3)]
    refs.append(("notes.wav", b"this is not audio\n" * 30, "audio/wav"))
    _refs(at).set_value(refs)
    at.file_uploader[0].upload("voice.wav", wav(2.0, f0=210.0), "audio/wav")
    at.run()
    _no_traceback(at)
    assert not at.error
    assert "Adapted to this speaker" in [s.value for s in at.subheader]
    table = _table(at, "as heard (%)")
    assert list(table.columns) == ["emotion", "as heard (%)", "adapted to speaker (%)",
                                   "change (points)"]
    assert len(table) == 8 and table["adapted to speaker (%)"].is_monotonic_decreasing
    assert table["adapted to speaker (%)"].sum() == pytest.approx(100.0, abs=0.5)
    assert (table["change (points)"] != 0).any()
    captions = "\n".join(c.value for c in at.caption)
    assert "Adapted to the speaker of 3 reference clips" in captions
    warnings = [w.value for w in at.warning]
    assert any(w.startswith("reference clip skipped: notes.wav") for w in warnings)
    assert any(w.startswith("only 3 usable reference clips") for w in warnings)
    line = next(m.value for m in at.markdown if m.value.startswith("Adapted to this speaker"))
    assert "the answer" in line
    buttons = [b.label for b in at.download_button]
    assert buttons == ["Download the answer (JSON)", "Download the adapted answer (JSON)"]


def test_too_few_references_is_a_message_and_the_answer_stays(at):
    _refs(at).set_value([("r0.wav", wav(1.5), "audio/wav"),
                         ("quiet.wav", clip_bytes(np.zeros(SR, np.float32), SR, "WAV",
                                                  "PCM_16"), "audio/wav")])
    at.file_uploader[0].upload("voice.wav", wav(2.0, f0=210.0), "audio/wav")
    at.run()
    _no_traceback(at)
    assert not at.error
    msg = next(w.value for w in at.warning if w.value.startswith("Not adapted:"))
    assert "1 usable clip(s) of 2" in msg  # the reason in words (stop 54: "no speech (silence)")
    assert "quiet.wav: the recording is silent" in msg
    assert any(m.value.startswith("## ") for m in at.markdown)  # the answer as heard
    assert _table(at, "as heard (%)") is None  # no comparison table
    assert [b.label for b in at.download_button] == ["Download the answer (JSON)"]


def test_no_reference_no_adapted_section(at):
    at.file_uploader[0].upload("voice.wav", wav(2.0), "audio/wav")
    at.run()
    _no_traceback(at)
    assert "Adapted to this speaker" not in [s.value for s in at.subheader]


def test_timeline_checkbox_adapts_to_the_recordings_own_speaker(at, tiny_model):
    clip = wav(7.0)
    at.file_uploader[0].upload("long.wav", clip, "audio/wav")
    at.run()
    _no_traceback(at)
    box = at.checkbox(key="timeline_adapt")
    assert box.label == "Adapt to the recording's own speaker" and box.value is False
    before = _table(at, "happy")  # every window (table)
    assert not any("own speaker" in c.value for c in at.caption)
    box.check()
    at.run()
    _no_traceback(at)
    assert not at.error
    captions = "\n".join(c.value for c in at.caption)
    assert "Adapted to the recording's own speaker (4 speech windows)" in captions
    assert at.download_button[-1].label == "Download the timeline (CSV)"
    after = _table(at, "happy")
    assert list(after["start"]) == list(before["start"])
    speech = (before["kind"] == "speech").to_numpy()
    assert speech.sum() == 4 and list(after["kind"]) == list(before["kind"])
    cols = list(LABELS)
    b = before.loc[speech, cols].astype(float).to_numpy()
    a = after.loc[speech, cols].astype(float).to_numpy()
    assert np.isfinite(a).all() and not np.array_equal(a, b)
    # the table is the serving layer's adapted copy of the clip's timeline
    from emovox.serving import service
    from emovox.serving.adapt_uploads import adapted_copy
    from emovox.serving.predictor import Predictor

    pred = Predictor.from_artifact(tiny_model)
    want = service.timeline_rows(adapted_copy(service.analyse(pred, clip, "long.wav").timeline,
                                              pred.labels))
    np.testing.assert_allclose(a, [[r[c] for c in cols] for r in want if r["kind"] == "speech"],
                               atol=2e-4)
    at.checkbox(key="timeline_adapt").uncheck()
    at.run()
    assert not any("own speaker (" in c.value for c in at.caption)


def test_answer_downloads_validate(tiny_model):
    """The adapted answer the page offers is a schema-valid prediction document."""
    from emovox.serving.adapt_uploads import predict_with_references
    from emovox.serving.predictor import Predictor
    from emovox.serving.schema import validate_document
    from emovox.web.view import answer_download

    out = predict_with_references(Predictor.from_artifact(tiny_model), wav(2.0), "v.wav",
                                  [(wav(1.5, f0=f), f"r{f:g}.wav") for f in F0S])
    doc = json.loads(answer_download(out.adapted))
    validate_document(doc, "prediction")
    assert doc["adaptation"]["reference_clips"] == 4


def test_a_recording_without_speech_shows_its_reason_only(at):
    """No timeline section, no adaptation checkbox, and references said unused (QA pass)."""
    from signals import silence

    _refs(at).set_value([(f"r{i}.wav", wav(1.5, f0=F0S[i]), "audio/wav") for i in range(3)])
    at.file_uploader[0].upload("quiet12.wav", clip_bytes(silence(12.0), SR, "WAV", "PCM_16"),
                               "audio/wav")
    at.run()
    _no_traceback(at)
    subheaders = [s.value for s in at.subheader]
    assert "Emotion timeline" not in subheaders and "Adapted to this speaker" not in subheaders
    assert not [c for c in at.checkbox if c.key == "timeline_adapt"]
    assert any("reference clip(s) were not used" in i.value for i in at.info)


def test_a_new_clip_starts_without_the_last_ones_references_or_adapt_box(at):
    """The references and the timeline's "adapt" box carried over to the next clip, perhaps
    another speaker's, and a failed adaptation kept every reference clip's audio in the
    session through its error's traceback (code review, stop 46)."""
    refs = [(f"r{i}.wav", wav(1.5, f0=F0S[i % 4]), "audio/wav") for i in range(33)]
    _refs(at).set_value(refs)  # chosen before the first clip: they stay for it
    at.file_uploader[0].upload("long.wav", wav(7.0), "audio/wav")
    at.run()
    _no_traceback(at)
    assert any(w.value.startswith("Not adapted:") and "at most 32" in w.value
               for w in at.warning)
    kept = at.session_state["emovox_adapted"][1]
    assert isinstance(kept, str) and "at most 32" in kept  # a message, not the error
    at.checkbox(key="timeline_adapt").check()
    at.run()
    at.file_uploader[0].upload("other.wav", wav(7.0, f0=260.0), "audio/wav")
    at.run()
    _no_traceback(at)
    assert _refs(at).value in (None, [])
    assert "Adapted to this speaker" not in [s.value for s in at.subheader]
    assert at.checkbox(key="timeline_adapt").value is False


def test_references_chosen_after_a_clip_was_removed_stay_for_the_next(at):
    """A clip analysed, then removed; references chosen; the next clip uploaded: its
    upload dropped those references without a word, the reset keyed on any analysis ever
    made in the session (a review of stop 46's reset, stop 47)."""
    at.file_uploader[0].upload("first.wav", wav(2.0), "audio/wav")
    at.run()
    at.file_uploader[0].set_value(None)
    at.run()
    refs = [(f"r{i}.wav", wav(1.5, f0=F0S[i]), "audio/wav") for i in range(3)]
    _refs(at).set_value(refs)
    at.run()
    at.file_uploader[0].upload("next.wav", wav(2.0, f0=210.0), "audio/wav")
    at.run()
    _no_traceback(at)
    assert [r.name for r in _refs(at).value] == ["r0.wav", "r1.wav", "r2.wav"]
    assert "Adapted to this speaker" in [s.value for s in at.subheader]


def test_bar_labels_read_as_the_headline():
    from emovox.web.charts import probability_chart

    chart = probability_chart({"sad": 0.4957, "happy": 0.3043, "calm": 0.2}, "sad")
    data = chart.to_dict()["datasets"]
    rows = next(iter(data.values()))
    assert {r["emotion"]: r["shown"] for r in rows}["sad"] == "49.6%"  # ".0%" said 50%
    tips = chart.to_dict()["layer"][0]["encoding"]["tooltip"]  # the hover too (".1%": a
    assert [t["field"] for t in tips] == ["emotion", "shown"]  # 0.4996 read 50.0%: 47)


def test_the_timeline_of_an_analysed_clip_is_not_refused_by_its_header(tiny_model,
                                                                      monkeypatch):
    """An MP3 whose header over-estimated its length passed decoding (its exact length
    within the limit), then the timeline's stricter header check refused it and the page
    lost the whole answer (code review, stop 46): the clip decoded whole is not limited
    twice."""
    from emovox.serving import service
    from emovox.serving.predictor import Predictor

    real, asked = service.timeline_from_upload, []

    def spy(predictor, data, name, *, params=None, max_duration=None):
        asked.append(max_duration)
        return real(predictor, data, name, params=params, max_duration=max_duration)

    monkeypatch.setattr(service, "timeline_from_upload", spy)
    a = service.analyse(Predictor.from_artifact(tiny_model), wav(7.0), "long.wav",
                        max_duration=20.0)
    assert a.timeline is not None and asked == [None]
