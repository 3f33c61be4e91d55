"""The store's database on both backends: SQLite in the store, and a real PostgreSQL server
(Debian's binaries, started once per session; skipped only where they are not installed).

Every test taking `database` runs twice: on SQLite (`database` is None) and on a new, empty
PostgreSQL database (`database` is its URL).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import threading
import time

import numpy as np
import psycopg
import pytest

from deepcast.errors import ConfigError, MissingExtraError
from deepcast.serving.ledger import Ledger
from deepcast.serving.store import DATABASE, DATABASE_URL, ModelStore

from .conftest import HEADERS, Server, free_port, records
from .postgres import PostgresServer


@pytest.fixture(scope="session")
def postgres():
    server = PostgresServer.start()
    if server is None:
        pytest.skip("PostgreSQL is not installed (/usr/lib/postgresql/*/bin; `make test` does)")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request) -> str | None:
    """None (SQLite in the store) or the URL of a new PostgreSQL database."""
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("postgres").new_database()


@pytest.fixture
def open_store(tmp_path):
    """`open_store(root=..., database=...)`: a ModelStore, its connections closed afterwards."""
    opened = []

    def open_(root=tmp_path / "store", **options) -> ModelStore:
        store = ModelStore(root, **options)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.db.close()


def _rows(start: int, values: list[float]) -> list[tuple[int, str, str]]:
    """Hourly observation rows (ts ns, ISO text, data JSON) from hour `start` on."""
    hour = 3_600 * 10**9
    base = 1_704_067_200 * 10**9  # 2024-01-01T00:00:00
    return [
        (base + (start + i) * hour, f"2024-01-01T{start + i:02d}:00:00", json.dumps({"y": v}))
        for i, v in enumerate(values)
    ]


def test_events_of_publish_promote_and_rollback(open_store, database, served_forecaster):
    _, path = served_forecaster
    store = open_store(database=database)
    assert [store.publish(path, "m") for _ in range(3)] == ["1", "2", "3"]
    store.promote("m", "3")
    assert store.rollback("m") == "1" and store.alias("m") == "1"
    events = store.db.events("m")
    kinds = [(e["type"], e["version"]) for e in events]
    assert kinds == [
        ("published", "1"),
        ("promoted", "1"),
        ("published", "2"),
        ("published", "3"),
        ("promoted", "3"),
        ("promoted", "1"),
    ]
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    assert events[-1]["detail"] == {"alias": "production", "from": "3"}
    assert events[0]["time"].endswith("+00:00")
    assert [e["type"] for e in store.db.events("m", limit=2)] == ["promoted", "promoted"]
    assert len(store.db.events("m", kinds=("published",))) == 3
    assert store.db.events("other") == []


def test_observations_append_replace_and_read(open_store, database):
    db = open_store(database=database).db
    rows = _rows(0, [1.0, 2.0, 3.0, 4.0])
    assert db.append_observations("m", rows) == {"inserted": 4, "replaced": 0, "unchanged": 0}
    # sent again: idempotent; one value corrected: replaced; one new row
    again = rows[:3] + _rows(3, [40.0]) + _rows(4, [5.0])
    assert db.append_observations("m", again) == {"inserted": 1, "replaced": 1, "unchanged": 3}
    assert db.append_observations("m", []) == {"inserted": 0, "replaced": 0, "unchanged": 0}
    stamps = [ts for ts, _, _ in _rows(0, [0.0] * 7)]
    assert db.stored_timestamps("m", stamps) == set(stamps[:5])
    assert db.stored_timestamps("m", []) == set() and db.stored_timestamps("x", stamps) == set()
    assert db.last_timestamp("m") == stamps[4] and db.last_timestamp("x") is None
    assert db.latest_observations("m", 2) == [
        {"timestamp": "2024-01-01T03:00:00", "y": 40.0},
        {"timestamp": "2024-01-01T04:00:00", "y": 5.0},
    ]
    assert [r["y"] for r in db.latest_observations("m", 100)] == [1.0, 2.0, 3.0, 40.0, 5.0]
    assert db.count_since("m", stamps[1]) == 3 and db.count_since("m", stamps[4]) == 0
    assert [r["y"] for r in db.observations_since("m", stamps[1])] == [2.0, 3.0, 40.0, 5.0]
    assert [r["y"] for r in db.observations_since("m", stamps[1], limit=2)] == [40.0, 5.0]
    # a large batch (more timestamps than one IN list holds)
    many = _rows(0, [float(i) for i in range(1200)])
    counts = db.append_observations("big", many)
    assert counts == {"inserted": 1200, "replaced": 0, "unchanged": 0}
    assert len(db.stored_timestamps("big", [ts for ts, _, _ in many])) == 1200


def test_ledger_forecasts_errors_alarms_and_jobs(open_store, database):
    ledger = Ledger(open_store(database=database).db)
    steps = json.dumps([{"step": 1, "timestamp": "2024-01-01T01:00:00", "value": 1.5}])
    rows = [(10**18 + i, f"origin {i}", steps) for i in range(3)]
    assert ledger.record_forecasts("m", "1", rows) == 3
    assert ledger.record_forecasts("m", "1", rows[1:] + [(10**18 + 3, "origin 3", steps)]) == 1
    assert ledger.first_origin("m", "1") == 10**18 and ledger.last_origin("m", "1") == 10**18 + 3
    assert ledger.last_origin("m", "2") is None
    latest = ledger.latest_forecast("m", "1")
    assert latest == {"origin": "origin 3", "forecast": json.loads(steps)}
    assert [(v, o) for v, o, _ in ledger.forecasts_since("m", 10**18 + 2)] == [
        ("1", 10**18 + 2),
        ("1", 10**18 + 3),
    ]
    errors = [("1", 10**18 + i, 1, 2 * 10**18 + i, f"t{i}", 1.0, 1.25 + i) for i in range(3)]
    assert ledger.record_errors("m", errors) == 3
    assert ledger.record_errors("m", errors) == 0
    times, values = ledger.one_step_errors("m", "1")
    np.testing.assert_array_equal(times, [2 * 10**18 + i for i in range(3)])
    np.testing.assert_allclose(values, [0.25, 1.25, 2.25])  # double precision, not float4
    assert ledger.recent_errors("m", 2) == [
        {"timestamp": "t1", "version": "1", "error": 1.25},
        {"timestamp": "t2", "version": "1", "error": 2.25},
    ]
    assert ledger.one_step_errors("m", "9")[0].size == 0

    assert ledger.claim_alarm("m", "1", "errors", 10)
    assert not ledger.claim_alarm("m", "1", "errors", 10)
    assert ledger.claim_alarm("m", "2", "errors", 10)
    assert ledger.claim_job("m") and not ledger.claim_job("m") and ledger.job_running("m")
    ledger.job_started("m", 2**22 + 12345)  # a pid that is not running: the slot is stale
    assert not ledger.job_running("m") and ledger.claim_job("m")
    ledger.release_job("m")
    assert not ledger.job_running("m")
    # a retraining started by another machine sharing the database: its pid means nothing
    # here, so its slot is held (for up to REMOTE_JOB_HOURS)
    assert ledger.claim_job("m")
    ledger.job_started("m", 2**22 + 12345)
    with ledger.db.connect() as con:
        con.execute("UPDATE jobs SET host = ? WHERE model = ?", ("elsewhere", "m"))
    assert ledger.job_running("m") and not ledger.claim_job("m")


def test_racing_claims_have_one_winner(open_store, database):
    """Eight threads (the monitor and request threads of several workers) claim one job and
    one alarm at once: exactly one of each wins."""
    ledger = Ledger(open_store(database=database).db)
    won = {"job": [], "alarm": []}
    barrier = threading.Barrier(8)

    def claim():
        barrier.wait()
        won["job"].append(ledger.claim_job("m"))
        won["alarm"].append(ledger.claim_alarm("m", "1", "inputs", 5))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(won["job"]) == [False] * 7 + [True]
    assert sorted(won["alarm"]) == [False] * 7 + [True]


def test_two_servers_on_one_store_see_each_others_writes(open_store, database, tmp_path):
    first = open_store(database=database)
    second = open_store()  # a second server: the same store, its database found there
    assert (second.db.url is None) == (database is None)
    first.db.append_observations("m", _rows(0, [1.0, 2.0]))
    assert second.db.append_observations("m", _rows(1, [2.0, 3.0]))["inserted"] == 1
    first.db.add_event("m", "drift", {"at": "x"}, version="1")
    assert [e["type"] for e in second.db.events("m")] == ["drift"]
    assert [r["y"] for r in first.db.latest_observations("m", 5)] == [1.0, 2.0, 3.0]
    assert Ledger(first.db).claim_job("m") and not Ledger(second.db).claim_job("m")


def _append_in_child(db, start: int) -> None:
    db.append_observations("m", _rows(start, [float(start)]))


def test_a_forked_process_opens_connections_of_its_own(open_store, postgres):
    """A worker forked after the parent used the database (gunicorn-style) must not share
    the parent's connections, nor close them on its way out."""
    db = open_store(database=postgres.new_database()).db
    db.append_observations("m", _rows(0, [0.0]))  # the parent's pool is open now
    context = multiprocessing.get_context("fork")
    children = [context.Process(target=_append_in_child, args=(db, i)) for i in (1, 2)]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=60)
    assert [child.exitcode for child in children] == [0, 0]
    assert [r["y"] for r in db.latest_observations("m", 5)] == [0.0, 1.0, 2.0]
    db.append_observations("m", _rows(3, [3.0]))  # the parent's connections still work
    assert db.count_since("m", 0) == 4


