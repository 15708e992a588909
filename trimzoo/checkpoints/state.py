"""Alias of ``trimzoo.models.state``, the flat view of a backbone's weights
that the checkpoint converters are written against."""

from trimzoo.models.state import (  # noqa: F401
    expected_shapes,
    get_state,
    set_state,
)
