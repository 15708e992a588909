"""Alias of ``trimzoo.models.tokenizers``, where the tokenizers live (beside
the models, as in keras-hub)."""

from trimzoo.models.tokenizers import *  # noqa: F401,F403
from trimzoo.models.tokenizers import __all__  # noqa: F401
