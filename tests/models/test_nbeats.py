"""nbeats: the bases against their formulas, the forward pass against a numpy oracle, options,
shapes, the zero start, portability, and the decomposition: exact in original units under every
wrapper, and on the synthetic series the planted trend slope and the daily period recovered."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from matplotlib.figure import Figure

import deepcast as dc
from deepcast import _backend, models
from deepcast.errors import ConfigError, NotFittedError
from deepcast.explain.decomposition import Decomposition, decompose
from deepcast.models import heads
from deepcast.models.nbeats import seasonality_basis, stack_forecasts, trend_basis

from .conftest import assert_portable, randomised

LOOKBACK, FEATURES, HORIZON = 30, 3, 6
SMALL = {"units": 16, "layers": 2, "blocks": 2}
PLANTED_SLOPE = 0.0005  # per row: y = 10 + 0.0005 t + ... (data/synthetic.py)


def windows(n: int = 8, features: int = FEATURES, lookback: int = LOOKBACK, seed: int = 0):
    return np.random.default_rng(seed).normal(size=(n, lookback, features)).astype("float32")


def predict(model, x: np.ndarray) -> np.ndarray:
    return _backend.predict(model, x)


# -- bases -------------------------------------------------------------------------------------
def test_trend_basis_is_the_polynomial_on_the_papers_grid():
    backcast, forecast = trend_basis(3, lookback=5, horizon=4)
    t = np.arange(4) / 4
    np.testing.assert_allclose(forecast, np.stack([t**0, t, t**2, t**3]))
    s = np.array([-4, -3, -2, -1, 0]) / 5  # newest row at 0
    np.testing.assert_allclose(backcast, np.stack([s**0, s, s**2, s**3]))


def test_seasonality_basis_holds_the_daily_period_and_no_level():
    backcast, forecast = seasonality_basis(4, period=24, lookback=48, horizon=24)
    assert forecast.shape == (8, 24) and backcast.shape == (8, 48)
    h = np.arange(1, 25)
    np.testing.assert_allclose(forecast[0], np.cos(2 * np.pi * h / 24), atol=1e-12)
    np.testing.assert_allclose(forecast[1], np.sin(2 * np.pi * h / 24), atol=1e-12)
    np.testing.assert_allclose(forecast[7], np.sin(2 * np.pi * 4 * h / 24), atol=1e-12)
    # No constant: over whole periods every row sums to zero, so the level is the trend's.
    np.testing.assert_allclose(forecast.sum(axis=1), 0.0, atol=1e-9)
    np.testing.assert_allclose(backcast.sum(axis=1), 0.0, atol=1e-9)
    # Backcast and forecast share one time axis: row s of the window continues into step h.
    both = seasonality_basis(4, 24, 48, 0)[0]
    np.testing.assert_allclose(seasonality_basis(4, 24, 24, 24)[0], both[:, 24:], atol=1e-12)


def test_harmonics_beyond_half_the_period_are_dropped():
    _, forecast = seasonality_basis(8, period=4, lookback=8, horizon=8)
    assert len(forecast) == 3  # k = 1: cos, sin; k = 2: cos (its sine is zero on whole rows)
    assert np.abs(forecast).sum(axis=1).min() > 1.0


# -- the model ---------------------------------------------------------------------------------
@pytest.mark.parametrize("horizon", [1, 7, 24, 72])
@pytest.mark.parametrize("features", [1, FEATURES])
@pytest.mark.parametrize("stack_types", ["interpretable", "generic"])
def test_builds_for_any_horizon_and_features(horizon, features, stack_types):
    model = models.build(
        "nbeats", LOOKBACK, features, horizon, {**SMALL, "stack_types": stack_types}
    )
    x = windows(5, features)
    assert predict(randomised(model), x).shape == (5, horizon)
    stacks = stack_forecasts(model, x)
    expected = ("trend", "seasonality") if stack_types == "interpretable" else None
    assert tuple(stacks) == (expected or ("generic_1", "generic_2"))
    np.testing.assert_allclose(sum(stacks.values()), predict(model, x), atol=1e-5)
    wrapped = models.build("nbeats", LOOKBACK, features, horizon, SMALL, window_norm=True)
    assert predict(wrapped, x).shape == (5, horizon)


def test_a_fresh_model_forecasts_zero_and_passes_the_residual_through():
    """The zero start: every theta starts at 0, so the first forecast is the training mean
    (0 in scaled units) whatever the window holds."""
    model = models.build("nbeats", LOOKBACK, FEATURES, HORIZON, SMALL)
    np.testing.assert_array_equal(predict(model, windows() * 50), 0.0)


def _numpy_nbeats(model, x, options):
    """The forward pass written out from the paper with the model's weights."""
    w = {v.path: np.asarray(keras.ops.convert_to_numpy(v), "float64") for v in model.weights}
    residual = x[:, :, 0].astype("float64")  # [B, L]
    covariates = x[:, :, 1:].reshape(len(x), -1)  # lag-major
    total = 0.0
    bases = {
        "trend": trend_basis(options["degree"], LOOKBACK, HORIZON),
        "seasonality": seasonality_basis(
            options["harmonics"], options["period"], LOOKBACK, HORIZON
        ),
    }
    for stack, (v_back, v_fore) in bases.items():
        for b in range(options["blocks"]):
            name = f"{stack}/block_{1 if options['share_weights'] else b + 1}"
            h = np.concatenate([residual, covariates], axis=1)
            for i in range(options["layers"]):
                fc = f"{name}/fc_{i + 1}"
                h = np.maximum(h @ w[f"{fc}/kernel"] + w[f"{fc}/bias"], 0.0)
            residual = residual - h @ w[f"{name}/backcast_theta/kernel"] @ v_back
            total = total + h @ w[f"{name}/forecast_theta/kernel"] @ v_fore
    return total


