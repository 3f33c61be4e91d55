"""Concurrent forecasts share one model call: windows that arrive while the model is busy are
stacked into the next call.

One caller at a time leads: it takes every waiting window (up to `max_batch`), calls the
model once on the stack and hands each caller its own row. If more windows arrived meanwhile,
it makes the first of their callers the next leader and returns; nobody waits for more than
the call in progress plus its own. A lone client never waits at all: its window is a batch
of one, called at once. A model's output for one window does not depend on the other windows
in the batch (inference mode: no batch statistics), so the numbers are those of single calls.

>>> batched = Batcher(model_call)      # model_call: [N, L, F] -> [N, ...]
>>> batched(window)                    # window [1, L, F], from any thread
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np


class _Slot:
    __slots__ = ("x", "wake", "result", "error", "done")

    def __init__(self, x: np.ndarray):
        self.x = x
        self.wake = threading.Event()
        self.result = None
        self.error: BaseException | None = None
        self.done = False

    def get(self) -> np.ndarray:
        if self.error is not None:
            raise self.error
        return self.result


class Batcher:
    def __init__(self, call: Callable[[np.ndarray], np.ndarray], max_batch: int = 64):
        self.call = call
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._pending: list[_Slot] = []
        self._busy = False  # a leader is running; while False, nothing is pending

    def __call__(self, x: np.ndarray) -> np.ndarray:
        slot = _Slot(x)
        with self._lock:
            self._pending.append(slot)
            lead = not self._busy
            self._busy = True
        if not lead:
            slot.wake.wait()
            if slot.done:
                return slot.get()
            # Woken without a result: this caller leads the next batch.
        with self._lock:
            batch = self._pending[: self.max_batch]  # this caller's slot is the first
            del self._pending[: len(batch)]
        try:
            out = self.call(np.concatenate([s.x for s in batch]))  # [N, ...]
            start = 0
            for s in batch:
                s.result = out[start : start + len(s.x)]
                start += len(s.x)
        except BaseException as exc:  # every caller of the batch gets the error
            for s in batch:
                s.error = exc
        for s in batch:
            s.done = True
            if s is not slot:
                s.wake.set()
        with self._lock:
            if self._pending:
                self._pending[0].wake.set()  # the next leader
            else:
                self._busy = False
        return slot.get()
