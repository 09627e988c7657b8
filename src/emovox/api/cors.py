"""Cross-origin requests (CORS): which web pages' scripts may call the API from a browser.

Off by default (no CORS headers: a browser lets no other origin's script read an answer).
``emovox serve --cors-origin https://app.example.com`` (repeatable; ``EMOVOX_CORS_ORIGINS``,
comma-separated; ``*`` for any origin) adds Starlette's ``CORSMiddleware`` outside the API
key's guard: a browser's preflight (``OPTIONS`` with ``Access-Control-Request-Method``) is
answered without the key, which a browser never sends on it, while the request that follows
still needs it (stop 51: a preflight was a 405, and a 401 on a keyed server).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from emovox.api.middleware import API_KEY_HEADER
from emovox.api.requestid import REQUEST_ID_HEADER
from emovox.errors import ConfigError

__all__ = ["CORS_HEADERS", "CORS_METHODS", "ENV_CORS_ORIGINS", "add_cors", "cors_origins",
           "cors_origins_from_env"]

#: the environment variable of ``emovox serve --cors-origin`` (and of ``uvicorn --factory``)
ENV_CORS_ORIGINS = "EMOVOX_CORS_ORIGINS"
#: the methods the API answers
CORS_METHODS = ("GET", "HEAD", "POST")
#: the request headers a page's script may send (the key, the id; Content-Type for a form)
CORS_HEADERS = (API_KEY_HEADER, "Authorization", "Content-Type", REQUEST_ID_HEADER)
#: seconds a browser may keep a preflight's answer
CORS_MAX_AGE_S = 600
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:\d{1,5})?|https?://\[[0-9A-Fa-f:.]+\](:\d{1,5})?")


def cors_origins(values: Iterable[str], what: str = "--cors-origin") -> tuple[str, ...]:
    """The allowed origins of ``values`` (each may hold several, comma-separated): each
    ``scheme://host[:port]`` as a browser sends it in ``Origin`` (lower case, no path; one
    trailing ``/`` is dropped), or ``*`` alone (any origin). Empty: none (CORS off).

    Raises:
        ConfigError: an entry that is not an origin (a path, no scheme, a space...).
    """
    out: list[str] = []
    for value in values:
        for item in value.split(","):
            origin = item.strip()
            if not origin:
                continue
            if origin != "*":
                origin = origin[:-1] if origin.endswith("/") else origin
                if not _ORIGIN.fullmatch(origin):
                    raise ConfigError(
                        f"{what}: {item.strip()!r} is not an origin: give scheme://host[:port] "
                        "as the browser's address bar shows the page (e.g. "
                        "https://app.example.com or http://localhost:5173, no path), or *")
                origin = origin.lower()
            if origin not in out:
                out.append(origin)
    return ("*",) if "*" in out else tuple(out)


def cors_origins_from_env(env: Mapping[str, str]) -> tuple[str, ...]:
    """:func:`cors_origins` of ``EMOVOX_CORS_ORIGINS`` (unset or empty: none)."""
    return cors_origins([env.get(ENV_CORS_ORIGINS, "")], ENV_CORS_ORIGINS)


def add_cors(app: FastAPI, origins: Iterable[str]) -> tuple[str, ...]:
    """Add ``CORSMiddleware`` for ``origins`` (:func:`cors_origins`) to ``app``, as the next
    outer middleware; nothing when there are none. With ``*`` no credentials (cookies)
    are allowed; the API needs none (its key is a header). Returns the origins."""
    allowed = cors_origins(origins)
    if allowed:
        app.add_middleware(
            CORSMiddleware, allow_origins=list(allowed), allow_methods=list(CORS_METHODS),
            allow_headers=list(CORS_HEADERS), expose_headers=[REQUEST_ID_HEADER, "Retry-After"],
            allow_credentials=allowed != ("*",), max_age=CORS_MAX_AGE_S)
    return allowed
