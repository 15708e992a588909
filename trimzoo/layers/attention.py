"""Multi-head self-attention with a pluggable score normaliser."""

import keras
from keras import ops

from trimzoo.layers._utils import clone_initializer, default_initializer
from trimzoo.layers.normalizers import get_normalizer


@keras.saving.register_keras_serializable(package="trimzoo")
class SelfAttention(keras.layers.Layer):
    """Multi-head self-attention whose score normaliser is chosen by name.

    The query, key and value projections are fused into one ``[hidden,
    3 * num_heads * head_dim]`` matrix (one matmul instead of three); the
    output projection maps the ``num_heads * head_dim`` concatenated heads
    back to ``hidden``. Scores are scaled by ``1 / sqrt(head_dim)`` and
    turned into weights by the normaliser (see
    ``trimzoo.layers.normalizers``), computed in float32 under mixed
    precision. Masked keys get exactly zero weight whatever the normaliser.

    Args:
        hidden_dim: int. Model width; must be divisible by ``num_heads``
            unless ``head_dim`` is given.
        num_heads: int. Number of attention heads (at least 1).
        head_dim: int or None. Size of each head. A pruned layer keeps the
            head size of its source with fewer heads, so ``num_heads *
            head_dim`` may differ from ``hidden_dim``. Defaults to None
            (``hidden_dim // num_heads``).
        normalizer: str. Score normaliser: ``"softmax"`` (BERT), ``"relu"``,
            ``"relu_sum"`` or ``"sigmoid"``. Defaults to ``"softmax"``.
        dropout: float. Dropout on the attention weights. Defaults to ``0.0``.
        kernel_initializer: initializer name or config for the projections.
            Defaults to a truncated normal with stddev 0.02 (BERT).

    Examples:
    >>> import numpy as np
    >>> layer = SelfAttention(hidden_dim=8, num_heads=2, normalizer="relu")
    >>> x = np.random.default_rng(0).normal(size=(1, 3, 8)).astype("float32")
    >>> tuple(layer(x).shape)
    (1, 3, 8)

    A padded key gets exactly zero weight, so the outputs at the real
    positions do not depend on what the padded position holds:

    >>> mask = np.array([[1, 1, 0]])
    >>> y = x.copy()
    >>> y[0, 2] = 100.0
    >>> a = np.asarray(layer(x, padding_mask=mask))
    >>> b = np.asarray(layer(y, padding_mask=mask))
    >>> bool(np.allclose(a[0, :2], b[0, :2], atol=1e-5))
    True
    """

    def __init__(
        self,
        hidden_dim,
        num_heads,
        normalizer="softmax",
        dropout=0.0,
        kernel_initializer=None,
        head_dim=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (("hidden_dim", hidden_dim),
                            ("num_heads", num_heads),
                            ("head_dim", 1 if head_dim is None else head_dim)):
            if int(value) != value or value < 1:
                raise ValueError(
                    f"{name} must be a positive integer, got {value!r}.")
        if head_dim is None and hidden_dim % num_heads:
            raise ValueError(
                f"hidden_dim ({hidden_dim}) must be divisible by num_heads "
                f"({num_heads}), or pass head_dim."
            )
        self.hidden_dim = int(hidden_dim)
        self.num_heads = int(num_heads)
        self._head_dim_arg = None if head_dim is None else int(head_dim)
        self.head_dim = (self.hidden_dim // self.num_heads
                         if head_dim is None else int(head_dim))
        # Width of the concatenated heads (= hidden_dim unless pruned).
        self.inner_dim = self.num_heads * self.head_dim
        self.normalizer = normalizer
        self._normalize = get_normalizer(normalizer)
        self.dropout = float(dropout)
        self.kernel_initializer = default_initializer(kernel_initializer)
        self.qkv = keras.layers.Dense(
            3 * self.inner_dim,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            dtype=self.dtype_policy,
            name="qkv",
        )
        self.output_dense = keras.layers.Dense(
            self.hidden_dim,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            dtype=self.dtype_policy,
            name="output",
        )
        self.weights_dropout = keras.layers.Dropout(
            self.dropout, dtype=self.dtype_policy, name="weights_dropout"
        )

    def build(self, inputs_shape, padding_mask_shape=None,
              head_mask_shape=None):
        self.qkv.build(inputs_shape)
        self.output_dense.build(tuple(inputs_shape[:-1]) + (self.inner_dim,))
        self.built = True

    def call(self, inputs, padding_mask=None, training=None, head_mask=None):
        """Args: inputs ``[batch, seq, hidden]``; padding_mask ``[batch,
        seq]``, nonzero for real tokens: padded keys get zero weight;
        head_mask ``[num_heads]`` or ``[batch, num_heads]``, a gate that
        multiplies each head's context before the output projection (None,
        the default, adds nothing to the graph; importance scores take
        gradients with respect to it)."""
        batch = ops.shape(inputs)[0]
        length = ops.shape(inputs)[1]
        query, key, value = self._project(inputs)
        weights = self._attention_weights(query, key, padding_mask)
        weights = ops.cast(weights, self.compute_dtype)
        weights = self.weights_dropout(weights, training=training)
        context = ops.matmul(weights, value)  # [batch, heads, seq, head_dim]
        if head_mask is not None:
            gate = ops.cast(head_mask, context.dtype)
            gate = ops.reshape(gate, (-1, self.num_heads, 1, 1))
            context = context * gate
        context = ops.transpose(context, (0, 2, 1, 3))
        context = ops.reshape(context, (-1, self.inner_dim))
        outputs = self.output_dense(context)
        return ops.reshape(outputs, (batch, length, self.hidden_dim))

    def attention_weights(self, inputs, padding_mask=None):
        """The normalised attention weights ``[batch, heads, queries,
        keys]`` (float32; before dropout) that ``call`` applies to the
        values: what attention distillation matches.

        >>> import numpy as np
        >>> layer = SelfAttention(hidden_dim=8, num_heads=2)
        >>> x = np.random.default_rng(0).normal(size=(1, 3, 8)).astype("float32")
        >>> w = np.asarray(layer.attention_weights(x, np.array([[1, 1, 0]])))
        >>> w.shape, bool(np.allclose(w.sum(-1), 1.0)), float(w[..., 2].max())
        ((1, 2, 3, 3), True, 0.0)
        """
        query, key, _ = self._project(inputs)
        return self._attention_weights(query, key, padding_mask)

    def _project(self, inputs):
        """Queries (scaled by ``1 / sqrt(head_dim)``), keys and values,
        each ``[batch, heads, seq, head_dim]``."""
        batch = ops.shape(inputs)[0]
        length = ops.shape(inputs)[1]
        # The projections run on [batch * seq, hidden]: a 2-D product is
        # followed directly by its bias add, which TensorFlow fuses into one
        # kernel (on rank 3, Keras reshapes in between and blocks that).
        qkv = self.qkv(ops.reshape(inputs, (-1, self.hidden_dim)))
        qkv = ops.reshape(
            qkv, (batch, length, 3 * self.num_heads, self.head_dim)
        )
        # [batch, 3 * heads, seq, head_dim]; split, not index: the gradient
        # of a split is one concatenation, that of three slices is three
        # zero-padded copies of the whole tensor.
        qkv = ops.transpose(qkv, (0, 2, 1, 3))
        query, key, value = ops.split(qkv, 3, axis=1)
        query = query * ops.cast(1.0 / self.head_dim**0.5, query.dtype)
        return query, key, value

    def _attention_weights(self, query, key, padding_mask):
        """The normaliser's weights of the scaled scores, at least float32
        (mixed precision); masked keys get exactly zero weight."""
        scores = ops.matmul(query, ops.transpose(key, (0, 1, 3, 2)))
        if padding_mask is None:
            key_mask = ops.ones((1, 1, 1, 1), dtype="bool")
        else:  # [batch, 1, 1, keys]: every query sees every real key.
            # expand_dims, not [:, None, None, :]: the TFLite converter has
            # no builtin kernel for a new-axis strided slice on dynamic
            # shapes and would need a Flex op.
            key_mask = ops.expand_dims(
                ops.expand_dims(ops.cast(padding_mask, "bool"), 1), 1)
        # A float64 model stays float64.
        normalize_dtype = ("float64" if self.compute_dtype == "float64"
                           else "float32")
        return self._normalize(ops.cast(scores, normalize_dtype), key_mask)

    def compute_output_shape(self, inputs_shape, padding_mask_shape=None,
                             **kwargs):
        return inputs_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "num_heads": self.num_heads,
                "head_dim": self._head_dim_arg,
                "normalizer": self.normalizer,
                "dropout": self.dropout,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
            }
        )
        return config
