"""Live input (:mod:`emovox.serving.live`): the ring buffer, raw PCM reading, one update per
hop whatever the block sizes, silence without the model, and the microphone's missing
dependency."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest

from cli_io import Trickle
from emovox.errors import ConfigError
from emovox.serving.live import (
    LiveInputError,
    LiveStatus,
    RingBuffer,
    Skipped,
    has_speech,
    iter_microphone,
    iter_pcm,
    listen,
    pcm_format_hint,
    stream_checked,
)
from signals import SR, noise, silence, voice


class FakePredictor:
    """Answers "angry" 0.9 for every window; records what it was given."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def predict_wave(self, wave, sr, *, source="<array>"):
        from types import SimpleNamespace

        self.calls.append(len(wave))
        return SimpleNamespace(label="angry", confidence=0.9, status="ok",
                               probabilities={"angry": 0.9, "sad": 0.1})


def chunks(x: np.ndarray, rng: np.random.Generator, most: int = 7000):
    i = 0
    while i < len(x):
        n = int(rng.integers(1, most))
        yield x[i : i + n]
        i += n


def test_ring_buffer_holds_the_last_samples_in_fixed_memory():
    rng = np.random.default_rng(0)
    ring = RingBuffer(1000)
    assert len(ring.latest()) == 0
    seen = np.zeros(0, np.float32)
    for block in chunks(rng.standard_normal(20000).astype(np.float32), rng, most=2500):
        ring.push(block)
        seen = np.concatenate([seen, block])
        np.testing.assert_array_equal(ring.latest(), seen[-1000:])
        assert ring.size == 1000
    with pytest.raises(ValueError):
        RingBuffer(0)




def test_iter_pcm_decodes_s16le_across_odd_reads(caplog):
    pcm = np.array([0, 1, -1, 32767, -32768, 1000, -1000], "<i2")
    data = pcm.tobytes() + b"\x01"  # and half a sample at the end
    out = np.concatenate(list(iter_pcm(Trickle(data, [3, 1, 5, 2]), block_s=0.001)))
    np.testing.assert_array_equal(out, pcm.astype(np.float32) / 32768.0)
    assert "middle of a sample" in caplog.text
    assert list(iter_pcm(io.BytesIO(b""))) == []


def test_one_update_per_hop_whatever_the_block_sizes():
    wave = voice(10.3)
    ends = {}
    for seed in (0, 1):
        pred = FakePredictor()
        ups = list(listen(pred, chunks(wave, np.random.default_rng(seed)), window=2.5, hop=1.0))
        ends[seed] = [u.end for u in ups]
        assert all(u.status is LiveStatus.OK and u.emotion == "angry" for u in ups)
        assert max(pred.calls) == int(2.5 * SR) and pred.calls[0] == SR  # one hop at first
        assert ups[0].start == 0.0 and ups[-1].start == pytest.approx(10.0 - 2.5)
    assert ends[0] == ends[1] == [float(k) for k in range(1, 11)]  # 0.3 s tail: no line
    tail = list(listen(FakePredictor(), [voice(10.6)], window=2.5, hop=1.0))
    assert [u.end for u in tail][-2:] == [10.0, 10.6]  # a tail of half a hop or more
    # a hop of no whole number of samples: the k-th answer at k hops, no drift (a step
    # rounded once, 1102 samples for 0.1 s at 11025 Hz, fell 0.045 s behind per 100 s and
    # printed 110.2 twice: a review, stop 47)
    odd = list(listen(FakePredictor(), chunks(np.zeros(11025 * 120, np.float32),
                                              np.random.default_rng(2)),
                      sr=11025, window=1.0, hop=0.1))
    assert len(odd) == 1200 and odd[-1].end == pytest.approx(120.0)
    assert all(abs(u.end - 0.1 * (k + 1)) < 1e-4 for k, u in enumerate(odd))


def test_silent_windows_are_no_speech_without_the_model():
    wave = np.concatenate([voice(3.0), silence(4.0), voice(3.0)])
    pred = FakePredictor()
    ups = list(listen(pred, [wave], window=2.0, hop=1.0))
    quiet = [u.end for u in ups if u.status is LiveStatus.NO_SPEECH]
    assert quiet == [5.0, 6.0, 7.0]  # windows [3,5], [4,6], [5,7] lie in the silence
    assert all(u.emotion is None and u.probabilities is None for u in ups if u.end in quiet)
    assert len(pred.calls) == 7
    d = ups[5].to_dict()
    assert d["status"] == "no_speech" and d["label"] is None and d["level_dbfs"] is None
    assert d["probabilities"] is None  # as in predict's documents
    assert not has_speech(silence(1.0), SR) and has_speech(voice(1.0), SR)


