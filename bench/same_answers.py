"""Do two source trees give the same answers? Every field of ``predict_file``'s JSON (label,
status, reason, probabilities, warnings, evidence, window probabilities) and the speech
detector's exact verdict, old tree against this one.

    git archive <rev> src | tar -x -C /tmp/base
    .venv/bin/python bench/same_answers.py --before /tmp/base/src

Inputs: the 8 original 48 kHz RAVDESS clips, 20 clips each of actors 01 and 02 (every third),
and synthetic files written to a temporary folder: the tests' non-speech set and phone tones
(``tests/signals.py``), speech with a 50 Hz buzz and a 60 Hz line (hum warnings), clipped,
faint (silence warning) and offset speech, a 22 s recording (windows), ring-back then speech,
an antiphase stereo file at 44.1 kHz and speech at 22.05 kHz. Floats must agree within 1e-6
(the line says how many answers are identical bit for bit); everything else exactly.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from predict import DEFAULT_CLIPS, SPEECH  # noqa: E402

DUMP = """
import json, sys
import numpy as np
from emovox.audio import load_audio
from emovox.features.vad import speech_verdict
from emovox.serving.predictor import Predictor
pred = Predictor.from_artifact(None, backend="onnx", threads=1)
out = {}
for f in sys.argv[2:]:
    try:  # a file refused (NaN samples, not audio) is compared by its error
        p = pred.predict_file(f)
    except Exception as e:
        out[f.rsplit("/", 1)[-1]] = {"error": f"{type(e).__name__}: {e}"}
        continue
    d = p.to_dict()
    d["window_probs"] = None if p.window_probs is None else np.asarray(p.window_probs).tolist()
    v = speech_verdict(load_audio(f, sr=pred.sr).wave, pred.sr, exact_voiced=True)
    d["verdict"] = [v.is_speech, v.reason and v.reason.value, v.speech_seconds,
                    v.voiced_seconds, v.segments.tolist()]
    out[f.rsplit("/", 1)[-1]] = d
json.dump(out, open(sys.argv[1], "w"))
"""


def synthetic(folder: Path) -> list[Path]:
    """Write the synthetic inputs into ``folder``; their paths."""
    import numpy as np
    import soundfile as sf

    sys.path.insert(0, str(HERE.parent / "tests"))
    from emovox.augment import add_hum
    from signals import NON_SPEECH_SET, PHONE_TONES, SR, silence, write_clip

    files = {f"{k}.wav": (w, SR) for k, w in {**NON_SPEECH_SET, **PHONE_TONES}.items()}
    rav = sorted((SPEECH / "Actor_03").glob("*.flac"))
    speech, sr = sf.read(rav[5], dtype="float32")
    rng = np.random.default_rng(1)

    def at(rate: int, x: np.ndarray) -> np.ndarray:
        return np.interp(np.arange(0, len(x), sr / rate), np.arange(len(x)), x).astype(np.float32)

    files |= {
        "hum50.wav": (add_hum(speech, sr, rng, -20.0, mains_hz=50.0, buzz=True), sr),
        "hum60.wav": (add_hum(speech, sr, rng, -28.0, mains_hz=60.0, buzz=False), sr),
        "clipped.wav": (np.clip(speech * 20, -1, 1), sr), "faint.wav": (speech * 3e-4, sr),
        "offset.wav": (speech + 0.2, sr),
        "long.wav": (np.concatenate([sf.read(p, dtype="float32")[0] for p in rav[:6]]), sr),
        "ring_then_speech.wav": (np.concatenate([PHONE_TONES["ring-back tone"],
                                                 silence(0.3), speech]), SR),
        "speech22k.wav": (at(22050, speech), 22050),
    }
    for name, (w, rate) in files.items():
        write_clip(folder / name.replace(" ", "_"), w, rate)
    st = np.stack([at(44100, speech), -0.9 * at(44100, speech)], axis=1)
    sf.write(folder / "stereo_antiphase.wav", st, 44100, subtype="PCM_16")
    return sorted(folder.iterdir())


def differences(a: object, b: object, path: str, out: list[str]) -> float:
    """Append what differs between two JSON values; the largest float difference."""
    if isinstance(a, float) and isinstance(b, float):
        if abs(a - b) > 1e-6:
            out.append(f"{path}: {a} != {b}")
        return abs(a - b)
    if isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys():
        return max([differences(a[k], b[k], f"{path}/{k}", out) for k in a], default=0.0)
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return max([differences(x, y, f"{path}[{i}]", out) for i, (x, y) in
                    enumerate(zip(a, b, strict=True))], default=0.0)
    if a != b:
        out.append(f"{path}: {a!r} != {b!r}")
    return 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", type=Path, required=True, help="src/ folder of the old tree")
    ap.add_argument("--also", type=Path, nargs="*", default=[],
                    help="more files, or folders whose .flac/.wav files (every --every-th) "
                         "are added")
    ap.add_argument("--every", type=int, default=10, help="the step through --also folders")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        files = sorted(DEFAULT_CLIPS.glob("*.wav"))
        for actor in ("Actor_01", "Actor_02"):
            files += sorted((SPEECH / actor).glob("*.flac"))[::3][:20]
        files += synthetic(Path(d))
        for extra in a.also:  # other corpora: EMOVO, URDU (stop 55)
            files += sorted(f for f in extra.rglob("*") if f.suffix in (".flac", ".wav")
                            )[::a.every] if extra.is_dir() else [extra]
        dumps = {}
        for k, src in {"before": a.before, "after": HERE.parent / "src"}.items():
            dumps[k] = Path(d) / f"{k}.json"
            subprocess.run([sys.executable, "-c", DUMP, str(dumps[k]), *map(str, files)],
                           env={**os.environ, "PYTHONPATH": str(src)}, check=True,
                           stderr=subprocess.DEVNULL)
        old, new = (json.loads(p.read_text()) for p in dumps.values())
    diffs: list[str] = []
    worst = max(differences(old[f], new[f], f, diffs) for f in old)
    same = sum(old[f] == new[f] for f in old)
    print(f"{len(old)} files: {same} answers identical bit for bit; {len(diffs)} differences "
          f"beyond 1e-6 or in a label, status, reason, warning or evidence; largest float "
          f"difference {worst:.3g}")
    for line in diffs[:20]:
        print("  " + line)
    sys.exit(1 if diffs else 0)


if __name__ == "__main__":
    main()
