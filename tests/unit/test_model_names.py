"""Bundled model names: ``compare`` (formerly ``accurate``) and ``default`` resolve to the
packaged folders; the old name resolves to the new one with one deprecation warning per
process; a path that exists wins over a name."""

from __future__ import annotations

import logging

import pytest

import emovox.artifact.paths as paths
from emovox.artifact import (
    BUNDLED_MODELS,
    DEPRECATED_MODEL_NAMES,
    bundled_name,
    default_model_path,
    is_bundled_name,
    model_folder,
    resolve_model_path,
)

LOGGER = "emovox.artifact.paths"


@pytest.fixture
def fresh_warnings(monkeypatch):
    monkeypatch.setattr(paths, "_warned", set())


def test_bundled_names_are_default_and_compare_with_accurate_as_an_old_name():
    assert list(BUNDLED_MODELS) == ["default", "compare"]
    assert DEPRECATED_MODEL_NAMES == {"accurate": "compare"}
    assert BUNDLED_MODELS["compare"] == "data/compare_model"
    assert model_folder("compare").name == "compare_model"
    assert not (default_model_path().parent / "accurate_model").exists()


def test_accurate_resolves_to_compare_and_warns_once(fresh_warnings, caplog, tmp_path,
                                                      monkeypatch):
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert resolve_model_path("compare") == resolve_model_path("accurate")
        assert model_folder("accurate") == model_folder("compare")
        assert bundled_name("accurate") == "compare"
    notes = [r.getMessage() for r in caplog.records]
    assert len(notes) == 1, notes
    assert notes[0].startswith("model name 'accurate' is deprecated: the same model is now "
                               "called 'compare' (use --model compare)")


def test_current_names_do_not_warn(fresh_warnings, caplog, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert bundled_name("compare") == "compare" and bundled_name("default") == "default"
        assert resolve_model_path(None) == resolve_model_path("default") == default_model_path()
    assert caplog.records == []


@pytest.mark.parametrize("name", ["accurate", "compare"])
def test_an_existing_folder_of_that_name_wins(name, fresh_warnings, caplog, tmp_path,
                                             monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / name).mkdir()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert bundled_name(name) is None
        assert resolve_model_path(name) == tmp_path.joinpath(name).relative_to(tmp_path)
    assert caplog.records == []
    assert is_bundled_name(name)  # still a name: only resolution looks at the disk


@pytest.mark.parametrize("name", ["Accurate", "accurate_model", "compare_lrcv", "", "x/compare"])
def test_other_strings_are_no_bundled_name(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert not is_bundled_name(name) and bundled_name(name) is None
