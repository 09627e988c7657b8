"""The REST API's errors: :class:`ApiError` (status, code, detail), the JSON body
``{"error": code, "detail": message}`` every error gets (:func:`error_response`, which the
middleware layers send too: :func:`send_error`), and :func:`guarded`, which turns
emovox's typed errors into their status (anything else into a 500 without a traceback), in
an API client's words (:func:`api_detail`). The codes are
:class:`~emovox.serving.errcodes.ErrorCode` (one documented list, stop 51)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from fastapi.responses import JSONResponse
from starlette.types import Send

from emovox.audio import TOO_LONG_ADVICE
from emovox.serving import adapt_uploads, service
from emovox.serving.errcodes import ErrorCode

log = logging.getLogger("emovox.api.server")  # the server's log, as before this module

__all__ = ["FORM_LIMITS", "ApiError", "ErrorCode", "api_detail", "code_response", "error_response",
           "form_limit_error", "guarded", "send_error"]


class ApiError(Exception):
    """An error answered with ``status`` and the body ``{"error": code, "detail": ...}``;
    ``code`` is an :class:`ErrorCode` (a string that is none is a ``ValueError``: stop 51)."""

    def __init__(self, status: int, code: ErrorCode | str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, ErrorCode(code).value, detail

    @classmethod
    def of(cls, code: ErrorCode, detail: str) -> ApiError:
        """The error ``code`` with its own status."""
        return cls(code.status, code, detail)


def error_response(status: int, code: ErrorCode | str, detail: str) -> JSONResponse:
    """The JSON error body of ``code`` (an :class:`ErrorCode`, or a string that is one)."""
    return JSONResponse({"error": ErrorCode(code).value, "detail": detail},
                        status_code=status)


def code_response(code: ErrorCode, detail: str) -> JSONResponse:
    """:func:`error_response` of ``code`` with its own status."""
    return error_response(code.status, code, detail)


async def send_error(send: Send, code: ErrorCode, detail: str,
                     headers: Mapping[str, str] | None = None, *, close: bool = False) -> None:
    """:func:`code_response` of ``code``, sent by an ASGI layer that answers before or
    instead of the routes (the body limit, the upload slots, the API key, an unhandled
    error): the routes' body and headers, plus ``headers``, and ``Connection: close`` when
    ``close`` (the middleware's bodies were ``json.dumps``'s, spaced and ``\\u``-escaped,
    every one with ``Connection: close``: review, stop 53)."""
    response = code_response(code, detail)
    response.headers.update(headers or {})
    if close:
        response.headers["connection"] = "close"
    await send({"type": "http.response.start", "status": response.status_code,
                "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": bytes(response.body)})


@contextmanager
def guarded(what: str) -> Iterator[None]:
    """Typed emovox errors -> their status; anything else -> 500 without a traceback.
    ``what``: the work (``"predict"``, ``"timeline"``, ``"upload"``, ...), for the log."""
    try:
        yield
    except ApiError:
        raise
    except Exception as exc:
        status, code = service.http_status(exc)
        if status >= 500:
            log.exception("%s failed", what)
        raise ApiError(status, code, api_detail(service.user_message(exc))) from None


def api_detail(detail: str) -> str:
    """An error message in an API client's words: the duration limit is the server's, and
    the advice is to cut the recording (the CLI's advice names `emovox timeline` and
    --max-duration; ``/v1/timeline`` keeps the same limit, so a first version that sent
    clients there had them refused in turn: re-checks, stop 39)."""
    if TOO_LONG_ADVICE not in detail:
        return detail
    return detail.replace(TOO_LONG_ADVICE, "Cut it into shorter pieces: the limit is the "
                          "server's (emovox serve --max-duration).")


#: what one upload's form may hold: the clip, its references, a few text fields (to say
#: they are not read; Starlette's defaults let 850 parts of 60 KB sit in memory, 48.7
#: MiB, before the reference count was checked: code review, stop 46)
FORM_LIMITS = {"max_files": 1 + adapt_uploads.MAX_REFERENCES, "max_fields": 8,
               "max_part_size": 64 * 1024}


def form_limit_error(detail: str, raised: BaseException | None = None) -> JSONResponse | None:
    """The 422 of a form past :data:`FORM_LIMITS` or the multipart parser's limits on a
    part's headers (Starlette's parser says 400), or None. ``raised``: the 400 itself,
    whose chain holds what the parser said under Starlette's "Invalid multipart data."."""
    said = _parser_said(raised)
    if "Maximum header size exceeded" in said:  # a file name of 5,000 characters was a bare
        return code_response(ErrorCode.INVALID_REQUEST, _LONG_PART_HEADER)  # 400 (stop 53)
    if "Maximum header count exceeded" in said:
        return code_response(ErrorCode.INVALID_REQUEST, _MANY_PART_HEADERS)
    if detail.startswith("Too many files"):
        return code_response(ErrorCode.TOO_MANY_REFERENCES, f"too many file parts: one 'file' "
                             f"and at most {adapt_uploads.MAX_REFERENCES} 'references' (16 "
                             "are enough)")
    if detail.startswith("Part exceeded"):  # a text field over 64 KiB: mostly a recording
        return code_response(ErrorCode.INVALID_REQUEST, _LARGE_TEXT_PART)  # sent as one
    if detail.startswith(("Too many fields", "Field exceeded")):
        return code_response(ErrorCode.INVALID_REQUEST, f"{detail} This endpoint reads the "
                             "file parts 'file' (and 'references') only; send the recording "
                             "as a file: curl -F \"file=@clip.wav\" URL")
    return None


