"""The web app's pure view logic (emovox.web.view): recording level in dBFS with quiet and
clipped warnings, the prediction's status (old ``silent`` flag and new ``status`` schema),
timeline bands and evidence spans, and the wording of limit errors."""

from __future__ import annotations

import math
import re
import time

import numpy as np
import pytest

from emovox.audio.limits import seconds_shown
from emovox.errors import AudioTooLong, NotAudio
from emovox.labels import LABELS
from emovox.serving.uploads import UploadTooLarge
from emovox.web import view
from signals import sine, voice

SR = 16000


# ------------------------------------------------------------------------------ level


@pytest.mark.parametrize("amp_db", [0.0, -6.0, -20.0, -40.0])
def test_sine_level_is_known(amp_db):
    amp = 10 ** (amp_db / 20)
    x = sine(1000.0, 1.0, SR, amp=amp * 0.9999, dtype=np.float64)  # peak just under the level
    lv = view.signal_level(x)
    assert lv.peak_dbfs == pytest.approx(amp_db, abs=0.01)
    assert lv.rms_dbfs == pytest.approx(amp_db - 3.0103, abs=0.01)  # sine: RMS = peak/sqrt 2
    assert lv.clipped_samples == 0 and not lv.clipped


def test_square_wave_rms_equals_peak_and_silence_is_minus_infinity():
    x = np.full(SR, 0.5)
    x[::2] = -0.5
    lv = view.signal_level(x)
    assert lv.peak_dbfs == pytest.approx(lv.rms_dbfs) == pytest.approx(-6.0206, abs=1e-3)
    zero = view.signal_level(np.zeros(100))
    assert zero.peak_dbfs == zero.rms_dbfs == -math.inf
    assert view.fmt_dbfs(zero.peak_dbfs) == "-∞ dBFS" and view.fmt_dbfs(-12.34) == "-12.3 dBFS"
    assert view.fmt_dbfs(-0.0) == view.fmt_dbfs(-0.04) == "0.0 dBFS"  # not "-0.0" (QA)
    assert seconds_shown(0.03) == "0.03 s" and seconds_shown(41.72) == "41.7 s"
    assert view.timeline_csv_name("talk.m4a", True) == "talk-timeline-adapted.csv"
    cut, hum = "mains hum.wav: holds 3 s of the 9 s", "x: mains hum at 50 Hz, 20 dB"
    hum2 = "x: mains hum at 50 Hz, 2 dB"
    faint = "x: the audio is silent or nearly so (loudest frame below -60 dBFS)"
    assert view.page_warnings([cut, hum], [cut, hum2]) == [cut, hum]  # said once
    # hum in part of it, found by the timeline only (a file name saying "mains hum" aside)
    assert view.page_warnings([cut], [cut, hum2]) == [cut, f"The timeline found: {hum2}"]
    assert view.page_warnings([cut, faint], [cut, hum2]) == [cut]  # near-silence says it
    muted = "x: every sample has the same value, as ...: check that the"
    assert view.page_warnings([muted]) == [muted]  # a muted input's advice (stop 39)
    assert view.timeline_csv_name("talk.m4a", False) == "talk-timeline.csv"
    empty = view.signal_level(np.zeros(0))
    assert empty.n_samples == 0 and not empty.clipped


def test_clipping_is_runs_at_full_scale_not_a_clean_peak():
    overdriven = np.clip(sine(200.0, 1.0, SR, amp=2.0, dtype=np.float64), -1, 1)
    lv = view.signal_level(overdriven)
    # |sin| >= 0.5 for two thirds of each period: two thirds of the samples sit at +-1
    assert lv.clipped and lv.clipped_samples / lv.n_samples == pytest.approx(2 / 3, abs=0.02)
    assert lv.peak_dbfs == pytest.approx(0.0)
    clean = np.zeros(1000)
    clean[500] = 1.0  # one full-scale sample (a normalised peak), and a pair
    clean[700:702] = -1.0
    assert view.signal_level(clean).clipped_samples == 0
    clean[100:103] = 1.0  # three in a row: clipped
    assert view.signal_level(clean).clipped_samples == 3


