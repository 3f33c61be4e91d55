"""Every registered model family through the same seam: declared options, fit, Integrated
Gradients, backtests, tuning, saving, and the capabilities it declares. A new family is
covered here by registering it; a toy family registered in a test shows that is all it takes."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from sklearn.metrics import mean_absolute_error

import deepcast as dc
from deepcast import models
from deepcast.cli import main
from deepcast.errors import ConfigError
from deepcast.models import heads
from deepcast.models.spec import ModelSpec, Option
from deepcast.models.table import table

FAMILIES = models.names()
SETTINGS = {"lookback": 24, "horizon": 2, "seed": 0}


@pytest.fixture(scope="module")
def parts():
    df = dc.datasets.synthetic(n_steps=900, seed=3)
    return dc.split(df, val=0.15, test=0.15)


@pytest.fixture(scope="module")
def fitted(parts):
    """One small fitted forecaster per family (3 epochs), shared by the tests below."""
    train, val, _ = parts
    return {
        name: dc.Forecaster(target="y", model=name, **SETTINGS).fit(
            train, validation=val, epochs=3, batch_size=64, verbose=False
        )
        for name in FAMILIES
    }


def test_the_registry_holds_the_six_families_in_order():
    assert FAMILIES[:6] == ["lstm", "bilstm", "cnn_lstm", "dlinear", "nlinear", "transformer"]


def test_models_command_lists_every_family_with_every_option(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in FAMILIES:
        family = models.spec(name)
        assert f"{name}  {family.summary}" in out
        block = out.split(f"{name}  {family.summary}")[1].split("\n\n")[0]
        for option in family.options:
            row = next(line for line in block.splitlines() if line.split()[:1] == [option.name])
            assert option.valid_range() in row


def test_a_forecaster_left_at_its_default_loss_trains_on_the_familys_own():
    assert dc.Forecaster("y", model="nbeats").training_loss == "mae"
    assert dc.Forecaster("y", model="nbeats", loss="mse").training_loss == "mse"  # asked for
    assert dc.Forecaster("y", model="lstm").training_loss == "huber"
    assert dc.Forecaster("y", model="tft").training_loss == "mae"
    assert dc.Forecaster("y", model="bilstm").training_loss == "mse"  # no loss of its own
    assert dc.Forecaster("y", model="lstm").get_params()["loss"] is None  # saved as left
    nbeats = next(b for b in table().split("\n\n") if b.startswith("nbeats "))
    assert "default loss mae" in nbeats.splitlines()[1]


@pytest.mark.parametrize("name", FAMILIES)
def test_options_are_validated_by_the_declaration(name):
    family = models.spec(name)
    with pytest.raises(ConfigError, match=f"{name} has no option 'nonsense'; its options"):
        models.configure(name, {"nonsense": 1})
    for option in family.options:
        if option.kind in (int, float) and option.low is not None:
            with pytest.raises(ConfigError, match=f"{option.name} must be"):
                models.configure(name, {option.name: option.low - 1})
    assert models.configure(name).config == {o.name: o.default for o in family.options}


def test_shorthand_sets_the_option_of_that_name_and_is_refused_where_there_is_none(parts):
    assert dc.Forecaster("y", model="cnn_lstm", units=16).configured_model().config["units"] == 16
    with pytest.raises(ConfigError, match="units=16 sets the model's option 'units'.*nlinear"):
        dc.Forecaster("y", model="nlinear", units=16).configured_model()
    configured = dc.Forecaster("y", model=models.BiLSTM(units=8), layers=1).configured_model()
    assert configured == models.BiLSTM(units=8, layers=1)


@pytest.mark.parametrize("name", FAMILIES)
def test_every_family_learns_and_is_explained_with_complete_attributions(name, fitted, parts):
    """IG's completeness (attributions sum to F(x) - F(baseline)) checked against the model
    called directly: an oracle independent of the attribution code."""
    forecaster = fitted[name]
    _, _, test = parts
    losses = [e["loss"] for e in forecaster.history_.epochs]
    assert losses[-1] < losses[0]  # it trained
    e = forecaster.explain(test, steps=128, max_windows=16, horizon_step=2)
    assert e.values.shape == (16, SETTINGS["lookback"], len(forecaster.feature_names_))
    x = np.asarray(e.inputs, dtype="float32")
    baseline = np.zeros_like(x) + np.asarray(e.baseline, dtype="float32")
    if forecaster.future_columns_ is not None:
        # Known-future rows follow the lookback; explained are the lookback rows, with the
        # forecast steps' calendar held at its values (known_future.py).
        full = forecaster._input_windows(forecaster._frame(test, "test"))[-16:]
        future = np.asarray(full[:, SETTINGS["lookback"] :], dtype="float32")
        x, baseline = (np.concatenate([part, future], axis=1) for part in (x, baseline))

    def step_2(windows):  # the point forecast of step 2 (a head's location: channel 0)
        out = keras.ops.convert_to_numpy(forecaster.model(windows))[:, 1]
        return out if out.ndim == 1 else out[:, 0]

    gap = step_2(x) - step_2(baseline)
    total = e.values.reshape(len(x), -1).sum(axis=1)
    np.testing.assert_allclose(total, gap, atol=0.02 * np.abs(gap).max() + 1e-4)


# Small members of each family, trained alone (no baseline start, which begins at the ridge
# and beats the naive already): each must find the planted lags within three epochs.
ALONE = {
    "lstm": models.LSTM(units=32, layers=1, dropout=0.0),
    "bilstm": models.BiLSTM(units=16, layers=1, dropout=0.0),
    "cnn_lstm": models.CNNLSTM(filters=16, units=32, layers=1, dropout=0.0),
    "dlinear": models.DLinear(),
    "nlinear": models.NLinear(),
    "transformer": models.Transformer(d_model=32, heads=2, layers=1, dropout=0.0),
}


@pytest.mark.parametrize("name", list(ALONE))
def test_every_family_alone_beats_the_naive_forecast(name):
    """Measured: 0.4-0.6 of the naive RMSE after three epochs; the bar is 0.8."""
    train, val, test = dc.split(dc.datasets.synthetic(seed=0), val=0.15, test=0.15)
    f = dc.Forecaster(
        target="y", lookback=48, horizon=4, model=ALONE[name], learning_rate=3e-3,
        baseline_start=False, seed=0,
    )  # fmt: skip
    f.fit(train, validation=val, epochs=3, batch_size=64, verbose=False)
    result = f.evaluate(test)
    assert result["rmse"] < 0.8 * result["baselines"]["naive"]["rmse"]


@pytest.mark.parametrize("name", FAMILIES)
def test_every_family_saves_and_loads_with_the_same_forecasts(name, fitted, parts, tmp_path):
    forecaster = fitted[name]
    _, _, test = parts
    loaded = dc.load(forecaster.save(tmp_path / name))
    assert loaded.model_name == name and loaded.configured_model() == forecaster.model_config_
    np.testing.assert_allclose(loaded.predict(test), forecaster.predict(test), rtol=1e-6)


@pytest.mark.parametrize("name", FAMILIES)
def test_every_family_declares_dropout_sampling_truthfully(name):
    """`dropout_sampling` promises forecasts that vary with training=True (Monte Carlo
    dropout) and never without it; a family without it is deterministic either way."""
    family = models.spec(name)
    options = {"dropout": 0.3} if "dropout" in family.option_names() else {}
    keras.utils.set_random_seed(0)
    known = {"future_columns": [2]} if family.future_inputs else {}  # column 2: a calendar one
    if "point" not in family.outputs:  # deepar: its own distribution head
        known["head"] = heads.for_loss(family.default_loss)
    model = models.build(name, 24, 3, 2, options, **known)
    rows = 24 + 2 if family.future_inputs else 24
    x = np.random.default_rng(0).normal(size=(16, rows, 3)).astype("float32")
    a, b = (keras.ops.convert_to_numpy(model(x, training=True)) for _ in range(2))
    c, d = (keras.ops.convert_to_numpy(model(x, training=False)) for _ in range(2))
    np.testing.assert_array_equal(c, d)
    assert (np.abs(a - b).max() > 1e-6) == family.dropout_sampling


@pytest.mark.slow
@pytest.mark.parametrize("name", FAMILIES)
def test_every_family_backtests_with_its_own_forecasts(name, parts):
    """Each fold's model MAE is the fold forecaster's own forecasts scored by scikit-learn."""
    df = dc.datasets.synthetic(n_steps=900, seed=3)
    result = dc.Forecaster(target="y", model=name, **SETTINGS).backtest(
        df, folds=2, fold_size=60, epochs=2, verbose=False
    )
    assert all(f.model_name == name for f in result.forecasters)
    lookback, horizon = SETTINGS["lookback"], SETTINGS["horizon"]
    for fold, forecaster in zip(result.folds, result.forecasters):
        start = int(np.searchsorted(df.index, np.datetime64(fold["test_start"])))
        stop = start + 60
        forecasts = forecaster.predict(df.iloc[start - lookback : stop]).to_numpy()
        n = stop - start - horizon + 1  # origins start-1 .. stop-horizon-1 have all targets
        y = df["y"].to_numpy()
        actual = np.stack([y[start + h : start + h + n] for h in range(horizon)], axis=1)
        expected = mean_absolute_error(actual.ravel(), forecasts[:n].ravel())
        assert fold["metrics"]["mae"] == pytest.approx(expected, rel=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("name", FAMILIES)
def test_every_family_tunes_over_its_own_declared_space(name, parts, tmp_path):
    train, val, _ = parts
    family = models.spec(name)
    result = dc.tune(
        train,
        val,
        target="y",
        directory=tmp_path / "tuning",
        forecaster_args={"model": name, "horizon": 2},
        max_trials=2,
        epochs=1,
        narrow={"lookback": [24], "batch_size": [64]},
    )
    own = set(family.default_search())
    assert own <= set(result.search_space.names)  # the family's declaration is the space
    assert len(result.completed) == 2
    args = result.best_forecaster_args()
    best = dc.Forecaster(**args).configured_model()
    assert {k: best.config[k] for k in own} == {k: result.best_hyperparameters()[k] for k in own}


class Toy(ModelSpec):
    """A family defined in a test: a scaled linear map of the window."""

    name = "toy"
    summary = "a test family: one dense layer"
    options = (
        Option("width", int, 4, "hidden width", low=1, search={"low": 2, "high": 8}),
        Option("activation", str, "linear", "hidden activation", choices=("linear", "relu")),
    )

    @staticmethod
    def builder(lookback, n_features, horizon, width=4, activation="linear"):
        inputs = keras.Input((lookback, n_features))
        x = keras.layers.Flatten()(inputs)
        x = keras.layers.Dense(width, activation=activation)(x)
        return keras.Model(inputs, keras.layers.Dense(horizon)(x), name="toy")


@pytest.fixture
def toy():
    models.register(Toy)
    try:
        yield Toy
    finally:
        models.unregister("toy")


def test_a_family_is_one_class_and_one_registration(toy, parts, tmp_path, capsys):
    train, val, test = parts
    assert main(["models"]) == 0
    assert "toy  a test family: one dense layer" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="activation must be one of linear, relu"):
        dc.Forecaster("y", model="toy", model_options={"activation": "tanh"}).fit(train)
    result = dc.tune(
        train,
        val,
        target="y",
        directory=tmp_path / "tuning",
        forecaster_args={"model": "toy", "horizon": 2},
        max_trials=2,
        epochs=1,
        narrow={"lookback": [24]},
    )
    assert "width" in result.search_space.names and len(result.completed) == 2
    f = dc.Forecaster(**result.best_forecaster_args()).fit(
        train, validation=val, epochs=1, verbose=False
    )
    loaded = dc.load(f.save(tmp_path / "toy"))
    assert loaded.model_config_ == f.model_config_
    np.testing.assert_allclose(loaded.predict(test), f.predict(test), rtol=1e-6)


def test_an_instance_configures_the_forecaster(parts):
    f = dc.Forecaster("y", lookback=24, model=models.LSTM(units=8, layers=1))
    assert f.get_params()["model"] == "lstm"
    assert f.get_params()["model_options"] == {"units": 8, "layers": 1, "dropout": 0.1}
    assert dc.Forecaster(**f.get_params()).configured_model() == models.LSTM(units=8, layers=1)


def test_the_declared_outputs_decide_which_heads_a_family_carries(toy, parts):
    """Any family built for [B, horizon] carries a quantile head (the toy included), and a
    family that declares only point outputs refuses one before training."""
    train, val, test = parts
    f = dc.Forecaster("y", lookback=24, horizon=2, model="toy", loss="quantile", seed=0)
    f.fit(train, validation=val, epochs=1, verbose=False)
    values = f.head.quantile_values(f._predict_params(f._input_windows(f._frame(test, "t"))))
    assert values.shape[-1] == 3 and np.all(np.diff(values, axis=-1) >= 0)

    class PointOnly(Toy):
        name = "point_only"
        outputs = ("point",)

    models.register(PointOnly)
    try:
        with pytest.raises(ConfigError, match="point_only has no quantile output"):
            dc.Forecaster("y", lookback=24, model="point_only", loss="quantile").fit(train)
    finally:
        models.unregister("point_only")
