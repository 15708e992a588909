"""Small helpers shared by the layers."""

import keras


def default_initializer(initializer=None):
    """BERT's truncated normal (stddev 0.02) unless ``initializer`` is given."""
    if initializer is None:
        return keras.initializers.TruncatedNormal(stddev=0.02)
    return keras.initializers.get(initializer)


def clone_initializer(initializer):
    """A fresh copy, so that seeded initializers don't repeat one draw."""
    return initializer.__class__.from_config(initializer.get_config())
