"""Serving fixtures: one tiny trained model, a store holding it, and the real server.

The server is `deepcast serve` in a subprocess (uvicorn on an ephemeral loopback port, two
workers), stopped when the session's tests are done.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import deepcast as dc
from deepcast.serving.store import ModelStore

API_KEY = "test-key-0123456789abcdef"
HEADERS = {"X-API-Key": API_KEY}


@pytest.fixture(scope="session")
def serving_data():
    """(train, validation, test) of 700 hourly synthetic rows."""
    return dc.split(dc.datasets.synthetic(n_steps=700, seed=5), val=0.15, test=0.2)


@pytest.fixture(scope="session")
def served_forecaster(serving_data, tmp_path_factory) -> tuple[dc.Forecaster, Path]:
    """A briefly trained small LSTM (lookback 24, horizon 3), saved; (forecaster, its dir)."""
    train, val, _ = serving_data
    f = dc.Forecaster("y", lookback=24, horizon=3, units=8, layers=1, seed=1)
    f.fit(train, validation=val, epochs=2, batch_size=64, verbose=False)
    path = tmp_path_factory.mktemp("model") / "model"
    f.save(path)
    return f, path


def records(frame) -> list[dict]:
    """JSON records of a time-indexed frame, as a client would send them."""
    out = frame.reset_index()
    out["timestamp"] = out["timestamp"].map(lambda t: t.isoformat())
    return out.to_dict(orient="records")


def wait_for(predicate, timeout: float, what: str, every: float = 0.2):
    """The first truthy value of `predicate()` within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`deepcast serve` in a subprocess on 127.0.0.1; `url`, `client`, `stop()`."""

    def __init__(self, store: Path, workers: int = 1, log: Path | None = None, options: tuple = ()):
        self.store = store
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(log or os.devnull, "w")  # noqa: SIM115 -- closed in stop()
        env = {**os.environ, "DEEPCAST_API_KEY": API_KEY, "OMP_NUM_THREADS": "1"}
        command = [sys.executable, "-m", "deepcast.cli", "serve", "--store", str(store)]
        command += ["--port", str(self.port), "--workers", str(workers), *options]
        self.process = subprocess.Popen(
            command, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.client = httpx.Client(base_url=self.url, timeout=30.0)

    def wait_ready(self, models: dict[str, str], timeout: float = 240.0) -> None:
        """Until /ready says every worker serves `models`: 16 new connections in a row (each
        worker answers for itself, and new connections are spread over the workers; on a busy
        machine 8 in a row once all reached one worker while the other was still loading)."""
        deadline = time.monotonic() + timeout
        in_a_row = 0
        while time.monotonic() < deadline and in_a_row < 16:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with code {self.process.returncode}")
            try:
                response = httpx.get(f"{self.url}/ready", timeout=10)
                ready = response.status_code == 200 and response.json()["models"] == models
            except httpx.TransportError:
                ready = False
            in_a_row = in_a_row + 1 if ready else 0
            time.sleep(0.05 if ready else 0.2)
        if in_a_row < 16:
            raise TimeoutError(f"server not serving {models} in time")

    def stop(self) -> None:
        self.client.close()
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # uvicorn and its workers
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


@pytest.fixture(scope="session")
def server_process(tmp_path_factory):
    """Two uvicorn workers on an empty store, started first: they import torch and Keras while
    the model trains, and pick it up from the store once it is published."""
    root = tmp_path_factory.mktemp("store") / "store"
    ModelStore(root)
    server = Server(root, workers=2, log=tmp_path_factory.mktemp("log") / "server.log")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def store(server_process, served_forecaster) -> ModelStore:
    """The server's store with model "syn" at versions 1 (production) and 2."""
    _, path = served_forecaster
    store = ModelStore(server_process.store)
    store.publish(path, "syn")
    store.publish(path, "syn")
    return store


@pytest.fixture(scope="session")
def server(server_process, store) -> Server:
    """The running server, once every worker serves "syn" version 1."""
    server_process.wait_ready({"syn": "1"})
    return server_process
