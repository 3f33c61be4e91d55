"""Forecaster: fit/predict/evaluate in original units, no leakage, seeds, clear errors."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import mean_absolute_error, mean_squared_error

import deepcast as dc
from deepcast.errors import ConfigError, DataError, NotFittedError


def test_predict_has_one_row_per_origin_and_h_columns(fitted, small_parts):
    test = small_parts[2]
    forecast = fitted.predict(test)
    assert forecast.shape == (len(test) - 24 + 1, 3)
    assert list(forecast.columns) == ["y[t+1]", "y[t+2]", "y[t+3]"]
    assert forecast.index[0] == test.index[23] and forecast.index[-1] == test.index[-1]
    assert forecast.index.name == "origin"


def test_predictions_are_the_model_output_in_original_units(fitted, small_parts):
    train, _, test = small_parts
    # Independent recomputation: scale with the training mean/std, run the Keras model, unscale.
    cols = ["y", "x1", "x2"]
    mean, std = train[cols].mean().to_numpy(), train[cols].std(ddof=0).to_numpy()
    scaled = ((test[cols].to_numpy() - mean) / std).astype("float32")
    windows = np.stack([scaled[i : i + 24] for i in range(len(test) - 23)])
    raw = np.asarray(fitted.model.predict(windows, verbose=0))
    expected = raw * std[0] + mean[0]
    np.testing.assert_allclose(fitted.predict(test).to_numpy(), expected, rtol=1e-5, atol=1e-4)


def test_scaler_is_fit_on_train_only(small_parts):
    train, val, test = small_parts
    a = dc.Forecaster("y", lookback=24, units=8, layers=1, seed=0)
    a.fit(train, validation=val, epochs=1, verbose=False)
    shifted_val = val + 1000.0  # a leak through the scaler would move its statistics
    b = dc.Forecaster("y", lookback=24, units=8, layers=1, seed=0)
    b.fit(train, validation=shifted_val, epochs=1, verbose=False)
    np.testing.assert_allclose(a.scaler_.mean, train[["y", "x1", "x2"]].mean().to_numpy())
    np.testing.assert_array_equal(a.scaler_.mean, b.scaler_.mean)
    np.testing.assert_array_equal(a.scaler_.scale, b.scaler_.scale)


def test_evaluate_matches_sklearn_on_the_same_forecasts(fitted, small_parts):
    test = small_parts[2]
    result = fitted.evaluate(test)
    forecast = fitted.predict(test)
    y = test["y"].to_numpy()
    period = fitted.seasonal_period_
    assert period == 24
    origins = np.arange(max(24, period) - 1, len(test) - 3)
    actual = np.stack([y[origins + h] for h in (1, 2, 3)], axis=1)
    predicted = forecast.to_numpy()[origins - 23]
    assert result["n_forecasts"] == len(origins)
    assert result["rmse"] == pytest.approx(mean_squared_error(actual, predicted) ** 0.5, rel=1e-6)
    assert result["mae"] == pytest.approx(mean_absolute_error(actual, predicted), rel=1e-6)
    naive = np.repeat(y[origins][:, None], 3, axis=1)
    assert result["baselines"]["naive"]["mae"] == pytest.approx(
        mean_absolute_error(actual, naive), rel=1e-9
    )
    snaive = np.stack([y[origins + h - 24] for h in (1, 2, 3)], axis=1)
    assert result["baselines"]["seasonal_naive"]["rmse"] == pytest.approx(
        mean_squared_error(actual, snaive) ** 0.5, rel=1e-9
    )
    assert set(result["baselines"]) == {"naive", "seasonal_naive", "linear"}


def test_same_seed_same_model_different_seed_different_model(small_parts):
    train, val, test = small_parts

    def fit(seed):
        # The network alone: a closed baseline gate would make every seed the same baseline.
        f = dc.Forecaster("y", lookback=24, units=8, layers=1, seed=seed, baseline_start=False)
        return f.fit(train, validation=val, epochs=2, verbose=False).predict(test).to_numpy()

    np.testing.assert_array_equal(fit(5), fit(5))
    assert not np.allclose(fit(5), fit(6))


def test_unfitted_forecaster_says_so():
    with pytest.raises(NotFittedError, match="not fitted"):
        dc.Forecaster("y").predict(pd.DataFrame())


@pytest.mark.parametrize(
    "kwargs,name",
    [
        ({"lookback": 0}, "lookback"),
        ({"dropout": 1.5}, "dropout"),
        ({"units": 2.5}, "units"),
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"horizon": True}, "horizon"),
    ],
)
def test_bad_hyperparameters_name_the_argument_and_value(kwargs, name, small_parts):
    with pytest.raises(ConfigError, match=rf"{name} must be .* Received: {name}="):
        dc.Forecaster("y", **kwargs).fit(small_parts[0], epochs=1)


def test_validation_frame_missing_a_column_is_named(small_parts):
    train, val, _ = small_parts
    with pytest.raises(DataError, match="validation.*x2"):
        dc.Forecaster("y", lookback=24).fit(train, validation=val.drop(columns="x2"), epochs=1)


def test_too_short_training_part_says_how_many_rows_are_needed(small_df):
    with pytest.raises(DataError, match="train: 30 rows are too few.*at least 50"):
        dc.Forecaster("y", lookback=48, horizon=1).fit(small_df.iloc[:30], epochs=1)


def test_features_argument_restricts_inputs(small_parts):
    train, val, test = small_parts
    f = dc.Forecaster("y", lookback=24, units=8, layers=1, features=["x1"])
    f.fit(train, validation=val, epochs=1, verbose=False)
    assert f.feature_names_ == ["y", "x1"]
    assert f.model.input_shape == (None, 24, 2)
    assert len(f.predict(test.drop(columns="x2"))) == len(test) - 23


def test_lstm_beats_seasonal_naive_by_ten_percent_on_synthetic_data():
    """The demo's promise, on a smaller run: the planted drivers are learnable."""
    df = dc.datasets.synthetic(n_steps=2500, seed=0)
    train, val, test = dc.split(df)
    f = dc.Forecaster("y", lookback=48, units=32, seed=0)
    result = f.fit(train, validation=val, epochs=8, verbose=False).evaluate(test)
    assert result["skill_vs_seasonal_naive"] >= 0.10, result


