"""The serving layer without a server: window slicing, the service helpers (settings,
confidence levels, errors -> HTTP, scrubbed messages), loopback checks and what serving may
import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emovox.errors import (
    AudioTooLong,
    ConfigError,
    DamagedAudio,
    EmptyAudio,
    NotAudio,
    UnsupportedCodec,
)
from emovox.serving import service as logic

SR = 16000
ROOT = Path(__file__).resolve().parents[2]


def test_windows_match_a_direct_slicing():
    from emovox.serving.timeline import iter_windows

    rng = np.random.default_rng(0)
    x = np.arange(1000, dtype=np.float32)
    for win, hop, min_last in [(100, 50, 30), (100, 370, 30), (100, 100, 1), (2000, 10, 500),
                               (64, 250, 20), (999, 1, 1)]:
        expected, pos, covered = [], 0, 0
        while pos + win <= len(x):
            expected.append((pos, x[pos : pos + win]))
            covered, pos = pos + win, pos + hop
        if pos < len(x) and (len(x) - covered >= min_last or covered == 0):
            expected.append((pos, x[pos:]))
        for _ in range(5):
            cuts = np.sort(rng.choice(np.arange(1, len(x)), size=rng.integers(0, 8),
                                      replace=False))
            blocks = ((0.0, b) for b in np.split(x, cuts))
            got = list(iter_windows(blocks, win, hop, min_last))
            assert [s for s, _ in got] == [s for s, _ in expected], (win, hop, cuts)
            for (_, a), (_, b) in zip(got, expected, strict=True):
                np.testing.assert_array_equal(a, b)


def test_serving_imports_no_heavy_or_upper_modules():
    """serving never imports torch/librosa at import time, nor api/web/cli/training; api and
    web never import each other."""
    code = (
        "import sys\n"
        "import emovox.serving.service, emovox.serving.batch, emovox.serving.timeline\n"
        "import emovox.serving.inputs, emovox.serving.params, emovox.serving.uploads\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'librosa', 'fastapi',"
        " 'streamlit') or m.startswith(('emovox.api', 'emovox.web', 'emovox.cli',"
        " 'emovox.training', 'emovox.experiment'))]\n"
        "assert not bad, bad\n"
        "import emovox.api.server\n"
        "assert not [m for m in sys.modules if m.startswith('emovox.web')]\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ,
                            "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")})
    assert r.returncode == 0, r.stderr
    web = Path(__file__).resolve().parents[2] / "src" / "emovox" / "web"
    for f in web.glob("*.py"):
        assert "emovox.api" not in f.read_text(), f


def test_service_scrubs_reprs():
    from emovox.errors import UnsupportedCodec
    from emovox.serving import service

    exc = UnsupportedCodec("a.wav: (libsndfile: Error opening <_io.BytesIO object at 0x7f00ab>: x)")
    assert service.user_message(exc) == "a.wav: (libsndfile: Error opening the upload: x)"
    import tempfile

    tmp = f"{tempfile.gettempdir()}/emovox-qm4o7r2k/input.m4a"  # ffmpeg's own copy (QA pass)
    exc = UnsupportedCodec(f"a.m4a: not decoded (ffmpeg: moov atom not found; file:{tmp}: "
                           f"Invalid data; {tmp}, again)")
    msg = service.user_message(exc)
    assert "emovox-" not in msg and tempfile.gettempdir() not in msg
    assert msg == ("a.m4a: not decoded (ffmpeg: moov atom not found; the upload: Invalid data; "
                   "the upload, again)")


def test_is_loopback():
    pytest.importorskip("fastapi")
    from emovox.api.server import is_loopback

    assert all(is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "[::1]", "127.1.2.3"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.4", "example.org", ""))


def test_bench_refuses_non_loopback():
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import load_api
    finally:
        sys.path.pop(0)
    load_api.require_loopback("http://127.0.0.1:1")
    with pytest.raises(SystemExit, match="not a loopback"):
        load_api.require_loopback("http://10.11.12.13:8000")


def test_settings_from_env():
    s = logic.Settings.from_env({})
    assert s == logic.Settings(None, 25.0, 600.0, "auto")
    assert s.max_bytes == 25 * 1024 * 1024
    s = logic.Settings.from_env({"EMOVOX_MODEL": "/m", "EMOVOX_MAX_UPLOAD_MB": "2.5",
                                 "EMOVOX_MAX_DURATION_S": "30", "EMOVOX_BACKEND": "onnx"})
    assert s == logic.Settings(Path("/m"), 2.5, 30.0, "onnx")
    assert logic.Settings.from_env(s.to_env()) == s
    assert logic.Settings.from_env(logic.Settings().to_env()) == logic.Settings()
    for bad in ({"EMOVOX_MAX_UPLOAD_MB": "lots"}, {"EMOVOX_MAX_DURATION_S": "-1"},
                {"EMOVOX_MAX_UPLOAD_MB": "nan"}, {"EMOVOX_BACKEND": "tpu"},
                {"EMOVOX_MAX_UPLOAD_MB": "0.0001"}):  # under serve's floor (stop 37)
        with pytest.raises(ConfigError):
            logic.Settings.from_env(bad)


def test_settings_api_key_is_read_but_never_passed_on():
    s = logic.Settings.from_env({"EMOVOX_API_KEY": " k3y "})
    assert s.api_key == "k3y" and "k3y" not in repr(s)
    assert "EMOVOX_API_KEY" not in s.to_env() and "k3y" not in s.to_env().values()
    assert logic.Settings.from_env({}).api_key is None
    with pytest.raises(ConfigError, match="EMOVOX_API_KEY is empty"):  # stop 37: it served
        logic.Settings.from_env({"EMOVOX_API_KEY": ""})  # without a key, without a word
    with pytest.raises(ConfigError, match="EMOVOX_API_KEY is blank"):  # API QA, stop 35:
        logic.Settings.from_env({"EMOVOX_API_KEY": "  "})  # it locked every client out


def test_a_size_just_over_the_limit_is_not_said_to_equal_it():
    """"is 25 MB, larger than the 25 MB upload limit" (API QA, stop 35): bytes then."""
    limit = 25 * 2**20
    with pytest.raises(logic.UploadTooLarge, match=r"x.wav: is 26,214,402 bytes, larger than "
                       r"the 25 MB \(26,214,400 bytes\) upload limit"):
        logic.check_size(limit + 2, limit, "x.wav")


def test_references_just_over_the_limit_are_said_in_bytes():
    from emovox.serving.adapt_uploads import check_references

    with pytest.raises(logic.UploadTooLarge, match=r"the 2 reference clips together are "
                       r"1,048,578 bytes, larger than the 1 MB \(1,048,576 bytes\)"):
        check_references([524_289, 524_289], max_bytes=2**20)


def test_a_request_whose_client_has_gone_is_not_computed():
    """Abandoned uploads were decoded and predicted in turn, delaying everyone behind them
    (six 10-minute uploads: a 4 s clip waited 11.7 s; API QA, stop 35)."""
    import asyncio

    from emovox.api.errors import ApiError
    from emovox.api.server import _Service

    class Gone:
        async def is_disconnected(self) -> bool:
            return True

    class There(Gone):
        async def is_disconnected(self) -> bool:
            return False

    svc = _Service(None, 1, 1000, 10.0)
    ran = []
    with pytest.raises(ApiError) as err:
        asyncio.run(svc.run(Gone(), "predict", lambda: ran.append(1)))
    assert err.value.status == 499 and ran == []
    assert asyncio.run(svc.run(There(), "predict", lambda: 42)) == 42


def test_confidence_levels_and_helpers():
    assert [logic.confidence_level(c).name for c in (0.95, 0.70, 0.6999, 0.50, 0.4999, 0.1)] == [
        "high", "high", "medium", "medium", "low", "low"]
    assert logic.confidence_level(0.8).colour == "green"
    assert logic.confidence_level(0.6).colour == "orange"
    assert logic.confidence_level(0.2).colour == "red"
    logic.check_size(100, 100)
    with pytest.raises(logic.UploadTooLarge, match="x.wav: is 2 MB, larger than the 1 MB"):
        logic.check_size(2 * 1024 * 1024, 1024 * 1024, "x.wav")
    assert logic.safe_suffix("Clip.WAV") == ".wav"
    assert logic.safe_suffix("../../etc/passwd") == ".bin"
    assert logic.safe_suffix("a.tar.gz;rm -rf") == ".bin"
    assert logic.display_name("C:\\Users\\me\\x.m4a") == "x.m4a"
    assert logic.display_name("../../etc/passwd") == "passwd"
    assert logic.display_name("") == "upload"
    assert logic.display_name("Tom's take #2 & 100% (final)!.wav") == \
        "Tom's take #2 & 100% (final)!.wav"  # kept since stop 40 (API QA)
    assert logic.display_name('my "best" [x](y) <b>*.wav') == "my _best_ _x_(y) _b__.wav"
    assert logic.mime_type("a.mp3") == "audio/mpeg" and logic.mime_type("a.m4a") == "audio/mp4"
    assert logic.mime_type("a.OPUS") == "audio/ogg" and logic.mime_type("b.webm") == "audio/webm"
    assert logic.mime_type("c.aiff") == "audio/aiff" and logic.mime_type("d.xyz") == "audio/wav"
    assert logic.http_status(logic.UploadTooLarge("x")) == (413, "upload_too_large")
    assert logic.http_status(NotAudio("x"))[0] == 415
    assert logic.http_status(UnsupportedCodec("x"))[0] == 415
    assert logic.http_status(AudioTooLong("x")) == (422, "audio_too_long")
    assert logic.http_status(EmptyAudio("x")) == (422, "bad_audio")
    assert logic.http_status(DamagedAudio("x")) == (422, "bad_audio")  # not a codec problem
    assert logic.http_status(KeyError("x")) == (500, "internal_error")
    assert "Traceback" not in logic.user_message(KeyError("secret"))
    assert "secret" not in logic.user_message(KeyError("secret"))
    t, lo, hi = logic.waveform_envelope(np.sin(np.arange(50_000)).astype(np.float32), SR, 100)
    assert len(t) == len(lo) == len(hi) <= 100 and (lo <= hi).all()



class _FakePredictor:
    """Anything build_timeline needs: labels, span_probabilities, affect."""

    labels = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")

    def __init__(self) -> None:
        self.windows: list[int] = []

    def span_probabilities(self, waves):
        self.windows += [len(w) for w in waves]
        p = np.full((len(waves), 8), 0.02)
        p[:, 4] = 0.86
        return p

    def affect(self, p):
        return 0.5, -0.5


@pytest.fixture
def held(monkeypatch) -> list[int]:
    """The samples the timeline's speech stream holds after each block it reads."""
    from emovox.serving.stream import SpeechStream

    seen: list[int] = []
    push = SpeechStream.push

    def spy(self, block, final=False):
        push(self, block, final)
        seen.append(len(self.buf))

    monkeypatch.setattr(SpeechStream, "push", spy)
    return seen


