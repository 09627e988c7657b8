"""The emovox REST API (FastAPI).

::

    emovox serve --model runs/crnn/model --port 8000        # or EMOVOX_MODEL=...
    curl -F file=@clip.wav http://127.0.0.1:8000/v1/predict

Endpoints (OpenAPI docs at ``/docs``):

* ``POST /v1/predict``  multipart field ``file``: the prediction document (schema
  ``emovox/data/schema/prediction-v1.json``, as ``emovox predict --json``): status, label,
  calibrated probabilities, derived arousal/valence, speech seconds, windows and their
  evidence, model id; with ``references`` (unlabelled clips of the same speaker, at most
  :data:`~emovox.serving.adapt_uploads.MAX_REFERENCES`, together within one upload's
  limits) the answer is adapted to that speaker, as ``emovox predict --reference DIR``;
* ``POST /v1/timeline`` multipart field ``file`` (+ ``window``, ``hop`` and ``adapt``
  query parameters; ``adapt=self`` is ``emovox timeline --adapt self``): the timeline
  document (``timeline-v1.json``): speech windows and gaps;
* ``GET /v1/model``: the model card (speaker-independent cross-validation metrics,
  confusion matrix, per-class recall, MODEL_CARD.md);
* ``GET /health``: 200 when the model is loaded, 503 when it could not be.

Errors are JSON ``{"error": <code>, "detail": <message>}`` (the codes:
:class:`~emovox.serving.errcodes.ErrorCode`; each route's:
:data:`~emovox.api.schemas.ROUTE_ERRORS`): 401 missing or wrong API key (``X-API-Key: KEY``
or ``Authorization: Bearer KEY``, when the server has one); 413 a request over the size limit (from
``Content-Length`` and while the body streams in, before it is parsed; ``/v1/predict``'s
clip over it once parsed); 415 not audio, or a body that is not a form; 422 too long, empty
or broken audio, bad parameters (a timeline of more windows than one request may compute:
:mod:`emovox.api.windows`), too many or too few references; 408 an upload that stalled 30 s
or crawled;
500 an unexpected error; 503 no model, or too many uploads waiting (``server_busy``); 504
not answered within ``request_timeout`` (a slot's wait and the work; :mod:`emovox.api.deadline`).
Nothing is written outside a temporary directory. At most ``2 x max_concurrency`` uploads are
read at a time (:class:`~emovox.api.middleware.UploadSlots`; the others wait unread, at most
64 of them for at most 60 s each, past that 503 ``server_busy``), each
part past 64 KiB spooled to an anonymous temporary file; a request copies its upload to a
private temporary directory once it holds one of ``max_concurrency`` slots to decode and
predict (waiting holds no thread: ``/health`` always answers); all is deleted when it ends.
The model is loaded once per process (lifespan, or first use, under a lock); the
:class:`~emovox.serving.predictor.Predictor` is thread-safe. The docs' Swagger UI is served
locally (:mod:`emovox.api.docs`). Every response carries ``X-Request-ID`` (the client's, when
sane) and the server's log lines of a request end with it (:mod:`emovox.api.requestid`);
``cors_origins`` lets browser pages of those origins call the API (:mod:`emovox.api.cors`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from fastapi import FastAPI, File, Query, Request, UploadFile
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from emovox import __version__
from emovox.api.cors import add_cors, cors_origins_from_env
from emovox.api.deadline import DEFAULT_REQUEST_TIMEOUT_S, request_timeout_from_env, run_in_slot
from emovox.api.docs import install_docs
from emovox.api.errors import FORM_LIMITS, ApiError, ErrorCode, guarded
from emovox.api.handlers import install_error_handlers
from emovox.api.middleware import (
    API_KEY_HEADER,
    INCOMPLETE_UPLOAD,
    MAX_WAITING,
    MULTIPART_CLOSED,
    OTHER_CONNECTIONS,
    ApiKeyGuard,
    BodyLimit,
    HeadAsGet,
    UploadSlots,
    bound_multipart_memory,
    is_loopback,
)
from emovox.api.query import (
    QUERY_PARAMETERS,
    ROUTE_QUERY,
    query_problem,
    quoted_names,
    upload_query_problem,
)
from emovox.api.requestid import RequestId, UnhandledErrors, install_log_records
from emovox.api.schemas import (
    ROUTE_ERRORS,
    UPLOAD_FORMATS,
    Health,
    ModelCard,
    PredictResponse,
    TimelineResponse,
    error_responses,
)
from emovox.api.windows import WindowBudget
from emovox.errors import ConfigError
from emovox.serving import adapt_uploads, capacity, service, uploads
from emovox.serving import params as tp
from emovox.serving.adapt import AdaptMode, adapt_timeline
from emovox.serving.schema import prediction_document, timeline_document

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_MAX_BYTES", "create_app", "create_app_from_env", "is_loopback"]

DEFAULT_MAX_BYTES = int(service.DEFAULT_MAX_UPLOAD_MB * 1024 * 1024)
#: the upload formats the API names, in the upload field's help and the description alike
_FORMATS = ", ".join(UPLOAD_FORMATS)
_FILE_HELP = f"the audio file ({_FORMATS})"
#: the timeline's settings: query parameters, never form fields
_REFS_HELP = (
    f"optional: up to {adapt_uploads.MAX_REFERENCES} unlabelled clips of the SAME speaker, in "
    "several emotions (at least 3 with speech; fewer than 16 were measured to help little): "
    "the answer is adapted to that speaker (field `adaptation`). Together they may be as "
    "large and as long as one upload; clips that cannot be read or hold no speech are "
    "skipped with a warning (`adaptation.warnings`).")
_ADAPT_HELP = ("self: adapt the windows to the recording's own speaker (the mean of its "
               "speech windows; assumes the recording holds several emotions), as "
               "`emovox timeline --adapt self`; none (default): as the model hears them")
_MULTIPART_SLACK = 64 * 1024  # multipart boundaries and part headers on top of the file
T = TypeVar("T")


# --------------------------------------------------------------------------------------------
# The model holder
# --------------------------------------------------------------------------------------------


class _ModelHolder:
    """Loads the predictor once per process (thread-safe); a failure is remembered and
    reported by every request instead of being retried."""

    def __init__(self, model_path: Path | None, backend: str, threads: int | None,
                 predictor: Any | None) -> None:
        self.model_path, self.backend, self.threads = model_path, backend, threads
        self._predictor = predictor
        self.error: str | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._predictor is not None

    @property
    def settled(self) -> bool:
        """Loaded, or failed for good: :meth:`get` returns or raises without waiting."""
        return self._predictor is not None or self.error is not None

    def get(self) -> Any:
        if self._predictor is not None:
            return self._predictor
        with self._lock:
            if self._predictor is None and self.error is None:
                from emovox.serving.predictor import Predictor

                try:
                    self._predictor = Predictor.from_artifact(
                        self.model_path, backend=self.backend, threads=self.threads)
                    log.info("loaded model %s (%s)", self._predictor.model_id,
                             self._predictor.backend)
                except Exception as exc:  # ArtifactError, OSError, ...
                    log.error("cannot load the model: %s", exc)
                    self.error = service.scrub(str(exc)) or type(exc).__name__
            if self._predictor is None:
                raise ApiError.of(ErrorCode.MODEL_UNAVAILABLE, f"no model: {self.error}")
            return self._predictor

    async def aget(self) -> Any:
        """:meth:`get` without blocking the event loop while a model loads."""
        return self.get() if self.settled else await run_in_threadpool(self.get)


class _Service:
    """What the routes share: the model, the concurrency slots and the limits."""

    def __init__(self, holder: _ModelHolder, max_concurrency: int, max_bytes: int,
                 max_duration: float, max_windows: int | None = None,
                 request_timeout: float = DEFAULT_REQUEST_TIMEOUT_S) -> None:
        self.holder = holder
        self.slots = asyncio.Semaphore(max_concurrency)  # FIFO: waiters are served in order
        self.request_timeout = request_timeout  # the slot's wait and the work (stop 57)
        self.max_bytes, self.max_duration = max_bytes, max_duration
        self.windows = WindowBudget(tp.api_window_cap(max_duration, max_windows))  # a
        # timeline's (stop 51)
        #: /health is open without the API key: with a key it keeps why the model failed
        #: to itself (server paths; security QA, stop 31)
        self.keyed = False

    @staticmethod
    async def check_form(request: Request, fields: tuple[str, ...],
                         query: tuple[str, ...] = ()) -> None:
        """422 when the request holds several ``file`` parts (the last one was answered and
        the others dropped without a word before stop 29) or a form field the endpoint does
        not read (``-F window=10`` or a misspelt ``reference`` were ignored: the client got
        an answer it did not ask for; API QA, stop 35), or a query parameter outside
        ``query``. The form is parsed once and cached by Starlette: this reads it again for
        free."""
        if problem := query_problem([k for k, _ in request.query_params.multi_items()],
                                    query):  # re-check (the middleware did, for uploads)
            raise ApiError.of(ErrorCode.INVALID_REQUEST, problem)
        form = await request.form()
        if getattr(request.state, MULTIPART_CLOSED, None) is False:
            raise ApiError.of(ErrorCode.INCOMPLETE_UPLOAD, INCOMPLETE_UPLOAD)  # a later part was
        if len(form.getlist("file")) > 1:  # cut short, the file answered (re-check, stop 37)
            raise ApiError.of(ErrorCode.INVALID_REQUEST, "file: send one file per request (several "
                           "'file' parts were sent; use 'references' for a speaker's clips)")
        if unknown := sorted(set(form.keys()) - set(fields)):
            moved = [k for k in unknown if k in query]  # only where it is one (README QA)
            hint = (f"{', '.join(moved)}: a query parameter (POST {request.url.path}?"
                    f"{'&'.join(f'{k}=...' for k in moved)}), not a form field; " if moved
                    else "")
            raise ApiError.of(ErrorCode.INVALID_REQUEST, f"{hint}unknown form field(s) "
                           f"{quoted_names(unknown)}: this endpoint reads "
                           f"{quoted_names(list(fields))}")

    def check_upload(self, file: UploadFile) -> str:
        """The upload's display name; 413/422 from its spooled size, before any slot."""
        name = service.display_name(file.filename)
        size = file.size
        if size is not None:
            with guarded("upload"):
                service.check_size(size, self.max_bytes, name)
            if size == 0:
                raise ApiError.of(ErrorCode.BAD_AUDIO, f"{name}: the upload is empty (0 bytes).")
        return name

    async def run(self, request: Request, what: str, work: Callable[[], T]) -> T:
        """``work`` in a worker thread once a slot is free (waiting holds no thread); not at
        all when the client has gone by then (six abandoned 10-minute uploads delayed the
        next client's 3.6 s clip by 10 s: API QA, stop 35; bench/abandoned_uploads.py).
        Both within ``request_timeout`` (:mod:`emovox.api.deadline`: a client waited
        without end before; review, stop 57)."""
        await _still_there(request, what)

        def guarded_work() -> T:
            with guarded(what):
                return work()

        return await run_in_slot(self.slots, guarded_work, what=what,
                                 timeout=self.request_timeout,
                                 before=lambda: _still_there(request, what))


