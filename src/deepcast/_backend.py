"""Chooses the Keras backend before keras is imported anywhere in deepcast.

torch is the default (see DESIGN.md for the measurements); a user's own KERAS_BACKEND wins,
and saving a model does not import TensorFlow on another backend. Also home to the few
operations that differ per backend: gradients of a model w.r.t. its inputs.
"""

import collections
import contextlib
import os
import sys
import weakref
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "torch")
# TensorFlow is installed beside torch for portability checks; keep its start-up chatter quiet.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

T = TypeVar("T")


class _TensorFlowIfImported:
    """Keras' lazy `tensorflow` handle, except that asking `available` never imports it."""

    def __init__(self, lazy) -> None:
        self._lazy = lazy

    @property
    def available(self) -> bool:
        return "tensorflow" in sys.modules and self._lazy.available

    def __getattr__(self, attribute: str):
        return getattr(self._lazy, attribute)


def keep_tensorflow_out_of_saving() -> None:
    """Stop `Model.save` from importing TensorFlow (seconds, and C++ log lines) on torch/JAX.

    Keras' serializer asks its lazy `tensorflow` handle whether TensorFlow is `available`
    before every value it writes, to spot `tf.TensorShape` and `tf.DType`, and asking imports
    TensorFlow whenever it is installed (keras/src/saving/serialization_lib.py). A value of a
    TensorFlow type can only exist once TensorFlow is imported, so answering from
    `sys.modules` serialises exactly the same. Only the serializer's handle is replaced; the
    layers that need TensorFlow still import it. Runs once, when deepcast is imported.
    """
    try:
        from keras.src.saving import serialization_lib
    except ImportError:  # private layout changed: saving still works, only slower
        return
    if not isinstance(serialization_lib.tf, _TensorFlowIfImported):
        serialization_lib.tf = _TensorFlowIfImported(serialization_lib.tf)


keep_tensorflow_out_of_saving()


def name() -> str:
    """The active Keras backend: "torch", "tensorflow" or "jax"."""
    return keras.backend.backend()


@contextlib.contextmanager
def seeded(seed: int):
    """`seed_everything(seed)` for the duration of a block, the caller's random states (Python,
    NumPy, torch, Keras' global seed and seed generator) restored afterwards: sampling inside a
    library call must not reseed a user's program."""
    import random

    saved = (random.getstate(), np.random.get_state())
    torch_state = None
    if "torch" in sys.modules:
        import torch

        torch_state = torch.random.get_rng_state()
    keras_state = _keras_seed_state()
    seed_everything(seed)
    try:
        yield
    finally:
        random.setstate(saved[0])
        np.random.set_state(saved[1])
        if torch_state is not None:
            torch.random.set_rng_state(torch_state)
        if keras_state is not None:
            global_state, names, values = keras_state
            for attribute, value in zip(names, values):
                global_state.set_global_attribute(attribute, value)


def _keras_seed_state():
    """(module, attribute names, values) of Keras' global seed and seed generator, or None
    where the private layout moved (then only the public seeding applies)."""
    try:
        from keras.src.backend.common import global_state
        from keras.src.random import seed_generator
        from keras.src.utils import rng_utils
    except ImportError:
        return None
    names = (rng_utils.GLOBAL_RANDOM_SEED, seed_generator.GLOBAL_SEED_GENERATOR)
    return global_state, names, [global_state.get_global_attribute(n) for n in names]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy, the backend and Keras' global seed generator.

    Same effect as `keras.utils.set_random_seed`, which also seeds TensorFlow and so imports it
    (seconds of start-up and C++ log lines) even when the backend is torch or JAX.
    """
    import random

    if name() == "tensorflow" or "tensorflow" in sys.modules:
        keras.utils.set_random_seed(seed)
        return
    try:
        from keras.src.backend.common import global_state
        from keras.src.random import seed_generator
        from keras.src.utils import rng_utils
    except ImportError:  # private layout changed: the public call is always correct
        keras.utils.set_random_seed(seed)
        return
    global_state.set_global_attribute(rng_utils.GLOBAL_RANDOM_SEED, seed)
    global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)
    random.seed(seed)
    np.random.seed(seed)
    if name() == "torch":
        import torch

        torch.manual_seed(seed)


def input_gradients(model, x: np.ndarray, output_index: int) -> tuple[np.ndarray, np.ndarray]:
    """Output column `output_index` of `model(x)` and its gradient w.r.t. `x`, as numpy.

    Rows must not interact (no batch statistics at inference), so the gradient of the column's
    sum is each row's own gradient: one backward pass serves the whole batch.

    >>> y, g = input_gradients(model, windows, output_index=0)  # y [B], g [B, L, F]
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    return _GRADIENTS[name()](model, x, output_index)


