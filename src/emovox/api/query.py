"""The upload routes' query parameters, checked before a request waits for a slot and
sends its body (:class:`~emovox.api.middleware.UploadSlots`) and again by the routes."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from emovox.api.middleware import route_path
from emovox.errors import ConfigError
from emovox.serving import params as tp
from emovox.serving import service

__all__ = ["QUERY_PARAMETERS", "ROUTE_QUERY", "query_problem", "quoted_names",
           "upload_query_problem"]

#: what ``/v1/timeline`` reads from its query string
QUERY_PARAMETERS = ("window", "hop", "adapt")


def quoted_names(names: list[str]) -> str:
    """``'a' and 'b'``, each cut to 40 characters, at most 5 (a client's names are echoed)."""
    shown = [repr(n if len(n) <= 40 else n[:40] + "...") for n in names[:5]]
    return " and ".join(shown) + (f" (and {len(names) - 5} more)" if len(names) > 5 else "")


#: the query parameters each upload route reads
ROUTE_QUERY: dict[str, tuple[str, ...]] = {"/v1/predict": (), "/v1/timeline": QUERY_PARAMETERS}


def query_problem(names: list[str], query: tuple[str, ...]) -> str | None:
    """What is wrong with a request's query parameter ``names`` (as given, repeats kept) for
    an endpoint that reads ``query``: one it does not read, or one given twice."""
    if unread := sorted(set(names) - set(query)):
        return (f"unknown query parameter(s) {quoted_names(unread)}: this endpoint reads "
                f"{quoted_names(list(query)) if query else 'none'}")
    if twice := sorted({k for k in query if names.count(k) > 1}):  # the last won (QA, 40)
        return (f"query parameter(s) {quoted_names(twice)} given more than once: give each "
                "once")
    return None


def upload_query_problem(scope: dict[str, Any]) -> str | None:
    """:func:`query_problem` of an upload route's request, and a timeline's window and hop
    out of range, from its scope: checked before it waits for a slot and sends its body
    (a wrong parameter was refused only after both: API QA, stop 40)."""
    pairs = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    path = route_path(scope)
    if problem := query_problem([k for k, _ in pairs], ROUTE_QUERY.get(path, ())):
        return problem
    if path == "/v1/timeline":
        given = dict(pairs)
        try:
            window = float(given.get("window", service.TIMELINE_WINDOW_S))
            hop = float(given.get("hop", service.TIMELINE_HOP_S))
        except ValueError:
            return None  # not a number: FastAPI says so, in its words
        try:
            tp.TimelineParams(window, hop)
        except ConfigError as exc:
            return str(exc)
    return None