def test_timeline_streams_speech_windows_with_bounded_memory(tmp_path, held):
    """120 s: 2 s voice bursts with 2 s of silence between, read in 5 s blocks: one gap per
    pause, windows only over the voice, the tail covered, and the buffer never holds more
    than a block plus the open speech region."""
    import soundfile as sf

    from emovox.serving import timeline as tlmod
    from signals import voice

    unit = np.concatenate([voice(2.0), np.zeros(2 * SR, np.float32)])
    path = tmp_path / "long.wav"
    sf.write(path, np.tile(unit, 30), SR, subtype="PCM_16")
    fake = _FakePredictor()
    tl = tlmod.build_timeline(fake, path, window=3.0, hop=1.5, block_s=5.0)
    assert max(held) <= 9 * SR  # a 5 s block + a 2 s region + context, never the file
    speech, gaps = tl.speech, [s for s in tl.segments if s.silent]
    assert len(speech) == 30 and len(gaps) in (30, 31)  # one window per burst
    assert all(s.end - s.start <= 2.3 for s in speech) and max(fake.windows) <= 2.3 * SR
    summ = tl.summary()
    assert summ["dominant"] == "angry" and summ["share"] == {"angry": 1.0}
    assert 55.0 < summ["speech_seconds"] < 65.0 and summ["n_windows"] == 30
    assert tl.segments[-1].end == pytest.approx(120.0)
    assert all(a.end <= b.start + 1e-9 for a, b in zip(tl.segments, tl.segments[1:],
                                                      strict=False))


