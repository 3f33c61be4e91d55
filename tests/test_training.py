"""Training loop behaviour: early stopping with best weights, Ctrl-C, seeds."""

import keras
import numpy as np
import pandas as pd
import pytest
import torch

import deepcast as dc
from deepcast import _backend
from deepcast._backend import flushing_subnormals
from deepcast.errors import ConfigError
from deepcast.models.lstm import build_lstm
from deepcast.training import train


def noise_problem(n: int, seed: int):
    """Targets that are pure noise: a model can only overfit, so validation loss turns up."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 8, 2)).astype("float32"), rng.normal(size=(n, 1)).astype("float32")


def val_loss(model, x, y) -> float:
    return float(np.mean((keras.ops.convert_to_numpy(model(x)) - y) ** 2))


def test_early_stopping_restores_the_best_weights():
    _backend.seed_everything(0)
    model = build_lstm(8, 2, 1, units=32, layers=1, dropout=0.0)
    x, y = noise_problem(96, 0)
    xv, yv = noise_problem(64, 1)
    history = train(
        model,
        x,
        y,
        validation=(xv, yv),
        epochs=60,
        batch_size=16,
        learning_rate=0.01,
        patience=3,
        verbose=False,
    )
    losses = [e["val_loss"] for e in history.epochs]
    assert history.stopped_early and len(losses) < 60
    assert history.best_epoch == int(np.argmin(losses)) + 1
    assert losses[-1] > min(losses)  # the last epoch was worse than the best...
    assert val_loss(model, xv, yv) == pytest.approx(min(losses), rel=1e-4)  # ...and is undone


@pytest.mark.skipif(_backend.name() != "torch", reason="torch's own training loop")
@pytest.mark.parametrize("caller_flushes", [False, True])
def test_torch_trains_with_subnormals_flushed_and_restores_the_callers_setting(caller_flushes):
    """Subnormals slow CPU arithmetic many times over; training flushes them, and leaves the
    thread as it found it."""
    seen = []

    def probe(record, checkpoint):  # runs inside the training loop, after each epoch
        seen.append(flushing_subnormals())

    torch.set_flush_denormal(caller_flushes)
    try:
        assert flushing_subnormals() == caller_flushes
        model = build_lstm(8, 2, 1, units=8, layers=1, dropout=0.0)
        x, y = noise_problem(64, 0)
        train(model, x, y, epochs=2, batch_size=16, verbose=False, on_epoch=probe)
        assert seen == [True, True]
        assert flushing_subnormals() == caller_flushes
    finally:
        torch.set_flush_denormal(False)


def test_without_validation_runs_exactly_the_epochs_asked():
    _backend.seed_everything(0)
    model = build_lstm(8, 2, 1, units=8, layers=1, dropout=0.0)
    x, y = noise_problem(64, 0)
    history = train(model, x, y, epochs=3, batch_size=16, verbose=False)
    assert [e["epoch"] for e in history.epochs] == [1, 2, 3]
    assert not history.stopped_early and "val_loss" not in history.epochs[0]


def test_ctrl_c_ends_training_cleanly_and_keeps_the_best_weights(monkeypatch):
    _backend.seed_everything(0)
    model = build_lstm(8, 2, 1, units=16, layers=1, dropout=0.0)
    x, y = noise_problem(64, 0)
    xv, yv = noise_problem(32, 1)
    steps = {"n": 0}
    real_step = torch.optim.Adam.step

    def step_then_interrupt(self, *args, **kwargs):
        steps["n"] += 1
        if steps["n"] == 10:  # during the third epoch (4 batches per epoch)
            raise KeyboardInterrupt
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", step_then_interrupt)
    history = train(model, x, y, validation=(xv, yv), epochs=50, batch_size=16, verbose=False)
    assert history.interrupted and len(history.epochs) == 2
    best = min(e["val_loss"] for e in history.epochs)
    assert val_loss(model, xv, yv) == pytest.approx(best, rel=1e-4)


def test_progress_bar_reports_epochs_and_losses(capsys):
    _backend.seed_everything(0)
    model = build_lstm(8, 2, 1, units=8, layers=1, dropout=0.0)
    x, y = noise_problem(64, 0)
    train(model, x, y, validation=(x, y), epochs=2, batch_size=32, verbose=True)
    err = capsys.readouterr().err
    assert "training" in err and "2/2" in err and "val_loss" in err


@pytest.mark.parametrize("loss, window_norm", [("mae", False), ("huber", False), ("mse", True)])
def test_the_chosen_loss_is_what_training_minimises_and_reports(loss, window_norm, small_parts):
    # With window_norm (two-input and two-output layers) training runs the whole graph; the
    # reported loss must still be the one `predict` gives.
    train_part, val, _ = small_parts
    f = dc.Forecaster(
        "y", lookback=24, units=8, layers=1, loss=loss, window_norm=window_norm,
        baseline_start=False,  # the trained network itself, not a gate closed after training
    )  # fmt: skip
    f.fit(train_part, validation=val, epochs=2, verbose=False)
    # Recompute the best epoch's validation loss from the restored weights, by hand.
    joined = pd.concat([train_part.iloc[-24:], val])
    x, y = f._windows(f._validated(joined, "validation"))
    error = np.asarray(f.model.predict(x, verbose=0)) - y
    expected = {
        "mae": np.abs(error),
        "huber": np.where(np.abs(error) <= 1, 0.5 * error**2, np.abs(error) - 0.5),
        "mse": error**2,
    }[loss]
    best = min(e["val_loss"] for e in f.history_.epochs)
    assert best == pytest.approx(expected.mean(), rel=1e-4)


def test_unknown_loss_is_named():
    with pytest.raises(ConfigError, match="loss must be one of mse, mae, huber"):
        dc.Forecaster("y", loss="l1").check_params()


def test_the_fast_layer_chain_is_taken_only_when_it_is_the_whole_model():
    from deepcast.training import _layer_chain

    plain = build_lstm(8, 2, 1, units=4, layers=2)
    assert [layer.name for layer in _layer_chain(plain)] == ["lstm_1", "lstm_2", "forecast"]
    # An operation before the first layer or after the last is not a layer; calling the
    # layers one by one would silently skip it.
    inputs = keras.Input(shape=(8, 2))
    hidden = keras.layers.LSTM(4)(inputs - keras.ops.mean(inputs, axis=1, keepdims=True))
    centred = keras.Model(inputs, keras.layers.Dense(1)(hidden))
    outputs = keras.layers.Dense(1)(keras.layers.LSTM(4)(inputs)) * 2.0
    scaled = keras.Model(inputs, outputs)
    assert _layer_chain(centred) is None and _layer_chain(scaled) is None


def expected_rates(val_losses, start: float, lr_patience: int) -> list[float]:
    """The rate each epoch should run at, re-derived by hand from the recorded losses: halve
    after every `lr_patience` epochs in a row without a new lowest validation loss."""
    rates, rate, best, waited = [], start, np.inf, 0
    for loss in val_losses:
        rates.append(rate)
        if loss < best:
            best, waited = loss, 0
            continue
        waited += 1
        if waited % lr_patience == 0:
            rate /= 2
    return rates


def lr_plateau_run(lr_patience: int):
    _backend.seed_everything(0)
    model = build_lstm(8, 2, 1, units=16, layers=1, dropout=0.0)
    x, y = noise_problem(96, 0)
    xv, yv = noise_problem(64, 1)
    history = train(
        model,
        x,
        y,
        validation=(xv, yv),
        epochs=40,
        batch_size=16,
        learning_rate=0.01,
        patience=7,
        lr_patience=lr_patience,
        verbose=False,
    )
    return model, history, (xv, yv)


@pytest.mark.parametrize("lr_patience", [1, 2, 3])
def test_the_learning_rate_halves_after_lr_patience_epochs_without_improvement(lr_patience):
    model, history, (xv, yv) = lr_plateau_run(lr_patience)
    losses = [e["val_loss"] for e in history.epochs]
    rates = [e["lr"] for e in history.epochs]
    assert rates == pytest.approx(expected_rates(losses, 0.01, lr_patience), rel=1e-9)
    assert min(rates) <= 0.01 / 4  # the plateau rule really fired, more than once
    # Early stopping keeps its own count: 7 epochs without improvement, best weights restored.
    assert history.stopped_early and len(losses) - history.best_epoch == 7
    assert val_loss(model, xv, yv) == pytest.approx(min(losses), rel=1e-4)


def test_without_lr_patience_the_rate_is_constant_and_not_recorded():
    _, history, _ = lr_plateau_run(None)
    assert "lr" not in history.epochs[0]


def test_lr_patience_is_checked():
    with pytest.raises(ConfigError, match="lr_patience must be a positive integer or None"):
        dc.Forecaster("y", lr_patience=0).check_params()
    dc.Forecaster("y", lr_patience=None).check_params()


KERAS_PLATEAU_RUN = """
import json, sys
import numpy as np
import keras
from deepcast import _backend
from deepcast.models.lstm import build_lstm
from deepcast.training import train
assert keras.backend.backend() == sys.argv[1]
rng = np.random.default_rng(0)
x, y = rng.normal(size=(96, 8, 2)).astype("float32"), rng.normal(size=(96, 1)).astype("float32")
xv, yv = rng.normal(size=(64, 8, 2)).astype("float32"), rng.normal(size=(64, 1)).astype("float32")
_backend.seed_everything(0)
history = train(build_lstm(8, 2, 1, units=16, layers=1, dropout=0.0), x, y, validation=(xv, yv),
                epochs=25, batch_size=16, learning_rate=0.01, patience=7, lr_patience=2,
                verbose=False)
