"""Training checkpoints and the per-epoch hook: how tuning engines listen to `training.train`.

A `Checkpoint` holds everything a run needs to continue: every model variable, the
optimizer's state, the shuffling and dropout generators and early stopping's state. An
`on_epoch` hook sees every epoch's record and may return `STOP`; `hooks(...)` sets both for
every `train` call in a block (the tuning objective trains through `Forecaster.fit`).

>>> with hooks(on_epoch=lambda record, checkpoint: STOP if record["val_loss"] > 1 else None):
...     forecaster.fit(train, validation=val)
"""

from __future__ import annotations

import contextlib
import contextvars
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

STOP = "stop"  # what an `on_epoch` hook returns to end training (a pruned trial)


@dataclass
class Checkpoint:
    """Model and optimizer state after `epoch` epochs: enough to continue training.

    `weights`: every model variable (trainable, non-trainable, dropout seed states) in
    `model.variables` order; `optimizer`: the optimizer's arrays by name, `state`: small JSON
    values (the optimizer's scalars, the shuffling generator, early stopping). On torch a run
    restored from a checkpoint continues exactly as the uninterrupted run would have.

    >>> ckpt.save("trial/ckpt"); Checkpoint.load("trial/ckpt").epoch
    3
    """

    epoch: int
    weights: list[np.ndarray]
    optimizer: dict[str, np.ndarray] = field(default_factory=dict)
    state: dict = field(default_factory=dict)
    best_weights: list[np.ndarray] | None = None  # early stopping's best so far, if not these

    def save(self, directory: str | Path) -> Path:
        """Write `checkpoint.npz` and `checkpoint.json` into `directory`; return it."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        arrays = {f"w{i}": w for i, w in enumerate(self.weights)}
        arrays.update({f"o:{k}": v for k, v in self.optimizer.items()})
        for i, w in enumerate(self.best_weights or ()):
            arrays[f"b{i}"] = w
        np.savez(directory / "checkpoint.npz", **arrays)
        meta = {
            "epoch": self.epoch,
            "state": self.state,
            "n_weights": len(self.weights),
            "n_best": None if self.best_weights is None else len(self.best_weights),
        }
        (directory / "checkpoint.json").write_text(json.dumps(meta), encoding="utf-8")
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> Checkpoint:
        directory = Path(directory)
        meta = json.loads((directory / "checkpoint.json").read_text(encoding="utf-8"))
        with np.load(directory / "checkpoint.npz") as data:
            arrays = {k: data[k] for k in data.files}
        n_best = meta["n_best"]
        return cls(
            epoch=meta["epoch"],
            weights=[arrays[f"w{i}"] for i in range(meta["n_weights"])],
            optimizer={k[2:]: v for k, v in arrays.items() if k.startswith("o:")},
            state=meta["state"],
            best_weights=None if n_best is None else [arrays[f"b{i}"] for i in range(n_best)],
        )


# (epoch record, checkpoint()) -> "stop" to end training, else None. `checkpoint()` copies the
# state only when called, so a hook that does not keep checkpoints costs nothing.
EpochHook = Callable[[dict, Callable[[], Checkpoint]], "str | None"]

# Set by `hooks(...)`: callers that train through `Forecaster.fit` (the tuning objective)
# reach `train` without threading engine arguments through every fit signature.
_HOOKS: contextvars.ContextVar[tuple] = contextvars.ContextVar("deepcast_training_hooks")


@contextlib.contextmanager
def hooks(on_epoch: EpochHook | None = None, restore: Checkpoint | None = None):
    """Within this block, every `train(...)` reports to `on_epoch` and starts from `restore`
    (unless given its own). A restore is used once: only the first training run resumes.

    >>> with hooks(on_epoch=lambda record, checkpoint: "stop" if record["epoch"] == 2 else None):
    ...     forecaster.fit(train, validation=val)   # two epochs, then stopped
    """
    token = _HOOKS.set((on_epoch, [restore]))
    try:
        yield
    finally:
        _HOOKS.reset(token)


def context_hooks() -> tuple[EpochHook | None, Checkpoint | None]:
    on_epoch, pending = _HOOKS.get((None, [None]))
    restore = pending[0]
    pending[0] = None
    return on_epoch, restore


def variable_arrays(variables) -> list[np.ndarray]:
    return [np.array(keras.ops.convert_to_numpy(v.value), copy=True) for v in variables]


def assign(variables, arrays: list[np.ndarray]) -> None:
    """Load a checkpoint's arrays into `variables` (same model architecture, same order)."""
    if len(variables) != len(arrays):
        raise ValueError(
            f"checkpoint holds {len(arrays)} variables; the model has {len(variables)}"
        )
    for variable, array in zip(variables, arrays):
        if tuple(variable.shape) != tuple(array.shape):
            raise ValueError(
                f"checkpoint variable of shape {array.shape} does not fit {variable.path} "
                f"{tuple(variable.shape)}"
            )
        variable.assign(array)


def torch_optimizer_state(optimizer) -> tuple[dict[str, np.ndarray], dict]:
    """torch's optimizer state dict split into arrays (per parameter) and JSON scalars."""
    state = optimizer.state_dict()
    arrays = {
        f"{index}/{name}": value.detach().cpu().numpy().copy()
        for index, per_param in state["state"].items()
        for name, value in per_param.items()
    }
    return arrays, {"param_groups": state["param_groups"]}


def load_torch_optimizer(optimizer, checkpoint: Checkpoint, learning_rate: float) -> None:
    import torch

    if not checkpoint.optimizer:
        return  # a checkpoint of weights only: a fresh optimizer
    per_param: dict[int, dict] = {}
    for key, value in checkpoint.optimizer.items():
        index, name = key.split("/", 1)
        per_param.setdefault(int(index), {})[name] = torch.from_numpy(np.array(value))
    groups = checkpoint.state["optimizer"]["param_groups"]
    optimizer.load_state_dict({"state": per_param, "param_groups": groups})
    for group in optimizer.param_groups:  # this run's rate: PBT perturbs it on restore
        group["lr"] = learning_rate
