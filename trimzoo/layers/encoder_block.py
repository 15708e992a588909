"""One post-LN transformer encoder block whose parts are switched by data."""

import keras
from keras import ops

from trimzoo.layers._utils import clone_initializer, default_initializer
from trimzoo.layers.attention import SelfAttention
from trimzoo.layers.normalizers import get_activation


@keras.saving.register_keras_serializable(package="trimzoo")
class EncoderBlock(keras.layers.Layer):
    """A post-layernorm BERT encoder block with optional parts.

    ``x = x + dropout(attention(x))``, then the attention-output layernorm if
    ``attention_norm``; then, if ``use_ffn``,
    ``x = x + dropout(W2 act(W1 x))`` and the FFN-output layernorm if
    ``ffn_norm``. A block without FFN has no FFN weights at all (TrimBERT
    removes most intermediate sublayers); switching a layernorm off removes
    its weights and its computation (TrimBERT removes half of them).

    Args:
        hidden_dim: int. Model width.
        num_heads: int. Attention heads; must divide ``hidden_dim`` unless
            ``head_dim`` is given.
        intermediate_dim: int. Width of the FFN's hidden layer.
        use_ffn: bool. Whether the block has a feed-forward sublayer.
            Defaults to ``True``.
        attention_norm: bool. Layernorm after the attention residual.
            Defaults to ``True``.
        ffn_norm: bool. Layernorm after the FFN residual; needs ``use_ffn``.
            Defaults to ``True``.
        attention_normalizer: str. See ``trimzoo.layers.normalizers``.
            Defaults to ``"softmax"``.
        activation: str. FFN activation: ``"gelu"`` (exact erf, the BERT
            reference), ``"gelu_approximate"``, ``"relu"`` or ``"silu"``.
            Defaults to ``"gelu"``.
        dropout: float. Dropout on residual branches and attention weights.
            Defaults to ``0.1``.
        layer_norm_epsilon: float. Defaults to ``1e-12``.
        kernel_initializer: initializer. Defaults to truncated normal 0.02.
        head_dim: int or None. Size of each attention head (see
            ``SelfAttention``). Defaults to None (``hidden_dim //
            num_heads``).

    Examples:
    >>> import numpy as np
    >>> block = EncoderBlock(8, 2, 16, use_ffn=False, attention_norm=True,
    ...                      ffn_norm=False)
    >>> tuple(block(np.ones((1, 3, 8), "float32")).shape)
    (1, 3, 8)
    >>> block.ffn_intermediate is None, len(block.trainable_weights)
    (True, 6)
    """

    def __init__(
        self,
        hidden_dim,
        num_heads,
        intermediate_dim,
        use_ffn=True,
        attention_norm=True,
        ffn_norm=True,
        attention_normalizer="softmax",
        activation="gelu",
        dropout=0.1,
        layer_norm_epsilon=1e-12,
        kernel_initializer=None,
        head_dim=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if ffn_norm and not use_ffn:
            raise ValueError(
                "ffn_norm=True needs use_ffn=True: a block without a "
                "feed-forward sublayer has no FFN-output layernorm."
            )
        self.hidden_dim = int(hidden_dim)
        self.num_heads = int(num_heads)
        self.head_dim = None if head_dim is None else int(head_dim)
        self.intermediate_dim = int(intermediate_dim)
        if self.intermediate_dim < 1:
            raise ValueError(
                f"intermediate_dim must be a positive integer, got "
                f"{intermediate_dim!r}; a block without FFN neurons has "
                "use_ffn=False.")
        self.use_ffn = bool(use_ffn)
        self.attention_norm = bool(attention_norm)
        self.ffn_norm = bool(ffn_norm)
        self.attention_normalizer = attention_normalizer
        self.activation = activation
        self._activation_fn = get_activation(activation)
        self.dropout = float(dropout)
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.kernel_initializer = default_initializer(kernel_initializer)

        policy = self.dtype_policy
        self.attention = SelfAttention(
            self.hidden_dim,
            self.num_heads,
            normalizer=attention_normalizer,
            dropout=self.dropout,
            kernel_initializer=keras.initializers.serialize(
                self.kernel_initializer
            ),
            head_dim=self.head_dim,
            dtype=policy,
            name="attention",
        )
        self.attention_dropout = keras.layers.Dropout(
            self.dropout, dtype=policy, name="attention_dropout"
        )
        self.attention_layer_norm = None
        if self.attention_norm:
            self.attention_layer_norm = keras.layers.LayerNormalization(
                epsilon=self.layer_norm_epsilon,
                dtype=policy,
                name="attention_layer_norm",
            )
        self.ffn_intermediate = self.ffn_output = self.ffn_layer_norm = None
        if self.use_ffn:
            self.ffn_intermediate = keras.layers.Dense(
                self.intermediate_dim,
                kernel_initializer=clone_initializer(self.kernel_initializer),
                dtype=policy,
                name="ffn_intermediate",
            )
            self.ffn_output = keras.layers.Dense(
                self.hidden_dim,
                kernel_initializer=clone_initializer(self.kernel_initializer),
                dtype=policy,
                name="ffn_output",
            )
            self.ffn_dropout = keras.layers.Dropout(
                self.dropout, dtype=policy, name="ffn_dropout"
            )
            if self.ffn_norm:
                self.ffn_layer_norm = keras.layers.LayerNormalization(
                    epsilon=self.layer_norm_epsilon,
                    dtype=policy,
                    name="ffn_layer_norm",
                )

    def build(self, inputs_shape, padding_mask_shape=None,
              head_mask_shape=None):
        self.attention.build(inputs_shape)
        if self.attention_layer_norm is not None:
            self.attention_layer_norm.build(inputs_shape)
        if self.use_ffn:
            self.ffn_intermediate.build(inputs_shape)
            self.ffn_output.build(
                tuple(inputs_shape[:-1]) + (self.intermediate_dim,)
            )
            if self.ffn_layer_norm is not None:
                self.ffn_layer_norm.build(inputs_shape)
        self.built = True

    def call(self, inputs, padding_mask=None, training=None, head_mask=None):
        """Args: inputs ``[batch, seq, hidden]``; padding_mask ``[batch,
        seq]``, nonzero for real tokens (padded keys get zero weight);
        head_mask: optional per-head gate (see ``SelfAttention.call``)."""
        x = inputs
        attended = self.attention(x, padding_mask=padding_mask,
                                  training=training, head_mask=head_mask)
        x = x + self.attention_dropout(attended, training=training)
        if self.attention_layer_norm is not None:
            x = self.attention_layer_norm(x)
        if self.use_ffn:
            # On [batch * seq, hidden], so each product fuses with its bias
            # (see SelfAttention.call).
            shape = ops.shape(x)
            h = ops.reshape(x, (-1, self.hidden_dim))
            h = self._activation_fn(self.ffn_intermediate(h))
            h = ops.reshape(self.ffn_output(h), shape)
            x = x + self.ffn_dropout(h, training=training)
            if self.ffn_layer_norm is not None:
                x = self.ffn_layer_norm(x)
        return x

    def compute_output_shape(self, inputs_shape, padding_mask_shape=None,
                             **kwargs):
        return inputs_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "num_heads": self.num_heads,
                "head_dim": self.head_dim,
                "intermediate_dim": self.intermediate_dim,
                "use_ffn": self.use_ffn,
                "attention_norm": self.attention_norm,
                "ffn_norm": self.ffn_norm,
                "attention_normalizer": self.attention_normalizer,
                "activation": self.activation,
                "dropout": self.dropout,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
            }
        )
        return config