@pytest.mark.parametrize("share_weights", [True, False])
def test_forward_matches_numpy(share_weights):
    options = {
        **SMALL, "degree": 3, "harmonics": 2, "period": 12, "share_weights": share_weights,
    }  # fmt: skip
    model = randomised(models.build("nbeats", LOOKBACK, FEATURES, HORIZON, options))
    x = windows()
    np.testing.assert_allclose(predict(model, x), _numpy_nbeats(model, x, options), atol=1e-4)


def test_shared_weights_are_one_block_per_stack():
    shared = models.build("nbeats", LOOKBACK, FEATURES, HORIZON, {**SMALL, "blocks": 3})
    apart = models.build(
        "nbeats", LOOKBACK, FEATURES, HORIZON, {**SMALL, "blocks": 3, "share_weights": False}
    )
    assert 3 * shared.count_params() == apart.count_params()
    assert {v.path.split("/")[1] for v in shared.weights} == {"block_1"}


def test_covariates_option_decides_what_the_blocks_read():
    without = models.build("nbeats", LOOKBACK, FEATURES, HORIZON, {**SMALL, "covariates": False})
    randomised(without)
    x = windows()
    changed = x.copy()
    changed[:, :, 1:] += 5.0
    np.testing.assert_array_equal(predict(without, x), predict(without, changed))
    with_them = randomised(models.build("nbeats", LOOKBACK, FEATURES, HORIZON, SMALL))
    first = with_them.get_layer("trend").members[0].hidden[0]
    assert first.kernel.shape == (LOOKBACK * FEATURES, SMALL["units"])
    assert np.abs(predict(with_them, x) - predict(with_them, changed)).max() > 1e-3


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"stack_types": "mixed"}, "stack_types must be one of interpretable, generic"),
        ({"degree": 5}, "degree must be an int in \\[0, 4\\]"),
        ({"harmonics": 0}, "harmonics must be an int >= 1"),
        ({"period": 1}, "period must be an int >= 2"),
        ({"blocks": 2.0}, "blocks must be an int"),
        ({"share_weights": "yes"}, "share_weights must be true or false"),
        ({"dropout": 0.1}, "nbeats has no option 'dropout'"),
    ],
)
def test_options_are_validated(options, named):
    with pytest.raises(ConfigError, match=named):
        models.configure("nbeats", options)


