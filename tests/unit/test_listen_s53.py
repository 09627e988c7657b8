"""``emovox listen`` after the stop-53 review: its logged warnings carry the level, as
predict's and timeline's do; a multichannel stream is mixed by the rule of files
(:class:`~emovox.serving.stream.ChannelMixer`, it was averaged) and its raw-PCM format is
checked (only mono streams were)."""

from __future__ import annotations

import io
import logging
from types import SimpleNamespace

import numpy as np
import pytest
from typer.testing import CliRunner

from cli_io import Trickle
from emovox.audio import READ_FRAMES
from emovox.serving.live import LiveStatus, iter_pcm, listen, pcm_format_hint
from emovox.serving.stream import MIX_PIECE_S, ChannelMixer
from signals import SR, noise, voice

PIECE = int(MIX_PIECE_S * SR)


def s16(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, -1.0, 1.0) * 32767).astype("<i2")


def stereo(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """int16 ``(n, 2)`` frames."""
    return np.stack([s16(left), s16(right)], 1)


def mixed(frames: np.ndarray, sizes: list[int] | None = None) -> np.ndarray:
    """The mono ``iter_pcm`` makes of ``frames`` (int16 ``(n, c)``), read in ``sizes`` bytes."""
    data = frames.tobytes()
    stream = io.BytesIO(data) if sizes is None else Trickle(data, sizes)
    return np.concatenate(list(iter_pcm(stream, channels=frames.shape[1])))




class FakePredictor:
    sr, model_id = SR, "fake"

    def predict_wave(self, wave, sr, *, source="<array>"):
        return SimpleNamespace(label="angry", confidence=0.9, status="ok",
                               probabilities={"angry": 0.9, "sad": 0.1})


# ---------------------------------------------------------------------------------------
# 1. warnings


def test_listens_logged_warnings_say_warning_as_predicts_do(monkeypatch):
    """A big-endian stream's hint (and every other logged one: slow answers, hum...) came
    bare on stderr, without the level predict's and timeline's logged warnings start with
    (review, stop 53); listen sets up logging as they do (``setup_logging``)."""
    from emovox.cli import app
    from emovox.serving.predictor import Predictor

    monkeypatch.setattr(Predictor, "from_artifact", lambda *a, **k: FakePredictor())
    pcm = s16(voice(4.0)).byteswap().tobytes()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        res = CliRunner().invoke(app, ["listen", "-", "--window", "2"], input=pcm)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    assert res.exit_code == 0, res.output
    said = [line for line in res.stderr.splitlines() if "looks like big-endian" in line]
    assert len(said) == 1 and said[0].startswith("WARNING  the input looks like"), res.stderr


# ---------------------------------------------------------------------------------------
# 2. the channel rule of files, piece by piece


@pytest.mark.parametrize("other", ["silent", "hiss", "inverted"])
def test_a_dead_or_inverted_channel_is_mixed_as_a_file_is(other):
    """A voice on the left and, on the right, digital silence, hiss at -50 dBFS or the same
    voice in opposite polarity: averaged, the voice came at half level, under the hiss, or
    cancelled to nothing. From the second piece on (the first has no past: averaged) the mix
    is the voice itself, the same weights in every piece (answers do not jump)."""
    left = voice(12.0)
    right = {"silent": np.zeros_like(left), "hiss": noise(12.0, amp=10 ** (-50 / 20)),
             "inverted": -left}[other]
    frames = stereo(left, right)
    mono = mixed(frames)
    want = s16(left).astype(np.float32) / 32768.0
    old = frames.astype(np.float32).mean(1) / 32768.0  # what it was: the plain average,
    np.testing.assert_allclose(mono[:PIECE], old[:PIECE], atol=1e-7)  # still the first piece
    start = 2 * PIECE if other != "inverted" else PIECE  # leaving out needs 8 frames of past
    np.testing.assert_allclose(mono[start:], want[start:], atol=1e-7)
    assert np.abs(old[start:] - want[start:]).max() > 0.1


def test_an_inverted_pair_is_answered_where_the_average_heard_silence():
    frames = stereo(voice(6.0), -voice(6.0))
    ups = list(listen(FakePredictor(), iter_pcm(io.BytesIO(frames.tobytes()), channels=2),
                      window=2.0, hop=1.0))
    assert [u.status for u in ups][1:] == [LiveStatus.OK] * 5
    averaged = frames.astype(np.float32).mean(1) / 32768.0
    assert not averaged.any()  # the old mix: digital silence, no_speech throughout


def test_the_mix_does_not_depend_on_how_the_stream_is_read():
    left, right = voice(8.0), np.concatenate([np.zeros(4 * SR, np.float32), voice(4.0, f0=230)])
    frames = stereo(left, right)
    np.testing.assert_array_equal(mixed(frames), mixed(frames, [1, 7, 4000, 333, 12001]))


def test_a_channel_joins_when_it_speaks_and_leaves_when_long_silent():
    """A call, one speaker per channel, hiss at -55 dBFS on both: 0-6 s left, 6-12 s right,
    12-20 s left, then both silent. Weights per piece: the right joins in the piece after it
    starts; a channel leaves only once its last sound is a file's piece (READ_FRAMES, 16.4 s)
    behind (its turns and pauses do not drop it); nothing else moves."""
    span = READ_FRAMES / SR
    talk_l = np.concatenate([voice(6.0), np.zeros(6 * SR, np.float32), voice(8.0, f0=150)])
    talk_l = np.concatenate([talk_l, np.zeros(20 * SR, np.float32)])
    talk_r = np.concatenate([np.zeros(6 * SR, np.float32), voice(6.0, f0=230),
                             np.zeros(28 * SR, np.float32)])
    hiss = [noise(40.0, amp=10 ** (-55 / 20), seed=k) for k in (1, 2)]
    frames = stereo(talk_l + hiss[0], talk_r + hiss[1])
    mixer, weights = ChannelMixer(2, SR), []
    for k in range(0, len(frames), PIECE):
        mixer.mix(frames[k : k + PIECE])
        weights.append(tuple(mixer.weights))
    changes = [(k * MIX_PIECE_S, w) for k, w in enumerate(weights)
               if k and w != weights[k - 1]]
    when = [t for t, _ in changes]
    assert [w for _, w in changes] == [(1, 0), (1, 1), (1, 0), (1, 1)], changes
    assert when[0] <= 2 * MIX_PIECE_S  # the right's hiss left out once there is a past
    assert 6.0 <= when[1] <= 6.0 + 2 * MIX_PIECE_S  # the right joins as it speaks
    assert 12.0 + span - 0.5 <= when[2] <= 12.0 + span + 2 * MIX_PIECE_S  # and leaves
    assert 20.0 + span - 0.5 <= when[3] <= 20.0 + span + 2 * MIX_PIECE_S  # both steady:
    # every channel is, so none is left out (the rule of files)


def test_two_voices_are_still_averaged():
    frames = stereo(voice(6.0), voice(6.0, f0=230.0))
    np.testing.assert_allclose(mixed(frames), frames.astype(np.float32).mean(1) / 32768.0,
                               atol=1e-7)


# ---------------------------------------------------------------------------------------
# 3. the format check of multichannel streams


def layouts(seconds: float = 3.0) -> dict[str, np.ndarray]:
    """float32 ``(n, 2)`` stereo: two voices, the same on both, one side silent, inverted."""
    a, b = voice(seconds), 0.5 * voice(seconds, f0=230.0)
    return {"two": np.stack([a, b], 1), "dual": np.stack([a, a], 1),
            "one side": np.stack([a, np.zeros_like(a)], 1), "inverted": np.stack([a, -a], 1)}


@pytest.mark.parametrize("layout", ["two", "dual", "one side", "inverted"])
def test_big_endian_or_float_stereo_is_warned_about(layout, caplog):
    """Multichannel streams were never checked (review, stop 53): big-endian or float
    samples given as s16le stereo got emotions on noise without a word."""
    st = layouts()[layout]
    right = s16(st)
    assert pcm_format_hint(right.reshape(-1), 2) is None
    assert pcm_format_hint(right.byteswap().reshape(-1), 2) == "big-endian"
    as_s16 = np.frombuffer(st.astype("<f4").tobytes(), "<i2")
    assert pcm_format_hint(as_s16, 2) == "32-bit float"
    quiet = np.zeros((int(4.5 * SR), 2), "<i2")  # after a silent start too (stop 52)
    for body, said, fmt in ((right.byteswap(), "big-endian", "s16be"),
                            (as_s16.reshape(-1, 2), "32-bit float", "f32le"), (right, None, "")):
        caplog.clear()
        with caplog.at_level("WARNING"):
            list(iter_pcm(io.BytesIO(np.concatenate([quiet, body]).tobytes()), channels=2))
        assert caplog.text.count("looks like") == (0 if said is None else 1), caplog.text
        assert said is None or (f"looks like {said} samples" in caplog.text and f"-f {fmt} "
                                "-ar 16000 -ac 2 -i - -f s16le - | emovox listen - "
                                "--channels 2" in caplog.text)


def test_the_advice_names_the_rate_listen_must_read():
    v = s16(voice(3.0, sr=22050)).byteswap()
    with pytest.MonkeyPatch.context() as mp:
        said: list[str] = []
        mp.setattr("emovox.serving.live.log.warning", lambda f, *a: said.append(f % a))
        list(iter_pcm(io.BytesIO(v.tobytes()), sr=22050))
    assert len(said) == 1 and said[0].endswith("| emovox listen - --rate 22050"), said


def test_real_stereo_speech_is_not_taken_for_another_format(shared_ravdess, caplog):
    """RAVDESS clips as stereo streams (two voices, one voice on both, on one side, in
    opposite polarity, beside hiss), silences between clips: never another format; the same
    samples byte-swapped are said to be."""
    from emovox.audio import load_audio

    clips = sorted((shared_ravdess / "Audio_Speech_Actors_01-24").glob("Actor_0[1-4]/*.flac"))
    waves = [load_audio(p, sr=SR).wave for p in clips[::12][:8]]
    gap = np.zeros(SR // 2, np.float32)
    a = np.concatenate([x for w in waves[:4] for x in (w, gap)])
    b = np.concatenate([x for w in waves[4:] for x in (gap, w)])
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    hiss = noise(n / SR, amp=10 ** (-50 / 20))[:n]
    for name, (left, right) in {"two": (a, b), "dual": (a, a), "one side": (a, 0 * a),
                                "inverted": (a, -a), "hiss": (a, hiss)}.items():
        frames = stereo(left, right)
        for body, warns in ((frames, False), (frames.byteswap(), True)):
            caplog.clear()
            with caplog.at_level("WARNING"):
                list(iter_pcm(io.BytesIO(body.tobytes()), channels=2))
            assert ("looks like" in caplog.text) is warns, (name, warns, caplog.text)
