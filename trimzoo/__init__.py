"""trimzoo: efficient BERT encoders (TrimBERT, Bort, Poor Man's BERT) in Keras 3."""

__version__ = "0.1.0"

from trimzoo import checkpoints, layers, models  # noqa: E402,F401
from trimzoo.checkpoints import from_pretrained, load_preset  # noqa: E402,F401
