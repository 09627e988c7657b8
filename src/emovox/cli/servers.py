"""Server commands: ``app`` (the Streamlit web app) and ``serve`` (the REST API). Streamlit,
FastAPI and uvicorn are checked for and imported only when the command runs."""

from __future__ import annotations

import copy
import math
import signal
import socket
import threading
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from emovox.cli import render
from emovox.cli.common import (
    USER_ERRORS,
    check_model_option,
    choice,
    fail,
    need_module,
    setup_logging,
)
from emovox.errors import ConfigError
from emovox.serving.params import DEFAULT_REQUEST_TIMEOUT_S, request_timeout_setting


class LogLevel(str, Enum):
    """uvicorn's log levels."""

    CRITICAL = "critical"
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"
    DEBUG = "debug"
    TRACE = "trace"


ServeModelOpt = Annotated[
    Path | None,
    typer.Option("--model", "-m", envvar="EMOVOX_MODEL",
                 help="Model folder, or a bundled model: default (CRNN + ECAPA + ResLSTM "
                 "ensemble, RAVDESS + EMOVO) or ravdess; see `emovox models`."),
]


def _finite_positive(value: float) -> float:
    """A limit: a finite number > 0 (``inf`` was a traceback, ``nan`` "should be >= 0.001":
    API QA, stop 35)."""
    if not (value > 0 and math.isfinite(value)):
        raise typer.BadParameter(f"must be a finite number > 0, got {value}")
    return value


def _upload_limit(value: float) -> float:
    """:func:`_finite_positive`, and at least 0.001 MB (1e-9 became a 0-byte limit)."""
    if _finite_positive(value) < 0.001:
        raise typer.BadParameter(f"must be at least 0.001 (MB), got {value}")
    return value


def _deadline(value: float) -> float:
    """A request's deadline (:func:`~emovox.serving.params.request_timeout_setting`)."""
    try:
        return request_timeout_setting(value, "--request-timeout")
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from None


MaxUploadOpt = Annotated[
    float, typer.Option(envvar="EMOVOX_MAX_UPLOAD_MB", callback=_upload_limit,
                        help="Upload limit (MB of 2^20 bytes).")
]
MaxDurationOpt = Annotated[
    float, typer.Option(envvar="EMOVOX_MAX_DURATION_S", callback=_finite_positive,
                        help="Longest accepted recording (s).")
]
HostOpt = Annotated[str, typer.Option(help="Address to listen on (loopback by default).")]
ServeBackendOpt = Annotated[
    str, typer.Option(envvar="EMOVOX_BACKEND", help="auto, onnx or torch.")
]


def web_app(
    model: ServeModelOpt = None,
    host: HostOpt = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port.")] = 8501,
    max_upload_mb: MaxUploadOpt = 25.0,
    max_duration: MaxDurationOpt = 600.0,
    backend: ServeBackendOpt = "auto",
    open_browser: Annotated[
        bool, typer.Option("--open/--no-open", help="Open a browser tab.")
    ] = False,
) -> None:
    """Start the web app (Streamlit): upload or record a voice, see its emotion."""
    model = check_model_option(model)
    import os
    import subprocess

    from emovox.serving.service import BACKENDS, ENV_API_KEY, Settings
    from emovox.web import streamlit_command

    need_module("streamlit", "web")
    if backend not in BACKENDS:
        fail(ValueError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}"))
    from emovox.artifact import model_folder

    if not host.strip():  # Streamlit took "" for every interface (a review, stop 47)
        fail('--host is empty: give an address ("127.0.0.1", or "0.0.0.0" for every '
             "interface)")
    try:
        folder = model_folder(model) if model is not None else None  # a bundled name or a folder
    except FileNotFoundError as exc:
        fail(exc)
    settings = Settings(model=folder, max_upload_mb=max_upload_mb,
                        max_duration_s=max_duration, backend=backend)
    from emovox.serving.uploads import sweep_uploads

    sweep_uploads(own=True)  # upload copies a killed app left (code review, stop 48): the
    # app that replaces this process keeps its PID and has made none yet
    argv, env = streamlit_command(settings, host=host, port=port, headless=not open_browser)
    # the API's key is the API's: the web app's process never sees it (stop 35)
    env = {**{k: v for k, v in os.environ.items() if k != ENV_API_KEY}, **env}
    render.err_console.print(f"emovox web app on http://{host}:{port} (Ctrl-C to stop)")
    if os.name == "posix":
        os.execve(argv[0], argv, env)  # the app replaces this process
    raise typer.Exit(subprocess.call(argv, env=env))  # pragma: no cover - not POSIX


