"""The speech detector's fast paths compute the same measures and decisions as the plain
definitions (emovox.features.vad): float32 FFTs against a per-frame float64 reference, and
speech_verdict (which measures only what its decisions read) against the full
frame_measures -> frame_flags -> smooth_flags chain."""

from __future__ import annotations

import numpy as np
import pytest

from emovox.features.steady import without_steady
from emovox.features.vad import (
    DEFAULT_PARAMS,
    frame_flags,
    frame_measures,
    smooth_flags,
    speech_segments,
    speech_verdict,
)
from signals import SR, harmonic, noise, pink_noise, silence, sine, syllables, voice

P = DEFAULT_PARAMS


def _reference_frame(x: np.ndarray, i: int) -> tuple[float, float, float]:
    """Level (dB), voicing and tonality of frame ``i``, one frame, float64, by definition."""
    hop, frame, pframe = 160, 400, 640
    xp = np.pad(x.astype(np.float64), (0, pframe + hop), mode="edge")
    f = xp[i * hop : i * hop + frame]
    f = f - f.mean()
    ms = float(np.mean(f * f))
    level = 10 * np.log10(ms) if ms >= 1e-20 else -np.inf
    spec = np.abs(np.fft.rfft(f * np.hanning(frame), 1024)) ** 2
    k = int(np.argmax(spec))
    tonal = float(spec[max(k - 2, 0) : k + 3].sum() / spec.sum()) if spec.sum() > 0 else 0.0
    p = xp[i * hop : i * hop + pframe]
    p = p - p.mean()
    ac = np.correlate(p, p, mode="full")[pframe - 1 :]  # linear autocorrelation, lags 0..
    lo, hi = 40, 256  # 400 Hz and 62.5 Hz at 16 kHz
    norm = ac[lo - 1 : hi + 2] / ((pframe - np.arange(lo - 1, hi + 2)) / pframe)
    mid = norm[1:-1]
    peaks = (mid > norm[:-2]) & (mid >= norm[2:])
    best = float(np.where(peaks, mid, 0.0).max())
    voicing = float(np.clip(best / ac[0], 0, 1)) if ac[0] > 1e-20 else 0.0
    return level, voicing, tonal


SIGNALS = {
    "voice": voice(2.0),
    "quiet voice": voice(2.0) * 0.003,
    "noise": noise(1.0, amp=0.1),
    "pink": pink_noise(1.0),
    "tone": sine(440.0, 1.0),
    "bursts": np.concatenate([silence(0.5), syllables(harmonic(150.0, 1.0), lead=0.0),
                              silence(0.5)]),
}


@pytest.mark.parametrize("name", sorted(SIGNALS))
def test_measures_match_the_float64_definition(name):
    x = SIGNALS[name].astype(np.float32)
    m = frame_measures(x, SR)
    for i in range(0, len(m.level_db), 7):
        level, voicing, tonal = _reference_frame(x, i)
        if np.isinf(level):
            assert np.isinf(m.level_db[i])
        else:
            assert m.level_db[i] == pytest.approx(level, abs=1e-6)
        assert m.voicing[i] == pytest.approx(voicing, abs=1e-4)
        assert m.tonality[i] == pytest.approx(tonal, abs=1e-4)


NON_SPEECH_AND_SPEECH = {
    **SIGNALS,
    "silence": silence(1.0),
    "dc": np.full(SR, 0.3, np.float32),
    "noise burst": np.concatenate([silence(0.5), noise(1.0, amp=0.1, seed=2), silence(0.5)]),
    "tone burst": np.concatenate([silence(0.5), sine(440.0, 1.0), silence(0.5)]),
    "short": voice(0.1),
    "0.2 s burst": np.concatenate([silence(1.0), harmonic(180.0, 0.2), silence(1.0)]),
    "empty": np.zeros(0, np.float32),
}


