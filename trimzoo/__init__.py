"""trimzoo: efficient BERT encoders (TrimBERT, Bort, Poor Man's BERT) in Keras 3."""

__version__ = "0.1.0"

import warnings  # noqa: E402

from trimzoo import checkpoints, layers, models  # noqa: E402,F401
from trimzoo.checkpoints import from_pretrained, load_preset  # noqa: E402,F401


def compress(teacher, out, budget, make_config, *args, **kwargs):
    """Deprecated alias of ``trimzoo.search.compress`` (where compression
    to a budget lives; the package face does not import the top layer)."""
    warnings.warn("trimzoo.compress is deprecated: use "
                  "trimzoo.search.compress.", DeprecationWarning, stacklevel=2)
    # Local: `import trimzoo` stays light (no training, export or search).
    from trimzoo.search.compressor import compress as _compress

    return _compress(teacher, out, budget, make_config, *args, **kwargs)