def test_declared_options_and_capabilities():
    assert models.configure("nbeats").config == {
        "stack_types": "interpretable",
        "blocks": 3,
        "units": 128,
        "layers": 2,
        "degree": 2,
        "harmonics": 4,
        "period": 24,
        "share_weights": True,
        "covariates": True,
    }
    spec = models.spec("nbeats")
    assert "stack_types" not in spec.default_search()  # tuning keeps it explainable
    assert (spec.dropout_sampling, spec.attention, spec.outputs) == (False, False, ("point",))
    with pytest.raises(ConfigError, match="nbeats has no quantile output"):
        models.build("nbeats", LOOKBACK, FEATURES, HORIZON, head=heads.for_loss("quantile"))
    assert (
        dc.Forecaster("y", model="nbeats", units=32, layers=1).configured_model().config["units"]
        == 32
    )


@pytest.mark.backends
def test_saved_model_forecasts_the_same_under_tensorflow_and_jax(tmp_path):
    """The interpretable stacks: custom layers, fixed bases rebuilt from the config."""
    model = randomised(models.build("nbeats", LOOKBACK, FEATURES, HORIZON, SMALL))
    assert_portable(model, windows(), tmp_path)


def test_generic_stacks_save_and_load(tmp_path):
    options = {**SMALL, "stack_types": "generic", "share_weights": False}
    model = randomised(models.build("nbeats", LOOKBACK, FEATURES, HORIZON, options))
    model.save(tmp_path / "generic.keras")
    loaded = keras.saving.load_model(tmp_path / "generic.keras", safe_mode=True, compile=False)
    np.testing.assert_allclose(predict(loaded, windows()), predict(model, windows()), atol=1e-6)


# -- decomposition -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def series():
    return dc.datasets.synthetic(seed=0)


@pytest.fixture(scope="module")
def alone(series):
    """The network alone (no baseline start), default options, fitted on the synthetic series
    (~15 s on one core); its decomposition over every origin of the series."""
    train, val, _ = dc.split(series, val=0.15, test=0.15)
    f = dc.Forecaster(
        target="y", lookback=48, horizon=24, model="nbeats", baseline_start=False, seed=0
    )
    f.fit(train, validation=val, epochs=40, verbose=False)
    return f, decompose(f, series)


def test_the_trend_recovers_the_planted_slope(alone):
    """The level of every forecast is the trend's (the seasonality basis has no constant):
    regressed on the origin, the trend's mean over the horizon rises by the planted 0.0005 per
    row. Measured 0.000504 (seeds 0-4: 0.000500-0.000520); the seasonality's slope ~0.
    Whole weeks only, so the weekly cycle (in the trend: period 24 is the only seasonality
    basis) adds no slope of its own."""
    _, d = alone
    n = (len(d.trend) - 24) // 168 * 168  # origins with every target known, whole weeks
    rows = np.arange(n)
    trend_slope = np.polyfit(rows, d.trend.to_numpy()[:n].mean(axis=1), 1)[0]
    assert trend_slope == pytest.approx(PLANTED_SLOPE, rel=0.1)
    season_slope = np.polyfit(rows, d.seasonality.to_numpy()[:n].mean(axis=1), 1)[0]
    assert abs(season_slope) < 0.1 * PLANTED_SLOPE


def test_the_seasonality_has_the_daily_period(alone):
    _, d = alone
    n = (len(d.seasonality) - 24) // 24 * 24  # whole days: period 24 falls on an FFT bin
    one_step = d.seasonality.to_numpy()[:n, 0]
    spectrum = np.abs(np.fft.rfft(one_step - one_step.mean()))
    assert n / np.argmax(spectrum) == 24  # over origins: the daily cycle, not the weekly
    along = np.abs(np.fft.rfft(d.seasonality.to_numpy()[:n], axis=1)).mean(axis=0)
    assert np.argmax(along) == 1  # along each forecast: one cycle per 24 steps


