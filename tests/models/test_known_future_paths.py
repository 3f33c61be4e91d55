"""A model with known-future inputs (tft) through every path beside fit and predict that
builds windows of its own: the served forecast, the explain command and the anomaly detector.
Each once assumed windows of `lookback` rows."""

from __future__ import annotations

import json

import numpy as np
import pytest

import deepcast as dc
from deepcast.cli import main
from deepcast.errors import ConfigError
from deepcast.serving.runtime import ServedModel


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    df = dc.datasets.synthetic(n_steps=420, seed=4)
    f = dc.Forecaster("y", lookback=12, horizon=3, model=dc.models.TFT(hidden=8, heads=2))
    f.fit(df.iloc[:300], validation=df.iloc[300:360], epochs=1, verbose=False)
    folder = tmp_path_factory.mktemp("tft")
    f.save(folder / "model")
    df.to_csv(folder / "series.csv")
    return f, df, folder


def test_served_forecast_equals_predict_with_the_forecast_steps_calendar(saved):
    f, df, folder = saved
    rows = df.iloc[360:400]
    served = ServedModel.load("tft", "1", folder / "model")
    records = rows.reset_index()
    records["timestamp"] = records["timestamp"].map(lambda t: t.isoformat())
    answer = served.forecast(records.to_dict(orient="records"))
    expected = f.predict(rows).to_numpy()[-1]
    np.testing.assert_allclose([s["value"] for s in answer["forecast"]], expected, rtol=1e-5)
    first_step = str(answer["forecast"][0]["timestamp"])
    assert first_step.replace("T", " ") == str(rows.index[-1] + rows.index.freq)


def test_explain_command_runs_on_a_model_with_known_future_rows(saved, capsys):
    _, _, folder = saved
    out = folder / "explained"
    code = main(
        [
            "explain", "--model", str(folder / "model"), "--data", str(folder / "series.csv"),
            "--method", "ig,occlusion", "--steps", "16", "--max-windows", "8", "--out", str(out),
        ]
    )  # fmt: skip
    capsys.readouterr()
    assert code == 0
    report = json.loads((out / "attributions.json").read_text())
    assert set(report["methods"]) == {"integrated_gradients", "occlusion"}
    # attributions cover the lookback rows only (lag 1 = the newest observed row)
    assert len(report["methods"]["occlusion"]["lags"]) == 12


def test_anomalies_refuse_a_model_with_known_future_inputs_in_one_line(saved):
    f, df, _ = saved
    with pytest.raises(ConfigError, match="known-future inputs"):
        f.anomalies(df.iloc[300:])
