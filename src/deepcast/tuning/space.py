"""The one search space: which Forecaster hyperparameters are tuned, and over which values.

Engine-neutral on purpose: KerasTuner maps it onto `keras_tuner.HyperParameters` today, and
Optuna or Ray can read the same three kinds of parameter later (`Int`, `Float`, `Choice`; a
`Choice` of one value is a fixed value).

The default space of the LSTM (`default_space(24)`, hourly data), as JSON — also the file format of
`--search-space FILE.json`, where each entry replaces the default one of that name:

    {
      "units":         {"type": "int",   "low": 16,     "high": 256,  "log": true},
      "layers":        {"type": "int",   "low": 1,      "high": 3},
      "dropout":       {"type": "float", "low": 0.0,    "high": 0.5},
      "learning_rate": {"type": "float", "low": 0.0001, "high": 0.01, "log": true},
      "lookback":      {"type": "choice", "values": [24, 48, 96]},
      "batch_size":    {"type": "choice", "values": [32, 64, 128]}
    }

Shorthands: a list is a choice (`"lookback": [24, 48]`), a plain value is fixed
(`"batch_size": 64`), `null` removes the entry (the run's own value is used).

Conditional entries: `"when": {"NAME": [values]}` samples an entry only when an earlier entry
took one of those values; otherwise the trial leaves it out (the model's own default holds).
With `model` tuned too, an option of one family is searched only for that family:

    {"model": ["lstm", "transformer"],
     "units": {"type": "int", "low": 16, "high": 128, "when": {"model": ["lstm"]}},
     "heads": {"type": "choice", "values": [2, 4], "when": {"model": ["transformer"]}}}

>>> space = default_space(24).narrow(units=(16, 64), lookback=[24, 48], batch_size=64)
>>> space["units"]
Int(name='units', low=16, high=64, log=True, step=None, default=None)
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, replace
from numbers import Integral, Real
from pathlib import Path

from deepcast.errors import ConfigError


@dataclass(frozen=True)
class Int:
    """Integers in [low, high]; `log` samples log-uniformly; `step` is a linear grid."""

    name: str
    low: int
    high: int
    log: bool = False
    step: int | None = None
    default: int | None = None
    when: tuple = ()  # ((name, (values...)), ...): sampled only when each holds


@dataclass(frozen=True)
class Float:
    """Reals in [low, high]; `log` samples log-uniformly; `step` is a linear grid."""

    name: str
    low: float
    high: float
    log: bool = False
    step: float | None = None
    default: float | None = None
    when: tuple = ()


@dataclass(frozen=True)
class Choice:
    """One of `values` (a tuple); a single value means the parameter is fixed."""

    name: str
    values: tuple
    default: object = None
    when: tuple = ()


Param = Int | Float | Choice

# Training settings every model shares: their value kind, which values the Forecaster accepts.
# A model's own options (units, filters, patch_len, ...) come from its family's declaration.
TRAINING: dict[str, tuple[type, object, str]] = {
    "model": (str, lambda v: _is_model(v), "a registered model name (see `deepcast models`)"),
    "lookback": (int, lambda v: v >= 1, "a positive integer"),
    "batch_size": (int, lambda v: v >= 1, "a positive integer"),
    "learning_rate": (float, lambda v: v > 0, "a positive number"),
    "window_norm": (bool, lambda v: True, "true or false"),
    "loss": (str, lambda v: v in ("mse", "mae", "huber"), "one of mse, mae, huber"),
}


def _is_model(name: str) -> bool:
    from deepcast import models

    return name in models.REGISTRY


def tunable_names(model: str | None = None) -> tuple[str, ...]:
    """Every name a search space may hold: training settings, then model options (of `model`,
    or of every registered model)."""
    from deepcast import models

    families = [models.spec(model)] if model else list(models.REGISTRY.values())
    options = dict.fromkeys(o for family in families for o in family.option_names())
    return tuple(TRAINING) + tuple(o for o in options if o not in TRAINING)


def _kind(name: str, where: str) -> tuple[type, object, str]:
    """(value type, check, expected) of a tunable name, or ConfigError listing the names."""
    if name in TRAINING:
        return TRAINING[name]
    from deepcast import models

    for family in models.REGISTRY.values():
        if name in family.option_names():
            option = family.option(name)

            def ok(value, option=option, owner=family.name) -> bool:
                try:
                    option.check(value, owner)
                except ConfigError:
                    return False
                return True

            return option.kind, ok, option.valid_range()
    raise ConfigError(
        f"{where}: unknown hyperparameter {name!r}; tunable: {', '.join(tunable_names())}"
    )


_FIELDS = {"int": Int, "float": Float, "choice": Choice}


@dataclass(frozen=True)
class SearchSpace:
    """An ordered set of parameter specs, at most one per name.

    >>> space = SearchSpace.from_json({"units": [16, 32], "layers": 1})
    >>> space.names
    ('units', 'layers')
    """

    params: tuple[Param, ...]

    def __post_init__(self):
        seen = set()
        for param in self.params:
            if param.name in seen:
                raise ConfigError(f"search space: {param.name!r} is given twice")
            _check(param, "search space")
            for condition, _ in param.when:
                if condition not in seen:
                    raise ConfigError(
                        f'search space: "{param.name}": its condition names {condition!r}, '
                        "which must be an entry listed before it"
                    )
            seen.add(param.name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def __iter__(self) -> Iterator[Param]:
        return iter(self.params)

    def __contains__(self, name: str) -> bool:
        return name in self.names

    def __getitem__(self, name: str) -> Param:
        for param in self.params:
            if param.name == name:
                return param
        raise KeyError(name)

    def fixed(self) -> dict:
        """The parameters with a single possible value: {name: value}."""
        return {p.name: p.values[0] for p in self.params if _is_fixed(p)}

    def narrow(self, **overrides) -> SearchSpace:
        """A copy with some entries replaced, added or (with None) removed.

        A value may be a spec (`Int`, `Float`, `Choice`), a `(low, high)` tuple (keeps the
        entry's `log` setting), a list (a choice), a plain value (fixed), or a JSON-style dict.

        >>> default_space(24).narrow(units=(16, 64), dropout=0.0, lookback=[24, 48])
        """
        return self._updated(overrides, "search space")

    def typed(self, values: dict) -> dict:
        """`values` for this space's names, as the Forecaster's own types (engines may hand
        back numpy numbers, or 0/1 for booleans).

        >>> default_space(24).typed({"layers": 2.0, "units": 32, ...})["layers"]
        2
        """
        return {
            name: _kind(name, "search space")[0](values[name])
            for name in self.names
            if name in values or not self[name].when  # an inactive conditional entry: absent
        }

    def active(self, name: str, values: dict) -> bool:
        """Whether entry `name` is sampled, given the values chosen for the entries before it.

        >>> space.active("heads", {"model": "transformer"})
        True
        """
        return all(values.get(other) in allowed for other, allowed in self[name].when)

    def max_value(self, name: str):
        """The largest value `name` can take, e.g. the longest lookback."""
        param = self[name]
        return max(param.values) if isinstance(param, Choice) else param.high

    def to_json(self) -> dict:
        """Plain JSON values in the `from_json` format; `from_json(s.to_json()) == s`."""
        out = {}
        for p in self.params:
            spec = {"type": type(p).__name__.lower(), **asdict(p)}
            del spec["name"]
            if isinstance(p, Choice):
                spec["values"] = list(p.values)
            spec["when"] = {other: list(allowed) for other, allowed in p.when} or None
            # Leave out what is unset; `0` is a value (dropout low), so test identity.
            out[p.name] = {k: v for k, v in spec.items() if v is not None and v is not False}
        return out

    @classmethod
    def from_json(cls, source: str | Path | dict, base: SearchSpace | None = None) -> SearchSpace:
        """Read a space from a JSON file or dict; each entry replaces `base`'s of that name.

        Errors name the file and the key: `space.json: "units": low 256 is greater than high 16`.
        """
        where = "search space"
        if not isinstance(source, dict):
            where = str(source)
            try:
                source = json.loads(Path(source).read_text(encoding="utf-8"))
            except FileNotFoundError:
                raise ConfigError(f"{where}: search space file not found") from None
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"{where}: cannot read the search space file: {exc}") from None
            except json.JSONDecodeError as exc:
                raise ConfigError(
                    f"{where}: not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}"
                ) from None
            if not isinstance(source, dict):
                raise ConfigError(
                    f"{where}: expected a JSON object of name -> spec. "
                    f"Received: {type(source).__name__}"
                )
        return (base or cls(()))._updated(source, where)

    def _updated(self, overrides: dict, where: str) -> SearchSpace:
        params = {p.name: p for p in self.params}
        for name, value in overrides.items():
            _kind(name, where)  # unknown names fail here
            if value is None:
                params.pop(name, None)
            else:
                params[name] = _parse(name, value, params.get(name), where)
        return SearchSpace(tuple(params.values()))


def default_space(seasonal_period: int | None = 24, model: str = "lstm") -> SearchSpace:
    """The default search space of `model`: the ranges its family declares for its options,
    then learning rate, lookback (1, 2 and 4 seasonal periods) and batch size.

    >>> default_space(24)["lookback"].values
    (24, 48, 96)
    >>> default_space(7)["lookback"].values   # daily data, weekly season
    (14, 28, 56)
    """
    period = seasonal_period if seasonal_period and seasonal_period >= 2 else 16
    # Minutely data has 1,440 rows a day; an LSTM over 5,760 steps is too slow to tune.
    period = min(period, 96)
    # A short season (a week of daily rows) alone is too little history to learn from.
    lookbacks = tuple(k * period for k in ((1, 2, 4) if period >= 12 else (2, 4, 8)))
    from deepcast import models

    family = type(models.configure(model))
    own = SearchSpace(())._updated(family.default_search(), f"{family.name} default search")
    return SearchSpace(
        (
            *own.params,
            Float("learning_rate", 1e-4, 1e-2, log=True),
            Choice("lookback", lookbacks),
            Choice("batch_size", (32, 64, 128)),
        )
    )


def check_for_model(space: SearchSpace, model: str, where: str = "search space") -> None:
    """ConfigError for a name in `space` that is neither a training setting nor an option of
    `model` (e.g. `filters` in a search of an LSTM), naming what `model` can tune. When the
    space tunes `model` itself, each entry must suit every family it is active for."""
    families = [model]
    if "model" in space:
        param = space["model"]
        families = list(param.values) if isinstance(param, Choice) else [model]
    for name in space.names:
        if name == "model":
            continue
        active = families
        for other, allowed in space[name].when:
            if other == "model":
                active = [m for m in families if m in allowed]
        for family in active:
            valid = tunable_names(family)
            if name not in valid:
                hint = ' (add "when": {"model": [...]} to search it only for some)'
                raise ConfigError(
                    f"{where}: {family} has no hyperparameter {name!r}"
                    + (hint if len(families) > 1 else "")
                    + f"; tunable: {', '.join(valid)}"
                )


def trial_arguments(forecaster_args: dict, hyperparameters: dict) -> dict:
    """Forecaster arguments for one trial: training settings and the units/layers/dropout
    shorthand replace `forecaster_args`' own, other model options go into `model_options`.

    >>> trial_arguments({"lookback": 48}, {"units": 32, "filters": 16, "learning_rate": 0.01})
    {'lookback': 48, 'units': 32, 'learning_rate': 0.01, 'model_options': {'filters': 16}}
    """
    from deepcast.models import SHORTHAND

    args = dict(forecaster_args)
    options = dict(args.pop("model_options", None) or {})
    for name, value in hyperparameters.items():
        if name in TRAINING or name in SHORTHAND:  # units/layers/dropout: the shorthand
            args[name] = value
            options.pop(name, None)
        else:
            options[name] = value
    if options:
        args["model_options"] = options
    return args


def plain_model_arguments(forecaster_args: dict) -> dict:
    """`forecaster_args` with a configured model object as its name plus `model_options`, so
    a search's settings are plain JSON."""
    from deepcast.models.spec import ModelSpec

    args = dict(forecaster_args)
    model = args.get("model")
    if isinstance(model, ModelSpec):
        args["model"] = model.name
        args["model_options"] = {**model.config, **(args.get("model_options") or {})}
    return args


def parse_assignments(items: Iterable[str], where: str = "--tune") -> dict:
    """CLI overrides `NAME=SPEC` -> {name: value} for `SearchSpace.narrow`.

    SPEC is `LOW:HIGH` (a range, `:log` appended for log sampling), `A,B,C` (a choice) or
    one value (fixed).

    >>> parse_assignments(["units=16:128:log", "lookback=24,48", "batch_size=64"])
    {'units': {'low': 16, 'high': 128, 'log': True}, 'lookback': [24, 48], 'batch_size': 64}
    """
    out: dict = {}
    for item in items:
        name, sep, spec = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name or not spec.strip():
            raise ConfigError(f"{where}: expected NAME=SPEC (e.g. units=16:128). Received: {item}")
        parts = [p.strip() for p in spec.split(":")]
        if len(parts) > 1:
            log = parts[-1].lower() == "log"
            bounds = parts[:-1] if log else parts
            if len(bounds) != 2:
                raise ConfigError(f"{where}: a range is LOW:HIGH[:log]. Received: {item}")
            out[name] = {
                "low": parse_scalar(bounds[0]),
                "high": parse_scalar(bounds[1]),
                "log": log,
            }
        elif "," in spec:
            out[name] = [parse_scalar(v) for v in spec.split(",") if v.strip()]
        else:
            out[name] = parse_scalar(spec)
    return out


# -- parsing and checks ----------------------------------------------------------------------
def _parse(name: str, value, current: Param | None, where: str) -> Param:
    if isinstance(value, (Int, Float, Choice)):
        return _checked(replace(value, name=name), where)
    if isinstance(value, (list, tuple)) and not (isinstance(value, tuple) and len(value) == 2):
        return _checked(Choice(name, _values(name, value, where)), where)
    if isinstance(value, tuple):  # (low, high): the kind and log setting come from the entry
        log = current.log if isinstance(current, (Int, Float)) else False
        value = {"low": value[0], "high": value[1], "log": log}
    if not isinstance(value, dict):
        return _checked(Choice(name, _values(name, [value], where)), where)
    return _from_dict(name, value, where)


def _from_dict(name: str, spec: dict, where: str) -> Param:
    kind_name = spec.get("type")
    if kind_name is None:  # inferred: values -> choice, else the name's own kind
        kind = _kind(name, where)[0]
        kind_name = "choice" if "values" in spec or kind in (bool, str) else kind.__name__
    if kind_name not in _FIELDS:
        raise ConfigError(
            f'{where}: "{name}": type must be one of int, float, choice. Received: {kind_name!r}'
        )
    cls = _FIELDS[kind_name]
    allowed = {"type"} | {f for f in cls.__dataclass_fields__ if f != "name"}
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise ConfigError(
            f'{where}: "{name}": unknown key {unknown[0]!r} for type {kind_name}; '
            f"allowed: {', '.join(sorted(allowed))}"
        )
    when = _when(name, spec.get("when"), where)
    if cls is Choice:
        if "values" not in spec:
            raise ConfigError(f'{where}: "{name}": a choice needs "values"')
        default = spec.get("default")
        values = _values(name, spec["values"], where)
        return _checked(Choice(name, values, default, when), where)
    for key in ("low", "high"):
        if key not in spec:
            raise ConfigError(f'{where}: "{name}": a range needs "low" and "high"')
    if not isinstance(spec.get("log", False), bool):
        raise ConfigError(f'{where}: "{name}": log must be true or false. Received: {spec["log"]}')
    fields = {k: v for k, v in spec.items() if k != "type"}
    fields["when"] = when
    for key in ("low", "high", "step", "default"):
        if fields.get(key) is not None:
            fields[key] = _number(name, key, fields[key], int if cls is Int else float, where)
    return _checked(cls(name, **fields), where)


def _when(name: str, spec, where: str) -> tuple:
    """`{"model": ["transformer"], "layers": 2}` -> (("model", ("transformer",)), ...)."""
    if spec is None:
        return ()
    if not isinstance(spec, dict) or not spec:
        raise ConfigError(
            f'{where}: "{name}": when must be an object of NAME -> values, e.g. '
            f'{{"model": ["transformer"]}}. Received: {spec!r}'
        )
    out = []
    for other, allowed in spec.items():
        _kind(other, where)
        allowed = allowed if isinstance(allowed, (list, tuple)) else [allowed]
        out.append((other, tuple(allowed)))
    return tuple(out)


def _checked(param: Param, where: str) -> Param:
    _check(param, where)
    return param


def _check(param: Param, where: str) -> None:
    """Raise ConfigError if `param` is not a valid spec for its name."""
    name = param.name
    kind, ok, expected = _kind(name, where)
    prefix = f'{where}: "{name}"'
    if isinstance(param, Choice):
        if not param.values:
            raise ConfigError(f"{prefix}: values must not be empty")
        for v in param.values:
            _value_ok(name, v, where)
        if len(set(param.values)) != len(param.values):
            raise ConfigError(f"{prefix}: values repeat. Received: {list(param.values)}")
        if param.default is not None and param.default not in param.values:
            raise ConfigError(f"{prefix}: default {param.default!r} is not one of the values")
        return
    if kind in (bool, str):
        raise ConfigError(f"{prefix}: must be a choice of values, not a range")
    if (kind is float) != isinstance(param, Float):
        wanted = "a float range" if kind is float else "an int range"
        raise ConfigError(
            f"{prefix}: must be {wanted} or a choice. Received: a {type(param).__name__} range"
        )
    for key in ("low", "high"):
        _value_ok(name, getattr(param, key), where, key)
    if param.low > param.high:
        raise ConfigError(f"{prefix}: low {param.low} is greater than high {param.high}")
    if param.log and param.low <= 0:
        raise ConfigError(f"{prefix}: log sampling needs low > 0. Received: low={param.low}")
    if param.step is not None and (param.log or param.step <= 0):
        # Optuna and Ray only define a step on a linear scale; keep the space portable.
        raise ConfigError(f"{prefix}: step must be positive and only on a linear (non-log) range")
    if param.default is not None and not param.low <= param.default <= param.high:
        raise ConfigError(f"{prefix}: default {param.default} is outside [low, high]")


def _value_ok(name: str, value, where: str, key: str = "values") -> None:
    kind, ok, expected = _kind(name, where)
    is_bool = isinstance(value, bool)
    if kind is bool:
        good_type = is_bool
    elif kind is str:
        good_type = isinstance(value, str)
    elif kind is int:
        good_type = isinstance(value, Integral) and not is_bool
    else:
        good_type = isinstance(value, Real) and not is_bool and math.isfinite(value)
    if not good_type or not ok(value):
        raise ConfigError(f'{where}: "{name}": {key} must be {expected}. Received: {value!r}')


def _values(name: str, values, where: str) -> tuple:
    if not isinstance(values, (list, tuple)):
        raise ConfigError(f'{where}: "{name}": values must be a list. Received: {values!r}')
    if _kind(name, where)[0] is float:  # 0 and 0.1 are both dropouts: one type for the engines
        return tuple(
            float(v) if isinstance(v, Real) and not isinstance(v, bool) else v for v in values
        )
    return tuple(values)


def _number(name: str, key: str, value, kind: type, where: str):
    if kind is float and isinstance(value, Real) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, Integral) and not isinstance(value, bool):
        return int(value)
    expected = "an integer" if kind is int else "a number"
    raise ConfigError(f'{where}: "{name}": {key} must be {expected}. Received: {value!r}')


def _is_fixed(param: Param) -> bool:
    return isinstance(param, Choice) and len(param.values) == 1


def parse_scalar(text: str):
    """A CLI value: int, float, or true/false."""
    text = text.strip()
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    raise ConfigError(f"--tune: {text!r} is not a number or true/false")
