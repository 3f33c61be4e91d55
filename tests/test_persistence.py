"""Save/load: exact round trip, no pickle, atomic replacement, clear errors, other backends."""

import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest

import deepcast as dc
from deepcast.errors import ModelFileError


@pytest.fixture(scope="module")
def saved(fitted, tmp_path_factory):
    path = tmp_path_factory.mktemp("saved") / "model"
    fitted.save(path)
    return path


def test_round_trip_predicts_identically(fitted, saved, small_parts):
    test = small_parts[2]
    loaded = dc.Forecaster.load(saved)
    np.testing.assert_array_equal(loaded.predict(test).to_numpy(), fitted.predict(test).to_numpy())
    assert loaded.get_params() == fitted.get_params()
    assert loaded.evaluate(test)["rmse"] == pytest.approx(fitted.evaluate(test)["rmse"])


def test_saved_directory_holds_a_keras_archive_and_json_only(saved):
    assert sorted(p.name for p in saved.iterdir()) == [
        "forecaster.json",
        "manifest.json",
        "model.keras",
    ]
    state = json.loads((saved / "forecaster.json").read_text())
    assert state["feature_names"] == ["y", "x1", "x2"]
    assert state["params"]["lookback"] == 24
    names = zipfile.ZipFile(saved / "model.keras").namelist()
    assert not [n for n in names if n.endswith((".pkl", ".pickle"))]