def test_talk_without_a_pause_is_classified_in_bounded_chunks(held):
    """150 s of talk whose syllables never pause for 0.5 s: one speech region as long as
    the recording. It was held whole until it closed (64 kB a second, without limit); now
    every :data:`MAX_OPEN_REGION_S` of it is classified and dropped, each chunk ending at
    the end of a window and the next starting there: no hole, nothing classified twice."""
    import io

    import soundfile as sf

    from emovox.serving import timeline as tlmod
    from signals import talk

    x = talk(150.0, seed=3)
    buf = io.BytesIO()
    sf.write(buf, x, SR, format="WAV", subtype="FLOAT")
    fake = _FakePredictor()
    tl = tlmod.build_timeline(fake, buf.getvalue(), window=3.0, hop=1.5, block_s=10.0)
    limit = tlmod.MAX_OPEN_REGION_S + 10.0 + 3.0  # a chunk, a block, a window's margin
    assert max(held) <= limit * SR < 0.6 * len(x)
    speech = tl.speech
    assert speech[0].start < 0.5 and speech[-1].end > 149.0
    for a, b in zip(speech, speech[1:-1], strict=False):  # hop on, or a chunk edge; the last
        # window is aligned to the region's end
        assert b.start - a.start == pytest.approx(1.5, abs=1e-3) or b.start == pytest.approx(
            a.end, abs=1e-3), (a.start, a.end, b.start)
    edges = [b.start for a, b in zip(speech, speech[1:], strict=False)
             if b.start == pytest.approx(a.end, abs=1e-3)]
    assert len(edges) == 2  # two chunks cut at 60-70 s and 120-130 s, the third closed
    assert all(s.end - s.start == pytest.approx(3.0, abs=1e-3) for s in speech)
    assert all(g.end < 0.5 or g.start > 149.0 for g in tl.segments if g.silent)  # no hole
    assert tl.summary()["speech_seconds"] == pytest.approx(speech[-1].end - speech[0].start,
                                                           abs=0.01)


