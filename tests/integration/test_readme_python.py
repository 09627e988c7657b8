"""The README's "From Python" block runs as written and says what it prints: the library
use a program makes of emovox is the documented one."""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def readme_block() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("### From Python", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_readme_python_block_runs_and_prints_what_it_says():
    block = readme_block()
    out = io.StringIO()
    cwd = os.getcwd()
    try:
        os.chdir(ROOT)  # "from the repository root"
        with contextlib.redirect_stdout(out):
            namespace: dict = {}
            exec(compile(block, "README.md (From Python)", "exec"), namespace)
    finally:
        os.chdir(cwd)
    lines = out.getvalue().splitlines()
    claimed = re.search(r"# (\w+) (\w+) (0\.\d+)\.\.\.", block)
    assert claimed, "the README's comment on the first answer moved"
    status, label, confidence = claimed.groups()
    assert lines[0].startswith(f"{status} {label} {confidence}"), lines[0]
    assert "silent" in lines[2]
    assert "no such file" in lines[3]
    assert re.match(r"\d+\.\d\d-\d+\.\d\d s \w+ (ok|uncertain)$", lines[4]), lines[4]
    adapted = namespace["adapted"]
    assert adapted.shape == (8,) and abs(adapted.sum() - 1) < 1e-9
    assert namespace["document"]["label"] == label
