"""Request ids: every response of the REST API carries ``X-Request-ID``, and the server's log
lines written while a request is handled end with ``[request_id=ID]`` (stop 51: an
integrator could not tie an answer to the server's log).

The id is the client's ``X-Request-ID`` when it is a sane token (1-64 characters of
``A-Z a-z 0-9 . _ -``: anything else is ignored, never echoed into headers or logs), else a
fresh ``uuid4().hex``. :class:`RequestId` is the outermost middleware, so the errors of the
middleware below it (401, 408, 413, 422, 503) and of CORS carry it too; error bodies do not.
An exception no handler answers is logged with the id and answered with a JSON 500 by
:class:`UnhandledErrors` (inside the CORS layer, so that answer carries CORS headers too).
"""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar
from typing import Any

from emovox.api.errors import send_error
from emovox.api.middleware import ASGIApp, Message, Receive, Scope, Send, route_path
from emovox.serving.errcodes import ErrorCode

log = logging.getLogger(__name__)

__all__ = ["REQUEST_ID_HEADER", "RequestId", "RequestTag", "UnhandledErrors",
           "current_request_id", "install_log_records", "request_id_of", "tag"]

#: the header that carries the request id, both ways
REQUEST_ID_HEADER = "X-Request-ID"
_HEADER = REQUEST_ID_HEADER.lower().encode("latin-1")
_SANE = re.compile(r"[A-Za-z0-9._-]{1,64}")
#: the id of the request being handled (None outside one); worker threads inherit it
current_request_id: ContextVar[str | None] = ContextVar("emovox_request_id", default=None)


def request_id_of(headers: list[tuple[bytes, bytes]]) -> str:
    """The client's ``X-Request-ID`` when it is a sane token, else a new ``uuid4().hex``."""
    for k, v in headers:
        if k.lower() == _HEADER:
            given = v.decode("latin-1").strip()
            if _SANE.fullmatch(given):
                return given
            break
    return uuid.uuid4().hex


class _HttpLayer:
    """A pure ASGI middleware that handles HTTP requests (:meth:`handle`) and passes
    anything else (lifespan, websockets) to ``app`` untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class RequestId(_HttpLayer):
    """Pure ASGI middleware: the request's id in :data:`current_request_id` while it is
    handled and in the ``X-Request-ID`` header of its response (replacing one the app set).
    The outermost layer, so every answer carries it; :class:`UnhandledErrors`, inside it,
    answers an exception that escapes the app."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        rid = request_id_of(scope.get("headers") or [])

        async def send_with_id(msg: Message) -> None:
            if msg["type"] == "http.response.start":
                headers = [(k, v) for k, v in msg.get("headers") or [] if k.lower() != _HEADER]
                msg = {**msg, "headers": [*headers, (_HEADER, rid.encode("latin-1"))]}
            await send(msg)

        token = current_request_id.set(rid)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            current_request_id.reset(token)


#: the detail of the 500 of an exception no handler answered
_UNHANDLED = ("an unexpected error while handling the request; the server's log says more "
              "(its line ends with this response's X-Request-ID)")


class UnhandledErrors(_HttpLayer):
    """Pure ASGI middleware, inside :class:`RequestId` and the CORS layer: an exception
    that escapes the app (a bug) is logged here, while the request's id is current, so its
    traceback's line ends with ``[request_id=ID]`` (uvicorn logged it after the id was
    reset: review, stop 51). Before any response started it is answered with a JSON 500
    ``internal_error`` and not raised on (the server would log it once more, without the
    id); the CORS layer outside adds its headers, so a page can read it. After a response
    started it is raised on, for the server to drop the connection (uvicorn logs it a
    second time)."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracked(msg: Message) -> None:
            nonlocal started
            started |= msg["type"] == "http.response.start"
            await send(msg)

        try:
            await self.app(scope, receive, tracked)
        except Exception:
            log.exception("unhandled error while handling %s %s", scope.get("method"),
                          route_path(scope))
            if started:
                raise
            await send_error(send, ErrorCode.INTERNAL_ERROR, _UNHANDLED)


class RequestTag(logging.Filter):
    """A handler's filter that gives every record a ``request_tag`` (:func:`tag`), for a
    format naming it (``emovox serve``'s access lines), whether or not the record factory
    of :func:`install_log_records` made it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_tag"):
            record.request_tag = tag(current_request_id.get())
        return True


def tag(rid: str | None) -> str:
    """`` [request_id=ID]`` (empty for None): what a log line of a request ends with."""
    return f" [request_id={rid}]" if rid else ""


_installed = False


def install_log_records() -> None:
    """From now on, every log record made while a request is handled has ``request_id``
    (``"-"`` outside one) and ``request_tag`` (`` [request_id=ID]``, empty outside one)
    attributes, and its message ends with the tag: the log lines of one request can be
    found by its id, whatever the handler's format. Idempotent (a process-wide record
    factory, as the server's process is the API's)."""
    global _installed
    if _installed:
        return
    _installed = True
    make = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        rid = current_request_id.get()
        record.request_id = rid or "-"
        record.request_tag = tag(rid)
        if rid:  # a sane token: no % to upset the message's own formatting
            record.msg = f"{record.msg}{record.request_tag}"
        return record

    logging.setLogRecordFactory(factory)
