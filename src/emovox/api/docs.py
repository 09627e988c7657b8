"""The OpenAPI docs (``/docs``) served entirely from this server, so they work offline.

FastAPI's default page loads Swagger UI from a CDN (blank without internet). The assets come
from the ``swagger-ui-bundle`` package (in the ``api`` extra) and are served under
``/docs-assets/``; without that package ``/docs`` says how to install it and links the raw
OpenAPI document instead.

The OpenAPI document itself is FastAPI's, built from the routes as declared: each route's
error responses are its own codes (``responses=error_responses(ROUTE_ERRORS[...])`` in
:mod:`emovox.api.server`), and its texts name the upload formats from
:data:`~emovox.api.schemas.UPLOAD_FORMATS` (a first version of stop 51 rewrote the built
document, its formats by a regular expression over every description: review, stop 51).
"""

from __future__ import annotations

import html
import logging
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

log = logging.getLogger(__name__)

__all__ = ["ASSETS_URL", "DOCS_URL", "install_docs", "swagger_assets"]

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


def install_docs(app: FastAPI) -> None:
    """Add ``/docs`` (and its assets) to an app created with ``docs_url=None``."""
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
