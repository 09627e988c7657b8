"""Validated request parameters shared by every front end (CLI, REST API, web app).

One place decides what a timeline window, a hop or a duration limit may be, so the CLI and
the API accept and refuse exactly the same values with the same message.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from emovox.errors import ConfigError

__all__ = [
    "MAX_API_WINDOWS",
    "MAX_HOP_S",
    "MAX_WINDOW_S",
    "MIN_HOP_S",
    "MIN_WINDOW_S",
    "TIMELINE_HOP_S",
    "TIMELINE_WINDOW_S",
    "TimelineParams",
    "api_window_cap",
    "check_max_duration",
    "smallest_hop",
    "window_count",
    "window_count_problem",
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
#: limit) at a 0.25 s hop: 6x the windows of that recording at the default 1.5 s hop, and a
#: quarter of the work that stalled the server (about a minute of a busy 2-core machine)
MAX_API_WINDOWS = 2400


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


def api_window_cap(max_duration: float, max_windows: int | None = None) -> int:
    """The window cap of a server whose duration limit is ``max_duration`` seconds:
    ``max_windows``, by default :data:`MAX_API_WINDOWS` raised so that a recording as long as
    the limit always passes at the default hop (an operator who raised the duration limit
    did not mean to refuse the default timeline)."""
    if max_windows is not None:
        if max_windows < 1:
            raise ConfigError(f"the window cap must be at least 1, got {max_windows}")
        return int(max_windows)
    return max(MAX_API_WINDOWS, math.ceil(max_duration / TIMELINE_HOP_S))


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
    may classify at most ``max_windows`` windows (None: nothing)."""
    n = window_count(duration, params.hop)
    if n <= max_windows:
        return None
    hop = smallest_hop(duration, max_windows)
    widen = f" and a window of at least {hop:g} s" if hop > params.window else ""
    return (f"hop={params.hop:g} s over this {duration:.2f} s recording makes up to {n:,} "
            f"windows, more than the {max_windows:,} one request may compute: use hop >= "
            f"{hop:g} s{widen} for this recording (or cut it into shorter pieces; "
            "`emovox timeline` on your own machine has no such cap)")
