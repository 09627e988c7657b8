"""Names a user types: ``emovox models`` lists the bundled models and the architectures
apart, light (no torch/librosa/sklearn import); an unknown ``--model`` gets "did you mean"
and exit code 2 before anything is loaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
from cli_helpers import invoke, text

from emovox.artifact import BUNDLED_MODELS
from emovox.models import MODELS

SRC = Path(__file__).resolve().parents[2] / "src"


def test_models_lists_bundled_models_then_architectures_without_heavy_imports():
    code = (
        "import sys, time\n"
        "t = time.perf_counter()\n"
        "from emovox.cli import app\n"
        "from typer.testing import CliRunner\n"
        "res = CliRunner().invoke(app, ['models'])\n"
        "assert res.exit_code == 0, res.output\n"
        "print(res.output)\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'librosa', "
        "'sklearn'})\n"
        "print('HEAVY', heavy, 'SECONDS', round(time.perf_counter() - t, 2))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(SRC), "COLUMNS": "200"})
    assert r.returncode == 0, r.stderr
    assert "HEAVY []" in r.stdout, r.stdout[-300:]
    out = " ".join(r.stdout.split())
    bundled_at = out.index("bundled models")
    arch_at = out.index("architectures: evaluate/train --model")
    assert bundled_at < arch_at
    bundled_part, arch_part = out[bundled_at:arch_at], out[arch_at:]
    for name in BUNDLED_MODELS:
        doc = json.loads((Path(str(resources.files("emovox"))) / BUNDLED_MODELS[name]
                          / "model.json").read_text())
        ua = doc["metrics"]["summary"]["ua"]
        assert f"│ {name} │ {doc['name']} │" in bundled_part
        assert f"{ua['mean']:.1f} ± {ua['std']:.1f}" in bundled_part
        assert f"│ {name} │" not in arch_part
    for name in MODELS:
        assert f"│ {name} │" in arch_part


@pytest.mark.parametrize("command", [
    ["predict", "x.wav"], ["batch", "x.wav", "--out", "r.csv"], ["timeline", "x.wav"],
    ["serve"], ["app"],
])
def test_unknown_bundled_name_suggests_the_close_one(command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = invoke([*command, "--model", "acurate"])
    assert res.exit_code == 2, res.output
    msg = text(res)
    assert "unknown model 'acurate'" in msg and "Did you mean 'accurate'?" in msg
    assert "Traceback" not in msg and not (tmp_path / "r.csv").exists()


def test_architecture_name_given_to_predict_is_explained(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = invoke(["predict", "x.wav", "--model", "crnn"])
    assert res.exit_code == 2
    assert "'crnn' is an architecture" in text(res) and "default, accurate" in text(res)
    nothing_close = invoke(["predict", "x.wav", "--model", "zzzz"])
    assert nothing_close.exit_code == 2 and "Did you mean" not in text(nothing_close)


def test_a_model_folder_that_exists_is_not_refused_as_a_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "acurate").mkdir()  # exists: a folder, whatever its name
    res = invoke(["predict", "x.wav", "--model", "acurate"])
    assert res.exit_code == 2 and "unknown model" not in text(res)
    assert "model.json" in text(res)


@pytest.mark.parametrize("command", ["evaluate", "train"])
def test_unknown_architecture_suggests_close_names(command, tmp_path):
    extra = ["--out", str(tmp_path / "m")] if command == "train" else []
    res = invoke([command, "--data", str(tmp_path), "--model", "crn", *extra])
    assert res.exit_code == 2
    msg = text(res)
    assert "unknown architecture 'crn'" in msg and "Did you mean 'crnn'" in msg
    bundled = invoke([command, "--data", str(tmp_path), "--model", "default", *extra])
    assert bundled.exit_code == 2 and "'default' is a bundled trained model" in text(bundled)
