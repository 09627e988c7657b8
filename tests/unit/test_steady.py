"""emovox.features.steady: stretches whose spectrum holds still are beeps or phone tones, not
a voice (synthetic signals with known answers; real corpora are checked in
test_speech_real.py)."""

from __future__ import annotations

import numpy as np
import pytest

from emovox.features.steady import MIN_RUN_S, steady_frames, without_steady
from emovox.features.vad import NoSpeechReason, speech_verdict
from signals import PHONE_TONES, SR, gated, harmonic, silence, sine, syllables, voice


def _all(w: np.ndarray) -> np.ndarray:
    return np.ones(len(w) // 160, dtype=bool)


@pytest.mark.parametrize("name", sorted(PHONE_TONES))
def test_phone_tones_are_steady_and_not_speech(name):
    w = PHONE_TONES[name]
    assert steady_frames(w, SR, _all(w)).mean() >= 0.3, name
    v = speech_verdict(w, SR)
    assert not v.is_speech and v.reason is NoSpeechReason.STEADY, (name, v)


@pytest.mark.parametrize("f0", [100.0, 150.0, 220.0, 300.0])
def test_a_voice_whose_pitch_moves_has_no_steady_stretch(f0):
    w = syllables(harmonic(f0, 3.0, vibrato=0.1, glide=0.2))
    assert not steady_frames(w, SR, _all(w)).any()
    assert speech_verdict(w, SR).is_speech


def test_the_same_tone_without_movement_is_steady():
    w = syllables(harmonic(150.0, 3.0), on=0.5, off=0.5)  # half-second beeps
    assert steady_frames(w, SR, _all(w)).mean() > 0.4  # (the pauses are not steady)
    assert speech_verdict(w, SR).reason is NoSpeechReason.STEADY


def test_speech_next_to_a_tone_keeps_its_own_frames():
    """A ring-back tone, a pause, then speech: the tone is taken out, the speech stays (the
    first version called the whole recording steady: stop 29 QA)."""
    speech = syllables(harmonic(180.0, 2.0, vibrato=0.08, glide=0.15))
    w = np.concatenate([PHONE_TONES["ring-back tone"][: 2 * SR], silence(0.3), speech])
    v = speech_verdict(w, SR)
    assert v.is_speech, v
    assert v.segments[0, 0] > 2.0  # the speech starts after the tone: the tone is left out
    flags = np.array([np.abs(w[i * 160 : i * 160 + 400]).max() > 1e-3  # not silent
                      for i in range(len(w) // 160)])
    kept, n = without_steady(w, SR, flags, 8)
    assert n > 100 and not kept[:200].any() and (kept[240:] == flags[240:]).mean() > 0.95


def test_short_unchanged_stretches_are_not_taken_out():
    w = voice(1.0)
    flags = _all(w)
    steady = steady_frames(w, SR, flags)
    runs = np.diff(np.concatenate([[0], steady.astype(int), [0]]))
    lengths = np.flatnonzero(runs == -1) - np.flatnonzero(runs == 1)
    assert (lengths >= MIN_RUN_S / 0.01).all()  # only runs of >= 0.1 s, if any


def test_edge_cases():
    w = voice(1.0)
    assert not steady_frames(w, SR, np.zeros(100, bool)).any()  # no speech frame
    assert not steady_frames(w[:100], SR, np.ones(5, bool)).any()  # shorter than a frame
    assert not steady_frames(np.zeros(SR, np.float32), SR, np.ones(100, bool)).any()
    assert len(steady_frames(w, SR, np.ones(500, bool))) == 500  # flags past the end
    kept, n = without_steady(w, SR, np.zeros(100, bool), 8)
    assert n == 0 and not kept.any()
    beep = PHONE_TONES["busy tone"][::2]  # the rate is honoured: the same tone at 8 kHz
    assert steady_frames(beep, SR // 2, np.ones(300, bool)).mean() >= 0.3


def test_the_pause_inside_a_ring_cadence_is_not_speech():
    """UK ringing: 0.4 s on, 0.2 s off, 0.4 s on. The detector bridges the pause, and the
    piece left between the two steady runs (tone tail, pause, onset: 0.22 s) stayed speech
    and got a window before its own rule (stop 29 QA re-check 3)."""
    ring = PHONE_TONES["UK ring tone"][:SR]  # one double ring
    speech = syllables(harmonic(180.0, 2.0, vibrato=0.1, glide=0.2))
    v = speech_verdict(np.concatenate([ring, silence(0.5), speech]), SR)
    assert v.is_speech and v.segments[0, 0] > 1.0, v  # nothing of the ring is speech


@pytest.mark.parametrize(("freq", "on", "off"), [(2000.0, 0.1, 0.1), (2000.0, 0.2, 0.1),
                                                 (1000.0, 0.3, 0.2), (440.0, 0.2, 0.15)])
def test_pure_tone_beeps_with_short_gaps_are_not_speech(freq, on, off):
    """Beeps with gaps under 0.2 s were speech: their tonal bodies were never flagged, so
    no steady run was found, and the gaps (digital silence), bridged between the beeps'
    edges, were answered ("ok sad 0.568" for 2 kHz 0.1/0.1 s; code review, stop 47)."""
    w = gated(sine(freq, 4.0, SR, 0.3), on, off)
    v = speech_verdict(w, SR)
    assert not v.is_speech and v.speech_seconds == 0.0, v


def test_speech_between_short_beeps_keeps_its_own_frames():
    beeps = gated(sine(2000.0, 2.0, SR, 0.3), 0.1, 0.1)
    speech = voice(2.0)
    v = speech_verdict(np.concatenate([beeps, speech, beeps]), SR)
    assert v.is_speech
    assert all(1.8 <= a and b <= 4.2 for a, b in v.segments), v.segments  # the voice only
    assert v.speech_seconds >= 1.0


def test_speech_right_after_a_loud_beep_stays_speech():
    """A voicemail: a 1 s beep, then a caller 30 dB quieter. A first version of the beep-gap
    rule took the whole sentence for a gap between beeps (under half of its frames are
    speech by themselves, and it lies beside a tone): no speech (a review of stop 47's
    fix). A stretch longer than a bridged gap is never a beep's gap."""
    from pathlib import Path

    from emovox.audio import load_audio

    tts = Path(__file__).resolve().parents[2] / "examples" / "tts_dogs.wav"
    caller = load_audio(tts, sr=SR, trim=False).wave
    caller = caller / np.abs(caller).max() * np.float32(10 ** (-36 / 20))  # -36 dBFS peak
    x = np.concatenate([sine(1000.0, 1.0, SR, 0.5), caller])
    x += 3e-4 * np.random.default_rng(0).standard_normal(len(x)).astype(np.float32)
    v = speech_verdict(x, SR)
    assert v.is_speech and v.speech_seconds >= 1.0, v
