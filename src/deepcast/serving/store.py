"""A model store: `STORE/NAME/VERSION/` (saved forecasters) and an alias file per name.

    store/
      deepcast.db            events, observations, the monitor's ledger (database.py), or
      database.url           the PostgreSQL database holding them instead (no password)
      demand/
        1/  2/  3/           saved forecasters, never changed once published
        production           the alias: one line, the version served

A version is copied into a hidden temporary directory and renamed to its number in one step,
so nobody ever sees half of it; two publishers racing for the same number cannot both win
the rename. The alias is a file replaced with `os.replace`, so a reader sees the old version
or the new one and never a missing alias. Names and versions are checked against one pattern
(letters, digits, `_`, `-`, `.`; no `..`, no slash), so no request reaches outside the store.

>>> store = ModelStore("store")        # or ModelStore("store", database="postgresql://...")
>>> version = store.publish("runs/run/model", "demand")      # "1"; first version: production
>>> store.promote("demand", "1"); store.rollback("demand")
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from deepcast import _atomic
from deepcast.errors import ConfigError, ModelFileError
from deepcast.persistence import MANIFEST_FILE, STATE_FILE, read_manifest
from deepcast.serving.database import Database
from deepcast.serving.sql import check_url, password, public_url

ALIAS = "production"
DATABASE = "deepcast.db"
DATABASE_URL = "database.url"  # a store whose database is PostgreSQL records its URL here
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def check_name(value: str, what: str = "model name") -> str:
    """`value` if it is a safe store name or version; ConfigError naming it otherwise."""
    if not isinstance(value, str) or not _NAME.fullmatch(value) or ".." in value:
        raise ConfigError(
            f"invalid {what} {value!r}: use 1-64 letters, digits, '_', '-' or '.', starting "
            "with a letter or digit (no '..', no '/')"
        )
    return value


class ModelStore:
    """Versions and aliases of named forecasters under one directory (see the module doc)."""

    def __init__(self, root: str | os.PathLike, create: bool = True, database: str | None = None):
        """`database`: a postgresql:// URL for the store's database (SQLite `deepcast.db` in
        the store by default); given once, when the store is created, and found again in
        `database.url` by everyone who opens the store later."""
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise ConfigError(f"{self.root}: not a directory, so not a model store")
        recorded = self._recorded_url()
        exists = recorded is not None or (self.root / DATABASE).is_file()
        if not create and not exists:
            raise ConfigError(
                f"{self.root}: no model store here (no {DATABASE} or {DATABASE_URL}; publish first)"
            )
        if database is not None:
            shown = public_url(check_url(database))
            if recorded is None and exists:
                raise ConfigError(
                    f"{self.root}: this store's database is SQLite ({self.root / DATABASE}), "
                    f"not {shown}"
                )
            if recorded is not None and recorded != shown:
                raise ConfigError(f"{self.root}: this store's database is {recorded}, not {shown}")
        url = database or recorded
        self.root.mkdir(parents=True, exist_ok=True)
        self.db = Database(url or self.root / DATABASE)  # ConfigError if unreachable
        if url is not None and recorded is None:
            # Without the password: the store directory may be shared, copied or backed up.
            # Every later command connects with PGPASSWORD or ~/.pgpass (libpq's own sources).
            _atomic.write_text(self.root / DATABASE_URL, f"{public_url(url)}\n")
        if database is not None and password(database) and "PGPASSWORD" not in os.environ:
            # The processes this one starts (uvicorn workers, retraining) open the store by
            # its recorded URL, without the password: they find it where libpq looks.
            os.environ["PGPASSWORD"] = password(database)

    def _recorded_url(self) -> str | None:
        try:
            return (self.root / DATABASE_URL).read_text(encoding="utf-8").strip() or None
        except FileNotFoundError:
            return None

    # -- reading ---------------------------------------------------------------------------
    def names(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and _NAME.fullmatch(p.name))

    def versions(self, name: str) -> list[str]:
        """Published versions of `name`, oldest first."""
        folder = self.root / check_name(name)
        if not folder.is_dir():
            return []
        found = [p.name for p in folder.iterdir() if p.is_dir() and p.name.isdigit()]
        return sorted(found, key=int)

    def path(self, name: str, version: str) -> Path:
        """The directory of a published version; ConfigError if there is none."""
        path = self.root / check_name(name) / check_name(version, "version")
        if not (path / STATE_FILE).is_file():
            known = ", ".join(self.versions(name)) or "none"
            raise ConfigError(f"model {name!r} has no version {version!r} (versions: {known})")
        return path

    def alias_file(self, name: str, alias: str = ALIAS) -> Path:
        return self.root / check_name(name) / check_name(alias, "alias")

    def alias(self, name: str, alias: str = ALIAS) -> str | None:
        """The version `alias` points at, or None."""
        try:
            return self.alias_file(name, alias).read_text(encoding="utf-8").strip() or None
        except FileNotFoundError:
            return None

    def manifest(self, name: str, version: str) -> dict:
        return read_manifest(self.path(name, version)) or {}

    # -- writing ---------------------------------------------------------------------------
    def publish(self, model_dir: str | os.PathLike, name: str, metrics: dict | None = None) -> str:
        """Copy saved forecaster `model_dir` in as the next version of `name`; the first
        version becomes production. The directory is checked by loading it first."""
        from deepcast.forecaster import Forecaster

        check_name(name)
        source = Path(model_dir)
        Forecaster.load(source)  # ModelFileError naming the file if it cannot serve
        folder = self.root / name
        folder.mkdir(exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".incoming-", dir=folder))
        try:
            for item in source.iterdir():
                if item.is_file():
                    shutil.copy2(item, tmp / item.name)
            if metrics is not None:
                manifest = read_manifest(tmp) or {}
                manifest["run_metrics"] = metrics
                _atomic.write_json(tmp / MANIFEST_FILE, manifest)
            version = self._claim(folder, tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        # The folder's name only: events are readable without a key, paths are not theirs.
        self.db.add_event(name, "published", {"source": Path(source).name}, version=version)
        if self.alias(name) is None:
            self.promote(name, version)
        return version

    def _claim(self, folder: Path, tmp: Path) -> str:
        """Rename `tmp` to the next free version number (a rename onto an existing version
        fails, so racing publishers each get their own number)."""
        number = max((int(v) for v in self.versions(folder.name)), default=0) + 1
        while True:
            target = folder / str(number)
            if not target.exists():
                try:
                    os.rename(tmp, target)
                    return str(number)
                except OSError as exc:
                    if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                        raise
            number += 1

    def promote(self, name: str, version: str, alias: str = ALIAS) -> str | None:
        """Point `alias` of `name` at `version` (atomically); returns the previous version."""
        self.path(name, version)  # ConfigError if it does not exist
        previous = self.alias(name, alias)
        _atomic.write_text(self.alias_file(name, alias), f"{version}\n")
        self.db.add_event(name, "promoted", {"alias": alias, "from": previous}, version=version)
        return previous

    def rollback(self, name: str, alias: str = ALIAS) -> str:
        """Point `alias` back at the version it pointed at before the current one."""
        current = self.alias(name, alias)
        for event in reversed(self.db.events(name, limit=1000, kinds=("promoted",))):
            earlier = event["detail"].get("from")
            ours = event["detail"].get("alias") == alias and event["version"] == current
            if ours and earlier not in (None, current):
                self.promote(name, earlier, alias)
                return earlier
        raise ConfigError(f"model {name!r}: no earlier {alias} version to roll back to")

    def describe(self, name: str) -> dict:
        """{"name", "versions", "production"} for listings."""
        return {"name": name, "versions": self.versions(name), ALIAS: self.alias(name)}


def read_metrics(model_dir: str | os.PathLike) -> dict | None:
    """The run's `metrics.json` beside a run's `model/` directory, if there is one."""
    file = Path(model_dir).parent / "metrics.json"
    if not file.is_file():
        return None
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{file}: corrupt JSON ({exc})") from None
