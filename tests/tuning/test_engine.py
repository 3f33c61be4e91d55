"""The KerasTuner engine with a stand-in objective (no training): resume, interruption,
overwrite, seeds, failures. Fast, so every edge of the state handling is covered."""

import pytest

from deepcast.errors import DataError
from deepcast.tuning.keras_tuner_engine import TrialOutcome, hyperband_trials, search
from deepcast.tuning.space import default_space

from .spaces import CONDITIONAL

SPACE = default_space(24)


class Objective:
    """A smooth function of the hyperparameters; records every call."""

    def __init__(self, interrupt_at: int | None = None, fail_at: int | None = None):
        self.calls: list[tuple[dict, int, int]] = []
        self.interrupt_at, self.fail_at = interrupt_at, fail_at

    def __call__(self, hp: dict, epochs: int, seed: int) -> TrialOutcome:
        self.calls.append((hp, epochs, seed))
        if len(self.calls) == self.interrupt_at:
            raise KeyboardInterrupt
        if len(self.calls) == self.fail_at:
            raise ValueError("diverged")
        score = abs(hp["units"] - 64) / 64 + hp["dropout"] + 1 / (epochs + hp["layers"])
        return TrialOutcome(score, epochs, epochs)


def run(directory, objective=None, **kwargs):
    options = {"algorithm": "random", "max_trials": 3, "epochs": 5, "seed": 0}
    return search(SPACE, objective or Objective(), directory=directory, **{**options, **kwargs})


def summary(trials):
    return [(t["trial_id"], t["hyperparameters"], t["score"], t["status"]) for t in trials]


def test_resume_keeps_old_trials_and_adds_only_the_missing_ones(tmp_path):
    first = run(tmp_path, max_trials=2)
    objective = Objective()
    resumed = run(tmp_path, objective, max_trials=3)
    assert summary(resumed[:2]) == summary(first)
    assert len(resumed) == 3 and resumed[2]["status"] == "COMPLETED"
    assert len(objective.calls) == 1  # only the new trial trained
    # ... and the result is what one uninterrupted search of 3 trials gives.
    assert summary(run(tmp_path / "straight", max_trials=3)) == summary(resumed)
    # Running again with the same budget trains nothing.
    idle = Objective()
    assert summary(run(tmp_path, idle, max_trials=3)) == summary(resumed)
    assert idle.calls == []


def test_an_interrupted_trial_is_run_again_and_nothing_else_is_lost(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, Objective(interrupt_at=2), max_trials=3)
    objective = Objective()
    trials = run(tmp_path, objective, max_trials=3)
    assert [t["status"] for t in trials] == ["COMPLETED"] * 3
    assert len(objective.calls) == 2  # the trial in flight and the last one
    assert summary(trials) == summary(run(tmp_path / "straight", max_trials=3))


def test_overwrite_starts_afresh(tmp_path):
    run(tmp_path, max_trials=3)
    objective = Objective()
    trials = run(tmp_path, objective, max_trials=2, overwrite=True)
    assert len(trials) == 2 and len(objective.calls) == 2


def test_same_seed_same_hyperparameters_other_seed_others(tmp_path):
    a = run(tmp_path / "a", seed=7)
    b = run(tmp_path / "b", seed=7)
    c = run(tmp_path / "c", seed=8)
    hps = [[t["hyperparameters"] for t in trials] for trials in (a, b, c)]
    assert hps[0] == hps[1] != hps[2]


def test_a_failing_trial_is_recorded_and_the_search_goes_on(tmp_path):
    trials = run(tmp_path, Objective(fail_at=2), max_trials=3)
    assert [t["status"] for t in trials] == ["COMPLETED", "FAILED", "COMPLETED"]
    assert trials[1]["score"] is None and "diverged" in trials[1]["message"]
    assert trials[1]["seconds"] is not None


def test_user_errors_stop_the_search_as_themselves(tmp_path):
    def objective(hp, epochs, seed):
        raise DataError("train: 10 rows are too few")

    with pytest.raises(DataError, match="too few"):
        run(tmp_path, objective)


def test_each_trial_records_seconds_and_epochs(tmp_path):
    objective = Objective()
    trials = run(tmp_path, objective, executions_per_trial=2, max_trials=2)
    assert [t["number"] for t in trials] == [1, 2]
    assert all(t["seconds"] >= 0 and t["epochs"] == 5 == t["epochs_trained"] for t in trials)
    assert [seed for _, _, seed in objective.calls] == [0, 1, 0, 1]


def test_hyperband_promotes_the_best_to_more_epochs(tmp_path):
    objective = Objective()
    trials = run(tmp_path, objective, algorithm="hyperband", max_trials=None, epochs=3)
    assert len(trials) == hyperband_trials(3) == 6
    budgets = [t["epochs"] for t in trials]
    assert budgets == [1, 1, 1, 3, 3, 3]
    promoted = trials[3]
    first_round = sorted(trials[:3], key=lambda t: t["score"])
    assert promoted["promoted_from"] == first_round[0]["trial_id"]
    assert promoted["hyperparameters"] == first_round[0]["hyperparameters"]
    # max_trials caps Hyperband's own budget.
    assert len(run(tmp_path / "capped", algorithm="hyperband", max_trials=4, epochs=3)) == 4


def test_bayesian_fits_its_model_after_the_initial_points(tmp_path):
    trials = run(tmp_path, algorithm="bayesian", max_trials=4)
    assert len(trials) == 4 and all(t["status"] == "COMPLETED" for t in trials)


def test_conditional_entries_appear_only_when_their_condition_holds(tmp_path):
    from deepcast.tuning.space import SearchSpace

    space = SearchSpace.from_json(CONDITIONAL)
    seen = []

    def objective(hp, epochs, seed):
        seen.append(hp)
        return TrialOutcome(hp["learning_rate"], epochs, epochs)

    search(space, objective, algorithm="random", max_trials=8, epochs=1, seed=0, directory=tmp_path)
    assert {hp["model"] for hp in seen} == {"lstm", "transformer"}
    for hp in seen:
        assert set(hp) == {"model", "learning_rate", "units" if hp["model"] == "lstm" else "heads"}
