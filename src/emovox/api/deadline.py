"""The REST API's per-request deadline (stop 57): ``emovox serve --request-timeout S``
(``EMOVOX_REQUEST_TIMEOUT_S``; :data:`~emovox.serving.params.DEFAULT_REQUEST_TIMEOUT_S`;
0: none).

A request had no time limit: its client waited for as long as the queue for a concurrency
slot and the analysis took (review, stop 57). The deadline covers both, from the moment the
upload is read and checked: a request still waiting for a slot when it passes leaves the
queue without ever running; one whose analysis is still running is answered 504
``deadline_exceeded`` at once. Python cannot stop a thread, so that analysis runs on in its
worker thread and **keeps its slot until it ends** (the server never analyses more than
``max_concurrency`` requests at once, and the requests queued behind wait for it); its
answer is dropped, with a log line when it is abandoned and one when it ends. A cancelled
request (a stopping server) leaves its running work holding its slot the same way, with or
without a deadline: ``async with slots`` gave it back at once with ``0`` while the thread ran
on, one analysis more than ``max_concurrency`` (review, stop 57).

504, not 503: the API's 503s say "not now" (no model, stopping, every upload slot taken:
retry after ``Retry-After``), where a deadline can pass on an idle server for a recording
too slow to analyse, which the same request would meet again; 504 is HTTP's "no timely
answer from the part that computes it", as gRPC's ``DEADLINE_EXCEEDED`` maps to, and lets a
client or a proxy tell a deadline from the rest without reading the body.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from starlette.concurrency import run_in_threadpool

from emovox.api.errors import ApiError
from emovox.serving.errcodes import ErrorCode
from emovox.serving.params import DEFAULT_REQUEST_TIMEOUT_S, request_timeout_setting

log = logging.getLogger("emovox.api.server")  # the server's log

__all__ = ["DEFAULT_REQUEST_TIMEOUT_S", "ENV_REQUEST_TIMEOUT", "request_timeout_from_env",
           "request_timeout_setting", "run_in_slot"]

#: the environment variable of ``emovox serve --request-timeout`` (and ``uvicorn --factory``)
ENV_REQUEST_TIMEOUT = "EMOVOX_REQUEST_TIMEOUT_S"
T = TypeVar("T")


def request_timeout_from_env(env: Mapping[str, str]) -> float:
    """``EMOVOX_REQUEST_TIMEOUT_S`` (unset or empty: :data:`DEFAULT_REQUEST_TIMEOUT_S`)."""
    raw = env.get(ENV_REQUEST_TIMEOUT, "").strip()
    return request_timeout_setting(raw, ENV_REQUEST_TIMEOUT) if raw else \
        DEFAULT_REQUEST_TIMEOUT_S


def _late(what: str, timeout: float, waited: float, worked: float | None) -> ApiError:
    """The 504 of a request past its deadline, waiting (``worked`` None) or working."""
    limit = f"the request took longer than the server's limit of {timeout:g} s"
    if worked is None:
        why = (f"it waited {waited:.1f} s for an analysis slot without getting one (the "
               "server is busy) and was not analysed; send it again later")
    else:
        why = (f"its {what} ran for {worked:.1f} s (after {waited:.1f} s waiting for a "
               "slot) and was abandoned; send a shorter recording, or send it again when "
               "the server is less busy")
    return ApiError.of(ErrorCode.DEADLINE_EXCEEDED, f"{limit}; {why} (the operator sets the "
                       "limit: emovox serve --request-timeout)")


async def _take_slot(slots: asyncio.Semaphore, what: str, timeout: float) -> float | None:
    """Wait for one of ``slots``: the seconds then left of ``timeout`` (0: no limit, None),
    else a 504 :class:`ApiError` (the deadline passed while waiting; no slot taken)."""
    if not timeout:
        await slots.acquire()
        return None
    loop = asyncio.get_running_loop()
    began = loop.time()
    try:
        await asyncio.wait_for(slots.acquire(), timeout)
        left = began + timeout - loop.time()
        if left <= 0:  # the slot came as the deadline passed: not started
            slots.release()
            raise TimeoutError
    except TimeoutError:
        log.warning("%s: the request's deadline of %g s passed while it waited for a slot: "
                    "answered 504, never analysed", what, timeout)
        raise _late(what, timeout, loop.time() - began, None) from None
    return left


async def run_in_slot(slots: asyncio.Semaphore, work: Callable[[], T], *, what: str,
                      timeout: float, before: Callable[[], Awaitable[None]]) -> T:
    """``work()`` in a worker thread once one of ``slots`` is free (``before()`` first, in
    the slot: it may refuse), all within ``timeout`` seconds (0: no limit), else a 504
    :class:`ApiError`. Once ``work`` runs, its slot is given back when it ends, never
    before: past the deadline, and when the request is cancelled, with or without one."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    left = await _take_slot(slots, what, timeout)
    started = loop.time()
    running: asyncio.Future[T] | None = None
    waited = False  # the wait below returned: not cancelled
    try:
        await before()
        running = asyncio.ensure_future(run_in_threadpool(work))
        await asyncio.wait((running,), timeout=left)  # never cancels ``running``
        waited = True
        if running.done():
            return running.result()
    finally:  # returned, refused, past the deadline or cancelled (a stopping server)
        if running is None or running.done():
            slots.release()
        else:  # the slot is freed by the work's end, never before
            why = "abandoned at its deadline" if waited else "of a cancelled request"
            running.add_done_callback(
                lambda f: _ended(f, slots, what, loop.time() - started, why))
    log.warning("%s: the request's deadline of %g s passed %.1f s into its work: answered "
                "504; the work goes on in its thread, holding its slot, and its answer will "
                "be dropped", what, timeout, loop.time() - started)
    raise _late(what, timeout, started - began, loop.time() - started)


def _ended(running: asyncio.Future[object], slots: asyncio.Semaphore, what: str,
           seconds: float, why: str) -> None:
    """An abandoned work (``why``: past its deadline, or its request cancelled) has ended:
    its slot is free again; its answer (or error: retrieved here, or asyncio would log it as
    never retrieved) is dropped. Cancelled, the server is stopping (its loop cancels what is
    left) and the thread may still run: said so."""
    slots.release()
    if running.cancelled():
        log.warning("%s: the server stopped %.1f s into the work %s (its thread may still "
                    "run)", what, seconds, why)
        return
    error = running.exception()
    how = "" if error is None else f" with an error ({type(error).__name__}: {error})"
    log.warning("%s: the work %s ended after %.1f s%s; its answer is dropped and its slot "
                "is free", what, why, seconds, how)
