"""Validated request parameters shared by every front end (CLI, REST API, web app).

One place decides what a timeline window, a hop or a duration limit may be, so the CLI and
the API accept and refuse exactly the same values with the same message.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from emovox.errors import ConfigError

__all__ = [
    "DEFAULT_REQUEST_TIMEOUT_S",
    "MAX_API_WINDOWS",
    "MAX_HOP_S",
    "MAX_WINDOW_S",
    "MIN_HOP_S",
    "MIN_WINDOW_S",
    "TIMELINE_BLOCK_S",
    "TIMELINE_HOP_S",
    "TIMELINE_WINDOW_S",
    "TimelineParams",
    "api_window_cap",
    "check_max_duration",
    "counted_window_problem",
    "request_timeout_setting",
    "smallest_hop",
    "window_count",
    "window_count_problem",
    "worst_window_count",
]

#: Default timeline window and hop (s).
TIMELINE_WINDOW_S = 3.0
TIMELINE_HOP_S = 1.5
#: Accepted window lengths: more than MIN_WINDOW_S, at most MAX_WINDOW_S seconds.
MIN_WINDOW_S = 0.25
MAX_WINDOW_S = 30.0
#: Accepted hops: more than MIN_HOP_S seconds, at most the window.
MIN_HOP_S = 0.05
MAX_HOP_S = MAX_WINDOW_S
#: Most windows one REST API timeline request may classify (``POST /v1/timeline``; the CLI's
#: ``emovox timeline`` runs on the user's own machine and has no such cap). Nothing bounded
#: it: a 590 s recording at ``hop=0.06`` is ~10,000 windows, and two such requests held both
#: compute slots of a 2-core server for 228 s while a 3 s ``/v1/predict`` waited 224 s behind
#: them (API review, stop 51). 2400 is a 600 s recording (the server's default duration
#: limit) at a 0.25 s hop, a quarter of the work that stalled the server (about a minute of
#: a busy 2-core machine), and above the most windows any recording within that limit can
#: cost at the default hop (:func:`worst_window_count`: 1,574)
MAX_API_WINDOWS = 2400
#: seconds of audio the timeline reads at a time (:func:`~emovox.serving.timeline.
#: build_timeline`'s ``block_s``): it settles what it read once a block, and its length
#: guard runs after that, so a recording may be classified up to a block past the limit
TIMELINE_BLOCK_S = 60.0
#: seconds a REST API request may wait for a slot and be analysed (``emovox serve
#: --request-timeout``, :mod:`emovox.api.deadline`; here, where the command's option, the
#: API and the error code's words all read it: they wrote 120 each before): 599 s of
#: continuous speech (the duration limit, the bundled default model) took 76 s as a timeline
#: (9.7 s of CPU) and 74 s as a prediction on a 2-core machine, run at the lowest priority
#: beside two trainings that used both cores; on a server of its own such a request needs
#: about 10 s of a core, which leaves room for a queue of several (review, stop 57)
DEFAULT_REQUEST_TIMEOUT_S = 120.0



def request_timeout_setting(value: object, what: str) -> float:
    """A REST API request's deadline in seconds: a finite number >= 0 (0: none), else
    :class:`ConfigError` naming ``what`` (the option or the variable). The one check of
    ``emovox serve --request-timeout``, ``EMOVOX_REQUEST_TIMEOUT_S`` and ``create_app``."""
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"{what}={value!r} is not a number of seconds (0: no "
                          "deadline)") from None
    if not (seconds >= 0 and math.isfinite(seconds)):
        raise ConfigError(f"{what}={value!r} must be a finite number of seconds >= 0 (0: no "
                          "deadline)")
    return seconds

def _number(name: str, value: object) -> float:
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(x):
        raise ConfigError(f"{name} must be a finite number of seconds, got {value!r}")
    return x


@dataclass(frozen=True)
class TimelineParams:
    """Window and hop of an emotion timeline, validated on construction.

    Attributes:
        window: window length in seconds, in ``(MIN_WINDOW_S, MAX_WINDOW_S]``.
        hop: seconds between window starts, in ``(MIN_HOP_S, window]`` (windows never leave
            gaps in the recording).

    Raises:
        ConfigError: a value that is not a finite number, out of range, or hop > window.
    """

    window: float = TIMELINE_WINDOW_S
    hop: float = TIMELINE_HOP_S

    def __post_init__(self) -> None:
        window = _number("window", self.window)
        hop = _number("hop", self.hop)
        if not MIN_WINDOW_S < window <= MAX_WINDOW_S:
            raise ConfigError(f"window must be more than {MIN_WINDOW_S:g} s and at most "
                              f"{MAX_WINDOW_S:g} s, got {window:g} s")
        if not MIN_HOP_S < hop <= MAX_HOP_S:
            raise ConfigError(f"hop must be more than {MIN_HOP_S:g} s and at most "
                              f"{MAX_HOP_S:g} s, got {hop:g} s")
        if hop > window:
            raise ConfigError(f"hop ({hop:g} s) must not exceed window ({window:g} s): the "
                              "windows would skip parts of the recording")
        object.__setattr__(self, "window", window)
        object.__setattr__(self, "hop", hop)


def check_max_duration(value: float | None, name: str = "max duration") -> float | None:
    """A duration limit in seconds: ``None`` (no limit) or a finite positive number.

    Raises:
        ConfigError: NaN, infinity, zero or a negative number.
    """
    if value is None:
        return None
    x = _number(name, value)
    if x <= 0:
        raise ConfigError(f"{name} must be a positive number of seconds, got {value!r}")
    return x


def worst_window_count(duration: float, hop: float) -> int:
    """The most windows a timeline of ``duration`` seconds can classify at ``hop``,
    whatever its speech (:mod:`emovox.serving.timeline`), where :func:`window_count` is
    that of continuous speech. Each part of speech it classifies (a region, or a piece of
    one a beep was taken out of) is at least :data:`~emovox.serving.speech.MIN_REGION_S`
    long, and regions lie at least ``REGION_BRIDGE_S - 2 * REGION_PAD_S`` apart (pauses
    shorter than the bridge are merged, each side padded); a part of ``L`` seconds gets
    at most ``L / hop + 1`` windows (a window is never shorter than the hop). Summed over
    the parts: ``duration / hop`` plus one per part. Each settle (once a
    :data:`TIMELINE_BLOCK_S` block, and once at the end) may add two more parts: a region
    reaching back before what was classified is cut there, and a region open too long is
    classified in chunks. Speech in bursts of 0.3 s every 0.85 s costs about 1.2 windows a
    second at the default 1.5 s hop, where the continuous count says 0.67 (review, stop
    51)."""
    from emovox.serving.speech import MIN_REGION_S, REGION_BRIDGE_S, REGION_PAD_S

    gap = REGION_BRIDGE_S - 2 * REGION_PAD_S
    parts = math.ceil((duration + gap) / (MIN_REGION_S + gap) - 1e-9)
    settles = math.ceil(duration / TIMELINE_BLOCK_S - 1e-9) + 1
    return window_count(duration, hop) + parts + 2 * settles


def api_window_cap(max_duration: float, max_windows: int | None = None) -> int:
    """The window cap of a server whose duration limit is ``max_duration`` seconds:
    ``max_windows``, by default :data:`MAX_API_WINDOWS` raised to the most windows a
    recording the limit lets through can cost at the default hop
    (:func:`worst_window_count`; read up to a block and a hop past the limit before the
    timeline's length guard refuses it), so that no request at the default hop or above
    is refused, however its speech is broken up. It assumed one window per 1.5 s of
    recording, and choppy speech needs more: a 59.5 s file of 0.3 s bursts is 70 windows,
    and a server whose cap was 40 refused it (review, stop 51)."""
    if max_windows is not None:
        if max_windows < 1:
            raise ConfigError(f"the window cap must be at least 1, got {max_windows}")
        return int(max_windows)
    longest = max_duration + TIMELINE_BLOCK_S + 2 * TIMELINE_HOP_S
    return max(MAX_API_WINDOWS, worst_window_count(longest, TIMELINE_HOP_S))


def window_count(duration: float, hop: float) -> int:
    """The windows a timeline of ``duration`` seconds of continuous speech needs at ``hop``
    (``ceil(duration / hop)``, at least one): the most a recording of that length costs but
    for a window per speech region where regions are shorter than the hop."""
    return max(1, math.ceil(duration / hop - 1e-9))


def smallest_hop(duration: float, max_windows: int) -> float:
    """The smallest hop (s, in hundredths) at which ``duration`` seconds stay within
    ``max_windows`` windows (:func:`window_count`)."""
    return max(math.ceil(duration / max_windows * 100 - 1e-9) / 100, 0.01)


def window_count_problem(duration: float, params: TimelineParams, max_windows: int
                         ) -> str | None:
    """What is wrong with a timeline of ``duration`` seconds at ``params`` when one request
    may classify at most ``max_windows`` windows (None: nothing), counted as continuous
    speech (:func:`window_count`)."""
    n = window_count(duration, params.hop)
    if n <= max_windows:
        return None
    hop = smallest_hop(duration, max_windows)
    widen = f" and a window of at least {hop:g} s" if hop > params.window else ""
    return (f"hop={params.hop:g} s over this {duration:.2f} s recording makes up to {n:,} "
            f"windows, more than the {max_windows:,} one request may compute: use hop >= "
            f"{hop:g} s{widen} for this recording (or cut it into shorter pieces; "
            "`emovox timeline` on your own machine has no such cap)")


def counted_window_problem(params: TimelineParams, max_windows: int) -> str:
    """Why a timeline at ``params`` was refused once the windows it classified passed
    ``max_windows`` while decoding (its header stated no duration, or its speech is broken
    into more parts than its duration at that hop makes windows). It named the hop that
    fits the server's longest recording, which could be the hop sent or a smaller one, and
    said the header stated no duration when it did (review, stop 51)."""
    return (f"at hop={params.hop:g} s this recording needed more than {max_windows:,} "
            "windows, the most one request may compute: counted while it was decoded, "
            "each stretch of speech between pauses is at least one window, however short, "
            f"so speech broken by many pauses needs more than its length / hop. Use a hop "
            f"larger than {params.hop:g} s, or cut the recording into shorter pieces "
            "(`emovox timeline` on your own machine has no such cap)")