def test_level_is_computed_in_blocks_with_runs_across_block_edges(monkeypatch):
    rng = np.random.default_rng(0)
    x = rng.uniform(-0.5, 0.5, 10_000)
    x[998:1001] = 1.0  # a run of 3 across the edge at 1000
    x[1999:2001] = -1.0  # a run of 2 across the edge at 2000: not clipping
    x[2990:3010] = 1.0  # a run of 20 in the middle of a block
    x[-2:] = 1.0  # a run of 2 at the very end
    whole = view.signal_level(x)
    monkeypatch.setattr(view, "_BLOCK", 1000)
    blocked = view.signal_level(x)
    assert whole.clipped_samples == blocked.clipped_samples == 3 + 20
    assert blocked.peak_dbfs == whole.peak_dbfs == 0.0
    assert blocked.rms_dbfs == pytest.approx(whole.rms_dbfs, abs=1e-9)
    x[-3:] = 1.0  # now 3 at the very end
    assert view.signal_level(x).clipped_samples == 26
    x = np.ones(3500)  # one run through every block
    assert view.signal_level(x).clipped_samples == 3500


def test_a_clipped_channel_is_not_hidden_by_a_quiet_one(tmp_path):
    """Per channel, as recorded (QA pass: a stereo file with one clipped channel and one
    silent showed peak -6 dBFS and no clipping after the mix-down)."""
    import soundfile as sf

    from emovox.audio import iter_native_blocks

    rng = np.random.default_rng(1)
    left = np.clip(rng.uniform(-2.0, 2.0, 48_000), -1.0, 1.0)  # heavily clipped
    stereo = np.stack([left, np.zeros_like(left)], axis=1)
    mono_mix = view.signal_level(stereo.mean(1))
    assert mono_mix.clipped_samples == 0 and mono_mix.peak_dbfs == pytest.approx(-6.02, abs=0.01)
    level = view.signal_level(stereo)
    assert level.peak_dbfs == 0.0 and level.clipped and level.n_samples == 96_000
    want = view.signal_level(left).clipped_samples
    assert level.clipped_samples == want > 1000
    path = tmp_path / "stereo.wav"
    sf.write(path, stereo.astype(np.float32), 48_000, subtype="FLOAT")
    blocks = list(iter_native_blocks(path))
    assert all(b.shape[1] == 2 for b in blocks) and sum(len(b) for b in blocks) == 48_000
    from_file = view.signal_level(iter(blocks))
    assert from_file.clipped_samples == want and from_file.peak_dbfs == 0.0
    assert view.signal_level(iter([])).n_samples == 0


def test_clipping_is_said_in_every_answer_and_quiet_is_not_a_warning(tmp_path):
    """The web page alone said a recording was clipped, and warned "very quiet" below
    -30 dBFS on untouched corpus clips answered right (QA, stop 39): clipping is now a
    note of the decoder (so of every answer), counted on the samples as recorded."""
    import soundfile as sf

    from emovox.audio import ClipCounter, clip_note, load_audio

    v = voice(2.0, SR)
    sf.write(tmp_path / "clean.wav", v, SR, subtype="PCM_16")
    sf.write(tmp_path / "quiet.wav", v * 0.05, SR, subtype="PCM_16")  # peak -36.5 dBFS
    loud = np.clip(v * 10, -1, 1)
    sf.write(tmp_path / "loud.wav", np.stack([loud, v], 1), 48_000, subtype="PCM_16")
    assert load_audio(tmp_path / "clean.wav").notes == ()
    assert load_audio(tmp_path / "quiet.wav").notes == ()
    notes = load_audio(tmp_path / "loud.wav").notes
    n = ClipCounter()
    n.add(np.stack([loud, v], 1))
    assert n.share() == pytest.approx(n.clipped / len(v))  # the clipped channel's share,
    assert notes == (clip_note(str(tmp_path / "loud.wav"), n.clipped, n.share(), 2),)  # not
    assert "of its most clipped channel" in notes[0]  # half of it (re-check, stop 39)
    assert "the recording is clipped" in notes[0] and f"{n.clipped:,} samples" in notes[0]
    assert n.clipped == view.signal_level(np.stack([loud, v], 1)).clipped_samples > 0
    assert "(under 0.01%)" in clip_note("x", 3, 3e-6)
    # a float file over full scale is not clipped in the file (its answer was the
    # unclipped one; it is said over full scale: stop 53); 8-bit audio's positive full
    # scale is 127/128 (re-check, stop 39)
    sf.write(tmp_path / "over.wav", v * 4, SR, subtype="FLOAT")
    (over,) = load_audio(tmp_path / "over.wav").notes
    assert "goes over full scale" in over and "clipped" not in over
    sf.write(tmp_path / "u8.wav", loud, SR, subtype="PCM_U8")
    sf.write(tmp_path / "s16.wav", loud, SR, subtype="PCM_16")
    said = [next(x for x in load_audio(tmp_path / f).notes if "clipped" in x)
            for f in ("u8.wav", "s16.wav")]
    counts = [int(x.split("clipped: ")[1].split()[0].replace(",", "")) for x in said]
    assert counts[0] == pytest.approx(counts[1], rel=0.02)  # about the same (8 bits round)


