"""Helpers for the CLI integration tests: run ``emovox`` in-process and read what it wrote."""

from __future__ import annotations

import csv
import json
import logging
import re
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from emovox.cli import app
from emovox.labels import LABELS
from signals import harmonic, syllables

SR = 16000
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# what the bad-input folder holds, and what `predict` makes of each file
ERRORS = {"empty.wav": "empty", "notaudio.wav": "not audio"}
DECODABLE = {  # name -> duration (s) of the prediction
    "truncated.wav": 1.0,  # 2 s clip cut mid-sample halfway: the part that is there is read
    "short.wav": 0.1,  # no minimum length in `predict`: 0.1 s is padded to n_frames
    "silent.wav": 2.0,
    "stereo48k.wav": 1.5,
    "rate8k.wav": 1.5,
    "float64.wav": 1.5,
    "aiff_as.wav": 1.5,
}


def invoke(args: list[str], **kw):
    """``emovox ARGS`` in-process; the root logger (which the CLI reconfigures) is restored."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        return CliRunner().invoke(app, [str(a) for a in args], **kw)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def text(res) -> str:
    """stdout + stderr without colour codes, whitespace collapsed (rich wraps long lines)."""
    return " ".join(ANSI.sub("", res.output).split())


def ok(res, code: int = 0) -> None:
    assert res.exit_code == code, f"exit {res.exit_code}: {res.output}\n{res.exception!r}"


def tone(dur: float, sr: int = SR, f0: float = 220.0, seed: int = 0) -> np.ndarray:
    """A harmonic tone with 1 % noise in syllable-like bursts (speech to the detector)."""
    w = harmonic(f0, dur, sr, noise=0.01, rng=np.random.default_rng(seed))
    return syllables(w, sr)


def predict_json(model: Path, files: list[Path], *extra: str) -> list[dict]:
    res = invoke(["predict", *files, "--json", "-m", model, *extra])
    ok(res, 0)
    doc = json.loads(res.stdout)
    return doc if isinstance(doc, list) else [doc]


def check_prediction(r: dict) -> None:
    assert r["error"] is None
    p = r["probabilities"]
    assert list(p) == list(LABELS)
    assert abs(sum(p.values()) - 1.0) <= 1e-4
    assert all(0.0 <= v <= 1.0 for v in p.values())
    assert r["label"] == max(p, key=p.get) and r["confidence"] == p[r["label"]]
    assert -1.0 <= r["arousal"] <= 1.0 and -1.0 <= r["valence"] <= 1.0
    assert r["derived"] == ["arousal", "valence"]


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def check_rows(rows: list[dict], n: int) -> None:
    assert len(rows) == n and len({r["path"] for r in rows}) == n
    by_name = {Path(r["path"]).name: r for r in rows}
    for name in ERRORS:
        assert by_name[name]["label"] == "error" and by_name[name]["error"].strip()
    assert by_name["silent.wav"]["label"] == "silence"
    for r in rows:
        if Path(r["path"]).name in ERRORS:
            continue
        assert r["error"] in ("", None) and r["label"] in (*LABELS, "silence")
        assert abs(sum(float(r[f"p_{lab}"]) for lab in LABELS) - 1.0) <= 1e-4


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]
