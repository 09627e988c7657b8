"""Validated request parameters shared by every front end (CLI, REST API, web app).

One place decides what a timeline window, a hop or a duration limit may be, so the CLI and
the API accept and refuse exactly the same values with the same message.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from emovox.errors import ConfigError

__all__ = [
    "MAX_HOP_S",
    "MAX_WINDOW_S",
    "MIN_HOP_S",
    "MIN_WINDOW_S",
    "TIMELINE_HOP_S",
    "TIMELINE_WINDOW_S",
    "TimelineParams",
    "check_max_duration",
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
