"""The bundled models give the pinned probabilities (``tests/data/bundled_reference.json``,
written from main before the renovation) on the 8 clips of RAVDESS ``original-48k``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emovox.serving.predictor import Predictor

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "bundled_reference.json"

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", ["default", "accurate"])
def test_bundled_model_probabilities_are_pinned(name, shared_data):
    clips = shared_data / "ravdess" / "original-48k"
    if not clips.is_dir():
        pytest.skip(f"the 8 reference clips are not at {clips} (set EMOVOX_SHARED_DATA)")
    reference = json.loads(REFERENCE.read_text())[name]
    assert len(reference) == 8
    pred = Predictor.from_artifact(name)
    for clip, expected in reference.items():
        got = pred.predict_file(clips / clip).probabilities
        assert set(got) == set(expected), clip
        worst = max(abs(got[k] - expected[k]) for k in expected)
        assert worst <= 1e-6, f"{name} {clip}: max |dp| = {worst:.2e}"
