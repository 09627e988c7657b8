"""Lossy codec round trips through ffmpeg: what a phone line or a voice app does to a voice.

:func:`codec_round_trip` encodes a mono float waveform with a real speech or music codec and
decodes it back at the original rate: ``bench/channel_robustness.py`` scores models on it
(a degradation the ``channel`` augmentation does not imitate), and the ``channel_codec``
augmentation trains on it (the feature cache passes it to :func:`emovox.augment.augment`):

* ``gsm``: GSM 06.10 full rate (13 kbit/s at 8 kHz, the 2G mobile phone codec; libgsm);
* ``opus_voip``: Opus at 12 kbit/s in its VoIP mode (video calls, messengers);
* ``mp3_32k``: MP3 at 32 kbit/s (LAME), a low-bit-rate download or voice memo.

Both ffmpeg processes read and write raw 32-bit float PCM over pipes (``subprocess.run``
with the whole clip: the input is bounded by :data:`MAX_SECONDS`), so nothing touches the
disk. :func:`codec_round_trips` sends many clips through one pair of processes (joined by
short silences, then cut apart again): two ffmpeg start-ups per ten minutes of audio instead
of two per clip. Raises :class:`~emovox.errors.UnsupportedCodec` without ffmpeg or the
encoder.
"""

from __future__ import annotations

import subprocess
from enum import Enum

import numpy as np

from emovox.audio.ffmpeg import ffmpeg_exe, install_ffmpeg_hint
from emovox.errors import UnsupportedCodec

__all__ = ["MAX_SECONDS", "Codec", "codec_round_trip", "codec_round_trips"]

#: longest clip :func:`codec_round_trip` takes (its pipes hold the whole clip)
MAX_SECONDS = 600.0


class Codec(str, Enum):
    GSM = "gsm"  #: GSM 06.10 full rate, 8 kHz
    OPUS_VOIP = "opus_voip"  #: Opus 12 kbit/s, VoIP mode
    MP3_32K = "mp3_32k"  #: MP3 32 kbit/s


#: per codec: the encoder's output options (rate, encoder, its settings, container)
_ENCODE: dict[Codec, list[str]] = {
    Codec.GSM: ["-ar", "8000", "-c:a", "libgsm", "-f", "gsm"],
    Codec.OPUS_VOIP: ["-ar", "16000", "-c:a", "libopus", "-b:a", "12k",
                      "-application", "voip", "-f", "ogg"],
    Codec.MP3_32K: ["-ar", "16000", "-c:a", "libmp3lame", "-b:a", "32k", "-f", "mp3"],
}


def _ffmpeg(args: list[str], data: bytes) -> bytes:
    exe = ffmpeg_exe()
    if exe is None:
        raise UnsupportedCodec(f"a codec round trip needs ffmpeg: {install_ffmpeg_hint()}")
    done = subprocess.run([exe, "-hide_banner", "-loglevel", "error", "-nostdin", *args],
                          input=data, capture_output=True, check=False, timeout=120)
    if done.returncode != 0:
        raise UnsupportedCodec(f"ffmpeg failed: {done.stderr.decode(errors='replace')[-300:]}")
    return done.stdout


def codec_round_trip(wave: np.ndarray, sr: int, codec: Codec) -> np.ndarray:
    """``wave`` (mono float, ``(n,)``, at ``sr`` Hz) encoded with ``codec`` and decoded back
    to float32 at ``sr``: the same length, the codec's delay removed (the decoded signal
    is aligned to the input by cross-correlation)."""
    return codec_round_trips([wave], sr, codec)[0]


def codec_round_trips(waves: list[np.ndarray], sr: int, codec: Codec,
                      gap_s: float = 0.25) -> list[np.ndarray]:
    """:func:`codec_round_trip` of every wave, sent through ffmpeg together: joined by
    ``gap_s`` of silence into streams of at most :data:`MAX_SECONDS`, then cut apart."""
    xs = [np.asarray(w, dtype=np.float32).reshape(-1) for w in waves]
    gap = np.zeros(int(gap_s * sr), np.float32)
    out: list[np.ndarray] = []
    start = 0
    while start < len(xs):
        stop, total = start, 0
        while stop < len(xs) and (stop == start or total + xs[stop].size <= MAX_SECONDS * sr):
            total += xs[stop].size + gap.size
            stop += 1
        joined = _round_trip(np.concatenate([p for x in xs[start:stop] for p in (x, gap)]),
                             sr, Codec(codec))
        offsets = np.cumsum([0] + [x.size + gap.size for x in xs[start:stop]])
        out += [joined[o:o + x.size] for o, x in zip(offsets, xs[start:stop], strict=False)]
        start = stop
    return out


def _round_trip(x: np.ndarray, sr: int, codec: Codec) -> np.ndarray:
    """One encode + decode of ``x``, aligned and cut to its length."""
    if x.size > MAX_SECONDS * sr + sr:
        raise ValueError(f"codec round trip of {x.size / sr:.0f} s: at most {MAX_SECONDS:g} s")
    raw = ["-f", "f32le", "-ac", "1", "-ar", str(int(sr))]
    encoded = _ffmpeg([*raw, "-i", "pipe:0", *_ENCODE[codec], "pipe:1"], x.tobytes())
    decoded = _ffmpeg(["-i", "pipe:0", *raw, "pipe:1"], encoded)
    y = np.frombuffer(decoded, dtype=np.float32)
    lag = _delay(x, y, sr)
    y = y[lag:lag + x.size]
    return np.pad(y, (0, x.size - y.size)).astype(np.float32)


def _delay(x: np.ndarray, y: np.ndarray, sr: int) -> int:
    """Samples by which ``y`` lags ``x`` (0..100 ms: MP3's encoder and decoder delay is about
    70 ms): the peak of their cross-correlation over the first 10 s (FFT)."""
    n, max_lag = min(x.size, y.size, 10 * sr), min(int(0.1 * sr), max(y.size - 1, 0))
    if n < 2 or max_lag <= 0:
        return 0
    size = 1 << int(np.ceil(np.log2(2 * n)))
    corr = np.fft.irfft(np.conj(np.fft.rfft(x[:n], size)) * np.fft.rfft(y[:n], size), size)
    return int(np.argmax(corr[:max_lag + 1]))