def test_warm_start_compares_the_loss_trained_on_not_how_it_was_spelled(small_parts):
    """A model saved with loss="mse" (every model saved before losses were per family) warm
    starts a Forecaster left at its default loss when that is also MSE, and not otherwise."""
    train, val, _ = small_parts
    args = {"target": "y", "lookback": 24, "horizon": 2}
    saved = dc.Forecaster(**args, model="nlinear", loss="mse").fit(train, epochs=1, verbose=False)
    dc.Forecaster(**args, model="nlinear").fit(train, epochs=1, warm_start=saved, verbose=False)
    nbeats = dc.Forecaster(**args, model="nbeats", loss="mse").fit(train, epochs=1, verbose=False)
    with pytest.raises(dc.ConfigError, match="its loss differs: 'mse'"):
        dc.Forecaster(**args, model="nbeats").fit(train, epochs=1, warm_start=nbeats)


@pytest.mark.parametrize("baseline_start", [True, False])
def test_fit_forecasts_the_validation_windows_once_after_training(
    small_parts, monkeypatch, baseline_start
):
    """The gate, the conformal scores and the validation check share one set of validation
    forecasts (with a baseline start, the gate also needs the baseline alone), and what they
    share is what the fitted model forecasts there when asked afresh."""
    from deepcast import _backend

    train, val, _ = small_parts
    n_windows = len(val) - 3 + 1  # every validation row is the first target of one window
    sizes = []
    forward = _backend.predict

    def counted(model, x, *args, **kwargs):
        sizes.append(len(x))
        return forward(model, x, *args, **kwargs)

    monkeypatch.setattr(_backend, "predict", counted)
    f = dc.Forecaster(
        "y", lookback=24, horizon=3, units=8, layers=1, seed=0, baseline_start=baseline_start
    )
    f.fit(train, validation=val, epochs=2, batch_size=32, verbose=False)
    assert sizes.count(n_windows) == (2 if baseline_start else 1)

    monkeypatch.undo()
    stored, check = f.conformal_.scores.copy(), f.validation_check_
    f.calibrate(val, history=train)  # a fresh forward pass over the same windows
    np.testing.assert_allclose(f.conformal_.scores, stored, rtol=1e-5, atol=1e-5)
    again = f._validation_check(val, train)  # forecasts afresh: nothing known
    assert again.windows == check.windows == n_windows
    assert again.model == pytest.approx(check.model, rel=1e-5)
    assert again.baselines == pytest.approx(check.baselines, rel=1e-12)
