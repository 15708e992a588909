"""TrimzooBackbone: one post-LN BERT encoder, every paper expressed as data.

(Slightly over 500 lines: the per-layer option resolvers live beside the
backbone because the checkpoint readers resolve configs with them.)
"""

import inspect

import keras
import keras_hub
import numpy as np

from trimzoo.layers._utils import default_initializer
from trimzoo.layers.encoder_block import EncoderBlock
from trimzoo.layers.normalizers import get_activation, get_normalizer
from trimzoo.models.input_checks import (
    INPUT_NAMES,
    check_argument_names,
    check_inputs,
    check_predict_data,
    graph_checks,
)
LAYER_NORM_POLICIES = ("all", "one_per_block", "none")


def resolve_ffn_layers(ffn_layers, num_layers):
    """Per-layer FFN flags from a tuple of booleans or a named policy.

    ``None`` or ``"all"``: every layer; ``"none"``: no layer; ``"every_N"``:
    layers ``N-1, 2N-1, ...`` (0-based), i.e. every N-th layer counted from
    the bottom, so ``"every_3"`` keeps indices 2, 5, 8, 11 of 12 layers.
    """
    if ffn_layers is None or ffn_layers == "all":
        return (True,) * num_layers
    if ffn_layers == "none":
        return (False,) * num_layers
    if isinstance(ffn_layers, str):
        prefix = "every_"
        step = ffn_layers[len(prefix):]
        if not (ffn_layers.startswith(prefix) and step.isdigit() and int(step)):
            raise ValueError(
                f"Unknown ffn_layers policy {ffn_layers!r}. Valid values: "
                "'all', 'none', 'every_N' (N >= 1) or a tuple of one boolean "
                "per layer."
            )
        step = int(step)
        if step > num_layers:
            raise ValueError(
                f"ffn_layers={ffn_layers!r} keeps no FFN in {num_layers} "
                f"layers; pass ffn_layers='none' for a model without FFNs.")
        return tuple((i + 1) % step == 0 for i in range(num_layers))
    return _bool_tuple("ffn_layers", ffn_layers, num_layers)


def resolve_layer_norms(layer_norm, attention_norm, ffn_norm, ffn_layers):
    """Per-layer (attention_norm, ffn_norm) flags.

    ``layer_norm`` is a policy that sets both sites: ``"all"`` keeps every
    layernorm (BERT); ``"one_per_block"`` keeps only the last layernorm of
    each block (the FFN-output one where the block has an FFN, else the
    attention-output one), TrimBERT's halving; ``"none"`` keeps none.
    Explicit ``attention_norm`` / ``ffn_norm`` tuples override the policy at
    their site.
    """
    if layer_norm not in LAYER_NORM_POLICIES:
        raise ValueError(
            f"Unknown layer_norm policy {layer_norm!r}. Valid values: "
            f"{list(LAYER_NORM_POLICIES)}."
        )
    num_layers = len(ffn_layers)
    if layer_norm == "all":
        attn, ffn = (True,) * num_layers, tuple(ffn_layers)
    elif layer_norm == "one_per_block":
        attn, ffn = tuple(not f for f in ffn_layers), tuple(ffn_layers)
    else:
        attn, ffn = (False,) * num_layers, (False,) * num_layers
    if attention_norm is not None:
        attn = _bool_tuple("attention_norm", attention_norm, num_layers)
    if ffn_norm is not None:
        ffn = _bool_tuple("ffn_norm", ffn_norm, num_layers)
        bad = [i for i in range(num_layers) if ffn[i] and not ffn_layers[i]]
        if bad:
            raise ValueError(
                f"ffn_norm is True for layers {bad}, which have no FFN "
                "(ffn_layers is False there)."
            )
    return attn, ffn


def resolve_normalizers(attention_normalizer, num_layers):
    """Per-layer normaliser names from one name or a tuple of names."""
    if isinstance(attention_normalizer, str):
        names = (attention_normalizer,) * num_layers
    else:
        names = tuple(attention_normalizer)
        if len(names) != num_layers:
            raise ValueError(
                f"attention_normalizer has {len(names)} entries but "
                f"num_layers is {num_layers}."
            )
    for name in names:
        get_normalizer(name)
    return names


