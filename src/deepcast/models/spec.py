"""The model seam: a model family declares its options once, and everything reads that.

A family is one class: its `options` (each with type, default, valid range and default search
range), its capabilities (`outputs`, `future_inputs`, `attention`, `dropout_sampling`) and its
`builder`. Validation, `deepcast models`, `--model-option KEY=VALUE`, the tuner's default space
and saving all read that one declaration. An instance is a configured model:

>>> from deepcast.models import CNNLSTM
>>> CNNLSTM(filters=32)
CNNLSTM(filters=32, kernel_size=3, ...)
>>> CNNLSTM(filtres=32)
ConfigError: cnn_lstm has no option 'filtres'; its options: filters, kernel_size, ...
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, ClassVar

import keras

from deepcast.errors import ConfigError

_KIND_NAMES = {int: "int", float: "float", bool: "bool", str: "str"}


@dataclass(frozen=True)
class Option:
    """One option of a model family.

    `low`/`high` bound valid values (inclusive; `high_open=True` makes `high` exclusive);
    `choices` lists the valid strings; `search` is the default search range in the search-space
    JSON form (`{"low": 16, "high": 256, "log": True}` or a list of values), None when the option
    is not searched by default.
    """

    name: str
    kind: type
    default: Any
    help: str = ""
    low: float | None = None
    high: float | None = None
    high_open: bool = False
    choices: tuple | None = None
    search: dict | list | None = None

    def check(self, value, owner: str):
        """`value` as this option's type, or ConfigError naming the owner, option and value."""
        expected = f"{owner}: {self.name} must be {self.valid_range()}. Received: {self.name}="
        is_bool = isinstance(value, bool)
        if self.kind is bool:
            ok = is_bool
        elif self.kind is int:
            ok = isinstance(value, Integral) and not is_bool
        elif self.kind is float:
            ok = isinstance(value, Real) and not is_bool
        else:
            ok = isinstance(value, self.kind)
        if not ok:
            raise ConfigError(f"{expected}{value!r}")
        value = self.kind(value)
        if self.choices is not None and value not in self.choices:
            raise ConfigError(f"{expected}{value!r}")
        too_low = self.low is not None and value < self.low
        too_high = self.high is not None and (
            value >= self.high if self.high_open else value > self.high
        )
        if too_low or too_high or (self.kind is float and value != value):  # NaN
            raise ConfigError(f"{expected}{value!r}")
        return value

    def valid_range(self) -> str:
        """What the option accepts, as people write it: `an int >= 1`, `a float in [0, 1)`."""
        kind = _KIND_NAMES.get(self.kind, self.kind.__name__)
        if self.choices is not None:
            return "one of " + ", ".join(map(str, self.choices))
        if self.kind is bool:
            return "true or false"
        if self.low is not None and self.high is not None:
            close = ")" if self.high_open else "]"
            return f"{'an' if kind == 'int' else 'a'} {kind} in [{self.low:g}, {self.high:g}{close}"
        if self.low is not None:
            return f"{'an' if kind == 'int' else 'a'} {kind} >= {self.low:g}"
        return f"{'an' if kind == 'int' else 'a'} {kind}"


class ModelSpec:
    """Base of every model family. A subclass declares, the base validates and builds.

    Subclass attributes:
        name: the registry name (`"cnn_lstm"`).
        summary: one line for `deepcast models`.
        options: the family's `Option`s, each declared once.
        outputs: the output heads it can carry: "point", "quantile", "distribution" (heads.py;
            any family that maps to [B, horizon] can carry all three).
        future_inputs: whether it reads known-future inputs (calendar rows of the forecast).
        attention: whether `attention_weights(model, x)` returns its attention over lags.
        dropout_sampling: whether its dropout is active with `training=True`, so forecasts can
            be sampled by Monte Carlo dropout.
        builder: `builder(lookback, n_features, horizon, **options) -> keras.Model`, mapping
            scaled windows [B, lookback, n_features] to [B, horizon].
        default_loss: the loss a Forecaster left at its default (loss=None) trains with; None
            is "mse" (deepar: "student_t", it has no point output; nbeats and tft: "mae",
            lstm: "huber", measured).
        autoregressive: whether its forecasts are sampled paths of its own network (deepar),
            which a baseline start outside the network would break.
    """

    name: ClassVar[str]
    summary: ClassVar[str] = ""
    options: ClassVar[tuple[Option, ...]] = ()
    outputs: ClassVar[tuple[str, ...]] = ("point", "quantile", "distribution")
    future_inputs: ClassVar[bool] = False
    attention: ClassVar[bool] = False
    dropout_sampling: ClassVar[bool] = False
    default_loss: ClassVar[str | None] = None
    autoregressive: ClassVar[bool] = False
    builder: ClassVar[Callable[..., keras.Model]]

    def __init__(self, **options):
        self.config = self.checked(options)

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        return tuple(o.name for o in cls.options)

    @classmethod
    def option(cls, name: str) -> Option:
        for option in cls.options:
            if option.name == name:
                return option
        raise ConfigError(cls._unknown(name))

    @classmethod
    def checked(cls, options: dict) -> dict:
        """Every option of the family: `options` validated, the rest at their defaults."""
        for name in options:
            if name not in cls.option_names():
                raise ConfigError(cls._unknown(name))
        return {
            o.name: o.check(options[o.name], cls.name) if o.name in options else o.default
            for o in cls.options
        }

    @classmethod
    def default_search(cls) -> dict:
        """The family's default search ranges, in search-space JSON form."""
        return {o.name: o.search for o in cls.options if o.search is not None}

    @classmethod
    def _unknown(cls, name: str) -> str:
        valid = ", ".join(cls.option_names()) or "none"
        return f"{cls.name} has no option {name!r}; its options: {valid}"

    def build(self, lookback: int, n_features: int, outputs: int, **known) -> keras.Model:
        """The Keras model for windows [B, lookback, n_features] -> [B, outputs]. A family with
        `future_inputs` gets `known`: the forecast's `horizon` (`outputs` is then horizon * the
        head's channels) and `future_columns`, and reads windows
        [B, lookback + horizon, n_features] (known_future.py)."""
        return type(self).builder(lookback, n_features, outputs, **known, **self.config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.config == other.config

    __hash__ = None
