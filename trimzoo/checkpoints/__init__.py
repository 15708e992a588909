"""Checkpoint folders: read HF BERT/RoBERTa safetensors, keras-hub and
trimzoo presets into ``TrimzooBackbone``s (``from_pretrained``,
``load_preset``, ``load_backbone``), write them back, and cut a folder into
a smaller one (``drop_checkpoint``). Converters work on the flat weight view
of ``trimzoo.models.state`` (``get_state``, ``set_state``)."""

from trimzoo.checkpoints.folders import (
    checkpoint_format,
    from_pretrained,
    load_backbone,
    load_classifier_folder,
    load_preset,
    save_classifier,
    save_pretrained,
)
from trimzoo.checkpoints.hf import export_hf
from trimzoo.checkpoints.surgery import drop_checkpoint
from trimzoo.models.state import expected_shapes, get_state, set_state
