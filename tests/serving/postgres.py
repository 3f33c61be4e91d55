"""A throwaway PostgreSQL server for the tests: Debian's binaries, a temporary data directory,
127.0.0.1 on an ephemeral port, a unix socket in the same directory; stopped and deleted at the
end. PostgreSQL refuses to run as root, so as root it runs as the `postgres` system user.

>>> server = PostgresServer.start()      # None if the binaries are not installed
>>> url = server.new_database()          # postgresql://postgres@127.0.0.1:PORT/test_1
>>> server.stop()
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from .conftest import free_port


def binaries() -> Path | None:
    """The newest installed `/usr/lib/postgresql/VERSION/bin`, or None."""
    found = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    if not found:
        return None
    return Path(max(found, key=lambda p: int(Path(p).parts[-3].split(".")[0]))).parent


class PostgresServer:
    def __init__(self, bin_dir: Path, root: Path, port: int, user: str | None):
        self.bin_dir, self.root, self.port, self.user = bin_dir, root, port, user
        self.data = root / "data"
        self.databases = 0

    @classmethod
    def start(cls) -> PostgresServer | None:
        bin_dir = binaries()
        if bin_dir is None:
            return None
        # Not under pytest's tmp_path: its directories are closed to other users.
        root = Path(tempfile.mkdtemp(prefix="deepcast-pg-"))
        user = "postgres" if os.geteuid() == 0 else None
        if user:
            shutil.chown(root, user, user)
        server = cls(bin_dir, root, free_port(), user)
        server._run("initdb", "-D", server.data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
                    "--no-sync")  # fmt: skip
        options = (
            f"-c listen_addresses=127.0.0.1 -p {server.port} -k {root} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=60"
        )
        try:
            server._run("pg_ctl", "-D", server.data, "-o", options, "-l", root / "log", "-w",
                        "-t", "60", "start")  # fmt: skip
        except subprocess.CalledProcessError:
            log = (root / "log").read_text(errors="replace") if (root / "log").exists() else ""
            shutil.rmtree(root, ignore_errors=True)
            raise RuntimeError(f"PostgreSQL did not start:\n{log}") from None
        return server

    def _run(self, program: str, *args) -> None:
        command = [str(self.bin_dir / program), *map(str, args)]
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        subprocess.run(command, check=True, capture_output=True, cwd=self.root)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """The URL of a new, empty database (one per test keeps the tests apart)."""
        import psycopg

        self.databases += 1
        name = f"test_{self.databases}"
        with psycopg.connect(self.url(), autocommit=True) as con:
            con.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
