"""The Optuna engine with stand-in objectives (no training): the known minimum, pruning on
per-epoch reports, resuming after the process is killed, conditional entries."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import optuna
import pytest

from deepcast.tuning import optuna_engine
from deepcast.tuning.objective import TrialOutcome
from deepcast.tuning.space import SearchSpace

SPACE = SearchSpace.from_json(
    {
        "units": {"type": "int", "low": 16, "high": 256, "log": True},
        "dropout": {"type": "float", "low": 0.0, "high": 0.5},
        "layers": {"type": "int", "low": 1, "high": 3},
    }
)


def bowl(hp: dict) -> float:
    """Zero at units=64, dropout=0, layers=1; grows away from it."""
    return abs(hp["units"] - 64) / 64 + hp["dropout"] + 0.1 * (hp["layers"] - 1)


class Objective:
    """Trains nothing: reports `bowl` (plus a decay over epochs) every epoch like train()."""

    def __init__(self):
        self.calls = []

    def __call__(self, hp, epochs, seed, *, report=None, restore=None):
        self.calls.append(hp)
        losses = []
        for epoch in range(1, epochs + 1):
            losses.append(bowl(hp) + 1.0 / epoch)
            if report is not None and report({"epoch": epoch, "val_loss": losses[-1]}, None):
                return TrialOutcome(min(losses), epoch, epoch, pruned=True, losses=losses)
        return TrialOutcome(min(losses), epochs, epochs, losses=losses)


def run(directory, objective, **kwargs):
    """A search kept in memory unless a storage is given (SQLite costs ~0.2 s a trial)."""
    options = {"algorithm": "tpe", "pruner": "none", "max_trials": 5, "epochs": 3, "seed": 0}
    options["storage"] = optuna.storages.InMemoryStorage()
    options = {**options, **kwargs}
    return optuna_engine.search(
        options.pop("space", SPACE), objective, directory=directory, **options
    )


def test_tpe_finds_the_known_minimum_and_beats_random_search(tmp_path):
    def best(algorithm):
        trials = run(tmp_path / algorithm, Objective(), algorithm=algorithm, max_trials=40)
        return min(t["score"] for t in trials if t["status"] == "COMPLETED") - 1 / 3

    tpe, random = best("tpe"), best("random")
    assert tpe < 0.1  # the minimum is 0 (plus the 1/epochs decay taken off)
    assert tpe <= random


@pytest.mark.parametrize("pruner", ["median", "hyperband"])
def test_poor_trials_are_pruned_and_record_the_epochs_they_trained(tmp_path, pruner):
    objective = Objective()
    trials = run(tmp_path, objective, pruner=pruner, max_trials=20, epochs=9)
    pruned = [t for t in trials if t["status"] == "PRUNED"]
    completed = [t for t in trials if t["status"] == "COMPLETED"]
    assert pruned and completed
    assert all(t["epochs_trained"] < 9 and t["score"] is None for t in pruned)
    assert all(t["epochs_trained"] == 9 for t in completed)
    # A pruned trial is worse than the best completed one at the epoch it stopped.
    best = min(bowl(t["hyperparameters"]) for t in completed)
    assert all(bowl(t["hyperparameters"]) > best for t in pruned)


def test_resumed_study_keeps_finished_trials_and_repeats_none(tmp_path):
    """The search process is killed (SIGKILL) in the middle of a trial; running again
    continues the study in optuna.db: finished trials kept, the killed one run again."""
    script = tmp_path / "search.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys, time
            sys.path.insert(0, {os.path.dirname(__file__)!r})
            from test_optuna import Objective, run

            class Slow(Objective):
                def __call__(self, hp, epochs, seed, **kwargs):
                    time.sleep(0.4)
                    return super().__call__(hp, epochs, seed, **kwargs)

            run({str(tmp_path / "study")!r}, Slow(), max_trials=8, storage=None)
            """
        )
    )
    process = subprocess.Popen([sys.executable, str(script)])
    storage = optuna_engine.default_storage(tmp_path / "study")
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            time.sleep(0.2)
            try:
                study = optuna.load_study(study_name="deepcast", storage=storage)
            except Exception:  # not created yet
                continue
            states = [t.state for t in study.trials]
            if (
                states.count(optuna.trial.TrialState.COMPLETE) >= 3
                and states[-1].name == "RUNNING"
                and len(study.trials[-1].params) == 3  # killed while it trains
            ):
                break
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    before = optuna.load_study(study_name="deepcast", storage=storage).trials
    finished = [t for t in before if t.state.is_finished()]
    assert len(finished) >= 3 and before[-1].state.name == "RUNNING"

    objective = Objective()
    trials = run(tmp_path / "study", objective, max_trials=8, storage=None)
    completed = [t for t in trials if t["status"] == "COMPLETED"]
    assert len(completed) == 8
    assert len(objective.calls) == 8 - len(finished)  # only the missing ones trained
    for old in finished:  # kept as they were
        assert trials[old.number]["score"] == pytest.approx(old.value)
    # The killed trial is recorded as interrupted and its values were run once more.
    killed = trials[before[-1].number]
    assert killed["status"] == "INTERRUPTED"
    assert objective.calls[0] == killed["hyperparameters"]
    values = [tuple(sorted(t["hyperparameters"].items())) for t in completed]
    assert len(set(values)) == len(values)  # no configuration trained twice
    # Running again with the same budget trains nothing.
    idle = Objective()
    assert len(run(tmp_path / "study", idle, max_trials=8, storage=None)) == len(trials)
    assert idle.calls == []


def test_conditional_entries_are_suggested_only_when_their_condition_holds(tmp_path):
    # imported here: search subprocesses of this module import it as a plain script
    from .spaces import CONDITIONAL

    space = SearchSpace.from_json(CONDITIONAL)
    seen = []

    def objective(hp, epochs, seed, **kwargs):
        seen.append(hp)
        return TrialOutcome(hp["learning_rate"], epochs, epochs)

    run(tmp_path, objective, space=space, max_trials=12, epochs=1)
    assert {hp["model"] for hp in seen} == {"lstm", "transformer"}
    for hp in seen:
        expected = {"model", "learning_rate", "units" if hp["model"] == "lstm" else "heads"}
        assert set(hp) == expected


def test_a_storage_that_is_not_a_url_is_named(tmp_path):
    from deepcast.errors import ConfigError

    with pytest.raises(ConfigError, match="database URL"):
        run(tmp_path, Objective(), storage="study.db")


def test_a_trial_killed_before_drawing_its_values_is_recorded_not_queued(tmp_path):
    storage = optuna_engine.default_storage(tmp_path)
    optuna.create_study(study_name="deepcast", storage=storage).ask()  # RUNNING, no values
    objective = Objective()
    trials = run(tmp_path, objective, max_trials=3, storage=None)
    assert [t["status"] for t in trials] == ["INTERRUPTED"] + ["COMPLETED"] * 3
    assert trials[0]["hyperparameters"] == {} and len(objective.calls) == 3
