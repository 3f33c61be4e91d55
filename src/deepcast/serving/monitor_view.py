"""The dashboard's data in one read: `GET /v1/models/{name}/monitor`.

Attributions of the latest forecast cost an Integrated Gradients pass, so they are computed
once per (model, version, origin) and kept; the page polls every few seconds and would
otherwise pay for the same explanation each time.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections import OrderedDict

from deepcast.errors import DeepcastError
from deepcast.serving.ledger import Ledger
from deepcast.serving.monitor import BAND
from deepcast.serving.runtime import ServedModel
from deepcast.serving.store import ModelStore

logger = logging.getLogger(__name__)

TOP_CELLS = 8
_explained: OrderedDict[tuple, list | None] = OrderedDict()
_lock = threading.Lock()


def monitor_snapshot(served: ServedModel, store: ModelStore, ledger: Ledger, limit: int) -> dict:
    name, f = served.name, served.forecaster
    rows = store.db.latest_observations(name, max(limit, f.lookback))
    latest = ledger.latest_forecast(name, served.version)
    forecast = None
    if latest is not None:
        forecast = {"model": name, "version": served.version, **latest}
    events = store.db.events(name, limit=200)
    return {
        "model": name,
        "live_version": served.version,
        "versions": store.versions(name),
        "target": f.target,
        "band": BAND,
        "actuals": [{"timestamp": r["timestamp"], "value": r[f.target]} for r in rows[-limit:]],
        "forecast": forecast,
        "errors": ledger.recent_errors(name, limit),
        "alarms": [e for e in events if e["type"] == "drift"],
        "events": events[-20:],
        "attributions": _attributions(served, rows, latest),
    }


def _attributions(served: ServedModel, rows: list[dict], latest: dict | None) -> list | None:
    """Top (feature, lag) cells of the latest forecast; None before there is one."""
    if latest is None or len(rows) < served.lookback:
        return None
    origin = latest["origin"]
    key = (served.name, served.version, origin)
    with _lock:
        if key in _explained:
            return _explained[key]
    window = [r for r in rows if r["timestamp"] <= origin][-served.lookback :]
    if len(window) < served.lookback:  # the rows shown have moved past a stale forecast
        return None
    try:
        with warnings.catch_warnings():  # a shown ranking needs no completeness warning
            warnings.simplefilter("ignore", UserWarning)
            cells = served.explain(window, top=TOP_CELLS, steps=50)["top_cells"]
    except DeepcastError as exc:
        logger.info("no attributions for %s at %s: %s", served.name, origin, exc)
        cells = None
    with _lock:
        _explained[key] = cells
        while len(_explained) > 64:
            _explained.popitem(last=False)
    return cells
