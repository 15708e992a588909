"""trimzoo: efficient BERT encoders (TrimBERT, Bort, Poor Man's BERT) in Keras 3."""

__version__ = "0.1.0"

from trimzoo import checkpoints, layers, models  # noqa: E402,F401
from trimzoo.checkpoints import from_pretrained, load_preset  # noqa: E402,F401


def compress(teacher, out, budget, make_config, **kwargs):
    """The most accurate model cut from the fine-tuned classifier folder
    ``teacher`` that fits ``budget`` (a ``trimzoo.search.Budget``): see
    ``trimzoo.search.budget.compress``, which this calls (imported here on
    first use: it pulls in training and export)."""
    # Local: `import trimzoo` stays light (no training, export or search).
    from trimzoo.search.budget import compress as _compress

    return _compress(teacher, out, budget, make_config, **kwargs)
