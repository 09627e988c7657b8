"""The bundled models give the pinned probabilities (``tests/data/bundled_reference.json``,
written from main before the renovation) on the 8 clips of RAVDESS ``original-48k``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emovox.serving.predictor import Predictor

CLIPS = Path(__file__).resolve().parents[2] / "shared/data/ravdess/original-48k"
REFERENCE = Path(__file__).parent / "data" / "bundled_reference.json"


@pytest.mark.parametrize("name", ["default", "accurate"])
def test_bundled_model_probabilities_are_pinned(name):
    if not CLIPS.is_dir():
        pytest.skip(f"the 8 reference clips are not at {CLIPS}")
    reference = json.loads(REFERENCE.read_text())[name]
    assert len(reference) == 8
    pred = Predictor.from_artifact(name)
    for clip, expected in reference.items():
        got = pred.predict_file(CLIPS / clip).probabilities
        assert set(got) == set(expected), clip
        worst = max(abs(got[k] - expected[k]) for k in expected)
        assert worst <= 1e-6, f"{name} {clip}: max |dp| = {worst:.2e}"