def test_the_url_is_recorded_without_its_password_and_found_again(
    open_store, postgres, monkeypatch
):
    monkeypatch.setenv("PGPASSWORD", "")
    monkeypatch.delenv("PGPASSWORD")  # restored (unset) after the test
    url = postgres.new_database()
    with_password = url.replace("postgres@", "postgres:s3cret@")  # trust: any password passes
    store = open_store(database=with_password)
    recorded = (store.root / DATABASE_URL).read_text().strip()
    assert recorded == url and "s3cret" not in recorded
    assert os.environ["PGPASSWORD"] == "s3cret"  # for the workers it starts, as libpq reads it
    assert not (store.root / DATABASE).exists()
    again = open_store(create=False)  # `deepcast serve --store S`, the retrain worker...
    assert again.db.url == url
    assert open_store(database=url).db.url == url  # the same URL again: fine


def test_a_different_url_is_refused_naming_both(open_store, postgres, tmp_path):
    url, other = postgres.new_database(), postgres.new_database()
    open_store(database=url)
    with pytest.raises(ConfigError) as error:
        open_store(database=other.replace("postgres@", "postgres:s3cret@"))
    message = str(error.value)
    assert url in message and other in message and "s3cret" not in message
    # a SQLite store cannot be switched to a URL either
    open_store(root=tmp_path / "lite")
    with pytest.raises(ConfigError, match="SQLite"):
        open_store(root=tmp_path / "lite", database=url)


