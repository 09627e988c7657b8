"""The window cap of ``POST /v1/timeline`` against the timeline's real worst case (review of
stop 51): the timeline classifies at least one window per speech region, so speech broken
by pauses costs more windows than its length / hop, and the cap sized for one window per
1.5 s refused default-hop timelines."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from emovox.serving import params as tp
from emovox.serving.timeline import build_timeline
from signals import harmonic

SR = 16000
LABELS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")


class _Counting:
    """A predictor that counts the windows it is asked for."""

    labels = LABELS

    def __init__(self) -> None:
        self.windows = 0

    def span_probabilities(self, waves):
        self.windows += len(waves)
        return np.full((len(waves), len(LABELS)), 1 / len(LABELS))

    def affect(self, p):
        return 0.0, 0.0


def _windows(seconds: float, burst: float, pause: float, hop: float) -> int:
    tone = harmonic(150.0, seconds, SR, vibrato=0.1, glide=0.2, n_harmonics=8)
    t = np.arange(len(tone)) / SR
    buf = io.BytesIO()
    sf.write(buf, (tone * ((t % (burst + pause)) < burst)).astype(np.float32), SR,
             format="WAV")
    counting = _Counting()
    build_timeline(counting, buf.getvalue(), hop=hop, filename="choppy.wav")
    return counting.windows


@pytest.mark.parametrize(("burst", "pause"), [(0.3, 0.55), (0.2, 0.52), (0.15, 0.6),
                                              (1.0, 0.55), (3.9, 0.55)])
@pytest.mark.parametrize("hop", [1.5, 0.25])
def test_the_worst_case_bounds_the_timeline(burst, pause, hop):
    n = _windows(59.5, burst, pause, hop)
    assert n <= tp.worst_window_count(59.5, hop)


def test_choppy_speech_needs_more_windows_than_its_length_per_hop():
    """0.3 s bursts every 0.85 s: 70 windows in 59.5 s at the default hop, not 40. The cap
    of any server lets as long a recording of it through at the default hop."""
    n = _windows(59.5, 0.3, 0.55, tp.TIMELINE_HOP_S)
    assert n == 70 > tp.window_count(59.5, tp.TIMELINE_HOP_S) == 40
    for limit in (10.0, 59.5, 600.0, 3600.0, 7200.0, 36000.0):
        cap = tp.api_window_cap(limit)
        assert cap >= n / 59.5 * (limit + tp.TIMELINE_BLOCK_S), limit
        assert cap >= tp.worst_window_count(limit, tp.TIMELINE_HOP_S), limit
        # the header check counts at most the limit, continuous: the default hop passes
        assert tp.window_count_problem(limit, tp.TimelineParams(), cap) is None


def test_the_timelines_block_is_the_one_the_bound_assumes():
    import inspect

    assert inspect.signature(build_timeline).parameters["block_s"].default == \
        tp.TIMELINE_BLOCK_S


def test_the_reviewed_stall_is_still_over_the_default_cap():
    cap = tp.api_window_cap(600.0)
    problem = tp.window_count_problem(590.0, tp.TimelineParams(3.0, 0.06), cap)
    assert problem and "9,834 windows, more than the 2,400" in problem


def test_a_refusal_while_decoding_never_names_a_hop_at_or_below_the_one_sent():
    for hop in (0.06, 0.25, 1.5, 3.0):
        text = tp.counted_window_problem(tp.TimelineParams(3.0, hop), 40)
        assert f"a hop larger than {hop:g} s" in text and ">=" not in text
        assert "states no duration" not in text
