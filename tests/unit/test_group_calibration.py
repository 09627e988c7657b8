"""ECE per group (per held-out corpus) with a temperature fitted without the group."""

from __future__ import annotations

import numpy as np
import pytest

from emovox.calibration import fit_temperature, group_calibration_report, softmax
from emovox.metrics import expected_calibration_error


def _overconfident(n: int, rng: np.random.Generator, scale: float) -> tuple[np.ndarray, ...]:
    """Logits whose arg-max is right 60 % of the time but which a larger ``scale`` makes
    surer: ``scale`` sets how over-confident the group is."""
    y = rng.integers(0, 4, n)
    guess = np.where(rng.random(n) < 0.6, y, rng.integers(0, 4, n))
    z = rng.normal(0, 0.3, (n, 4))
    z[np.arange(n), guess] += 1.0
    return softmax(z * scale), y


def test_each_group_gets_its_own_figures_and_a_temperature_fitted_without_it():
    rng = np.random.default_rng(0)
    pa, ya = _overconfident(600, rng, 6.0)  # very over-confident
    pb, yb = _overconfident(600, rng, 1.0)
    p, y = np.vstack([pa, pb]), np.concatenate([ya, yb])
    groups = np.array(["a"] * 600 + ["b"] * 600)
    t = fit_temperature(p, y)
    rep = group_calibration_report(p, y, groups, t)
    assert list(rep) == ["a", "b"]
    assert rep["a"]["n"] == 600 and rep["b"]["n"] == 600
    assert rep["a"]["ece_before"] == pytest.approx(expected_calibration_error(pa, ya))
    # the temperature "without a" is the one fitted on b alone, and vice versa
    assert rep["a"]["temperature_without"] == pytest.approx(fit_temperature(pb, yb))
    assert rep["b"]["temperature_without"] == pytest.approx(fit_temperature(pa, ya))
    # a is the over-confident group: raw ECE high; the pooled T (which saw a) helps it more
    # than a T fitted on b alone, which never saw how over-confident a is
    assert rep["a"]["ece_before"] > 0.2
    assert rep["a"]["ece_after"] < rep["a"]["ece_without"]


def test_one_group_has_no_held_out_temperature():
    rng = np.random.default_rng(1)
    p, y = _overconfident(200, rng, 3.0)
    rep = group_calibration_report(p, y, np.array(["only"] * 200), 1.5)
    assert set(rep["only"]) == {"n", "ece_before", "ece_after"}


def test_groups_must_match_the_rows():
    p = softmax(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="groups"):
        group_calibration_report(p, np.array([0, 1, 2, 0]), np.array(["a", "b"]), 1.0)


def test_exclude_by_leaves_every_row_of_the_corpus_out_of_the_fit_without_it():
    """Groups corpus x protocol (two runs pooled): the fit "without emovo" leaves out the
    emovo rows of both runs; a group whose corpus is everything gets no such fit."""
    rng = np.random.default_rng(2)
    pa, ya = _overconfident(300, rng, 6.0)  # emovo, loco
    pb, yb = _overconfident(300, rng, 1.0)  # urdu, loco
    pc, yc = _overconfident(300, rng, 3.0)  # emovo, another protocol
    p, y = np.vstack([pa, pb, pc]), np.concatenate([ya, yb, yc])
    groups = np.array(["emovo"] * 300 + ["urdu"] * 300 + ["emovo (emobox)"] * 300)
    corpora = np.array(["emovo"] * 300 + ["urdu"] * 300 + ["emovo"] * 300)
    rep = group_calibration_report(p, y, groups, 1.0, exclude_by=corpora)
    assert rep["emovo"]["temperature_without"] == pytest.approx(fit_temperature(pb, yb))
    assert rep["emovo (emobox)"]["temperature_without"] == pytest.approx(fit_temperature(pb, yb))
    both = fit_temperature(np.vstack([pa, pc]), np.concatenate([ya, yc]))
    assert rep["urdu"]["temperature_without"] == pytest.approx(both)
    # without exclude_by, "without emovo" would still see the other run's emovo rows
    plain = group_calibration_report(p, y, groups, 1.0)
    assert plain["emovo"]["temperature_without"] != pytest.approx(fit_temperature(pb, yb))
    one = group_calibration_report(pa, ya, np.array(["x"] * 150 + ["y"] * 150), 1.0,
                                   exclude_by=np.array(["c"] * 300))
    assert "temperature_without" not in one["x"]
    with pytest.raises(ValueError, match="exclude_by"):
        group_calibration_report(p, y, groups, 1.0, exclude_by=corpora[:5])