async def _still_there(request: Request, what: str) -> None:
    """:class:`ApiError` 499 when the client closed its connection (nobody would read the
    answer)."""
    if await request.is_disconnected():
        log.warning("%s: the client closed the connection before its turn: not computed",
                    what)  # WARNING: seen under `emovox serve` (re-check, stop 35)
        raise ApiError.of(ErrorCode.CLIENT_CLOSED_REQUEST, "the client closed the connection")


# --------------------------------------------------------------------------------------------
# The application
# --------------------------------------------------------------------------------------------


def _add_predict_routes(app: FastAPI, svc: _Service) -> None:
    @app.post("/v1/predict", response_model=PredictResponse,
              responses=error_responses(ROUTE_ERRORS[("post", "/v1/predict")]),
              response_model_exclude_unset=True, summary="The emotion of one clip")
    async def predict(
        request: Request,
        file: UploadFile = File(description=_FILE_HELP),
        references: list[UploadFile] | None = File(None, description=_REFS_HELP),
    ) -> dict[str, Any]:
        await svc.check_form(request, ("file", "references"))
        name = svc.check_upload(file)
        refs = [(r.file, r.filename) for r in references or []]
        if refs:  # count and total size, before any slot or decoding
            with guarded("references"):
                adapt_uploads.check_references([r.size for r in references or []],
                                               max_bytes=svc.max_bytes)
        predictor = await svc.holder.aget()
        limits = {"max_bytes": svc.max_bytes, "max_duration": svc.max_duration}
        if not refs:
            p = await svc.run(request, "predict", lambda: service.predict_upload(
                predictor, file.file, name, **limits))
        else:
            p = await svc.run(request, "predict", lambda: adapt_uploads.predict_with_references(
                predictor, file.file, name, refs, **limits).adapted)
        return prediction_document(p)

    @app.post("/v1/timeline", response_model=TimelineResponse,
              responses=error_responses(ROUTE_ERRORS[("post", "/v1/timeline")]),
              response_model_exclude_unset=True,
              summary="The emotion of every window of a (long) recording")
    async def timeline(
        request: Request,
        file: UploadFile = File(description=_FILE_HELP),
        window: float = Query(service.TIMELINE_WINDOW_S, gt=tp.MIN_WINDOW_S,
                              le=tp.MAX_WINDOW_S, description=(
            f"window length (s), more than {tp.MIN_WINDOW_S:g} and at most {tp.MAX_WINDOW_S:g}")),
        hop: float = Query(service.TIMELINE_HOP_S, gt=tp.MIN_HOP_S, le=tp.MAX_HOP_S,
                           description=(
            f"hop between windows (s), more than {tp.MIN_HOP_S:g} and at most the window "
            f"(<= {tp.MAX_HOP_S:g}); one request computes at most "
            f"{svc.windows.max_windows} windows (duration / hop for continuous speech, "
            "one more per pause)")),
        adapt: AdaptMode = Query(AdaptMode.NONE, description=_ADAPT_HELP),
    ) -> dict[str, Any]:
        try:
            params = tp.TimelineParams(window, hop)
        except ConfigError as exc:
            raise ApiError.of(ErrorCode.INVALID_REQUEST, str(exc)) from None
        await svc.check_form(request, ("file",), QUERY_PARAMETERS)
        name = svc.check_upload(file)
        predictor = await svc.holder.aget()

        def work() -> Any:  # the window cap: from the header, then counted (stop 51)
            tl = service.timeline_from_upload(
                svc.windows.counted(predictor, name, params), file.file, name, params=params,
                max_bytes=svc.max_bytes, max_duration=svc.max_duration,
                header_check=svc.windows.header_check(name, params))
            return adapt_timeline(tl, predictor.labels) if adapt is AdaptMode.SELF else tl

        tl = await svc.run(request, "timeline", work)
        return timeline_document(tl, model_id=predictor.model_id)