def test_a_beep_at_a_chunk_cut_is_bridged_as_inside_a_region(monkeypatch):
    """A 0.36 s beep centred where non-stop talk is cut into chunks: the steady stretch is
    taken out and bridged to the talk on both sides, as anywhere inside a region; it left a
    gap of up to 0.27 s before the cut, and the last windows moved off the grid (code
    review, stop 45)."""
    import io

    import soundfile as sf

    from emovox.serving import timeline as tlmod
    from signals import sine, talk

    cuts: list[float] = []
    chunk_end = tlmod._chunk_end

    def spy(*args):
        cut = chunk_end(*args)
        if cut is not None:
            cuts.append(cut)
        return cut

    monkeypatch.setattr(tlmod, "_chunk_end", spy)

    def run(x):
        buf = io.BytesIO()
        sf.write(buf, x, SR, format="WAV", subtype="FLOAT")
        return tlmod.build_timeline(_FakePredictor(), buf.getvalue(), window=3.0, hop=1.5,
                                    block_s=10.0)

    x = talk(80.0, seed=3)
    run(x)
    a, b = int((cuts[0] - 0.18) * SR), int((cuts[0] + 0.18) * SR)
    x[a:b] = sine(1000.0, (b - a) / SR, amp=0.3)
    tl = run(x)
    assert [(g.start, g.end) for g in tl.segments if g.silent and 1.0 < g.end < 79.0] == []
    assert [s.end for s in tl.speech if s.end <= cuts[0] + 1e-6][-1] == pytest.approx(cuts[0])