@pytest.mark.parametrize(("window", "hop"), [(2.0, 3.0), (2.0, 0.0), (0.1, 0.05), (2.0, -1)])
def test_bad_window_or_hop_is_refused_at_once(window, hop):
    with pytest.raises(ConfigError):
        listen(FakePredictor(), [], window=window, hop=hop)


def test_microphone_without_sounddevice_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # import fails
    with pytest.raises(LiveInputError, match=r"emovox\[live\].*emovox listen -"):
        iter_microphone()


def test_model_window_is_the_bundled_models_input_span():
    from emovox.serving.live import model_window_s
    from emovox.serving.predictor import Predictor

    assert model_window_s(Predictor.from_artifact(None)) == pytest.approx(2.56)


def test_a_stream_in_another_sample_format_is_warned_about(caplog):
    """float32 or big-endian samples read as s16le sound like noise and got emotions (QA,
    stop 30): the first 3 s are checked and a warning says how to convert."""
    v = np.concatenate([voice(1.5), 0.3 * voice(1.5, f0=120.0)])
    s16 = (v * 32767).astype("<i2")
    assert pcm_format_hint(s16) is None
    assert pcm_format_hint(np.zeros(20000, np.int16)) is None  # silence says nothing
    assert pcm_format_hint((noise(2.0, amp=0.3) * 32767).astype("<i2")) is None
    as_s16 = np.frombuffer(v.astype("<f4").tobytes(), "<i2")
    assert pcm_format_hint(as_s16) == "32-bit float"
    assert pcm_format_hint(s16.byteswap()) == "big-endian"
    with caplog.at_level("WARNING"):
        list(iter_pcm(io.BytesIO(v.astype("<f4").tobytes()), block_s=0.1))
    assert caplog.text.count("looks like 32-bit float samples") == 1 and "f32le" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        list(iter_pcm(io.BytesIO(s16.tobytes()), block_s=0.1))
    assert "looks like" not in caplog.text



def test_a_stream_that_opens_with_silence_is_still_checked(caplog):
    """Only a stream's first 3 s were checked: one that opened with silence (a call, a
    stream before anyone spoke) said nothing of the big-endian or float samples that
    followed (timeline/listen review, stop 52). Each 3 s piece of its first minute is, until
    one warns; a right one with silence first says nothing."""
    v = np.concatenate([voice(1.5), 0.3 * voice(1.5, f0=120.0)] * 2)
    s16 = (v * 32767).astype("<i2")
    quiet = np.zeros(int(4.5 * SR), "<i2")
    for body, said in ((s16.byteswap(), "big-endian"), (s16, None),
                       (np.frombuffer(v.astype("<f4").tobytes(), "<i2"), "32-bit float")):
        caplog.clear()
        with caplog.at_level("WARNING"):
            got = list(iter_pcm(io.BytesIO(np.concatenate([quiet, body]).tobytes()),
                                block_s=0.1))
        assert sum(len(b) for b in got) == len(quiet) + len(body)
        assert caplog.text.count("looks like") == (0 if said is None else 1), caplog.text
        assert said is None or f"looks like {said} samples" in caplog.text
    caplog.clear()
    late = np.concatenate([np.zeros(61 * SR, "<i2"), s16.byteswap()])  # after the minute
    with caplog.at_level("WARNING"):
        list(iter_pcm(io.BytesIO(late.tobytes()), block_s=0.5))
    assert "looks like" not in caplog.text


def test_a_faint_or_humming_stream_is_warned_about_once(caplog):
    """listen gave none of predict's faint and mains-hum warnings (stop 37's list): the
    stream's first 10 s are checked once, passing every block on unchanged."""
    t = np.arange(12 * SR) / SR
    speech = np.tile(voice(1.0), 12)
    hum = (speech + 0.05 * np.sin(2 * np.pi * 50 * t)).astype(np.float32)
    faint = (speech * 10 ** (-70 / 20)).astype(np.float32)
    for wave, said in ((speech, None), (hum, "mains hum at 50 Hz"),
                       (faint, "nothing louder than -60 dBFS in its first 10 s: if someone "
                               "spoke, the input is too faint")):
        blocks = [wave[i : i + 1600] for i in range(0, len(wave), 1600)]
        caplog.clear()
        with caplog.at_level("WARNING"):
            out = list(stream_checked(iter(blocks), SR, "stdin"))
        assert all(a is b for a, b in zip(out, blocks, strict=True))
        assert caplog.text.count("stdin: ") == (0 if said is None else 1)
        assert said is None or said in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):  # a stream that ends before 10 s: checked at its end
        list(stream_checked(iter([faint[: 3 * SR]]), SR, "stdin"))
    assert "stdin: nothing louder than -60 dBFS in its first 3 s" in caplog.text


