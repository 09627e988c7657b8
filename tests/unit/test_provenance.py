"""Where a result was computed: machine and package versions beside every run and model."""

from __future__ import annotations

from importlib import metadata

from emovox.experiment.card import model_card
from emovox.experiment.fuse import environments
from emovox.provenance import CPU_FEATURES, PACKAGES, environment


def test_the_environment_names_this_process_s_versions():
    env = environment()
    assert env["packages"]["numpy"] == metadata.version("numpy")
    assert set(env["packages"]) <= set(PACKAGES)
    assert set(env["cpu_features"]) <= set(CPU_FEATURES)
    assert env["python"].count(".") == 2 and env["cpu"]


def test_combined_runs_keep_one_environment_or_list_the_distinct_ones():
    a = {"packages": {"torch": "2.13.0"}, "cpu": "x"}
    b = {"packages": {"torch": "2.13.0"}, "cpu": "y"}
    assert environments([{"environment": a}, {"environment": a}]) == {"environment": a}
    assert environments([{"environment": a}, {"environment": b}, {"environment": a}]) == {
        "environments": [a, b]}
    assert environments([{}, {}]) == {}  # runs written before it was recorded
    # a merged run that already listed several is combined again without losing any
    assert environments([{"environments": [a, b]}, {"environment": b}]) == {
        "environments": [a, b]}


def test_the_card_says_what_each_model_was_trained_with():
    env = {"python": "3.11.7", "cpu": "Xeon", "cpu_features": ["avx2"],
           "packages": {"torch": "2.13.0", "numpy": "2.4.6"}}
    card = model_card({"trained_on": {"clips": 1, "speakers": ["a"], "environment": env}})
    assert "- trained with: torch 2.13.0, numpy 2.4.6 (Python 3.11.7, Xeon avx2)" in card
    card = model_card({"trained_on": {"clips": 1, "speakers": ["a"], "members": ["m1", "m2"],
                                      "member_environment": [None, env]}})
    assert "- m2 trained with: torch 2.13.0" in card and "m1 trained with" not in card
    assert "trained with" not in model_card({"trained_on": {"clips": 1, "speakers": ["a"]}})
