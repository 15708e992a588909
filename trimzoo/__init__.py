"""trimzoo: efficient BERT encoders (TrimBERT, Bort, Poor Man's BERT) in Keras 3."""

__version__ = "0.1.0"

from trimzoo import layers, models  # noqa: E402,F401