def serve(
    model: ServeModelOpt = None,
    host: HostOpt = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: any free one).")] = 8000,
    max_upload_mb: MaxUploadOpt = 25.0,
    max_duration: MaxDurationOpt = 600.0,
    backend: ServeBackendOpt = "auto",
    concurrency: Annotated[
        int | None,
        typer.Option(min=1, help="Requests decoding/predicting at once, others wait "
                     "(default: CPUs, at most 4)."),
    ] = None,
    threads: Annotated[
        int | None, typer.Option(min=1, max=256, help="Inference threads (default: the "
                                 "engine's; more than the CPUs are not used).")
    ] = None,
    log_level: Annotated[
        LogLevel, choice(LogLevel, "--log-level", help="uvicorn log level.")
    ] = LogLevel.INFO,
    api_key: Annotated[
        str | None,
        typer.Option(envvar="EMOVOX_API_KEY", show_default=False,
                     help="Require this key (X-API-Key header or Authorization: Bearer) on "
                     "every request but /health and the docs."),
    ] = None,
    request_timeout: Annotated[
        float,
        typer.Option(envvar="EMOVOX_REQUEST_TIMEOUT_S", callback=_deadline, metavar="S",
                     help="Seconds a /v1/predict or /v1/timeline request may wait for a "
                     "slot and be analysed, else 504 deadline_exceeded (an analysis past it "
                     "runs on, holding its slot, and is dropped). 0: no deadline."),
    ] = DEFAULT_REQUEST_TIMEOUT_S,
    cors_origin: Annotated[
        list[str] | None,
        typer.Option("--cors-origin", envvar="EMOVOX_CORS_ORIGINS", show_default=False,
                     metavar="ORIGIN",
                     help="Let pages of this origin (https://app.example.com; repeatable; "
                     "* for any) call the API from a browser (CORS); the environment "
                     "variable takes a comma-separated list. Default: none."),
    ] = None,
) -> None:
    """Start the REST API (FastAPI + uvicorn); OpenAPI docs at /docs."""
    model = check_model_option(model)
    need_module("fastapi", "api")
    need_module("uvicorn", "api")
    need_module("multipart", "api")
    import os

    from emovox.api.cors import cors_origins
    from emovox.api.server import create_app, is_loopback
    from emovox.serving.predictor import Predictor
    from emovox.serving.service import ENV_API_KEY, api_key_setting
    from emovox.serving.uploads import sweep_uploads

    if api_key is None and os.environ.get(ENV_API_KEY) == "":  # click reads "" as unset:
        api_key = ""  # an empty EMOVOX_API_KEY served without a key (README QA, stop 38)
    setup_logging(False)
    try:
        origins = cors_origins(cors_origin or [], "--cors-origin (EMOVOX_CORS_ORIGINS)")
        predictor = Predictor.from_artifact(model, backend=backend, threads=threads)
        api = create_app(predictor=predictor, max_bytes=int(max_upload_mb * 1024 * 1024),
                         max_duration=max_duration, max_concurrency=concurrency,
                         api_key=api_key_setting(api_key, "--api-key (EMOVOX_API_KEY)"),
                         cors_origins=origins, request_timeout=request_timeout)
        sock = listen_socket(host, port)
    except USER_ERRORS as exc:
        fail(exc)
    render.api_banner(host, sock.getsockname()[1], predictor.model_id, predictor.backend,
                      api_key=bool(api_key), exposed=not api_key and not is_loopback(host))
    sweep_uploads(own=True)  # upload copies a killed server left (code review, stop 48)
    run_server(api, sock, log_level.value)


def listen_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (``port`` 0: one the system picks, so the banner can
    name it: it said ":0" before, stop 37's list). ValueError (a usage error, exit 2) when
    it cannot be bound, before the banner: uvicorn would log it and exit with 3, a code
    emovox does not document."""
    bare = host[1:-1] if host[:1] == "[" and host[-1:] == "]" and ":" in host else host
    try:  # "[::1]": an IPv6 address as URLs (and the banner) write it
        infos = socket.getaddrinfo(bare, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ValueError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    family, kind, proto, _, addr = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
    try:
        sock.bind(addr)
    except OSError as exc:
        sock.close()
        raise ValueError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
                         "choose another --port (or stop what holds it)") from None
    return sock


#: seconds a stopping server waits for open requests (a stalled upload kept one alive after
#: SIGTERM for as long as its client stayed: API QA, stop 40)
GRACEFUL_SHUTDOWN_S = 10.0


def log_config() -> dict[str, Any]:
    """uvicorn's logging configuration, its access lines ending with the request's id
    (`` [request_id=ID]``: :func:`emovox.api.requestid.install_log_records`; its other lines
    carry it in their message; stop 51)."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["access"]["fmt"] += "%(request_tag)s"
    config.setdefault("filters", {})["request_tag"] = {
        "()": "emovox.api.requestid.RequestTag"}  # "" outside a request
    config["handlers"]["access"].setdefault("filters", []).append("request_tag")
    return config


class _Terminated(Exception):
    """SIGTERM, raised where uvicorn re-raises it after its shutdown."""


def _on_sigterm(_signum: int, _frame: object) -> None:
    raise _Terminated


def run_server(api: object, sock: socket.socket, log_level: str) -> None:
    """Serve ``api`` with uvicorn on the bound ``sock`` until Ctrl-C or SIGTERM (exit 0),
    open requests given :data:`GRACEFUL_SHUTDOWN_S` to finish, then answered 503.

    uvicorn re-raises the signal it handled once it has shut down, inside its event loop:
    Ctrl-C became a KeyboardInterrupt, and the requests it had cancelled sent their 503 as
    the loop closed; SIGTERM's default action killed the process there, and those clients
    saw their connection close with no answer (API QA, stop 40). SIGTERM now raises as
    Ctrl-C does.

    At most ``api.state.emovox_max_connections`` connections are open at once (the upload
    slots, those waiting for one, room for GETs; :func:`~emovox.api.server.create_app` sets
    it): over it uvicorn answers 503 (``limit_concurrency``). There was no limit: 4,000
    half-sent uploads waiting for a slot took 658 MiB (code review, stop 48)."""
    import uvicorn

    limit = getattr(getattr(api, "state", None), "emovox_max_connections", None)
    main = threading.current_thread() is threading.main_thread()
    before = signal.signal(signal.SIGTERM, _on_sigterm) if main else None
    try:
        uvicorn.Server(uvicorn.Config(api, log_level=log_level, limit_concurrency=limit,
                                      timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
                                      log_config=log_config())
                       ).run(sockets=[sock])
    except (KeyboardInterrupt, _Terminated):
        pass  # re-raised by uvicorn after a clean shutdown
    finally:
        if main:
            signal.signal(signal.SIGTERM, before)
