"""Bundled model names: ``default`` resolves to the packaged folder; ``compare`` (formerly
``accurate``) is no longer bundled (its cold start is over the limits, issue 13): both names
give an error that says how to build it; a path that exists wins over a name."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from emovox.artifact import (
    BUNDLED_MODELS,
    DEPRECATED_MODEL_NAMES,
    RETIRED_MODELS,
    ArtifactError,
    bundled_name,
    default_model_path,
    is_bundled_name,
    model_folder,
    resolve_model_path,
    retired_model_message,
)
from emovox.serving.predictor import Predictor


def test_default_and_ravdess_are_the_bundled_models():
    assert list(BUNDLED_MODELS) == ["default", "ravdess"]
    assert resolve_model_path("ravdess") == default_model_path().parent / "ravdess_model"
    assert DEPRECATED_MODEL_NAMES == {}
    assert set(RETIRED_MODELS) == {"compare", "accurate"}
    assert not (default_model_path().parent / "compare_model").exists()
    assert not (default_model_path().parent / "accurate_model").exists()
    assert bundled_name("default") == "default"
    assert resolve_model_path(None) == resolve_model_path("default") == default_model_path()


@pytest.mark.parametrize("name", ["compare", "accurate"])
def test_a_retired_name_says_how_to_build_the_model(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    msg = retired_model_message(name)
    assert msg is not None and msg.startswith(f"model '{name}' is no longer bundled")
    assert "emovox train" in msg and "--model compare_lrcv" in msg and "1.5 s" in msg
    assert not is_bundled_name(name) and bundled_name(name) is None
    with pytest.raises(ArtifactError) as err:
        Predictor.from_artifact(name)
    assert str(err.value) == msg
    with pytest.raises(FileNotFoundError):
        model_folder(name)


@pytest.mark.parametrize("name", ["accurate", "compare"])
def test_an_existing_folder_of_that_name_wins(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / name).mkdir()
    assert retired_model_message(name) is None
    assert resolve_model_path(name) == tmp_path.joinpath(name).relative_to(tmp_path)
    with pytest.raises(ArtifactError) as err:
        Predictor.from_artifact(name)
    assert "no longer bundled" not in str(err.value)


def test_a_data_folder_named_like_a_bundled_model_does_not_hide_it(tmp_path, monkeypatch,
                                                                  caplog):
    """`predict --model ravdess` beside a data folder `ravdess` said "ravdess is not an emovox
    model folder" (QA, stop 40): a model folder of that name still wins."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ravdess").mkdir()
    with caplog.at_level("WARNING"):
        assert bundled_name("ravdess") == "ravdess"
        assert resolve_model_path("ravdess") == default_model_path().parent / "ravdess_model"
    assert "'ravdess' here is not a model folder (no model.json): the bundled model " \
        "'ravdess' answers" in caplog.text
    shutil.copytree(default_model_path().parent / "ravdess_model", tmp_path / "default")
    assert bundled_name("default") is None
    assert resolve_model_path("default") == Path("default")


@pytest.mark.parametrize("name", ["Accurate", "accurate_model", "compare_lrcv", "", "x/compare"])
def test_other_strings_are_no_bundled_name(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert not is_bundled_name(name) and bundled_name(name) is None
    assert retired_model_message(name) is None


def test_models_table_reads_the_further_cv_runs(tmp_path, monkeypatch):
    """``metrics.also`` of a bundled model.json (runs pooled into its calibration) is listed
    beside the main run: e.g. RAVDESS EmoBox beside leave-one-corpus-out."""
    import json

    from emovox.cli import names

    def run(protocol: str, mean: float, std: float) -> dict:
        return {"protocol": protocol, "summary": {"ua": {"mean": mean, "std": std}}}

    (tmp_path / "model.json").write_text(json.dumps(
        {"name": "fusion(a+b)", "kind": "torch", "n_params": 10,
         "metrics": {**run("loco", 33.4, 10.6), "also": [run("emobox", 61.3, 4.7)]}}))
    monkeypatch.setattr(names, "_bundled_folder", lambda name: tmp_path)
    b = names.read_bundled("default")
    assert b is not None and (b.protocol, b.ua_mean) == ("loco", 33.4)
    assert b.also == (("emobox", 61.3, 4.7),)
    (tmp_path / "model.json").write_text(json.dumps({"name": "x", "metrics": run("emobox", 1, 0)}))
    assert names.read_bundled("default").also == ()
