"""Speech detection and whole-recording prediction on real speech.

The detector's thresholds were set on RAVDESS actors 01 and 02 only (emovox.features.vad);
these tests check the other actors, EMOVO and URDU (which prompted one change of the voicing
measure, see the module notes: a check, not an untouched test). The 30 s recording of the
done-when test is built from actor 01's clips (in the bundled model's training data, like every
RAVDESS actor)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from emovox.audio import load_audio
from emovox.features.vad import NoSpeechReason, speech_verdict

SR = 16000
LEVELS_DBFS = (-35.0, -20.0, -1.0)


def _speech_dir(shared_data: Path) -> Path:
    d = shared_data / "ravdess" / "Audio_Speech_Actors_01-24"
    if not d.is_dir():
        pytest.skip(f"RAVDESS speech is not at {d} (set EMOVOX_SHARED_DATA)")
    return d


def _at(wave: np.ndarray, peak_dbfs: float) -> np.ndarray:
    return (wave * (10 ** (peak_dbfs / 20) / np.abs(wave).max())).astype(np.float32)


def test_original_48k_clips_are_speech(shared_data):
    clips = sorted((shared_data / "ravdess" / "original-48k").glob("*.wav"))
    if len(clips) != 8:
        pytest.skip("the 8 original-48k clips are not there (set EMOVOX_SHARED_DATA)")
    for clip in clips:
        a = load_audio(clip, sr=SR)
        for level in LEVELS_DBFS:
            v = speech_verdict(_at(a.wave, level), SR)
            assert v.is_speech, (clip.name, level, v.reason)


def test_held_out_actors_are_speech_at_any_level(shared_data):
    """Four clips of every actor but 01 and 02 (the tuning actors), at -35, -20, -1 dBFS."""
    root = _speech_dir(shared_data)
    misses = []
    for actor in range(3, 25):
        for clip in sorted((root / f"Actor_{actor:02d}").glob("*.*"))[::15][:4]:
            w = load_audio(clip, sr=SR).wave
            misses += [(clip.name, lv) for lv in LEVELS_DBFS
                       if not speech_verdict(_at(w, lv), SR).is_speech]
    assert not misses


@pytest.mark.slow
def test_every_held_out_clip_is_speech(shared_data):
    """All 1320 clips of actors 03-24 at -35 and -1 dBFS peak."""
    root = _speech_dir(shared_data)
    clips = [c for a in range(3, 25) for c in sorted((root / f"Actor_{a:02d}").glob("*.*"))]
    assert len(clips) == 22 * 60
    misses, hum = [], []
    for clip in clips:
        a = load_audio(clip, sr=SR)
        misses += [(clip.name, lv) for lv in (-35.0, -1.0)
                   if not speech_verdict(_at(a.wave, lv), SR).is_speech]
        hum += [clip.name for n in a.notes if "mains hum" in n]
    assert not misses
    assert not hum  # no false hum warning (emovox.audio.hum; 0 of 1,440 measured)


def test_speech_in_white_noise_at_5_and_0_db_is_speech(shared_data):
    """Two clips of every actor but 01 and 02 under white noise at 5 and 0 dB whole-clip SNR
    (the training augmentation's definition): all 44 are speech at 5 dB; at 0 dB 41 are
    (measured; 3 by the level alone: a lower margin above the noise floor found 43 at stop
    40 and took car, wind and fan noise alone for speech, so it was not kept; since stop 41
    speech is also found by its pitch, ``emovox.features.voice``: 34; since stop 42 the
    pitch tracker no longer reads 1/2 or 1/3 of the pitch: 41)."""
    from emovox.augment import add_noise

    root = _speech_dir(shared_data)
    clips = [c for a in range(3, 25)
             for c in sorted((root / f"Actor_{a:02d}").glob("*.*"))[7::30][:2]]
    judged: dict[float, int] = {5.0: 0, 0.0: 0}
    for i, clip in enumerate(clips):
        w = load_audio(clip, sr=SR).wave
        for snr in judged:
            judged[snr] += speech_verdict(add_noise(w, np.random.default_rng(i), snr),
                                          SR).is_speech
    assert len(clips) == 44 and judged[5.0] >= 42 and judged[0.0] >= 38, judged


def test_sung_clips_without_a_pitch_run_move_their_pitch_and_stay_speech(shared_data):
    """The 4 sung RAVDESS clips with no syllable-long pitch run (their notes are long) are
    60-90 % voiced, the most of any real clip, yet a stretch of each moves its pitch: not
    held notes (stop 41's rule for bells, ``features.voice.HELD_VOICED_SHARE``)."""
    root = shared_data / "ravdess" / "Audio_Song_Actors_01-24_truncated"
    names = ["03-02-04-02-01-01-21", "03-02-02-02-01-01-12", "03-02-01-01-02-01-24",
             "03-02-05-01-01-01-22"]
    clips = [p for n in names for p in root.glob(f"Actor_*/{n}.*")]
    if len(clips) < len(names):
        pytest.skip(f"the RAVDESS song clips are not under {root}")
    for clip in clips:
        v = speech_verdict(load_audio(clip, sr=SR).wave, SR)
        assert v.is_speech, (clip.name, v)


def test_a_talk_show_recorded_with_hum_is_warned_about(shared_data):
    """URDU's SM4 recordings carry a 50 Hz hum (a steady line near 48.6 Hz, 21-29 dB under
    the speech): the answer says so."""
    clip = shared_data / "extra" / "urdu" / "Angry" / "SM4_F11_A063.flac"
    if not clip.is_file():
        pytest.skip(f"URDU is not under {clip.parent.parent}")
    notes = load_audio(clip, sr=SR).notes
    assert len(notes) == 1 and "mains hum at 50 Hz, 22 dB under" in notes[0]


@pytest.mark.slow
def test_other_corpora_are_speech(shared_data):
    """EMOVO (acted, Italian): every clip; URDU (talk shows): at least 99 % (1 of 400 is
    missed when measured: a mostly unvoiced clip; a 2 s clip of continuous loud speech
    without any pause, missed before stop 28, is the test below)."""
    extra = shared_data / "extra"
    if not (extra / "emovo").is_dir():
        pytest.skip(f"EMOVO/URDU are not under {extra}")
    for corpus, need in (("emovo", 1.0), ("urdu", 0.99)):
        clips = sorted((extra / corpus).glob("*/*.flac"))
        assert len(clips) >= 400
        hits = sum(speech_verdict(load_audio(c, sr=SR).wave, SR).is_speech for c in clips)
        assert hits >= need * len(clips), (corpus, hits, len(clips))


@pytest.mark.parametrize("gain_db", [-35.0, -1.0])
def test_speech_without_a_pause_is_speech(shared_data, gain_db):
    """URDU SM18_F1_H049: 2 s of loud talk-show speech with no pause, so the adaptive noise
    floor (10th percentile of its own frame levels) is speech; judged "no speech" before
    stop 28 (a user's QA pass found it), speech since (vad.continuous_speech)."""
    clip = shared_data / "extra" / "urdu" / "Happy" / "SM18_F1_H049.flac"
    if not clip.is_file():
        pytest.skip(f"{clip} is not there")
    w = load_audio(clip, sr=SR).wave
    w = w * (10 ** (gain_db / 20) / np.abs(w).max())
    v = speech_verdict(w, SR)
    assert v.is_speech and v.speech_seconds > 1.5, v


def test_a_quarter_second_of_speech_is_too_short(shared_data):
    """0.25 s cut from the middle of a real utterance, with silence around: no speech."""
    clip = sorted((_speech_dir(shared_data) / "Actor_05").glob("03-01-05-02-01-01-05.*"))[0]
    w = load_audio(clip, sr=SR).wave
    seg = speech_verdict(w, SR).segments
    mid = int((seg[0, 0] + seg[-1, 1]) / 2 * SR)
    snippet = np.concatenate([np.zeros(SR, np.float32), w[mid : mid + SR // 4],
                              np.zeros(SR, np.float32)])
    v = speech_verdict(snippet, SR)
    assert not v.is_speech and v.reason is NoSpeechReason.TOO_SHORT, v


def thirty_seconds(shared_data: Path) -> np.ndarray:
    """Actor 01: four angry clips, one neutral clip, four angry clips (~35 s)."""
    d = _speech_dir(shared_data) / "Actor_01"
    angry = sorted(d.glob("03-01-05-*"))
    neutral = sorted(d.glob("03-01-01-*"))[0]
    assert len(angry) == 8
    return np.concatenate([load_audio(c, sr=SR).wave for c in [*angry[:4], neutral,
                                                                *angry[4:]]])


@pytest.mark.slow
def test_a_long_recording_is_answered_as_a_whole(shared_data, tmp_path):
    """Done when of issue 12: 30 s of angry speech around a neutral clip -> `predict`
    answers angry (it read the middle 2.56 s before), from speech windows only; the API
    gives the same answer for the same file."""
    import soundfile as sf

    from emovox.serving.predictor import Predictor
    from emovox.serving.schema import validate_document

    wave = thirty_seconds(shared_data)
    assert len(wave) / SR > 30
    path = tmp_path / "long.wav"
    sf.write(path, wave, SR, subtype="PCM_16")
    pred = Predictor.from_artifact("default")
    p = pred.predict_file(path)
    assert p.label == "angry", p
    # the default is calibrated on corpora it never heard (temperature ~2.3), so even a clear
    # answer may sit under the documented 0.5: the status follows the threshold either way
    assert p.status.value == ("ok" if p.confidence >= 0.5 else "uncertain"), p
    assert p.probabilities["angry"] > 2 * max(v for k, v in p.probabilities.items()
                                              if k != "angry"), p
    assert p.n_windows >= 9 and 12.0 < p.speech_seconds < 25.0
    doc = p.to_dict()
    validate_document(doc, "prediction")
    assert "neutral" in {e["label"] for e in doc["evidence"]}  # the middle clip is seen...
    neutral = [e for e in doc["evidence"] if e["label"] == "neutral"]
    assert all(14.0 < e["start"] < 20.0 for e in neutral)  # ...where it is
    assert sum(e["contribution"] for e in neutral) < 0.1  # and barely drives the answer

    pytest.importorskip("fastapi")
    from api_helpers import make_test_client, post

    from emovox.api.server import create_app

    with make_test_client(create_app(predictor=pred)) as client:
        d = post(client, "/v1/predict", path.read_bytes(), "long.wav").json()
    validate_document(d, "prediction")
    assert d["label"] == "angry" and d["probabilities"] == pytest.approx(p.probabilities)
    assert d["n_windows"] == p.n_windows