# ------------------------------------------------------------------------------ prediction

PROBS = {lab: (0.65 if lab == "angry" else 0.05) for lab in LABELS}


def test_old_schema_ok_and_silent():
    ok = view.prediction_view({"label": "angry", "confidence": 0.65, "probabilities": PROBS,
                               "arousal": 0.5, "valence": -0.4, "silent": False})
    assert ok.status is view.Status.OK and ok.has_emotion and ok.label == "angry"
    assert ok.probabilities == PROBS and ok.arousal == 0.5 and ok.evidence == []
    silent = view.prediction_view({"label": "sad", "confidence": 0.4, "probabilities": PROBS,
                                   "arousal": -0.2, "valence": -0.1, "silent": True})
    assert silent.status is view.Status.NO_SPEECH and not silent.has_emotion
    assert silent.label is silent.probabilities is silent.arousal is silent.valence is None
    assert "no voice" in silent.reason


def test_new_schema_no_speech_uncertain_and_evidence():
    ns = view.prediction_view({"status": "no_speech", "reason": "only music was heard",
                               "label": None, "probabilities": None, "speech_seconds": 0.0,
                               "n_windows": 0})
    assert ns.status is view.Status.NO_SPEECH and ns.reason == "only music was heard"
    assert ns.probabilities is None and ns.arousal is None and not ns.has_emotion
    ev = [{"start": 0.0, "end": 3.0, "weight": 1.0, "label": "angry", "contribution": 0.2},
          {"start": 3.0, "end": 6.0, "weight": 1.0, "label": "sad", "contribution": 0.4},
          {"start": 6.0, "end": 9.0, "weight": 0.5, "label": "sad", "contribution": 0.0}]
    un = view.prediction_view({"status": "uncertain", "reason": "close call", "label": "sad",
                               "confidence": 0.31, "probabilities": PROBS, "arousal": 0.1,
                               "valence": 0.0, "speech_seconds": 8.5, "n_windows": 3,
                               "evidence": ev})
    assert un.status is view.Status.UNCERTAIN and un.has_emotion and un.reason == "close call"
    assert un.speech_seconds == 8.5 and un.n_windows == 3 and len(un.evidence) == 3
    spans = view.evidence_spans(un.evidence)
    assert [(s["start"], s["share"]) for s in spans] == [(0.0, 0.5), (3.0, 1.0)]  # 0 dropped
    assert view.prediction_view({"status": "strange", "label": "sad",
                                 "probabilities": PROBS}).status is view.Status.OK
    assert view.evidence_spans([{"start": 2, "end": 1, "contribution": 1}]) == []


# ------------------------------------------------------------------------------ timeline


def _segment(start, end, label="happy", conf=0.8):
    if label == "silence":
        return {"start": start, "end": end, "label": "silence", "confidence": 1.0,
                "probabilities": {}}
    return {"start": start, "end": end, "label": label, "confidence": conf,
            "probabilities": {lab: (conf if lab == label else 0.01) for lab in LABELS}}


