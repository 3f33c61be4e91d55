"""The linear families: DLinear's decomposition against pandas, NLinear's naive start and shift
equivariance, the covariate term, options, speed path, and saving under every backend."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from keras import ops

from deepcast import _backend, models
from deepcast.errors import ConfigError
from deepcast.models.dlinear import DLinearLayer, averaging_matrix
from deepcast.training import _layer_chain

from .conftest import assert_portable, randomised

LOOKBACK, FEATURES, HORIZON = 30, 3, 4
FAMILIES = ("dlinear", "nlinear")


def windows(n: int = 8, features: int = FEATURES, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, LOOKBACK, features)).astype("float32")


def predict(model, x: np.ndarray) -> np.ndarray:
    return _backend.predict(model, x)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("features", [1, FEATURES])
@pytest.mark.parametrize("covariates", [True, False])
def test_shapes_and_covariate_weights(family, features, covariates):
    model = models.build(family, LOOKBACK, features, HORIZON, {"covariates": covariates})
    assert predict(model, windows(5, features)).shape == (5, HORIZON)
    covariate_kernels = [w for w in model.weights if "covariate" in w.path]
    if covariates and features > 1:
        assert [tuple(w.shape) for w in covariate_kernels] == [(LOOKBACK * (features - 1), HORIZON)]
    else:
        assert covariate_kernels == []
    wrapped = models.build(family, LOOKBACK, features, HORIZON, window_norm=True)
    assert predict(wrapped, windows(5, features)).shape == (5, HORIZON)


@pytest.mark.parametrize("family", FAMILIES)
def test_one_layer_after_the_input_so_the_torch_loop_calls_it_directly(family):
    assert _layer_chain(models.build(family, LOOKBACK, FEATURES, HORIZON)) is not None


@pytest.mark.parametrize("kernel", [1, 2, 5, 24, 25, 49])  # 49 > lookback: edges dominate
def test_decomposition_is_a_moving_average_with_edges_replicated(kernel):
    series = windows(4, features=1)[:, :, 0]  # [4, L]
    # Oracle: pad with the edge values (numpy), then a trailing rolling mean (pandas).
    before, after = kernel // 2, kernel - 1 - kernel // 2
    padded = np.pad(series.astype("float64"), ((0, 0), (before, after)), mode="edge")
    expected = pd.DataFrame(padded.T).rolling(kernel).mean().to_numpy().T[:, kernel - 1 :]

    layer = DLinearLayer(HORIZON, moving_avg=kernel)
    layer.build((None, LOOKBACK, 1))
    trend, remainder = map(ops.convert_to_numpy, layer.decompose(ops.convert_to_tensor(series)))
    np.testing.assert_allclose(trend, expected, atol=1e-5)
    np.testing.assert_allclose(remainder, series - expected, atol=1e-5)
    # Away from the edges it is pandas' centred rolling mean, for odd and even kernels alike.
    centred = pd.DataFrame(series.T).rolling(kernel, center=True).mean().to_numpy().T
    inside = ~np.isnan(centred)
    np.testing.assert_allclose(trend[inside], centred[inside], atol=1e-5)


def test_averaging_matrix_rows_sum_to_one_per_column():
    np.testing.assert_allclose(averaging_matrix(30, 7).sum(axis=0), 1.0)
    np.testing.assert_allclose(averaging_matrix(30, 1), np.eye(30))


def test_dlinear_forward_matches_numpy():
    model = randomised(models.build("dlinear", LOOKBACK, FEATURES, HORIZON, {"moving_avg": 7}))
    x = windows()
    w = {v.path.split("/")[-1]: np.asarray(v.numpy(), "float64") for v in model.weights}
    target = x[:, :, 0].astype("float64")
    before = 7 // 2
    padded = np.pad(target, ((0, 0), (before, before)), mode="edge")
    trend = np.stack([padded[:, i : i + LOOKBACK] for i in range(7)]).mean(axis=0)
    expected = (
        trend @ w["trend_kernel"]
        + w["trend_bias"]
        + (target - trend) @ w["remainder_kernel"]
        + w["remainder_bias"]
        + x[:, :, 1:].reshape(len(x), -1) @ w["covariate_kernel"]  # lag-major, as flattened
    )
    np.testing.assert_allclose(predict(model, x), expected, atol=1e-4)


def test_nlinear_with_zero_weights_is_the_naive_forecast():
    x = windows()
    naive = np.repeat(x[:, -1:, 0], HORIZON, axis=1)
    model = models.build("nlinear", LOOKBACK, FEATURES, HORIZON)
    np.testing.assert_allclose(predict(model, x), naive, atol=1e-6)  # where training starts
    randomised(model).set_weights([np.zeros(w.shape, "float32") for w in model.weights])
    np.testing.assert_allclose(predict(model, x), naive, atol=1e-6)


def test_nlinear_shifts_its_forecast_with_the_target_history():
    model = randomised(models.build("nlinear", LOOKBACK, FEATURES, HORIZON))
    x = windows()
    shifted = x.copy()
    shifted[:, :, 0] += 3.5  # the target only: covariates keep their values
    np.testing.assert_allclose(predict(model, shifted), predict(model, x) + 3.5, atol=1e-4)


@pytest.mark.parametrize("family", FAMILIES)
def test_covariates_start_at_zero(family):
    """A fresh covariate model forecasts what the target-only model with the same target
    weights forecasts: adding covariates changes where training can go, not where it starts."""
    alone = randomised(models.build(family, LOOKBACK, 1, HORIZON))
    joint = models.build(family, LOOKBACK, FEATURES, HORIZON)
    joint.set_weights(alone.get_weights() + [np.zeros(joint.weights[-1].shape, "float32")])
    x = windows()
    np.testing.assert_allclose(predict(joint, x), predict(alone, x[:, :, :1]), atol=1e-6)


@pytest.mark.parametrize(
    ("family", "options", "named"),
    [
        ("dlinear", {"moving_avg": 0}, "moving_avg"),
        ("dlinear", {"moving_avg": 2.5}, "moving_avg"),
        ("dlinear", {"moving_avg": True}, "moving_avg"),
        ("nlinear", {"covariates": "yes"}, "covariates"),
        ("nlinear", {"moving_avg": 25}, "moving_avg"),  # DLinear's option, not NLinear's
    ],
)
def test_options_are_validated(family, options, named):
    with pytest.raises(ConfigError, match=named):
        models.configure(family, options)


def test_declared_options_and_capabilities():
    assert models.configure("dlinear").config == {"moving_avg": 25, "covariates": True}
    assert models.configure("nlinear").config == {"covariates": True}
    assert models.spec("dlinear").default_search() == {
        "moving_avg": [13, 25, 49],
        "covariates": [True, False],
    }
    for family in FAMILIES:
        spec = models.spec(family)
        assert (spec.dropout_sampling, spec.attention) == (False, False)
        assert spec.outputs == ("point", "quantile", "distribution")


@pytest.mark.backends
@pytest.mark.parametrize("family", FAMILIES)
def test_saved_model_forecasts_the_same_under_tensorflow_and_jax(family, tmp_path):
    model = randomised(models.build(family, LOOKBACK, FEATURES, HORIZON))
    assert_portable(model, windows(), tmp_path)
