"""DeepAR: teacher-forced likelihood, ancestral sample paths, the uncertainty API, no
future leak through the known-future rows, portability across backends."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import pytest

import deepcast as dc
from deepcast import _backend, models
from deepcast.errors import ConfigError, DataError
from deepcast.evaluation.probabilistic import crps_samples
from deepcast.models import heads, spread_calibration
from deepcast.models.deepar import DeepAR, DeepARNetwork, _parts, sample_paths
from deepcast.uncertainty import intervals

from .conftest import assert_portable, randomised

LOOKBACK, FEATURES, FUTURE = 6, 4, [2, 3]  # columns 0 (target), 1 observed; 2, 3 calendar


def build(horizon=3, kind="gaussian", **options):
    options = {"units": 5, "layers": 2, "dropout": 0.0, **options}
    return models.build(
        DeepAR(**options),
        LOOKBACK,
        FEATURES,
        horizon,
        head=heads.Head(kind),
        future_columns=FUTURE,
    )


def windows(n=7, horizon=3, seed=0):
    x = np.random.default_rng(seed).normal(size=(n, LOOKBACK + horizon, FEATURES))
    x[:, LOOKBACK:, :2] = 0.0  # known-future rows: calendar only
    return x.astype("float32")


def network(model) -> DeepARNetwork:
    return _parts(model)[0]  # inside the count head's scaling wrapper too


def test_declared_options_and_capabilities():
    assert "deepar" in models.names()
    assert DeepAR().config == {"units": 96, "layers": 2, "dropout": 0.1}
    assert DeepAR.outputs == ("distribution", "counts")
    assert DeepAR.future_inputs and DeepAR.dropout_sampling
    assert set(DeepAR.default_search()) == {"units", "layers", "dropout"}
    with pytest.raises(ConfigError, match="units"):
        DeepAR(unit=3)


def test_the_forecaster_defaults_to_a_student_t_head():
    assert dc.Forecaster("y", model="deepar").head.kind == "student_t"
    assert dc.Forecaster("y", model="deepar", loss="gaussian").head.kind == "gaussian"
    assert dc.Forecaster("y", model="lstm").head.kind == "point"  # others keep "mse"
    with pytest.raises(ConfigError, match="distribution"):
        models.build("deepar", 4, 3, 2, future_columns=[2])  # a point head


def _numpy_lstm(x, kernel, recurrent, bias):
    """Keras' LSTM (gates i, f, c, o) over x [B, T, D] -> [B, T, U]."""
    units = recurrent.shape[0]
    h = np.zeros((len(x), units))
    c = np.zeros((len(x), units))
    out = []
    for t in range(x.shape[1]):
        z = x[:, t] @ kernel + h @ recurrent + bias
        i, f, g, o = (z[:, k * units : (k + 1) * units] for k in range(4))
        sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
        c = sig(f) * c + sig(i) * np.tanh(g)
        h = sig(o) * np.tanh(c)
        out.append(h)
    return np.stack(out, axis=1)


def test_teacher_forcing_loss_is_the_gaussian_nll_of_each_lookback_step():
    model = randomised(build(layers=1))
    x = windows()
    net = network(model)
    nll = float(keras.ops.convert_to_numpy(net.teacher_forcing_nll(keras.ops.convert_to_tensor(x))))

    kernel, recurrent, bias, dense_w, dense_b = (w.astype("float64") for w in model.get_weights())
    # step t reads the observed columns of row t-1 and the calendar of row t
    inputs = np.concatenate([x[:, :-4, :2], x[:, 1:-3, 2:]], axis=-1)  # [B, L, 4 + flag]
    inputs = np.concatenate([inputs, np.ones_like(inputs[..., :1])], axis=-1)
    raw = _numpy_lstm(inputs, kernel, recurrent, bias) @ dense_w + dense_b  # [B, L, 2]
    loc = raw[:, : LOOKBACK - 1, 0]
    scale = np.log1p(np.exp(raw[:, : LOOKBACK - 1, 1])) + heads.MIN_SPREAD
    y = x[:, 1:LOOKBACK, 0]
    expected = np.mean(0.5 * ((y - loc) / scale) ** 2 + np.log(scale) + 0.5 * np.log(2 * np.pi))
    assert nll == pytest.approx(expected, rel=1e-5)