def test_bands_tile_overlapping_windows_and_leave_silence_as_gaps():
    segs = [_segment(0, 3), _segment(1.5, 4.5, "sad"), _segment(3, 6, "silence"),
            _segment(6, 9, "angry"), _segment(7.5, 10.5, "angry", 0.4)]
    bands = view.timeline_bands(segs)
    assert [b.label for b in bands] == ["happy", "sad", "angry", "angry"]
    got = [x for b in bands for x in (b.start, b.end)]
    # the sad window is cut where the silent window 3-6 s starts
    assert got == pytest.approx([0, 2.25, 2.25, 3.0, 6, 8.25, 8.25, 10.5])
    assert all(a.end <= b.start for a, b in zip(bands, bands[1:], strict=False))
    assert (bands[1].window_start, bands[1].window_end) == (1.5, 4.5)
    assert bands[3].confidence == 0.4 and bands[3].probabilities["angry"] == 0.4
    gap = {"start": 4.5, "end": 6.0, "kind": "silence", "label": None, "probabilities": None}
    assert view.timeline_bands([gap]) == []


def test_timeline_support_weighs_seconds_by_probability():
    segs = [_segment(0, 2, "angry", 0.9), _segment(2, 3, "angry", 0.6), _segment(3, 5, "sad"),
            _segment(5, 6, "silence")]
    spans = view.timeline_support(view.timeline_bands(segs), "angry")
    assert [(s["start"], s["end"]) for s in spans] == [(0, 2), (2, 3), (3, 5)]
    assert [s["contribution"] for s in spans] == pytest.approx([1.8, 0.6, 0.02])
    assert [s["share"] for s in spans] == pytest.approx([1.0, 1 / 3, 0.02 / 1.8])
    assert all(s["label"] == "angry" for s in spans)


def test_timeline_summary_line_reads_the_real_summary():
    from emovox.serving.timeline import Segment, SegmentKind, Timeline

    p = {"angry": 0.4, "sad": 0.35, "calm": 0.25}
    segs = [Segment(0.0, 1.0, None, None, None, None, None, kind=SegmentKind.GAP),
            Segment(1.0, 4.0, "angry", 0.4, p, 0.5, -0.3, own=3.0),
            Segment(2.5, 5.5, "angry", 0.4, p, 0.5, -0.3, own=1.5)]
    summary = Timeline("x.wav", 5.5, 3.0, 1.5, segs).summary()  # what the app is given
    assert view.timeline_summary_line(summary, 3.0, 1.5) == (
        "Overall (mean probability over speech time): **angry** (uncertain) · "
        "2 windows of 3 s every 1.5 s · 4.5 s of speech · 1.0 s without")
    one = {"dominant": "sad", "status": "ok", "n_windows": 1, "speech_seconds": 9.25}
    assert view.timeline_summary_line(one, None, None) == (
        "Overall (mean probability over speech time): **sad** · 1 window · 9.2 s of speech")
    assert view.timeline_summary_line({}, 3, 1.5) == "Emotion timeline"


def test_ten_minute_timeline_bands_are_fast():
    segs = [_segment(i * 1.5, i * 1.5 + 3, LABELS[i % 8], 0.3 + 0.6 * (i % 5) / 4)
            for i in range(400)]
    t0 = time.perf_counter()
    bands = view.timeline_bands(segs)
    assert time.perf_counter() - t0 < 0.5
    assert len(bands) == 400 and bands[-1].end == pytest.approx(601.5)


# ------------------------------------------------------------------------------ errors


def test_limit_errors_tell_a_web_user_what_they_can_do():
    kw = dict(name="talk.wav", max_duration_s=600, max_upload_mb=25)
    long = view.web_error_message(
        AudioTooLong("talk.wav: is 700 s long, longer than the 600 s limit. Cut it into "
                     "shorter pieces (or raise the limit)."), "default", **kw)
    assert "600 s limit" in long and "Trim" in long and "raise" not in long
    assert "damaged" not in long
    cut = view.web_error_message(  # a cut MP3 whose header still claims 720 s (QA pass)
        AudioTooLong("cut.mp3: declares 720.00 s in its header (a damaged or cut file can "
                     "declare more than it holds), longer than the 600 s limit."), "d", **kw)
    assert "600 s limit" in cut and "cut or damaged, re-export it" in cut
    big = view.web_error_message(UploadTooLarge("x (or raise the limit)"), "default", **kw)
    assert "25 MB upload limit" in big and "shorter" in big and "raise" not in big
    assert view.web_error_message(NotAudio("talk.wav: not audio"), "default", **kw) == "default"


