"""The FastAPI application: `create_app(store)`, or `app_from_env()` for uvicorn workers.

Models load and warm up in the background after start-up: `/health` answers at once, `/ready`
says 200 when every production model is loaded, and model endpoints answer 503 until then.
Errors are JSON with one message, `{"detail": "..."}`: 401 without a valid key on writes,
404 for an unknown model, 413 for a body over the limit, 422 for bad input (the row and
column named), 503 while loading; an internal error is a 500 with a generic message and a
logged traceback.

>>> uvicorn.run(create_app("store", api_keys=("a-long-secret-key",)), port=8000)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from deepcast._version import __version__
from deepcast.errors import DeepcastError
from deepcast.serving import dashboard, routes
from deepcast.serving.metrics import Metrics
from deepcast.serving.monitor import Monitor, RetrainPolicy
from deepcast.serving.registry import Registry, UnknownModel
from deepcast.serving.security import MAX_BODY_BYTES, BodyLimit, Unauthorized, read_keys
from deepcast.serving.store import ModelStore

logger = logging.getLogger(__name__)

WATCH_SECONDS = 0.2


def create_app(
    store: str | os.PathLike | ModelStore,
    api_keys: tuple[str, ...] = (),
    max_body_bytes: int = MAX_BODY_BYTES,
    watch_seconds: float = WATCH_SECONDS,
    retrain: RetrainPolicy | None = None,
) -> FastAPI:
    """The service over model store `store` (a directory or a `ModelStore`); `retrain` says
    when its monitor retrains a drifting model (monitor.py; default: after drift)."""
    store = store if isinstance(store, ModelStore) else ModelStore(store, create=False)
    registry = Registry(store)
    monitor = Monitor(registry, retrain)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        async def start() -> None:
            def publish_versions() -> None:
                app.state.metrics.set_active({n: m.version for n, m in registry.active.items()})

            await run_in_threadpool(registry.load_all)
            publish_versions()
            monitor.start()
            await registry.watch(watch_seconds, after=publish_versions)

        task = asyncio.create_task(start())
        task.add_done_callback(_report_failure)
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await run_in_threadpool(monitor.stop)

    app = FastAPI(
        title="deepcast",
        version=__version__,
        description="Forecasts, explanations and rolling inference from a deepcast model store.",
        lifespan=lifespan,
    )
    app.state.registry = registry
    app.state.monitor = monitor
    app.state.api_keys = tuple(api_keys)
    app.state.metrics = Metrics()
    app.include_router(routes.health)
    app.include_router(routes.models)
    app.include_router(dashboard.router)
    _error_handlers(app)
    app.add_middleware(_Timing)
    app.add_middleware(BodyLimit, limit=max_body_bytes)
    return app


def app_from_env() -> FastAPI:
    """The app for `uvicorn --factory` workers, configured by the environment that
    `deepcast serve` sets: DEEPCAST_STORE, DEEPCAST_API_KEY(_FILE), DEEPCAST_MAX_BODY_BYTES and
    the retraining policy (DEEPCAST_RETRAIN_*, see `RetrainPolicy.from_env`)."""
    _single_thread_torch()
    keys = read_keys(os.environ.get("DEEPCAST_API_KEY_FILE") or None)
    limit = int(os.environ.get("DEEPCAST_MAX_BODY_BYTES", MAX_BODY_BYTES))
    return create_app(
        os.environ["DEEPCAST_STORE"],
        api_keys=keys,
        max_body_bytes=limit,
        retrain=RetrainPolicy.from_env(),
    )


def _single_thread_torch() -> None:
    """One intra-op thread per call: a single window is too small to split, and concurrent
    requests then use the cores instead of fighting over them."""
    threads = int(os.environ.get("DEEPCAST_TORCH_THREADS", "1"))
    with contextlib.suppress(ImportError):
        import torch

        torch.set_num_threads(threads)


def _report_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("loading models failed", exc_info=task.exception())


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status)


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Unauthorized)
    async def unauthorized(request: Request, exc: Unauthorized):
        response = _error(401, str(exc))
        response.headers["WWW-Authenticate"] = "APIKey"
        return response

    @app.exception_handler(DeepcastError)
    async def user_error(request: Request, exc: DeepcastError):
        registry = request.app.state.registry
        if isinstance(exc, UnknownModel):
            return _error(503 if not registry.ready else 404, str(exc))
        return _error(422, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        return _error(422, _one_line(exc.errors()))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception):
        logger.exception("internal error on %s %s", request.method, request.url.path)
        return _error(500, "internal error; the server log has the details")


def _one_line(errors) -> str:
    """The first validation error as `where: what` (e.g. `body.levels.0: not a number`)."""
    if not errors:
        return "invalid request"
    first = errors[0]
    where = ".".join(str(part) for part in first.get("loc", ()))
    message = first.get("msg", "invalid").removeprefix("Value error, ")
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {message}{more}" if where else f"{message}{more}"


class _Timing:
    """ASGI middleware: latency and status of every request into the Prometheus metrics,
    labelled by route template and model name."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = 500

        async def sending(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", "unmatched")
            app = scope.get("app")
            model = scope.get("path_params", {}).get("name", "")
            if app is not None and model not in app.state.registry.active:
                model = ""  # a label per name a client makes up would grow without bound
            metrics = None if app is None else app.state.metrics
            if metrics is not None and endpoint != "/metrics":
                metrics.observe(endpoint, model, status, time.perf_counter() - started)
