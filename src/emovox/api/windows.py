"""The work one ``POST /v1/timeline`` may cost: at most a number of windows
(:func:`~emovox.serving.params.api_window_cap`; :data:`~emovox.serving.params.MAX_API_WINDOWS`
by default).

Nothing bounded it before stop 51: two ``?window=3&hop=0.06`` timelines of a 590 s recording
(about 10,000 windows each) held both compute slots of a 2-core server for 228 s, and a
small ``/v1/predict`` waited 224 s behind them (API review). The cap is checked twice:

* before the request waits for a compute slot, from the duration the upload's header
  states (:meth:`WindowBudget.preflight`): a 422 ``invalid_request`` naming the smallest hop
  this recording allows, before anything is decoded;
* while the recording is decoded (:meth:`WindowBudget.counted`): the windows handed to the
  model are counted and the request is refused once they pass the cap, for a header that
  states no duration (a stream) or less than the file holds.

The CLI (``emovox timeline``) has no such cap: it runs on the user's own machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

from emovox.api.errors import ApiError
from emovox.serving import params as tp
from emovox.serving import uploads

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
    """The window cap of a server whose duration and upload limits are ``max_duration``
    seconds and ``max_bytes``."""

    max_windows: int
    max_duration: float
    max_bytes: int

    def preflight(self, file: BinaryIO, name: str, params: tp.TimelineParams) -> None:
        """:class:`ApiError` 422 when the duration the header of the upload ``file`` states
        needs more windows at ``params`` than the cap; read from the header alone. A rate
        or channel count out of limits is refused first, as ``/v1/predict`` refuses it (a
        WAV whose header says 1 Hz was refused by the timeline as 59,259 s long, its
        duration checked before its rate: API review, stop 51). A recording over the
        duration limit is left to the timeline's own refusal (``audio_too_long``). ``file``
        is rewound."""
        from emovox.audio import check_limits, header_slack, probe, scaled_limit

        try:
            with uploads.open_upload(file, name, max_bytes=self.max_bytes) as up, \
                    uploads.named_errors(up):
                info = probe(up.source, filename=up.name)
                check_limits(up.name, info.sr, info.channels)
        finally:
            file.seek(0)
        if info.duration is None:
            return  # counted while decoding
        limit = scaled_limit(self.max_duration, info.sr, info.channels)
        if info.duration > limit + header_slack(info, limit):
            return  # too long: said by the timeline, in its words
        if problem := tp.window_count_problem(info.duration, params, self.max_windows):
            raise ApiError(422, "invalid_request", f"{name}: {problem}")

    def counted(self, predictor: Any, name: str, params: tp.TimelineParams) -> Any:
        """``predictor`` for one timeline at ``params``: refused (422) once it is asked for
        more windows than the cap."""
        hop = tp.smallest_hop(self.max_duration, self.max_windows)
        detail = (f"{name}: at hop={params.hop:g} s this recording needs more than "
                  f"{self.max_windows:,} windows, the most one request may compute (found "
                  "while decoding it: its header states no duration, or less than it "
                  f"holds): use a larger hop (hop >= {hop:g} s fits any recording within the "
                  f"{self.max_duration:g} s limit), or cut it into shorter pieces")
        return _Counted(predictor, self.max_windows, ApiError(422, "invalid_request", detail))
