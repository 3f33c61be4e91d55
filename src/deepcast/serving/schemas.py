"""Request and response bodies of the HTTP API (they are the OpenAPI document)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

Record = dict[str, Any]


class Rows(BaseModel):
    """Rows as JSON records (`{"timestamp": "...", "<column>": value}`) or as CSV text with a
    header line; exactly one of the two."""

    model_config = ConfigDict(extra="forbid")

    observations: list[Record] | None = Field(
        None, description="oldest first or in any order; the newest window is used"
    )
    csv: str | None = Field(None, description="CSV text with a header, instead of observations")

    @model_validator(mode="after")
    def _one_source(self):
        if (self.observations is None) == (self.csv is None):
            raise ValueError("give either 'observations' (JSON records) or 'csv' (text)")
        return self


class ForecastRequest(Rows):
    levels: list[float] | None = Field(
        None, description="interval levels in percent, e.g. [80, 95]", max_length=10
    )


class ExplainRequest(Rows):
    top: int = Field(10, ge=1, le=1000, description="how many (feature, lag) cells")
    full: bool = Field(False, description="also return the whole lag x feature map")
    steps: int = Field(32, ge=4, le=256, description="integration steps")


class ObservationsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    observations: list[Record] = Field(..., min_length=1, max_length=100_000)


class Step(BaseModel):
    model_config = ConfigDict(extra="allow")  # lo_80, hi_80, ... when levels are asked

    step: int
    timestamp: str | None
    value: float


class ForecastResponse(BaseModel):
    model: str
    version: str
    origin: str
    forecast: list[Step]


class Cell(BaseModel):
    feature: str
    lag: int
    importance: float


class ExplainResponse(BaseModel):
    model: str
    version: str
    origin: str
    method: str
    top_cells: list[Cell]
    features: list[str] | None = None
    lags: list[int] | None = None
    values: list[list[float]] | None = None


class ObservationsResponse(BaseModel):
    model: str
    version: str
    inserted: int
    replaced: int
    unchanged: int
    last_timestamp: str


class ModelInfo(BaseModel):
    name: str
    versions: list[str]
    production: str | None
    active: str | None
    lookback: int | None = None
    horizon: int | None = None
    columns: list[str] | None = None


class ModelList(BaseModel):
    models: list[ModelInfo]


class ActivateResponse(BaseModel):
    model: str
    version: str
    previous: str | None


class PublishResponse(BaseModel):
    model: str
    version: str
    production: str | None


class Status(BaseModel):
    status: str
    models: dict[str, str] = Field(default_factory=dict)


class Event(BaseModel):
    id: int
    time: str = Field(description="when it happened (ISO 8601, UTC)")
    type: str = Field(
        description="published, promoted, activated, drift, retrain_started, "
        "challenger_scored, rejected, retrain_failed"
    )
    version: str | None = Field(description="the version it concerns")
    detail: dict


class EventList(BaseModel):
    model: str
    events: list[Event]


class Error(BaseModel):
    detail: str


class MonitorView(BaseModel):
    """The dashboard's data (monitor_view.py)."""

    model: str
    live_version: str
    versions: list[str]
    target: str
    band: int = Field(description="the level of the forecast's band, in percent")
    actuals: list[dict] = Field(description="newest target values: {timestamp, value}")
    forecast: dict | None = Field(description="the live version's latest rolling forecast")
    errors: list[dict] = Field(description="matured one-step errors: {timestamp, version, error}")
    alarms: list[Event]
    events: list[Event]
    attributions: list[dict] | None = Field(description="top (feature, lag) cells, IG")
