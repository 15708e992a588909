"""Copying Keras models.

Examples:

>>> import keras, numpy as np
>>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
>>> copy = clone_model(model)
>>> copy is model, all(np.array_equal(a, b) for a, b in
...                    zip(copy.get_weights(), model.get_weights()))
(False, True)
"""


def clone_model(model, **config_changes):
    """A new model of the same class built from ``model.get_config()``
    (with ``config_changes`` applied, e.g. ``dtype="float32"``) holding a
    copy of its weights. Works for any Keras model whose ``get_config``
    round-trips, which every trimzoo backbone and task does."""
    config = dict(model.get_config())
    config.update(config_changes)
    copy = model.__class__.from_config(config)
    copy.set_weights([w for w in model.get_weights()])
    return copy