def map_batches(fn: Callable[[np.ndarray], T], batches: Iterable[np.ndarray]) -> Iterator[T]:
    """`fn(batch)` for each batch, in order, with `concurrent_batches()` of them in flight.

    On torch the batches run side by side on worker threads of one intra-op thread each. An
    LSTM is a long chain of small per-time-step ops; splitting every op over threads costs a
    barrier per op, and a barrier stalls whenever another process holds a core, while whole
    batches on separate threads never wait for each other (benchmarks/explain_throughput.py).

    >>> batches = (x[i : i + 512] for i in range(0, len(x), 512))
    >>> for y, g in map_batches(partial(input_gradients, model, output_index=0), batches): ...
    """
    workers = concurrent_batches()
    if workers == 1:
        yield from map(fn, batches)
        return
    import torch

    try:
        with ThreadPoolExecutor(workers, initializer=torch.set_num_threads, initargs=(1,)) as pool:
            pending: collections.deque = collections.deque()
            for batch in batches:
                pending.append(pool.submit(fn, batch))
                if len(pending) == workers:  # bounded: at most `workers` batches at a time
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
    finally:
        # torch.set_num_threads(1) in a worker also lowers torch's process-wide default.
        torch.set_num_threads(workers)


def concurrent_batches() -> int:
    """Batches `map_batches` runs at once: torch's intra-op thread count, else 1.

    TensorFlow and XLA schedule their own thread pools, so they get one batch at a time.
    """
    if name() != "torch":
        return 1
    import torch

    return torch.get_num_threads()


#: Rows per gradient call through a recurrent layer on torch. Its backward pass keeps every
#: time step's gates; past ~128 rows they spill out of the CPU caches and points/s falls by up
#: to 1.8x (2 x 64 LSTM, lookback 48), while convolutions, attention and linear maps still
#: gain from bigger calls (benchmarks/explain_speed.py).
RECURRENT_ROWS = 128


