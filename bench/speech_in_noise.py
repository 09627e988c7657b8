"""How often the speech detector still finds speech in noisy recordings, and what non-speech
sounds it takes for speech.

Speech: every ``--every``-th clip of RAVDESS speech, EMOVO and URDU, with white and pink noise
added at a whole-clip SNR (``emovox.augment.add_noise``: the noise power relative to the clip's
mean power, the training augmentation's definition), and each clip under a synthetic
accompaniment (chords and hi-hat) at a voice-to-accompaniment ratio. Non-speech: synthetic
music-like, bell and animal-like sounds (``_non_speech``), each judged once. Prints, per
condition, how many inputs ``emovox.features.vad.speech_verdict`` judges speech.

    PYTHONPATH=src .venv/bin/python bench/speech_in_noise.py --shared ../shared/data

Pure NumPy + soundfile; about 20 s on one core.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf

from emovox.augment import add_noise
from emovox.features.vad import speech_verdict

SR = 16000


def _clips(shared: Path, every: int) -> list[Path]:
    rav = sorted((shared / "ravdess" / "Audio_Speech_Actors_01-24").rglob("*.flac"))
    extra = [sorted((shared / "extra" / c).rglob("*.flac")) for c in ("emovo", "urdu")]
    return [p for group in (rav, *extra) for p in group[::every]]


def _accompaniment(n: int, rng: np.random.Generator) -> np.ndarray:
    """Chords (three harmonic notes, a new chord every second) and a hi-hat every 0.25 s."""
    t = np.arange(n) / SR
    roots = rng.choice([130.8, 146.8, 164.8, 174.6, 196.0, 220.0], size=n // SR + 1)
    x = np.zeros(n)
    for f_mul in (1.0, 1.26, 1.5):
        f = roots[(t // 1.0).astype(int)] * f_mul
        x += sum(np.sin(2 * np.pi * h * np.cumsum(f) / SR) / h for h in range(1, 5))
    hat = int(0.03 * SR)
    for s in range(0, n - hat, SR // 4):
        x[s : s + hat] += 2.0 * rng.standard_normal(hat) * np.exp(-np.arange(hat) / 80)
    return x


def _non_speech(rng: np.random.Generator) -> Iterator[tuple[str, np.ndarray]]:
    t = np.arange(4 * SR) / SR
    yield "organ chords", sum(np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0))
    pluck = np.zeros(len(t))
    for k, f in enumerate((196.0, 246.9, 293.7, 392.0) * 2):  # Karplus-Strong plucks
        period, s = int(SR / f), k * SR // 2
        buf = rng.uniform(-1, 1, period)
        for i in range(SR // 2):
            pluck[s + i] = buf[i % period]
            buf[i % period] = 0.996 * 0.5 * (buf[i % period] + buf[(i + 1) % period])
    yield "plucked string", pluck
    f0 = 440 * 2 ** (np.repeat([0, 2, 4, 5, 7, 5, 4, 2], SR // 2) / 12)
    f0 = f0 * (1 + 0.01 * np.sin(2 * np.pi * 5.5 * t))
    yield "melody with vibrato", sum(np.sin(2 * np.pi * h * np.cumsum(f0) / SR) / h
                                     for h in range(1, 8))
    bell = np.zeros(len(t))
    for s in range(0, len(t) - SR // 20, SR // 20):  # a struck bell, 20 strikes a second
        n = SR // 20
        bell[s : s + n] += sum(np.sin(2 * np.pi * f * np.arange(n) / SR) for f in
                               (1100, 2650, 4100)) * np.exp(-np.arange(n) / 300)
    yield "phone bell", bell * (np.sin(2 * np.pi * 0.5 * t) > 0)
    chirps = np.zeros(len(t))
    for s in range(0, len(t) - SR // 8, int(0.3 * SR)):
        n = SR // 8
        f = np.linspace(3000, 5000, n)
        chirps[s : s + n] += np.sin(2 * np.pi * np.cumsum(f) / SR) * np.hanning(n)
    yield "bird chirps 3-5 kHz", chirps
    yield "accompaniment alone", _accompaniment(len(t), rng)


def _judged(wave: np.ndarray) -> bool:
    peak = float(np.max(np.abs(wave))) or 1.0
    return speech_verdict((0.5 * wave / peak).astype(np.float32), SR).is_speech


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", type=Path, default=Path("../shared/data"))
    ap.add_argument("--every", type=int, default=18, help="every Nth clip of each corpus")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    waves = []
    for p in _clips(args.shared, args.every):
        w, sr = sf.read(p, dtype="float32")
        assert sr == SR, p
        waves.append(w if w.ndim == 1 else w.mean(axis=1))
    print(f"{len(waves)} clips (every {args.every}th of RAVDESS speech, EMOVO, URDU)")
    print(f"clean: {sum(_judged(w) for w in waves)}/{len(waves)} judged speech")
    for name, exponent in (("white", 0.0), ("pink", 1.0)):
        for snr in (10, 5, 0):
            n = sum(_judged(add_noise(w, rng, snr, exponent)) for w in waves)
            print(f"{name} noise at {snr:2d} dB whole-clip SNR: {n}/{len(waves)} judged speech")
    for ratio in (6, 3, 0):
        n = 0
        for w in waves:
            acc = _accompaniment(len(w), rng)
            gain = np.sqrt(np.mean(w.astype(np.float64) ** 2) / np.mean(acc ** 2)
                           / 10 ** (ratio / 10))
            n += _judged(w + gain * acc)
        print(f"voice {ratio} dB over an accompaniment: {n}/{len(waves)} judged speech")
    for name, wave in _non_speech(rng):
        print(f"non-speech, {name}: {'speech' if _judged(wave) else 'no speech'}")


if __name__ == "__main__":
    main()
