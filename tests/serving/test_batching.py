"""Concurrent callers of one Batcher each get their own row, in batches, and errors reach all."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from deepcast.serving.batching import Batcher


def test_concurrent_callers_get_their_own_rows_from_shared_calls():
    sizes = []
    gate = threading.Event()

    def call(x):
        sizes.append(len(x))
        gate.wait(5)  # the first call holds until every caller has queued behind it
        return x * 2.0

    batcher = Batcher(call)
    results = {}

    def client(i: int) -> None:
        results[i] = batcher(np.full((1, 3, 2), float(i), dtype=np.float32))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for _ in range(500):  # until the first call runs and every other caller waits behind it
        if sizes and sizes[0] + len(batcher._pending) == 16:
            break
        threading.Event().wait(0.01)
    gate.set()
    for thread in threads:
        thread.join()
    for i in range(16):
        np.testing.assert_array_equal(results[i], np.full((1, 3, 2), 2.0 * i))
    assert sum(sizes) == 16 and len(sizes) <= 2  # the waiting windows shared one call
    assert not batcher._busy and not batcher._pending


def test_an_error_reaches_the_caller_and_the_batcher_recovers():
    def call(x):
        if (x < 0).any():
            raise ValueError("negative")
        return x

    batcher = Batcher(call)
    with pytest.raises(ValueError, match="negative"):
        batcher(np.full((1, 2), -1.0))
    np.testing.assert_array_equal(batcher(np.ones((1, 2))), np.ones((1, 2)))
