"""The audio layer's log of a file's notes held back in one context only
(:func:`emovox.audio.notes_held_back`): ``predict --reference`` and training extraction set
the process-wide level of the ``emovox.audio`` logger, which silenced every other thread's
decoding meanwhile (code review, stop 54)."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
import pytest

from emovox.audio import notes_held_back
from emovox.labels import LABELS
from emovox.serving.answer import Prediction, Status
from signals import voice, write_clip

DECODE = "emovox.audio.decode"  # a logger of the audio layer that says a file's notes


def _other_thread_says(message: str) -> None:
    """``message`` logged by the audio layer in another thread, while this one waits."""
    t = threading.Thread(target=logging.getLogger(DECODE).warning, args=(message,))
    t.start()
    t.join()


def _said(caplog: pytest.LogCaptureFixture, words: str) -> int:
    return sum(words in r.getMessage() for r in caplog.records)


def test_only_this_contexts_notes_are_held_back(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger(DECODE)
    with caplog.at_level(logging.WARNING):
        with notes_held_back():
            log.warning("held note")
            log.error("an error")  # never held back
            _other_thread_says("another thread's note")
            with notes_held_back(False):  # nothing more held back, nothing given back
                log.warning("still held")
        log.warning("said after")
        with notes_held_back(active=False):
            log.warning("not held")
    assert _said(caplog, "held note") == 0 and _said(caplog, "still held") == 0
    assert _said(caplog, "an error") == 1 and _said(caplog, "another thread's note") == 1
    assert _said(caplog, "said after") == 1 and _said(caplog, "not held") == 1
    assert logging.getLogger("emovox.audio").level == logging.NOTSET  # no level was set


class _Fake:
    """A predictor that logs a note of each clip as the decoder would, while another
    thread's decoding logs one too, and answers every clip with one emotion by name."""

    labels = LABELS

    def predict_file(self, path: Path, max_duration: float | None = None) -> Prediction:
        logging.getLogger(DECODE).warning("own note of %s", Path(path).name)
        _other_thread_says(f"another thread's note beside {Path(path).name}")
        k = int(Path(path).stem[1]) % len(LABELS)
        p = np.full(len(LABELS), 0.4 / (len(LABELS) - 1))
        p[k] = 0.6
        return Prediction(LABELS[k], 0.6, dict(zip(LABELS, map(float, p), strict=True)),
                          0.0, 0.0, 1.0, str(path), Status.OK, speech_seconds=1.0,
                          n_windows=1)


def test_a_reference_folder_holds_back_its_own_notes_only(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from emovox.serving.adapt import reference_prior

    ref = tmp_path / "ref"
    ref.mkdir()
    for i in range(3):
        (ref / f"c{i}.wav").write_bytes(b"RIFF" + bytes([i]))
    with caplog.at_level(logging.WARNING):
        assert reference_prior(_Fake(), ref).n == 3
    assert _said(caplog, "own note of") == 0  # said by the answers, in a reference's words
    assert _said(caplog, "another thread's note beside") == 3  # dropped meanwhile


def test_training_extraction_holds_back_its_own_notes_only(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A clip decoded again (an augmented copy) says nothing the first decode said; another
    thread's decoding says its notes meanwhile."""
    import emovox.audio as audio
    import emovox.features as features
    from emovox.features.cache import extract_files

    real = audio.load_audio
    # the decoding is the point, not the features (a log-mel spectrum imports librosa)
    monkeypatch.setattr(features, "extract", lambda name, wave, sr, **kw: np.zeros((1, 4)))

    def load(*args: object, **kw: object) -> audio.Audio:
        logging.getLogger(DECODE).warning("own note")  # stands for the clip's notes
        _other_thread_says("another thread's note")
        return real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(audio, "load_audio", load)
    path = write_clip(tmp_path / "v.wav", voice(2.0))
    with caplog.at_level(logging.WARNING):
        for i in range(2):  # nothing cached: decoded twice
            assert not extract_files([path], "logmel", {}, n_jobs=1,
                                     cache_dir=tmp_path / f"cache{i}").errors
    assert _said(caplog, "own note") == 1 and _said(caplog, "another thread's note") == 2
