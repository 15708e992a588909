"""Attention score normalisers: how raw scores become attention weights.

Every normaliser has the signature ``fn(scores, mask) -> weights`` where
``scores`` has shape ``[batch, heads, queries, keys]`` and ``mask`` is a
boolean tensor that broadcasts against it (``True`` = the key may be
attended). Masked keys always get exactly zero weight.

TrimBERT (Sridhar et al., 2022) replaces the softmax of self-attention with
"a computationally simpler alternative"; the zoo offers several and the
ablation tool measures them.
"""

import keras
from keras import ops

# A key count is never below one, even for a fully masked row.
_MIN_COUNT = 1.0
RELU_SUM_EPSILON = 1e-6


def _valid_key_count(mask, dtype):
    """Number of unmasked keys per query, shape ``[..., queries, 1]``."""
    count = ops.sum(ops.cast(mask, dtype), axis=-1, keepdims=True)
    return ops.maximum(count, _MIN_COUNT)


def softmax_normalizer(scores, mask):
    """BERT: ``softmax`` over unmasked keys."""
    mask = ops.broadcast_to(mask, ops.shape(scores))
    # Subtracting a large value keeps the exponent finite; the final
    # multiplication makes masked weights exactly zero (also for rows in which
    # every key is masked, where softmax alone would spread weight uniformly).
    scores = ops.where(mask, scores, ops.full_like(scores, -1e9))
    weights = ops.softmax(scores, axis=-1)
    return weights * ops.cast(mask, weights.dtype)


def relu_normalizer(scores, mask):
    """``relu(scores) / n`` with ``n`` the number of unmasked keys."""
    maskf = ops.cast(mask, scores.dtype)
    return ops.relu(scores) * maskf / _valid_key_count(mask, scores.dtype)


def relu_sum_normalizer(scores, mask):
    """``relu(scores) / (sum_unmasked relu(scores) + eps)``: rows sum to 1."""
    weights = ops.relu(scores) * ops.cast(mask, scores.dtype)
    total = ops.sum(weights, axis=-1, keepdims=True)
    return weights / (total + RELU_SUM_EPSILON)


def sigmoid_normalizer(scores, mask):
    """``sigmoid(scores - log(n))`` with ``n`` the number of unmasked keys."""
    shift = ops.log(_valid_key_count(mask, scores.dtype))
    return ops.sigmoid(scores - shift) * ops.cast(mask, scores.dtype)


NORMALIZERS = {
    "softmax": softmax_normalizer,
    "relu": relu_normalizer,
    "relu_sum": relu_sum_normalizer,
    "sigmoid": sigmoid_normalizer,
}


def get_normalizer(name):
    """Returns the normaliser function registered under ``name``.

    Raises:
        ValueError: if ``name`` is not one of ``NORMALIZERS``.

    Examples:
    Every normaliser gives a masked key exactly zero weight; softmax and
    ``relu_sum`` rows sum to one over the real keys:

    >>> import numpy as np
    >>> scores = np.array([[0.0, 1.0, 5.0]], "float32")
    >>> mask = np.array([[True, True, False]])
    >>> np.asarray(get_normalizer("softmax")(scores, mask)).round(3)
    array([[0.269, 0.731, 0.   ]], dtype=float32)
    >>> np.asarray(get_normalizer("relu")(scores, mask))
    array([[0. , 0.5, 0. ]], dtype=float32)
    >>> get_normalizer("cosine")
    Traceback (most recent call last):
    ...
    ValueError: Unknown attention_normalizer 'cosine'. Valid values: ['relu', 'relu_sum', 'sigmoid', 'softmax'].
    """
    if not isinstance(name, str) or name not in NORMALIZERS:
        raise ValueError(
            f"Unknown attention_normalizer {name!r}. "
            f"Valid values: {sorted(NORMALIZERS)}."
        )
    return NORMALIZERS[name]


def _gelu_exact(x):
    return keras.activations.gelu(x, approximate=False)


def _gelu_approximate(x):
    return keras.activations.gelu(x, approximate=True)


# Feed-forward activations by name. "gelu" is the exact (erf) gelu of the BERT
# reference; "gelu_approximate" is the tanh form used by keras-hub and TF
# Model Garden checkpoints.
ACTIVATIONS = {
    "gelu": _gelu_exact,
    "gelu_approximate": _gelu_approximate,
    "relu": keras.activations.relu,
    "silu": keras.activations.silu,
}


def get_activation(name):
    """Returns the feed-forward activation registered under ``name``.

    Examples:
    ``"gelu"`` is the exact (erf) gelu of the BERT reference, which differs
    from the tanh approximation by about 1e-4 here:

    >>> import numpy as np
    >>> x = np.array([-1.0, 0.5], "float32")
    >>> np.asarray(get_activation("gelu")(x)).round(4)
    array([-0.1587,  0.3457], dtype=float32)
    >>> np.asarray(get_activation("gelu_approximate")(x)).round(4)
    array([-0.1588,  0.3457], dtype=float32)
    """
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise ValueError(
            f"Unknown activation {name!r}. Valid values: {sorted(ACTIVATIONS)}."
        )
    return ACTIVATIONS[name]
