"""The Ray Tune engine and Ray backtests on a real two-node Ray cluster on this machine.

The module starts a head node and a second node with `ray start` (one CPU each, token
authentication off), runs every search across them and stops both process groups at the end.
Slow: each Ray worker imports Keras and torch afresh (~10 s on a busy 2-core machine).
"""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cloudpickle
import numpy as np
import pandas as pd
import pytest

import deepcast as dc
from deepcast.evaluation.backtest import backtest
from deepcast.training import Checkpoint
from deepcast.tuning import ray_engine
from deepcast.tuning.objective import ForecasterObjective, TrialOutcome
from deepcast.tuning.space import SearchSpace

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow

# Stand-in objectives below travel to the workers by value (this file is no importable module).
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster():
    """A head node and a worker node, one CPU each, on 127.0.0.1; stopped at the end."""
    executable = str(Path(sys.executable).with_name("ray"))
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    saved = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"  # the driver, like the nodes
    port = free_port()
    temp = tempfile.mkdtemp(prefix="dcray", dir="/tmp")  # Ray's socket paths must stay short
    common = ["--num-cpus=1", "--node-ip-address=127.0.0.1", "--disable-usage-stats", "--block"]
    processes = []

    def start(*args):
        processes.append(
            subprocess.Popen(
                [executable, "start", *args, *common],
                env=env,
                start_new_session=True,  # its own process group: stopped with everything it ran
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )

    try:
        start("--head", f"--port={port}", "--include-dashboard=false", f"--temp-dir={temp}")
        address = f"127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while not _listening(port):
            assert time.monotonic() < deadline, "the Ray head node did not start"
            time.sleep(0.5)
        start(f"--address={address}")
        ray.init(address=address, log_to_driver=False)
        while len([n for n in ray.nodes() if n["Alive"]]) < 2:
            assert time.monotonic() < deadline, "the second Ray node did not join"
            time.sleep(0.5)
        yield address
    finally:
        ray.shutdown()
        for process in processes:  # SIGKILL: Ray's graceful stop takes ~30 s here
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=60)
        shutil.rmtree(temp, ignore_errors=True)
        if saved is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = saved


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def bowl(hp: dict) -> float:
    """Zero at units=64, dropout=0, layers=1."""
    return abs(hp["units"] - 64) / 64 + hp["dropout"] + 0.1 * (hp["layers"] - 1)


class Bowl:
    """Trains nothing: reports `bowl` plus a decay over epochs."""

    def __call__(self, hp, epochs, seed, *, report=None, restore=None):
        losses = []
        for epoch in range(1, epochs + 1):
            losses.append(bowl(hp) + 1.0 / epoch)
            time.sleep(0.1)
            record = {"epoch": epoch, "val_loss": losses[-1], "last": epoch == epochs}
            report(record, None)
        return TrialOutcome(min(losses), epochs, epochs, losses=losses)


def test_asha_search_on_the_cluster_finds_the_minimum_and_stops_poor_trials(cluster, tmp_path):
    # Six configurations: sixteen random draws all but surely include the optimum.
    space = SearchSpace.from_json({"units": [32, 64, 128], "dropout": [0.0, 0.3], "layers": 1})
    trials = ray_engine.search(
        space,
        Bowl(),
        algorithm="asha",
        max_trials=16,
        epochs=9,
        seed=0,
        directory=tmp_path / "search",
        address=cluster,
    )
    assert len(trials) == 16
    completed = [t for t in trials if t["status"] == "COMPLETED"]
    pruned = [t for t in trials if t["status"] == "PRUNED"]
    assert completed and pruned
    assert all(t["epochs_trained"] == 9 for t in completed)
    assert all(t["epochs_trained"] < 9 and t["score"] is None for t in pruned)
    best = min(completed, key=lambda t: t["score"])
    assert best["score"] - 1 / 9 == pytest.approx(bowl(best["hyperparameters"]))
    assert best["hyperparameters"] == {"units": 64, "dropout": 0.0, "layers": 1}  # bowl's 0
    # ASHA keeps going what is best at its rungs: nothing pruned beats the winner.
    assert all(bowl(t["hyperparameters"]) > 0 for t in pruned)


def test_pbt_exploit_continues_from_the_donors_checkpoint_exactly(cluster, tmp_path, monkeypatch):
    monkeypatch.setattr(ray_engine, "KEEP_CHECKPOINTS", None)  # the donors' stay for the test
    train, val, _ = dc.split(dc.datasets.synthetic(n_steps=400, seed=0), val=0.2, test=0.1)
    objective = ForecasterObjective(
        train,
        val,
        "y",
        {"lookback": 12, "units": 8, "layers": 1, "patience": 1},
        train_through=True,  # as tune() sets it for PBT
    )
    space = SearchSpace.from_json(
        {
            "learning_rate": {"type": "float", "low": 1e-4, "high": 3e-2, "log": True},
            "dropout": {"type": "float", "low": 0.0, "high": 0.3},
            "batch_size": [16, 64],
        }
    )
    trials = ray_engine.search(
        space,
        objective,
        algorithm="pbt",
        max_trials=4,
        epochs=8,
        seed=1,
        directory=tmp_path / "search",
        address=cluster,
    )
    assert [t["status"] for t in trials] == ["COMPLETED"] * 4
    experiment = tmp_path / "search" / "ray"
    trial_dirs = [d for d in experiment.iterdir() if d.is_dir() and (d / "params.json").exists()]
    assert all((d / "outcome.json").exists() for d in trial_dirs)  # each trial's own files
    # Every member trains to the end of its budget: patience 1 would have stopped some early.
    for d in trial_dirs:
        assert pd.read_csv(d / "progress.csv")["epoch"].max() == 8, d.name
    exploits = [(d, r) for d in trial_dirs for r in ray_engine.restores(d)]
    # PBT also pauses and resumes trials from their own checkpoints; an exploit takes another's.
    assert any(d.name not in r["checkpoint"] for d, r in exploits), "PBT never exploited"
    for trial_dir, restore in exploits:
        saved = Checkpoint.load(Path(restore["checkpoint"]))
        loaded = Checkpoint.load(trial_dir / restore["loaded"])
        assert loaded.epoch == saved.epoch == restore["epoch"]
        for a, b in zip(saved.weights, loaded.weights, strict=True):
            np.testing.assert_array_equal(a, b)
        assert saved.optimizer.keys() == loaded.optimizer.keys()
        for key in saved.optimizer:
            np.testing.assert_array_equal(saved.optimizer[key], loaded.optimizer[key])
    config = json.loads((trial_dirs[0] / "params.json").read_text())
    assert set(config) == {"learning_rate", "dropout", "batch_size"}


def test_backtest_folds_as_ray_tasks_match_the_local_run(cluster):
    df = dc.datasets.synthetic(n_steps=500, seed=2)
    forecaster = dc.Forecaster(target="y", lookback=12, units=8, layers=1, seed=3)
    options = {"folds": 3, "epochs": 3, "verbose": False}
    local = backtest(forecaster, df, **options)
    remote = backtest(forecaster, df, engine="ray", **options)
    assert len(remote.folds) == 3
    assert len({fold["node"] for fold in remote.folds}) == 2  # the folds ran on both nodes
    for a, b in zip(local.folds, remote.folds, strict=True):
        assert a["metrics"] == b["metrics"]
        assert a["epochs_trained"] == b["epochs_trained"]
    assert local.aggregate == remote.aggregate