def test_failed_save_leaves_the_previous_model_intact(fitted, saved, tmp_path, monkeypatch):
    target = tmp_path / "model"
    fitted.save(target)
    before = (target / "forecaster.json").read_text()

    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(type(fitted.model_), "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        fitted.save(target)
    assert (target / "forecaster.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temp debris


@pytest.mark.parametrize(
    "damage,message",
    [
        (lambda d: None, "not a directory"),
        (lambda d: (d / "model.keras").unlink(), "model.keras: missing"),
        (lambda d: (d / "forecaster.json").unlink(), "forecaster.json: missing"),
        (lambda d: (d / "model.keras").write_bytes(b"\x00garbage"), "model.keras: corrupt"),
        (lambda d: (d / "forecaster.json").write_text("{not json"), "forecaster.json: corrupt"),
        (lambda d: (d / "forecaster.json").write_text('{"format": 99}'), "not a deepcast"),
    ],
)
def test_damaged_model_directory_gets_a_clear_error(saved, tmp_path, damage, message):
    import shutil

    copy = tmp_path / "copy"
    if message != "not a directory":
        shutil.copytree(saved, copy)
    damage(copy)
    with pytest.raises(ModelFileError, match=message):
        dc.Forecaster.load(copy)


def test_truncated_keras_archive_is_reported(saved, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(saved, copy)
    with zipfile.ZipFile(copy / "model.keras", "w") as archive:
        archive.writestr("config.json", "{}")
    with pytest.raises(ModelFileError, match="model.keras: cannot be loaded"):
        dc.Forecaster.load(copy)


LOAD_AND_PREDICT = """
import sys, numpy as np, pandas as pd, deepcast as dc, keras
assert keras.backend.backend() == sys.argv[1], keras.backend.backend()
test = pd.read_parquet(sys.argv[3])
np.save(sys.argv[4], dc.Forecaster.load(sys.argv[2]).predict(test).to_numpy())
"""


@pytest.mark.backends
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_model_saved_under_torch_predicts_the_same_under(
    backend, fitted, saved, small_parts, tmp_path
):
    test = small_parts[2]
    test.to_parquet(tmp_path / "test.parquet")
    out = tmp_path / "pred.npy"
    env = {**os.environ, "KERAS_BACKEND": backend}
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            LOAD_AND_PREDICT,
            backend,
            str(saved),
            str(tmp_path / "test.parquet"),
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    np.testing.assert_allclose(np.load(out), fitted.predict(test).to_numpy(), atol=1e-4, rtol=0)


# -- a saved model that serves itself: preparation and manifest --------------------------------
def test_manifest_records_versions_schema_fingerprint_and_metrics(fitted, saved):
    import keras

    manifest = json.loads((saved / "manifest.json").read_text())
    assert manifest["deepcast_version"] == dc.__version__
    assert manifest["keras_version"] == keras.__version__
    assert manifest["backend"] == "torch" and manifest["backend_version"]
    assert manifest["input_schema"]["columns"] == {"y": "number", "x1": "number", "x2": "number"}
    assert manifest["input_schema"]["time_column"] == "timestamp"
    assert manifest["input_schema"]["step"] == "h"
    assert len(manifest["data_fingerprint"]["sha256"]) == 64
    assert manifest["metrics"]["best_epoch"] == fitted.history_.best_epoch
    assert manifest["created"].endswith("+00:00")


def test_fingerprint_changes_with_the_training_data(small_parts):
    from deepcast.preparation import fingerprint

    train = small_parts[0]
    changed = train.copy()
    changed.iloc[5, 0] += 1e-9
    assert fingerprint(train) == fingerprint(train.copy())
    assert fingerprint(train)["sha256"] != fingerprint(changed)["sha256"]


def test_loaded_model_forecasts_from_raw_records(fitted, saved, small_parts):
    test = small_parts[2]
    loaded = dc.Forecaster.load(saved)
    records = test.reset_index().astype({"timestamp": str}).to_dict(orient="records")
    np.testing.assert_array_equal(
        loaded.predict(records).to_numpy(), fitted.predict(test).to_numpy()
    )


def test_recorded_resampling_is_replayed_on_raw_rows(tmp_path):
    """A model fitted on hourly means of 30-minute rows forecasts from 30-minute raw rows."""
    from deepcast.data.prepare import prepare

    raw = dc.datasets.synthetic(n_steps=1200, seed=4)
    raw.index = pd.date_range("2024-01-01", periods=len(raw), freq="30min", name="when")
    hourly = prepare(raw, "y", resample="1h")
    train = hourly.iloc[:-60]
    f = dc.Forecaster("y", lookback=12, horizon=2, units=8, layers=1, baseline_start=False)
    f.fit(train, epochs=1, verbose=False)
    f.save(tmp_path / "m")
    loaded = dc.Forecaster.load(tmp_path / "m")
    assert loaded.preparation_.resample == "1h" and loaded.preparation_.time_col == "when"
    tail = raw.iloc[-80:].reset_index()  # a "when" column at the raw 30-minute step
    expected = f.predict(hourly.iloc[-40:])
    np.testing.assert_allclose(loaded.predict(tail).to_numpy(), expected.to_numpy(), rtol=1e-6)


def test_a_model_saved_before_manifests_still_loads(saved, small_parts, tmp_path):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(saved, old)
    (old / "manifest.json").unlink()
    state = json.loads((old / "forecaster.json").read_text())
    del state["preparation"]
    (old / "forecaster.json").write_text(json.dumps(state))
    loaded = dc.Forecaster.load(old)
    test = small_parts[2]
    assert len(loaded.predict(test)) == len(test) - loaded.lookback + 1


def test_an_lstm_saved_when_its_own_loss_was_mse_loads_as_trained_on_mse(saved, tmp_path):
    """Files did not store the loss that `loss=None` meant before the LSTM's own loss became
    Huber; an LSTM left at None then trained on MSE, and a warm start or a retrain from the
    loaded file must keep training on MSE."""
    import shutil

    assert dc.Forecaster.load(saved).training_loss == "huber"  # stored with the file
    old = tmp_path / "old"
    shutil.copytree(saved, old)
    state = json.loads((old / "forecaster.json").read_text())
    assert state.pop("training_loss") == "huber" and state["params"]["loss"] is None
    (old / "forecaster.json").write_text(json.dumps(state))
    loaded = dc.Forecaster.load(old)
    assert loaded.training_loss == "mse" and loaded.get_params()["loss"] == "mse"


def test_an_old_file_of_a_family_whose_own_loss_changed_says_it_trained_on_mse():
    from deepcast.persistence import _trained_loss

    for family in ("lstm", "tft"):  # Huber and MAE now; MSE before files stored the loss
        assert _trained_loss({}, {"model": family, "loss": None}) == "mse"
    assert _trained_loss({}, {"model": "tft", "loss": "quantile"}) is None  # as params say
    assert _trained_loss({"training_loss": "mae"}, {"model": "tft", "loss": None}) == "mae"


def test_a_model_from_a_newer_format_fails_with_one_line(saved, tmp_path):
    import shutil

    newer = tmp_path / "newer"
    shutil.copytree(saved, newer)
    state = json.loads((newer / "forecaster.json").read_text())
    state.update(format=2, deepcast_version="9.0")
    (newer / "forecaster.json").write_text(json.dumps(state))
    with pytest.raises(ModelFileError, match="written in format 2 by deepcast 9.0") as info:
        dc.Forecaster.load(newer)
    assert "\n" not in str(info.value)


def test_rows_without_timestamps_are_refused_naming_what_is_missing(saved, small_parts):
    from deepcast.errors import DataError

    loaded = dc.Forecaster.load(saved)
    rows = small_parts[2].reset_index(drop=True)
    with pytest.raises(DataError, match="no time column 'timestamp' and the index does not"):
        loaded.predict(rows)
    with pytest.raises(DataError, match="row 2 is not an object"):
        loaded.predict([{"timestamp": "2024-01-01"}, 3])


def test_an_option_left_at_a_default_that_changed_since_keeps_its_saved_value(tmp_path):
    """DeepAR's units were 40 by default when files left them unset; loading such a file now
    builds nothing, but the forecaster must describe (and refit) the model it holds."""
    df = dc.datasets.synthetic(n_steps=400, seed=0)
    f = dc.Forecaster("y", lookback=24, horizon=2, model="deepar", units=40, layers=1)
    path = f.fit(df.iloc[:300], epochs=1, verbose=False).save(tmp_path / "old")
    state = json.loads((path / "forecaster.json").read_text())
    state["params"]["units"] = None  # how a file saved at the old default reads
    (path / "forecaster.json").write_text(json.dumps(state))
    loaded = dc.Forecaster.load(path)
    assert loaded.model_config_.config["units"] == 40
    assert loaded.get_params()["model_options"] == {"units": 40}
    test = df.iloc[300:]
    np.testing.assert_array_equal(loaded.predict(test).to_numpy(), f.predict(test).to_numpy())
