"""Can the channel's bandwidth tell a telephone line from a full-band recording? (stop 27)

    .venv/bin/python bench/bandwidth_gate.py       # RAVDESS, EMOVO, URDU from ../shared/data

A linear member on spectral-balance functionals (``prosody_logreg``), trained on full-band
clips, drifts to "sad" over a telephone band. A gate that drops the member on narrow-band
input was judged under a rule written before this bench ran: the floor ``F`` comes from the
training side only (the 0.5th percentile of the ratio below over clean RAVDESS + EMOVO clips,
minus 6 dB); the gate is worth building iff >= 95 % of telephone-band copies fall below F
(condition 0) and <= 2 % of the clean clips of every corpus do (condition 2: URDU included,
so that cross-validation figures without a gate stay representative). The bench prints the
percentiles, F and both conditions.

The ratio: :func:`emovox.features.bandwidth.band_ratio_db`, the mean power spectral density
over a high band (4.5-7 kHz) relative to the telephone band (0.3-3.4 kHz), in dB. A
telephone line passes 300-3400 Hz, a narrow-band codec nothing above 4 kHz; full-band speech
keeps fricative and breath energy up to 7-8 kHz.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from channel_robustness import load_clips  # noqa: E402

from emovox import augment as aug  # noqa: E402
from emovox.features.bandwidth import band_ratio_db  # noqa: E402


def floor_db(clean_training: np.ndarray) -> float:
    """The gate's floor from the training side's clean ratios: 0.5th percentile - 6 dB."""
    return float(np.percentile(clean_training, 0.5) - 6.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", action="append", help="CORPUS=DIR (repeatable)")
    ap.add_argument("--training", nargs="+", default=["ravdess", "emovo"],
                    help="the corpora the floor is fitted on")
    args = ap.parse_args()
    shared = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
    data = args.data or [f"ravdess={shared}/ravdess/Audio_Speech_Actors_01-24",
                         f"emovo={shared}/extra/emovo", f"urdu={shared}/extra/urdu"]
    ratios = {}
    for item in data:
        corpus, root = item.split("=", 1)
        waves, _ = load_clips(corpus, Path(root), 0, 16000)
        clean = np.array([band_ratio_db(w, 16000) for w in waves])
        tel = np.array([band_ratio_db(aug.band_limit(w, 16000, 300.0, 3400.0), 16000)
                        for w in waves])
        ratios[corpus] = (clean, tel)
        print(f"{corpus}: {len(waves)} clips; clean percentiles 0.5/5/50/95 "
              f"{np.percentile(clean, [0.5, 5, 50, 95]).round(1).tolist()} dB, "
              f"telephone 5/50/95/99.5 {np.percentile(tel, [5, 50, 95, 99.5]).round(1).tolist()}")
    floor = floor_db(np.concatenate([ratios[c][0] for c in args.training]))
    print(f"floor F = {floor:.1f} dB (training side: {', '.join(args.training)})")
    for corpus, (clean, tel) in ratios.items():
        print(f"{corpus}: clean clips gated {100 * np.mean(clean < floor):.1f} % (condition 2: "
              f"<= 2 %), telephone copies gated {100 * np.mean(tel < floor):.1f} % "
              f"(condition 0: >= 95 %)")


if __name__ == "__main__":
    main()