@pytest.mark.skipif(_backend.name() != "torch", reason="torch autograd")
def test_training_adds_the_lookback_nll_to_the_gradient():
    import torch

    horizon = 2
    model = randomised(build(horizon=horizon))
    x = torch.from_numpy(windows(horizon=horizon))
    y = torch.zeros((len(x), horizon))
    loss = heads.loss_function(heads.Head("gaussian"))
    params = [v.value for v in model.trainable_variables]

    trained = torch.autograd.grad(loss(y, model(x, training=True)), params)
    forecast = torch.autograd.grad(loss(y, model(x, training=False)), params)
    lookback = torch.autograd.grad(network(model).teacher_forcing_nll(x), params)
    weight = (LOOKBACK - 1) / horizon  # every position counts once
    for g, f, lb in zip(trained, forecast, lookback):
        torch.testing.assert_close(g, f + weight * lb, rtol=1e-4, atol=1e-6)
    # the value is the forecast steps' loss: the lookback's only joins the gradient
    assert torch.equal(model(x, training=True), model(x, training=False))


def test_sample_paths_are_seeded_and_step_one_has_the_models_distribution():
    model = randomised(build(horizon=3, kind="student_t"))
    x = windows()
    paths = sample_paths(model, x, n=4000, seed=3)  # [N, H, n]
    assert paths.shape == (7, 3, 4000)
    np.testing.assert_array_equal(paths, sample_paths(model, x, n=4000, seed=3))
    assert not np.array_equal(paths, sample_paths(model, x, n=4000, seed=4))

    params = _backend.predict(model, x)  # [N, H, 3]: location, scale, df
    loc, scale, df = params[:, 0, 0], params[:, 0, 1], params[:, 0, 2]
    std = scale * np.sqrt(df / (df - 2))
    first = paths[:, 0].astype("float64")
    # within Monte Carlo error (5 standard errors; a Student t with df > 4 has a 4th moment)
    assert np.all(np.abs(first.mean(axis=1) - loc) < 5 * std / np.sqrt(4000))
    heavy = df <= 4.5
    rel = np.abs(first.std(axis=1) / std - 1)[~heavy]
    assert np.all(rel < 0.15), (rel, df)
    gaussian = randomised(build(horizon=1))
    x = windows(horizon=1)
    draws = sample_paths(gaussian, x, n=4000, seed=0)[:, 0].astype("float64")
    p = _backend.predict(gaussian, x)[:, 0]
    np.testing.assert_allclose(draws.mean(axis=1), p[:, 0], atol=float(5 * p[:, 1].max() / 63))
    np.testing.assert_allclose(draws.std(axis=1), p[:, 1], rtol=0.06)


@pytest.mark.parametrize("kind", ["gaussian", "student_t"])
def test_a_windows_paths_do_not_depend_on_the_other_windows(kind):
    model = randomised(build(horizon=3, kind=kind))
    x = windows()
    changed = x.copy()
    changed[1:] = windows(seed=5)[1:]
    first = sample_paths(model, x, n=50, seed=2)[0]
    np.testing.assert_array_equal(first, sample_paths(model, changed, n=50, seed=2)[0])


def test_paths_without_noise_follow_the_models_own_forecast():
    """With the spread at its floor, every path feeds back (almost) the location, which is
    what the model does on its forward pass: the sampling loop steps as `call` does."""
    model = randomised(build(horizon=4))
    dense = network(model).projection
    kernel, bias = dense.get_weights()
    kernel[:, 1], bias[1] = 0.0, -40.0  # spread = softplus(-40) + 1e-4
    dense.set_weights([kernel, bias])
    x = windows(horizon=4)
    paths = sample_paths(model, x, n=3, seed=0)
    expected = _backend.predict(model, x)[..., 0]  # [N, H]
    np.testing.assert_allclose(paths, np.repeat(expected[..., None], 3, -1), atol=2e-3)


