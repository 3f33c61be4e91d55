"""The HTTP endpoints: health, models, forecasts, explanations, observations, activation.

Model calls run in the thread pool (`run_in_threadpool`), never on the event loop, so one slow
explanation does not hold up the other requests. Every forecast names the version that made it.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Annotated

import pandas as pd
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from deepcast.errors import DataError
from deepcast.serving import schemas
from deepcast.serving.metrics import CONTENT_TYPE
from deepcast.serving.monitor_view import monitor_snapshot
from deepcast.serving.observations import checked_rows
from deepcast.serving.registry import Registry
from deepcast.serving.security import api_key_header, require_key
from deepcast.serving.store import check_name
from deepcast.serving.upload import unpack_model

health = APIRouter(tags=["health"])
models = APIRouter(prefix="/v1/models", tags=["models"])
_ERRORS = {
    401: {"model": schemas.Error, "description": "missing or invalid API key"},
    404: {"model": schemas.Error, "description": "no such model"},
    422: {"model": schemas.Error, "description": "bad input, named in the message"},
}


def registry(request: Request) -> Registry:
    return request.app.state.registry


def write_access(request: Request, key: Annotated[str | None, Depends(api_key_header)]) -> None:
    require_key(request, key)


Reg = Annotated[Registry, Depends(registry)]


# -- health -------------------------------------------------------------------------------------
@health.get("/health", response_model=schemas.Status)
async def get_health() -> dict:
    """The process is up (models may still be loading)."""
    return {"status": "ok"}


@health.get("/ready", response_model=schemas.Status, responses={503: {"model": schemas.Status}})
async def get_ready(reg: Reg):
    """200 once every model is loaded and warmed up; 503 before."""
    versions = {name: m.version for name, m in reg.active.items()}
    if not reg.ready:
        return JSONResponse({"status": "loading", "models": versions}, status_code=503)
    return {"status": "ready", "models": versions}


@health.get("/metrics", response_class=Response)
async def get_metrics(request: Request) -> Response:
    """Prometheus metrics: requests, latency histogram, errors, active version per model."""
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE)


# -- models -------------------------------------------------------------------------------------
@models.get("", response_model=schemas.ModelList)
async def list_models(reg: Reg) -> dict:
    """Every model in the store, its versions, production alias and the version served."""
    found = []
    for name in reg.store.names():
        info = reg.store.describe(name)
        served = reg.active.get(name)
        info["active"] = None if served is None else served.version
        if served is not None:
            f = served.forecaster
            info.update(lookback=f.lookback, horizon=f.horizon, columns=served.columns)
        found.append(info)
    return {"models": found}


@models.post("/{name}/forecast", response_model=schemas.ForecastResponse, responses=_ERRORS)
async def forecast(name: str, body: schemas.ForecastRequest, reg: Reg) -> dict:
    """Forecast from the newest `lookback` rows of the posted observations (JSON records or
    CSV text); `levels` adds intervals (lo_80, hi_80, ...) per step."""
    served = reg.get(name)
    return await run_in_threadpool(lambda: served.forecast(_rows(body), body.levels))


@models.post(
    "/{name}/explain",
    response_model=schemas.ExplainResponse,
    response_model_exclude_none=True,
    responses=_ERRORS,
)
async def explain(name: str, body: schemas.ExplainRequest, reg: Reg) -> dict:
    """Integrated Gradients of the first forecast step on the newest window: the top
    (feature, lag) cells, and with `full` the whole lag x feature map."""
    served = reg.get(name)
    return await run_in_threadpool(
        lambda: served.explain(_rows(body), body.top, body.full, body.steps)
    )


@models.post(
    "/{name}/observations",
    response_model=schemas.ObservationsResponse,
    responses=_ERRORS,
    dependencies=[Depends(write_access)],
)
async def post_observations(
    name: str, body: schemas.ObservationsRequest, reg: Reg, request: Request
) -> dict:
    """Append rows to the model's history (idempotent for a row sent again). They must carry
    the model's columns and continue the series at its step without a gap. The monitor then
    forecasts from the new origins, scores matured forecasts and checks for drift, after the
    response."""
    served = reg.get(name)
    db = reg.store.db

    def append() -> dict:
        rows = checked_rows(served, body.observations, db.last_timestamp(name), _stored(db, name))
        counts = db.append_observations(name, rows)
        last = db.latest_observations(name, 1)[0]["timestamp"]
        return {"model": name, "version": served.version, **counts, "last_timestamp": last}

    answer = await run_in_threadpool(append)
    request.app.state.monitor.notify(name)
    return answer


@models.post(
    "/{name}/versions",
    response_model=schemas.PublishResponse,
    responses={**_ERRORS, 413: {"model": schemas.Error, "description": "archive too large"}},
    dependencies=[Depends(write_access)],
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "a tar archive (.tar or .tar.gz) of a saved model directory",
            "content": {"application/gzip": {}, "application/x-tar": {}},
        }
    },
)
async def publish(
    name: str, request: Request, reg: Reg, promote: Annotated[bool, Query()] = False
) -> dict:
    """Publish a saved model (a tar archive of its directory, e.g. `tar -czf model.tgz -C
    runs/x model`) as the next version of `name`; the first version, or `promote=true`, makes
    it production (served once loaded and warmed)."""
    check_name(name)
    body = await request.body()

    def unpack_and_publish() -> dict:
        with tempfile.TemporaryDirectory(prefix="deepcast-upload-") as tmp:
            version = reg.store.publish(unpack_model(body, Path(tmp) / "model"), name)
        if promote and reg.store.alias(name) != version:
            reg.store.promote(name, version)
        return {"model": name, "version": version, "production": reg.store.alias(name)}

    return await run_in_threadpool(unpack_and_publish)


@models.get("/{name}/forecast/latest", response_model=schemas.ForecastResponse, responses=_ERRORS)
async def forecast_latest(
    name: str, reg: Reg, levels: Annotated[list[float] | None, Query()] = None
) -> dict:
    """Forecast from the newest stored observations (rolling inference)."""
    served = reg.get(name)
    db = reg.store.db

    def latest() -> dict:
        rows = db.latest_observations(name, served.lookback)
        if len(rows) < served.lookback:
            raise DataError(
                f"model {name} has {len(rows)} stored observations; a forecast needs the "
                f"newest {served.lookback} (POST them to /v1/models/{name}/observations)"
            )
        return served.forecast(rows, levels)

    return await run_in_threadpool(latest)


@models.post(
    "/{name}/versions/{version}/activate",
    response_model=schemas.ActivateResponse,
    responses=_ERRORS,
    dependencies=[Depends(write_access)],
)
async def activate(name: str, version: str, request: Request, reg: Reg) -> dict:
    """Load and warm `version` beside the serving one, make it production and switch to it
    between requests (every worker follows within its watch interval)."""
    previous = await run_in_threadpool(reg.activate, name, version)
    request.app.state.metrics.set_active({n: m.version for n, m in reg.active.items()})
    return {"model": name, "version": version, "previous": previous}


@models.get("/{name}/events", response_model=schemas.EventList, responses=_ERRORS)
async def events(name: str, reg: Reg, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict:
    """The model's events, oldest first: published, promoted, activated, drift,
    retrain_started, challenger_scored, rejected, retrain_failed."""
    reg.get(name)
    return {"model": name, "events": await run_in_threadpool(reg.store.db.events, name, limit)}


@models.get("/{name}/monitor", response_model=schemas.MonitorView, responses=_ERRORS)
async def monitor_view(
    name: str, request: Request, reg: Reg, limit: Annotated[int, Query(ge=10, le=5000)] = 200
) -> dict:
    """What the dashboard draws: recent actuals, the live version's latest forecast with its
    80% band, matured one-step errors, drift alarms, events, versions and the top
    attributions of the latest forecast."""
    served = reg.get(name)
    return await run_in_threadpool(
        lambda: monitor_snapshot(served, reg.store, request.app.state.monitor.ledger, limit)
    )


def _rows(body: schemas.Rows):
    if body.observations is not None:
        return body.observations
    try:
        return pd.read_csv(io.StringIO(body.csv), skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"csv: cannot parse ({first})") from None


def _stored(db, name: str):
    return lambda timestamps: db.stored_timestamps(name, timestamps)
