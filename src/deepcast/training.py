"""Training loops: Adam, early stopping with best weights restored, an optional halving of the
learning rate on a plateau, progress, Ctrl-C; a per-epoch report hook (tuning engines prune
with it) and checkpoints of model and optimizer state (population-based training continues a
better trial's run from one).

On torch, a lean loop (torch Adam over the Keras layers' own parameters, each layer's `call()`
invoked directly) runs 1.2x faster than `keras.Model.fit` (DESIGN.md); the weights stay Keras
weights, so nothing about saving or other backends changes. TensorFlow and JAX use `Model.fit`.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from dataclasses import dataclass, field

import keras
import numpy as np

from deepcast import _backend, _progress
from deepcast import checkpoint as _checkpoint
from deepcast._backend import flushed_subnormals
from deepcast.checkpoint import STOP, Checkpoint, EpochHook, hooks  # noqa: F401 (re-exported)
from deepcast.models import heads

logger = logging.getLogger(__name__)

LOSSES = heads.POINT_LOSSES + heads.HEAD_LOSSES
LR_FACTOR = 0.5  # what a plateau multiplies the learning rate by


@dataclass
class TrainingHistory:
    """What happened during `fit`: one dict per epoch, and why training stopped."""

    epochs: list[dict] = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False
    interrupted: bool = False
    seconds: float = 0.0
    out_of_time: bool = False  # stopped by `time_limit`
    pruned: bool = False  # stopped by an `on_epoch` hook
    resumed_from: int | None = None  # the epoch of the checkpoint training continued from

    def to_json(self) -> dict:
        return {
            "epochs": self.epochs,
            "best_epoch": self.best_epoch,
            "stopped_early": self.stopped_early,
            "interrupted": self.interrupted,
            "out_of_time": self.out_of_time,
            "pruned": self.pruned,
            "resumed_from": self.resumed_from,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class _EarlyStopping:
    patience: int
    best: float = np.inf
    best_epoch: int | None = None
    waited: int = 0

    def improved(self, loss: float, epoch: int) -> bool:
        if loss < self.best:
            self.best, self.best_epoch, self.waited = loss, epoch, 0
            return True
        self.waited += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.waited >= self.patience


@dataclass(frozen=True)
class _Settings:
    """What both training loops need besides the model, the data and the bookkeeping."""

    epochs: int
    batch_size: int
    learning_rate: float
    patience: int
    seed: int
    loss: str
    quantiles: tuple | None  # of a quantile head
    lr_patience: int | None  # None without validation data: nothing to watch
    deadline: float  # time.perf_counter() after which no new epoch starts (inf: none)
    on_epoch: EpochHook | None = None
    restore: Checkpoint | None = None


def train(
    model: keras.Model,
    x: np.ndarray,
    y: np.ndarray,
    *,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
    epochs: int = 50,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    patience: int = 5,
    seed: int = 0,
    loss: str = "mse",
    quantiles: tuple | None = None,
    lr_patience: int | None = None,
    time_limit: float | None = None,
    verbose: bool | None = None,
    on_epoch: EpochHook | None = None,
    restore: Checkpoint | None = None,
) -> TrainingHistory:
    """Fit `model` on windows x (n, lookback, F) -> y (n, horizon), minimising `loss` (one of
    LOSSES: "mse", "mae" or "huber" with delta 1 in scaled units for a point forecast;
    "quantile" (pinball over `quantiles`), "gaussian" or "student_t" (negative log-likelihood)
    for a model with that output head, models/heads.py).

    With `validation`, stops after `patience` epochs without improvement of validation loss and
    restores the best weights; without it, runs exactly `epochs` epochs. With `lr_patience` and
    `validation`, the learning rate is halved after every `lr_patience` epochs without a new
    lowest validation loss (Keras' ReduceLROnPlateau rule); each epoch's record has its "lr".
    Ctrl-C ends training cleanly: the best weights so far are kept and `history.interrupted` is
    set. `time_limit` (seconds): no epoch starts after it has passed (at least one runs); the
    best weights so far are kept and `history.out_of_time` is set.

    `on_epoch(record, checkpoint)` is called after every epoch with the epoch's record (plus
    "last": True when training ends after it anyway) and a function returning a `Checkpoint`;
    returning "stop" ends training there (the best weights so far are kept, `history.pruned`
    is set). `restore` (a `Checkpoint`) loads model and optimizer state first and continues
    from its epoch with this call's learning rate, batch size and epoch budget. Both default
    to what an enclosing `hooks(...)` sets.
    """
    context_epoch, context_restore = _checkpoint.context_hooks()
    on_epoch = on_epoch if on_epoch is not None else context_epoch
    restore = restore if restore is not None else context_restore
    loop = _train_torch if _backend.name() == "torch" else _train_keras
    history = TrainingHistory()
    start = time.perf_counter()
    deadline = start + time_limit if time_limit is not None else math.inf
    with _progress.bar(epochs, "training", unit="epoch", verbose=verbose) as bar:
        settings = _Settings(
            epochs,
            batch_size,
            learning_rate,
            patience,
            seed,
            loss,
            quantiles,
            lr_patience if validation is not None else None,
            deadline,
            on_epoch,
            restore,
        )
        loop(model, x, y, validation, settings, bar, history)
    history.seconds = time.perf_counter() - start
    if history.interrupted:
        logger.warning(
            "training interrupted after %d epochs; keeping the best weights so far (epoch %s)",
            len(history.epochs),
            history.best_epoch,
        )
    return history


def _log_epoch(bar, history: TrainingHistory, record: dict) -> None:
    history.epochs.append(record)
    bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k != "epoch"})
    bar.update(1)
    logger.debug("epoch %s", record)


def _layer_chain(model: keras.Model) -> list | None:
    """The layers of a plain chain model (Input -> a -> b -> ...), or None if it branches."""
    chain = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    if not chain or len(model.inputs) != 1 or len(model.outputs) != 1:
        return None
    # Operations between layers (keras.ops on symbolic tensors) are not in `model.layers`:
    # every link, the model's own ends included, must be a direct layer-to-layer one.
    ends = [model.inputs[0], *(layer.output for layer in chain)]
    for source, layer in zip(ends, chain):
        if len(layer._inbound_nodes) != 1 or layer.input is not source:
            return None
    return chain if chain[-1].output is model.outputs[0] else None


def _train_torch(model, x, y, validation, settings: _Settings, bar, history):
    with flushed_subnormals():
        _torch_loop(model, x, y, validation, settings, bar, history)


def _torch_loop(model, x, y, validation, settings: _Settings, bar, history):
    import torch

    batch_loss = _torch_loss(settings)

    chain = _layer_chain(model)
    if chain is not None:  # Flatten, Reshape, ... take no `training` argument
        chain = [(layer, layer._call_has_training_arg) for layer in chain]

    def forward(batch, training):
        if chain is None:
            return model(batch, training=training)
        for layer, takes_training in chain:  # skips Layer.__call__ bookkeeping: ~10% of a step
            batch = layer.call(batch, training=training) if takes_training else layer.call(batch)
        return batch

    restore = settings.restore
    if restore is not None:
        _checkpoint.assign(model.variables, restore.weights)
    params = [v.value for v in model.trainable_variables]
    optimizer = torch.optim.Adam(params, lr=settings.learning_rate)
    plateau = None
    if settings.lr_patience:
        # torch counts the epochs it tolerates; ours (and Keras') the ones that trigger a cut.
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=LR_FACTOR, patience=settings.lr_patience - 1, threshold=0.0
        )
    xt, yt = _as_torch(x), _as_torch(y)
    generator = torch.Generator().manual_seed(settings.seed)
    stopper = _EarlyStopping(settings.patience)
    best = None
    first_epoch = 1
    if restore is not None:
        _checkpoint.load_torch_optimizer(optimizer, restore, settings.learning_rate)
        loop_state = restore.state.get("loop", {})
        if "generator" in loop_state:
            generator.set_state(torch.tensor(loop_state["generator"], dtype=torch.uint8))
        if "torch_rng" in loop_state:
            torch.set_rng_state(torch.tensor(loop_state["torch_rng"], dtype=torch.uint8))
        stopper.best = loop_state.get("best", np.inf)
        stopper.best_epoch = loop_state.get("best_epoch")
        stopper.waited = loop_state.get("waited", 0)
        if restore.best_weights is not None:
            best = [torch.from_numpy(np.array(w)) for w in restore.best_weights]
        first_epoch = restore.epoch + 1
        history.resumed_from = restore.epoch

    def snapshot(epoch: int) -> Checkpoint:
        optimizer_arrays, optimizer_state = _checkpoint.torch_optimizer_state(optimizer)
        loop_state = {
            "generator": generator.get_state().tolist(),
            # Dropout without a seed of its own draws from torch's global generator.
            "torch_rng": torch.get_rng_state().tolist(),
            "best": stopper.best,
            "best_epoch": stopper.best_epoch,
            "waited": stopper.waited,
        }
        return Checkpoint(
            epoch,
            _checkpoint.variable_arrays(model.variables),
            optimizer_arrays,
            {"optimizer": optimizer_state, "loop": loop_state},
            None if best is None else [b.detach().cpu().numpy().copy() for b in best],
        )

    def mean_loss(xs, ys) -> float:
        total = 0.0
        with torch.no_grad():
            for i in range(0, len(xs), 1024):
                pred = forward(xs[i : i + 1024], False)
                total += batch_loss(pred, ys[i : i + 1024]).item() * len(pred)
        return total / len(ys)

    xv = yv = None
    if validation is not None:
        xv, yv = (_as_torch(a) for a in validation)
    try:
        for epoch in range(first_epoch, settings.epochs + 1):
            order = torch.randperm(len(xt), generator=generator)
            running, seen = 0.0, 0
            for i in range(0, len(order), settings.batch_size):
                idx = order[i : i + settings.batch_size]
                xb, yb = xt[idx], yt[idx]  # [B, L, F], [B, H]: a gather, the only copy
                loss = batch_loss(forward(xb, True), yb)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                running += loss.item() * len(idx)
                seen += len(idx)
            record = {"epoch": epoch, "loss": running / seen}
            if plateau is not None:
                record["lr"] = optimizer.param_groups[0]["lr"]  # the rate this epoch ran at
            if xv is not None:
                record["val_loss"] = mean_loss(xv, yv)
                if stopper.improved(record["val_loss"], epoch):
                    best = [p.detach().clone() for p in params]
                if plateau is not None:
                    plateau.step(record["val_loss"])
            _log_epoch(bar, history, record)
            last = (
                epoch == settings.epochs
                or (xv is not None and stopper.should_stop)
                or time.perf_counter() > settings.deadline
            )
            if _stop_requested(settings, record, lambda epoch=epoch: snapshot(epoch), last):
                history.pruned = True
                break
            if xv is not None and stopper.should_stop:
                history.stopped_early = True
                break
            if time.perf_counter() > settings.deadline:
                history.out_of_time = True
                break
    except KeyboardInterrupt:
        history.interrupted = True
    if best is not None:
        with torch.no_grad():
            for p, b in zip(params, best):
                p.copy_(b)
    history.best_epoch = stopper.best_epoch if xv is not None else len(history.epochs)


def _stop_requested(settings: _Settings, record: dict, checkpoint, last: bool) -> bool:
    """Report one epoch to the hook; `last` tells it training ends here anyway (budget,
    early stopping, time), so an engine can tell a finished run from one it stopped."""
    if settings.on_epoch is None:
        return False
    return settings.on_epoch({**record, "last": last}, checkpoint) == STOP


def _torch_loss(settings: _Settings):
    """`loss(prediction, target)`: the mean over the batch, as a torch scalar."""
    import torch

    if settings.loss in heads.HEAD_LOSSES:
        head_loss = heads.loss_function(heads.for_loss(settings.loss, settings.quantiles))
        return lambda p, t: head_loss(t, p)
    pointwise = {
        "mse": lambda p, t: (p - t) ** 2,
        "mae": lambda p, t: torch.abs(p - t),
        "huber": lambda p, t: torch.nn.functional.huber_loss(p, t, reduction="none", delta=1.0),
    }[settings.loss]
    return lambda p, t: torch.mean(pointwise(p, t))


def _as_torch(a: np.ndarray):
    """A torch view of a (possibly strided, read-only) window array, without copying it.

    from_numpy keeps the strides, so sliding windows stay O(series length) in memory. It warns
    about read-only arrays because torch cannot promise not to write; nothing writes here.
    """
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(a)


class _KerasProgress(keras.callbacks.Callback):
    def __init__(self, bar, history: TrainingHistory, deadline: float, settings=None):
        super().__init__()
        self.bar, self.record_history, self.deadline = bar, history, deadline
        self.settings = settings

    def on_epoch_end(self, epoch, logs=None):
        record = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}}
        if "learning_rate" in record:  # set by ReduceLROnPlateau: the rate this epoch ran at
            record["lr"] = record.pop("learning_rate")
        _log_epoch(self.bar, self.record_history, record)
        # The last report also when early stopping (which runs before this callback) or the
        # time limit ends training here, so an engine scores the trial instead of pruning it.
        ending = self.model.stop_training or time.perf_counter() > self.deadline
        last = epoch + 1 == self.settings.epochs or ending if self.settings is not None else True
        if self.settings is not None and _stop_requested(
            self.settings, record, lambda: self._snapshot(epoch + 1), last
        ):
            self.record_history.pruned = True
            self.model.stop_training = True
        if time.perf_counter() > self.deadline:
            self.record_history.out_of_time = True
            self.model.stop_training = True

    def _snapshot(self, epoch: int) -> Checkpoint:
        # Keras' fit shuffles with the backend's own generator: a restored run continues
        # from these weights and optimizer moments, not along the identical batch order.
        optimizer = {
            str(i): v
            for i, v in enumerate(_checkpoint.variable_arrays(self.model.optimizer.variables))
        }
        return Checkpoint(epoch, _checkpoint.variable_arrays(self.model.variables), optimizer)


def _train_keras(model, x, y, validation, settings: _Settings, bar, history):
    loss = settings.loss
    if loss == "huber":
        loss = keras.losses.Huber(delta=1.0)
    elif loss in heads.HEAD_LOSSES:
        loss = heads.loss_function(heads.for_loss(loss, settings.quantiles))
    model.compile(optimizer=keras.optimizers.Adam(settings.learning_rate), loss=loss)
    callbacks = [_KerasProgress(bar, history, settings.deadline, settings)]
    initial_epoch = 0
    if settings.restore is not None:
        _checkpoint.assign(model.variables, settings.restore.weights)
        if settings.restore.optimizer:
            model.optimizer.build(model.trainable_variables)
            arrays = [
                settings.restore.optimizer[str(i)] for i in range(len(settings.restore.optimizer))
            ]
            _checkpoint.assign(model.optimizer.variables, arrays)
            model.optimizer.learning_rate.assign(settings.learning_rate)
        initial_epoch = settings.restore.epoch
        history.resumed_from = initial_epoch
    stopper = None
    if validation is not None:
        stopper = keras.callbacks.EarlyStopping(
            patience=settings.patience, restore_best_weights=True, verbose=0
        )
        callbacks.insert(0, stopper)  # before the progress callback, which reads its verdict
    if settings.lr_patience:
        plateau = keras.callbacks.ReduceLROnPlateau(
            factor=LR_FACTOR, patience=settings.lr_patience, min_delta=0.0, verbose=0
        )
        callbacks.insert(0, plateau)  # before the progress callback, which reads its rate
    try:
        model.fit(
            np.ascontiguousarray(x),
            np.ascontiguousarray(y),
            validation_data=validation,
            epochs=settings.epochs,
            initial_epoch=initial_epoch,
            batch_size=settings.batch_size,
            shuffle=True,
            verbose=0,
            callbacks=callbacks,
        )
    except KeyboardInterrupt:
        history.interrupted = True
        if stopper is not None and stopper.best_weights is not None:
            model.set_weights(stopper.best_weights)
    if stopper is not None:
        history.stopped_early = stopper.stopped_epoch > 0
        losses = [e.get("val_loss", np.inf) for e in history.epochs]
        history.best_epoch = int(np.argmin(losses)) + 1 if losses else None
    else:
        history.best_epoch = len(history.epochs)