def test_the_spread_factor_scales_every_path_about_the_location():
    """Same seed, same draws: at step 1, path - location doubles with a factor of 2."""
    model, x = randomised(build(horizon=3)), windows()
    location = _backend.predict(model, x)[:, 0, 0]  # [N] step 1's location
    before = sample_paths(model, x, n=50, seed=3)[:, 0] - location[:, None]
    spread_calibration.set_spread_factor(model, 2.0)
    after = sample_paths(model, x, n=50, seed=3)[:, 0] - location[:, None]
    np.testing.assert_allclose(after, 2.0 * before, rtol=1e-4, atol=1e-5)


@pytest.mark.backends
def test_saved_model_has_the_same_parameters_and_paths_under_tensorflow_and_jax(tmp_path):
    model = randomised(build(horizon=3, dropout=0.1))
    spread_calibration.set_spread_factor(model, 1.3)  # as a fit on validation data sets it
    assert_portable(model, windows(), tmp_path, also="deepcast.models.deepar:sample_paths")


# -- through the Forecaster ----------------------------------------------------------------
@pytest.fixture(scope="module")
def series():
    """The synthetic series plus `leak`, a covariate equal to the target itself: were any
    future observed value in a window, the model could read the target it forecasts."""
    df = dc.datasets.synthetic(n_steps=1400, seed=0)
    return df.assign(leak=df["y"])


@pytest.fixture(scope="module")
def fitted(series):
    train, val = series.iloc[:900], series.iloc[900:1100]
    f = dc.Forecaster("y", lookback=24, horizon=2, model="deepar", units=24, layers=1)
    return f.fit(train, validation=val, epochs=4, batch_size=32, verbose=False)


def _changed_after(df: pd.DataFrame, row: int) -> pd.DataFrame:
    """`df` with every observed value after `row` replaced (timestamps, hence the calendar,
    kept)."""
    out = df.copy()
    rng = np.random.default_rng(9)
    out.iloc[row + 1 :] = rng.normal(50.0, 20.0, size=out.iloc[row + 1 :].shape)
    return out


def test_future_observed_values_do_not_reach_deepar(series, fitted):
    data = series.iloc[1100:1300]
    cut = 120  # forecasts made at origins up to row 120 of `data`
    changed = _changed_after(data, cut)
    origin = data.index[cut]
    for kwargs in ({}, {"levels": [90]}):
        before = fitted.predict(data, **kwargs).loc[:origin]
        after = fitted.predict(changed, **kwargs).loc[:origin]
        pd.testing.assert_frame_equal(before, after)
    assert fitted.start_ is None  # no baseline start around a model that samples itself


def test_future_observed_values_do_not_reach_tft(series):
    train, data = series.iloc[:700], series.iloc[1100:1300]
    f = dc.Forecaster("y", lookback=24, horizon=2, model=models.TFT(hidden=8, heads=2))
    f.fit(train, epochs=1, verbose=False)
    changed, origin = _changed_after(data, 120), data.index[120]
    pd.testing.assert_frame_equal(
        f.predict(data).loc[:origin], f.predict(changed).loc[:origin], check_exact=False
    )


def test_intervals_samples_and_crps_come_from_the_sample_paths(series, fitted):
    test, history = series.iloc[1100:], series.iloc[:1100]
    p = fitted.predict(test, levels=[80, 90])
    assert p.attrs["interval_method"] == "samples"
    assert (p["lo_90[t+2]"] <= p["lo_80[t+2]"]).all() and (p["hi_80[t+2]"] <= p["hi_90[t+2]"]).all()
    frame = fitted._frame(test, "data")
    x = fitted._input_windows(frame)
    draws = intervals.path_draws(fitted, x, intervals.PATH_SAMPLES, seed=0)
    np.testing.assert_allclose(p["y[t+1]"], np.median(draws[:, 0], axis=-1))  # the median

    samples = fitted.predict_samples(test, n=50, seed=1)
    assert samples.shape == (len(x), 2, 50)
    np.testing.assert_array_equal(samples, fitted.predict_samples(test, n=50, seed=1))

    result = fitted.evaluate(test, history=history, levels=[90])
    assert result["intervals"]["method"] == "samples"
    scored = fitted._scored_forecasts(test, history)
    draws = intervals.path_draws(fitted, scored["windows"], intervals.PATH_SAMPLES, fitted.seed)
    assert result["crps"] == pytest.approx(crps_samples(scored["actual"], draws))
    # A short fit on 900 rows; benchmarks/deepar_coverage.py measures the full run (87-93%).
    assert 0.8 <= result["coverage_90"] <= 0.98
    with pytest.raises(ConfigError, match="samples"):
        dc.Forecaster("y", model="lstm").fit(series.iloc[:300], epochs=1).predict(
            series.iloc[300:400], levels=[90], method="samples"
        )