def rows_per_call(batch_size: int, model=None) -> int:
    """Rows per backend call so that `batch_size` rows are in flight at once over the
    `concurrent_batches()` workers; at most `RECURRENT_ROWS` through a recurrent model."""
    rows = max(1, batch_size // concurrent_batches())
    if model is not None and name() == "torch" and _is_recurrent(model):
        rows = min(rows, RECURRENT_ROWS)
    return rows


def _is_recurrent(model) -> bool:
    """Whether any layer, however deeply nested (Bidirectional, sub-models), is an RNN."""
    flatten = getattr(model, "_flatten_layers", None)  # Keras' own recursive walk
    return flatten is not None and any(
        isinstance(layer, keras.layers.RNN) for layer in flatten(include_self=False)
    )


def outputs(model, x: np.ndarray, output_index: int) -> np.ndarray:
    """Output column `output_index` of `model(x)` without recording anything for gradients."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if name() == "torch":
        import torch

        with torch.no_grad():
            return model(torch.from_numpy(x), training=False)[:, output_index].cpu().numpy()
    # Elsewhere the gradient path is the compiled one (JAX eager is slow); its gradient is
    # wasted, but the forecasts are a small share of an IG run.
    return input_gradients(model, x, output_index)[0]


@contextlib.contextmanager
def flushed_subnormals() -> Iterator[None]:
    """Subnormal floats (below 1.2e-38 in float32) read and written as zero while torch works
    in this thread, the caller's setting restored afterwards. A recurrent network's gradients
    and Adam's moments drift into subnormals as training goes on, and CPU arithmetic on them
    is many times slower: they halved the LSTM's training speed at lookback 336 over 15,000
    windows (benchmarks/subnormals.py: 549 against 274 windows/s); forecasts gain too. Does
    nothing on another backend: TensorFlow flushes them in its own threads. No value a
    forecast can show is that small."""
    if name() != "torch":
        yield
        return
    import torch

    was_on = flushing_subnormals()
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if not was_on:
            torch.set_flush_denormal(False)


def flushing_subnormals() -> bool:
    """Whether torch flushes subnormals in this thread: a subnormal times one stays nonzero
    unless they are flushed."""
    import torch

    return torch.tensor([1e-39], dtype=torch.float32).mul(1.0).item() == 0.0


#: Rows per forward call of `predict` unless the model's layers declare otherwise, with a
#: `predict_rows` attribute (benchmarks/predict_rows.py): linear maps, the patch transformer
#: and DeepAR's network gain from big calls; a recurrent layer's time steps and the TFT's
#: [rows, time, variables, width] activations spill out of the CPU caches in them.
PREDICT_ROWS = 1024
_predict_rows: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def predict_rows(model) -> int:
    """Rows per forward call for the Keras `model` (remembered per model: serving asks on
    every request). A layer's own `predict_rows` covers everything inside it; a layer
    without one takes the smallest of its parts'; PREDICT_ROWS if none declares any."""
    rows = _predict_rows.get(model)
    if rows is None:
        rows = _predict_rows[model] = _declared_rows(model) or PREDICT_ROWS
    return rows


def _declared_rows(layer) -> int | None:
    own = getattr(layer, "predict_rows", None)
    if own is not None:
        return int(own)
    parts = layer._flatten_layers(include_self=False, recursive=False)  # Keras' own walk
    declared = [rows for part in parts if (rows := _declared_rows(part)) is not None]
    return min(declared, default=None)


def predict(model, x: np.ndarray, batch_size: int | None = None) -> np.ndarray:
    """`model(x)` in batches of `batch_size` rows (default: `predict_rows(model)`), as numpy:
    the model called directly, not `Model.predict`, whose per-call set-up dominates the small
    predictions of serving and evaluation."""
    x = np.asarray(x, dtype=np.float32)
    batch_size = batch_size or predict_rows(model)
    if name() == "torch":
        import torch

        with torch.no_grad(), flushed_subnormals():
            parts = [
                model(torch.from_numpy(np.ascontiguousarray(x[i : i + batch_size])), training=False)
                .cpu()
                .numpy()
                for i in range(0, len(x), batch_size)
            ]
    else:
        parts = [
            keras.ops.convert_to_numpy(model(x[i : i + batch_size], training=False))
            for i in range(0, len(x), batch_size)
        ]
    return np.concatenate(parts) if parts else np.zeros((0, *model.output_shape[1:]), "float32")


def call_training(model, x: np.ndarray) -> np.ndarray:
    """One call of `model` with `training=True` (dropout active), without gradients."""
    if name() == "torch":
        import torch

        with torch.no_grad():
            return model(torch.from_numpy(np.ascontiguousarray(x)), training=True).cpu().numpy()
    return keras.ops.convert_to_numpy(model(x, training=True))


def _torch_gradients(model, x, k):
    import torch

    xt = torch.from_numpy(x).requires_grad_(True)
    with torch.enable_grad():
        y = model(xt, training=False)[:, k]  # [B, L, F] -> [B]
        (g,) = torch.autograd.grad(y.sum(), xt)
    return y.detach().cpu().numpy(), g.cpu().numpy()


def _tensorflow_gradients(model, x, k):
    import tensorflow as tf

    xt = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = model(xt, training=False)[:, k]  # [B, L, F] -> [B]
    return y.numpy(), tape.gradient(y, xt).numpy()


def _jax_gradients(model, x, k):
    if model not in _JAX_JITTED:
        _JAX_JITTED[model] = _jax_column_and_grad(model)
    weights = [v.value for v in model.trainable_variables]
    state = [v.value for v in model.non_trainable_variables]
    y, g = _JAX_JITTED[model](weights, state, x, k)
    return np.asarray(y), np.asarray(g)


def _jax_column_and_grad(model):
    """One jitted function per model: op-by-op JAX is ~10x slower on an LSTM (lax.scan)."""
    import jax
    import jax.numpy as jnp

    model_ref = weakref.ref(model)  # a strong reference would keep the cache key alive forever

    def column_and_grad(weights, state, x, k):
        def column(xj):  # [B, L, F] -> [B]
            return model_ref().stateless_call(weights, state, xj, training=False)[0][:, k]

        y, pullback = jax.vjp(column, x)
        return y, pullback(jnp.ones_like(y))[0]

    return jax.jit(column_and_grad, static_argnums=3)


_GRADIENTS = {"torch": _torch_gradients, "tensorflow": _tensorflow_gradients, "jax": _jax_gradients}
_JAX_JITTED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
