"""keras-hub ``BertBackbone`` <-> trimzoo weights."""

import numpy as np


def config_from_keras_hub_bert(kh_backbone):
    """``TrimzooBackbone`` arguments equal to a keras-hub ``BertBackbone``.

    keras-hub's BERT uses the tanh-approximate gelu and layernorm eps 1e-12.

    Examples:
    The same weights in a trimzoo backbone give keras-hub's outputs:

    >>> import keras_hub, numpy as np, trimzoo
    >>> source = keras_hub.models.BertBackbone(
    ...     vocabulary_size=100, num_layers=1, num_heads=2, hidden_dim=16,
    ...     intermediate_dim=32, max_sequence_length=8)
    >>> backbone = trimzoo.models.TrimzooBackbone(
    ...     **config_from_keras_hub_bert(source))
    >>> trimzoo.checkpoints.set_state(backbone,
    ...                               state_from_keras_hub_bert(source))
    >>> ids = np.array([[2, 9, 4, 3]])
    >>> x = {"token_ids": ids, "segment_ids": 0 * ids,
    ...      "padding_mask": 1 + 0 * ids}
    >>> diff = np.abs(np.asarray(source(x)["sequence_output"])
    ...               - np.asarray(backbone(x)["sequence_output"]))
    >>> bool(diff.max() < 1e-5)
    True
    """
    return {
        "vocabulary_size": kh_backbone.vocabulary_size,
        "num_layers": kh_backbone.num_layers,
        "num_heads": kh_backbone.num_heads,
        "hidden_dim": kh_backbone.hidden_dim,
        "intermediate_dim": kh_backbone.intermediate_dim,
        "dropout": kh_backbone.dropout,
        "max_sequence_length": kh_backbone.max_sequence_length,
        "num_segments": kh_backbone.num_segments,
        "activation": "gelu_approximate",
        "layer_norm_epsilon": 1e-12,
    }


def state_from_keras_hub_bert(kh_backbone):
    """The weights of a keras-hub ``BertBackbone`` in ``trimzoo`` state
    names (see ``trimzoo.models.state``)."""

    def arr(var):
        return np.asarray(var.numpy(), dtype="float32")

    def norm(prefix, layer):
        return {f"{prefix}.gamma": arr(layer.gamma),
                f"{prefix}.beta": arr(layer.beta)}

    hidden = kh_backbone.hidden_dim
    state = {
        "embeddings.token": arr(kh_backbone.token_embedding.embeddings),
        "embeddings.position": arr(
            kh_backbone.position_embedding.position_embeddings),
        "embeddings.segment": arr(kh_backbone.segment_embedding.embeddings),
        **norm("embeddings.norm", kh_backbone.embeddings_layer_norm),
        "pooler.kernel": arr(kh_backbone.pooled_dense.kernel),
        "pooler.bias": arr(kh_backbone.pooled_dense.bias),
    }
    for i, layer in enumerate(kh_backbone.transformer_layers):
        p = f"layer.{i}"
        attention = layer._self_attention_layer
        for part, dense in (("query", attention._query_dense),
                            ("key", attention._key_dense),
                            ("value", attention._value_dense)):
            state[f"{p}.attention.{part}.kernel"] = arr(dense.kernel).reshape(
                hidden, hidden)
            state[f"{p}.attention.{part}.bias"] = arr(dense.bias).reshape(
                hidden)
        out = attention._output_dense
        state[f"{p}.attention.output.kernel"] = arr(out.kernel).reshape(
            hidden, hidden)
        state[f"{p}.attention.output.bias"] = arr(out.bias)
        state.update(norm(f"{p}.attention_norm",
                          layer._self_attention_layer_norm))
        for part, dense in (("intermediate",
                             layer._feedforward_intermediate_dense),
                            ("output", layer._feedforward_output_dense)):
            state[f"{p}.ffn.{part}.kernel"] = arr(dense.kernel)
            state[f"{p}.ffn.{part}.bias"] = arr(dense.bias)
        state.update(norm(f"{p}.ffn_norm", layer._feedforward_layer_norm))
    return state