def test_a_microphone_recording_over_a_limit_is_told_to_record_a_shorter_take():
    """A recording of the page's own recorder over the size limit was told to "record it
    with the microphone button" (code review); an upload is told to trim or compress it."""
    kw = dict(name="talk.wav", max_duration_s=600, max_upload_mb=25)
    big = UploadTooLarge("x (or raise the limit)")
    upload = view.web_error_message(big, "d", **kw)
    assert "talk.wav is larger than the 25 MB upload limit" in upload
    assert "Trim" in upload and "compress" in upload and "emovox timeline" in upload
    assert "microphone" not in upload and "raise" not in upload
    take = view.web_error_message(big, "d", **kw, recorded=True)
    assert "microphone recording is larger than the 25 MB limit" in take
    assert "Record a shorter take" in take and "with the microphone" not in take
    assert "compress" not in take and "raise" not in take
    long = AudioTooLong("talk.wav: is 700 s long, longer than the 600 s limit.")
    take = view.web_error_message(long, "d", **kw, recorded=True)
    assert "600 s limit" in take and "Record a shorter take, of at most 600 s" in take
    assert "upload" not in take
    assert view.web_error_message(NotAudio("x"), "d", **kw, recorded=True) == "d"


def test_a_limit_made_shorter_by_many_channels_says_so_on_the_web(tmp_path):
    """QA stop 32: a 200 s 8-channel 96 kHz upload was told it was longer than 600 s."""
    from emovox.audio import load_audio
    from signals import write_clip

    path = write_clip(tmp_path / "ch8.wav", np.full((48000, 8), 0.1, np.float32), sr=96000)
    with pytest.raises(AudioTooLong) as info:
        load_audio(path, max_duration=1.0)
    assert info.value.mixdown == (8, 96000) and info.value.limit_s == pytest.approx(0.25)
    msg = view.web_error_message(info.value, "d", name="ch8.wav", max_duration_s=1.0,
                                 max_upload_mb=25)
    assert "8 channels at 96000 Hz: 0.25 s" in msg and "Mix it down" in msg
    stereo = write_clip(tmp_path / "hi.wav", np.full((115200, 2), 0.1, np.float32), sr=192000)
    with pytest.raises(AudioTooLong) as info:  # already stereo: the rate is what to lower
        load_audio(stereo, max_duration=1.0)
    assert "resample it to 48 kHz or less" in str(info.value)
    msg = view.web_error_message(info.value, "d", name="hi.wav", max_duration_s=1.0,
                                 max_upload_mb=25)
    assert "2 channels at 192000 Hz: 0.5 s" in msg and "Resample it to 48 kHz" in msg
    from emovox.audio import mixdown_advice

    assert mixdown_advice(8, 96000) == "mix it down to mono or stereo"
    assert "resample it to 48 kHz" in mixdown_advice(4, 192000)  # stereo at 192k: still long
    assert mixdown_advice(2, 192000).startswith("resample it to 48 kHz or less")
    plain = AudioTooLong("x: is 700 s long, longer than the 600 s limit.")
    assert plain.mixdown is None and "600 s limit of this app" in view.web_error_message(
        plain, "d", name="x", max_duration_s=600, max_upload_mb=25)


def test_a_constant_offset_is_not_loudness():
    """Faint speech (-50 dBFS) on a 0.1 offset showed peak and RMS near -20 dBFS and no
    'very quiet' warning (QA stop 30): the meter now measures about each channel's mean."""
    rng = np.random.default_rng(3)
    faint = 0.003 * rng.standard_normal(16_000)
    centred, offset = view.signal_level(faint), view.signal_level(faint + 0.1)
    assert offset.rms_dbfs == pytest.approx(centred.rms_dbfs, abs=0.01)
    assert offset.peak_dbfs == pytest.approx(centred.peak_dbfs, abs=0.1)
    assert offset.peak_dbfs < -35.0


# ------------------------------------------------------------------------------ model strings
# A model folder is data: its strings (name, corpus, labels, MODEL_CARD.md) were rendered as
# Markdown, so a crafted model.json could show remote images, links and formatting (review).

