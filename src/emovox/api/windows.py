"""The work one ``POST /v1/timeline`` may cost: at most a number of windows
(:func:`~emovox.serving.params.api_window_cap`; :data:`~emovox.serving.params.MAX_API_WINDOWS`
by default, raised with the duration limit so that the default hop always passes).

Nothing bounded it before stop 51: two ``?window=3&hop=0.06`` timelines of a 590 s recording
(about 10,000 windows each) held both compute slots of a 2-core server for 228 s, and a
small ``/v1/predict`` waited 224 s behind them (API review). The cap is checked twice, both
times inside :func:`~emovox.serving.service.timeline_from_upload`, on its one copy of the
upload (a check before it copied the upload a second time to read its header: review,
stop 51):

* from the header, right after the probe the timeline makes anyway
  (:meth:`WindowBudget.header_check`): a 422 ``invalid_request`` naming the smallest hop
  this recording allows, before anything is decoded;
* while the recording is decoded (:meth:`WindowBudget.counted`): the windows handed to the
  model are counted and the request is refused once they pass the cap (a header that states
  no duration, or speech broken by so many pauses that it needs more windows than its
  length / hop).

The CLI (``emovox timeline``) has no such cap: it runs on the user's own machine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from emovox.api.errors import ApiError
from emovox.serving import params as tp
from emovox.serving.errcodes import ErrorCode

__all__ = ["WindowBudget"]


class _Counted:
    """``predictor``, refusing (``refusal()``) once more than ``limit`` windows were asked
    for; everything else is the predictor's."""

    def __init__(self, predictor: Any, limit: int, refusal: ApiError) -> None:
        self._predictor, self._limit, self._refusal = predictor, limit, refusal
        self.windows = 0

    def span_probabilities(self, waves: Sequence[Any]) -> Any:
        self.windows += len(waves)
        if self.windows > self._limit:  # before the model runs on them
            raise self._refusal
        return self._predictor.span_probabilities(waves)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._predictor, name)


@dataclass(frozen=True)
class WindowBudget:
    """The window cap of a server: at most ``max_windows`` windows per timeline."""

    max_windows: int

    def header_check(self, name: str, params: tp.TimelineParams
                     ) -> Callable[[Any, float | None], None]:
        """The check :func:`~emovox.serving.service.timeline_from_upload` makes once the
        upload ``name``'s header (an :class:`~emovox.audio.AudioInfo`) passed its limits:
        :class:`ApiError` 422 when the duration it states needs more windows at ``params``
        than the cap. The duration counted is at most the limit that applies (the second
        argument): an estimate may run 0.5 s + 2 % past it, and an MP3 of 7,250 s under a
        7,200 s limit was refused at the default hop (review, stop 51). A header that
        states no duration is left to :meth:`counted`."""

        def check(info: Any, limit: float | None) -> None:
            if info.duration is None:
                return
            duration = info.duration if limit is None else min(info.duration, limit)
            if problem := tp.window_count_problem(duration, params, self.max_windows):
                raise ApiError(422, ErrorCode.INVALID_REQUEST, f"{name}: {problem}")

        return check

    def counted(self, predictor: Any, name: str, params: tp.TimelineParams) -> Any:
        """``predictor`` for one timeline at ``params``: refused (422) once it is asked for
        more windows than the cap; the detail never asks for a hop at or below the one
        sent (:func:`~emovox.serving.params.counted_window_problem`)."""
        detail = f"{name}: {tp.counted_window_problem(params, self.max_windows)}"
        return _Counted(predictor, self.max_windows,
                        ApiError(422, ErrorCode.INVALID_REQUEST, detail))