def test_a_region_is_cut_at_the_end_of_a_window_on_its_grid():
    assert tlmod_chunk_end(10.0, 69.0) is None  # open for 59 s: held
    cut = tlmod_chunk_end(10.0, 75.2)  # windows 3 s every 1.5 s from 10 s: the last whole
    assert cut == pytest.approx(10.0 + 38 * 1.5 + 3.0)  # one ending by 75.2 - 3.75 s: 70 s
    assert tlmod_chunk_end(0.01, 61.0) == pytest.approx(0.01 + 36 * 1.5 + 3.0)
    for horizon in np.arange(70.01, 80.0, 0.07):  # a window and a half-hop stay held
        assert horizon - tlmod_chunk_end(10.0, horizon) >= 3.0 + 0.75 - 1e-9


@pytest.mark.parametrize("end_s", [69.27, 70.0])
def test_talk_closing_just_after_a_cut_keeps_whole_windows(monkeypatch, end_s):
    """Talk without a pause that stops just after where a cut would fall (at 69.09 s with 10 s
    blocks, the grid from the talk's start at 0.09 s): the piece after the cut was 0.2-0.9 s,
    dropped as too short (69.27 s: the timeline's speech ended at 69.09) or classified alone
    as one short window (70 s: 69.09-69.98). Now the timeline is what it is when the region
    is classified whole, but for the grid restarting at the cut: every window 3 s, the last
    ending where the talk does, the same seconds of speech (code review, stop 45)."""
    import io

    import soundfile as sf

    from emovox.serving import timeline as tlmod
    from signals import talk

    buf = io.BytesIO()
    sf.write(buf, talk(end_s, seed=3), SR, format="WAV", subtype="FLOAT")
    runs = {}
    for limit in (tlmod.MAX_OPEN_REGION_S, 1e9):  # chunked, and held whole
        monkeypatch.setattr(tlmod, "MAX_OPEN_REGION_S", limit)
        runs[limit] = tlmod.build_timeline(_FakePredictor(), buf.getvalue(), window=3.0,
                                           hop=1.5, block_s=10.0)
    chunked, whole = runs.values()
    assert [s.end - s.start for s in chunked.speech] == pytest.approx(
        [3.0] * len(chunked.speech), abs=1e-3)
    assert chunked.speech[-1].end == pytest.approx(whole.speech[-1].end, abs=1e-3)
    assert chunked.summary()["speech_seconds"] == pytest.approx(
        whole.summary()["speech_seconds"], abs=0.01)


def tlmod_chunk_end(start: float, horizon: float) -> float | None:
    from emovox.serving.timeline import _chunk_end

    return _chunk_end(start, horizon, 3.0, 1.5, SR)


def test_timeline_keeps_speech_whose_region_reaches_back_when_the_floor_falls():
    """A loud machine for 62 s (loud talk at 30 s over it), then quieter talk from 61.3 s:
    once the machine stops, the floor over everything read falls and the talk's region
    starts inside the machine's stretch, before what was already classified or dropped.
    That region was skipped whole (no window after 33 s: a QA review, stop 42)."""
    import io

    import soundfile as sf

    from emovox.serving import timeline as tlmod
    from signals import talk

    rng = np.random.default_rng(0)
    x = rng.standard_normal(130 * SR).astype(np.float32) * 3e-4
    x[: 62 * SR] = rng.standard_normal(62 * SR).astype(np.float32) * 0.05
    x[30 * SR : 33 * SR] += 3 * talk(3.0, seed=1)
    late = 0.5 * talk(4.0, seed=2)
    x[int(61.3 * SR) : int(61.3 * SR) + len(late)] += late
    buf = io.BytesIO()
    sf.write(buf, x, SR, format="WAV", subtype="FLOAT")
    tl = tlmod.build_timeline(_FakePredictor(), buf.getvalue())
    assert any(s.start < 31.0 and s.end > 32.0 for s in tl.speech)  # the loud talk
    assert any(s.start < 63.0 and s.end > 64.0 for s in tl.speech)  # the late talk
    starts = [s.start for s in tl.segments]
    assert starts == sorted(starts) and tl.dropped == {}


