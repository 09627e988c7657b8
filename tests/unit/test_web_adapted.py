"""The web app's adaptation wording and comparison table (emovox.web.adapted)."""

from __future__ import annotations

import pytest

from emovox.adaptation import Adaptation
from emovox.web.adapted import (
    ADAPTED,
    HEARD,
    adaptation_caption,
    change_line,
    comparison_rows,
)


def test_comparison_rows_are_sorted_by_the_adapted_answer() -> None:
    plain = {"sad": 0.6, "happy": 0.3, "angry": 0.1}
    adapted = {"sad": 0.2, "happy": 0.5, "angry": 0.3}
    rows = comparison_rows(plain, adapted)
    assert [r["emotion"] for r in rows] == ["happy", "angry", "sad"]
    assert rows[0] == {"emotion": "happy", HEARD: 30.0, ADAPTED: 50.0, "change (points)": 20.0}
    assert rows[-1]["change (points)"] == pytest.approx(-40.0)
    with pytest.raises(KeyError):  # the two answers must have the same emotions
        comparison_rows({"sad": 1.0}, {"happy": 1.0})
    edge = comparison_rows({"sad": 0.4996, "happy": 0.5004}, {"sad": 0.4996, "happy": 0.5004})
    assert {r["emotion"]: r[ADAPTED] for r in edge} == {"sad": 49.9, "happy": 50.0}  # (47)


def test_change_line() -> None:
    assert change_line("sad", 0.6, "sad", 0.7) == (
        "Adapted to this speaker, the answer stays **sad** (60% → 70%).")
    assert change_line("sad", 0.6, "happy", 0.5) == (
        "Adapted to this speaker, the answer changes from **sad** to **happy** (50%).")
    assert change_line(None, None, None, None) == "No speech: nothing to adapt."


def test_adaptation_caption_reads_the_record() -> None:
    refs = Adaptation(True, 3, "uploaded references", prior={"sad": 1.0}).to_dict()
    assert adaptation_caption(refs).startswith("Adapted to the speaker of 3 reference clips:")
    own = Adaptation(True, 12, "self", prior={"sad": 1.0}).to_dict()
    assert adaptation_caption(own).startswith(
        "Adapted to the recording's own speaker (12 speech windows):")
    no = Adaptation(False, 2, "self", "2 speech window(s); at least 3 needed to adapt")
    assert adaptation_caption(no.to_dict()) == (
        "Not adapted: 2 speech window(s); at least 3 needed to adapt.")


def test_the_change_line_never_rounds_across_the_uncertain_line():
    """ "(50% → 70%)" for 0.4957 → 0.6996 (QA re-check, stop 37)."""
    from emovox.web.adapted import change_line

    line = change_line("sad", 0.4957, "sad", 0.6996)
    assert "49.6%" in line and "69.9%" in line and "50%" not in line
