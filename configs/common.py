"""Helpers shared by the experiment configs."""

import ast


def parse_arg(arg, **defaults):
    """``"model=bert_base,task=glue/sst2,runlocal=True"`` -> dict.

    Values are Python literals where they parse as one (``True``, ``3``,
    ``1e-4``), else strings. Keys must be among ``defaults``.
    """
    values = dict(defaults)
    if not arg:
        return values
    for item in arg.split(","):
        if not item.strip():
            continue
        if "=" not in item:
            raise ValueError(
                f"Config argument {item!r} is not key=value; valid keys: "
                f"{sorted(defaults)}."
            )
        key, value = item.split("=", 1)
        key = key.strip()
        if key not in defaults:
            raise ValueError(
                f"Unknown config argument {key!r}; valid keys: "
                f"{sorted(defaults)}."
            )
        try:
            values[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            values[key] = value
    return values
