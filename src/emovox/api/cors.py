"""Cross-origin requests (CORS): which web pages' scripts may call the API from a browser.

Off by default (no CORS headers: a browser lets no other origin's script read an answer).
``emovox serve --cors-origin https://app.example.com`` (repeatable; ``EMOVOX_CORS_ORIGINS``,
comma-separated; ``*`` for any origin) adds Starlette's ``CORSMiddleware`` (:class:`JsonCors`:
its refusals JSON) outside the API key's guard: a browser's preflight (``OPTIONS`` with
``Access-Control-Request-Method``) is answered without the key, which a browser never sends
on it, while the request that follows still needs it (stop 51: a preflight was a 405, and a
401 on a keyed server). A preflight it refuses (an origin, method or header not allowed) is
a JSON 400 ``cors_refused``; no origin gets credentials.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from emovox.api.errors import code_response
from emovox.api.middleware import API_KEY_HEADER
from emovox.api.requestid import REQUEST_ID_HEADER
from emovox.errors import ConfigError
from emovox.serving.errcodes import ErrorCode

__all__ = ["CORS_HEADERS", "CORS_METHODS", "ENV_CORS_ORIGINS", "JsonCors", "add_cors",
           "cors_origins", "cors_origins_from_env"]

#: the environment variable of ``emovox serve --cors-origin`` (and of ``uvicorn --factory``)
ENV_CORS_ORIGINS = "EMOVOX_CORS_ORIGINS"
#: the methods the API answers
CORS_METHODS = ("GET", "HEAD", "POST")
#: the request headers a page's script may send (the key, the id; Content-Type for a form)
CORS_HEADERS = (API_KEY_HEADER, "Authorization", "Content-Type", REQUEST_ID_HEADER)
#: seconds a browser may keep a preflight's answer
CORS_MAX_AGE_S = 600
_ORIGIN = re.compile(r"(https?)://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::(\d{1,5}))?")
#: the port a browser leaves out of ``Origin`` for each scheme
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(item: str, what: str) -> str:
    """One origin as a browser sends it in ``Origin``: lower case, no trailing ``/``, no
    port when it is the scheme's default (``https://a.example:443`` was accepted and never
    matched a browser's ``https://a.example``: review, stop 51)."""
    origin = item[:-1] if item.endswith("/") else item
    m = _ORIGIN.fullmatch(origin)
    if m is None or (m[3] is not None and not 0 < int(m[3]) < 65536):
        raise ConfigError(
            f"{what}: {item!r} is not an origin: give scheme://host[:port] as the browser's "
            "address bar shows the page (e.g. https://app.example.com or "
            "http://localhost:5173, no path), or *")
    scheme, host = m[1].lower(), m[2].lower()
    port = "" if m[3] is None or int(m[3]) == _DEFAULT_PORTS[scheme] else f":{int(m[3])}"
    return f"{scheme}://{host}{port}"


def cors_origins(values: Iterable[str], what: str = "--cors-origin") -> tuple[str, ...]:
    """The allowed origins of ``values`` (each may hold several, comma-separated): each
    ``scheme://host[:port]`` as a browser sends it in ``Origin`` (lower case, no path; one
    trailing ``/`` and a default port, 80 for http and 443 for https, are dropped), or
    ``*`` alone (any origin). Empty: none (CORS off).

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
                origin = _origin(origin, what)
            if origin not in out:
                out.append(origin)
    return ("*",) if "*" in out else tuple(out)


def cors_origins_from_env(env: Mapping[str, str]) -> tuple[str, ...]:
    """:func:`cors_origins` of ``EMOVOX_CORS_ORIGINS`` (unset or empty: none)."""
    return cors_origins([env.get(ENV_CORS_ORIGINS, "")], ENV_CORS_ORIGINS)


#: what each refusal of a preflight (Starlette's word for it) means, for ``detail``
_REFUSED = {
    "origin": "the page's origin is not one this server lets call it (emovox serve "
              "--cors-origin)",
    "method": f"the method is not one of {', '.join(CORS_METHODS)}",
    "headers": f"a request header is not one of {', '.join(CORS_HEADERS)} (or one that "
               "every page may send)",
    "private-network": "it asks for access to a private network, which this server does "
                       "not grant",
}


class JsonCors(CORSMiddleware):
    """Starlette's ``CORSMiddleware``, its refusals of a preflight a JSON 400
    ``cors_refused`` with the CORS headers it had (they were text/plain "Disallowed CORS
    origin": review, stop 51)."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        said = bytes(response.body).decode("utf-8", "replace")
        reasons = [_REFUSED.get(w.strip(), w.strip()) for w in
                   said.removeprefix("Disallowed CORS ").split(",") if w.strip()]
        refused = code_response(ErrorCode.CORS_REFUSED, "this browser preflight (OPTIONS) is "
                                "refused: " + "; ".join(reasons or [said]))
        refused.headers.update({k: v for k, v in response.headers.items()
                                if k.lower() not in ("content-type", "content-length")})
        return refused


def add_cors(app: FastAPI, origins: Iterable[str]) -> tuple[str, ...]:
    """Add :class:`JsonCors` for ``origins`` (:func:`cors_origins`) to ``app``, as the next
    outer middleware; nothing when there are none. No origin is allowed credentials
    (cookies, HTTP authentication, client certificates): the API needs none, its key is a
    header a page sends itself (they were allowed for listed origins: review, stop 51).
    Returns the origins."""
    allowed = cors_origins(origins)
    if allowed:
        app.add_middleware(
            JsonCors, allow_origins=list(allowed), allow_methods=list(CORS_METHODS),
            allow_headers=list(CORS_HEADERS), expose_headers=[REQUEST_ID_HEADER, "Retry-After"],
            allow_credentials=False, max_age=CORS_MAX_AGE_S)
    return allowed
