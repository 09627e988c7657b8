"""Which windows of a recording the model classifies: speech regions -> model-length windows.

Used by :class:`~emovox.serving.predictor.Predictor` (whole-recording prediction) and by
:mod:`emovox.serving.timeline`, so both read the same seconds of speech.

* :func:`speech_regions`: the detector's speech segments (seconds) merged across pauses
  shorter than :data:`REGION_BRIDGE_S` and padded by :data:`REGION_PAD_S` each side;
* :func:`voiced_regions`: the regions whose speech is voiced, by the timeline's rule for a
  part of a recording;
* :func:`region_windows`: windows of ``window`` seconds every ``hop`` seconds over each region,
  the last one aligned to the region's end (the tail is always covered; it replaces the one
  before it when it would start less than half a hop after it); a region shorter
  than a window is one (shorter) window; regions shorter than :data:`MIN_REGION_S` are left
  out unless nothing else remains.

All positions are sample indices at the model's rate unless named ``*_s`` (seconds).
"""

from __future__ import annotations

import numpy as np

from emovox.features.vad import DEFAULT_PARAMS, voiced_needed_s, voicing_scan

__all__ = ["LONG_INPUT_WINDOWS", "MIN_REGION_S", "REGION_BRIDGE_S", "REGION_PAD_S",
           "model_window_s", "own_seconds", "region_windows", "speech_regions",
           "voiced_regions"]

#: pauses shorter than this (s) stay inside one speech region (natural pauses in a sentence)
REGION_BRIDGE_S = 0.5
#: seconds of context added before and after each region (the model was trained on clips
#: trimmed at -40 dB, which keeps soft onsets)
REGION_PAD_S = 0.1
#: regions shorter than this (s) are not classified on their own (unless nothing else remains)
MIN_REGION_S = 0.3
#: inputs up to this many model windows long are classified whole, as one clip
LONG_INPUT_WINDOWS = 2.0
#: window (s) of models that do not crop to a fixed number of frames (vector features)
DEFAULT_WINDOW_S = 3.0


def model_window_s(preprocess: object) -> float:
    """Seconds of audio the model reads at once: ``n_frames`` x the front end's hop, or
    :data:`DEFAULT_WINDOW_S` for models without a fixed input length."""
    n_frames = int(getattr(preprocess, "n_frames", 0) or 0)
    sr = int(getattr(preprocess, "sr", 16000))
    fe = getattr(preprocess, "frontend", None)
    hop = int(getattr(fe, "hop_length", 0) or 0)
    if not hop:
        params = getattr(preprocess, "feature_params", {}) or {}
        hop = int(params.get("hop_length", 160))
    return n_frames * hop / sr if n_frames else DEFAULT_WINDOW_S


def speech_regions(segments_s: np.ndarray, duration_s: float, *,
                   bridge_s: float = REGION_BRIDGE_S, pad_s: float = REGION_PAD_S
                   ) -> list[tuple[float, float]]:
    """``[(start_s, end_s), ...]`` speech regions of ``(n, 2)`` segments in seconds."""
    regions: list[list[float]] = []
    for s, e in np.asarray(segments_s, np.float64).reshape(-1, 2):
        if regions and s - regions[-1][1] < bridge_s:
            regions[-1][1] = max(regions[-1][1], float(e))
        else:
            regions.append([float(s), float(e)])
    return [(max(0.0, s - pad_s), min(duration_s, e + pad_s)) for s, e in regions]


def voiced_regions(wave: np.ndarray, sr: int, regions_s: list[tuple[float, float]],
                   segments_s: np.ndarray) -> list[tuple[float, float]]:
    """The regions of ``regions_s`` (seconds) of the mono ``wave`` at ``sr`` Hz whose
    speech frames (those of the detector's ``segments_s`` inside each) are voiced, by the
    rule the timeline applies to each part of a recording
    (:func:`~emovox.features.vad.voiced_needed_s` with ``part=True``): a burst of noise
    between utterances was a window of ``predict``'s answer and a gap in the timeline (QA,
    stop 38), and that do not hold their notes throughout (``held``: bells, stop 41)."""
    hop = DEFAULT_PARAMS.hop_s
    segs = np.asarray(segments_s, np.float64).reshape(-1, 2)
    out = []
    for s, e in regions_s:
        inside = segs[(segs[:, 0] < e) & (segs[:, 1] > s)]
        frames = np.unique(np.concatenate(
            [np.arange(int(a / hop), int(np.ceil(b / hop))) for a, b in inside]
            or [np.zeros(0, np.int64)]))
        need = voiced_needed_s(len(frames) * hop, part=True)
        scan = voicing_scan(wave, sr, frames, enough_s=need)
        if scan.voiced * hop >= need - 1e-9 and not (scan.held or scan.unvoiced):
            out.append((s, e))
    return out


def own_seconds(spans: list[tuple[int, int]], sr: int) -> list[float]:
    """Each window's own seconds: from its start to the next window's start, or to its end
    when that comes first (the last window of a region keeps its whole length), so that
    overlapping windows count each second of speech once (sum = the seconds covered)."""
    if not spans:
        return []
    nxt = [a for a, _ in spans[1:]] + [spans[-1][1]]
    return [(min(b, n) - a) / sr for (a, b), n in zip(spans, nxt, strict=True)]


def region_windows(regions_s: list[tuple[float, float]], sr: int, window_s: float,
                   hop_s: float, *, min_region_s: float = MIN_REGION_S
                   ) -> list[tuple[int, int]]:
    """``[(start, end), ...]`` sample ranges of the windows over ``regions_s``."""
    win, hop = max(1, int(round(window_s * sr))), max(1, int(round(hop_s * sr)))
    keep = [r for r in regions_s if r[1] - r[0] >= min_region_s] or regions_s
    out: list[tuple[int, int]] = []
    for s, e in keep:
        a, b = int(round(s * sr)), int(round(e * sr))
        if b - a < win + hop / 2:  # one window, or a second nearly repeating it (QA, stop
            if b > a:  # 39: 10.75-13.75 and 10.94-13.94): the region whole, the model
                out.append((a, b))  # reads its centre as a clip's
            continue
        starts = list(range(a, b - win + 1, hop))
        if starts[-1] + win < b:  # the tail is covered by a window aligned to the end;
            if (len(starts) > 1 and b - win - starts[-1] < hop / 2
                    and b - win - starts[-2] <= win):  # (no hole left behind it)
                starts[-1] = b - win  # moved there when it would nearly repeat the last one
            else:
                starts.append(b - win)
        out.extend((x, x + win) for x in starts)
    return out
