"""tft: its blocks against numpy oracles, the known-future seam (calendar rows only, nothing
observed leaks), options, portability, and the interpretation on planted drivers."""

from __future__ import annotations

import json

import keras
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

import deepcast as dc
from deepcast import _backend, models
from deepcast.errors import ConfigError
from deepcast.models import heads
from deepcast.models.tft import (
    GatedResidualNetwork,
    InterpretableAttention,
    VariableGRNs,
    build_tft,
    interpretation,
)

from .conftest import assert_portable, randomised

LOOKBACK, FEATURES, HORIZON = 12, 4, 3
KNOWN = [2, 3]


def windows(n: int = 6, seed: int = 0) -> np.ndarray:
    return (
        np.random.default_rng(seed).normal(size=(n, LOOKBACK + HORIZON, FEATURES)).astype("float32")
    )


def _np(tensor) -> np.ndarray:
    return keras.ops.convert_to_numpy(tensor)


# -- blocks against numpy ----------------------------------------------------------------------
def test_grn_is_layernorm_of_skip_plus_gated_elu_path():
    layer = GatedResidualNetwork(5, name="grn")
    x = np.random.default_rng(1).normal(size=(2, 3, 4)).astype("float32")
    out = _np(layer(x))
    randomised(layer, seed=2)
    out = _np(layer(x))
    w = {v.path.split("/", 1)[1]: _np(v) for v in layer.weights}

    def dense(name, h):
        return h @ w[f"{name}/kernel"] + w[f"{name}/bias"]

    hidden = dense("hidden", x)
    hidden = np.where(hidden > 0, hidden, np.expm1(hidden))  # ELU
    inner = dense("inner", hidden)
    gated = dense("glu_value", inner) / (1 + np.exp(-dense("glu_gate", inner)))
    z = dense("skip", x) + gated  # widths differ (4 -> 5): the skip is a projection
    mean, var = z.mean(-1, keepdims=True), z.var(-1, keepdims=True)
    expected = (z - mean) / np.sqrt(var + 1e-5) * w["norm/gamma"] + w["norm/beta"]
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


def test_variable_grns_are_one_grn_per_variable():
    variables, units = 3, 4
    layer = VariableGRNs(variables, units, name="grns")
    x = np.random.default_rng(5).normal(size=(2, 5, variables, units)).astype("float32")
    layer(x)
    randomised(layer, seed=6)
    out = _np(layer(x))
    w = {v.path.split("/", 1)[1]: _np(v) for v in layer.weights}
    for i in range(variables):  # variable i: its own slice of every weight, as a plain GRN

        def dense(name, h, i=i):
            return h @ w[f"{name}_kernel"][i] + w[f"{name}_bias"][i]

        hidden = dense("hidden", x[:, :, i])
        hidden = np.where(hidden > 0, hidden, np.expm1(hidden))
        inner = dense("inner", hidden)
        z = x[:, :, i] + dense("value", inner) / (1 + np.exp(-dense("gate", inner)))
        expected = (z - z.mean(-1, keepdims=True)) / np.sqrt(z.var(-1, keepdims=True) + 1e-5)
        expected = expected * w["gamma"][i] + w["beta"][i]
        np.testing.assert_allclose(out[:, :, i], expected, rtol=1e-4, atol=1e-4)


def test_attention_is_causal_head_averaged_and_matches_numpy():
    units, heads_, lookback, steps = 8, 2, 5, 3
    layer = InterpretableAttention(units, heads_, lookback, name="attention")
    rng = np.random.default_rng(3)
    memory = rng.normal(size=(2, lookback + steps, units)).astype("float32")
    queries = memory[:, lookback:]
    layer(queries, memory)
    randomised(layer, seed=4)
    out = _np(layer(queries, memory))
    w = {v.path.split("/", 1)[1]: _np(v) for v in layer.weights}

    q = np.einsum("bqd,hdk->bhqk", queries, w["query_kernel"])
    k = np.einsum("bmd,hdk->bhmk", memory, w["key_kernel"])
    scores = np.einsum("bhqk,bhmk->bhqm", q, k) / np.sqrt(units // heads_)
    visible = np.arange(lookback + steps)[None, :] <= np.arange(steps)[:, None] + lookback
    scores = np.where(visible, scores, -np.inf)
    attention = np.exp(scores - scores.max(-1, keepdims=True))
    attention = (attention / attention.sum(-1, keepdims=True)).mean(axis=1)  # [B, H, M]
    values = memory @ w["value/kernel"] + w["value/bias"]
    expected = attention @ values @ w["output/kernel"] + w["output/bias"]
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)
    # step j never reads a later step: the last positions are masked for the first steps
    assert np.all(attention[:, 0, lookback + 1 :] == 0)


