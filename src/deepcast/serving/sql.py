"""The store database's two backends behind one small connection: SQLite (a file in the store,
the default) and PostgreSQL (a URL, when several servers share one store).

Tables and queries are written once (database.py, ledger.py), in the SQL both understand:
`?` placeholders, `INSERT ... ON CONFLICT DO NOTHING` / `DO UPDATE` (SQLite >= 3.24), BIGINT
and DOUBLE PRECISION columns. What differs lives here and nowhere else:

    difference          SQLite                             PostgreSQL
    placeholders        ?                                  %s (translated)
    events.id           INTEGER PRIMARY KEY AUTOINCREMENT  BIGINT GENERATED ALWAYS AS IDENTITY
    a write transaction BEGIN IMMEDIATE (one writer)       BEGIN + SELECT ... FOR UPDATE, or
                                                           an advisory lock on a key
    connections         one per call (cheap, thread-safe)  a small pool, one per process

Not SQLAlchemy: the differences are the handful above, and SQLAlchemy Core (its own pool,
engine and dialect rules, a large dependency) would be more to read and to pin than this module.
The driver is psycopg 3, imported only when a postgresql:// URL is used.

>>> backend = open_backend("postgresql://deepcast@db.example:5432/deepcast")
>>> with backend.connect() as con, con.transaction():
...     con.execute("SELECT pid FROM jobs WHERE model = ?" + con.for_update, ("demand",))
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from deepcast.errors import ConfigError, MissingExtraError

SCHEMES = ("postgresql", "postgres")
POOL_SIZE = 8  # per process: the monitor thread and the request thread pool share it


class Connection:
    """One connection of either backend, spoken to in SQLite's `?` placeholders."""

    def __init__(self, raw, postgres: bool):
        self.raw, self.postgres = raw, postgres
        # appended to a SELECT inside `transaction()` to lock the rows read (PostgreSQL; in
        # SQLite, BEGIN IMMEDIATE already keeps every other writer out)
        self.for_update = " FOR UPDATE" if postgres else ""

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.postgres else sql

    def execute(self, sql: str, params: tuple | list = ()):
        """The cursor (fetchone, fetchall, rowcount) of one statement."""
        if self.postgres:
            return self.raw.execute(self._sql(sql), params or None)
        return self.raw.execute(sql, params)

    def executemany(self, sql: str, rows: list) -> int:
        """Run `sql` once per row; the number of rows it changed (inserted, updated)."""
        if not rows:
            return 0
        cursor = self.raw.cursor()
        cursor.executemany(self._sql(sql), rows)  # both drivers sum rowcount over the rows
        return max(cursor.rowcount, 0)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Commit at the end, roll back on an exception. SQLite takes the write lock at once
        (BEGIN IMMEDIATE); PostgreSQL locks what `for_update` and `lock` say."""
        if self.postgres:
            with self.raw.transaction():
                yield
            return
        self.raw.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.raw.execute("ROLLBACK")
            raise
        self.raw.execute("COMMIT")

    def lock(self, key: str) -> None:
        """Inside `transaction()`: keep other writers of `key` out until it ends, even where
        no row exists yet to lock (a PostgreSQL advisory lock; SQLite's is already held)."""
        if self.postgres:
            self.raw.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (key,))


class SQLite:
    """A database file; one short-lived connection per call, in WAL mode."""

    identity = "INTEGER PRIMARY KEY AUTOINCREMENT"

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @contextlib.contextmanager
    def connect(self) -> Iterator[Connection]:
        db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            yield Connection(db, postgres=False)
        finally:
            db.close()

    def create(self, schema: str) -> None:
        with self.connect() as con:
            con.raw.executescript(schema)


