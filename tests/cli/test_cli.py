"""The command line: the whole job on a file, and one clear line + exit 2 for bad input."""

import json
import subprocess
import sys

import numpy as np
import pytest

import deepcast as dc
from deepcast.cli import main

from .conftest import run_cli

FAST = ["--lookback", "24", "--units", "8", "--layers", "1", "--epochs", "2"]


def test_run_writes_metrics_plot_and_model(csv_file, tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, _ = run_cli(
        ["run", "--data", str(csv_file), "--target", "y", "--out", str(out), *FAST], capsys
    )
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"rmse", "mae", "mape", "smape", "mase", "baselines"} <= set(metrics)
    # Hourly data: a daily (primary) and a weekly seasonal naive.
    assert set(metrics["baselines"]) == {"naive", "seasonal_naive", "seasonal_naive_168", "linear"}
    # With train + validation as history, every test row is a forecast target.
    assert metrics["n_forecasts"] == metrics["data"]["rows"]["test"] - metrics["horizon"] + 1
    assert metrics["first_target"] == metrics["data"]["test_start"]
    assert (out / "forecast.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    loaded = dc.Forecaster.load(out / "model")
    assert loaded.feature_names_ == ["y", "x1", "x2"] and loaded.lookback == 24
    assert f"{metrics['rmse']:.4g}" in stdout and "seasonal_naive" in stdout


def test_lr_patience_reaches_training_and_the_saved_model(csv_file, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["run", "--data", str(csv_file), "--target", "y", "--out", str(out), *FAST]
    code, _, _ = run_cli([*args, "--epochs", "3", "--lr-patience", "1"], capsys)
    assert code == 0
    epochs = json.loads((out / "metrics.json").read_text())["training"]["epochs"]
    assert epochs[0]["lr"] == pytest.approx(1e-3) and all("lr" in e for e in epochs)
    assert dc.Forecaster.load(out / "model").lr_patience == 1
    code, _, err = run_cli([*args, "--lr-patience", "0"], capsys)
    assert code == 2 and "lr_patience must be a positive integer or None" in err


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def bad_inputs(tmp_path, csv_file):
    df = dc.datasets.synthetic(n_steps=300, seed=0)
    nan = df.copy()
    nan.iloc[10, 0] = np.nan
    nan.to_csv(tmp_path / "nan.csv")
    dup = df.reset_index()
    dup.loc[5, "timestamp"] = dup.loc[4, "timestamp"]
    dup.to_csv(tmp_path / "dup.csv", index=False)
    text = df.reset_index().astype({"x1": object})
    text.loc[7, "x1"] = "oops"
    text.to_csv(tmp_path / "text.csv", index=False)
    df.iloc[:40].to_csv(tmp_path / "short.csv")
    (tmp_path / "binary.csv").write_bytes(bytes(range(256)) * 4)
    return {
        "missing target": (["--data", str(csv_file), "--target", "load"], "'load'"),
        "missing file": (["--data", str(tmp_path / "nope.csv"), "--target", "y"], "nope.csv"),
        "empty file": (
            ["--data", str(write(tmp_path, "empty.csv", "")), "--target", "y"],
            "empty.csv",
        ),
        "header only": (
            ["--data", str(write(tmp_path, "head.csv", "timestamp,y\n")), "--target", "y"],
            "head.csv",
        ),
        "binary file": (["--data", str(tmp_path / "binary.csv"), "--target", "y"], "binary.csv"),
        "nan": (["--data", str(tmp_path / "nan.csv"), "--target", "y"], "row"),
        "duplicate timestamps": (
            ["--data", str(tmp_path / "dup.csv"), "--target", "y"],
            "duplicate",
        ),
        "text in numeric column": (
            ["--data", str(tmp_path / "text.csv"), "--target", "y"],
            "'x1' row 8",
        ),
        "too short": (["--data", str(tmp_path / "short.csv"), "--target", "y"], "too few"),
        "bad date": (
            [
                "--data",
                str(write(tmp_path, "date.csv", "timestamp,y\n2024-01-01,1\nnot a date,2\n")),
                "--target",
                "y",
            ],
            "not a date",
        ),
        "bad hyperparameter": (
            ["--data", str(csv_file), "--target", "y", "--dropout", "2"],
            "dropout",
        ),
    }


def test_each_bad_input_gets_one_line_and_exit_2(csv_file, tmp_path, capsys):
    for name, (args, expected) in bad_inputs(tmp_path, csv_file).items():
        code, _, err = run_cli(["run", *args, "--out", str(tmp_path / "o"), *FAST], capsys)
        assert code == 2, name
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("deepcast: error:"), (name, err)
        assert expected in lines[0], (name, lines[0])
        assert not (tmp_path / "o" / "metrics.json").exists()


def test_real_entry_point_exits_2_without_traceback(tmp_path):
    bad = write(tmp_path, "bad.csv", "timestamp,y\n2024-01-01 00:00,1\n2024-01-01 00:00,2\n")
    proc = subprocess.run(
        [sys.executable, "-m", "deepcast.cli", "run", "--data", str(bad), "--target", "y"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "bad.csv" in proc.stderr and "duplicate" in proc.stderr


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", "--target", "y"])
    assert exc.value.code == 2
    assert "--data" in capsys.readouterr().err


TUNE = [
    "--tuner",
    "random",
    "--tuning-epochs",
    "2",
    "--tune",
    "units=4:16",
    "--tune",
    "layers=1:2",
    "--tune",
    "lookback=12,24",
    "--tune",
    "batch_size=64",
]


def test_tuned_run_builds_the_best_trial_and_resumes(csv_file, tmp_path, capsys):
    out = tmp_path / "tuned"
    args = ["run", "--data", str(csv_file), "--target", "y", "--out", str(out), "--epochs", "2"]
    code, stdout, _ = run_cli([*args, *TUNE, "--max-trials", "2"], capsys)
    assert code == 0 and "top 2 of 2 trials" in stdout
    first = json.loads((out / "tuning.json").read_text())
    assert [t["status"] for t in first["trials"]] == ["COMPLETED", "COMPLETED"]
    best = first["best"]["hyperparameters"]
    model = dc.Forecaster.load(out / "model")
    assert (model.units, model.layers, model.lookback) == (
        best["units"],
        best["layers"],
        best["lookback"],
    )
    assert (out / "tuning.png").read_bytes()[:4] == b"\x89PNG"

    # Resume: one more trial; the tolerance only re-chooses among finished trials.
    code, _, _ = run_cli([*args, *TUNE, "--max-trials", "3", "--tuning-tolerance", "0.5"], capsys)
    second = json.loads((out / "tuning.json").read_text())
    assert code == 0 and len(second["trials"]) == 3
    for old, new in zip(first["trials"], second["trials"][:2]):
        assert (old["trial_id"], old["score"]) == (new["trial_id"], new["score"])
    assert second["selection"]["tolerance"] == 0.5
    model = dc.Forecaster.load(out / "model")
    assert model.units == second["best"]["hyperparameters"]["units"]

    code, _, err = run_cli([*args, "--tuning-tolerance", "0.02"], capsys)  # no search
    assert code == 2 and "--tuning-tolerance chooses among search trials" in err
    code, _, err = run_cli([*args, *TUNE, "--tuning-tolerance", "5"], capsys)
    assert code == 2 and err.strip().splitlines() == [
        "deepcast: error: tolerance must be a fraction in [0, 1), e.g. 0.02 for 2%; got 5.0"
    ]


def test_bad_search_space_file_exits_2(csv_file, tmp_path, capsys):
    space = write(tmp_path, "space.json", '{"units": {"low": 64, "high": 8}}')
    code, _, err = run_cli(
        [
            "run",
            "--data",
            str(csv_file),
            "--target",
            "y",
            "--out",
            str(tmp_path / "o"),
            "--tuner",
            "random",
            "--search-space",
            str(space),
        ],
        capsys,
    )
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "space.json" in lines[0]


def test_run_on_a_bundled_data_set_by_name_uses_its_target(tmp_path, capsys):
    out = tmp_path / "aapl"
    args = ["run", "--data", "aapl_stock", "--lookback", "10", "--units", "8", "--layers", "1"]
    code, _, _ = run_cli([*args, "--epochs", "1", "--out", str(out)], capsys)
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["target"] == "close" and metrics["data"]["source"] == "aapl_stock"
    assert metrics["seasonal_periods"] == [5]  # trading days: a week is 5 rows


def test_run_resampled_with_calendar_features(tmp_path, capsys):
    out = tmp_path / "elec"
    args = ["run", "--data", "vic_elec", "--resample", "D", "--calendar", "--lookback", "14"]
    code, _, _ = run_cli(
        [*args, "--units", "8", "--layers", "1", "--epochs", "1", "--out", str(out)], capsys
    )
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert sum(metrics["data"]["rows"].values()) == 1096  # 2012-2014, one row per day
    assert set(metrics["baselines"]) == {"naive", "seasonal_naive", "seasonal_naive_365", "linear"}
    loaded = dc.Forecaster.load(out / "model")
    assert loaded.feature_names_ == [
        "demand", "temperature", "holiday", "dow_sin", "dow_cos", "doy_sin", "doy_cos",
    ]  # fmt: skip
    # explain reads the same data set, prepared the same way, by name.
    explained = tmp_path / "explain"
    args = ["explain", "--model", str(out / "model"), "--data", "vic_elec", "--resample", "D"]
    code, _, _ = run_cli(
        [*args, "--steps", "8", "--max-windows", "16", "--out", str(explained)], capsys
    )
    assert code == 0
    report = json.loads((explained / "attributions.json").read_text())
    assert report["features"] == loaded.feature_names_ and report["n_windows"] == 16


@pytest.mark.parametrize(
    "args, message",
    [
        (["--data", "beijing_pm25"], "beijing_pm25: column 'pm25' has 2067 missing"),
        (["--data", "vic-elec"], "vic-elec: no such file, nor a bundled data set (those are: aapl"),
        (["--data", "{csv}"], "--target is required for a data file"),
        (
            ["--data", "{csv}", "--target", "y", "--resample", "30min"],
            "finer than the data's step h",
        ),
        (
            ["--data", "{csv}", "--target", "y", "--seasonal-period", "24,x"],
            "--seasonal-period must be",
        ),
    ],
)
def test_real_data_mistakes_are_one_line_and_exit_2(args, message, csv_file, capsys):
    args = [a.replace("{csv}", str(csv_file)) for a in args]
    code, _, err = run_cli(["run", *args, "--out", "unused"], capsys)
    assert code == 2
    assert err.strip().count("\n") == 0 and message in err