def test_components_sum_to_the_forecast_without_a_baseline(alone, series):
    f, d = alone
    assert isinstance(d, Decomposition) and d.baseline is None
    np.testing.assert_allclose(d.trend + d.seasonality, d.forecast, atol=1e-5)
    np.testing.assert_allclose(d.forecast, f.predict(series), atol=1e-5)
    assert list(d.trend.columns) == list(f.predict(series).columns)
    # The level (the scaler's mean with it) is the trend's: the seasonality moves around zero.
    level = d.forecast.to_numpy().mean()
    assert level == pytest.approx(series["y"].mean(), rel=0.1)  # the scaler's mean is in it
    assert d.trend.to_numpy().mean() == pytest.approx(level, abs=1e-3)
    assert abs(d.seasonality.to_numpy().mean()) < 0.1


@pytest.mark.parametrize("window_norm", [False, True])
def test_components_sum_to_the_forecast_with_the_baseline_start(window_norm, tmp_path):
    """forecast = baseline + alpha * (trend + seasonality): the gate is inside the components,
    the baseline (in original units, the scaler's mean with it) is a component of its own;
    the same after saving and loading."""
    train, val, test = dc.split(dc.datasets.synthetic(n_steps=700, seed=3), val=0.15, test=0.15)
    f = dc.Forecaster(
        target="y", lookback=24, horizon=4, model=models.NBEATS(**SMALL), window_norm=window_norm,
        seed=0,
    )  # fmt: skip
    f.fit(train, validation=val, epochs=2, verbose=False)
    f.model_.get_layer("gate").alpha.assign(0.7)  # a gate strictly inside (0, 1)
    d = decompose(f, test)
    assert set(d.components) == {"trend", "seasonality", "baseline"}
    assert d.baseline_name == f.start_["baseline"]
    legend = d.plot().axes[-1].get_legend().get_texts()[0].get_text()
    assert legend == f"baseline: {d.baseline_label}" and d.baseline_label
    total = d.trend + d.seasonality + d.baseline
    np.testing.assert_allclose(total, f.predict(test), atol=1e-5)
    # The baseline component is the baseline's own forecast: the gate closed, it is all.
    f.model_.get_layer("gate").alpha.assign(0.0)
    np.testing.assert_allclose(d.baseline, f.predict(test), atol=1e-5)
    f.model_.get_layer("gate").alpha.assign(0.7)
    loaded = dc.load(f.save(tmp_path / "nbeats"))
    again = decompose(loaded, test)
    np.testing.assert_allclose(again.trend, d.trend, atol=1e-5)
    np.testing.assert_allclose(again.seasonality, d.seasonality, atol=1e-5)


def test_the_plot_shows_forecast_actual_and_each_component(alone, series):
    _, d = alone
    fig = d.plot(step=2, units="MW")
    assert isinstance(fig, Figure)
    labels = {t.get_text() for ax in fig.axes for t in ax.get_legend().get_texts()}
    assert labels == {"actual", "forecast", "trend", "seasonality"}
    assert all(ax.get_ylabel() == "y [MW]" for ax in fig.axes)
    assert "2 step(s) ahead" in fig.get_suptitle()
    forecast_line = fig.axes[0].get_lines()[1]
    np.testing.assert_allclose(forecast_line.get_ydata(), d.forecast.iloc[:, 1])
    # Actuals are drawn where known: the last origins forecast past the data's end.
    assert len(fig.axes[0].get_lines()[0].get_ydata()) == len(d.actual) - 2
    with pytest.raises(ConfigError, match="step must be in 1..24"):
        d.plot(step=25)


def test_only_an_interpretable_nbeats_decomposes(series):
    train = series.iloc[:300]
    for model in ("dlinear", models.NBEATS(stack_types="generic", **SMALL)):
        f = dc.Forecaster(target="y", lookback=24, horizon=2, model=model, baseline_start=False)
        f.fit(train, epochs=1, verbose=False)
        with pytest.raises(ConfigError, match="decompose needs an nbeats model with interpretable"):
            decompose(f, train)
    with pytest.raises(NotFittedError):
        decompose(dc.Forecaster(target="y", model="nbeats"), train)