def test_batch_csv_of_an_older_version_is_upgraded_before_resuming(tmp_path):
    """A results.csv with the old columns (label `silence`, no status) is rewritten with the
    current header before new rows are appended, and its rows still count as done."""
    import csv

    from emovox.serving.batch import FIELDS, RowWriter, done_paths

    out = tmp_path / "r.csv"
    out.write_text("path,label,confidence,error\n/a.wav,angry,0.9,\n/b.wav,error,,broken\n")
    w = RowWriter(out)
    w.write({k: "" for k in FIELDS} | {"path": "/c.wav", "status": "no_speech"})
    w.close()
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == FIELDS and [r["path"] for r in rows] == ["/a.wav", "/b.wav",
                                                                      "/c.wav"]
    assert rows[0]["label"] == "angry" and rows[0]["status"] == ""
    assert done_paths(out) == {"/a.wav": "angry", "/b.wav": "error", "/c.wav": "no_speech"}


def test_the_model_page_names_each_cv_run_and_lists_the_further_ones():
    """A loco result is called leave-one-corpus-out, not 'test actors never heard'; the runs
    pooled into the calibration (``also``) are listed after it, ones without figures dropped."""
    emobox = {"protocol": "emobox", "summary": {"ua": {"mean": 61.3, "std": 4.7}}}
    cv = {"protocol": "loco", "summary": {"ua": {"mean": 33.4, "std": 10.6}},
          "also": [emobox, {"protocol": "emobox"}, "not a run"]}
    assert logic.cv_title(cv).startswith("Leave-one-corpus-out")
    assert logic.cv_title(emobox).startswith("Speaker-independent cross-validation (protocol "
                                             "`emobox`")
    assert logic.further_cv(cv) == [emobox]
    assert logic.further_cv(emobox) == []
    assert logic.card_summary_rows(logic.further_cv(cv)[0]) == [
        {"metric": "UA (balanced accuracy)", "mean": 61.3, "std": 4.7}]
    edited = {"summary": {"ua": {"mean": "63.3%", "std": 1}, "wa": {"mean": 60, "std": "x"},
                          "macro_f1": [1]}}  # a hand-edited model.json broke the model page
    assert logic.card_summary_rows(edited) == [  # (code review, stop 47)
        {"metric": "WA (accuracy)", "mean": 60.0, "std": None}]


def test_upload_slots_bound_the_uploads_read_at_once():
    """The body was read before a concurrency slot was taken: 20 clients uploading at once
    took the server from 327 to 907 MB (API QA, stop 37). Only POSTs to the upload paths
    wait; the rest (health, docs) never do."""
    import asyncio

    from emovox.api.middleware import SPOOL_BYTES, UploadSlots, bound_multipart_memory

    inside, most = 0, 0

    async def app(scope, receive, send):
        nonlocal inside, most
        inside += 1
        most = max(most, inside)
        await asyncio.sleep(0.01)
        inside -= 1

    async def run() -> None:
        mw = UploadSlots(app, slots=2, paths=("/v1/predict",))
        post = {"type": "http", "method": "POST", "path": "/v1/predict"}
        await asyncio.gather(*(mw(post, None, None) for _ in range(7)))
        assert most == 2
        health = {"type": "http", "method": "GET", "path": "/health"}
        await asyncio.gather(*(mw(health, None, None) for _ in range(5)))
        assert most == 5  # not gated

    asyncio.run(run())
    from starlette.formparsers import MultiPartParser

    bound_multipart_memory()
    assert MultiPartParser.spool_max_size == SPOOL_BYTES == 64 * 1024