#: the detail of a multipart text part over 64 KiB: Starlette's "Part exceeded maximum size
#: of 64KB." said nothing of why a recording was a text part (curl -F "file=<clip.wav", or
#: a part with only filename*=UTF-8''...: review of the API as an integrator, stop 51)
_LARGE_TEXT_PART = (
    f"a text field exceeded maximum size ({FORM_LIMITS['max_part_size'] // 1024} KiB): a "
    "multipart part is a text field unless its Content-Disposition has filename=\"...\" "
    "(curl -F \"file=<clip.wav\" sends the file's bytes as one, and so does a part with only "
    "filename*=UTF-8''...). This endpoint reads the file parts 'file' (and 'references') "
    "only; send the recording as a file part: curl -F \"file=@clip.wav\" URL")


def _parser_said(raised: BaseException | None) -> str:
    """The messages of the exceptions ``raised`` came from (Starlette raises its 400 while
    handling its ``MultiPartException``, itself raised from python-multipart's error)."""
    said: list[str] = []
    seen = raised
    for _ in range(4):  # a short chain: the 400, Starlette's, the parser's
        seen = None if seen is None else (seen.__cause__ or seen.__context__)
        if seen is None:
            break
        said.append(str(seen))
    return " ".join(said)


def _parser_limit(name: str, unit: str) -> str:
    """python-multipart's default ``name`` (``DEFAULT_MAX_HEADER_SIZE``...), which Starlette
    keeps, in words: ``"4,224 bytes, the multipart parser's limit"`` (versions before 0.0.13
    are another module, and have no such limits to name)."""
    try:
        from python_multipart import multipart
    except ImportError:
        return "the multipart parser's limit"
    limit = getattr(multipart, name, None)
    return (f"{limit:,} {unit}, the multipart parser's limit" if isinstance(limit, int)
            else "the multipart parser's limit")


#: the detail of a part whose header line is over the parser's limit: a file name of
#: thousands of characters (no common file system names a file so: 255 bytes at most), or
#: a padded part header; a bare 400 "Invalid multipart data." before (review, stop 53)
_LONG_PART_HEADER = (
    f"a header of a multipart part is longer than "
    f"{_parser_limit('DEFAULT_MAX_HEADER_SIZE', 'bytes')}: most likely the file name in its "
    "Content-Disposition (filename=\"...\") is thousands of characters long. Send the file "
    "under a shorter name: curl -F \"file=@clip.wav;filename=clip.wav\" URL")
#: the detail of a part with more header lines than the parser reads
_MANY_PART_HEADERS = (
    f"a multipart part has more header lines than "
    f"{_parser_limit('DEFAULT_MAX_HEADER_COUNT', 'lines')} (a file part needs "
    "Content-Disposition and Content-Type only): send the recording as curl does: "
    "curl -F \"file=@clip.wav\" URL")