def test_a_gap_moves_the_clock_on_and_starts_the_window_afresh(caplog):
    pred = FakePredictor()
    ups = list(listen(pred, [voice(3.0), Skipped(2 * SR), voice(3.0)], window=2.5, hop=1.0))
    assert [u.end for u in ups] == [1.0, 2.0, 3.0, 6.0, 7.0, 8.0]
    assert ups[3].start == 5.0 and pred.calls[3] == SR  # nothing from before the gap
    assert "2.0 s of audio skipped before 5.0 s" in caplog.text


class FakeStream:
    """sounddevice.InputStream whose callback the test drives by hand; a device that
    records at ``rates`` only (None: any), as PortAudio refuses a rate, when it opens."""

    last: FakeStream | None = None
    fail_start = False
    rates: set[int] | None = None
    default_rate = 48000.0  # query_devices(device, "input")["default_samplerate"]
    opened: list[int] = []  # the rates asked for, in order

    def __init__(self, *, samplerate, channels, dtype, device, blocksize, callback):
        FakeStream.opened.append(samplerate)
        if FakeStream.rates is not None and samplerate not in FakeStream.rates:
            raise RuntimeError("Error opening InputStream: Invalid sample rate "
                               "[PaErrorCode -9997]")
        self.callback, self.blocksize, self.closed = callback, blocksize, False
        self.samplerate = samplerate
        FakeStream.last = self

    def start(self):
        if FakeStream.fail_start:
            raise RuntimeError("Error starting stream: Device unavailable")

    def stop(self):
        pass

    def close(self):
        self.closed = True

    def deliver(self, k: int) -> None:
        self.callback(np.full((self.blocksize, 1), k, np.float32), self.blocksize, None, None)

    def deliver_wave(self, x: np.ndarray) -> None:
        self.callback(np.asarray(x, np.float32)[:, None], len(x), None, None)


def _query_devices(device=None, kind=None):
    return {"name": "fake", "default_samplerate": FakeStream.default_rate}


@pytest.fixture
def fake_sounddevice(monkeypatch):
    from types import SimpleNamespace

    FakeStream.fail_start, FakeStream.rates, FakeStream.opened = False, None, []
    FakeStream.default_rate = 48000.0
    monkeypatch.setitem(sys.modules, "sounddevice", SimpleNamespace(
        InputStream=FakeStream, query_devices=_query_devices))
    return FakeStream


def test_a_microphone_behind_skips_its_oldest_audio_and_says_where(fake_sounddevice):
    blocks = iter_microphone(sr=SR, block_s=0.1, keep_s=0.35, timeout_s=0.05)
    for k in range(120):  # 12 s queued while nothing was read: the queue holds 10 s
        fake_sounddevice.last.deliver(k)
    got = [next(blocks) for _ in range(5)]
    assert got[0] == Skipped(116 * 1600)  # the newest 0.35 s kept: blocks 116-119
    assert [int(b[0]) for b in got[1:]] == [116, 117, 118, 119]
    fake_sounddevice.last.deliver(120)
    assert int(next(blocks)[0]) == 120  # no gap: no Skipped
    with pytest.raises(LiveInputError, match="no audio for 0.05 s"):
        next(blocks)
    assert fake_sounddevice.last.closed


def test_a_microphone_that_cannot_start_is_a_clear_error(fake_sounddevice):
    fake_sounddevice.fail_start = True
    with pytest.raises(LiveInputError, match="cannot open the microphone: .*unavailable"):
        iter_microphone()


def _until_silent(blocks) -> list:
    """What ``blocks`` give until the fake device has sent nothing for their timeout."""
    got = []
    with pytest.raises(LiveInputError, match="no audio for"):
        for b in blocks:
            got.append(b)
    return got


