"""The cross-validation record of a functional member that switches by bandwidth (stop 28).

    .venv/bin/python bench/switch_member.py runs/loco-prosody_logreg \
        runs/loco-prosody_robust_logreg --out runs/loco-switch-prosody

``emovox ensemble NET... prosody_logreg --narrow-band prosody_robust_logreg`` reads each
input with ``prosody_logreg`` when its band ratio (:func:`emovox.features.bandwidth.
band_ratio_db`) reaches the floor and with ``prosody_robust_logreg`` below it. This bench
gives that member's out-of-fold record without training anything: for every test clip of the
two runs (same protocol, folds and clips), it decodes the clip (untrimmed, 16 kHz), measures
its ratio and takes the narrow-band run's probabilities below ``--floor-db``, the full-band
run's otherwise. The result is an ordinary run directory: ``emovox fuse`` takes it next to
the networks' runs and ``emovox ensemble --calibrate`` fits a temperature on that fusion.
It prints how many clips of each corpus were switched.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from emovox.audio import load_audio
from emovox.experiment.fuse import switch_runs
from emovox.experiment.rundir import Prediction
from emovox.features.bandwidth import NARROW_BAND_FLOOR_DB, band_ratio_db

SR = 16000


def narrow_band(floor_db: float):
    """``clip -> bool``: the clip's untrimmed 16 kHz wave has a band ratio below
    ``floor_db`` (what the ensemble's preprocessing computes for a whole clip)."""
    def is_narrow(clip: Prediction) -> bool:
        path = Path(clip.path)
        if not path.is_file():
            raise SystemExit(f"{path}: test clip not found (runs name clips by the path they "
                             "were read from; run this from the same directory)")
        return band_ratio_db(load_audio(path, sr=SR, trim=False).wave, SR) < floor_db
    return is_narrow


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("wide", type=Path, help="run of the full-band model (prosody_logreg)")
    ap.add_argument("narrow", type=Path, help="run of the narrow-band model")
    ap.add_argument("--out", type=Path, required=True, help="the switched run (new)")
    ap.add_argument("--floor-db", type=float, default=NARROW_BAND_FLOOR_DB,
                    help="band ratio below which a clip is narrow-band (dB)")
    args = ap.parse_args()
    res = switch_runs(args.wide, args.narrow, args.out, narrow_band(args.floor_db))
    for corpus, n in res["switched_clips"].items():
        print(f"{corpus}: {n['narrow']} of {n['of']} clips read by the narrow-band model")
    per = res.get("per_corpus") or {}
    print("UA " + " / ".join(f"{c} {m['ua']:.1f}" for c, m in sorted(per.items()))
          if per else f"UA {res['summary']['ua']['mean']:.1f}")


if __name__ == "__main__":
    main()