def test_a_saved_deepar_forecaster_samples_the_same_paths(series, fitted, tmp_path):
    test = series.iloc[1100:1200]
    fitted.save(tmp_path / "deepar")
    loaded = dc.Forecaster.load(tmp_path / "deepar")
    assert loaded.head.kind == "student_t" and loaded.start_ is None
    pd.testing.assert_frame_equal(
        loaded.predict(test, levels=[90]), fitted.predict(test, levels=[90])
    )


# -- counts: the negative binomial head (Salinas et al. 2020, section 3.3) ------------------
def count_windows(n=7, horizon=3, seed=0):
    """Windows whose target column holds counts at levels from about 8 to 120."""
    x = windows(n, horizon, seed)
    rng = np.random.default_rng(seed)
    levels = 40.0 * rng.uniform(0.2, 3.0, size=(n, 1))
    x[:, :LOOKBACK, 0] = rng.poisson(levels, size=(n, LOOKBACK))
    return x


def test_the_count_network_reads_counts_over_nu_and_maps_its_parameters_back():
    """A numpy LSTM fed the target divided by nu = 1 + the lookback's mean gives mu', alpha';
    the lookback likelihood is scipy's of the counts with mu = nu mu', alpha = alpha' /
    sqrt(nu), and the first forecast step's parameters are mapped the same way."""
    from scipy import stats

    model = randomised(build(layers=1, kind="negative_binomial"))
    x = count_windows()
    nu = 1.0 + x[:, :LOOKBACK, 0].astype("float64").mean(axis=1, keepdims=True)  # [B, 1]
    kernel, recurrent, bias, dense_w, dense_b = (w.astype("float64") for w in model.get_weights())
    scaled = x.astype("float64")
    scaled[..., 0] /= nu
    inputs = np.concatenate([scaled[:, :LOOKBACK, :2], scaled[:, 1 : LOOKBACK + 1, 2:]], axis=-1)
    inputs = np.concatenate([inputs, np.ones_like(inputs[..., :1])], axis=-1)
    out = _numpy_lstm(inputs, kernel, recurrent, bias) @ dense_w + dense_b  # [B, L, 2]
    softplus = lambda v: np.log1p(np.exp(v))  # noqa: E731
    mu = nu * (softplus(out[..., 0]) + heads.MIN_RATE)
    alpha = (softplus(out[..., 1]) + heads.MIN_SPREAD) / np.sqrt(nu)

    net = network(model)
    nll = float(keras.ops.convert_to_numpy(net.teacher_forcing_nll(keras.ops.convert_to_tensor(x))))
    steps = LOOKBACK - 1
    y = x[:, 1:LOOKBACK, 0]
    n, p = 1.0 / alpha[:, :steps], 1.0 / (1.0 + alpha[:, :steps] * mu[:, :steps])
    assert nll == pytest.approx(-stats.nbinom.logpmf(y, n, p).mean(), rel=1e-4)
    first = _backend.predict(model, x)[:, 0]  # [B, 2]: the first forecast step, in counts
    np.testing.assert_allclose(first[:, 0], mu[:, -1], rtol=1e-4)
    np.testing.assert_allclose(first[:, 1], alpha[:, -1], rtol=1e-4)


def test_count_paths_are_seeded_counts_drawn_from_the_models_distribution():
    model = randomised(build(horizon=3, kind="negative_binomial"))
    x = count_windows()
    paths = sample_paths(model, x, n=4000, seed=3)  # [N, H, n]
    assert paths.shape == (7, 3, 4000)
    assert (paths >= 0).all() and (paths == np.round(paths)).all()
    np.testing.assert_array_equal(paths, sample_paths(model, x, n=4000, seed=3))
    params = _backend.predict(model, x)[:, 0].astype("float64")  # [N, 2]: mu, alpha
    mu, alpha = params[:, 0], params[:, 1]
    variance = mu + alpha * mu**2
    first = paths[:, 0].astype("float64")
    assert np.all(np.abs(first.mean(axis=1) - mu) < 5 * np.sqrt(variance / 4000))
    np.testing.assert_allclose(first.var(axis=1), variance, rtol=0.15)
    changed = x.copy()
    changed[1:] = count_windows(seed=5)[1:]
    first_window = sample_paths(model, x, n=50, seed=2)[0]
    np.testing.assert_array_equal(first_window, sample_paths(model, changed, n=50, seed=2)[0])