# -- the model -----------------------------------------------------------------------------------
def test_output_shape_options_and_registry():
    model = build_tft(LOOKBACK, FEATURES, HORIZON * 2, horizon=HORIZON, future_columns=KNOWN)
    assert model.input_shape == (None, LOOKBACK + HORIZON, FEATURES)
    assert model.output_shape == (None, HORIZON * 2)
    assert "tft" in dc.models.names()
    spec = models.spec("tft")
    assert spec.future_inputs and spec.attention and spec.dropout_sampling
    with pytest.raises(ConfigError, match="multiple of heads"):
        dc.models.TFT(hidden=30, heads=4)
    with pytest.raises(ConfigError, match="known-future"):
        models.build("tft", LOOKBACK, FEATURES, HORIZON)  # no calendar columns to read


def test_observed_columns_of_the_forecast_steps_never_reach_the_model():
    """The known-future rows hold calendar values only: rewriting the observed columns of the
    forecast steps (here made equal to the future target, a perfect leak) changes nothing."""
    model = randomised(
        models.build("tft", LOOKBACK, FEATURES, HORIZON, future_columns=KNOWN, baseline_start=True)
    )
    x = windows()
    leaked = x.copy()
    leaked[:, LOOKBACK:, :2] = np.random.default_rng(9).normal(size=(len(x), HORIZON, 2)) * 10
    np.testing.assert_array_equal(_backend.predict(model, x), _backend.predict(model, leaked))
    # ... while the calendar columns of those rows are read
    moved = x.copy()
    moved[:, LOOKBACK:, KNOWN] += 1.0
    assert not np.allclose(_backend.predict(model, x), _backend.predict(model, moved))


@pytest.fixture(scope="module")
def fitted():
    """A small tft on the planted synthetic series plus a pure-noise column."""
    df = dc.datasets.synthetic(seed=0, n_steps=1500)
    df["noise"] = np.random.default_rng(1).standard_normal(len(df))
    train, val, test = dc.split(df)
    # Without the baseline start: its selection weights then describe the series, not what
    # the ridge start left over (docs/models.md).
    f = dc.Forecaster(
        target="y", lookback=24, horizon=2, model=dc.models.TFT(hidden=16, heads=2),
        learning_rate=3e-3, seed=0, baseline_start=False,
    )  # fmt: skip
    f.fit(train, validation=val, epochs=8, batch_size=64, verbose=False)
    return f, df, test


@pytest.mark.slow
def test_windows_carry_the_forecast_steps_calendar_and_no_observation(fitted):
    f, df, test = fitted
    frame = f._frame(test, "test")
    x = f._input_windows(frame)
    lookback, horizon = f.lookback, f.horizon
    assert x.shape == (len(frame) - lookback + 1, lookback + horizon, len(f.feature_names_))
    known = f.future_columns_
    observed = [i for i in range(x.shape[2]) if i not in known]
    assert [f.feature_names_[i] for i in known] == ["hour_sin", "hour_cos", "dow_sin", "dow_cos"]
    assert np.all(x[:, lookback:, observed] == 0)
    # the calendar of step h of window i is that of row i + lookback + h - 1, re-derived here,
    # including the steps after the data's last row
    times = frame.index.append(pd.date_range(frame.index[-1], periods=horizon + 1, freq="h")[1:])
    hours = np.asarray(times.hour, dtype=float)
    rows = np.arange(len(x))[:, None] + lookback + np.arange(horizon)[None, :]
    scaled = (np.sin(2 * np.pi * hours / 24) - f.scaler_.mean[known[0]]) / f.scaler_.scale[known[0]]
    np.testing.assert_allclose(x[:, lookback:, known[0]], scaled[rows], atol=1e-5)
    # forecasts made before a change in the observed data do not move with it
    changed = test.copy()
    changed.iloc[-horizon:, :] = changed.iloc[-horizon:, :] * 5
    before, after = f.predict(test), f.predict(changed)
    pd.testing.assert_frame_equal(before.iloc[: -2 * horizon], after.iloc[: -2 * horizon])


