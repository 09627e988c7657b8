"""emovox.features.steady: a spectrum that holds still is a beep or a phone tone, not a voice
(synthetic signals with known answers; real corpora are checked in test_speech_real.py)."""

from __future__ import annotations

import numpy as np
import pytest

from emovox.features.steady import STEADY_SHARE, steady_share
from emovox.features.vad import NoSpeechReason, speech_verdict
from signals import PHONE_TONES, SR, harmonic, syllables, voice


@pytest.mark.parametrize("name", sorted(PHONE_TONES))
def test_phone_tones_are_steady_and_not_speech(name):
    w = PHONE_TONES[name]
    whole = np.array([[0.0, len(w) / SR]])
    assert steady_share(w, SR, whole) >= STEADY_SHARE, name
    v = speech_verdict(w, SR)
    assert not v.is_speech and v.reason is NoSpeechReason.STEADY, (name, v)


@pytest.mark.parametrize("f0", [100.0, 150.0, 220.0, 300.0])
def test_a_voice_whose_pitch_moves_is_not_steady(f0):
    w = syllables(harmonic(f0, 3.0, vibrato=0.08, glide=0.15))
    v = speech_verdict(w, SR)
    assert v.is_speech, v
    assert steady_share(w, SR, v.segments) < STEADY_SHARE


def test_the_same_tone_without_movement_is_steady():
    w = syllables(harmonic(150.0, 3.0))  # bursts of a fixed harmonic tone: a beep
    assert steady_share(w, SR, np.array([[0.0, 3.0]])) >= STEADY_SHARE
    assert speech_verdict(w, SR).reason is NoSpeechReason.STEADY


def test_edge_cases():
    w = voice(1.0)
    assert steady_share(w, SR, np.zeros((0, 2))) == 0.0  # no speech segment
    assert steady_share(w[:100], SR, np.array([[0.0, 1.0]])) == 0.0  # shorter than a frame
    assert steady_share(np.zeros(SR, np.float32), SR, np.array([[0.0, 1.0]])) == 0.0
    # segments past the end of the wave are clipped, not an error
    assert 0.0 <= steady_share(w, SR, np.array([[0.5, 9.0]])) <= 1.0
    # the rate is honoured: the same tone at 8 kHz is as steady
    beep = PHONE_TONES["busy tone"][::2]
    assert steady_share(beep, SR // 2, np.array([[0.0, 3.0]])) >= STEADY_SHARE
