"""Checkpoint conversion: a flat weight view and converters built on it."""

from trimzoo.checkpoints.folders import (
    checkpoint_format,
    load_backbone,
    load_pretrained,
    save_pretrained,
)
from trimzoo.checkpoints.hf import export_hf
from trimzoo.checkpoints.state import expected_shapes, get_state, set_state
