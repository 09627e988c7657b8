"""The cli package: ``emovox --help`` and ``emovox models`` import no heavy library (torch,
librosa, sklearn, streamlit, fastapi, uvicorn); ``scan`` counts clips per label."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
HEAVY = ("torch", "librosa", "sklearn", "streamlit", "fastapi", "uvicorn", "onnxruntime")


@pytest.mark.parametrize("argv", [["--help"], ["models"], ["predict", "--help"]])
def test_cli_imports_no_heavy_library(argv):
    code = (
        "import sys\n"
        "from emovox.cli import app\n"
        "from typer.testing import CliRunner\n"
        f"res = CliRunner().invoke(app, {argv!r})\n"
        "assert res.exit_code == 0, res.output\n"
        f"heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))\n"
        "print('HEAVY', heavy)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(SRC)})
    assert r.returncode == 0, r.stderr
    assert "HEAVY []" in r.stdout, r.stdout[-500:]


def test_heavy_check_can_fail():
    """The probe above sees a heavy import when one happens."""
    code = (f"import sys, sklearn\nprint('HEAVY', sorted({{m.split('.')[0] for m in "
            f"sys.modules}} & set({HEAVY!r})))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(SRC)})
    assert "HEAVY ['sklearn']" in r.stdout, r.stderr


def test_scan_counts_clips_per_label(fake_ravdess, tmp_path):
    from typer.testing import CliRunner

    from emovox.cli import app

    res = CliRunner().invoke(app, ["scan", str(fake_ravdess)])
    assert res.exit_code == 0, res.output
    assert "96 files (96 labelled" in res.output and "6 speakers" in res.output
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip()
            for line in res.output.splitlines() if line.count("│") == 3}
    assert len(rows) == 8 and set(rows.values()) == {"12"}
    missing = CliRunner().invoke(app, ["scan", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "error:" in missing.output
