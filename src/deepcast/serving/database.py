"""The store's database: events (publish, promote, activate) and observations per model.

SQLite in the store directory (`STORE/deepcast.db`), in WAL mode so readers and one writer
never block each other across uvicorn workers. One short-lived connection per call: SQLite
connections are cheap, and this keeps the object safe to share between threads.

>>> db = Database(Path("store") / "deepcast.db")
>>> db.add_event("demand", "promoted", {"from": "1", "to": "2"})
>>> db.append_observations("demand", [(ts_ns, "2024-01-01T00:00:00", '{"y": 1.0}')])
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model TEXT NOT NULL,
    kind TEXT NOT NULL,
    at REAL NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_model ON events (model, id);
CREATE TABLE IF NOT EXISTS observations (
    model TEXT NOT NULL,
    ts INTEGER NOT NULL,
    timestamp TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (model, ts)
);
"""


class Database:
    """Events and observations in one SQLite file (created on first use)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        with self._connect() as db:
            db.executescript(_SCHEMA)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            yield db
        finally:
            db.close()

    # -- events ----------------------------------------------------------------------------
    def add_event(self, model: str, kind: str, detail: dict) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT INTO events (model, kind, at, detail) VALUES (?, ?, ?, ?)",
                (model, kind, time.time(), json.dumps(detail)),
            )

    def events(self, model: str, limit: int = 100) -> list[dict]:
        """The newest `limit` events of `model`, oldest first."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT id, kind, at, detail FROM events WHERE model = ? ORDER BY id DESC LIMIT ?",
                (model, limit),
            ).fetchall()
        return [
            {"id": i, "kind": kind, "at": at, **json.loads(detail)}
            for i, kind, at, detail in reversed(rows)
        ]

    # -- observations ----------------------------------------------------------------------
    def append_observations(self, model: str, rows: list[tuple[int, str, str]]) -> dict:
        """Insert (ts_ns, timestamp text, data JSON) rows in one transaction; a row already
        stored with the same data is left alone, with other data it is replaced. Returns the
        counts {"inserted", "replaced", "unchanged"}."""
        counts = {"inserted": 0, "replaced": 0, "unchanged": 0}
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                for ts, text, data in rows:
                    old = db.execute(
                        "SELECT data FROM observations WHERE model = ? AND ts = ?", (model, ts)
                    ).fetchone()
                    if old is not None and old[0] == data:
                        counts["unchanged"] += 1
                        continue
                    db.execute(
                        "INSERT OR REPLACE INTO observations (model, ts, timestamp, data) "
                        "VALUES (?, ?, ?, ?)",
                        (model, ts, text, data),
                    )
                    counts["inserted" if old is None else "replaced"] += 1
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return counts

    def stored_timestamps(self, model: str, timestamps: list[int]) -> set[int]:
        """Which of `timestamps` (ns) are stored for `model`."""
        if not timestamps:
            return set()
        with self._connect() as db:
            marks = ",".join("?" * len(timestamps))
            rows = db.execute(
                f"SELECT ts FROM observations WHERE model = ? AND ts IN ({marks})",
                (model, *timestamps),
            ).fetchall()
        return {ts for (ts,) in rows}

    def last_timestamp(self, model: str) -> int | None:
        with self._connect() as db:
            row = db.execute(
                "SELECT MAX(ts) FROM observations WHERE model = ?", (model,)
            ).fetchone()
        return row[0]

    def latest_observations(self, model: str, n: int) -> list[dict]:
        """The newest `n` observations of `model` as records, oldest first."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT timestamp, data FROM observations WHERE model = ? ORDER BY ts DESC LIMIT ?",
                (model, n),
            ).fetchall()
        return [{"timestamp": text, **json.loads(data)} for text, data in reversed(rows)]
