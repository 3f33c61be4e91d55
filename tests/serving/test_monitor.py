"""The monitor without a server: rolling forecasts, matured errors and the ledger, each checked
against the forecaster's own batch `predict` and a numpy recomputation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from deepcast.serving.ledger import Ledger
from deepcast.serving.monitor import Monitor, RetrainPolicy
from deepcast.serving.observations import checked_rows
from deepcast.serving.registry import Registry
from deepcast.serving.store import ModelStore

from .conftest import records


@pytest.fixture
def monitored(tmp_path, served_forecaster):
    """(monitor, forecaster) over a fresh store serving the tiny LSTM as "m"."""
    forecaster, path = served_forecaster
    store = ModelStore(tmp_path / "store")
    store.publish(path, "m")
    registry = Registry(store)
    registry.load_all()
    return Monitor(registry, RetrainPolicy(enabled=False)), forecaster


def _post(monitor: Monitor, frame: pd.DataFrame) -> None:
    served = monitor.registry.get("m")
    db = monitor.store.db
    stored = lambda ts: db.stored_timestamps("m", ts)  # noqa: E731
    rows = checked_rows(served, records(frame), db.last_timestamp("m"), stored)
    db.append_observations("m", rows)
    monitor.update("m")


def test_rolling_forecasts_match_batch_predict_and_errors_mature(monitored, serving_data):
    monitor, f = monitored
    test = serving_data[2]
    _post(monitor, test.iloc[:30])  # first update: one forecast, from the newest origin only
    ledger = Ledger(monitor.store.db)
    assert ledger.first_origin("m", "1") == ledger.last_origin("m", "1") == test.index[29].value
    for start, stop in [(30, 37), (37, 38), (38, 52), (52, 60)]:  # then every new origin
        _post(monitor, test.iloc[start:stop])
    expected = f.predict(test.iloc[:60])  # oracle: the forecaster's batch predict
    issued = ledger.forecasts_since("m", test.index[29].value)
    assert [origin for _, origin, _ in issued] == list(expected.index[29 - 23 :].as_unit("ns").asi8)
    for version, origin, steps in issued:
        row = expected.loc[pd.Timestamp(origin)]
        assert version == "1"
        np.testing.assert_allclose([s["value"] for s in steps], row.to_numpy(), rtol=1e-5)
        lo, hi = (np.array([s[k] for s in steps]) for k in ("lo_80", "hi_80"))
        assert (lo < row.to_numpy()).all() and (row.to_numpy() < hi).all()
        assert [s["timestamp"] for s in steps] == [
            (pd.Timestamp(origin) + pd.Timedelta(hours=h)).isoformat() for h in (1, 2, 3)
        ]

    # Matured one-step errors: actual - forecast for every origin whose next row arrived.
    times, errors = ledger.one_step_errors("m", "1")
    origins = expected.index[29 - 23 : -1]  # the last origin's target has not arrived
    np.testing.assert_array_equal(times, (origins + pd.Timedelta(hours=1)).as_unit("ns").asi8)
    actual = test["y"].reindex(origins + pd.Timedelta(hours=1)).to_numpy()
    np.testing.assert_allclose(errors, actual - expected.loc[origins, "y[t+1]"], rtol=1e-5)


def test_a_row_sent_twice_issues_no_second_forecast(monitored, serving_data):
    monitor, _ = monitored
    test = serving_data[2]
    _post(monitor, test.iloc[:40])
    _post(monitor, test.iloc[30:41])
    ledger = Ledger(monitor.store.db)
    with monitor.store.db.connect() as con:
        count = con.execute("SELECT COUNT(*) FROM forecasts").fetchone()[0]
    assert count == 2 and ledger.last_origin("m", "1") == test.index[40].value
    latest = ledger.latest_forecast("m", "1")
    assert latest["origin"] == test.index[40].isoformat() and len(latest["forecast"]) == 3
    assert json.loads(json.dumps(latest)) == latest  # plain JSON, as the dashboard reads it


def test_alarms_and_jobs_are_claimed_once(tmp_path):
    ledger = Ledger(ModelStore(tmp_path / "s").db)
    assert ledger.claim_alarm("m", "1", "errors", 10)
    assert not ledger.claim_alarm("m", "1", "errors", 10)
    assert ledger.claim_alarm("m", "2", "errors", 10)  # another version's alarm is its own
    assert ledger.claim_job("m") and not ledger.claim_job("m")
    ledger.job_started("m", 2**22 + 12345)  # a pid that is not running: the slot is stale
    assert not ledger.job_running("m") and ledger.claim_job("m")
    ledger.release_job("m")
    assert not ledger.job_running("m")


def test_a_schedule_retrains_every_so_many_rows(monitored, serving_data, monkeypatch):
    monitor, _ = monitored
    scheduled = Monitor(monitor.registry, RetrainPolicy(every=20, history=500))
    launched = []
    monkeypatch.setattr(scheduled, "_launch", lambda served, **how: launched.append(how))
    test = serving_data[2]
    _post(scheduled, test.iloc[:30])  # live from row 29 on
    _post(scheduled, test.iloc[30:45])
    assert launched == []  # 15 rows since it went live
    _post(scheduled, test.iloc[45:50])
    assert launched == [{"reason": "schedule", "rows": 500}]
    # The retraining records how far it read; the next one is due 20 rows after that.
    until = test.index[49].isoformat()
    scheduled.store.db.add_event("m", "retrain_started", {"until": until}, version="1")
    _post(scheduled, test.iloc[50:69])
    assert len(launched) == 1
    _post(scheduled, test.iloc[69:70])
    assert len(launched) == 2
