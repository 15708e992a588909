"""A flat, framework-neutral view of a backbone's weights.

``get_state(backbone)`` returns ``{name: np.ndarray}`` with stable names
(dense kernels as ``[in, out]``, the query/key/value projections separate),
and ``set_state(backbone, state)`` writes such a dict back, strictly: every
weight must be given with the right shape and nothing else may be left over.
Checkpoint converters (HF, keras-hub) and layer dropping are written against
this view, so they never touch Keras layer internals themselves.

Names::

    embeddings.token            [vocab, hidden]
    embeddings.position         [positions, hidden]
    embeddings.segment          [segments, hidden]
    embeddings.norm.{gamma,beta}
    layer.{i}.attention.{query,key,value,output}.{kernel,bias}
        (query/key/value kernels [hidden, heads * head_dim], the output
        kernel [heads * head_dim, hidden]; heads may differ per layer)
    layer.{i}.attention_norm.{gamma,beta}       (if the layer has it)
    layer.{i}.ffn.{intermediate,output}.{kernel,bias}   (if it has an FFN)
    layer.{i}.ffn_norm.{gamma,beta}             (if the layer has it)
    pooler.{kernel,bias}
"""

import numpy as np


def _norm(layer):
    return {"gamma": layer.gamma, "beta": layer.beta}


def _dense(layer):
    return {"kernel": layer.kernel, "bias": layer.bias}


def _variables(backbone):
    """name -> Keras variable, for every weight but the fused QKV."""
    variables = {
        "embeddings.token": backbone.token_embedding.embeddings,
        "embeddings.position": backbone.position_embedding.position_embeddings,
        "embeddings.segment": backbone.segment_embedding.embeddings,
    }
    for key, var in _norm(backbone.embeddings_layer_norm).items():
        variables[f"embeddings.norm.{key}"] = var
    for i, block in enumerate(backbone.transformer_layers):
        prefix = f"layer.{i}"
        for key, var in _dense(block.attention.output_dense).items():
            variables[f"{prefix}.attention.output.{key}"] = var
        parts = {
            "attention_norm": block.attention_layer_norm,
            "ffn_norm": block.ffn_layer_norm,
        }
        for site, layer in parts.items():
            if layer is not None:
                for key, var in _norm(layer).items():
                    variables[f"{prefix}.{site}.{key}"] = var
        if block.use_ffn:
            for part in ("intermediate", "output"):
                layer = getattr(block, f"ffn_{part}")
                for key, var in _dense(layer).items():
                    variables[f"{prefix}.ffn.{part}.{key}"] = var
    for key, var in _dense(backbone.pooled_dense).items():
        variables[f"pooler.{key}"] = var
    return variables


def get_state(backbone):
    """All weights of ``backbone`` as ``{name: float32 np.ndarray}``.

    Examples:
    >>> import trimzoo
    >>> backbone = trimzoo.models.bert_tiny(vocabulary_size=100,
    ...                                     num_layers=1)
    >>> state = get_state(backbone)
    >>> state["layer.0.attention.query.kernel"].shape
    (128, 128)
    >>> sorted(k for k in state if k.startswith("layer.0.ffn."))
    ['layer.0.ffn.intermediate.bias', 'layer.0.ffn.intermediate.kernel', 'layer.0.ffn.output.bias', 'layer.0.ffn.output.kernel']
    """
    state = {
        name: np.asarray(var.numpy() if hasattr(var, "numpy") else var,
                         dtype="float32")
        for name, var in _variables(backbone).items()
    }
    for i, block in enumerate(backbone.transformer_layers):
        inner = block.attention.inner_dim
        kernel = np.asarray(block.attention.qkv.kernel, dtype="float32")
        bias = np.asarray(block.attention.qkv.bias, dtype="float32")
        for j, part in enumerate(("query", "key", "value")):
            cols = slice(j * inner, (j + 1) * inner)
            state[f"layer.{i}.attention.{part}.kernel"] = kernel[:, cols]
            state[f"layer.{i}.attention.{part}.bias"] = bias[cols]
    return state


def expected_shapes(backbone):
    """``{name: shape}`` for every weight ``set_state`` needs.

    Examples:
    A layer without FFN has no FFN weights to set:

    >>> import trimzoo
    >>> backbone = trimzoo.models.bert_tiny(
    ...     vocabulary_size=100, num_layers=2, ffn_layers=(False, True),
    ...     layer_norm="one_per_block")
    >>> shapes = expected_shapes(backbone)
    >>> "layer.0.ffn.output.kernel" in shapes, shapes["layer.1.ffn.output.kernel"]
    (False, (512, 128))
    """
    shapes = {name: tuple(var.shape)
              for name, var in _variables(backbone).items()}
    hidden = backbone.hidden_dim
    for i, block in enumerate(backbone.transformer_layers):
        inner = block.attention.inner_dim
        for part in ("query", "key", "value"):
            shapes[f"layer.{i}.attention.{part}.kernel"] = (hidden, inner)
            shapes[f"layer.{i}.attention.{part}.bias"] = (inner,)
    return shapes


def set_state(backbone, state, source="checkpoint"):
    """Writes ``state`` into ``backbone``; every weight exactly once.

    Raises:
        ValueError: naming ``source``, if a weight is missing, left over, or
            has the wrong shape. Nothing is written in that case.

    Examples:
    >>> import numpy as np, trimzoo
    >>> a = trimzoo.models.bert_tiny(vocabulary_size=100, num_layers=1)
    >>> b = trimzoo.models.bert_tiny(vocabulary_size=100, num_layers=1)
    >>> set_state(b, get_state(a))
    >>> ids = np.array([[2, 7, 3]])
    >>> x = {"token_ids": ids, "segment_ids": 0 * ids,
    ...      "padding_mask": 1 + 0 * ids}
    >>> bool(np.allclose(a(x)["pooled_output"], b(x)["pooled_output"]))
    True
    >>> set_state(b, {}, source="empty.safetensors")
    Traceback (most recent call last):
    ...
    ValueError: empty.safetensors does not fit this architecture:
      missing 23 weights, e.g. [...]
    """
    shapes = expected_shapes(backbone)
    missing = sorted(set(shapes) - set(state))
    extra = sorted(set(state) - set(shapes))
    wrong = [
        f"{name}: {tuple(np.shape(state[name]))} != expected {shape}"
        for name, shape in shapes.items()
        if name in state and tuple(np.shape(state[name])) != shape
    ]
    if missing or extra or wrong:
        lines = [f"{source} does not fit this architecture:"]
        if missing:
            lines.append(f"  missing {len(missing)} weights, e.g. {missing[:5]}")
        if extra:
            lines.append(f"  {len(extra)} unused weights, e.g. {extra[:5]}")
        if wrong:
            lines.append(f"  {len(wrong)} wrong shapes, e.g. {wrong[:5]}")
        raise ValueError("\n".join(lines))

    for name, var in _variables(backbone).items():
        var.assign(np.asarray(state[name], dtype=var.dtype))
    for i, block in enumerate(backbone.transformer_layers):
        prefix = f"layer.{i}.attention"
        parts = ("query", "key", "value")
        block.attention.qkv.kernel.assign(np.concatenate(
            [state[f"{prefix}.{p}.kernel"] for p in parts], axis=1
        ).astype(block.attention.qkv.kernel.dtype))
        block.attention.qkv.bias.assign(np.concatenate(
            [state[f"{prefix}.{p}.bias"] for p in parts]
        ).astype(block.attention.qkv.bias.dtype))