@pytest.mark.parametrize("name", sorted(NON_SPEECH_AND_SPEECH))
def test_verdict_reads_only_what_it_needs_with_the_same_answer(name):
    """speech_verdict measures tonality above the floor and voicing on speech frames only:
    its segments and verdict are those of the full chain over every frame."""
    x = NON_SPEECH_AND_SPEECH[name]
    v = speech_verdict(x, SR)
    exact = speech_verdict(x, SR, exact_voiced=True)
    m = frame_measures(x, SR)
    # the full chain, steady stretches (beeps: features.steady) taken out as the verdict does
    flags, _ = without_steady(x, SR, smooth_flags(frame_flags(m)), 8)
    segs = speech_segments(flags, duration=len(x) / SR)
    assert np.array_equal(v.segments, segs) and np.array_equal(exact.segments, segs)
    voiced = np.count_nonzero(flags & (m.voicing >= P.voicing)) * P.hop_s
    assert exact.voiced_seconds == pytest.approx(voiced)
    assert (v.is_speech, v.reason) == (exact.is_speech, exact.reason)
    assert v.voiced_seconds <= exact.voiced_seconds + 1e-9
    if v.is_speech:
        assert v.voiced_seconds >= P.min_voiced_s


def test_the_early_stop_still_finds_too_little_voicing():
    """Noise bursts (unvoiced) are measured to the end: no early stop, answer not_voiced."""
    x = NON_SPEECH_AND_SPEECH["noise burst"]
    v = speech_verdict(x, SR)
    assert not v.is_speech and v.reason.value == "not_voiced"
    assert v.voiced_seconds == speech_verdict(x, SR, exact_voiced=True).voiced_seconds


def test_each_frame_is_gathered_and_centred_once_per_verdict(monkeypatch):
    """The level, the tonality and the beep check read the same centred 25 ms frames: a
    clip's verdict gathers each once (each check gathered its own: 0.3-0.4 ms a clip), with
    the same verdict, segments and voiced seconds."""
    import emovox.features.frames as frames_module

    w = np.concatenate([silence(0.3), syllables(voice(2.5)), silence(0.3)]).astype(np.float32)
    want = speech_verdict(w, SR, exact_voiced=True)
    seen = []
    view = frames_module.frame_view

    def counted(x, hop, length, idx):
        if length == 400:
            seen.append(len(idx))
        return view(x, hop, length, idx)

    monkeypatch.setattr(frames_module, "frame_view", counted)
    got = speech_verdict(w, SR, exact_voiced=True)
    assert sum(seen) == -(-len(w) // 160)  # every 10 ms frame, once
    assert got.is_speech == want.is_speech and got.reason == want.reason
    assert got.speech_seconds == want.speech_seconds
    assert got.voiced_seconds == want.voiced_seconds
    assert np.array_equal(got.segments, want.segments)


@pytest.mark.parametrize("seconds", [0.02, 3.0, 7.0])
def test_kept_centred_frames_measure_as_frames_gathered_per_call(seconds):
    """A wave's frames centred once (kept) give the levels and tonality of frames gathered
    and centred per call, bit for bit (chunks of 256 frames against all at once)."""
    from emovox.features.frames import (
        CentredFrames,
        FrameSizes,
        frame_levels,
        frame_tonality,
        n_frames,
    )

    x = (syllables(voice(seconds)) + noise(seconds, amp=1e-3)).astype(np.float32)
    z = FrameSizes.of(SR, P)
    n = n_frames(len(x), z.hop)
    kept = CentredFrames(x, z, n)
    assert kept.every is not None
    idx = np.arange(0, n, 3)
    assert np.array_equal(frame_levels(x, z, n, kept), frame_levels(x, z, n))
    assert np.array_equal(frame_tonality(x, z, idx, kept), frame_tonality(x, z, idx))


def test_a_kept_hann_window_cannot_be_made_writeable():
    """The windows are computed once and shared: one a caller made writeable again and
    changed turned a 1 kHz beep's verdict from pure_tone to steady_sound (review, 55)."""
    from emovox.features.frames import hann

    w = hann(400)
    with pytest.raises(ValueError):
        w.flags.writeable = True
