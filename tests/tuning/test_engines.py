"""`tune` over its engines: names, checks, and Optuna end to end with real (tiny) forecasters
(pruned trials stop training early; one `TuningResult`, `tuning.json`, `tuning.png`)."""

import json

import pytest

import deepcast as dc
from deepcast.errors import ConfigError
from deepcast.tuning import resolve_engine, write_report


@pytest.fixture(scope="module")
def parts():
    train, val, _ = dc.split(dc.datasets.synthetic(n_steps=600, seed=0), val=0.15, test=0.15)
    return train, val


@pytest.mark.parametrize(
    "engine, algorithm, expected",
    [
        (None, None, ("keras_tuner", "random")),
        (None, "hyperband", ("keras_tuner", "hyperband")),
        (None, "keras-bayesian", ("keras_tuner", "bayesian")),
        (None, "optuna-tpe", ("optuna", "tpe")),
        ("optuna", "random", ("optuna", "random")),
        ("ray", None, ("ray", "asha")),
        (None, "ray-pbt", ("ray", "pbt")),
    ],
)
def test_engine_and_algorithm_names(engine, algorithm, expected):
    assert resolve_engine(engine, algorithm) == expected


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"algorithm": "ray-pbt", "engine": "optuna"}, "runs on the ray engine"),
        ({"engine": "ray", "algorithm": "tpe"}, "asha, pbt"),
        ({"engine": "spark"}, "engine must be one of keras_tuner, optuna, ray"),
        ({"algorithm": "random", "pruner": "median"}, "pruner is an Optuna setting"),
        ({"engine": "optuna", "pruner": "sometimes"}, "pruner must be one of median"),
        ({"algorithm": "random", "address": "127.0.0.1:6379"}, "a Ray address needs"),
        ({"algorithm": "optuna-tpe", "storage": "study.db"}, "database URL"),
        ({"algorithm": "optuna-tpe", "executions_per_trial": 2}, "KerasTuner setting"),
        ({"algorithm": "ray-pbt", "narrow": {"learning_rate": 0.001, "dropout": 0.0}}, "perturbs"),
    ],
)
def test_bad_engine_options_fail_before_training(parts, tmp_path, kwargs, message):
    options = {"target": "y", "directory": tmp_path, "max_trials": 2, "epochs": 2}
    space = {"batch_size": 32, "lookback": 12}
    narrow = {**space, **kwargs.pop("narrow", {})}
    with pytest.raises(ConfigError, match=message):
        dc.tune(*parts, **options, narrow=narrow, **kwargs)


def test_optuna_search_prunes_poor_trials_early_and_reports_like_any_engine(parts, tmp_path):
    space = {
        "lookback": 12,
        "units": 8,
        "layers": 1,
        "batch_size": 32,
        "learning_rate": [1e-2, 1e-3, 1e-6],
        "dropout": [0.0, 0.1],
    }

    def search():
        return dc.tune(
            *parts,
            target="y",
            directory=tmp_path / "tuning",
            algorithm="optuna-tpe",
            forecaster_args={"patience": 50},
            narrow=space,
            max_trials=7,
            epochs=6,
            seed=0,
        )

    result = search()
    assert result.engine == "optuna" and result.algorithm == "tpe"
    assert len(result.trials) == 7
    pruned = [t for t in result.trials if t["status"] == "PRUNED"]
    assert pruned, "nothing was pruned"
    assert all(t["epochs_trained"] < 6 and t["score"] is None for t in pruned)
    assert result.best["status"] == "COMPLETED" and result.best["epochs_trained"] == 6
    assert (tmp_path / "tuning" / "optuna.db").exists()

    json_path, png_path = write_report(result, tmp_path)
    saved = json.loads(json_path.read_text())
    assert saved["engine"] == "optuna" and saved["n_trials"] == 7
    assert {t["status"] for t in saved["trials"]} <= {"COMPLETED", "PRUNED"}
    assert all(t["finished_at"] is not None for t in saved["trials"])
    assert png_path.stat().st_size > 10_000

    # The same call again resumes the finished study: nothing trains.
    again = search()
    assert [t["score"] for t in again.trials] == [t["score"] for t in result.trials]
    # ... and a different space in the same directory is refused.
    with pytest.raises(ConfigError, match="different search_space"):
        dc.tune(
            *parts,
            target="y",
            directory=tmp_path / "tuning",
            algorithm="optuna-tpe",
            forecaster_args={"patience": 50},
            narrow={**space, "units": 16},
            max_trials=7,
            epochs=6,
        )


def cli(args, capsys):
    from deepcast.cli import main

    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_tuner_names_pick_the_engine_and_bad_combinations_exit_2(tmp_path, capsys):
    data = tmp_path / "series.csv"
    dc.datasets.synthetic(n_steps=500, seed=2).to_csv(data)
    out = tmp_path / "run"
    args = ["run", "--data", str(data), "--target", "y", "--out", str(out), "--epochs", "1"]
    narrow = ["--tune", "units=4:8", "--tune", "layers=1", "--tune", "lookback=12"]
    tuned = ["--tuner", "optuna-tpe", "--max-trials", "2", "--tuning-epochs", "2", *narrow]
    code, stdout, _ = cli([*args, *tuned], capsys)
    assert code == 0 and "optuna" in stdout
    saved = json.loads((out / "tuning.json").read_text())
    assert (saved["engine"], saved["algorithm"], saved["n_trials"]) == ("optuna", "tpe", 2)

    code, _, err = cli([*args, "--ray-address", "127.0.0.1:1"], capsys)
    assert code == 2 and err.strip().splitlines() == [
        "deepcast: error: --ray-address runs a search: add --tuner ray-asha or ray-pbt"
    ]
    code, _, err = cli([*args, *narrow, "--tuner", "keras-random", "--ray-address", "h:1"], capsys)
    assert code == 2 and "a Ray address needs the ray engine" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("tuner, through", [("ray-pbt", True), ("ray-asha", False)])
def test_only_population_based_training_trains_every_member_through(tuner, through, tmp_path):
    """PBT retires members by exploitation, not by their own patience (objective.py)."""
    import deepcast.tuning as tuning

    made = {}

    class Recorder(tuning.ForecasterObjective):
        def __init__(self, *args, **kwargs):
            made.update(kwargs)
            raise KeyboardInterrupt  # enough: no search needs to run

    train, val, _ = dc.split(dc.datasets.synthetic(n_steps=300, seed=0), val=0.2, test=0.1)
    with pytest.MonkeyPatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr(tuning, "ForecasterObjective", Recorder)
        dc.tune(train, val, target="y", directory=tmp_path, algorithm=tuner, max_trials=2)
    assert made["train_through"] is through
