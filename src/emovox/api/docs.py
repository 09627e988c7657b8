"""The OpenAPI docs (``/docs``) served entirely from this server, so they work offline.

FastAPI's default page loads Swagger UI from a CDN (blank without internet). The assets come
from the ``swagger-ui-bundle`` package (in the ``api`` extra) and are served under
``/docs-assets/``; without that package ``/docs`` says how to install it and links the raw
OpenAPI document instead.

:func:`install_docs` also settles what the OpenAPI document says of errors and formats
(stop 51): each route's error responses are its own codes (:func:`document_errors`), and
every list of upload formats in it is :data:`~emovox.api.schemas.UPLOAD_FORMATS` (the
description left out opus and webm, which the upload field's help named).
"""

from __future__ import annotations

import html
import logging
import re
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

from emovox.api.schemas import UPLOAD_FORMATS, document_errors

log = logging.getLogger(__name__)

__all__ = ["ASSETS_URL", "DOCS_URL", "install_docs", "same_formats", "swagger_assets"]

DOCS_URL = "/docs"
ASSETS_URL = "/docs-assets"


def swagger_assets() -> Path | None:
    """The folder of Swagger UI's dist files, or None when swagger-ui-bundle is missing."""
    try:
        import swagger_ui_bundle
    except ImportError:
        return None
    path = Path(swagger_ui_bundle.swagger_ui_path)
    return path if (path / "swagger-ui-bundle.js").is_file() else None


#: a list of two or more audio format names, as the texts of the OpenAPI document write one
_FORMAT_LIST = re.compile(r"\b(?:wav|flac|ogg|opus|mp3|m4a|webm)(?:, (?:wav|flac|ogg|opus|mp3|"
                          r"m4a|webm)\b)+")


def same_formats(text: str) -> str:
    """``text`` with every list of upload formats in it (``wav, flac, ogg``...) made
    :data:`~emovox.api.schemas.UPLOAD_FORMATS`."""
    return _FORMAT_LIST.sub(", ".join(UPLOAD_FORMATS), text)


def _settle(node: Any) -> None:
    """:func:`same_formats` on every ``description`` in an OpenAPI (sub)document."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "description" and isinstance(value, str):
                node[key] = same_formats(value)
            else:
                _settle(value)
    elif isinstance(node, list):
        for item in node:
            _settle(item)


def _document(app: FastAPI) -> None:
    """Wrap ``app.openapi``: its document once built gets each route's own error responses
    (:func:`document_errors`) and one list of upload formats (:func:`same_formats`)."""
    build = app.openapi
    settled: list[int] = []  # id of the document settled (the app caches it)

    def openapi() -> dict[str, Any]:
        spec = build()
        if id(spec) not in settled:
            document_errors(spec)
            _settle(spec)
            settled[:] = [id(spec)]
        return spec

    app.openapi = openapi  # type: ignore[method-assign]


def install_docs(app: FastAPI) -> None:
    """Add ``/docs`` (and its assets) to an app created with ``docs_url=None``, and settle
    its OpenAPI document's errors and formats (:func:`_document`)."""
    _document(app)
    assets = swagger_assets()
    title = f"{app.title} {app.version} · API docs"
    if assets is not None:
        app.mount(ASSETS_URL, StaticFiles(directory=assets), name="docs-assets")

    @app.get(DOCS_URL, include_in_schema=False)
    async def docs() -> HTMLResponse:
        if assets is None:
            return HTMLResponse(
                f"<!doctype html><title>{html.escape(title)}</title><p>The interactive docs "
                "need the swagger-ui-bundle package: <code>pip install 'emovox[api]'</code>. "
                f"The OpenAPI document is at <a href=\"{app.openapi_url}\">"
                f"{app.openapi_url}</a>.</p>")
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json", title=title,
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon-32x32.png",
        )
