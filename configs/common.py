"""Helpers shared by the experiment configs."""

import ast
import inspect

from trimzoo.models.backbone import TrimzooBackbone
from trimzoo.models.input_checks import check_argument_names


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



def backbone_arguments():
    """The ``TrimzooBackbone`` arguments a config may override (every
    constructor argument but the dtype policy)."""
    parameters = inspect.signature(TrimzooBackbone.__init__).parameters
    return [name for name in parameters
            if name not in ("self", "kwargs", "dtype")]


def check_override_flags(argv, prefix="--config.model_overrides."):
    """Raises ``TypeError`` ("did you mean") for a command-line flag
    ``--config.model_overrides.NAME=...`` whose NAME is not a backbone
    argument, which ml_collections would report as a bare AttributeError.

    >>> check_override_flags(["tool", "--config.model_overrides.num_layers=1"])
    >>> check_override_flags(["tool", "--config.model_overrides.num_layer=1"])
    Traceback (most recent call last):
    ...
    TypeError: --config.model_overrides got an unexpected argument 'num_layer'. Did you mean 'num_layers'? ...
    """
    names = [arg[len(prefix):].split("=", 1)[0] for arg in argv
             if arg.startswith(prefix)]
    check_argument_names(names, backbone_arguments(),
                         "--config.model_overrides")
