"""The command line stays light: ``emovox --help`` and ``emovox models`` import no heavy
library (torch, librosa, sklearn, streamlit, fastapi, uvicorn)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
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
