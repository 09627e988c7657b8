"""ASGI middleware of the REST API: the request-body limit, the upload slots, the optional
API key and HEAD for every GET route.

All run before the body is read, so an oversized or unauthenticated upload is never parsed
or spooled, and no more uploads are read at once than there are slots.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException

from emovox.api.errors import send_error
from emovox.serving.errcodes import ErrorCode

__all__ = ["API_KEY_HEADER", "INCOMPLETE_UPLOAD", "MULTIPART_CLOSED", "OPEN_PATHS",
           "MAX_WAITING", "OTHER_CONNECTIONS", "RETRY_AFTER_S", "SLOT_WAIT_S",
           "SPOOL_BYTES", "ApiKeyGuard", "BodyLimit", "HeadAsGet", "UploadSlots",
           "bound_multipart_memory", "has_body", "is_loopback", "multipart_boundary",
           "request_key", "route_path"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: The header that carries the API key (``Authorization: Bearer KEY`` works too).
API_KEY_HEADER = "X-API-Key"
#: Paths open without a key: liveness and the documentation (which holds no data).
OPEN_PATHS = ("/health", "/docs", "/docs-assets/", "/openapi.json")


def route_path(scope: Scope) -> str:
    """The request's path as the routes see it: ``scope["path"]`` without the server's
    ``root_path`` (``uvicorn --root-path /api`` puts it in front: every path compared with
    a route's missed, and the upload slots, limits and open paths were off; code review,
    stop 46)."""
    path, root = scope.get("path", ""), scope.get("root_path", "")
    if root and (path == root or path.startswith(root.rstrip("/") + "/")):
        return path[len(root.rstrip("/")):] or "/"
    return path


def has_body(headers: Mapping[str, str]) -> bool:
    """Whether a request carries a body: a ``Content-Length`` other than 0, or a
    ``Transfer-Encoding`` (chunked). ``headers``: Starlette's (case-insensitive)."""
    return headers.get("content-length", "").strip() not in ("", "0") or \
        "transfer-encoding" in headers


def _body_unread(scope: Scope) -> bool:
    """Whether a request answered now, before its body is read, leaves that body on the
    connection: then its answer says ``Connection: close``. Kept alive, the server would go
    on reading the whole body after the answer (uvicorn resumes reading), only to drop it
    before it could read the next request. A request without a body keeps its connection
    (every middleware error closed it: review, stop 53)."""
    return has_body(Headers(raw=scope.get("headers") or []))


async def _app_or_error(app: ASGIApp, scope: Scope, receive: Receive, send: Send,
                        aborted: Callable[[], bool], code: ErrorCode, detail: str) -> None:
    """``app`` with ``receive``; once ``aborted()`` (``receive`` gave up on the body), what
    the app answers is dropped and, if no response has started, the JSON error ``code``
    goes out instead. Cancelled before answering (a server stopping), a JSON 503."""
    started = False

    async def guarded_send(msg: Message) -> None:
        nonlocal started
        if aborted():
            return
        started |= msg.get("type") == "http.response.start"
        await send(msg)

    try:
        await app(scope, receive, guarded_send)
    except Exception:
        if not aborted():
            raise
    except asyncio.CancelledError:  # a stopping server's grace period is over: uvicorn
        if started:  # cancels what is still open, answered with a text 500 and a traceback
            raise  # in the log for each (API re-check, stop 40)
        await send_error(send, ErrorCode.SHUTTING_DOWN, "the server stopped before this "
                         "request was answered; send it again", close=True)  # it stops:
        return  # nothing more is read on this connection
    if aborted() and not started:  # the body was given up halfway: the rest is unread
        await send_error(send, code, detail, close=True)


def is_loopback(host: str) -> bool:
    """True when ``host`` only listens on this machine (``localhost``, 127.0.0.0/8, ::1)."""
    h = host.strip().strip("[]").lower()
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False  # a host name, or "" / "0.0.0.0"-like wildcards: reachable from outside


