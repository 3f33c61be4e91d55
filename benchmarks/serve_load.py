"""Serving under load, end to end over HTTP on the loopback: `deepcast serve` in a subprocess.

A 2x64 LSTM (lookback 168, horizon 24) on vic_elec hourly (demand, temperature, holiday) is
trained briefly (latency is the subject here, not accuracy), saved, published twice (versions
1 and 2) and served. Measured in one run:

- p50/p99 latency of `POST /v1/models/vic/forecast` (168 JSON records in, 24 steps out) with 1
  client and with 32 concurrent clients, and requests/s;
- in-process references on the same window: `Forecaster.predict`, the Keras model called
  directly, and NeuralForecast's LSTM `predict` (same lookback, horizon and layers);
- 10 activations (alternating versions 2 and 1) while 32 clients run: non-2xx responses and
  responses whose version is neither of the two;
- the server's resident memory before and after 10,000 more requests.

Bounded in requests and time (every phase stops at its request count or its time limit):

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/serve_load.py
    .venv/bin/python benchmarks/serve_load.py --requests 200 --memory-requests 2000  # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from _common import RESULTS, nf_long_frame, num, vic_elec_task, write_results

import deepcast as dc
from deepcast import _backend
from deepcast.serving.store import ModelStore

LOOKBACK, HORIZON, UNITS, LAYERS = 168, 24, 64, 2
API_KEY = "serve-load-benchmark-key"


# ------------------------------------------------------------------------------- the model
def train(task, epochs: int) -> dc.Forecaster:
    train_part, val_part, _ = task.parts()
    f = dc.Forecaster(task.target, lookback=LOOKBACK, horizon=HORIZON, units=UNITS, layers=LAYERS)
    return f.fit(train_part, validation=val_part, epochs=epochs, verbose=False)


def window_records(task) -> tuple[list[dict], object]:
    """The newest LOOKBACK hourly rows as JSON records (what a client posts), and the frame."""
    frame = task.frame.iloc[-LOOKBACK:]
    out = frame.reset_index()
    out["timestamp"] = out["timestamp"].map(lambda t: t.isoformat())
    return out.to_dict(orient="records"), frame


def median_ms(fn, n: int) -> tuple[float, float]:
    """(median, p99) milliseconds of `n` calls of `fn` after 3 warm-up calls."""
    for _ in range(3):
        fn()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times), float(np.percentile(times, 99))


def neuralforecast_predict(task, steps: int, calls: int) -> dict:
    """NeuralForecast's LSTM, same shape, trained `steps` steps; `predict` of the same
    forecast (the newest window), timed in this process."""
    from neuralforecast import NeuralForecast
    from neuralforecast.models import LSTM

    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning").setLevel(logging.ERROR)
    covariates = [c for c in task.frame.columns if c != task.target]
    long = nf_long_frame(task.frame, task.target, "vic")
    model = LSTM(
        h=HORIZON,
        input_size=LOOKBACK,
        encoder_n_layers=LAYERS,
        encoder_hidden_size=UNITS,
        hist_exog_list=covariates,
        max_steps=steps,
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=False,
        accelerator="cpu",
    )
    nf = NeuralForecast(models=[model], freq="h")
    nf.fit(df=long)
    window = long.iloc[-LOOKBACK:]
    p50, p99 = median_ms(lambda: nf.predict(df=window), calls)
    return {"p50_ms": p50, "p99_ms": p99, "calls": calls, "train_steps": steps}


# ------------------------------------------------------------------------------ the server
class Server:
    def __init__(self, store: Path, log: Path, workers: int):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(log, "w")  # noqa: SIM115 -- closed in stop()
        env = {**os.environ, "DEEPCAST_API_KEY": API_KEY}
        command = [sys.executable, "-m", "deepcast.cli", "serve", "--store", str(store)]
        command += ["--port", str(self.port), "--workers", str(workers)]
        self.process = subprocess.Popen(
            command, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_ready(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"server exited ({self.process.returncode}); see {self.log.name}")
            try:
                if httpx.get(f"{self.url}/ready", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        raise SystemExit("server not ready in time")

    def rss_mb(self) -> float:
        """Resident memory of the server and its worker processes, MB."""
        pids = [self.process.pid]
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        if children.exists():
            pids += [int(p) for p in children.read_text().split()]
        total = 0
        for pid in pids:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        return total / 1024

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


# ------------------------------------------------------------------------------ the clients
async def load(url: str, body: bytes, clients: int, requests: int, seconds: float) -> dict:
    """`clients` concurrent clients posting `body` until `requests` are done or `seconds`
    have passed: latencies, statuses and versions."""
    latencies, statuses, versions = [], [], []
    deadline = time.perf_counter() + seconds
    remaining = requests
    headers = {"content-type": "application/json"}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal remaining
        while remaining > 0 and time.perf_counter() < deadline:
            remaining -= 1
            start = time.perf_counter()
            try:
                response = await http.post("/v1/models/vic/forecast", content=body, headers=headers)
                status = response.status_code
                version = response.json().get("version") if status == 200 else None
            except httpx.TransportError:
                status, version = 0, None
            latencies.append((time.perf_counter() - start) * 1e3)
            statuses.append(status)
            versions.append(version)

    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return {
        "clients": clients,
        "requests": len(latencies),
        "seconds": elapsed,
        "requests_per_s": len(latencies) / elapsed,
        "p50_ms": float(np.percentile(latencies, 50)),
        "p99_ms": float(np.percentile(latencies, 99)),
        "non_2xx": sum(not 200 <= s < 300 for s in statuses),
        "versions": versions,
    }


async def promotions(url: str, body: bytes, n: int, clients: int) -> dict:
    """`n` activations, alternating versions 2 and 1, while `clients` clients run."""
    done = asyncio.Event()
    results = {"activations": [], "failed_activations": 0}

    async def activate() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=120) as http:
            await asyncio.sleep(1.0)
            for i in range(n):
                version = "2" if i % 2 == 0 else "1"
                start = time.perf_counter()
                response = await http.post(
                    f"/v1/models/vic/versions/{version}/activate", headers={"X-API-Key": API_KEY}
                )
                results["activations"].append(
                    {"version": version, "status": response.status_code,
                     "seconds": time.perf_counter() - start}
                )  # fmt: skip
                results["failed_activations"] += response.status_code != 200
                await asyncio.sleep(0.5)
            await asyncio.sleep(1.0)
            done.set()

    async def traffic() -> dict:
        runs = []
        while not done.is_set():
            runs.append(await load(url, body, clients, 64, 30))
        return runs

    _, runs = await asyncio.gather(activate(), traffic())
    versions = [v for r in runs for v in r["versions"]]
    results.update(
        requests=len(versions),
        non_2xx=sum(r["non_2xx"] for r in runs),
        wrong_version=sum(v not in ("1", "2") for v in versions),
        served_versions=sorted({v for v in versions if v is not None}),
    )
    return results


# ---------------------------------------------------------------------------------- driver
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2, help="deepcast training epochs")
    parser.add_argument("--nf-steps", type=int, default=50, help="NeuralForecast train steps")
    parser.add_argument("--calls", type=int, default=50, help="in-process timed calls")
    parser.add_argument("--requests", type=int, default=500, help="per latency phase")
    parser.add_argument("--memory-requests", type=int, default=10_000)
    parser.add_argument("--phase-seconds", type=float, default=120, help="time cap per phase")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    task = vic_elec_task()
    rows, frame = window_records(task)
    body = json.dumps({"observations": rows}).encode()
    print(f"vic_elec hourly: {len(task.frame)} rows; request: {len(rows)} records, {len(body)} B")

    start = time.perf_counter()
    f = train(task, args.epochs)
    print(f"trained 2x64 LSTM {args.epochs} epochs in {time.perf_counter() - start:.0f}s")
    x = f._input_windows(f._frame(frame, "data"))[-1:].astype(np.float32)
    in_process = {
        "forecaster_predict": median_ms(lambda: f.predict(frame), args.calls),
        "keras_direct": median_ms(lambda: _backend.predict(f.model_, x), args.calls),
    }
    print("in-process:", {k: f"p50 {v[0]:.1f} ms" for k, v in in_process.items()})
    nf = neuralforecast_predict(task, args.nf_steps, args.calls)
    print(f"NeuralForecast predict: p50 {nf['p50_ms']:.1f} ms, p99 {nf['p99_ms']:.1f} ms")

    with tempfile.TemporaryDirectory(prefix="serve-load-") as tmp:
        tmp = Path(tmp)
        f.save(tmp / "model")
        store = ModelStore(tmp / "store")
        store.publish(tmp / "model", "vic")
        store.publish(tmp / "model", "vic")
        server = Server(store.root, tmp / "server.log", args.workers)
        try:
            server.wait_ready()
            check = httpx.post(f"{server.url}/v1/models/vic/forecast", content=body, timeout=60,
                               headers={"content-type": "application/json"})  # fmt: skip
            served = np.array([s["value"] for s in check.json()["forecast"]])
            gap = float(np.max(np.abs(served - f.predict(frame).iloc[-1].to_numpy())))
            print(f"served forecast vs Forecaster.predict: max |difference| {gap:.2e}")
            phases = {}
            for clients in (1, 32):
                run = asyncio.run(
                    load(server.url, body, clients, args.requests, args.phase_seconds)
                )
                run.pop("versions")
                phases[f"clients_{clients}"] = run
                print(
                    f"{clients:>2} clients: {run['requests']} requests, p50 {run['p50_ms']:.1f} "
                    f"ms, p99 {run['p99_ms']:.1f} ms, {run['requests_per_s']:.0f} req/s, "
                    f"non-2xx {run['non_2xx']}"
                )
            swaps = asyncio.run(promotions(server.url, body, 10, 32))
            print(
                f"10 activations under 32 clients: {swaps['requests']} requests, non-2xx "
                f"{swaps['non_2xx']}, wrong version {swaps['wrong_version']}, failed "
                f"activations {swaps['failed_activations']}"
            )
            rss_before = server.rss_mb()
            memory = asyncio.run(
                load(server.url, body, 8, args.memory_requests, 4 * args.phase_seconds)
            )
            memory.pop("versions")
            rss_after = server.rss_mb()
            growth = rss_after / rss_before - 1
            print(
                f"RSS {rss_before:.0f} MB -> {rss_after:.0f} MB ({growth:+.1%}) after "
                f"{memory['requests']} requests (non-2xx {memory['non_2xx']})"
            )
        finally:
            server.stop()

    payload = {
        "setup": {
            "data": "vic_elec hourly (demand, temperature, holiday)",
            "model": "deepcast lstm 2x64, lookback 168, horizon 24",
            "epochs": args.epochs,
            "workers": args.workers,
            "cpu_count": os.cpu_count(),
            "load_average": os.getloadavg(),
        },
        "served_vs_predict_max_abs_diff": gap,
        "in_process_ms": {k: {"p50": v[0], "p99": v[1]} for k, v in in_process.items()}
        | {"neuralforecast_predict": {"p50": nf["p50_ms"], "p99": nf["p99_ms"]}},
        "http": phases,
        "promotions": swaps,
        "memory": {
            "rss_before_mb": rss_before,
            "rss_after_mb": rss_after,
            "growth": growth,
            "requests": memory["requests"],
            "non_2xx": memory["non_2xx"],
        },  # fmt: skip
    }
    write_results(args.out, "serve_load", table(payload), payload)
    print(f"wrote {args.out}/serve_load.json, serve_load.md")


def table(p: dict) -> str:
    one, many = p["http"]["clients_1"], p["http"]["clients_32"]
    ref = p["in_process_ms"]
    swaps, memory = p["promotions"], p["memory"]
    lines = [
        "# Serving under load (benchmarks/serve_load.py)",
        "",
        f"{p['setup']['model']}; {p['setup']['data']}; {p['setup']['workers']} uvicorn "
        f"worker(s); {p['setup']['cpu_count']} cores, load average at the end "
        f"{p['setup']['load_average'][0]:.1f}. End to end over HTTP on the loopback, JSON "
        "body of 168 records.",
        "",
        "| what | p50 ms | p99 ms | requests/s |",
        "|---|---|---|---|",
        f"| HTTP /forecast, 1 client | {num(one['p50_ms'])} | {num(one['p99_ms'])} | "
        f"{num(one['requests_per_s'], 0)} |",
        f"| HTTP /forecast, 32 clients | {num(many['p50_ms'])} | {num(many['p99_ms'])} | "
        f"{num(many['requests_per_s'], 0)} |",
        f"| in process: Forecaster.predict | {num(ref['forecaster_predict']['p50'])} | "
        f"{num(ref['forecaster_predict']['p99'])} | |",
        f"| in process: Keras model called directly | {num(ref['keras_direct']['p50'])} | "
        f"{num(ref['keras_direct']['p99'])} | |",
        f"| in process: NeuralForecast LSTM predict | "
        f"{num(ref['neuralforecast_predict']['p50'])} | "
        f"{num(ref['neuralforecast_predict']['p99'])} | |",
        "",
        f"Served forecast vs `Forecaster.predict` on the same rows: max |difference| "
        f"{p['served_vs_predict_max_abs_diff']:.1e}.",
        "",
        f"10 activations under 32 clients: {swaps['requests']} requests, "
        f"{swaps['non_2xx']} non-2xx, {swaps['wrong_version']} with a version neither old nor "
        f"new, {swaps['failed_activations']} failed activations.",
        "",
        f"Resident memory {memory['rss_before_mb']:.0f} MB before and "
        f"{memory['rss_after_mb']:.0f} MB after {memory['requests']} requests "
        f"({memory['growth']:+.1%}).",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
