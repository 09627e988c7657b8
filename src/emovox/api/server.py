"""The emovox REST API (FastAPI).

::

    emovox serve --model runs/crnn/model --port 8000        # or EMOVOX_MODEL=...
    curl -F file=@clip.wav http://127.0.0.1:8000/v1/predict

Endpoints (OpenAPI docs at ``/docs``):

* ``POST /v1/predict``  multipart field ``file``: emotion, confidence, probabilities,
  derived arousal/valence, duration, model id;
* ``POST /v1/timeline`` multipart field ``file`` (+ ``window``, ``hop`` query
  parameters): the emotion of every window of a long recording;
* ``GET /v1/model``: the model card (speaker-independent cross-validation metrics,
  confusion matrix, per-class recall, MODEL_CARD.md);
* ``GET /health``: 200 when the model is loaded, 503 when it could not be.

Errors are JSON ``{"error": <code>, "detail": <message>}``: 413 upload larger than the size
limit (checked from ``Content-Length`` and while the body streams in, before it is
parsed); 415 not audio / undecodable format; 422 too long, empty or broken audio, or bad
parameters; 503 no model. Nothing is written outside a temporary directory: uploads are held
in memory or in anonymous spooled temporary files, timelines read a copy in a private
temporary directory, and both are deleted when the request ends. The model is loaded once
per process (in the lifespan, or on first use, under a lock); the
:class:`~emovox.inference.Predictor` is thread-safe, and at most ``max_concurrency`` requests
decode and predict at a time (the others wait).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, File, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from emovox import __version__
from emovox.web import logic

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_MAX_BYTES", "create_app", "create_app_from_env"]

DEFAULT_MAX_BYTES = int(logic.DEFAULT_MAX_UPLOAD_MB * 1024 * 1024)
_FILE_HELP = "the audio file (wav, flac, ogg, mp3, m4a)"
_MULTIPART_SLACK = 64 * 1024  # multipart boundaries and part headers on top of the file

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


# --------------------------------------------------------------------------------------------
# Schemas (for the OpenAPI docs)
# --------------------------------------------------------------------------------------------


class ErrorBody(BaseModel):
    error: str = Field(description="machine-readable code, e.g. upload_too_large, not_audio")
    detail: str = Field(description="what is wrong and what to do about it")


class PredictResponse(BaseModel):
    emotion: str = Field(description="the most probable of the eight emotions")
    confidence: float = Field(description="its calibrated probability, 0-1")
    confidence_level: Literal["high", "medium", "low"] = Field(
        description="high >= 0.70, medium 0.50-0.70, low < 0.50")
    probabilities: dict[str, float]
    arousal: float = Field(description="derived from the probabilities, in [-1, 1]")
    valence: float = Field(description="derived from the probabilities, in [-1, 1]")
    derived: list[str]
    derived_note: str
    duration: float = Field(description="seconds of audio")
    silent: bool = Field(description="the clip is silent; the emotion is then meaningless")
    filename: str
    model_id: str


class Segment(BaseModel):
    start: float
    end: float
    label: str = Field(description="an emotion, or 'silence'")
    confidence: float
    probabilities: dict[str, float]
    arousal: float | None
    valence: float | None


class TimelineResponse(BaseModel):
    filename: str
    model_id: str
    duration: float
    window: float
    hop: float
    summary: dict[str, Any]
    segments: list[Segment]


class ModelCard(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=())
    model_id: str
    backend: str
    labels: list[str]
    temperature: float
    cross_validation: dict[str, Any] | None = Field(
        description="speaker-independent CV: protocol, summary, pooled (confusion, recall)")
    model_card_markdown: str | None


class Health(BaseModel):
    model_config = ConfigDict(protected_namespaces=())
    status: Literal["ok", "unavailable"]
    model_loaded: bool
    model_id: str | None = None
    version: str
    detail: str | None = None


_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in (
        (413, "upload larger than the size limit"),
        (415, "not audio, or an audio format that cannot be decoded here"),
        (422, "audio too long, empty or damaged; or invalid parameters"),
        (503, "the model is not available"),
    )
}


# --------------------------------------------------------------------------------------------
# Errors, body limit, model holder
# --------------------------------------------------------------------------------------------


class ApiError(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


def _error_response(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status)


class BodyLimit:
    """Pure ASGI middleware: 413 for request bodies over ``max_body`` bytes, decided from
    ``Content-Length`` before anything is read, or while a chunked body streams in, so an
    oversized upload is never parsed or spooled."""

    def __init__(self, app: Callable[..., Awaitable[None]], max_body: int, detail: str) -> None:
        self.app, self.max_body, self.detail = app, max_body, detail

    async def _reject(self, send: Send) -> None:
        body = json.dumps({"error": "upload_too_large", "detail": self.detail}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        for k, v in scope.get("headers") or []:
            if k == b"content-length":
                try:
                    too_big = int(v) > self.max_body
                except ValueError:
                    too_big = False
                if too_big:
                    await self._reject(send)
                    return
        state = {"received": 0, "exceeded": False, "started": False}

        async def limited_receive() -> Message:
            if state["exceeded"]:
                return {"type": "http.disconnect"}
            msg = await receive()
            if msg.get("type") == "http.request":
                state["received"] += len(msg.get("body") or b"")
                if state["received"] > self.max_body:
                    state["exceeded"] = True
                    raise StarletteHTTPException(413, self.detail)
            return msg

        async def guarded_send(msg: Message) -> None:
            if state["exceeded"]:
                return  # whatever the app answers to the aborted body is replaced below
            if msg.get("type") == "http.response.start":
                state["started"] = True
            await send(msg)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not state["exceeded"]:
                raise
        if state["exceeded"] and not state["started"]:
            await self._reject(send)


class FairSemaphore:
    """A counting semaphore that serves waiters first come, first served (a released slot
    is handed straight to the oldest waiter), so no request starves under load."""

    def __init__(self, slots: int) -> None:
        self._free = slots
        self._lock = threading.Lock()
        self._waiters: deque[threading.Event] = deque()

    def __enter__(self) -> FairSemaphore:
        with self._lock:
            if self._free > 0 and not self._waiters:
                self._free -= 1
                return self
            turn = threading.Event()
            self._waiters.append(turn)
        turn.wait()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            if self._waiters:
                self._waiters.popleft().set()
            else:
                self._free += 1


class _ModelHolder:
    """Loads the predictor once per process (thread-safe); a failure is remembered and
    reported by every request instead of being retried."""

    def __init__(self, model_path: Path | None, backend: str, threads: int | None,
                 predictor: Any | None) -> None:
        self.model_path, self.backend, self.threads = model_path, backend, threads
        self._predictor = predictor
        self._error: str | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._predictor is not None

    def get(self) -> Any:
        if self._predictor is not None:
            return self._predictor
        with self._lock:
            if self._predictor is None and self._error is None:
                from emovox.inference import Predictor

                try:
                    self._predictor = Predictor.from_artifact(
                        self.model_path, backend=self.backend, threads=self.threads)
                    log.info("loaded model %s (%s)", self._predictor.model_id,
                             self._predictor.backend)
                except Exception as exc:  # ArtifactError, OSError, ...
                    log.error("cannot load the model: %s", exc)
                    self._error = str(exc) or type(exc).__name__
            if self._predictor is None:
                raise ApiError(503, "model_unavailable", f"no model: {self._error}")
            return self._predictor


# --------------------------------------------------------------------------------------------
# The application
# --------------------------------------------------------------------------------------------


def create_app(
    model_path: str | Path | None = None,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_duration: float = logic.DEFAULT_MAX_DURATION_S,
    backend: str = "auto",
    threads: int | None = None,
    max_concurrency: int | None = None,
    predictor: Any | None = None,
) -> FastAPI:
    """The API as an ASGI app.

    Args:
        model_path: model folder (``None``: the bundled default model).
        max_bytes: largest accepted upload (413 above).
        max_duration: longest accepted recording in seconds (422 above).
        backend: ``auto``, ``onnx`` or ``torch``.
        threads: intra-op threads of the inference engine (``None``: its default).
        max_concurrency: requests decoding and predicting at the same time, the others
            wait their turn (``None``: the number of CPUs, at most 4).
        predictor: an already loaded :class:`~emovox.inference.Predictor` (then
            ``model_path``/``backend``/``threads`` are ignored).
    """
    if max_concurrency is None:
        max_concurrency = max(1, min(4, os.cpu_count() or 1))
    if max_bytes <= 0 or not max_duration > 0 or max_concurrency < 1:
        raise ValueError("max_bytes, max_duration and max_concurrency must be positive")
    holder = _ModelHolder(Path(model_path) if model_path else None, backend, threads, predictor)
    slots = FairSemaphore(max_concurrency)
    limits = {"max_bytes": int(max_bytes), "max_duration": float(max_duration)}

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        try:
            await run_in_threadpool(holder.get)  # load once, before the first request
        except ApiError:
            pass  # reported by /health and every request
        yield

    app = FastAPI(
        title="emovox",
        version=__version__,
        summary="Speech emotion recognition: eight emotions, evaluated on unseen speakers.",
        description=(
            f"Upload an audio file (wav, flac, ogg, mp3, m4a; at most "
            f"{max_bytes / 2**20:.3g} MB and {max_duration:g} s) as the multipart field "
            "`file`. Arousal and valence are derived from the class probabilities, not "
            "predicted. Errors are JSON `{\"error\": code, \"detail\": message}`."
        ),
        lifespan=lifespan,
    )
    app.state.emovox_limits = limits
    app.state.emovox_model = holder
    app.add_middleware(
        BodyLimit, max_body=int(max_bytes) + _MULTIPART_SLACK,
        detail=(f"the upload is larger than the {max_bytes / 2**20:.3g} MB limit; send a "
                "shorter or compressed recording"),
    )

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _error_response(exc.status, exc.code, exc.detail)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for e in exc.errors():
            loc = ".".join(str(x) for x in e.get("loc", ()) if x not in ("body", "query"))
            parts.append(f"{loc}: {e.get('msg')}" if loc else str(e.get("msg")))
        return _error_response(422, "invalid_request", "; ".join(parts) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 413: "upload_too_large"}
        return _error_response(exc.status_code, codes.get(exc.status_code, "http_error"),
                               str(exc.detail))

    @contextmanager
    def guarded(what: str) -> Iterator[None]:
        """Typed emovox errors -> their status; anything else -> 500 without a traceback."""
        try:
            yield
        except ApiError:
            raise
        except Exception as exc:
            status, code = logic.http_status(exc)
            if status >= 500:
                log.exception("%s failed", what)
            raise ApiError(status, code, logic.user_message(exc)) from None

    def read_upload(file: UploadFile) -> tuple[bytes, str]:
        name = logic.display_name(file.filename)
        try:
            data = file.file.read(limits["max_bytes"] + 1)
        finally:
            file.file.close()
        with guarded("upload"):
            logic.check_size(len(data), limits["max_bytes"], name)
        if not data:
            raise ApiError(422, "bad_audio", f"{name}: the upload is empty (0 bytes).")
        return data, name

    @app.post("/v1/predict", response_model=PredictResponse, responses=_ERRORS,
              summary="The emotion of one clip")
    def predict(file: UploadFile = File(description=_FILE_HELP)) -> dict[str, Any]:
        data, name = read_upload(file)
        predictor = holder.get()
        with guarded("predict"), slots:
            p = predictor.predict_file(data, filename=name, max_duration=limits["max_duration"])
        d = p.to_dict()
        return {
            "emotion": d["label"], "confidence": d["confidence"],
            "confidence_level": logic.confidence_level(p.confidence).name,
            "probabilities": d["probabilities"], "arousal": d["arousal"],
            "valence": d["valence"], "derived": d["derived"], "derived_note": d["derived_note"],
            "duration": d["duration"], "silent": d["silent"], "filename": name,
            "model_id": predictor.model_id,
        }

    @app.post("/v1/timeline", response_model=TimelineResponse, responses=_ERRORS,
              summary="The emotion of every window of a (long) recording")
    def timeline(
        file: UploadFile = File(description=_FILE_HELP),
        window: float = Query(logic.TIMELINE_WINDOW_S, gt=0.25, le=30.0,
                              description="window length (s)"),
        hop: float = Query(logic.TIMELINE_HOP_S, gt=0.05, le=30.0,
                           description="hop between windows (s), at most the window"),
    ) -> dict[str, Any]:
        if hop > window:
            raise ApiError(422, "invalid_request", f"hop ({hop:g} s) must not exceed window "
                                                   f"({window:g} s)")
        data, name = read_upload(file)
        predictor = holder.get()
        with guarded("timeline"), slots:
            tl = logic.timeline_from_bytes(predictor, data, name, window=window, hop=hop,
                                           max_duration=limits["max_duration"])
        out = tl.to_dict()
        return {"filename": name, "model_id": predictor.model_id,
                "duration": round(tl.duration, 3), "window": window, "hop": hop,
                "summary": out["summary"], "segments": out["segments"]}

    @app.get("/v1/model", response_model=ModelCard, responses={503: _ERRORS[503]},
             summary="The model card")
    def model() -> dict[str, Any]:
        predictor = holder.get()
        with guarded("model card"):
            card = logic.model_card(predictor)
        card["limits"] = {"max_upload_bytes": limits["max_bytes"],
                          "max_duration_s": limits["max_duration"]}
        return card

    @app.get("/health", response_model=Health, responses={503: {"model": Health}},
             summary="Liveness and model status")
    def health() -> Any:
        try:
            predictor = holder.get()
        except ApiError as exc:
            return JSONResponse(
                Health(status="unavailable", model_loaded=False, version=__version__,
                       detail=exc.detail).model_dump(), status_code=503)
        return Health(status="ok", model_loaded=True, model_id=predictor.model_id,
                      version=__version__)

    return app


def create_app_from_env() -> FastAPI:
    """:func:`create_app` configured by ``EMOVOX_MODEL``, ``EMOVOX_MAX_UPLOAD_MB``,
    ``EMOVOX_MAX_DURATION_S`` and ``EMOVOX_BACKEND`` (for ``uvicorn --factory``)."""
    s = logic.Settings.from_env()
    return create_app(s.model, max_bytes=s.max_bytes, max_duration=s.max_duration_s,
                      backend=s.backend)