class Postgres:
    """A PostgreSQL database by URL; a connection pool per process, opened on first use."""

    identity = "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"

    def __init__(self, url: str):
        self.url = url
        self.where = server_address(url)
        self._psycopg, self._pool_class = _driver()
        self._pool = None
        self._pid: int | None = None
        self._guard = threading.Lock()

    def _pool_here(self):
        with self._guard:
            if self._pid != os.getpid():
                if self._pool is not None:
                    # A pool inherited through fork: its connections belong to the parent.
                    # Closing them here would end the parent's sessions, so keep it, unused.
                    _INHERITED.append(self._pool)
                self._pool = self._pool_class(
                    self.url,
                    min_size=1,
                    max_size=POOL_SIZE,
                    kwargs={"autocommit": True, "connect_timeout": 10},
                    timeout=30.0,
                    open=True,
                    name=f"deepcast-{os.getpid()}",
                )
                self._pid = os.getpid()
            return self._pool

    @contextlib.contextmanager
    def connect(self) -> Iterator[Connection]:
        with self._pool_here().connection() as raw:
            yield Connection(raw, postgres=True)

    def create(self, schema: str) -> None:
        """Create the tables if need be, on a connection of its own: the first contact with
        the server, so an unreachable server, a refused login or a missing right to create
        tables is one line (ConfigError) naming the server. Servers starting together take
        turns (an advisory lock): concurrent CREATE TABLE IF NOT EXISTS can collide."""
        psycopg = self._psycopg
        try:
            connection = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
            with connection as raw, raw.transaction():
                raw.execute("SELECT pg_advisory_xact_lock(hashtextextended('deepcast', 0))")
                raw.execute(schema)
        except psycopg.Error as exc:
            reason = " ".join(str(exc).split())
            raise ConfigError(
                f"cannot use the PostgreSQL database at {self.where}: {reason}"
            ) from None

    def close(self) -> None:
        with self._guard:
            if self._pool is not None and self._pid == os.getpid():
                self._pool.close()
            self._pool, self._pid = None, None


_INHERITED: list = []  # pools a forked process must neither use nor close (see _pool_here)


def open_backend(target: str | os.PathLike) -> SQLite | Postgres:
    """SQLite for a path, PostgreSQL for a postgresql:// URL (checked: ConfigError if bad)."""
    if isinstance(target, str) and is_url(target):
        return Postgres(check_url(target))  # connected at once, by Database's `create`
    return SQLite(target)


def is_url(target: str) -> bool:
    return "://" in target


def check_url(url: str) -> str:
    """`url` if it is a usable postgresql:// URL; ConfigError (password hidden) otherwise."""
    scheme = url.split("://", 1)[0].lower()
    if scheme not in SCHEMES:
        raise ConfigError(
            f"unsupported database URL {public_url(url)!r}: use postgresql://USER@HOST:PORT/"
            "DATABASE (or no URL, for SQLite in the store)"
        )
    server_address(url)
    return url


def server_address(url: str) -> str:
    """ "HOST:PORT" of a database URL, for messages; ConfigError if it cannot be parsed."""
    try:
        parts = urlsplit(url)
        port = parts.port or 5432
    except ValueError as exc:
        raise ConfigError(f"invalid database URL {public_url(url)!r}: {exc}") from None
    host = parts.hostname or dict(parse_qsl(parts.query)).get("host") or "localhost"
    return f"{host}:{port}"


def public_url(url: str) -> str:
    """`url` without its password (in the user part or a `password=` parameter): what may be
    shown in messages and written to the store."""
    try:
        parts = urlsplit(url)
        userinfo, _, host = parts.netloc.rpartition("@")
    except ValueError:
        return url.split("://", 1)[0] + "://..."
    user = userinfo.split(":", 1)[0]  # as written (percent-encoded), without ":password"
    netloc = f"{user}@{host}" if user else host
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "password"])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def password(url: str) -> str | None:
    """The password written in `url`, if any (user part or `password=` parameter)."""
    try:
        parts = urlsplit(url)
        return parts.password or dict(parse_qsl(parts.query)).get("password")
    except ValueError:
        return None


def _driver():
    try:
        import psycopg
        from psycopg_pool import ConnectionPool
    except ImportError:
        raise MissingExtraError(
            "a PostgreSQL database needs psycopg 3 and psycopg_pool: "
            "pip install 'deepcast[postgres]'"
        ) from None
    return psycopg, ConnectionPool