def request_key(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The key a request presents: ``X-API-Key: KEY`` or ``Authorization: Bearer KEY``."""
    for k, v in headers:
        name = k.decode("latin-1").lower()
        value = v.decode("latin-1").strip()
        if name == API_KEY_HEADER.lower() and value:
            return value
        if name == "authorization" and value[:7].lower() == "bearer " and value[7:].strip():
            return value[7:].strip()
    return None


class ApiKeyGuard:
    """Pure ASGI middleware: 401 for every HTTP request outside :data:`OPEN_PATHS` that
    does not present ``key`` (compared in constant time)."""

    def __init__(self, app: ASGIApp, key: str) -> None:
        if not key:
            raise ValueError("the API key must not be empty")
        self.app, self.key = app, key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = route_path(scope)
        if scope["type"] != "http" or any(
                path == p or (p.endswith("/") and path.startswith(p)) for p in OPEN_PATHS):
            await self.app(scope, receive, send)
            return
        given = request_key(scope.get("headers") or [])
        if given is None or not hmac.compare_digest(given.encode(), self.key):
            detail = (f"this server needs an API key: send it as the {API_KEY_HEADER} header "
                      "or as 'Authorization: Bearer KEY'" if given is None else
                      "wrong API key")
            await send_error(send, ErrorCode.UNAUTHORIZED, detail,
                             {"www-authenticate": "Bearer"}, close=_body_unread(scope))
            return
        await self.app(scope, receive, send)


class HeadAsGet:
    """Answer ``HEAD`` wherever ``GET`` is answered: the same status and headers, no body.

    FastAPI's routes take only the methods they name, so ``HEAD /docs`` or ``/v1/model``
    (uptime monitors, link checkers) was a 405 (stop 37's list)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(msg: Message) -> None:
            if msg["type"] != "http.response.body":
                await send(msg)
            elif not msg.get("more_body", False):
                await send({"type": "http.response.body", "body": b""})

        await self.app({**scope, "method": "GET"}, receive, headers_only)


#: seconds a client in an upload slot may send nothing of its body (:class:`UploadSlots`)
BODY_IDLE_S = 30.0
#: bytes per second an upload in a slot must average after its first :data:`BODY_IDLE_S`
#: (256 kbit/s: a 25 MB upload may take 13 minutes; a client trickling a byte every 29 s
#: held its slot for ever: code review, stop 46)
MIN_UPLOAD_RATE = 32 * 1024
#: requests that may wait for an upload slot: one more is a 503 ``server_busy`` at once (the
#: queue had no bound: 4,000 half-sent uploads waiting took 658 MiB, about 170 KiB each; code
#: review, stop 48)
MAX_WAITING = 64
#: seconds a request may wait for an upload slot before its 503 ``server_busy``
SLOT_WAIT_S = 60.0
#: seconds a 503 ``server_busy`` asks the client to wait (``Retry-After``)
RETRY_AFTER_S = 10
#: connections ``emovox serve`` keeps open beside the upload slots and their queue (GET
#: requests, idle keep-alive connections): over the total uvicorn answers 503 itself
#: (``limit_concurrency``: every waiting connection holds buffers; stop 48). Generous: a
#: few idle sockets must not refuse ``/health`` (130 did: diff review, stop 48); at about
#: 170 KiB a connection at most, 512 hold under 90 MiB
OTHER_CONNECTIONS = 512


class UploadSlots:
    """Pure ASGI middleware: at most ``slots`` POST requests to ``paths`` have their bodies
    read at a time; the others wait, their bodies unread (uvicorn stops reading a socket
    whose buffer is full). The multipart parser keeps each part in memory up to
    :data:`SPOOL_BYTES`, past that in a temporary file, so memory is bounded by the slots,
    not by the number of clients (the body was read before a concurrency slot was taken: 20
    clients uploading at once took the server from 327 to 907 MB, 40 to 1,347 MB; API QA,
    stop 37). ``/health`` and the docs never wait.

    A client in a slot that sends nothing of its body for ``idle_s`` seconds, or whose body
    arrives slower than ``min_rate`` bytes per second on average after its first ``idle_s``,
    gets a 408 ``upload_stalled`` and loses its slot: four stalled uploads held every slot
    of a 2-core server, and every prediction waited, for as long as they stayed open (API
    QA, stop 40; trickled bytes, code review, stop 46). ``precheck(scope)``, when given,
    names what is wrong with a request before it waits: a 422 ``invalid_request`` at once.

    At most ``max_waiting`` requests wait for a slot, each at most ``wait_s`` seconds; past
    either a JSON 503 ``server_busy`` with ``Retry-After``, the body unread (waiting had no
    bound in number or time: code review, stop 48)."""

    def __init__(self, app: ASGIApp, slots: int, paths: tuple[str, ...],
                 idle_s: float = BODY_IDLE_S, min_rate: float = MIN_UPLOAD_RATE,
                 precheck: Callable[[Scope], str | None] | None = None,
                 max_waiting: int = MAX_WAITING, wait_s: float = SLOT_WAIT_S) -> None:
        self.app, self.paths, self.idle_s, self.precheck = app, paths, idle_s, precheck
        self.min_rate, self.wait_s, self.max_waiting = min_rate, wait_s, max_waiting
        self.waiting = 0  # requests waiting for a slot now
        self.stalled = (f"the upload stalled: nothing of its body arrived for {idle_s:g} s, "
                        f"or it came slower than {min_rate / 1024:g} KiB/s; send the request "
                        "again")
        self.slots = asyncio.Semaphore(slots)  # created in the server's loop on first use

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST" or \
                route_path(scope) not in self.paths:
            await self.app(scope, receive, send)
            return
        if self.precheck is not None and (problem := self.precheck(scope)):
            await send_error(send, ErrorCode.INVALID_REQUEST, problem,  # before a slot and the
                             close=_body_unread(scope))  # body: a wrong parameter waited for
            return  # both (API QA, stop 40)
        state = {"stalled": False, "read": False}
        loop = asyncio.get_running_loop()
        got, began = [0], [0.0]

        async def timed_receive() -> Message:
            if state["stalled"]:
                return {"type": "http.disconnect"}
            if state["read"]:  # the body is in: what follows waits for a disconnect
                return await receive()
            # the deadline of the next bytes: idle_s from now, and no later than the
            # average rate allows for what has arrived
            due = began[0] + self.idle_s + got[0] / self.min_rate - loop.time()
            try:
                if due <= 0:
                    raise TimeoutError
                msg = await asyncio.wait_for(receive(), min(self.idle_s, due))
                got[0] += len(msg.get("body") or b"")
                state["read"] = msg.get("type") != "http.request" or not msg.get("more_body")
                return msg
            except TimeoutError:
                state["stalled"] = True
                raise StarletteHTTPException(408, self.stalled) from None

        if not await self._take_slot(send, _body_unread(scope)):
            return
        try:
            began[0] = loop.time()
            await _app_or_error(self.app, scope, timed_receive, send,
                                lambda: state["stalled"], ErrorCode.UPLOAD_STALLED,
                                self.stalled)
        finally:
            self.slots.release()

    async def _take_slot(self, send: Send, unread: bool) -> bool:
        """A slot, at once or after waiting at most ``wait_s``; False once a 503
        ``server_busy`` went out instead (the queue full, or the wait over; closing the
        connection when ``unread``, a body it leaves unread)."""
        if not self.slots.locked():
            await self.slots.acquire()  # free: taken without yielding
            return True
        why = f"{self.waiting} requests are waiting for one already"
        if self.waiting < self.max_waiting:
            self.waiting += 1
            try:
                await asyncio.wait_for(self.slots.acquire(), self.wait_s)  # (3.10 too)
                return True
            except (TimeoutError, asyncio.TimeoutError):  # one type since 3.11
                why = f"none came free within {self.wait_s:g} s"
            finally:
                self.waiting -= 1
        await send_error(send, ErrorCode.SERVER_BUSY, f"the server is busy: every upload slot "
                         f"is taken and {why}; send the request again in a moment",
                         {"retry-after": str(RETRY_AFTER_S)}, close=unread)
        return False


#: the bytes of one multipart part the parser keeps in memory before spooling it to a
#: temporary file (Starlette's default is 1 MiB: with 33 parts a request held 33 MiB)
SPOOL_BYTES = 64 * 1024


def bound_multipart_memory() -> None:
    """Make Starlette's multipart parser spool parts past :data:`SPOOL_BYTES` to disk (a
    class attribute: process-wide, as the server's process is the API's alone)."""
    from starlette.formparsers import MultiPartParser

    MultiPartParser.spool_max_size = SPOOL_BYTES


#: ``request.state`` key: whether a multipart body's closing ``--BOUNDARY--`` went by
#: (:class:`BodyLimit`; absent for other bodies)
MULTIPART_CLOSED = "emovox_multipart_closed"


#: the detail of a 422 ``incomplete_upload``
INCOMPLETE_UPLOAD = ("the multipart/form-data body ends before its closing boundary (cut "
                     "short on the way, or written without it): the upload is incomplete. "
                     "Send the request again (curl -F \"file=@clip.wav\" URL)")


def multipart_boundary(content_type: str) -> bytes | None:
    """The closing delimiter ``--BOUNDARY--`` of a ``multipart/*`` content type (None for
    another type, or one without a boundary)."""
    if not content_type.strip().lower().startswith("multipart/"):
        return None
    boundary = next((p.split("=", 1)[1].strip().strip('"') for p in content_type.split(";")[1:]
                     if p.strip().lower().startswith("boundary=")), "")
    return f"--{boundary}--".encode("latin-1", "replace") if boundary else None


class BodyLimit:
    """Pure ASGI middleware: 413 for request bodies over ``max_body`` bytes, decided from
    ``Content-Length`` before anything is read, or while a chunked body streams in, so an
    oversized upload is never parsed or spooled. ``paths`` gives some paths their own
    ``(max_body, detail)`` (``POST /v1/predict`` also carries reference clips). Whether a
    multipart body's closing boundary went by is kept in ``request.state``
    (:data:`MULTIPART_CLOSED`): a body cut before it is told apart from one without a
    ``file`` part. It is looked for in the whole stream: RFC 2046 allows an epilogue after
    it, and a body whose last KiB lacked it was refused (code review, stop 46)."""

    def __init__(self, app: ASGIApp, max_body: int, detail: str,
                 paths: Mapping[str, tuple[int, str]] | None = None) -> None:
        self.app, self.max_body, self.detail = app, max_body, detail
        self.paths = dict(paths or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        max_body, detail = self.paths.get(route_path(scope), (self.max_body, self.detail))
        delim = None
        for k, v in scope.get("headers") or []:
            if k == b"content-type":
                delim = multipart_boundary(v.decode("latin-1"))
            if k == b"content-length":
                try:
                    too_big = int(v) > max_body
                except ValueError:
                    too_big = False
                if too_big:
                    await send_error(send, ErrorCode.UPLOAD_TOO_LARGE, detail,
                                     close=True)  # too large to read: left unread
                    return
        state = {"received": 0, "exceeded": False}
        shared = scope.setdefault("state", {})  # request.state of the app's handlers
        if delim:
            shared[MULTIPART_CLOSED] = False
        overlap = [b""]  # the last bytes before this message: a delimiter split in two

        async def limited_receive() -> Message:
            if state["exceeded"]:
                return {"type": "http.disconnect"}
            msg = await receive()
            if msg.get("type") == "http.request":
                body = msg.get("body") or b""
                if delim and not shared[MULTIPART_CLOSED]:
                    seen = overlap[0] + body
                    shared[MULTIPART_CLOSED] = delim in seen
                    overlap[0] = seen[-(len(delim) - 1):]
                state["received"] += len(body)
                if state["received"] > max_body:
                    state["exceeded"] = True
                    raise StarletteHTTPException(413, detail)
            return msg

        await _app_or_error(self.app, scope, limited_receive, send,
                            lambda: state["exceeded"], ErrorCode.UPLOAD_TOO_LARGE, detail)