def _add_info_routes(app: FastAPI, svc: _Service) -> None:
    @app.get("/v1/model", response_model=ModelCard,
             responses=error_responses(ROUTE_ERRORS[("get", "/v1/model")]),
             summary="The model card")
    async def model(request: Request) -> dict[str, Any]:
        if keys := sorted(set(request.query_params.keys())):  # ignored before (re-check, 40)
            raise ApiError.of(ErrorCode.INVALID_REQUEST, f"unknown query parameter(s) "
                           f"{quoted_names(keys)}: this endpoint reads none")
        predictor = await svc.holder.aget()
        with guarded("model card"):
            card = await run_in_threadpool(service.model_card, predictor)
        card["limits"] = {"max_upload_bytes": svc.max_bytes, "max_duration_s": svc.max_duration}
        return card

    @app.get("/health", response_model=Health, responses={503: {"model": Health}},
             summary="Liveness and model status")
    async def health() -> Any:
        """Answers at once, however busy the server is (it never waits for a slot)."""
        try:
            predictor = await svc.holder.aget()
        except ApiError as exc:
            detail = ("no model: it could not be loaded (the server's log says why)"
                      if svc.keyed else exc.detail)
            return JSONResponse(
                Health(status="unavailable", model_loaded=False, version=__version__,
                       detail=detail).model_dump(), status_code=503)
        return Health(status="ok", model_loaded=True, model_id=predictor.model_id,
                      version=__version__)


