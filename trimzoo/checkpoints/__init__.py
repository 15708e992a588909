"""Checkpoint folders: read HF BERT/RoBERTa safetensors, keras-hub and
trimzoo presets into ``TrimzooBackbone``s, write them back, and drop layers
of a folder. Converters work on the flat weight view of
``trimzoo.models.state``."""

from trimzoo.checkpoints.folders import (
    checkpoint_format,
    load_backbone,
    load_pretrained,
    save_pretrained,
)
from trimzoo.checkpoints.hf import export_hf
from trimzoo.checkpoints.layer_drop import drop_checkpoint
from trimzoo.models.state import expected_shapes, get_state, set_state
