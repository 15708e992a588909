"""Pooling a sequence of token vectors into one vector per example."""

import keras
from keras import ops

#: Pooling modes of :class:`SequencePooling` (and of the classifier).
POOLING_MODES = ("cls", "mean", "max")


@keras.saving.register_keras_serializable(package="trimzoo")
class SequencePooling(keras.layers.Layer):
    """Masked mean or max over the real (unpadded) tokens, or the first token.

    Sentence encoders such as all-MiniLM-L6-v2 were trained with mean
    pooling (the average of the last hidden states over real tokens); BERT's
    pretrained pooler reads the first ([CLS]) token. Padded positions never
    contribute: for ``"mean"`` they get weight 0, for ``"max"`` they are
    excluded from the maximum.

    Args:
        mode: str. ``"cls"`` (first token), ``"mean"`` or ``"max"``.
            Defaults to ``"mean"``.

    Call arguments:
        sequence: float tensor ``[batch, length, hidden]``.
        padding_mask: int/bool tensor ``[batch, length]``, 1 for real
            tokens.

    Examples:

    >>> import numpy as np
    >>> x = np.array([[[1.0, 4.0], [3.0, 2.0], [9.0, 9.0]]], "float32")
    >>> mask = np.array([[1, 1, 0]], "int32")
    >>> np.asarray(SequencePooling("mean")(x, mask))
    array([[2., 3.]], dtype=float32)
    >>> np.asarray(SequencePooling("max")(x, mask))
    array([[3., 4.]], dtype=float32)
    """

    def __init__(self, mode="mean", **kwargs):
        super().__init__(**kwargs)
        if mode not in POOLING_MODES:
            raise ValueError(
                f"Unknown pooling {mode!r}; valid modes: {list(POOLING_MODES)}.")
        self.mode = mode

    def call(self, sequence, padding_mask):
        if self.mode == "cls":
            return sequence[:, 0, :]
        mask = ops.expand_dims(ops.cast(padding_mask, sequence.dtype), -1)
        if self.mode == "mean":
            total = ops.sum(sequence * mask, axis=1)
            count = ops.maximum(ops.sum(mask, axis=1), 1.0)
            return total / count
        # Padded positions are pushed far below any real activation.
        lowest = ops.cast(-1e4 if sequence.dtype == "float16" else -1e9,
                          sequence.dtype)
        return ops.max(sequence * mask + (1.0 - mask) * lowest, axis=1)

    def compute_output_shape(self, sequence_shape, padding_mask_shape=None):
        return (sequence_shape[0], sequence_shape[2])

    def get_config(self):
        config = super().get_config()
        config.update({"mode": self.mode})
        return config
