"""Compression procedures over trimzoo models: importance scores and
structured pruning (heads, FFN neurons, hidden dimensions).

Uses models, data and checkpoints; nothing in ``trimzoo.models`` imports
it.
"""

from trimzoo.compression.importance import (
    IMPORTANCE,
    ImportanceLoss,
    importance_scores,
)
from trimzoo.compression.prune import (
    SCOPES,
    prune,
    prune_checkpoint,
    prune_counts,
    select,
)

__all__ = ["IMPORTANCE", "SCOPES", "ImportanceLoss", "importance_scores",
           "prune", "prune_checkpoint", "prune_counts", "select"]