def resolve_widths(num_heads, intermediate_dim, hidden_dim, num_layers,
                   head_dim=None):
    """Per-layer ``(num_heads, intermediate_dim)`` tuples and the head size.

    ``num_heads`` and ``intermediate_dim`` are one positive int for every
    layer or a sequence of one per layer (a pruned model). ``head_dim``
    None means ``hidden_dim // num_heads``, which needs the same number of
    heads in every layer and ``hidden_dim`` divisible by it.
    """
    heads = _int_tuple("num_heads", num_heads, num_layers,
                       "a layer needs at least one attention head")
    inter = _int_tuple("intermediate_dim", intermediate_dim, num_layers,
                       "a layer without FFN neurons has ffn_layers False "
                       "there")
    if head_dim is not None:
        return heads, inter, _positive_int("head_dim", head_dim)
    if len(set(heads)) > 1:
        raise ValueError(
            f"num_heads differs per layer ({list(heads)}): pass head_dim, the "
            "size of every head (hidden_dim // num_heads of the source).")
    if hidden_dim % heads[0]:
        raise ValueError(
            f"hidden_dim ({hidden_dim}) must be divisible by num_heads "
            f"({heads[0]}), or pass head_dim.")
    return heads, inter, hidden_dim // heads[0]


def _int_tuple(name, value, num_layers, zero_hint):
    """One positive int per layer from an int or a sequence of ints."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        values = (value,) * num_layers
    else:
        try:
            values = tuple(value)
        except TypeError:
            raise ValueError(
                f"{name} must be a positive integer or a sequence of "
                f"{num_layers} (one per layer), got {value!r}.") from None
        if len(values) != num_layers:
            raise ValueError(
                f"{name} has {len(values)} entries but num_layers is "
                f"{num_layers}.")
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise ValueError(
                f"{name} must hold positive integers, got {v!r} for layer "
                f"{i}.")
        if v < 1:
            raise ValueError(
                f"{name} must be positive, got {v} for layer {i}: "
                f"{zero_hint}.")
    return tuple(int(v) for v in values)


def _as_config_value(value):
    """An int stays an int; a per-layer sequence becomes a list of ints."""
    if isinstance(value, (int, np.integer)):
        return int(value)
    return [int(v) for v in value]


def _bool_tuple(name, value, num_layers):
    try:
        values = tuple(value)
    except TypeError:
        raise ValueError(
            f"{name} must be a tuple of {num_layers} booleans, got {value!r}."
        ) from None
    if len(values) != num_layers:
        raise ValueError(
            f"{name} has {len(values)} entries but num_layers is "
            f"{num_layers}."
        )
    if not all(isinstance(v, (bool, np.bool_)) for v in values):
        raise ValueError(f"{name} must hold booleans, got {values!r}.")
    return tuple(bool(v) for v in values)


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value}.")
    return int(value)


@keras.saving.register_keras_serializable(package="trimzoo")
class TrimzooBackbone(keras_hub.models.Backbone):
    """A post-LN BERT encoder whose blocks are configured per layer.

    TrimBERT, Bort and layer-dropped BERT ("Poor Man's BERT") are all this
    network with different data: how many layers, which layers keep their
    feed-forward sublayer, which layernorms are kept, how attention scores
    are normalised, widths and vocabularies. Argument names follow
    ``keras_hub.models.BertBackbone`` where they mean the same thing; with the
    default options (and ``activation="gelu_approximate"``) this is the same
    function as that backbone.

    Inputs are a dict of int tensors ``token_ids``, ``segment_ids`` and
    ``padding_mask`` (1 = real token), each ``[batch, seq]``; outputs are a
    dict with ``sequence_output`` ``[batch, seq, hidden]`` and
    ``pooled_output`` ``[batch, hidden]`` (dense + tanh on the first token).

    Args:
        vocabulary_size: int. Size of the token vocabulary.
        num_layers: int. Number of encoder blocks.
        num_heads: int or sequence of int (one per layer). Attention
            heads; must divide ``hidden_dim`` unless ``head_dim`` is given.
        hidden_dim: int. Model width.
        intermediate_dim: int or sequence of int (one per layer). Width of
            each FFN's hidden layer; ignored in layers without FFN.
        dropout: float. Dropout rate everywhere. Defaults to ``0.1``.
        max_sequence_length: int. Number of learned positions.
            Defaults to ``512``.
        num_segments: int. Number of segment (token type) ids; ``1`` as in
            Bort/RoBERTa. Defaults to ``2``.
        attention_normalizer: str or tuple of str (one per layer).
            ``"softmax"``, ``"relu"``, ``"relu_sum"`` or ``"sigmoid"``.
            Defaults to ``"softmax"``.
        ffn_layers: tuple of bool (one per layer) or a policy ``"all"``,
            ``"none"``, ``"every_N"``. Which blocks have an FFN.
            Defaults to ``"all"``.
        layer_norm: str. Layernorm policy ``"all"``, ``"one_per_block"``
            (only the last layernorm of each block) or ``"none"``.
            Defaults to ``"all"``.
        attention_norm: tuple of bool or None. Per-layer attention-output
            layernorm flags; overrides the policy there. Defaults to None.
        ffn_norm: tuple of bool or None. Per-layer FFN-output layernorm
            flags; overrides the policy there. Defaults to None.
        activation: str. FFN activation: ``"gelu"`` (exact erf, as the BERT
            reference), ``"gelu_approximate"`` (tanh), ``"relu"``, ``"silu"``.
            Defaults to ``"gelu"``.
        layer_norm_epsilon: float. Defaults to ``1e-12`` (BERT).
        head_dim: int or None. Size of every attention head; needed when
            ``num_heads`` differs per layer or ``num_heads * head_dim !=
            hidden_dim`` (models cut from a larger one with
            ``trimzoo.models.extract``). Defaults to None
            (``hidden_dim // num_heads``).
        dtype: dtype policy name, e.g. ``"float32"`` or ``"mixed_bfloat16"``.

    Examples:
    >>> import numpy as np
    >>> backbone = TrimzooBackbone(
    ...     vocabulary_size=100, num_layers=3, num_heads=2, hidden_dim=16,
    ...     intermediate_dim=32, ffn_layers="every_3",
    ...     layer_norm="one_per_block", attention_normalizer="relu")
    >>> ids = np.array([[2, 5, 7, 3, 0]])
    >>> out = backbone({"token_ids": ids, "segment_ids": np.zeros_like(ids),
    ...                 "padding_mask": (ids > 0).astype("int32")})
    >>> tuple(out["sequence_output"].shape), tuple(out["pooled_output"].shape)
    ((1, 5, 16), (1, 16))
    """

    def __init__(
        self,
        vocabulary_size,
        num_layers,
        num_heads,
        hidden_dim,
        intermediate_dim,
        dropout=0.1,
        max_sequence_length=512,
        num_segments=2,
        attention_normalizer="softmax",
        ffn_layers="all",
        layer_norm="all",
        attention_norm=None,
        ffn_norm=None,
        activation="gelu",
        layer_norm_epsilon=1e-12,
        head_dim=None,
        dtype=None,
        **kwargs,
    ):
        # === Validate and resolve the per-layer options ===
        check_argument_names(kwargs, _ARGUMENTS, "TrimzooBackbone")
        vocabulary_size = _positive_int("vocabulary_size", vocabulary_size)
        num_layers = _positive_int("num_layers", num_layers)
        hidden_dim = _positive_int("hidden_dim", hidden_dim)
        max_sequence_length = _positive_int(
            "max_sequence_length", max_sequence_length
        )
        num_segments = _positive_int("num_segments", num_segments)
        layer_heads, layer_inter, head_size = resolve_widths(
            num_heads, intermediate_dim, hidden_dim, num_layers, head_dim
        )
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}.")
        get_activation(activation)
        if not float(layer_norm_epsilon) > 0.0:
            raise ValueError(
                f"layer_norm_epsilon must be > 0, got {layer_norm_epsilon}.")
        ffn_flags = resolve_ffn_layers(ffn_layers, num_layers)
        attn_norms, ffn_norms = resolve_layer_norms(
            layer_norm, attention_norm, ffn_norm, ffn_flags
        )
        normalizers = resolve_normalizers(attention_normalizer, num_layers)

        # === Layers ===
        self.token_embedding = keras_hub.layers.ReversibleEmbedding(
            input_dim=vocabulary_size,
            output_dim=hidden_dim,
            embeddings_initializer=default_initializer(),
            dtype=dtype,
            name="token_embedding",
        )
        self.position_embedding = keras_hub.layers.PositionEmbedding(
            sequence_length=max_sequence_length,
            initializer=default_initializer(),
            dtype=dtype,
            name="position_embedding",
        )
        self.segment_embedding = keras.layers.Embedding(
            input_dim=num_segments,
            output_dim=hidden_dim,
            embeddings_initializer=default_initializer(),
            dtype=dtype,
            name="segment_embedding",
        )
        self.embeddings_add = keras.layers.Add(
            dtype=dtype, name="embeddings_add"
        )
        self.embeddings_layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon,
            dtype=dtype,
            name="embeddings_layer_norm",
        )
        self.embeddings_dropout = keras.layers.Dropout(
            dropout, dtype=dtype, name="embeddings_dropout"
        )
        self.transformer_layers = [
            EncoderBlock(
                hidden_dim=hidden_dim,
                num_heads=layer_heads[i],
                intermediate_dim=layer_inter[i],
                head_dim=None if head_dim is None else head_size,
                use_ffn=ffn_flags[i],
                attention_norm=attn_norms[i],
                ffn_norm=ffn_norms[i],
                attention_normalizer=normalizers[i],
                activation=activation,
                dropout=dropout,
                layer_norm_epsilon=layer_norm_epsilon,
                dtype=dtype,
                name=f"transformer_layer_{i}",
            )
            for i in range(num_layers)
        ]
        self.pooled_dense = keras.layers.Dense(
            hidden_dim,
            kernel_initializer=default_initializer(),
            activation="tanh",
            dtype=dtype,
            name="pooled_dense",
        )

        # === Functional model ===
        token_id_input = keras.Input(
            shape=(None,), dtype="int32", name="token_ids"
        )
        segment_id_input = keras.Input(
            shape=(None,), dtype="int32", name="segment_ids"
        )
        padding_mask_input = keras.Input(
            shape=(None,), dtype="int32", name="padding_mask"
        )
        tokens = self.token_embedding(token_id_input)
        positions = self.position_embedding(tokens)
        segments = self.segment_embedding(segment_id_input)
        x = self.embeddings_add((tokens, positions, segments))
        x = self.embeddings_layer_norm(x)
        x = self.embeddings_dropout(x)
        for block in self.transformer_layers:
            x = block(x, padding_mask=padding_mask_input)
        sequence_output = x
        pooled_output = self.pooled_dense(x[:, 0, :])
        super().__init__(
            inputs={
                "token_ids": token_id_input,
                "segment_ids": segment_id_input,
                "padding_mask": padding_mask_input,
            },
            outputs={
                "sequence_output": sequence_output,
                "pooled_output": pooled_output,
            },
            dtype=dtype,
            **kwargs,
        )

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.num_heads = _as_config_value(num_heads)
        self.hidden_dim = hidden_dim
        self.intermediate_dim = _as_config_value(intermediate_dim)
        self.head_dim = None if head_dim is None else head_size
        self.dropout = float(dropout)
        self.max_sequence_length = max_sequence_length
        self.num_segments = num_segments
        self.attention_normalizer = (
            attention_normalizer
            if isinstance(attention_normalizer, str)
            else list(normalizers)
        )
        self.ffn_layers = (
            ffn_layers if isinstance(ffn_layers, str) else list(ffn_flags)
        )
        self.layer_norm = layer_norm
        self.attention_norm = (
            None if attention_norm is None else list(attn_norms)
        )
        self.ffn_norm = None if ffn_norm is None else list(ffn_norms)
        self.activation = activation
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.cls_token_index = 0

    # Resolved per-layer views, for tools that copy or inspect layers.
    @property
    def layer_options(self):
        """One dict per layer: ``use_ffn``, ``attention_norm``, ``ffn_norm``,
        ``attention_normalizer``, ``num_heads``, ``head_dim`` (resolved)
        and ``intermediate_dim``."""
        return [
            {
                "num_heads": block.attention.num_heads,
                "head_dim": block.attention.head_dim,
                "intermediate_dim": block.intermediate_dim,
                "use_ffn": block.use_ffn,
                "attention_norm": block.attention_norm,
                "ffn_norm": block.ffn_norm,
                "attention_normalizer": block.attention_normalizer,
            }
            for block in self.transformer_layers
        ]

    def __call__(self, inputs, *args, **kwargs):
        limits = (self.vocabulary_size, self.num_segments,
                  self.max_sequence_length)
        check_inputs(inputs, *limits)
        return super().__call__(graph_checks(inputs, *limits), *args,
                                **kwargs)

    def predict(self, x, *args, **kwargs):
        check_predict_data(x)
        return super().predict(x, *args, **kwargs)

    @classmethod
    def check_argument_names(cls, names, owner=None):
        """Raises ``TypeError`` for a name that is not a constructor
        argument, suggesting the closest one (``num_layer`` ->
        ``num_layers``); ``owner`` names the caller in the message."""
        check_argument_names(names, _ARGUMENTS, owner or cls.__name__)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "num_layers": self.num_layers,
                "num_heads": self.num_heads,
                "hidden_dim": self.hidden_dim,
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
                "max_sequence_length": self.max_sequence_length,
                "num_segments": self.num_segments,
                "attention_normalizer": self.attention_normalizer,
                "ffn_layers": self.ffn_layers,
                "layer_norm": self.layer_norm,
                "attention_norm": self.attention_norm,
                "ffn_norm": self.ffn_norm,
                "activation": self.activation,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "head_dim": self.head_dim,
            }
        )
        return config


# Constructor arguments, and the Keras ones ``from_config`` passes back.
_ARGUMENTS = tuple(
    name for name in inspect.signature(TrimzooBackbone.__init__).parameters
    if name not in ("self", "kwargs")) + ("name", "trainable")
