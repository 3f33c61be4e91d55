"""Model registry: a name maps to its family's `ModelSpec` subclass.

A new family is one file (its `ModelSpec` subclass) and one `register` call; `deepcast
models`, validation, the CLI's `--model-option`, the tuner's default space and saving all
find it here.
"""

from __future__ import annotations

import keras

from deepcast.errors import ConfigError
from deepcast.models import heads
from deepcast.models.baseline_start import with_baseline_path
from deepcast.models.spec import ModelSpec
from deepcast.models.window_norm import WindowDenormalization, WindowNormalization

REGISTRY: dict[str, type[ModelSpec]] = {}

# Forecaster arguments kept as shorthand for the model's option of the same name.
SHORTHAND = ("units", "layers", "dropout")


def register(family: type[ModelSpec]) -> type[ModelSpec]:
    """Add a family under its `name` (usable as a class decorator); a name is taken once."""
    if not (isinstance(family, type) and issubclass(family, ModelSpec)):
        raise TypeError(f"register expects a ModelSpec subclass. Received: {family!r}")
    if REGISTRY.get(family.name, family) is not family:
        raise ConfigError(f"model name {family.name!r} is already registered")
    REGISTRY[family.name] = family
    return family


def unregister(name: str) -> None:
    REGISTRY.pop(name, None)


def names() -> list[str]:
    return list(REGISTRY)


def spec(name: str) -> type[ModelSpec]:
    """The family registered as `name`, or ConfigError listing the registered ones."""
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown model {name!r}; available: {', '.join(names())}") from None


def configure(model: str | ModelSpec, options: dict | None = None) -> ModelSpec:
    """A configured model from a name or an instance, with `options` replacing its own.

    >>> configure("lstm", {"units": 32})
    LSTM(units=32, layers=2, dropout=0.1)
    """
    options = dict(options or {})
    if isinstance(model, ModelSpec):
        return type(model)(**{**model.config, **options})
    if isinstance(model, type) and issubclass(model, ModelSpec):
        return model(**options)
    return spec(model)(**options)


def name_of(model: str | ModelSpec | type[ModelSpec]) -> str:
    if isinstance(model, str):
        return model
    return model.name


def build(
    model: str | ModelSpec,
    lookback: int,
    n_features: int,
    horizon: int,
    options: dict | None = None,
    *,
    window_norm: bool = False,
    baseline_start: bool = False,
    head: heads.Head | None = None,
    future_columns: list[int] | None = None,
) -> keras.Model:
    """Build `model` for windows [B, lookback, n_features] -> [B, horizon].

    Two wrappers apply to any family. `window_norm`: the target column of each window is
    standardised by the window's own mean and std before the model and the forecast mapped
    back (window_norm.py). `baseline_start`: a frozen linear path from the window, set to a
    baseline by `baseline_start.set_baseline`, plus the network behind a gate, so the
    network learns the baseline's residual (baseline_start.py). `head` (heads.py): the family
    is built for horizon * channels outputs and the model maps to [B, horizon, channels].
    A family that reads known-future inputs (`future_inputs`) takes windows
    [B, lookback + horizon, n_features] whose last rows are the forecast steps' known values in
    the columns `future_columns` (known_future.py); the wrappers read the lookback rows only.
    A count head (negative binomial) needs a family with the "counts" output: it reads the
    target in its own units and divides it by nu = 1 + the window's mean itself (its likelihood
    needs nu); the wrapper maps the head's parameters back with the same nu (window_norm.py).
    """
    configured = configure(model, options)
    head = head or heads.Head("point")
    if head.output not in configured.outputs:
        raise ConfigError(
            f"{configured.name} has no {head.output} output; its outputs: "
            + ", ".join(configured.outputs)
        )
    rows = None
    # A count family learns which head it carries: the raw width alone does not say.
    counts = {"distribution": head.kind} if head.counts else {}
    if configured.future_inputs:
        if not future_columns:
            raise ConfigError(
                f"{configured.name} reads known-future inputs (calendar features of the forecast "
                "steps): it needs timestamps to derive them"
            )
        rows = lookback + horizon
        core = configured.build(
            lookback,
            n_features,
            horizon * head.channels,
            horizon=horizon,
            future_columns=list(future_columns),
            **counts,
        )
    else:
        core = configured.build(lookback, n_features, horizon * head.channels, **counts)
    core = heads.with_head(core, head, horizon)
    if head.counts:
        if window_norm or baseline_start:
            raise ConfigError(
                f"a {head.kind} head scales each window's counts by their mean: build it "
                f"without window_norm and baseline_start. Received: window_norm={window_norm}, "
                f"baseline_start={baseline_start}"
            )
        inputs = keras.Input(shape=(rows or lookback, n_features), name="window")
        _, stats = WindowNormalization(lookback, mode="mean", name="count_scale")(inputs)
        outputs = WindowDenormalization(head.kinds, name="count_unscale")(core(inputs), stats)
        return keras.Model(inputs, outputs, name=f"{core.name}_counts")
    if window_norm:
        inputs = keras.Input(shape=(rows or lookback, n_features), name="window")
        norm = WindowNormalization(lookback if rows else None, name="window_norm")
        x, stats = norm(inputs)  # [B, rows, F], [B, 2]
        kinds = None if head.is_point else head.kinds
        outputs = WindowDenormalization(kinds, name="window_denorm")(core(x), stats)
        core = keras.Model(inputs, outputs, name=f"{core.name}_window_norm")
    if baseline_start:
        core = with_baseline_path(core, lookback, n_features, horizon, rows)
    return core


def core_model(model: keras.Model) -> keras.Model:
    """The family's own model inside the `window_norm` and `baseline_start` wrappers."""
    inner = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    return core_model(inner[0]) if len(inner) == 1 else model
