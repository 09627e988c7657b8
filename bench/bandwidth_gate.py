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

The ratio: :func:`band_ratio_db`, the mean power spectral density over a high band
(4.5-7 kHz) relative to the telephone band (0.3-3.4 kHz), in dB. A telephone line passes
300-3400 Hz, a narrow-band codec nothing above 4 kHz; full-band speech keeps fricative and
breath energy up to 7-8 kHz.
"""


from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from channel_robustness import load_clips  # noqa: E402

from emovox import augment as aug  # noqa: E402

#: the band that full-band speech carries and a telephone line does not (Hz)
HIGH_BAND: tuple[float, float] = (4500.0, 7000.0)
#: the telephone band (Hz)
LOW_BAND: tuple[float, float] = (300.0, 3400.0)
#: power added to both bands: digital silence reads 0 dB instead of NaN
_EPS: float = 1e-20
#: frames transformed at once (memory: _CHUNK * n_fft * 16 bytes)
_CHUNK: int = 512


def band_ratio_db(wave: np.ndarray, sr: int, *, n_fft: int = 512,
                  high: tuple[float, float] = HIGH_BAND,
                  low: tuple[float, float] = LOW_BAND) -> float:
    """Mean power spectral density over ``high`` relative to ``low``, in dB.

    Args:
        wave: mono waveform ``(n,)``, any scale (the ratio is gain-invariant).
        sr: its sampling rate (Hz).
        n_fft: frame length (samples) of the Hann-windowed frames, hop ``n_fft // 2``; a
            wave shorter than one frame is zero-padded to one.
        high, low: the two bands (Hz).

    Returns:
        ``10 log10(mean PSD(high) / mean PSD(low))`` over all frames (power-weighted, so
        loud frames dominate and silence hardly counts); ``-inf`` when ``sr`` cannot carry
        the high band (``sr / 2 < high[1]``: an 8 kHz recording is narrow-band by
        definition); 0.0 for digital silence.
    """
    if sr / 2 < high[1]:
        return float("-inf")
    x = np.asarray(wave, np.float64).reshape(-1)
    if len(x) < n_fft:
        x = np.pad(x, (0, n_fft - len(x)))
    hop = n_fft // 2
    starts = np.arange(0, len(x) - n_fft + 1, hop)
    window = np.hanning(n_fft)
    power = np.zeros(n_fft // 2 + 1)
    for i in range(0, len(starts), _CHUNK):  # bounded memory on long input
        frames = x[starts[i : i + _CHUNK, None] + np.arange(n_fft)] * window  # (<=CHUNK, n_fft)
        power += np.sum(np.abs(np.fft.rfft(frames, axis=1)) ** 2, axis=0)  # (n_fft // 2 + 1,)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)

    def band(lo_hi: tuple[float, float]) -> float:
        sel = (freqs >= lo_hi[0]) & (freqs <= lo_hi[1])
        return float(np.mean(power[sel]))

    return float(10.0 * np.log10((band(high) + _EPS) / (band(low) + _EPS)))


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
