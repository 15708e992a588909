"""Model factories: one function per preset, plus ``create`` and
``list_models``."""

from trimzoo.models.backbone import TrimzooBackbone
from trimzoo.models.presets import PRESETS


def list_models():
    """Names of every preset, in table order.

    Examples:
    >>> list_models()[:3], "trimbert_base" in list_models()
    (['bert_tiny', 'bert_mini', 'bert_base'], True)
    """
    return list(PRESETS)


def preset_config(name, **overrides):
    """The constructor arguments of preset ``name`` with ``overrides``
    applied (overrides win).

    Examples:
    >>> config = preset_config("trimbert_base", num_layers=6)
    >>> config["num_layers"], config["ffn_layers"], config["layer_norm"]
    (6, 'every_3', 'one_per_block')
    >>> preset_config("bert_small")
    Traceback (most recent call last):
    ...
    ValueError: Unknown model 'bert_small'. Valid names: [...].
    """
    if name not in PRESETS:
        raise ValueError(
            f"Unknown model {name!r}. Valid names: {list_models()}."
        )
    config = dict(PRESETS[name]["config"])
    TrimzooBackbone.check_argument_names(overrides, owner=name)
    config.update(overrides)
    return config


def create(name, **overrides):
    """Builds preset ``name`` as a ``TrimzooBackbone`` with random weights
    (``trimzoo.checkpoints.load_preset`` builds it with the weights of a
    checkpoint folder).

    Args:
        name: str. A preset name, see ``list_models()``.
        **overrides: ``TrimzooBackbone`` arguments that replace the preset's.

    Examples:
    >>> backbone = create("bort", num_layers=2, hidden_dim=64,
    ...                   intermediate_dim=48, num_heads=2,
    ...                   vocabulary_size=100)
    >>> backbone.num_layers
    2
    """
    return TrimzooBackbone(**preset_config(name, **overrides))


def _factory(name):
    def factory(**overrides):
        return create(name, **overrides)

    factory.__name__ = factory.__qualname__ = name
    factory.__doc__ = (
        f"{PRESETS[name]['description']}\n\n"
        f"Same as ``create({name!r}, **overrides)``."
    )
    return factory


bert_tiny = _factory("bert_tiny")
bert_mini = _factory("bert_mini")
bert_base = _factory("bert_base")
bert_large = _factory("bert_large")
trimbert_mini = _factory("trimbert_mini")
trimbert_base = _factory("trimbert_base")
bort = _factory("bort")
bort_mini = _factory("bort_mini")