EVIL = ("![x](http://example.invalid/x.png) <img src=http://example.invalid/y.png> "
        "[click](javascript:alert(1)) **bold**")


def _html(markdown: str) -> str:
    """A CommonMark renderer's HTML, raw HTML allowed (the headline's case, the worst)."""
    markdown_it = pytest.importorskip("markdown_it")
    return markdown_it.MarkdownIt("commonmark", {"html": True}).enable("table").render(markdown)


#: U+2060 WORD JOINER, which breaks GFM's autolink literals and shows nothing
JOINER = "\u2060"


def _inert(html: str) -> bool:
    return not any(tag in html for tag in ("<img", "<a ", "<script", "<strong", "<em", "<h"))


@pytest.mark.parametrize("value", [EVIL, "# heading", ":red-badge[fake]", "a\n\n# b", "$x^2$",
                                   "`code` & <b>x</b>", "- item", "&lt;img&gt;", r"\[a](b)"])
def test_a_model_string_renders_as_its_text(value):
    import html
    import re

    out = _html(view.md_text(value))
    assert _inert(out) and out.count("<p>") == 1  # one paragraph: no block of its own
    shown = html.unescape(re.sub(r"<[^>]+>", "", out)).strip().replace(JOINER, "")
    assert shown == " ".join(value.split())  # exactly its text (line breaks as spaces)
    assert ":red-badge[" not in view.md_text(value)  # Streamlit's directives: escaped too
    headline = _html(f'## <span style="color:#fff">{view.md_text(value)}</span>')
    assert headline.count("<span") == 1 and "<img" not in headline and "<a " not in headline


def test_a_code_span_from_a_model_folder_cannot_be_left():
    out = _html(f"protocol {view.md_code('emobox` ' + EVIL + ' `')}, the first")
    assert out.count("<code>") == 1 and "<img" not in out and "<a " not in out
    assert out.strip().endswith("</code>, the first</p>")


def test_a_card_keeps_its_markdown_but_loads_and_links_nothing():
    from importlib.resources import files

    for bundled in ("default_model", "ravdess_model"):  # ours: rendered exactly as written
        card = (files("emovox.data") / bundled / "MODEL_CARD.md").read_text()
        assert _html(view.card_markdown(card)) == _html(card)  # ("&" is written "&amp;")
    crafted = (f"# Card\n\n{EVIL}\n\n:red[fake] <script>alert(1)</script> $\\href{{x}}{{y}}$\n\n"
               "[ref]: http://example.invalid/r\n\n| a | b |\n|---|---|\n| 1 | 2 |\n")
    out = _html(view.card_markdown(crafted))
    assert "<img" not in out and "<a " not in out and "<script" not in out
    assert "<h1>Card</h1>" in out and "<table>" in out  # the card's own Markdown stays
    assert "![x](http://example.invalid/x.png)" in out.replace(JOINER, "")  # shown as text
    assert r":red\[fake\]" in view.card_markdown(crafted) and r"\$" in view.card_markdown(crafted)


def test_model_labels_in_markdown_lines_are_text():
    from emovox.web.adapted import change_line

    for line, bold in ((view.timeline_summary_line({"dominant": EVIL}, None, None), 1),
                       (change_line("sad", 0.5, EVIL, 0.6), 2)):
        out = _html(line)  # the line's own bold label(s), nothing of the label's
        assert out.count("<strong>") == bold and "<img" not in out and "<a " not in out
        assert "**bold**" in out


# ------------------------------------------------------------------ GFM autolink literals
# Streamlit renders with remark-gfm, whose autolink literals are found in the text after
# backslash escapes are resolved: an escaped https://... still became a link (code review).
# markdown-it's CommonMark never autolinks, so GFM's patterns are applied to its text.

