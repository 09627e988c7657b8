"""Helpers for the CLI integration tests: run ``emovox`` in-process and read what it wrote."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np

from cli_io import invoke  # noqa: F401 - the one in-process runner, used from here
from emovox.labels import LABELS
from emovox.serving.schema import validate_document
from signals import harmonic, syllables

SR = 16000
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# what the bad-input folder holds, and what `predict` makes of each file
ERRORS = {"empty.wav": "empty", "notaudio.wav": "not audio"}
DECODABLE = {  # name -> duration (s) of the prediction
    "truncated.wav": 1.0,  # 2 s clip cut mid-sample halfway: the part that is there is read
    "short.wav": 0.1,  # read, but too short to hold speech: no_speech
    "silent.wav": 2.0,  # no_speech
    "stereo48k.wav": 1.5,
    "rate8k.wav": 1.5,
    "float64.wav": 1.5,
    "aiff_as.wav": 1.5,
}


#: decodable files without speech: status no_speech and no emotion
NO_SPEECH = {"short.wav": "too_short", "silent.wav": "silence"}


def text(res) -> str:
    """stdout + stderr without colour codes and the error box's side borders, whitespace
    collapsed (rich wraps long lines: "is │ │ a file" read apart with a longer tmp path)."""
    return " ".join(ANSI.sub("", res.output).replace("│", " ").split())


def ok(res, code: int = 0) -> None:
    assert res.exit_code == code, f"exit {res.exit_code}: {res.output}\n{res.exception!r}"


def tone(dur: float, sr: int = SR, f0: float = 220.0, seed: int = 0) -> np.ndarray:
    """A voice-like harmonic tone (pitch moving, as a voice's does: a steady one is a beep
    to the detector) with 1 % noise in syllable-like bursts (speech to the detector)."""
    w = harmonic(f0, dur, sr, noise=0.01, rng=np.random.default_rng(seed), vibrato=0.08,
                 glide=0.15)
    return syllables(w, sr) if dur >= 0.5 else w


#: pitches of :func:`tone_clips`' clips, in turn
F0S = (140.0, 190.0, 240.0, 300.0)


def write_clip(path: Path, wave: np.ndarray, fmt: str = "WAV") -> Path:
    """``wave`` as 16-bit ``fmt`` at :data:`SR` at ``path`` (its folders made)."""
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, wave, SR, format=fmt, subtype="PCM_16")
    return path


def tone_clips(folder: Path, n: int, start: int = 0) -> list[Path]:
    """``n`` voice-like 1.5 s clips ``c{start}.wav``... in ``folder``, pitches :data:`F0S`."""
    return [write_clip(folder / f"c{start + i}.wav", tone(1.5, f0=F0S[(start + i) % 4],
                                                          seed=start + i)) for i in range(n)]


def predict_json(model: Path, files: list[Path], *extra: str) -> list[dict]:
    res = invoke(["predict", *files, "--json", "-m", model, *extra])
    ok(res, 0)
    doc = json.loads(res.stdout)
    return doc if isinstance(doc, list) else [doc]


def check_prediction(r: dict) -> None:
    """A valid prediction document with an emotion (status ok or uncertain)."""
    validate_document(r, "prediction")
    assert r["error"] is None and r["status"] in ("ok", "uncertain")
    assert (r["status"] == "uncertain") is (r["confidence"] < 0.5)
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


def row_key(r: dict) -> str:
    """The resolved path of a batch row: ``path`` in CSV, ``source`` in JSON lines."""
    return r.get("path") or r["source"]


def check_rows(rows: list[dict], n: int) -> None:
    """Batch rows (CSV or JSON lines): errors, no-speech files and predictions as expected;
    JSON lines are valid prediction documents."""
    assert len(rows) == n and len({row_key(r) for r in rows}) == n
    jsonl = "schema_version" in rows[0]
    by_name = {Path(row_key(r)).name: r for r in rows}
    for name in ERRORS:
        assert by_name[name]["error"].strip()
        assert jsonl or by_name[name]["status"] == "error"
    for name in NO_SPEECH:
        assert by_name[name]["status"] == "no_speech" and not by_name[name]["label"]
        assert by_name[name]["reason"] == NO_SPEECH[name]
    for r in rows:
        if jsonl:
            validate_document(r, "prediction")
        if Path(row_key(r)).name in (*ERRORS, *NO_SPEECH):
            continue
        assert r["error"] in ("", None) and r["label"] in LABELS
        assert r["status"] in ("ok", "uncertain")
        probs = r["probabilities"] if jsonl else {lab: float(r[f"p_{lab}"]) for lab in LABELS}
        assert abs(sum(probs.values()) - 1.0) <= 1e-4


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]
