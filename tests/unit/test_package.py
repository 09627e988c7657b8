"""``emovox ensemble`` refuses one model given twice under two folder names (review, stop 52:
``m/crnn`` and its ``cp -r`` copy made ``fusion(crnn_cmvn+crnn_cmvn)``)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from emovox.errors import ConfigError
from emovox.experiment.package import ensemble_bundle


def _copies(model: Path, tmp_path: Path) -> tuple[Path, Path]:
    a, b = tmp_path / "crnn", tmp_path / "crnn-x"
    shutil.copytree(model, a)
    shutil.copytree(model, b)
    return a, b


def test_a_copied_member_is_refused_naming_both_folders(tiny_model, tmp_path):
    a, b = _copies(tiny_model, tmp_path)
    with pytest.raises(ConfigError, match=re.escape(f"{a} and {b} hold the same weights")):
        ensemble_bundle([a, b], tmp_path / "out", onnx=False)
    assert not (tmp_path / "out").exists()


def test_a_copy_whose_model_json_records_no_digest_is_refused_too(tiny_model, tmp_path):
    a, b = _copies(tiny_model, tmp_path)
    doc = json.loads((b / "model.json").read_text())
    doc.pop("digests", None)  # written before digests were recorded: the file is hashed
    (b / "model.json").write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match="hold the same weights"):
        ensemble_bundle([a, b], tmp_path / "out", onnx=False)
