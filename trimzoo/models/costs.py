"""Parameter counts and analytic FLOPs of a backbone, and a check of the
FLOPs against TensorFlow's own count.

FLOPs count a multiply-add as two operations, the convention of the
papers (and of TensorFlow's registered op statistics). Only matrix
products are counted analytically; they are all but a few percent of the
work (layernorms, activations and the score normaliser are elementwise).
"""

import numpy as np

MATMUL_OP_TYPES = ("MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3",
                   "Einsum")


def parameter_counts(backbone):
    """Total, embedding and non-embedding parameter counts.

    The embedding parameters are the token, position and segment tables;
    everything else (layernorms, encoder blocks, pooler) is
    "non-embedding", the count that scales compute (Kaplan et al. 2020).

    Returns:
        dict with ``params``, ``embedding_params``, ``non_embedding_params``.
    """
    embedding = sum(
        int(np.prod(var.shape))
        for var in (backbone.token_embedding.embeddings,
                    backbone.position_embedding.position_embeddings,
                    backbone.segment_embedding.embeddings))
    total = int(backbone.count_params())
    return {"params": total, "embedding_params": embedding,
            "non_embedding_params": total - embedding}


def flops_per_token(backbone, seq_len=128):
    """Analytic forward FLOPs per token of ``backbone`` at ``seq_len``.

    Per block, with ``A = num_heads * head_dim`` the width of its
    concatenated heads (``H`` unless the block was pruned) and ``I`` its
    intermediate width: the fused query/key/value projection ``6 H A``, the
    output projection ``2 A H``, scores and weighted sum ``4 L A``, and, if
    the block has a feed-forward sublayer, ``4 H I``. Widths are read per
    block, so pruned models (per-layer heads and FFN widths) are counted
    exactly. The pooler adds ``2 H^2`` per sequence (``2 H^2 / L`` per
    token).

    Returns:
        dict with ``total`` and the parts ``projections``, ``attention``,
        ``ffn``, ``pooler`` (FLOPs per token, floats).
    """
    hidden = backbone.hidden_dim
    blocks = backbone.transformer_layers
    inner = [block.attention.inner_dim for block in blocks]
    parts = {
        "projections": 8.0 * hidden * sum(inner),
        "attention": 4.0 * seq_len * sum(inner),
        "ffn": 4.0 * hidden * sum(block.intermediate_dim
                                  for block in blocks if block.use_ffn),
        "pooler": 2.0 * hidden * hidden / seq_len,
    }
    parts["total"] = sum(parts.values())
    return parts


def train_flops_per_token(backbone, seq_len=128, predictions_per_seq=20):
    """Approximate training-step FLOPs per token: three times the forward
    (forward, and the two products of the backward pass) plus the masked-LM
    head (transform ``2 H^2`` and vocabulary projection ``2 H V`` at the
    masked positions only)."""
    hidden = backbone.hidden_dim
    head = (2.0 * hidden * hidden + 2.0 * hidden * backbone.vocabulary_size)
    head *= predictions_per_seq / seq_len
    return 3.0 * (flops_per_token(backbone, seq_len)["total"] + head)


def _frozen_inference_graph(model, batch_size, seq_len):
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2)

    specs = {name: tf.TensorSpec((batch_size, seq_len), tf.int32, name=name)
             for name in ("token_ids", "segment_ids", "padding_mask")}
    concrete = tf.function(
        lambda inputs: model(inputs, training=False)).get_concrete_function(
            specs)
    return convert_variables_to_constants_v2(concrete).graph


def profiler_flops(model, batch_size=1, seq_len=128):
    """FLOPs of one forward pass as TensorFlow counts them.

    Freezes the inference graph at a static shape and runs the TF
    profiler's float-operation count (``tf.compat.v1.profiler``, which sums
    the ``"flops"`` statistics TensorFlow registers per op type). The same
    statistics, read per node, split the total into matrix products and the
    rest.

    Returns:
        dict with ``profiler_total`` (the profiler's number),
        ``matmul`` (MatMul/BatchMatMul nodes), ``other`` and ``by_type``.
    """
    import tensorflow as tf
    from tensorflow.python.framework import ops as tf_ops

    graph = _frozen_inference_graph(model, batch_size, seq_len)
    options = tf.compat.v1.profiler.ProfileOptionBuilder(
        tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    ).with_empty_output().build()
    profile = tf.compat.v1.profiler.profile(
        graph=graph, run_meta=tf.compat.v1.RunMetadata(), cmd="op",
        options=options)
    by_type = {}
    for op in graph.get_operations():
        try:
            stat = tf_ops.get_stats_for_node_def(graph, op.node_def, "flops")
        except (ValueError, TypeError):
            continue
        if stat.value:
            by_type[op.type] = by_type.get(op.type, 0) + int(stat.value)
    matmul = sum(v for k, v in by_type.items() if k in MATMUL_OP_TYPES)
    return {
        "profiler_total": int(profile.total_float_ops),
        "matmul": int(matmul),
        "other": int(sum(by_type.values()) - matmul),
        "by_type": dict(sorted(by_type.items(), key=lambda kv: -kv[1])),
    }


def check_flops(backbone, seq_len=128, batch_size=1, rtol=0.005):
    """Compares ``flops_per_token`` with the TF profiler on ``backbone``.

    Returns:
        dict with the analytic and counted FLOPs of one forward pass at
        ``[batch_size, seq_len]``, their relative difference on the matrix
        products, the share of elementwise FLOPs the analytic count leaves
        out, and ``ok`` (relative difference within ``rtol``).
    """
    tokens = batch_size * seq_len
    analytic = flops_per_token(backbone, seq_len)["total"] * tokens
    counted = profiler_flops(backbone, batch_size, seq_len)
    rel = abs(counted["matmul"] - analytic) / analytic
    return {
        "batch_size": batch_size,
        "seq_len": seq_len,
        "analytic_matmul": float(analytic),
        "profiler_matmul": counted["matmul"],
        "profiler_total": counted["profiler_total"],
        "relative_difference": float(rel),
        "elementwise_share": float(
            (counted["profiler_total"] - counted["matmul"])
            / max(counted["profiler_total"], 1)),
        "by_type": counted["by_type"],
        "ok": bool(rel <= rtol),
    }