def test_a_stalled_upload_loses_its_slot_with_a_408():
    """Four clients that sent part of a body and then nothing held every slot, and every
    prediction waited for as long as they stayed (API QA, stop 40). A body that arrives
    in time, and a wait for a disconnect once it is in, are not cut."""
    import asyncio

    from starlette.exceptions import HTTPException

    from emovox.api.middleware import UploadSlots

    async def app(scope, receive, send):  # reads the whole body, then answers
        try:
            while (await receive()).get("more_body"):
                pass
        except HTTPException:  # what a handler's form parser would let through
            raise
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        await receive()  # then waits for the client to go (a disconnect check)

    def client(chunks, stall: bool):
        msgs = [{"type": "http.request", "body": b"x", "more_body": stall or i < chunks - 1}
                for i in range(chunks)]

        async def receive():
            if msgs:
                await asyncio.sleep(0.01)
                return msgs.pop(0)
            await asyncio.sleep(3600 if stall else 0.2)  # the rest never comes / a goodbye
            return {"type": "http.disconnect"}

        return receive

    async def run(stall: bool) -> list:
        sent: list = []

        async def send(msg):
            sent.append(msg)

        mw = UploadSlots(app, slots=1, paths=("/v1/predict",), idle_s=0.1)
        post = {"type": "http", "method": "POST", "path": "/v1/predict"}
        await asyncio.wait_for(mw(post, client(3, stall), send), 5)
        return sent

    stalled = asyncio.run(run(stall=True))
    assert stalled[0]["status"] == 408
    body = json.loads(b"".join(m.get("body", b"") for m in stalled[1:]))
    assert body == {"error": "upload_stalled", "detail": "the upload stalled: nothing of its "
                    "body arrived for 0.1 s, or it came slower than 32 KiB/s; send the "
                    "request again"}
    fine = asyncio.run(run(stall=False))
    assert fine[0]["status"] == 200 and fine[1]["body"] == b"ok"


def test_a_trickled_upload_loses_its_slot_and_a_root_path_changes_nothing():
    """A byte every 29 s never left 30 s of silence, so it kept its slot for ever (code
    review, stop 46); and behind ``--root-path`` the slots were off (the path compared
    whole). An upload at the average rate or faster keeps its slot."""
    import asyncio

    from emovox.api.middleware import UploadSlots, route_path

    async def app(scope, receive, send):
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    def client(gap: float, chunks: int):
        left = [chunks]

        async def receive():
            await asyncio.sleep(gap)
            left[0] -= 1
            return {"type": "http.request", "body": b"x", "more_body": left[0] > 0}

        return receive

    async def run(gap: float, chunks: int, scope: dict) -> tuple[int, float]:
        sent: list = []

        async def send(msg):
            sent.append(msg)

        mw = UploadSlots(app, slots=1, paths=("/v1/predict",), idle_s=0.1, min_rate=100)
        t0 = asyncio.get_running_loop().time()
        await asyncio.wait_for(mw({"type": "http", "method": "POST", **scope},
                                  client(gap, chunks), send), 5)
        return sent[0]["status"], asyncio.get_running_loop().time() - t0

    for scope in ({"path": "/v1/predict"}, {"path": "/api/v1/predict", "root_path": "/api"}):
        status, took = asyncio.run(run(0.05, 1000, scope))  # 20 B/s, never idle 0.1 s
        assert status == 408 and took < 0.5
        assert asyncio.run(run(0.005, 60, scope))[0] == 200  # 200 B/s: in time
    assert route_path({"path": "/api/health", "root_path": "/api/"}) == "/health"
    assert route_path({"path": "/apix/health", "root_path": "/api"}) == "/apix/health"
    assert route_path({"path": "/api", "root_path": "/api"}) == "/"


