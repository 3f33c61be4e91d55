"""The one mutable object of a serving worker: which version of each model it serves.

A swap loads and warms the new version beside the old one, then replaces one dictionary
entry. A request takes its model from the dictionary once, at its start, and keeps that
object to the end, so in-flight requests finish on the old version and the next ones start on
the new: no request is dropped or answered half by one version and half by the other.

Every uvicorn worker has its own registry. `refresh()` compares each model's alias file
(mtime and content; one `stat` per model) with what this worker serves and swaps when it
changed, so an activation handled by one worker, or a `deepcast promote` on the command line,
reaches every worker within one watch interval.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading

from starlette.concurrency import run_in_threadpool

from deepcast.errors import ConfigError
from deepcast.serving.runtime import ServedModel
from deepcast.serving.store import ModelStore, check_name

logger = logging.getLogger(__name__)


class UnknownModel(ConfigError):
    """No model of that name is served (the service answers 404)."""


class Registry:
    def __init__(self, store: ModelStore):
        self.store = store
        self.active: dict[str, ServedModel] = {}
        self.ready = False
        self._stamps: dict[str, tuple[int, int] | None] = {}
        self._lock = threading.Lock()  # one load at a time per worker: memory, not speed

    def get(self, name: str) -> ServedModel:
        check_name(name)
        served = self.active.get(name)
        if served is None:
            raise UnknownModel(
                f"no model named {name!r} is served; models: {', '.join(self.active) or 'none'}"
            )
        return served

    # -- loading and swapping --------------------------------------------------------------
    def load_all(self) -> None:
        """Load and warm the production version of every model in the store."""
        for name in self.store.names():
            try:
                self._sync(name)
            except Exception:  # one broken version must not keep every other model unready
                logger.exception("cannot load the production version of %s", name)
        self.ready = True

    def activate(self, name: str, version: str) -> str | None:
        """Load and warm `version` of `name`, point the alias at it and switch to it."""
        check_name(name)
        self.store.path(name, version)  # ConfigError if it is not published
        served = self._loaded(name, version)
        previous = self.store.promote(name, version)
        self.store.db.add_event(name, "activated", {"pid": os.getpid()}, version=version)
        self.active[name] = served
        self._stamps[name] = self._stamp(name)
        return previous

    def refresh(self) -> None:
        """Follow alias changes made elsewhere (another worker, the CLI)."""
        for name in self.store.names():
            if self._stamp(name) != self._stamps.get(name):
                try:
                    self._sync(name)
                except Exception:  # a broken version must not stop the watcher
                    logger.exception("cannot switch %s to its new production version", name)

    def _sync(self, name: str) -> None:
        stamp = self._stamp(name)
        version = self.store.alias(name)
        current = self.active.get(name)
        if version is not None and (current is None or current.version != version):
            self.active[name] = self._loaded(name, version)
            logger.info("serving %s version %s", name, version)
        self._stamps[name] = stamp

    def _loaded(self, name: str, version: str) -> ServedModel:
        current = self.active.get(name)
        if current is not None and current.version == version:
            return current
        with self._lock:
            return ServedModel.load(name, version, self.store.path(name, version))

    def _stamp(self, name: str) -> tuple[int, int] | None:
        try:
            info = os.stat(self.store.alias_file(name))
        except FileNotFoundError:
            return None
        return (info.st_mtime_ns, info.st_ino)

    async def watch(self, interval: float, after=None) -> None:
        """Refresh every `interval` seconds, off the event loop, until cancelled; `after()`
        runs after each refresh (the metrics' active versions follow swaps made elsewhere)."""
        while True:
            await asyncio.sleep(interval)
            await run_in_threadpool(self.refresh)
            if after is not None:
                after()