@pytest.mark.slow
def test_interpretation_sums_to_one_and_finds_the_planted_drivers(fitted, tmp_path):
    f, _, test = fitted
    found = f.interpret(test)
    assert sum(found.encoder_variables.values()) == pytest.approx(1.0, abs=1e-4)
    assert sum(found.decoder_variables.values()) == pytest.approx(1.0, abs=1e-4)
    assert set(found.decoder_variables) == {"hour_sin", "hour_cos", "dow_sin", "dow_cos"}
    assert found.attention.shape == (f.horizon, f.lookback)
    np.testing.assert_allclose(
        found.attention.sum(axis=1) + found.attention_to_steps.sum(axis=1), 1.0, atol=1e-4
    )
    assert found.attention_to_steps[0, 1] == 0  # step 1 cannot read step 2
    # x1 drives y most (data/synthetic.py); a column of pure noise drives nothing. After 8
    # epochs x2 is not yet told apart from the noise: benchmarks/tft_selection.py measures
    # both drivers on fully trained models over three seeds.
    weights = found.encoder_variables
    assert weights["x1"] > 2 * weights["noise"], weights
    observed = {k: v for k, v in weights.items() if k in ("y", "x1", "x2", "noise")}
    assert max(observed, key=observed.get) == "x1", weights
    assert isinstance(found.plot(), Figure)
    json.dumps(found.to_dict())
    # the record is of the forecast itself: the same weights as the model function
    x = f._input_windows(f._frame(test, "test"))
    direct = interpretation(f.model_, x)["past"].reshape(-1, len(f.feature_names_)).mean(axis=0)
    np.testing.assert_allclose(list(weights.values()), direct, atol=1e-6)


@pytest.mark.slow
def test_interpret_refuses_other_models(fitted):
    _, df, _ = fitted
    f = dc.Forecaster("y", lookback=12, model="nlinear").fit(df.iloc[:300], epochs=1)
    with pytest.raises(ConfigError, match="Temporal Fusion Transformer"):
        f.interpret(df.iloc[300:400])


@pytest.mark.slow
def test_quantile_head_save_load_round_trip(tmp_path):
    df = dc.datasets.synthetic(seed=1, n_steps=400)
    f = dc.Forecaster(
        "y", lookback=12, horizon=3, model=dc.models.TFT(hidden=8, heads=2), loss="quantile"
    ).fit(df.iloc[:300], validation=df.iloc[300:350], epochs=1)
    assert f.head.kind == "quantile"
    f.save(tmp_path / "m")
    g = dc.Forecaster.load(tmp_path / "m")
    np.testing.assert_allclose(
        g.predict(df.iloc[320:], levels=[80]).to_numpy(),
        f.predict(df.iloc[320:], levels=[80]).to_numpy(),
        atol=1e-6,
    )


@pytest.mark.backends
def test_portable_across_backends_with_its_interpretation(tmp_path):
    model = randomised(
        models.build(
            "tft", LOOKBACK, FEATURES, HORIZON, future_columns=KNOWN,
            head=heads.Head("quantile", (0.1, 0.5, 0.9)), baseline_start=True, window_norm=True,
        )
    )  # fmt: skip
    assert_portable(model, windows(), tmp_path, also="deepcast.models.tft:attention_weights")