GFM_AUTOLINKS = [re.compile(r"www\.", re.IGNORECASE), re.compile(r"https?://", re.IGNORECASE),
                 re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")]
URLS = ["https://evil.example/login", "HTTP://EVIL.EXAMPLE", "www.evil.example/x",
        "WWW.evil.example", "name@host.tld", "mailto:me@evil.example", "x <https://a.b> y",
        "https\\://a.b", "ftp://a.b www.c.d e@f.gh", "https\u2060://joined.example", EVIL]


def _text(html_out: str) -> str:
    """The text GFM would look for autolinks in: the HTML's, code left out (never linked)."""
    import html

    no_code = re.sub(r"<code[^>]*>.*?</code>", " ", html_out, flags=re.DOTALL)
    return html.unescape(re.sub(r"<[^>]+>", " ", no_code))


def _autolinks(html_out: str) -> list[str]:
    return [m.group() for p in GFM_AUTOLINKS for m in p.finditer(_text(html_out))]


@pytest.mark.parametrize("value", URLS)
def test_a_model_string_shows_no_autolink_literal(value):
    out = _html(view.md_text(value))
    assert _autolinks(out) == []
    assert _autolinks(_html(f"## <span>{view.md_text(value)}</span>")) == []
    shown = " ".join(_text(out).replace(JOINER, "").split())
    assert shown == " ".join(value.replace(JOINER, "").split())  # the text, as it reads


def test_a_model_string_cannot_reverse_or_hide_its_text():
    import unicodedata

    value = "crnn\u202e\u2066gpj.exe\u200b\u200d\ufeff\U000e0041 https://a.b"
    text = view.md_text(value)
    assert [c for c in text if unicodedata.category(c) == "Cf"] == [JOINER]  # its own only
    assert _text(_html(text)).replace(JOINER, "").strip() == "crnngpj.exe https://a.b"


CARD = """# Model https://evil.example

Trained by me@evil.example, see www.evil.example and **https://bold.example**.

- a list item, http://list.example
> a quote, WWW.quote.example

| corpus | link |
|---|---|
| a | https://cell.example |

Run `curl https://code.example` or ``a ` www.code.example``.

```
pip install https://fenced.example/x.whl  # mail@fenced.example
```

    indented https://indented.example
"""


def test_a_card_links_no_bare_url_but_keeps_its_code():
    out = view.card_markdown(CARD)
    html_out = _html(out)
    assert _autolinks(html_out) == []
    assert out.replace(JOINER, "") == CARD  # shows the same
    code = re.findall(r"<code[^>]*>(.*?)</code>", html_out, flags=re.DOTALL)
    assert len(code) == 4 and not any(JOINER in c for c in code)  # code kept exactly
    assert "<h1>" in html_out and "<table>" in html_out and "<li>" in html_out


@pytest.mark.parametrize("card", [
    "| `a | http://x.example` |\n|---|---|",  # a table cell ends the code span
    "a `\n` http://x.example ` y `",  # a code span across lines
    "- a\n\n   ```\nx\n```\ncode\n```\nhttp://x.example\n```",  # a list item's fence
    "- a\n\n    http://x.example `b`",  # a list item's paragraph, not code
    "# h `\nhttp://x.example `y`",  # a heading ends its line
    "> `a\nb` http://x.example `c`",  # a lazy line
    "# h `\rhttp://x.example `y`",  # a lone CR ends a line
    "a `\n\u00a0\n` http://x.example ` y `",  # a line of U+00A0 is no blank line
])
def test_a_card_links_nothing_where_its_code_cannot_be_told(card):
    assert _autolinks(_html(view.card_markdown(card))) == []


def test_random_cards_link_nothing_outside_their_code():
    import random

    pieces = ["```", "~~~", "  ```", "- ```", "> ```", "~~~ `i`", "- a", "1. a", "> q", "a `",
              "` b", "``", "    x http://e.x", "  y www.e.x", "http://e.x `y` a@e.x",
              "| a | `b |", "|---|---|", "# h `", "---", "\t`c", "text", "", "-", "1.",
              "&#104;ttp://e.x", "www&#46;e.x `&#64;`", "a&#64;e.x", "  &#x68;ttps&#58;//e.x"]
    rng = random.Random(0)
    for _ in range(1500):
        card = "\n".join(rng.choice(pieces) for _ in range(rng.randint(1, 8)))
        assert _autolinks(_html(view.card_markdown(card))) == [], card


# A character reference is resolved in the text GFM looks for autolinks in: "&#104;ttps://"
# is "https://" there, past the joiner that went in before ":" only (code review).
REFERENCES = ["see &#104;ttps://evil.example/x", "see www&#46;evil.example",
              "mail me&#64;evil.example", "&#x68;ttp&#58;//evil.example", "&#87;WW.e.x"]


@pytest.mark.parametrize("value", REFERENCES)
def test_a_character_reference_spells_no_autolink(value):
    for out in (_html(view.card_markdown(value)), _html(view.md_text(value))):
        assert _autolinks(out) == [], out
        assert _text(out).replace(JOINER, "").strip() == value  # shown as written
    card = f"# h {value}\n\n- {value}\n\n| a |\n|---|\n| {value} |\n\n> {value} `{value}`"
    out = _html(view.card_markdown(card))
    assert _autolinks(out) == [] and f"<code>{value.replace('&', '&amp;')}</code>" in out


@pytest.mark.parametrize("marker", ["-", "*", "+", "1.", "2)"])
def test_an_item_whose_marker_ends_its_line_holds_a_paragraph_not_code(marker):
    pad = " " * (len(marker) + 1)  # the item's content column: the URL's paragraph is its
    card = f"{marker}\n{pad}see\n\n{pad}  https://evil.example/login"
    assert "<p>https://evil.example/login</p>" in _html(card)  # a paragraph, GFM links it
    assert _autolinks(_html(view.card_markdown(card))) == []


def test_a_lone_surrogate_from_model_json_becomes_a_replacement_character():
    import json

    from emovox.serving.service import cv_title

    value = json.loads('"crnn \\ud800 x"')  # json.loads accepts it; UTF-8 (protobuf) cannot
    for text in (view.md_text(value), view.md_code(value), cv_title({"protocol": value})):
        assert "\ufffd" in text and text.encode("utf-8")


def test_the_cv_title_shows_its_protocol_on_one_line_as_it_reads():
    import unicodedata

    from emovox.serving.service import cv_title

    title = cv_title({"protocol": "emo\u202ebox\u200b\u2066 ` **x**\n# y"})
    assert not [c for c in title if unicodedata.category(c) in ("Cf", "Cs", "Cc")]
    out = _html(title)
    assert out.count("<code>") == 1 and "<strong>" not in out and "<h1>" not in out
    assert "<code>emobox ' **x** # y</code>" in out


def test_a_file_name_is_text_not_markdown():
    """``# __big__ take.mp3`` was a heading with bold letters and ``1. _quiet_ room.wav`` a
    list item in italics (web review, stop 52); a plain name stays as it is."""
    assert view.md_name("clip 03-01.wav") == "clip 03-01.wav"
    for name in ("# __big__ take.mp3", "1. _quiet_ room.wav", "a:red[b].wav", "- x.wav",
                 "see www.x.org.wav", "<b>.wav"):
        safe = view.md_name(name)
        assert safe != name and not re.search(r"(?<!\\)[#_\[\]]", safe.replace("&lt;", ""))
    msg = "`emovox timeline FILE`: # __big__ take.mp3 is longer; # __big__ take.mp3 again"
    out = view.md_named(msg, "# __big__ take.mp3", "")
    assert out.startswith("`emovox timeline FILE`: ") and out.count(view.md_text(
        "# __big__ take.mp3")) == 2  # the message's own Markdown is kept


def test_a_name_in_a_command_to_copy_is_left_as_it_is():
    """md_named escaped a name inside inline code too: the ffmpeg command to copy showed
    ``rec\\_01\\.raw`` (review, stop 52)."""
    msg = "rec_01.raw: no header. Convert it: `ffmpeg -f s16le -i rec_01.raw out.wav`."
    out = view.md_named(msg, "rec_01.raw")
    assert out.startswith(view.md_text("rec_01.raw") + ": no header")
    assert out.endswith("`ffmpeg -f s16le -i rec_01.raw out.wav`.")
    assert view.md_named("a `b` c", "plain.wav") == "a `b` c"
    from emovox.serving.service import display_name

    raw = "__big__ [take] ~~x~~.wav"  # a reference's message names it as display_name does
    said = f"reference clip skipped: {display_name(raw)}: no speech (silence)"
    assert display_name(raw) != raw and "\\_\\_big" in view.md_named(said, raw, display_name(raw))
