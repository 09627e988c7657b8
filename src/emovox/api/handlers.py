"""The REST API's exception handlers: every error a JSON ``{"error": code, "detail":
message}`` (split from :mod:`emovox.api.server`, stop 51)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from emovox.api.errors import ApiError, ErrorCode, code_response, error_response, form_limit_error
from emovox.api.middleware import INCOMPLETE_UPLOAD, MULTIPART_CLOSED, has_body
from emovox.serving import service

__all__ = ["install_error_handlers", "raw_body"]

_FORMS = ("multipart/", "application/x-www-form-urlencoded")
#: the codes of Starlette's HTTP errors by status (another status: ``http_error``)
_HTTP_CODES = {404: ErrorCode.NOT_FOUND, 405: ErrorCode.METHOD_NOT_ALLOWED,
               413: ErrorCode.UPLOAD_TOO_LARGE}


def raw_body(request: Request, ctype: str) -> str | None:
    """What a request body that is not a form is, in words (``is audio/wav``, ``has no
    Content-Type``), or None for a form or no body. A body without a Content-Type (``curl
    --data-binary @clip.wav -H 'Content-Type:'``) was a 422 "file: Field required" where
    ``audio/wav`` was a 415 (API review, stop 51)."""
    if ctype:
        return None if ctype.startswith(_FORMS) else f"is {ctype}"
    return "has no Content-Type" if has_body(request.headers) else None


def install_error_handlers(app: FastAPI) -> None:
    """JSON ``{"error", "detail"}`` answers for :class:`ApiError`, FastAPI's validation
    errors and Starlette's HTTP errors."""
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.detail)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if request.method == "POST" and (raw := raw_body(request, ctype)):
            return code_response(  # a raw audio body (QA stop 30: it was "field required")
                ErrorCode.UNSUPPORTED_MEDIA_TYPE, f"the request body {raw}: send the "
                "recording as a multipart/form-data upload in the field 'file' (curl -F "
                "\"file=@clip.wav\" URL)")
        parts = []
        for e in exc.errors():
            loc = ".".join(str(x) for x in e.get("loc", ()) if x not in ("body", "query"))
            msg = str(e.get("msg"))
            if "UploadFile" in msg:  # a plain form field where a file part was expected
                msg = ("expected an uploaded file, got a text field (a multipart part is a file "
                       "only with filename=\"...\" in its Content-Disposition)")
            parts.append(f"{loc}: {msg}" if loc else msg)
        detail = service.scrub("; ".join(parts) or "invalid request")
        if any(e.get("type") == "missing" and "file" in e.get("loc", ()) for e in exc.errors()):
            if ctype == "multipart/form-data" and getattr(
                    request.state, MULTIPART_CLOSED, None) is False:
                return code_response(  # was "file: Field required" (stop 36's list)
                    ErrorCode.INCOMPLETE_UPLOAD, INCOMPLETE_UPLOAD)
            detail += (" (upload the recording as the multipart/form-data field 'file': curl "
                       "-F \"file=@clip.wav\" URL; --data-binary sends it as a form body)")
        return code_response(ErrorCode.INVALID_REQUEST, detail)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and (limit := form_limit_error(str(exc.detail), exc)):
            return limit
        response = error_response(exc.status_code, _HTTP_CODES.get(
            exc.status_code, ErrorCode.HTTP_ERROR), service.scrub(str(exc.detail)))
        response.headers.update(exc.headers or {})  # 405's Allow (API QA, stop 37)
        if "GET" in response.headers.get("allow", "").split(", "):
            response.headers["allow"] += ", HEAD"  # every GET route answers HEAD
        return response