def test_a_microphone_that_cannot_record_at_16_khz_is_resampled(fake_sounddevice, caplog):
    """A device that only records at 48 kHz (USB microphones, ALSA hw devices) was refused:
    it is opened at its default rate and its blocks resampled to the model's 16 kHz."""
    fake_sounddevice.rates = {48000}
    with caplog.at_level("INFO", logger="emovox.serving.mic"):
        blocks = iter_microphone(sr=SR, block_s=0.1, timeout_s=0.05)
    assert fake_sounddevice.opened == [SR, 48000]
    assert "records at 48000 Hz" in caplog.text and "resampled to 16000 Hz" in caplog.text
    dev = fake_sounddevice.last
    assert dev.samplerate == 48000 and dev.blocksize == 4800  # 0.1 s at the device's rate
    t = np.arange(3 * 48000) / 48000
    sine = (0.5 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
    for i in range(0, len(sine), 4800):
        dev.deliver_wave(sine[i : i + 4800])
    got = _until_silent(blocks)
    assert dev.closed and not any(isinstance(b, Skipped) for b in got)
    assert len(got) >= 25  # block by block, not all at the end
    out = np.concatenate(got)
    assert out.dtype == np.float32
    assert 3 * SR - 800 <= len(out) <= 3 * SR  # 3 s at 16 kHz, less the resampler's delay
    steady = out[800:]
    spectrum = np.abs(np.fft.rfft(steady * np.hanning(len(steady))))
    peak_hz = np.argmax(spectrum) * SR / len(steady)
    assert abs(peak_hz - 440.0) <= 5.0
    assert np.sqrt(np.mean(steady**2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.02)


def test_a_microphone_that_refuses_every_rate_names_them(fake_sounddevice):
    fake_sounddevice.rates, fake_sounddevice.default_rate = set(), 44100.0
    with pytest.raises(LiveInputError, match=r"cannot open the microphone: .*Invalid sample "
                       r"rate.* \(tried 16000, 44100 and 48000 Hz\)"):
        iter_microphone(sr=SR)
    assert fake_sounddevice.opened == [SR, 44100, 48000]


def test_a_gap_in_a_resampled_microphone_is_counted_at_the_models_rate(fake_sounddevice):
    """Blocks dropped at 48 kHz are a Skipped of 16 kHz samples (not 48 kHz ones, which
    would move listen's clock on three times too far), and the clock never drifts."""
    fake_sounddevice.rates = {48000}
    blocks = iter_microphone(sr=SR, block_s=0.1, keep_s=0.35, timeout_s=0.05)
    dev = fake_sounddevice.last
    for k in range(120):  # 12 s queued while nothing was read: the queue holds 10 s
        dev.deliver(k)
    got = [next(blocks) for _ in range(5)]
    assert got[0] == Skipped(116 * 1600)  # the newest 0.35 s kept: blocks 116-119
    assert all(isinstance(b, np.ndarray) for b in got[1:])
    assert np.median(got[1]) == pytest.approx(116, abs=0.5)
    assert np.median(got[-1]) == pytest.approx(119, abs=1)
    dev.deliver(120)
    got.append(next(blocks))  # no gap: no Skipped
    assert isinstance(got[-1], np.ndarray)
    for k in range(121, 241):  # behind again: blocks 237-240 kept
        dev.deliver(k)
    got += _until_silent(blocks)
    gaps = [i for i, b in enumerate(got) if isinstance(b, Skipped)]
    assert len(gaps) == 2
    before = got[: gaps[1]]  # given and skipped before the second gap: blocks 0-120
    told = sum(b.samples if isinstance(b, Skipped) else len(b) for b in before)
    assert told == 121 * 1600  # the resampler flushed at the gap: nothing lost
    assert got[gaps[1]] == Skipped((237 - 121) * 1600)
    after = np.concatenate(got[gaps[1] + 1 :])
    assert 4 * 1600 - 800 <= len(after) <= 4 * 1600
    assert np.median(after[: len(after) // 4]) == pytest.approx(237, abs=1)  # nothing of
    assert dev.closed  # block 120 joined to 237: a new resampler after the gap


def test_stereo_pcm_is_mixed_down_or_warned_about(caplog):
    left, right = voice(3.5), voice(3.5, f0=220.0)
    pcm = (np.stack([left, right], 1) * 16000).astype("<i2")
    mixed = np.concatenate(list(iter_pcm(io.BytesIO(pcm.tobytes()), channels=2)))
    np.testing.assert_allclose(mixed, pcm.astype(np.float32).mean(1) / 32768.0)
    assert "stereo" not in caplog.text
    assert pcm_format_hint(pcm.reshape(-1)) == "2-channel"  # two voices read as one
    dual = np.repeat((left * 16000).astype("<i2"), 2)
    assert pcm_format_hint(dual) == "2-channel"  # the same voice on both channels
    assert pcm_format_hint((left * 16000).astype("<i2")) is None  # mono
    one_side = np.stack([(left * 16000).astype("<i2"), np.zeros(len(left), "<i2")], 1)
    for pair in (one_side, one_side[:, ::-1]):  # a voice on the left only was "32-bit
        assert pcm_format_hint(pair.reshape(-1)) == "2-channel"  # float" (review, 47)
    list(iter_pcm(io.BytesIO(dual.tobytes())))
    assert "2 interleaved channels (stereo)" in caplog.text and "--channels 2" in caplog.text


def test_a_file_piped_in_small_reads_is_still_recognised(caplog):
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, voice(1.0), SR, format="FLAC")
    list(iter_pcm(Trickle(buf.getvalue(), [1, 3, 8]), block_s=0.01))
    assert "starts like a FLAC file" in caplog.text


def test_answers_slower_than_the_hop_are_warned_about_once(caplog, monkeypatch):
    """On stdin nothing is skipped, so a listen whose answers took longer than its hop
    fell further behind a live input without a word (timeline/listen review, stop 52)."""
    import emovox.serving.live as live

    clock = iter(np.arange(0.0, 1e4, 0.05))  # each reading 50 ms on: 50 ms per answer
    monkeypatch.setattr(live.time, "perf_counter", lambda: float(next(clock)))
    for hop, said in ((0.1, False), (0.06, False), (0.04, True)):
        caplog.clear()
        with caplog.at_level("WARNING"):
            ups = list(live._updates(FakePredictor(), [voice(2.0)], live.RingBuffer(SR), hop * SR,
                                     SR))
        assert len(ups) >= 20 and all(u.compute_ms == pytest.approx(50.0) for u in ups)
        assert caplog.text.count("answers take 50 ms each, more than the") == int(said)


def test_no_speech_lines_say_why_as_predict_does(monkeypatch):
    """listen's ``no_speech`` lines carried no reason: silence, noise and too little speech
    looked the same, where predict's and timeline's JSON say which (review, stop 55). The
    reason comes from the one speech check each window already had (no second run)."""
    import emovox.serving.live as live
    from emovox.features.vad import speech_verdict

    runs = []
    monkeypatch.setattr(live, "speech_verdict",
                        lambda w, sr: runs.append(len(w)) or speech_verdict(w, sr))
    wave = np.concatenate([voice(2.0), silence(2.0), noise(2.0), voice(0.15), silence(1.85)])
    ups = list(listen(FakePredictor(), [wave], window=2.0, hop=2.0))
    assert [u.to_dict()["reason"] for u in ups] == [None, "silence", "steady_sound",
                                                    "too_short"]
    assert "reason" in ups[0].to_dict()  # null, not absent, for an answer: as predict's JSON
    assert len(runs) == len(ups) == 4  # one detector run per window


def test_a_window_the_predictor_finds_no_speech_in_keeps_its_reason():
    from types import SimpleNamespace

    class Unvoiced(FakePredictor):
        def predict_wave(self, wave, sr, *, source="<array>"):
            return SimpleNamespace(label=None, status="no_speech", reason="not_voiced")

    (up,) = listen(Unvoiced(), [voice(2.0)], window=2.0, hop=2.0)
    assert up.status is LiveStatus.NO_SPEECH and up.to_dict()["reason"] == "not_voiced"


def test_listen_prints_a_no_speech_lines_reason(monkeypatch):
    """The plain line ends with the reason in the words of predict's table, the JSON line
    carries ``reason`` (review, stop 55)."""
    import json

    from typer.testing import CliRunner

    from emovox.cli import app
    from emovox.serving.predictor import Predictor

    class Fake(FakePredictor):
        sr, model_id = SR, "fake"

    monkeypatch.setattr(Predictor, "from_artifact", lambda *a, **k: Fake())
    pcm = (np.concatenate([voice(2.0), silence(2.0), noise(2.0)]) * 32767).astype("<i2")
    args = ["listen", "-", "--window", "2", "--hop", "2"]
    plain = CliRunner().invoke(app, args, input=pcm.tobytes())
    assert plain.exit_code == 0, plain.output
    lines = [line for line in plain.stdout.splitlines() if " s  " in line]
    assert lines[1].endswith("silent  the input is silent (or a constant offset)")  # (57)
    assert lines[2].endswith("dBFS  a steady sound (noise, hum, tones, beeps or bells, a "
                             "constant offset)")
    assert "angry" in lines[0] and lines[0].endswith("dBFS")
    # the reasons start in one column, after "silent" as after a level (a review, stop 55)
    assert lines[1].index("the input") == lines[2].index("a steady sound")
    got = CliRunner().invoke(app, [*args, "--json"], input=pcm.tobytes())
    docs = [json.loads(line) for line in got.stdout.splitlines() if line.startswith("{")]
    assert [d["reason"] for d in docs] == [None, "silence", "steady_sound"]
