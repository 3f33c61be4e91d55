"""Rebuild docs/figures/dashboard.png: the live dashboard over a served model with content.

The scenario of tests/serving/test_drift_retraining.py: a CNN-LSTM trained on 2,000 rows of
the synthetic series is served by `deepcast serve --retrain-rows 600`; the rows after them
are posted in batches, with the coefficient of x1 (three hours back) halved from row 2,300.
The monitor raises drift, retrains, promotes version 2, and the page shows it all. Debian's
headless Chromium then photographs the page.

    python scripts/dashboard_figure.py [docs/figures/dashboard.png]
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

import deepcast as dc
from deepcast.serving.store import ModelStore

KEY = "figure-key-0123456789abcdef"
TRAIN, SHIFT_AT, ROWS, BATCH, RETRAIN_ROWS = 2000, 2300, 3400, 20, 600


def events(client: httpx.Client) -> list[dict]:
    return client.get("/v1/models/demand/events", params={"limit": 1000}).json()["events"]


def wait_for_verdict(client: httpx.Client, timeout: float = 300) -> None:
    """Until the retraining's challenger is promoted or rejected (or the retraining failed),
    then until the worker serves the result."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kinds = [e["type"] for e in events(client)]
        if "retrain_failed" in kinds or kinds.count("promoted") + kinds.count("rejected") > 1:
            time.sleep(2)  # the worker switches within its watch interval
            return
        time.sleep(1)
    raise TimeoutError("no verdict on the challenger")


def model(folder: Path) -> Path:
    history = dc.datasets.synthetic(n_steps=TRAIN, seed=11)
    f = dc.Forecaster(
        "y", lookback=24, horizon=3, model="cnn_lstm", window_norm=True, learning_rate=3e-3,
        patience=10, seed=2,
    )  # fmt: skip
    f.fit(history.iloc[:1500], validation=history.iloc[1500:], epochs=40, verbose=False)
    f.save(folder / "model")
    return folder / "model"


def observations():
    frame = dc.datasets.synthetic(n_steps=ROWS, seed=11, drift="driver", drift_at=SHIFT_AT)
    out = frame.iloc[TRAIN:].reset_index()
    out["timestamp"] = out["timestamp"].map(lambda t: t.isoformat())
    return out.to_dict(orient="records")


def wait_ready(client: httpx.Client, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if client.get("/ready").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise TimeoutError("the server did not become ready")


def screenshot(url: str, out: Path) -> None:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--hide-scrollbars"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.set_window_size(1400, 1000)
        driver.get(url)
        time.sleep(3)
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1400, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        time.sleep(2.5)
        driver.save_screenshot(str(out))
    finally:
        driver.quit()


def main(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        store = ModelStore(folder / "store")
        path = model(folder)
        store.publish(path, "demand")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        env = {**os.environ, "DEEPCAST_API_KEY": KEY, "OMP_NUM_THREADS": "1"}
        command = [sys.executable, "-m", "deepcast.cli", "serve", "--store", str(folder / "store")]
        server = subprocess.Popen(
            [*command, "--port", str(port), "--retrain-rows", str(RETRAIN_ROWS)], env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=url, timeout=30, headers={"X-API-Key": KEY}) as client:
                wait_ready(client)
                rows = observations()
                times = [row["timestamp"] for row in rows]
                waited = False
                for start in range(0, len(rows), BATCH):
                    batch = {"observations": rows[start : start + BATCH]}
                    client.post("/v1/models/demand/observations", json=batch).raise_for_status()
                    alarms = [e for e in events(client) if e["type"] == "drift"]
                    if waited or not alarms:
                        continue
                    # Rows arrive hourly in life: give the retraining the time it takes.
                    if start + BATCH > times.index(alarms[0]["detail"]["at"]) + RETRAIN_ROWS:
                        wait_for_verdict(client)
                        waited = True
                newest = rows[-1]["timestamp"]
                for _ in range(60):
                    view = client.get("/v1/models/demand/monitor").json()
                    if (view["forecast"] or {}).get("origin") == newest and view["attributions"]:
                        break
                    time.sleep(1)
            events_command = [sys.executable, "-m", "deepcast.cli", "events", "--name", "demand"]
            subprocess.run([*events_command, "--store", str(folder / "store")], check=True)
            out.parent.mkdir(parents=True, exist_ok=True)
            screenshot(f"{url}/?refresh=2&limit=1300&window=120", out)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=20)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/figures/dashboard.png"))
