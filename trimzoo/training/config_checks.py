"""Range checks of config values, run before any data is read or any model
built, so a value no run can use fails at once, naming the field.

Examples:

>>> import ml_collections
>>> config = ml_collections.ConfigDict({"distill": {"temperature": -2.0}})
>>> check_values(config, [("distill.temperature", POSITIVE)])
Traceback (most recent call last):
...
ValueError: distill.temperature must be a number > 0, got -2.0.
>>> check_values(config, [("distill.alpha", UNIT)])  # absent: not checked
"""

import math
import numbers

# (test, what the value must be).
POSITIVE = (lambda v: _number(v) and v > 0, "a number > 0")
NON_NEGATIVE = (lambda v: _number(v) and v >= 0, "a number >= 0")
UNIT = (lambda v: _number(v) and 0 <= v <= 1, "a number in [0, 1]")
DROPOUT = (lambda v: _number(v) and 0 <= v < 1, "a number in [0, 1)")
DECAY = (lambda v: _number(v) and 0 < v <= 1, "a number in (0, 1]")


def at_least(minimum):
    """An integer >= ``minimum``."""
    return (lambda v: _integer(v) and v >= minimum,
            f"an integer >= {minimum}")


def one_of(values):
    """One of ``values`` (e.g. the valid strings of an option).

    >>> check_values({"train": {"precision": "fp8"}},
    ...              [("train.precision", one_of(("float32", "bfloat16")))])
    Traceback (most recent call last):
    ...
    ValueError: train.precision must be one of ['float32', 'bfloat16'], got 'fp8'.
    """
    return (lambda v: v in values, f"one of {list(values)}")


def _number(value):
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(value))


def _integer(value):
    return _number(value) and float(value).is_integer()


def check_values(config, rules):
    """Raises ``ValueError`` naming the first field whose value breaks its
    rule. ``rules``: ``(dotted field, (test, description))`` pairs; a field
    absent from ``config`` (or None) is not checked."""
    for field, (test, want) in rules:
        value = config
        for part in field.split("."):
            value = value.get(part) if hasattr(value, "get") else None
        if value is not None and not test(value):
            raise ValueError(f"{field} must be {want}, got {value!r}.")
