"""Choosing the best trial: lowest validation loss, or the fastest within a tolerance."""

import dataclasses

import pytest

from deepcast.errors import ConfigError
from deepcast.tuning import SearchSpace, TuningResult
from deepcast.tuning.space import Choice, Int


def trial(number, units, score, seconds, epochs_trained, status="COMPLETED"):
    return {
        "trial_id": f"{number:02d}",
        "number": number + 1,
        "hyperparameters": {"units": units, "batch_size": 64 if units > 32 else 256},
        "score": score,
        "status": status,
        "seconds": seconds,
        "epochs": 10,
        "epochs_trained": epochs_trained,
        "best_epoch": epochs_trained,
    }


# Hand-made search: loss and seconds per epoch (seconds / epochs_trained) per trial.
TRIALS = [
    trial(0, 128, 0.500, 40.0, 10),  # lowest loss, 4.0 s/epoch
    trial(1, 64, 0.508, 12.0, 6),  # +1.6%, 2.0 s/epoch
    trial(2, 16, 0.520, 5.0, 10),  # +4.0%, 0.5 s/epoch
    trial(3, 32, 0.509, 9.0, 9),  # +1.8%, 1.0 s/epoch
    trial(4, 8, None, 0.1, 1, status="FAILED"),  # fastest, but failed: never chosen
]


def result(tolerance):
    space = SearchSpace((Int("units", 8, 128), Choice("batch_size", (64, 256))))
    return TuningResult(
        algorithm="random",
        trials=TRIALS,
        search_space=space,
        target="y",
        forecaster_args={"horizon": 1},
        epochs=10,
        batch_size=32,
        seed=0,
        max_trials=5,
        directory="runs/x/tuning",
        tolerance=tolerance,
    )


@pytest.mark.parametrize(
    "tolerance, chosen",
    [(0.0, "00"), (0.01, "00"), (0.017, "01"), (0.02, "03"), (0.05, "02"), (0.5, "02")],
)
def test_fastest_trial_within_the_tolerance_is_chosen(tolerance, chosen):
    r = result(tolerance)
    assert r.lowest["trial_id"] == "00"
    assert r.best["trial_id"] == chosen


def test_the_chosen_trial_drives_the_final_model_and_the_report():
    r = result(0.02)  # trial 03: 32 units, batch 256
    assert r.best_forecaster_args() == {"target": "y", "horizon": 1, "units": 32, "seed": 0}
    assert r.best_fit_args() == {"epochs": 10, "batch_size": 256}
    report = r.to_json()
    assert report["best"]["trial_id"] == "03"
    assert report["selection"] == {
        "rule": "fastest within tolerance",
        "tolerance": 0.02,
        "lowest": "00",
    }
    assert result(0.0).to_json()["selection"]["rule"] == "lowest loss"


def test_table_marks_the_chosen_trial_even_below_the_top_k():
    lines = result(0.05).table(k=2).splitlines()
    assert lines[0].startswith("top 2 of 5 trials and the chosen one by validation loss")
    assert "fastest per epoch within 5% of the lowest" in lines[0]
    rows = [line.split() for line in lines[2:]]
    # top 2 by loss (00, 01) and then the chosen trial 02, with its overall rank 4
    assert [(row[0], row[1]) for row in rows] == [("1", "00"), ("2", "01"), ("4", "02*")]
    assert rows[2][-1] == "0.5"  # its seconds per epoch


def test_a_trial_without_timing_is_never_preferred_for_speed():
    trials = [*TRIALS[:2], {**TRIALS[2], "seconds": None}]
    untimed = dataclasses.replace(result(0.05), trials=trials)
    assert untimed.best["trial_id"] == "01"
    # An untimed lowest-loss trial cannot be shown to be slower: it stays the choice.
    trials = [{**TRIALS[0], "seconds": None}, *TRIALS[1:]]
    assert dataclasses.replace(result(0.05), trials=trials).best["trial_id"] == "00"


def test_recorded_training_time_per_epoch_wins_over_trial_seconds():
    # Trial 01's wall time includes set-up; its training loop alone ran 0.1 s an epoch.
    trials = [TRIALS[0], {**TRIALS[1], "seconds_per_epoch": 0.1}, *TRIALS[2:]]
    assert dataclasses.replace(result(0.05), trials=trials).best["trial_id"] == "01"


@pytest.mark.parametrize("tolerance, text", [(0.02, "2%"), (0.005, "0.5%"), (0.125, "12.5%")])
def test_tolerance_is_shown_as_written(tolerance, text):
    assert result(tolerance).percent == text


@pytest.mark.parametrize("bad", [-0.1, 1.0, "2%", True])
def test_a_tolerance_outside_0_1_is_refused(bad):
    with pytest.raises(ConfigError, match="tolerance must be a fraction"):
        result(bad)
