"""Parameter validation: one clear error naming the parameter, the value and what is allowed."""
from __future__ import annotations

import math
import numbers
from collections.abc import Iterable


class ParameterError(ValueError):
    """A notebook parameter has a wrong type or value."""

    def __init__(self, name: str, value, allowed: str):
        self.name, self.value, self.allowed = name, value, allowed
        super().__init__(f"parameter {name!r} = {value!r} is not allowed: expected {allowed}")


def check_choice(name: str, value, choices: Iterable):
    """Return ``value`` if it is one of ``choices``."""
    choices = list(choices)
    if value not in choices:
        raise ParameterError(name, value, "one of " + ", ".join(repr(c) for c in choices))
    return value


def check_int(name: str, value, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return ``value`` as int if it is an integer (not a bool) within [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ParameterError(name, value, _range_text("an integer", minimum, maximum))
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ParameterError(name, value, _range_text("an integer", minimum, maximum))
    return int(value)


def check_float(name: str, value, minimum: float | None = None, maximum: float | None = None) -> float:
    """Return ``value`` as float if it is a finite real number within [minimum, maximum].

    NaN and infinities are refused (``1e400`` parses as infinity).
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ParameterError(name, value, _range_text("a finite number", minimum, maximum))
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ParameterError(name, value, _range_text("a finite number", minimum, maximum))
    return float(value)


def check_fraction(name: str, value) -> float:
    """Return ``value`` if it is a number in [0, 1]."""
    return check_float(name, value, 0.0, 1.0)


def check_str(name: str, value) -> str:
    """Return ``value`` if it is a non-empty string."""
    if not isinstance(value, str) or not value:
        raise ParameterError(name, value, "a non-empty string")
    return value


def _range_text(kind: str, minimum, maximum) -> str:
    if minimum is not None and maximum is not None:
        return f"{kind} from {minimum} to {maximum}"
    if minimum is not None:
        return f"{kind} >= {minimum}"
    if maximum is not None:
        return f"{kind} <= {maximum}"
    return kind


def validate(values: dict, schema: dict) -> dict:
    """Validate ``values`` against ``schema``: {name: checker(name, value) -> value}.

    Names missing from ``values`` are skipped; unknown names raise a ParameterError.
    """
    unknown = set(values) - set(schema)
    if unknown:
        name = sorted(unknown)[0]
        raise ParameterError(name, values[name], "a known parameter: " + ", ".join(sorted(schema)))
    return {name: schema[name](name, value) for name, value in values.items()}
