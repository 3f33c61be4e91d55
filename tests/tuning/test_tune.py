"""`tune` end to end with real (tiny) forecasters: every algorithm, resume, the best
configuration retrained, the report files, and clear errors."""

import json
import math
import struct

import keras
import pytest

import deepcast as dc
from deepcast.errors import ConfigError
from deepcast.tuning import ALGORITHMS, write_report

SMALL = {"lookback": [12, 24], "units": (8, 16), "layers": (1, 2), "batch_size": [32, 64]}


@pytest.fixture(scope="module")
def parts():
    train, val, _ = dc.split(dc.datasets.synthetic(n_steps=600, seed=0), val=0.15, test=0.15)
    return train, val


def small_tune(parts, directory, **kwargs):
    """A tiny search through the public entry point, `dc.tune`."""
    options = {
        "target": "y",
        "directory": directory,
        "forecaster_args": {"horizon": 1, "patience": 2},
        "narrow": SMALL,
        "max_trials": 2,
        "epochs": 2,
        "seed": 0,
    }
    return dc.tune(*parts, **{**options, **kwargs})


@pytest.fixture(scope="module")
def random_result(parts, tmp_path_factory):
    return small_tune(parts, tmp_path_factory.mktemp("run") / "tuning", max_trials=3, epochs=3)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_each_algorithm_records_its_trials(parts, tmp_path, algorithm):
    budget = {"random": 2, "bayesian": 3, "hyperband": 4}[algorithm]
    result = small_tune(parts, tmp_path, algorithm=algorithm, max_trials=budget, epochs=3)
    assert len(result.trials) == budget
    for trial in result.trials:
        assert trial["status"] == "COMPLETED"
        assert math.isfinite(trial["score"]) and trial["score"] > 0
        assert trial["hyperparameters"]["lookback"] in (12, 24)
        assert 8 <= trial["hyperparameters"]["units"] <= 16
    assert result.best["score"] == min(t["score"] for t in result.trials)
    if algorithm == "hyperband":  # 3 one-epoch trials, then the best of them for 3 epochs
        assert [t["epochs"] for t in result.trials] == [1, 1, 1, 3]


def test_resumed_search_keeps_earlier_trials_and_adds_the_missing_one(parts, tmp_path):
    first = small_tune(parts, tmp_path, max_trials=2)
    again = small_tune(parts, tmp_path, max_trials=3)
    keep = ("trial_id", "hyperparameters", "score", "status")
    assert [{k: t[k] for k in keep} for t in again.trials[:2]] == [
        {k: t[k] for k in keep} for t in first.trials
    ]
    assert len(again.trials) == 3 and again.trials[2]["status"] == "COMPLETED"
    # A different search in the same directory is refused, not silently mixed in.
    with pytest.raises(ConfigError, match="different algorithm.*--overwrite"):
        small_tune(parts, tmp_path, algorithm="bayesian", max_trials=3)
    fresh = small_tune(parts, tmp_path, max_trials=1, overwrite=True)
    assert len(fresh.trials) == 1


def test_the_final_model_is_built_with_the_best_trials_hyperparameters(parts, random_result):
    train, val = parts
    best = random_result.best["hyperparameters"]
    forecaster = dc.Forecaster(**random_result.best_forecaster_args())
    forecaster.fit(train, validation=val, **random_result.best_fit_args(), verbose=False)
    params = forecaster.get_params()
    for name in ("layers", "units", "dropout", "learning_rate", "lookback"):
        assert params[name] == best[name]
    assert random_result.best_fit_args()["batch_size"] == best["batch_size"]
    network = dc.models.core_model(forecaster.model)  # inside the baseline start's wrapper
    lstms = [layer for layer in network.layers if isinstance(layer, keras.layers.LSTM)]
    assert len(lstms) == best["layers"]
    assert {layer.units for layer in lstms} == {best["units"]}
    assert forecaster.model.input_shape == (None, best["lookback"], 3)
    # Same seed, same configuration, same training: the retrained model is the best trial's.
    retrained = min(e["val_loss"] for e in forecaster.history_.epochs)
    assert retrained == pytest.approx(random_result.best["score"], rel=1e-4)


def test_same_seed_same_trials(parts, tmp_path, random_result):
    again = small_tune(parts, tmp_path, max_trials=3, epochs=3)
    assert [t["hyperparameters"] for t in again.trials] == [
        t["hyperparameters"] for t in random_result.trials
    ]
    assert [t["score"] for t in again.trials] == pytest.approx(
        [t["score"] for t in random_result.trials], rel=1e-4
    )


def test_report_files(random_result, tmp_path):
    json_path, png_path = write_report(random_result, tmp_path)
    report = json.loads(json_path.read_text())
    assert report["algorithm"] == "random" and report["n_trials"] == 3
    for trial in report["trials"]:
        assert {"trial_id", "hyperparameters", "score", "status", "seconds"} <= set(trial)
        assert set(trial["hyperparameters"]) == set(SMALL) | {"dropout", "learning_rate"}
    assert report["best"]["trial_id"] == random_result.best["trial_id"]
    assert report["best_forecaster_args"]["target"] == "y"
    assert report["search_space"]["lookback"] == {"type": "choice", "values": [12, 24]}
    head = png_path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", head[16:24])
    assert width > 600 and height > 400


def test_table_lists_the_top_trials_best_first(random_result):
    lines = random_result.table(k=2).splitlines()
    assert lines[0].startswith("top 2 of 3 trials")
    assert lines[1].split()[:3] == ["rank", "trial", "val_loss"]
    assert lines[2].split()[1] == random_result.best["trial_id"] + "*"  # * = chosen


def test_bad_input_fails_before_training(parts, tmp_path):
    bad = tmp_path / "space.json"
    bad.write_text('{"units": {"low": 64, "high": 16}}')
    with pytest.raises(ConfigError, match="space.json.*units.*greater than high"):
        small_tune(parts, tmp_path / "a", search_space=bad, narrow=None)
    with pytest.raises(ConfigError, match="tuner must be one of"):
        small_tune(parts, tmp_path / "b", algorithm="grid")
    with pytest.raises(ConfigError, match="lookback up to 1000 needs"):
        small_tune(parts, tmp_path / "c", narrow={"lookback": [24, 1000]})
    with pytest.raises(ConfigError, match="unknown Forecaster argument 'neurons'"):
        small_tune(parts, tmp_path / "d", forecaster_args={"neurons": 3})
    with pytest.raises(ConfigError, match="tolerance must be a fraction in \\[0, 1\\).*got 2"):
        small_tune(parts, tmp_path / "e", tolerance=2)
    assert not (tmp_path / "e").exists()
    assert not (tmp_path / "a").exists()


def test_tolerance_reselects_a_finished_search_without_training(parts, random_result):
    # window_norm spelled out at its default is the same search (as saved before it existed).
    args = {"horizon": 1, "patience": 2, "window_norm": False}
    again = small_tune(
        parts,
        random_result.directory,
        max_trials=3,
        epochs=3,
        tolerance=0.99,
        forecaster_args=args,
    )
    timing = [(t["score"], t["seconds"]) for t in again.trials]
    assert timing == [(t["score"], t["seconds"]) for t in random_result.trials]  # none re-run
    near = [t for t in again.completed if t["score"] <= again.lowest["score"] * 1.99]
    fastest = min(near, key=lambda t: t["seconds_per_epoch"])
    assert again.best["trial_id"] == fastest["trial_id"]
    for t in again.completed:  # the training loop alone: less than the whole trial
        assert 0 < t["seconds_per_epoch"] * t["epochs_trained"] < t["seconds"]