limited = train(build_lstm(8, 2, 1, units=4, layers=1), x, y, epochs=9, time_limit=0.0,
                verbose=False)
print(json.dumps([len(limited.epochs), limited.out_of_time]))
print(json.dumps(history.epochs))
"""


@pytest.mark.backends
def test_keras_fit_halves_the_learning_rate_by_the_same_rule():
    # TensorFlow and JAX train through Model.fit and Keras' own ReduceLROnPlateau (and a
    # callback for the time limit).
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(
        [sys.executable, "-c", KERAS_PLATEAU_RUN, "tensorflow"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    epochs = json.loads(proc.stdout.strip().splitlines()[-1])
    assert json.loads(proc.stdout.strip().splitlines()[-2]) == [1, True]  # the time limit too
    losses, rates = [e["val_loss"] for e in epochs], [e["lr"] for e in epochs]
    assert rates == pytest.approx(expected_rates(losses, 0.01, 2), rel=1e-6)
    assert min(rates) <= 0.01 / 4


def test_a_time_limit_lets_the_epoch_under_way_finish_and_keeps_the_best_weights():
    _backend.seed_everything(0)
    model = build_lstm(8, 2, 1, units=8, layers=1, dropout=0.0)
    x, y = noise_problem(64, 0)
    history = train(model, x, y, validation=(x, y), epochs=20, time_limit=0.0, verbose=False)
    assert history.out_of_time and len(history.epochs) == 1 and history.best_epoch == 1
    unlimited = train(model, x, y, epochs=3, verbose=False)
    assert not unlimited.out_of_time and len(unlimited.epochs) == 3


# -- the per-epoch report hook and checkpoints (tuning engines) ------------------------------
def checkpoint_problem(dropout: float = 0.0):
    _backend.seed_everything(0)
    model = build_lstm(8, 2, 1, units=8, layers=1, dropout=dropout)
    return model, noise_problem(64, 0), noise_problem(32, 1)


def test_a_hook_returning_stop_ends_training_after_that_epoch():
    model, (x, y), validation = checkpoint_problem()
    seen = []

    def hook(record, checkpoint):
        seen.append(record["epoch"])
        return "stop" if record["epoch"] == 2 else None

    history = train(model, x, y, validation=validation, epochs=10, patience=50, on_epoch=hook)
    assert seen == [1, 2] and len(history.epochs) == 2
    assert history.pruned and not history.stopped_early


@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_training_restored_from_a_checkpoint_continues_exactly_as_the_straight_run(
    dropout, tmp_path
):
    from deepcast.training import Checkpoint

    settings = {"epochs": 5, "batch_size": 16, "learning_rate": 0.01, "patience": 50, "seed": 3}
    model, (x, y), validation = checkpoint_problem(dropout)
    straight = train(model, x, y, validation=validation, **settings)
    final = [np.array(v.value.detach()) for v in model.variables]

    saved = {}

    def keep(record, checkpoint):
        if record["epoch"] == 2:
            saved["ckpt"] = checkpoint().save(tmp_path / "ckpt")
            return "stop"

    model, (x, y), validation = checkpoint_problem(dropout)
    train(model, x, y, validation=validation, on_epoch=keep, **settings)
    ckpt = Checkpoint.load(saved["ckpt"])
    assert ckpt.epoch == 2 and ckpt.optimizer  # Adam's moments and step travel too

    other, _, _ = checkpoint_problem(dropout)  # a fresh model: the checkpoint is all it knows
    _backend.seed_everything(99)
    resumed = train(other, x, y, validation=validation, restore=ckpt, **settings)
    assert [e["epoch"] for e in resumed.epochs] == [3, 4, 5] and resumed.resumed_from == 2
    assert [e["val_loss"] for e in resumed.epochs] == [e["val_loss"] for e in straight.epochs[2:]]
    for a, b in zip(final, [np.array(v.value.detach()) for v in other.variables]):
        np.testing.assert_array_equal(a, b)


def test_hooks_reach_train_through_forecaster_fit(small_parts):
    from deepcast.training import hooks

    train_part, val_part, _ = small_parts
    epochs = []
    forecaster = dc.Forecaster(target="y", lookback=12, units=8, layers=1)
    with hooks(on_epoch=lambda record, checkpoint: epochs.append(record["epoch"]) or "stop"):
        forecaster.fit(train_part, validation=val_part, epochs=10, verbose=False)
    assert epochs == [1] and forecaster.history_.pruned
