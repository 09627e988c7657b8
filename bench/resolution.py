"""Resolution and clipping as a codec leaves them (stop 39; README "What an answer says").

    .venv/bin/python bench/resolution.py                  # both parts, about 1-2 min
    .venv/bin/python bench/resolution.py --skip codecs    # the 16-bit part only
    .venv/bin/python bench/resolution.py --levels=-30,-50 # with "=" (negative values)

1. **Coarse 16-bit audio**: every 36th RAVDESS speech clip (40), peak-normalised, scaled so
   that its peak sits at each level of ``--levels`` and written as 16-bit WAV and as float
   WAV (in memory); the figure is how many keep the answer their float samples get at the
   first level, for each format. The models were trained on RAVDESS's own 16-bit clips
   (lowest peak -46.8 dBFS), never on audio a few steps of resolution deep.
2. **Clipping through lossy codecs** (needs ffmpeg): every 60th clip (24), peak-normalised,
   written as 16-bit WAV unclipped and clipped (x3, clipped at +-1), encoded to MP3, AAC
   (.m4a) and Opus with ffmpeg's defaults and decoded again; the figure is the share of
   samples at or above 0.999 (min / median / max over clips), from which
   :data:`emovox.audio.clipping.LOSSY_CLIP_SHARE` (0.02 %) was chosen.
"""

from __future__ import annotations

import argparse
import glob
import io
import logging
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

DATA = Path("../shared/data/ravdess/Audio_Speech_Actors_01-24")


def _clips(step: int, n: int) -> list[str]:
    return sorted(glob.glob(str(DATA / "Actor_*" / "*.flac")))[::step][:n]


def coarse(levels: list[float]) -> None:
    """Part 1: answers kept per level, 16-bit against float."""
    from emovox.serving.predictor import Predictor

    p = Predictor.from_artifact(None)
    kept = {lv: {"FLOAT": 0, "PCM_16": 0} for lv in levels}
    clips = _clips(36, 40)
    for f in clips:
        x, sr = sf.read(f, dtype="float32")
        x = x / np.abs(x).max()
        base = None
        for lv in levels:
            for subtype in ("FLOAT", "PCM_16"):
                buf = io.BytesIO()
                sf.write(buf, x * 10 ** (lv / 20), sr, format="WAV", subtype=subtype)
                label = p.predict_file(buf.getvalue(), filename="x.wav").label
                base = label if base is None else base
                kept[lv][subtype] += label == base
    print(f"answers kept ({len(clips)} clips; against the float answer at {levels[0]:g} dBFS)")
    for lv in levels:
        print(f"  {lv:6.1f} dBFS   float {kept[lv]['FLOAT']:2d}   16-bit {kept[lv]['PCM_16']:2d}")


def codecs() -> None:
    """Part 2: the share of decoded samples at full scale, unclipped and clipped."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        print("codecs: ffmpeg not found, skipped")
        return
    clips = _clips(60, 24)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src.wav"
        for tag, gain in (("unclipped", 1.0), ("clipped x3", 3.0)):
            shares: dict[str, list[float]] = {"mp3": [], "m4a": [], "opus": []}
            for f in clips:
                x, sr = sf.read(f, dtype="float32")
                sf.write(src, np.clip(x / np.abs(x).max() * gain, -1, 1), sr, subtype="PCM_16")
                for ext, out in shares.items():
                    enc = Path(tmp) / f"o.{ext}"
                    subprocess.run([ffmpeg, "-loglevel", "error", "-y", "-i", str(src),
                                    str(enc)], check=True)
                    raw = subprocess.run([ffmpeg, "-loglevel", "error", "-i", str(enc), "-f",
                                          "f32le", "-ac", "1", "-"], capture_output=True,
                                         check=True).stdout
                    y = np.frombuffer(raw, "<f4")
                    out.append(100 * float(np.mean(np.abs(y) >= 0.999)))
            print(f"{tag} ({len(clips)} clips): % of decoded samples at |x| >= 0.999, "
                  "min / median / max")
            for ext, v in shares.items():
                print(f"  {ext:5s} {min(v):.3f} / {np.median(v):.3f} / {max(v):.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--levels", default="-30,-40,-45,-48,-50,-55",
                    help="peak levels (dBFS), the first the reference; give them with "
                         "'=': --levels=-30,-50")
    ap.add_argument("--skip", default="", help="coarse and/or codecs, comma-separated")
    args = ap.parse_args()
    logging.disable(logging.WARNING)  # every coarse clip logs its warning
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if "coarse" not in skip:
        coarse([float(v) for v in args.levels.split(",")])
    if "codecs" not in skip:
        codecs()


if __name__ == "__main__":
    main()