@pytest.mark.parametrize(
    "url, expected",
    [
        ("postgresql://me:pw@127.0.0.1:{port}/deepcast", "127.0.0.1:"),  # nobody listens
        ("postgresql://me@127.0.0.1:notaport/deepcast", "invalid database URL"),
        ("mysql://me@127.0.0.1/deepcast", "unsupported database URL"),
    ],
    ids=["unreachable", "bad port", "not postgresql"],
)
def test_a_bad_or_unreachable_url_is_one_clear_line(tmp_path, url, expected):
    with pytest.raises(ConfigError) as error:
        ModelStore(tmp_path / "s", database=url.format(port=free_port()))
    message = str(error.value)
    assert expected in message and "\n" not in message and ":pw@" not in message
    assert not (tmp_path / "s" / DATABASE_URL).exists()


def test_a_role_that_may_not_create_tables_is_one_clear_line(open_store, postgres):
    url = postgres.new_database()
    with psycopg.connect(url, autocommit=True) as con:
        con.execute("CREATE ROLE reader LOGIN")
        con.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    with pytest.raises(ConfigError, match=r"127\.0\.0\.1:\d+: .*permission denied") as error:
        open_store(database=url.replace("postgres@", "reader@"))
    assert "\n" not in str(error.value)


def test_the_cli_says_so_in_one_line_with_exit_code_2(tmp_path, served_forecaster):
    _, path = served_forecaster
    url = f"postgresql://me@127.0.0.1:{free_port()}/deepcast"
    command = [sys.executable, "-m", "deepcast.cli", "publish", "--model", str(path)]
    command += ["--store", str(tmp_path / "s"), "--name", "m", "--database", url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "127.0.0.1:" in lines[0] and "Traceback" not in done.stderr


def test_without_psycopg_the_error_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import fails as if not installed
    with pytest.raises(MissingExtraError, match=r"deepcast\[postgres\]"):
        ModelStore(tmp_path / "s", database="postgresql://me@127.0.0.1:5432/deepcast")


@pytest.mark.slow
def test_deepcast_serve_on_a_store_in_postgresql(
    postgres, served_forecaster, serving_data, tmp_path
):
    """Two uvicorn workers on a store bound to PostgreSQL: observations posted through one
    are what the latest forecast (from either) is made from."""
    _, path = served_forecaster
    url = postgres.new_database()
    store = ModelStore(tmp_path / "store", database=url)
    store.publish(path, "syn")
    store.db.close()
    options = ("--database", url)  # the recorded one: accepted
    server = Server(tmp_path / "store", workers=2, log=tmp_path / "server.log", options=options)
    try:
        server.wait_ready({"syn": "1"})
        test = serving_data[2]
        body = {"observations": records(test.iloc[:30])}
        answer = server.client.post("/v1/models/syn/observations", json=body, headers=HEADERS)
        assert answer.status_code == 200, answer.text
        assert answer.json()["inserted"] == 30
        again = server.client.post("/v1/models/syn/observations", json=body, headers=HEADERS)
        assert again.json()["unchanged"] == 30
        latest = server.client.get("/v1/models/syn/forecast/latest")
        assert latest.status_code == 200, latest.text
        assert latest.json()["origin"] == test.index[29].isoformat()
        reader = ModelStore(tmp_path / "store")
        assert reader.db.count_since("syn", 0) == 30
        # the workers' monitor threads keep their rolling forecasts in PostgreSQL too
        ledger, deadline = Ledger(reader.db), time.monotonic() + 60
        while ledger.last_origin("syn", "1") is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ledger.last_origin("syn", "1") == test.index[29].value
        reader.db.close()
        # a later command given only --store finds the database too
        command = [sys.executable, "-m", "deepcast.cli", "events", "--store", str(server.store)]
        done = subprocess.run([*command, "--name", "syn", "--json"], capture_output=True,
                              text=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert [json.loads(line)["type"] for line in done.stdout.splitlines()][:2] == [
            "published",
            "promoted",
        ]
    finally:
        server.stop()
