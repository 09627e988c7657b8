"""How far does a channel move each functional? Shift per feature in clean-std units.

    .venv/bin/python bench/feature_shift.py                      # prosody, telephone band
    .venv/bin/python bench/feature_shift.py --limit 2.0          # + the columns kept

Every labelled clip of the given corpora (default: RAVDESS + EMOVO, the training side of the
loco protocol; labels are not used) is decoded untrimmed at 16 kHz and the feature computed
on the clean clip and on its 300-3400 Hz band-passed copy (``augment.band_limit``, the
telephone condition of ``bench/channel_robustness.py``). ``shift = (mean(band-passed) -
mean(clean)) / std(clean)``, pooled over the clips. With ``--limit L`` it prints the columns
with ``|shift| <= L`` as a Python tuple (how :data:`emovox.features.prosody.ROBUST_NAMES`
was made: ``--limit 2.0``, fixed before the run).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from channel_robustness import load_clips  # noqa: E402

from emovox import augment as aug  # noqa: E402
from emovox.features import extract, prosody  # noqa: E402

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def shifts(clean: np.ndarray, moved: np.ndarray) -> np.ndarray:
    """``(D,)`` mean shift of ``moved`` from ``clean`` (both ``(n, D)``) in clean-std units
    (a constant column: 0)."""
    sd = clean.std(axis=0)
    diff = moved.mean(axis=0) - clean.mean(axis=0)
    return np.divide(diff, sd, out=np.zeros_like(diff), where=sd > 0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", action="append", help="CORPUS=DIR (repeatable)")
    ap.add_argument("--limit", type=float, default=0.0)
    args = ap.parse_args()
    data = args.data or [f"ravdess={SHARED}/ravdess/Audio_Speech_Actors_01-24",
                         f"emovo={SHARED}/extra/emovo"]
    clean, moved = [], []
    for item in data:
        corpus, root = item.split("=", 1)
        waves, _ = load_clips(corpus, Path(root), 0, 16000)
        clean += [extract("prosody", w, 16000) for w in waves]
        moved += [extract("prosody", aug.band_limit(w, 16000, 300.0, 3400.0), 16000)
                  for w in waves]
    s = shifts(np.asarray(clean), np.asarray(moved))
    print(f"{len(clean)} clips of {', '.join(d.split('=')[0] for d in data)}")
    for i in np.argsort(-np.abs(s)):
        print(f"{prosody.FEATURE_NAMES[i]:34s} {s[i]:+7.2f}")
    if args.limit:
        keep = tuple(n for n, v in zip(prosody.FEATURE_NAMES, s, strict=True)
                     if abs(v) <= args.limit)
        print(f"kept ({len(keep)} of {len(s)}, |shift| <= {args.limit:g}): {keep}")


if __name__ == "__main__":
    main()