def _document_api_key(app: FastAPI) -> None:
    """Declare the key in the OpenAPI spec, so the docs' Authorize button sends it."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = build()
            spec.setdefault("components", {})["securitySchemes"] = {
                "apiKey": {"type": "apiKey", "in": "header", "name": API_KEY_HEADER},
                "bearer": {"type": "http", "scheme": "bearer"},
            }
            for path, ops in spec.get("paths", {}).items():
                if path.startswith("/v1/"):
                    for op in ops.values():
                        op["security"] = [{"apiKey": []}, {"bearer": []}]
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _new_app(svc: _Service, max_bytes: int, max_duration: float) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI):
        try:
            await run_in_threadpool(svc.holder.get)  # load once, before the first request
        except ApiError:
            pass  # reported by /health and every request
        yield

    return FastAPI(
        title="emovox",
        version=__version__,
        summary="Speech emotion recognition: eight emotions, evaluated on unseen speakers.",
        description=(
            f"Upload an audio file ({_FORMATS}; at most "
            f"{max_bytes / 2**20:.3g} MB and {max_duration:g} s) as the multipart field "
            "`file`; optionally, clips of the same speaker as `references` (adapts the "
            "answer to that speaker). Arousal and valence are derived from the class "
            "probabilities, not predicted. Errors are JSON `{\"error\": code, \"detail\": "
            "message}`."
        ),
        lifespan=lifespan, docs_url=None, redoc_url=None, form_limits=FORM_LIMITS,
    )


def create_app(
    model_path: str | Path | None = None,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_duration: float = service.DEFAULT_MAX_DURATION_S,
    backend: str = "auto",
    threads: int | None = None,
    max_concurrency: int | None = None,
    predictor: Any | None = None,
    api_key: str | None = None,
    cors_origins: tuple[str, ...] | list[str] = (),
    max_windows: int | None = None,
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT_S,
) -> FastAPI:
    """The API as an ASGI app.

    Args:
        model_path: model folder (``None``: the bundled default model).
        max_bytes: largest accepted upload (413 above).
        max_duration: longest accepted recording in seconds (422 above).
        backend: ``auto``, ``onnx`` or ``torch``.
        threads: intra-op threads of the inference engine (``None``: its default).
        max_concurrency: requests reading, decoding and predicting at the same time, the
            others wait their turn (``None``: the number of CPUs, at most 4).
        predictor: an already loaded :class:`~emovox.serving.predictor.Predictor` (then
            ``model_path``/``backend``/``threads`` are ignored).
        api_key: when set, every request but ``/health`` and the docs must present it
            (``X-API-Key`` header or ``Authorization: Bearer``), else 401.
        cors_origins: origins whose pages' scripts may call the API from a browser
            (:func:`~emovox.api.cors.cors_origins`; ``*``: any; none: no CORS headers).
        max_windows: most windows of one ``/v1/timeline`` request (``None``:
            :func:`~emovox.serving.params.api_window_cap`).
        request_timeout: seconds a ``/v1/predict`` or ``/v1/timeline`` request may wait
            for a slot and be analysed, else 504 (0: no limit; :mod:`emovox.api.deadline`).

    Every response carries ``X-Request-ID`` (:mod:`emovox.api.requestid`).
    """
    if max_concurrency is None:
        max_concurrency = capacity.default_concurrency()
    if max_bytes <= 0 or not 0 < max_duration < float("inf") or max_concurrency < 1 or \
            not 0 <= request_timeout < float("inf"):
        raise ValueError("max_bytes, max_duration and max_concurrency must be positive "
                         "and finite, request_timeout finite and >= 0")
    holder = _ModelHolder(Path(model_path) if model_path else None, backend, threads, predictor)
    svc = _Service(holder, max_concurrency, int(max_bytes), float(max_duration), max_windows,
                   request_timeout)
    app = _new_app(svc, max_bytes, max_duration)
    app.state.emovox_limits = {"max_bytes": int(max_bytes), "max_duration": float(max_duration)}
    app.state.emovox_model = holder
    mb = f"{max_bytes / 2**20:.3g} MB"
    bound_multipart_memory()  # bodies read in a slot only, each part in memory <= 64 KiB
    app.add_middleware(UploadSlots, slots=2 * max_concurrency, paths=tuple(ROUTE_QUERY),
                       precheck=upload_query_problem)
    # the connections `emovox serve` keeps open (uvicorn's limit_concurrency): the upload
    # slots, those waiting for one, and room for GETs (code review, stop 48)
    app.state.emovox_max_connections = 2 * max_concurrency + MAX_WAITING + OTHER_CONNECTIONS
    app.add_middleware(
        BodyLimit, max_body=int(max_bytes) + _MULTIPART_SLACK,
        detail=f"the upload is larger than the {mb} limit; send a shorter or compressed recording",
        paths={"/v1/predict": (  # the clip, and reference clips as large together
            2 * int(max_bytes) + _MULTIPART_SLACK,
            f"the request is larger than {2 * max_bytes / 2**20:.3g} MB: at most {mb} for "
            f"the clip (and {mb} more for reference clips, if any); send shorter or "
            "compressed recordings")},
    )
    if api_key:
        svc.keyed = True
        app.add_middleware(ApiKeyGuard, key=api_key)  # outside the body limit: before it
        _document_api_key(app)
    app.add_middleware(HeadAsGet)  # HEAD is GET to everything below
    app.add_middleware(UnhandledErrors)  # a bug's JSON 500, inside CORS: a page reads it
    app.state.emovox_cors_origins = add_cors(app, cors_origins)  # outside the key: a
    # browser's preflight is answered without one (stop 51)
    app.add_middleware(RequestId)  # outermost: every answer carries its id (stop 51)
    install_log_records()
    install_error_handlers(app)
    install_docs(app)
    _add_predict_routes(app, svc)
    _add_info_routes(app, svc)
    return app


def create_app_from_env() -> FastAPI:
    """:func:`create_app` configured by ``EMOVOX_MODEL``, ``EMOVOX_MAX_UPLOAD_MB``,
    ``EMOVOX_MAX_DURATION_S``, ``EMOVOX_BACKEND``, ``EMOVOX_API_KEY``,
    ``EMOVOX_CORS_ORIGINS`` and ``EMOVOX_REQUEST_TIMEOUT_S`` (for
    ``uvicorn --factory``). A malformed setting ends the process with one line (uvicorn
    printed a traceback: API QA, stop 37)."""
    try:
        s = service.Settings.from_env()
        origins = cors_origins_from_env(os.environ)
        timeout = request_timeout_from_env(os.environ)
    except ConfigError as exc:
        raise SystemExit(f"emovox: {exc}") from None
    uploads.sweep_uploads()  # a server starts: upload copies of killed ones (stop 48)
    return create_app(s.model, max_bytes=s.max_bytes, max_duration=s.max_duration_s,
                      backend=s.backend, api_key=s.api_key, cors_origins=origins,
                      request_timeout=timeout)
