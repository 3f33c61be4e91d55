"""End to end with the real server: a stream whose driver changes is caught, retrained on and
recovered from; a stable stream is left alone.

One model, trained on the drift-free series, is published as "shifted" and "stable". Both
streams come from the same generator and seed, so they are identical up to the planted change
(the coefficient of x1 three hours back goes from 2.0 to 1.0): the shifted stream must raise a
drift alarm, retrain on the rows after it, promote the challenger and get its one-step error
back near the pre-shift level; the stable stream must raise nothing.
"""

from __future__ import annotations

import httpx
import numpy as np
import pandas as pd
import pytest

import deepcast as dc
from deepcast.serving.store import ModelStore

from .conftest import HEADERS, Server, records, wait_for

pytestmark = pytest.mark.slow

TRAIN_ROWS = 2000
SHIFT_AT = 2300  # stream rows 2000..2299 are pre-shift, 2300.. post-shift
ROWS = 3400
BATCH = 20
RETRAIN_ROWS = 600


@pytest.fixture(scope="module")
def streams():
    shifted = dc.datasets.synthetic(n_steps=ROWS, seed=11, drift="driver", drift_at=SHIFT_AT)
    stable = dc.datasets.synthetic(n_steps=ROWS, seed=11)
    return shifted, stable


@pytest.fixture(scope="module")
def drift_server(tmp_path_factory, streams):
    _, stable = streams
    history = stable.iloc[:TRAIN_ROWS]
    # A model that learns the drivers (as in benchmarks/drift.py): the change it must notice
    # is the change of its own errors, and the library-default LSTM, which misses the x1 * x2
    # interaction, sees only ~17% more error from it.
    # Window normalisation lets it follow the synthetic's slow trend, which a stable stream of
    # 1,400 rows past the training rows otherwise turns into a (real) drift of its errors.
    f = dc.Forecaster(
        "y",
        lookback=24,
        horizon=3,
        model="cnn_lstm",
        window_norm=True,
        learning_rate=3e-3,
        patience=10,
        seed=2,
    )
    f.fit(history.iloc[:1500], validation=history.iloc[1500:], epochs=40, verbose=False)
    path = f.save(tmp_path_factory.mktemp("model") / "model")
    root = tmp_path_factory.mktemp("store") / "store"
    store = ModelStore(root)
    store.publish(path, "shifted")
    store.publish(path, "stable")
    options = ("--retrain-rows", str(RETRAIN_ROWS), "--retrain-epochs", "30")
    server = Server(root, workers=1, log=root.parent / "server.log", options=options)
    try:
        server.wait_ready({"shifted": "1", "stable": "1"})
        yield server
    finally:
        server.stop()


def _stream(server: Server, name: str, frame, start: int, stop: int) -> None:
    for at in range(start, stop, BATCH):
        body = {"observations": records(frame.iloc[at : min(at + BATCH, stop)])}
        response = server.client.post(f"/v1/models/{name}/observations", json=body, headers=HEADERS)
        assert response.status_code == 200, response.text


def _events(server: Server, name: str) -> list[dict]:
    return server.client.get(f"/v1/models/{name}/events", params={"limit": 1000}).json()["events"]


def _mean_abs_error(server: Server, name: str, version: str, start, stop) -> float | None:
    """Mean absolute one-step error of `version` on targets in [start, stop); None before
    100 of them have matured."""
    view = server.client.get(f"/v1/models/{name}/monitor", params={"limit": 5000}).json()
    errors = [
        abs(e["error"])
        for e in view["errors"]
        if e["version"] == version and start <= pd.Timestamp(e["timestamp"]) < stop
    ]
    return float(np.mean(errors)) if len(errors) >= 100 else None


def test_a_changed_driver_is_detected_retrained_on_and_recovered_from(drift_server, streams):
    server, (shifted, _) = drift_server, streams
    # Stream as a feed would until the monitor raises drift, then the rows it waits for
    # after the alarm (--retrain-rows), then give the retraining the time that rows take to
    # arrive in real life (the test's feed is far faster than an hour a row).
    at = TRAIN_ROWS
    while not any(e["type"] == "drift" for e in _events(server, "shifted")):
        assert at < ROWS - 600, "no drift raised"
        _stream(server, "shifted", shifted, at, at + BATCH)
        at += BATCH
        server.client.get("/v1/models/shifted/monitor")  # paced by the monitor's work
    drift = next(e for e in _events(server, "shifted") if e["type"] == "drift")
    alarm = shifted.index.get_loc(pd.Timestamp(drift["detail"]["at"]))
    _stream(server, "shifted", shifted, at, alarm + RETRAIN_ROWS + 1)
    at = alarm + RETRAIN_ROWS + 1
    verdict = wait_for(
        lambda: [e for e in _events(server, "shifted") if e["type"] in ("promoted", "rejected")][
            1:
        ],
        timeout=300,
        what="the challenger's verdict",
    )[0]  # (the first "promoted" is version 1's publication)
    kinds = [e["type"] for e in _events(server, "shifted")]
    assert kinds.index("drift") < kinds.index("retrain_started") < kinds.index("challenger_scored")
    delay = alarm - SHIFT_AT
    assert 0 <= delay <= 150, f"drift raised {delay} rows after the change"
    assert verdict["type"] == "promoted" and verdict["version"] == "2"
    switched = at

    # Forecasts from now on come from version 2, and its error is back near the old level.
    server.wait_ready({"shifted": "2", "stable": "1"})
    _stream(server, "shifted", shifted, switched, ROWS)
    latest = server.client.get("/v1/models/shifted/forecast/latest").json()
    assert latest["version"] == "2"
    times = shifted.index
    before = _mean_abs_error(server, "shifted", "1", times[TRAIN_ROWS], times[SHIFT_AT])
    after_shift = _mean_abs_error(server, "shifted", "1", times[SHIFT_AT], times[switched])
    recovered = wait_for(
        lambda: _mean_abs_error(server, "shifted", "2", times[switched], times[-1]),
        timeout=60,
        what="the new version's matured errors",
    )
    assert before is not None and after_shift is not None
    print(
        f"one-step MAE: before {before:.3f}, after the change {after_shift:.3f}, "
        f"retrained {recovered:.3f}"
    )
    assert after_shift > 1.1 * before  # the change really hurt the old model
    assert recovered <= 1.2 * before, (before, after_shift, recovered)


def test_a_stable_stream_raises_no_drift_and_no_retraining(drift_server, streams):
    server, (_, stable) = drift_server, streams
    _stream(server, "stable", stable, TRAIN_ROWS, ROWS)
    view = wait_for(
        lambda: (
            (v := server.client.get("/v1/models/stable/monitor").json())["errors"]
            and v["errors"][-1]["timestamp"] >= stable.index[ROWS - 2].isoformat()
            and v
        ),
        timeout=60,
        what="the stable stream's errors to mature",
    )
    assert view["live_version"] == "1" and view["versions"] == ["1"]
    kinds = {e["type"] for e in _events(server, "stable")}
    assert kinds == {"published", "promoted"}, kinds
    assert httpx.get(f"{server.url}/ready").json()["models"]["stable"] == "1"
