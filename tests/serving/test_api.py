"""The service over HTTP: a real `deepcast serve` subprocess on a loopback port."""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import API_KEY, HEADERS, records


def test_health_and_ready_name_the_served_version(server):
    assert server.client.get("/health").json()["status"] == "ok"
    ready = server.client.get("/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "models": {"syn": "1"}}


def test_forecast_equals_forecaster_predict_on_the_same_rows(
    server, served_forecaster, serving_data
):
    f, _ = served_forecaster
    rows = serving_data[2].iloc[:60]
    response = server.client.post("/v1/models/syn/forecast", json={"observations": records(rows)})
    assert response.status_code == 200, response.text
    body = response.json()
    expected = f.predict(rows).iloc[-1]
    assert body["model"] == "syn" and body["version"] == "1"
    assert body["origin"] == rows.index[-1].isoformat()
    assert [s["step"] for s in body["forecast"]] == [1, 2, 3]
    assert body["forecast"][0]["timestamp"] == (rows.index[-1] + rows.index.freq).isoformat()
    np.testing.assert_allclose([s["value"] for s in body["forecast"]], expected, rtol=1e-6)


def test_forecast_from_csv_text_equals_the_json_forecast(server, serving_data):
    rows = serving_data[2].iloc[:40]
    by_json = server.client.post("/v1/models/syn/forecast", json={"observations": records(rows)})
    by_csv = server.client.post("/v1/models/syn/forecast", json={"csv": rows.to_csv()})
    assert by_csv.status_code == 200, by_csv.text
    assert by_csv.json() == by_json.json()


def test_levels_add_intervals_around_the_forecast(server, served_forecaster, serving_data):
    f, _ = served_forecaster
    rows = serving_data[2].iloc[:30]
    body = server.client.post(
        "/v1/models/syn/forecast", json={"observations": records(rows), "levels": [80, 95]}
    ).json()
    expected = f.predict(rows, levels=[80, 95]).iloc[-1]
    for step in body["forecast"]:
        h = step["step"]
        assert step["lo_95"] <= step["lo_80"] <= step["value"] <= step["hi_80"] <= step["hi_95"]
        assert step["lo_80"] == pytest.approx(expected[f"lo_80[t+{h}]"], rel=1e-6)
        assert step["hi_95"] == pytest.approx(expected[f"hi_95[t+{h}]"], rel=1e-6)


def test_explain_returns_top_cells_and_the_full_map_when_asked(server, serving_data):
    rows = records(serving_data[2].iloc[:30])
    top = server.client.post("/v1/models/syn/explain", json={"observations": rows, "top": 4})
    assert top.status_code == 200, top.text
    body = top.json()
    assert body["version"] == "1" and len(body["top_cells"]) == 4 and "values" not in body
    importance = [c["importance"] for c in body["top_cells"]]
    assert importance == sorted(importance, reverse=True)
    full = server.client.post(
        "/v1/models/syn/explain", json={"observations": rows, "full": True}
    ).json()
    assert np.shape(full["values"]) == (24, 3) and full["features"] == ["y", "x1", "x2"]


def test_rolling_appends_equal_a_full_recompute(server, served_forecaster, serving_data):
    f, _ = served_forecaster
    series = serving_data[2].iloc[:40]
    post = server.client.post
    start = post("/v1/models/syn/observations", json={"observations": records(series.iloc[:24])},
                 headers=HEADERS)  # fmt: skip
    assert start.status_code == 200, start.text
    assert start.json()["inserted"] == 24
    for end in (27, 28, 33, 40):  # appends of 3, 1, 5 and 7 rows
        already = len(server.client.get("/v1/models/syn/forecast/latest").json()["forecast"])
        assert already == 3
        chunk = series.iloc[end - {27: 3, 28: 1, 33: 5, 40: 7}[end] : end]
        appended = post("/v1/models/syn/observations", json={"observations": records(chunk)},
                        headers=HEADERS)  # fmt: skip
        assert appended.status_code == 200, appended.text
        latest = server.client.get("/v1/models/syn/forecast/latest").json()
        recompute = f.predict(series.iloc[:end]).iloc[-1].to_numpy()
        assert latest["origin"] == series.index[end - 1].isoformat()
        np.testing.assert_allclose([s["value"] for s in latest["forecast"]], recompute, atol=1e-6)

    # A row sent again changes nothing, and the forecast stays the same.
    before = server.client.get("/v1/models/syn/forecast/latest").json()
    again = post("/v1/models/syn/observations", json={"observations": records(series.iloc[-2:])},
                 headers=HEADERS)  # fmt: skip
    assert again.json()["unchanged"] == 2 and again.json()["inserted"] == 0
    assert server.client.get("/v1/models/syn/forecast/latest").json() == before


def _shifted(rows: list[dict], hours: int) -> list[dict]:
    import pandas as pd

    return [
        {**r, "timestamp": (pd.Timestamp(r["timestamp"]) + pd.Timedelta(hours=hours)).isoformat()}
        for r in rows
    ]


@pytest.mark.parametrize(
    "case,expected",
    [
        ("gap", "gap in the series"),
        ("wrong column", "unknown column 'humidity'"),
        ("missing column", "column 'x2' is missing"),
        ("non-number", "row 1, column 'x1': 'abc' is not a number"),
        ("bad timestamp", "cannot parse 'yesterday' as a timestamp"),
        ("duplicate", "same timestamp"),
    ],
)
def test_bad_observations_are_422_naming_the_problem(server, serving_data, case, expected):
    rows = records(serving_data[2].iloc[100:102])  # far past anything stored: a gap
    if case == "gap":
        body = rows
    elif case == "wrong column":
        body = [{**rows[0], "humidity": 0.5}]
    elif case == "missing column":
        body = [{k: v for k, v in rows[0].items() if k != "x2"}]
    elif case == "non-number":
        body = [{**rows[0], "x1": "abc"}]
    elif case == "bad timestamp":
        body = [{**rows[0], "timestamp": "yesterday"}]
    else:
        body = [rows[0], rows[0]]
    response = server.client.post(
        "/v1/models/syn/observations", json={"observations": body}, headers=HEADERS
    )
    assert response.status_code == 422, response.text
    assert expected in response.json()["detail"]


@pytest.mark.parametrize(
    "path,body,status,expected",
    [
        ("/v1/models/syn/forecast", {}, 422, "either 'observations'"),
        ("/v1/models/syn/forecast", {"observations": [], "csv": "a"}, 422, "either"),
        ("/v1/models/syn/forecast", {"observations": "rows"}, 422, "body.observations"),
        ("/v1/models/syn/forecast", {"observations": [1, 2]}, 422, "body.observations.0"),
        ("/v1/models/syn/forecast", {"csv": "timestamp,y\n2024-01-01,1"}, 422, "x1"),
        ("/v1/models/syn/forecast", {"csv": "\x00\x01"}, 422, "no time column"),
        ("/v1/models/nope/forecast", {"csv": "a"}, 404, "no model named 'nope'"),
        ("/v1/models/syn/explain", {"csv": "a", "top": 0}, 422, "body.top"),
        ("/v1/models/syn/nothing", {}, 404, "Not Found"),
    ],
)
def test_malformed_requests_get_4xx_with_one_clear_message(server, path, body, status, expected):
    response = server.client.post(path, json=body)
    assert response.status_code == status, response.text
    assert expected in response.json()["detail"]
    assert "\n" not in response.json()["detail"]


def test_malformed_forecast_rows_are_422(server, serving_data):
    rows = records(serving_data[2].iloc[:30])
    cases = {
        "too few": (rows[:5], "5 rows are too few"),
        "non-number": ([{**r, "y": "n/a"} for r in rows], "'y'"),
        "no time": ([{k: v for k, v in r.items() if k != "timestamp"} for r in rows], "time"),
        "levels": (rows, "level"),
    }
    for name, (body, expected) in cases.items():
        payload = {"observations": body, "levels": [150] if name == "levels" else None}
        response = server.client.post("/v1/models/syn/forecast", json=payload)
        assert response.status_code == 422, (name, response.text)
        assert expected in response.json()["detail"], (name, response.json())


def test_invalid_json_and_oversized_bodies_are_refused(server):
    bad = server.client.post(
        "/v1/models/syn/forecast",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert bad.status_code == 422 and "JSON" in bad.json()["detail"]
    huge = server.client.post("/v1/models/syn/forecast", content=b"x" * (3 * 1024 * 1024))
    assert huge.status_code == 413 and "bytes" in huge.json()["detail"]

    def chunks():  # no Content-Length: the limit counts the bytes as they arrive
        for _ in range(48):
            yield b"x" * 65536

    chunked = server.client.post("/v1/models/syn/forecast", content=chunks())
    assert chunked.status_code == 413 and "bytes" in chunked.json()["detail"]


def test_writes_without_a_valid_key_are_401(server, serving_data):
    rows = {"observations": records(serving_data[2].iloc[:1])}
    for headers in ({}, {"X-API-Key": "wrong-key-0123456789"}, {"X-API-Key": API_KEY[:-1]}):
        observed = server.client.post("/v1/models/syn/observations", json=rows, headers=headers)
        activated = server.client.post("/v1/models/syn/versions/2/activate", headers=headers)
        assert observed.status_code == 401 and activated.status_code == 401
        assert "API key" in observed.json()["detail"]
    assert server.client.get("/ready").json()["models"] == {"syn": "1"}


@pytest.mark.parametrize("name", ["..", "...", "a..b", ".hidden", "%2E%2E", "syn%2F..%2F.."])
def test_path_traversal_model_names_are_refused(server, store, name):
    response = server.client.post(f"/v1/models/{name}/versions/1/activate", headers=HEADERS)
    assert response.status_code in (404, 422), response.text
    response = server.client.post(f"/v1/models/syn/versions/{name}/activate", headers=HEADERS)
    assert response.status_code in (404, 422), response.text
    assert store.alias("syn") == "1"


def test_activating_an_unknown_version_is_422_and_changes_nothing(server, store):
    response = server.client.post("/v1/models/syn/versions/9/activate", headers=HEADERS)
    assert response.status_code == 422
    assert "no version '9'" in response.json()["detail"]
    assert store.alias("syn") == "1"


def test_openapi_lists_every_endpoint(server):
    paths = server.client.get("/openapi.json").json()["paths"]
    expected = {
        "/health": "get",
        "/ready": "get",
        "/metrics": "get",
        "/v1/models": "get",
        "/v1/models/{name}/forecast": "post",
        "/v1/models/{name}/explain": "post",
        "/v1/models/{name}/observations": "post",
        "/v1/models/{name}/forecast/latest": "get",
        "/v1/models/{name}/versions/{version}/activate": "post",
        "/v1/models/{name}/events": "get",
        "/v1/models/{name}/monitor": "get",
        "/v1/models/{name}/versions": "post",
    }
    for path, method in expected.items():
        assert method in paths.get(path, {}), path
    assert server.client.get("/docs").status_code == 200


def test_models_events_and_metrics(server, serving_data):
    listing = server.client.get("/v1/models").json()["models"]
    assert listing[0]["name"] == "syn" and listing[0]["versions"] == ["1", "2"]
    assert listing[0]["active"] == "1" and listing[0]["columns"] == ["y", "x1", "x2"]
    events = server.client.get("/v1/models/syn/events").json()["events"]
    assert [(e["type"], e["version"]) for e in events[:3]] == [
        ("published", "1"),
        ("promoted", "1"),
        ("published", "2"),
    ]
    assert {"id", "time", "type", "version", "detail"} == set(events[0])
    # Each worker counts its own requests: forecast and read on one kept-alive connection.
    rows = {"observations": records(serving_data[2].iloc[:30])}
    assert server.client.post("/v1/models/syn/forecast", json=rows).status_code == 200
    metrics = server.client.get("/metrics").text
    assert 'deepcast_active_version{model="syn",version="1"} 1.0' in metrics
    assert 'deepcast_request_seconds_bucket{endpoint="/v1/models/{name}/forecast"' in metrics
    assert "deepcast_errors_total" in metrics
