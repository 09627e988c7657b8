"""Network parameters that are valid each but not together fail at ``-p`` validation, before
any feature is extracted (review, stop 52: mlp's hidden and dropouts)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from emovox.config import DataConfig, ExperimentConfig, ModelConfig
from emovox.errors import ConfigError
from emovox.models import validate_params

MISMATCH = ("-p hidden has 1 layer but -p dropouts has 3 rates: give one dropout rate per "
            "hidden layer, e.g. -p dropouts=[0.3]")


def test_one_dropout_rate_per_hidden_layer_is_checked_at_validation():
    with pytest.raises(ConfigError, match=re.escape(MISMATCH)):
        validate_params("mlp", {"hidden": "[64]"})
    with pytest.raises(ConfigError, match=re.escape("has 2 layers but -p dropouts has 1 rate: "
                                                    "give one dropout rate per hidden layer, "
                                                    "e.g. -p dropouts=[0.3,0.3]")):
        validate_params("mlp", {"hidden": "[64,32]", "dropouts": "[0.2]"})
    assert validate_params("mlp", {"hidden": "[64]", "dropouts": "[0.3]"}) == {
        "hidden": (64,), "dropouts": (0.3,)}


def test_build_net_refuses_the_same_with_the_same_words():
    from emovox.models import mlp

    with pytest.raises(ValueError, match=re.escape(MISMATCH)):
        mlp.build_net(8, (340,), hidden=(64,))


def test_a_run_refuses_the_mismatch_before_reading_its_data():
    from emovox.experiment.runner import run_experiment

    cfg = ExperimentConfig(data=DataConfig(root="/nonexistent/corpus"),
                           model=ModelConfig("mlp", {"epochs": 1, "hidden": "[64]"}))
    with pytest.raises(ConfigError, match=re.escape(MISMATCH)):
        run_experiment(cfg, Path("/nonexistent/run"))
