"""Hot swaps under load: two uvicorn workers, concurrent clients, no request dropped."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from .conftest import HEADERS, records


@pytest.fixture
def two_workers(server):
    return server


def _versions(url: str, payload: dict, n: int) -> list[str]:
    """The version of `n` forecasts, each on a new connection (so both workers answer)."""
    out = []
    for _ in range(n):
        response = httpx.post(f"{url}/v1/models/syn/forecast", json=payload, timeout=30)
        assert response.status_code == 200, response.text
        out.append(response.json()["version"])
    return out


def _until(url: str, payload: dict, version: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if set(_versions(url, payload, 10)) == {version}:
            return
        time.sleep(0.1)
    raise AssertionError(f"not every worker serves version {version}")


def test_activation_under_concurrent_requests_drops_none(two_workers, serving_data):
    payload = {"observations": records(serving_data[2].iloc[:30])}
    results: list[tuple[int, str | None]] = []
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(base_url=two_workers.url, timeout=30) as http:
            while not stop.is_set():
                response = http.post("/v1/models/syn/forecast", json=payload)
                version = response.json().get("version") if response.status_code == 200 else None
                results.append((response.status_code, version))

    threads = [threading.Thread(target=client) for _ in range(6)]
    for thread in threads:
        thread.start()
    try:
        for version in ("2", "1", "2", "1", "2"):
            activated = two_workers.client.post(
                f"/v1/models/syn/versions/{version}/activate", headers=HEADERS
            )
            assert activated.status_code == 200, activated.text
            assert activated.json()["version"] == version
            time.sleep(0.3)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert len(results) > 20
    assert [status for status, _ in results if status != 200] == []
    assert {version for _, version in results} <= {"1", "2"}
    _until(two_workers.url, payload, "2")  # the worker that did not activate follows too


def test_every_worker_follows_a_promotion_from_the_command_line(two_workers, store, serving_data):
    payload = {"observations": records(serving_data[2].iloc[:30])}
    store.promote("syn", "1")  # what `deepcast promote` does: the alias file only
    _until(two_workers.url, payload, "1")
    assert two_workers.client.get("/ready").json()["models"] == {"syn": "1"}
