"""Save/load: exact round trip, no pickle, atomic replacement, clear errors, other backends."""

import json
import os
import subprocess
import sys
import zipfile

import numpy as np
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
    assert sorted(p.name for p in saved.iterdir()) == ["forecaster.json", "model.keras"]
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
