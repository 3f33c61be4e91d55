"""A search's trials are compared on one loss: the loss they train on, whoever spelled it.
Since a Forecaster left at loss=None trains on its family's own loss (nbeats: MAE), a search
that tunes the family fixes the loss, and a search saved when "mse" was the default resumes
only where it would train on the same loss as before."""

import json

import pytest

import deepcast as dc
from deepcast.errors import ConfigError
from deepcast.tuning import checks
from deepcast.tuning.space import SearchSpace


def current(**forecaster_args) -> dict:
    return {
        "forecaster_args": forecaster_args,
        "training_loss": checks.training_loss(forecaster_args),
    }


def saved_when_mse_was_the_default(directory, **forecaster_args) -> None:
    """The settings file of a search saved before losses were per family (no training_loss)."""
    settings = {"engine": "keras_tuner", "forecaster_args": forecaster_args}
    (directory / checks.SETTINGS_FILE).write_text(json.dumps(settings), encoding="utf-8")


def test_an_old_search_that_spelled_out_mse_resumes_with_the_default_loss(tmp_path):
    saved_when_mse_was_the_default(tmp_path, model="bilstm", loss="mse")  # as the CLI wrote it
    checks.resumable(tmp_path, current(model="bilstm"), overwrite=False, started=True)


def test_an_old_lstm_search_trained_on_mse_is_not_continued_on_huber(tmp_path):
    saved_when_mse_was_the_default(tmp_path, model="lstm", loss="mse")
    with pytest.raises(ConfigError, match="different training_loss"):
        checks.resumable(tmp_path, current(model="lstm"), overwrite=False, started=True)
    checks.resumable(tmp_path, current(model="lstm", loss="mse"), overwrite=False, started=True)


def test_an_old_nbeats_search_trained_on_mse_is_not_continued_on_mae(tmp_path):
    saved_when_mse_was_the_default(tmp_path, model="nbeats")
    with pytest.raises(ConfigError, match="different training_loss"):
        checks.resumable(tmp_path, current(model="nbeats"), overwrite=False, started=True)
    checks.resumable(tmp_path, current(model="nbeats", loss="mse"), overwrite=False, started=True)


def test_a_search_over_families_trains_every_trial_on_one_loss(tmp_path):
    train, val, _ = dc.split(dc.datasets.synthetic(n_steps=500, seed=0), val=0.15, test=0.15)
    space = SearchSpace.from_json({"model": ["nlinear", "nbeats"], "lookback": [24]})
    result = dc.tune(
        train, val, target="y", directory=tmp_path, forecaster_args={"horizon": 2},
        search_space=space, max_trials=4, epochs=1, seed=0,
    )  # fmt: skip
    settings = json.loads((tmp_path / checks.SETTINGS_FILE).read_text(encoding="utf-8"))
    assert settings["training_loss"] == "mse" and settings["forecaster_args"]["loss"] == "mse"
    families = {t["hyperparameters"]["model"] for t in result.trials}
    assert families == {"nlinear", "nbeats"}  # both ranked, on the same loss
    assert dc.Forecaster(**result.best_forecaster_args()).training_loss == "mse"
