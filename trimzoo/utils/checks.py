"""Values checked at the boundary, before any work: one-line errors that
name the setting (a flag of a tool or an argument of the library).

>>> whole_number("batch_size", 8)
8
>>> whole_number("batch_size", 0)
Traceback (most recent call last):
...
ValueError: batch_size must be a whole number >= 1, got 0.
>>> real_number("time_budget_min", float("nan"), positive=True)
Traceback (most recent call last):
...
ValueError: time_budget_min must be a finite number > 0, got nan.
"""

import math
import numbers

# The shortest sequence a model is timed, trained or exported at: [CLS],
# [SEP] and a few tokens of text.
MIN_SEQ_LEN = 8


def is_number(value):
    """A finite real number (not a bool)."""
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(value))


def whole_number(name, value, minimum=1):
    """``value`` as an int when it is a whole number >= ``minimum``."""
    if not (is_number(value) and float(value).is_integer()
            and value >= minimum):
        raise ValueError(f"{name} must be a whole number >= {minimum}, got "
                         f"{value!r}.")
    return int(value)


def real_number(name, value, minimum=None, positive=False):
    """``value`` as a float when finite, > 0 with ``positive`` and >=
    ``minimum`` when given."""
    ok = is_number(value) and (not positive or value > 0) and (
        minimum is None or value >= minimum)
    if not ok:
        want = ("a finite number" + (" > 0" if positive else "")
                + ("" if minimum is None else f" >= {minimum:g}"))
        raise ValueError(f"{name} must be {want}, got {value!r}.")
    return float(value)
