"""`emovox timeline` in memory bounded by design, whatever the recording's length (code review,
stop 48): segments handed on as they settle (CSV rows written, the document's spooled to disk),
the summary read one segment at a time, and the speech detector's per-frame tonality and pitch
flags kept over a window; every output the same bytes as when all was kept."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from cli_io import invoke
from signals import SR, gated, sine, talk, voice, write_clip

LABELS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")


class _Varied:
    """A predictor whose answers vary with the window (so labels, shares and means differ)."""

    labels = LABELS
    model_id = "fake-model"

    def span_probabilities(self, waves):
        out = []
        for w in waves:
            w = np.asarray(w, np.float64)
            x = np.array([np.sqrt(np.mean(w * w)) * 40, len(w) / SR, float(np.mean(w[::97]))])
            z = np.sin(np.outer(np.arange(1, 9), [1.3, 0.7, 50.0]) @ x) * 2
            e = np.exp(z - z.max())
            out.append(e / e.sum())
        return np.array(out).reshape(-1, 8)

    def affect(self, p):
        return float(p[4] - p[1]), float(p[2] - p[3])


def _recording(seconds_of_talk: float = 70.0) -> np.ndarray:
    """Talk in bursts over a machine that stops (the noise floor falls), beeps 0.1 s on and
    off (their gaps are no speech), talk without a pause for longer than a chunk, silence."""
    rng = np.random.default_rng(1)
    bursts = np.concatenate([np.concatenate([voice(2.0), np.zeros(SR, np.float32)])] * 15)
    machine = bursts + 0.01 * rng.standard_normal(len(bursts)).astype(np.float32)
    beeps = gated(sine(1000.0, 4.0, amp=0.3), 0.1, 0.1)
    return np.concatenate([machine, np.zeros(2 * SR, np.float32), beeps, talk(3.0, seed=2),
                           np.zeros(SR, np.float32), talk(seconds_of_talk, seed=3),
                           np.zeros(3 * SR, np.float32), voice(4.0)]).astype(np.float32)


@pytest.fixture(scope="module")
def long_wav(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("tl") / "long.wav", _recording(), subtype="FLOAT")


def _streamed(path, **kw):
    """(timeline, segments handed on, progress calls before each)."""
    from emovox.serving.timeline import build_timeline

    got, calls = [], []
    tl = build_timeline(_Varied(), path, emit=lambda s: got.append((s, len(calls))),
                        progress=calls.append, **kw)
    return tl, [s for s, _ in got], [c for _, c in got], len(calls)


def test_segments_are_handed_on_as_they_settle_and_not_kept(long_wav):
    """They were all kept in the timeline to the end (760 bytes each: 3 GB for 10 h at
    --hop 0.06), then sorted and the gaps put in; now each leaves when it can no longer
    change, in order, with its gaps, the same segments as a timeline that keeps them."""
    from emovox.serving.timeline import build_timeline

    tl, segs, when, n_calls = _streamed(long_wav, block_s=10.0)
    whole = build_timeline(_Varied(), long_wav, block_s=10.0)
    assert tl.segments == [] and segs == whole.segments and len(segs) > 40
    assert when[0] <= 2 and sum(c < n_calls - 2 for c in when) > len(segs) / 2  # early on
    assert segs[0].start == 0.0 and segs[-1].end == pytest.approx(whole.duration)
    assert all(a.start <= b.start for a, b in zip(segs, segs[1:], strict=False))
    assert tl.summary(segs) == whole.summary() and tl.dropped == whole.dropped


def test_a_recording_with_too_little_speech_hands_on_no_window(tmp_path):
    """Windows wait until enough speech was flagged: with less in all the recording is
    too_short and they go, as when they were all kept (QA stop 30)."""
    x = np.zeros(6 * SR, np.float32)
    x[2 * SR : 2 * SR + 3200] = voice(0.2)
    path = write_clip(tmp_path / "blip.wav", x)
    tl, segs, _, _ = _streamed(path, block_s=2.0)
    assert [s.kind.value for s in segs] == ["gap"] and segs[0].end == pytest.approx(6.0)
    assert tl.summary(segs)["reason"] == "too_short"


def _timelines():
    from emovox.adaptation import Adaptation
    from emovox.serving.timeline_doc import Segment, SegmentKind, Timeline

    rng = np.random.default_rng(0)
    segs = []
    for i in range(40):
        if i % 7 == 3:
            segs.append(Segment(i * 1.1, i * 1.1 + 0.55, None, None, None, None, None,
                                SegmentKind.GAP))
            continue
        p = rng.dirichlet(np.ones(8))
        segs.append(Segment(i * 1.1 + 1 / 3, i * 1.1 + 3.0, LABELS[int(np.argmax(p))],
                            float(p.max()), dict(zip(LABELS, map(float, p), strict=True)),
                            float(p[4] - p[1]), float(p[2] - p[3]), SegmentKind.SPEECH,
                            float(rng.choice([1.5, 1 / 3, 0.7]))))
    yield Timeline("a \"quoted\"\nname é.wav", 47.123456, 3.0, 1.5, segs,
                   warnings=['x.wav: "segments": [] in a warning'])
    yield Timeline("b.wav", 5.0, 3.0, 1.5, segs[:3], {"unvoiced": 2},
                   adaptation=Adaptation(True, 30, "self"))
    yield Timeline("<bytes>", 0.0, 3.0, 1.5, [], loudest_db=-120.0)
    yield Timeline("gaps.wav", 9.0, 1.0, 0.25, [s for s in segs if s.silent], {"steady_sound": 1})


def test_the_document_is_written_a_segment_at_a_time_with_the_same_bytes():
    """``--json`` built its document whole, then one string of it (1 GB for 200,000
    segments); it is written a segment at a time now, read back from disk, byte for byte
    as json.dumps of the whole document, and so is the CSV row by row."""
    from emovox.serving.timeline_doc import (
        SegmentSpool,
        TimelineCsv,
        write_timeline_csv,
        write_timeline_json,
    )

    for tl in _timelines():
        want = json.dumps(tl.to_dict(model_id="m"), indent=2) + "\n"
        with SegmentSpool() as spool:
            for s in tl.segments:
                spool.add(s)
            got = io.StringIO()
            write_timeline_json(tl.__class__(**{**tl.__dict__, "segments": []}), got,
                                model_id="m", segments=spool)
            assert list(spool) == tl.segments  # read back as many times as asked
        assert got.getvalue() == want
        assert json.loads(got.getvalue())["summary"] == tl.summary()
        whole, rows = io.StringIO(), io.StringIO()
        write_timeline_csv(tl, whole)
        w = TimelineCsv(rows, tl.adaptation)
        for s in tl.segments:
            w.add(s)
        w.close()
        assert rows.getvalue() == whole.getvalue() and whole.getvalue().startswith("start,")


class _OnePass:
    """Segments that can only be read one at a time, from the start (no len, no index)."""

    def __init__(self, segs):
        self.segs, self.passes = segs, 0

    def __iter__(self):
        self.passes += 1
        yield from self.segs


def test_the_summary_reads_segments_one_at_a_time_to_the_same_bits():
    """The summary took a list (and listed the speech windows again); it now reads any
    segments twice (once without speech), in order, and its numbers are those of the list
    to the last bit."""
    for tl in _timelines():
        one = _OnePass(tl.segments)
        assert tl.summary(one) == tl.summary()
        assert one.passes == (2 if tl.speech else 1)


def test_the_speech_detector_keeps_a_window_of_tonality_and_pitch(long_wav, monkeypatch):
    """Its per-frame tonality and pitch flags were kept for the whole recording and smoothed
    again each block (175 MB of scratch per block after 10 h); now only from CONTEXT_S before
    the samples held, and the timeline is the same as with everything kept, with a context of
    3 s as well (what a flag depends on lies within 2 s)."""
    from emovox.serving import stream
    from emovox.serving.timeline import build_timeline

    seen: list[int] = []
    regions = stream.SpeechStream.regions

    def spy(self):
        out = regions(self)
        seen.append(len(out[1]))
        return out

    monkeypatch.setattr(stream.SpeechStream, "regions", spy)
    results, default = {}, getattr(stream, "CONTEXT_S", 30.0)
    for context in (1e9, default, 3.0):
        monkeypatch.setattr(stream, "CONTEXT_S", context, raising=False)
        seen.clear()
        tl = build_timeline(_Varied(), long_wav, block_s=10.0)
        results[context] = (tl.segments, tl.summary(), tl.dropped, tl.loudest_db, max(seen))
    n_frames = int(round(results[1e9][0][-1].end * 100))
    assert results[1e9][4] >= n_frames - 1  # everything kept: the whole recording
    limit = (3.0 + 60.0 + 10.0 + 2 * 3.0) * 100  # context, an open region, a block, windows
    assert results[3.0][4] < limit < n_frames
    assert results[default][:4] == results[3.0][:4] == results[1e9][:4]


def _invoke(args):
    return invoke(args)


def test_the_command_writes_csv_and_json_as_the_segments_settle(tmp_path, monkeypatch):
    """`emovox timeline --csv/--json` kept the whole timeline, then printed it; now it hands
    build_timeline somewhere to put each segment (the timeline keeps none) and prints the
    same bytes. The table still takes the whole timeline."""
    from emovox.serving import timeline as tl_mod
    from emovox.serving.predictor import Predictor
    from emovox.serving.timeline import write_timeline_csv

    path = write_clip(tmp_path / "talk.wav", np.concatenate(
        [talk(8.0, seed=5), np.zeros(2 * SR, np.float32), voice(5.0)]))
    monkeypatch.setattr(Predictor, "from_artifact", classmethod(lambda cls, *a, **k: _Varied()))
    real, kept = tl_mod.build_timeline, []

    def spy(*args, **kwargs):
        tl = real(*args, **kwargs)
        kept.append((kwargs.get("emit") is not None, len(tl.segments)))
        return tl

    monkeypatch.setattr(tl_mod, "build_timeline", spy)
    whole = real(_Varied(), path, block_s=60.0)
    csv_want = io.StringIO()
    write_timeline_csv(whole, csv_want)
    res_csv, res_json = _invoke(["timeline", path, "--csv"]), _invoke(["timeline", path, "--json"])
    assert res_csv.exit_code == 0 and res_json.exit_code == 0, res_csv.output + res_json.output
    assert res_csv.stdout == csv_want.getvalue() and "model fake-model" in res_csv.stderr
    assert res_json.stdout == json.dumps(whole.to_dict(model_id="fake-model"), indent=2) + "\n"
    assert _invoke(["timeline", path]).exit_code == 0
    assert kept == [(True, 0), (True, 0), (False, len(whole.segments))]
