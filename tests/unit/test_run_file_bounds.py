"""A run folder's config.yaml and metrics.json are read within bounds (code review, stop
48): a file over a size cap is refused, YAML aliases (each unfolds a whole subtree: 479
bytes took 46 MiB and 2.7 s, two levels more 4.6 GB) are refused, naming the file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from emovox.config import (
    CONFIG_MAX_BYTES,
    DataConfig,
    ExperimentConfig,
    ModelConfig,
    read_capped,
    read_run_yaml,
)
from emovox.errors import ConfigError
from emovox.experiment import runfiles
from emovox.experiment.recipe import UNREADABLE, recipe_differences
from emovox.experiment.rundest import check_run_destination, is_run_dir
from emovox.experiment.rundir import RunDirError, read_metrics, run_val_speakers

#: a config.yaml whose split section is written once and repeated by an alias
ALIASED = """data: {corpus: ravdess}
model: {name: egemaps_logreg}
split: &s {protocol: emobox, n_val_speakers: 3}
extra: *s
"""


def _bomb(levels: int) -> str:
    """A config whose model params unfold into 10**levels strings."""
    lines = ["data: {corpus: ravdess}", "split: {protocol: emobox}", "model:",
             "  name: egemaps_logreg", "  params:",
             '    a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"    a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_a_config_with_aliases_is_refused_naming_the_file(tmp_path):
    f = tmp_path / "config.yaml"
    f.write_text(_bomb(8))  # 10**8 strings unfolded: gigabytes before
    with pytest.raises(ConfigError, match=rf"^{f}: line 7: a YAML alias \(\*a0\)"):
        ExperimentConfig.load_yaml(f)
    f.write_text(ALIASED)
    with pytest.raises(ConfigError, match="alias"):
        read_run_yaml(f)


def test_a_config_over_the_cap_or_nested_too_deep_is_refused(tmp_path):
    f = tmp_path / "config.yaml"
    f.write_text("seed: 1\n" + "#" * CONFIG_MAX_BYTES + "\n")
    with pytest.raises(ConfigError, match=rf"^{f}: larger than 1024 KiB"):
        ExperimentConfig.load_yaml(f)
    f.write_text("seed: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError, match="nested too deep"):
        ExperimentConfig.load_yaml(f)


def test_a_config_emovox_writes_reads_back(tmp_path):
    """emovox writes no aliases, even where values are shared: its configs read as before."""
    shared = ["x", "y"]
    cfg = ExperimentConfig(data=DataConfig(vocal_channels=("speech",), train_extra=("song",)),
                           model=ModelConfig(params={"a": shared, "b": shared,
                                                     "c": {"d": shared}}))
    f = tmp_path / "config.yaml"
    cfg.save_yaml(f)
    assert "*" not in f.read_text() and "&" not in f.read_text()
    assert read_run_yaml(f) == yaml.safe_load(f.read_text())
    assert ExperimentConfig.load_yaml(f).to_dict() == cfg.to_dict()


def test_read_capped_refuses_what_is_no_regular_file(tmp_path):
    fifo = tmp_path / "metrics.json"
    os.mkfifo(fifo)  # reading it waited for a writer for ever
    with pytest.raises(ConfigError, match="not a regular file"):
        read_capped(fifo)
    (tmp_path / "t").write_text("é")
    assert read_capped(tmp_path / "t", 2) == "é"
    with pytest.raises(ConfigError, match="larger than"):
        read_capped(tmp_path / "t", 1)


def _run(path: Path, metrics: dict | None = None, config: str | None = None) -> Path:
    path.mkdir()
    if metrics is not None:
        (path / "metrics.json").write_text(json.dumps(metrics))
    if config is not None:
        (path / "config.yaml").write_text(config)
    (path / "confusion.png").write_bytes(b"png")
    (path / "predictions.csv").write_text("true,p_angry\n")  # what every run folder holds
    return path


def test_metrics_over_the_cap_are_refused(tmp_path, monkeypatch):
    run = _run(tmp_path / "r", {"protocol": "emobox", "pad": "x" * 2000})
    assert read_metrics(run)["protocol"] == "emobox" and is_run_dir(run)
    monkeypatch.setattr(runfiles, "METRICS_MAX_BYTES", 1000)  # where read_metrics lives
    with pytest.raises(RunDirError, match=rf"^{run / 'metrics.json'}: larger than"):
        read_metrics(run)
    assert not is_run_dir(run)  # not known for a run folder: never replaced
    with pytest.raises(RunDirError, match="not an emovox run folder"):
        check_run_destination(run)


def test_an_aliased_config_in_a_run_folder_is_not_read(tmp_path):
    """``--out`` on any folder read its config.yaml; ``calibrate`` and ``report`` too."""
    run = _run(tmp_path / "r", config=ALIASED)
    assert not is_run_dir(run)
    assert run_val_speakers(run) is None  # was 3, read through the alias
    (why,) = recipe_differences(run, ExperimentConfig().to_dict())
    assert why.startswith(f"{UNREADABLE}: {run / 'config.yaml'}: line 4: a YAML alias")
    plain = _run(tmp_path / "p", config=ALIASED.replace("&s ", "").replace(
        "*s", "{protocol: emobox}"))
    assert is_run_dir(plain) and run_val_speakers(plain) == 3
    assert recipe_differences(plain, ExperimentConfig().to_dict()) == []
