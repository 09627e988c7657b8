"""Lossy codec round trips (emovox.audio.codec): the same length, aligned, the codec's
band and noise where they should be, many clips at once as one at a time."""

from __future__ import annotations

import numpy as np
import pytest

from emovox.audio import codec as cod
from emovox.audio.codec import Codec, codec_round_trip, codec_round_trips
from emovox.errors import UnsupportedCodec
from signals import SR, needs_ffmpeg, syllables, voice


def _snr_db(x: np.ndarray, y: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(x ** 2) / np.sum((y - x) ** 2)))


def _band_energy(x: np.ndarray, lo: float, hi: float) -> float:
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(x.size, 1 / SR)
    return float(spec[(f >= lo) & (f < hi)].sum() / spec.sum())


@needs_ffmpeg
@pytest.mark.parametrize("codec", list(Codec))
def test_round_trip_keeps_length_and_is_aligned(codec):
    x = syllables(voice(2.0)).astype(np.float32)
    y = codec_round_trip(x, SR, codec)
    assert y.shape == x.shape and y.dtype == np.float32
    # aligned: the output correlates best with the input at lag 0 (within 1 ms)
    lags = range(-40, 41)
    corr = [float(np.dot(x[100:-100], np.roll(y, -k)[100:-100])) for k in lags]
    assert abs(list(lags)[int(np.argmax(corr))]) <= 16
    assert np.corrcoef(x, y)[0, 1] > 0.5


@needs_ffmpeg
def test_gsm_is_a_phone_line_and_mp3_32k_keeps_the_waveform():
    x = syllables(voice(2.0, f0=150.0)).astype(np.float32)
    rng = np.random.default_rng(0)
    x = x + 0.05 * rng.standard_normal(x.size).astype(np.float32)  # energy up to 8 kHz
    gsm = codec_round_trip(x, SR, Codec.GSM)
    assert _band_energy(x, 4200, 8000) > 0.01 > 100 * _band_energy(gsm, 4200, 8000)  # 8 kHz
    assert _snr_db(x, codec_round_trip(x, SR, Codec.MP3_32K)) > _snr_db(x, gsm)


@needs_ffmpeg
def test_many_clips_at_once_equal_one_at_a_time(monkeypatch):
    clips = [syllables(voice(s, f0=f)).astype(np.float32)
             for s, f in ((0.7, 120.0), (1.3, 200.0), (2.1, 160.0))]
    monkeypatch.setattr(cod, "MAX_SECONDS", 2.5)  # two streams: [0, 1] and [2]
    together = codec_round_trips(clips, SR, Codec.MP3_32K)
    assert [t.size for t in together] == [c.size for c in clips]
    for c, t in zip(clips, together, strict=True):
        assert _snr_db(c, t) > 10 and abs(_snr_db(c, t) - _snr_db(c, codec_round_trip(
            c, SR, Codec.MP3_32K))) < 3


def test_bad_codec_too_long_or_no_ffmpeg_fail_clearly(monkeypatch):
    with pytest.raises(ValueError):
        codec_round_trip(np.zeros(100, np.float32), SR, "amr")
    monkeypatch.setattr(cod, "MAX_SECONDS", 1.0)
    with pytest.raises(ValueError, match="at most 1 s"):
        codec_round_trip(np.zeros(3 * SR, np.float32), SR, Codec.GSM)
    monkeypatch.setattr(cod, "ffmpeg_exe", lambda: None)
    with pytest.raises(UnsupportedCodec, match="needs ffmpeg"):
        codec_round_trip(np.zeros(SR // 2, np.float32), SR, Codec.GSM)
