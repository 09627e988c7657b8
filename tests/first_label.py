"""A predictor with no model for batch tests: every clip is answered with the first label
(uniform probabilities, the clip's duration), and :func:`install` makes
``Predictor.from_artifact`` return it."""

from __future__ import annotations

import numpy as np
import pytest

from emovox.labels import LABELS
from emovox.serving import predictor as predictor_mod
from emovox.serving.answer import Prediction, Status

MODEL = "fake-1"


class FirstLabel:
    """A predictor that answers every clip with its first label (duration: the clip's)."""

    sr = 16000

    def predict_batch(self, waves: list[np.ndarray], sr: int, sources: list[str]
                      ) -> list[Prediction]:
        return [self.predict_wave(w, sr, source=s) for w, s in zip(waves, sources, strict=True)]

    def predict_wave(self, wave: np.ndarray, sr: int, source: str = "") -> Prediction:
        p = {lab: 1 / len(LABELS) for lab in LABELS}
        return Prediction(LABELS[0], p[LABELS[0]], p, 0.0, 0.0, len(wave) / sr, source,
                          Status.OK, speech_seconds=len(wave) / sr, n_windows=1,
                          model_id=MODEL)


def install(monkeypatch: pytest.MonkeyPatch) -> None:
    """``Predictor.from_artifact`` gives a :class:`FirstLabel`; its model id is :data:`MODEL`."""
    monkeypatch.setattr(predictor_mod.Predictor, "from_artifact",
                        classmethod(lambda cls, *a, **k: FirstLabel()))
    monkeypatch.setattr(predictor_mod, "model_id_of", lambda artifact: MODEL)
