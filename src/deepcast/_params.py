"""Parameter checks, declared once per class instead of scattered `if` chains."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from numbers import Integral, Real

from deepcast.errors import ConfigError


@dataclass(frozen=True)
class Rule:
    kind: type
    ok: Callable[[object], bool]
    expected: str


def positive_int(expected: str = "a positive integer") -> Rule:
    return Rule(Integral, lambda v: v >= 1, expected)


def fraction(low_inclusive: bool = True) -> Rule:
    if low_inclusive:
        return Rule(Real, lambda v: 0 <= v < 1, "a number in [0, 1)")
    return Rule(Real, lambda v: 0 < v < 1, "a number in (0, 1)")


def positive_float() -> Rule:
    return Rule(Real, lambda v: v > 0, "a positive number")


def check(owner: str, values: dict, rules: dict[str, Rule]) -> None:
    """Raise ConfigError naming the first argument that breaks its rule, and the value received."""
    for name, rule in rules.items():
        value = values[name]
        if value is None and rule.expected.endswith("or None"):
            continue
        is_bool = isinstance(value, bool) and rule.kind is not bool
        if is_bool or not isinstance(value, rule.kind) or not rule.ok(value):
            raise ConfigError(
                f"{owner}: {name} must be {rule.expected}. Received: {name}={value!r}"
            )