@pytest.fixture(scope="module")
def counts():
    """Hourly Poisson counts with mean 40 (1 + 0.5 sin(2 pi hour / 24)), and that mean."""
    index = pd.date_range("2024-01-01", periods=720, freq="h")
    rate = 40.0 * (1.0 + 0.5 * np.sin(2 * np.pi * index.hour.to_numpy() / 24))
    y = np.random.default_rng(0).poisson(rate).astype("float64")
    return pd.DataFrame({"y": y}, index=index), pd.Series(rate, index=index)


@pytest.fixture(scope="module")
def count_fitted(counts):
    df, _ = counts
    f = dc.Forecaster(
        "y", lookback=24, horizon=2, model="deepar", loss="negative_binomial", units=16,
        layers=1, learning_rate=0.01,
    )  # fmt: skip
    return f.fit(df.iloc[:400], validation=df.iloc[400:500], epochs=30, verbose=False)


def test_a_count_series_is_forecast_in_counts(counts, count_fitted):
    df, rate = counts
    test, history = df.iloc[500:], df.iloc[:500]
    f = count_fitted
    assert f.head.kind == "negative_binomial" and f.start_ is None
    assert (f.scaler_.mean[0], f.scaler_.scale[0]) == (0.0, 1.0)  # counts stay counts
    p = f.predict(pd.concat([history.iloc[-f.lookback :], test]), levels=[90])
    p = p.iloc[:-1]  # the last origin forecasts past the data
    targets = p.index + pd.Timedelta(hours=1)
    error = np.abs(p["y[t+1]"].to_numpy() - rate.loc[targets].to_numpy())
    assert error.mean() < 3.0, error.mean()  # the median follows the daily cycle of 20..60
    result = f.evaluate(test, history=history, levels=[90])
    assert result["intervals"]["method"] == "samples"
    # The true Poisson quantiles cover 94% of these targets (integer bounds); seeds 0, 1, 2
    # of this fit cover 91.6%, 94.3% and 95.7%.
    assert 0.85 <= result["coverage_90"] <= 0.95, result["coverage_90"]
    samples = f.predict_samples(test, n=100, seed=1)
    assert (samples >= 0).all() and (samples == np.round(samples)).all()
    assert 20.0 < samples.mean() < 60.0


def test_a_saved_count_forecaster_has_the_same_parameters_and_paths(counts, count_fitted, tmp_path):
    df, _ = counts
    test = df.iloc[500:600]
    count_fitted.save(tmp_path / "counts")
    loaded = dc.Forecaster.load(tmp_path / "counts")
    assert loaded.head.kind == "negative_binomial"
    x = count_fitted._input_windows(count_fitted._frame(test, "data"))
    np.testing.assert_allclose(
        loaded._predict_params(x), count_fitted._predict_params(x), rtol=1e-5, atol=1e-5
    )
    pd.testing.assert_frame_equal(
        loaded.predict(test, levels=[90]), count_fitted.predict(test, levels=[90])
    )


@pytest.mark.parametrize(("row", "value"), [(10, -1.0), (3, 2.5)])
def test_a_target_that_is_not_a_count_is_a_data_error(counts, row, value):
    df, _ = counts
    bad = df.iloc[:200].copy()
    bad.iloc[row, 0] = value
    f = dc.Forecaster("y", lookback=24, model="deepar", loss="negative_binomial", units=4)
    with pytest.raises(DataError, match=rf"train: column 'y' row {row + 1} .*not a count"):
        f.fit(bad, epochs=1, verbose=False)


@pytest.mark.backends
def test_a_saved_count_model_has_the_same_parameters_under_tensorflow_and_jax(tmp_path):
    model = randomised(build(horizon=3, kind="negative_binomial", dropout=0.1))
    assert_portable(model, count_windows(), tmp_path)
