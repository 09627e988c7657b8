"""Model parameters (``-p KEY=VALUE``): typed, validated once, refused before any work."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emovox.cli import app
from emovox.config import DataConfig, ExperimentConfig, ModelConfig
from emovox.errors import ConfigError
from emovox.experiment import run_experiment
from emovox.models import MODELS, validate_params
from emovox.models.configs import Gamma, Pooling
from emovox.models.params import Loss, Schedule, coerce_value
from emovox.training import build_model

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.mark.parametrize(("value", "tp", "expected"), [
    ("8", int, 8), (8.0, int, 8), ("1e-3", float, 1e-3), (3, float, 3.0),
    ("false", bool, False), ("Yes", bool, True), (True, bool, True),
    ("focal", Loss, Loss.FOCAL), ("cosine", Schedule, Schedule.COSINE),
    ("8,16", tuple[int, ...], (8, 16)), ([8, 16], tuple[int, ...], (8, 16)),
    ("[0.5, 0.25]", tuple[float, ...], (0.5, 0.25)),
    (5, tuple[int, ...], (5,)), (0.5, tuple[float, ...], (0.5,)),  # one value (stop 32)
    ("0.1", float | Gamma, 0.1), ("auto", float | Gamma, Gamma.AUTO),
])
def test_values_are_coerced_to_the_field_type(value, tp, expected) -> None:
    got = coerce_value(value, tp)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(("value", "tp"), [
    ("eight", int), (2.5, int), (True, int), ("fast", float), ("nan", float),
    ("maybe", bool), (1, bool), ("mse", Loss), ("8,x", tuple[int, ...]), (5, tuple[int, int]),
    ("huge", float | Gamma), (3, str),
])
def test_values_that_do_not_parse_are_refused(value, tp) -> None:
    with pytest.raises(ValueError):
        coerce_value(value, tp)


def test_unknown_key_names_valid_keys_and_near_miss() -> None:
    with pytest.raises(ConfigError) as exc:
        validate_params("crnn", {"gru_hiden": 8})
    msg = str(exc.value)
    assert "did you mean 'gru_hidden'" in msg and "valid keys:" in msg
    assert all(k in msg for k in MODELS["crnn"].param_keys)
    with pytest.raises(ConfigError, match="did you mean 'C'.*valid keys: C, max_iter"):
        validate_params("egemaps_logreg", {"c": 2})
    with pytest.raises(ConfigError, match="valid keys"):
        validate_params("fusion_lrcv", {"C": 2})  # C belongs to fusion, not fusion_lrcv
    with pytest.raises(ConfigError, match="seed"):  # the RNG seed is --seed, not -p
        validate_params("mlp", {"seed": 1})


def test_ill_typed_value_names_key_and_type() -> None:
    with pytest.raises(ConfigError, match=r"epochs='abc'.*epochs is int"):
        validate_params("crnn", {"epochs": "abc"})
    with pytest.raises(ConfigError, match=r"gamma.*float or scale\|auto"):
        validate_params("egemaps_svm", {"gamma": "wide"})


def test_every_registered_model_accepts_its_own_defaults() -> None:
    for name, spec in MODELS.items():
        params = spec.defaults.to_params()
        assert spec.configure(params) == spec.defaults, name
        assert set(spec.validate(params)) == set(spec.param_keys), name


def test_validated_params_reach_the_model() -> None:
    params = validate_params("cnn_bilstm", {"pooling": "last", "lr": "5e-4", "epochs": "2"})
    assert params == {"pooling": Pooling.LAST, "lr": 5e-4, "epochs": 2}
    model = build_model(MODELS["cnn_bilstm"], n_classes=8, seed=0, **params)
    assert model.train_cfg.lr == 5e-4 and model.train_cfg.epochs == 2
    assert model.net_params["pooling"] is Pooling.LAST
    svm = MODELS["egemaps_svm"].build(n_classes=8, **validate_params("egemaps_svm",
                                                                     {"gamma": "auto"}))
    assert svm.pipeline.get_params()["clf__estimator__gamma"] == "auto"


def test_run_experiment_validates_before_reading_data() -> None:
    """A bad key fails before the data is looked at; good values are stored typed."""
    cfg = ExperimentConfig(data=DataConfig(root="/nonexistent/corpus"),
                           model=ModelConfig("mlp", {"epochs": "5", "hiden": (8,)}))
    with pytest.raises(ConfigError, match="did you mean 'hidden'"):
        run_experiment(cfg, Path("/nonexistent/run"))
    cfg = ExperimentConfig(data=DataConfig(root=""),
                           model=ModelConfig("mlp", {"epochs": "5", "hidden": "[8, 4]",
                                                     "dropouts": "[0.5, 0.5]"}))
    with pytest.raises(ConfigError, match="no data directory"):
        run_experiment(cfg, Path("/nonexistent/run"))
    assert cfg.model.params == {"epochs": 5, "hidden": (8, 4), "dropouts": (0.5, 0.5)}
    assert cfg.to_dict()["model"]["params"] == {"epochs": 5, "hidden": [8, 4],
                                                "dropouts": [0.5, 0.5]}


@pytest.mark.parametrize(("model", "param", "expect"), [
    ("crnn", "gru_hiden=8", "did you mean 'gru_hidden'"),
    ("egemaps_svm", "C=lots", "C is float"),
])
def test_cli_refuses_bad_param_with_exit_2_before_any_work(tmp_path, model, param,
                                                           expect) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for command in (["evaluate", "--out", str(tmp_path / "run")],
                    ["train", "--out", str(tmp_path / "model")]):
        r = CliRunner().invoke(app, [*command, "--data", str(data), "--model", model,
                                     "-p", param])
        assert r.exit_code == 2, r.output
        assert expect in " ".join(r.output.split())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # nothing written


def test_cli_bad_neural_param_exits_2_fast(tmp_path) -> None:
    """The done-when of issue 8, as a real process: exit 2 in under 5 s, naming the keys."""
    data = tmp_path / "data"  # never read: the parameters are refused first
    data.mkdir()
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "emovox.cli", "evaluate", "--data", str(data),
                        "--model", "crnn", "-p", "gru_hiden=8", "--folds", "0"],
                       capture_output=True, text=True, env=env, timeout=60)
    elapsed = time.perf_counter() - t0
    err = " ".join(r.stderr.split())
    assert r.returncode == 2, r.stderr
    assert "valid keys:" in err and "gru_hidden" in err and "n_aux" in err
    assert elapsed < 5.0
