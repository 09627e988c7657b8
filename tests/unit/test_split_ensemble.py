"""bench/split_ensemble.py: an ensemble artifact back into member folders that re-join to the
same model."""

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import split_ensemble  # noqa: E402

from emovox.artifact import default_model_path  # noqa: E402


def test_named_recipes_are_recognised_from_their_summary():
    from dataclasses import asdict

    from emovox.augment import AugmentRecipe, augment_summary, recipe_config

    cfg = asdict(recipe_config(AugmentRecipe.CHANNEL, 2))
    assert split_ensemble.member_augment(augment_summary(cfg)) == cfg
    assert split_ensemble.member_augment("3 augmented copies of each clip: juggling") is None


@pytest.fixture(scope="module")
def members(tmp_path_factory) -> list[Path]:
    return split_ensemble.split(default_model_path(), tmp_path_factory.mktemp("split") / "m")


def test_the_bundled_default_splits_into_members_that_rejoin_exactly(members):
    path = default_model_path()
    names = [json.loads((m / "model.json").read_text())["name"] for m in members]
    ens_meta = json.loads((path / "model.json").read_text())
    assert names == ens_meta["trained_on"]["members"]
    for m in members:
        meta = json.loads((m / "model.json").read_text())
        assert meta["preprocess"]["feature_params"] == ens_meta["preprocess"]["feature_params"]
        assert meta["experiment_config"]["augment"]["variants"] == 2
    assert split_ensemble.check(path, members) < 1e-6


def test_refuses_what_is_not_an_ensemble(members, tmp_path):
    with pytest.raises(SystemExit, match="not an ensemble"):
        split_ensemble.split(members[0], tmp_path / "again")
