"""Champion/challenger retraining by hand (`retrain` and `deepcast retrain`), on a store whose
stored observations follow a changed driver the champion never saw."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import deepcast as dc
from deepcast.forecaster import Forecaster
from deepcast.serving.observations import checked_rows
from deepcast.serving.registry import Registry
from deepcast.serving.retrain import retrain
from deepcast.serving.store import ModelStore

from .conftest import records

pytestmark = pytest.mark.slow


@pytest.fixture
def drifted_store(tmp_path, served_forecaster) -> ModelStore:
    """Store with the tiny LSTM as "m" version 1 and 500 stored rows of a changed driver."""
    _, path = served_forecaster
    store = ModelStore(tmp_path / "store")
    store.publish(path, "m")
    served = Registry(store)._loaded("m", "1")
    rows = dc.datasets.synthetic(n_steps=500, seed=8, drift="driver", drift_at=0)
    checked = checked_rows(served, records(rows), None, lambda ts: set())
    store.db.append_observations("m", checked)
    return store


def test_retrain_scores_both_on_the_newest_rows_and_promotes_only_a_winner(drifted_store):
    store = drifted_store
    result = retrain(store, "m", epochs=8)
    kinds = [e["type"] for e in store.db.events("m")]
    verdict = "promoted" if result["promoted"] else "rejected"
    assert kinds[-4:] == ["retrain_started", "published", "challenger_scored", verdict]
    assert result["rows"] == {"train": 300, "validation": 100, "holdout": 100}
    # The scores, recomputed from the published versions through the public API.
    frame = dc.datasets.synthetic(n_steps=500, seed=8, drift="driver", drift_at=0)
    before, holdout = frame.iloc[:400], frame.iloc[400:]
    for version, key in (("1", "champion_rmse"), (result["challenger"], "challenger_rmse")):
        again = Forecaster.load(store.path("m", version)).evaluate(holdout, history=before)
        assert again["rmse"] == pytest.approx(result[key], rel=1e-5)
    assert result["promoted"] == (result["challenger_rmse"] < result["champion_rmse"])
    assert store.alias("m") == (result["challenger"] if result["promoted"] else "1")
    # The champion was trained 2 epochs on the old driver: the challenger wins here.
    assert result["promoted"]


def test_retrain_command_and_events_command(drifted_store, tmp_path):
    store = drifted_store.root
    run = [sys.executable, "-m", "deepcast.cli"]
    done = subprocess.run(
        [*run, "retrain", "--store", str(store), "--name", "m", "--epochs", "2", "--rows", "250"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "challenger version 2" in done.stdout and "on the newest 50 rows" in done.stdout
    listed = subprocess.run(
        [*run, "events", "--store", str(store), "--name", "m", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    events = [json.loads(line) for line in listed.stdout.splitlines()]
    assert {"time", "type", "version", "detail"} <= set(events[-1])
    scored = next(e for e in events if e["type"] == "challenger_scored")
    assert scored["version"] == "2" and scored["detail"]["champion"] == "1"

    too_few = subprocess.run(
        [*run, "retrain", "--store", str(store), "--name", "m", "--rows", "40"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert too_few.returncode == 2
    assert too_few.stderr.count("\n") == 1 and "too few to retrain" in too_few.stderr
    missing = subprocess.run(
        [*run, "retrain", "--store", str(tmp_path / "nowhere"), "--name", "m"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode == 2 and "no model store here" in missing.stderr
    assert "Traceback" not in missing.stderr + too_few.stderr