def test_a_wrong_query_parameter_is_refused_before_a_slot_and_the_body():
    """A wrong parameter was a 422 only once the request had its slot and its whole body
    was read (API QA, stop 40): now at once, nothing read, the app never called."""
    import asyncio

    from emovox.api.middleware import UploadSlots
    from emovox.api.query import upload_query_problem

    called, read = [], []

    async def app(scope, receive, send):
        called.append(scope["query_string"])

    async def receive():
        read.append(1)
        return {"type": "http.request", "body": b"", "more_body": False}

    async def run(path: str, query: bytes) -> list:
        sent: list = []

        async def send(msg):
            sent.append(msg)

        mw = UploadSlots(app, slots=1, paths=("/v1/predict", "/v1/timeline"),
                         precheck=upload_query_problem)
        await mw({"type": "http", "method": "POST", "path": path, "query_string": query},
                 receive, send)
        return sent

    for path, query, detail in (
            ("/v1/predict", b"window=3", "unknown query parameter(s) 'window': this endpoint "
             "reads none"),
            ("/v1/timeline", b"hop=1&hop=2", "query parameter(s) 'hop' given more than once: "
             "give each once"),
            ("/v1/timeline", b"window=0.01", None)):
        sent = asyncio.run(run(path, query))
        assert sent[0]["status"] == 422, (path, query)
        body = json.loads(sent[1]["body"])
        assert body["error"] == "invalid_request" and (detail is None or
                                                       body["detail"] == detail), body
    assert not called and not read
    assert asyncio.run(run("/v1/timeline", b"window=4&hop=1&adapt=self")) == [] and called


def test_a_request_cut_by_a_stopping_server_gets_a_json_503():
    """uvicorn cancels what is still open when a stopping server's grace period is over: the
    client got a text/plain 500 and the log a 70-line traceback for each (API re-check,
    stop 40). Not answered yet: a JSON 503, the task ends; answered in part: cancelled."""
    import asyncio

    from emovox.api.middleware import UploadSlots

    async def stuck(scope, receive, send):
        await asyncio.sleep(3600)

    async def half(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.sleep(3600)

    async def run(app) -> list:
        sent: list = []

        async def send(msg):
            sent.append(msg)

        async def receive():
            await asyncio.sleep(3600)

        mw = UploadSlots(app, slots=1, paths=("/v1/predict",))
        task = asyncio.ensure_future(mw({"type": "http", "method": "POST",
                                         "path": "/v1/predict"}, receive, send))
        await asyncio.sleep(0.05)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            sent.append("cancelled")
        return sent

    cut = asyncio.run(run(stuck))
    assert cut[0]["status"] == 503 and json.loads(cut[1]["body"]) == {
        "error": "shutting_down",
        "detail": "the server stopped before this request was answered; send it again"}
    assert asyncio.run(run(half))[-1] == "cancelled"


def test_timeline_table_hides_a_gap_that_rounds_to_nothing_and_marks_uncertain_windows(
        capsys, monkeypatch):
    """A 0.03 s gap showed as "0.0 0.0 no speech"; every speech window's status says what
    the table's "?" says (QA, stop 41)."""
    from rich.console import Console

    from emovox.cli import render
    from emovox.serving.timeline import Segment, SegmentKind, Timeline

    probs = dict.fromkeys(_FakePredictor.labels, 0.1)
    tl = Timeline("x.wav", 3.0, 3.0, 1.5, segments=[
        Segment(0.0, 0.03, None, None, None, None, None, SegmentKind.GAP),
        Segment(0.03, 1.5, "angry", 0.62, probs, 0.5, -0.4, SegmentKind.SPEECH, 1.47),
        Segment(1.5, 3.0, "sad", 0.41, probs, -0.2, -0.5, SegmentKind.SPEECH, 1.5)])
    assert [s.to_dict()["status"] for s in tl.segments] == [None, "ok", "uncertain"]
    monkeypatch.setattr(render, "console", Console(width=200, force_terminal=False))
    render.timeline(tl, "x.wav", 3.0, 1.5, "m")
    out = capsys.readouterr().out
    assert "no speech" not in out and "angry" in out and "sad ?" in out
    assert "0.0 s without" in out  # the summary still counts it
