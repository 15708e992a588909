"""Checkpoint conversion: a flat weight view and converters built on it."""

from trimzoo.checkpoints.state import expected_shapes, get_state, set_state
