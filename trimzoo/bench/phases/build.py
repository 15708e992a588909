"""Phase ``build``: every row's architecture, parameters, FLOPs and the
check that its keras-hub peer computes the same outputs."""

import numpy as np

from trimzoo.models import costs as flops_lib
from trimzoo.bench import workloads


def _widest(value):
    """A width that may be per layer: its largest value."""
    return int(max(value)) if isinstance(value, (list, tuple)) else int(value)


def run(ctx):
    for spec in ctx.each(ctx.specs, "build"):
        backbone = ctx.backbone(spec.name)
        row = {"model": spec.name, "preset": spec.preset,
               "dropped_layers": spec.drop_top,
               "num_layers": backbone.num_layers,
               "hidden_dim": _widest(backbone.hidden_dim),
               "intermediate_dim": _widest(backbone.intermediate_dim),
               "vocabulary_size": backbone.vocabulary_size}
        row.update(flops_lib.parameter_counts(backbone))
        per_token = flops_lib.flops_per_token(backbone, ctx.config.seq_len)
        row["flops_per_token"] = per_token["total"]
        row["train_flops_per_token"] = flops_lib.train_flops_per_token(
            backbone, ctx.config.seq_len)
        reason = workloads.peer_unavailable_reason(backbone)
        row["peer"] = None
        row["peer_reason"] = reason
        ctx.rows[spec.name] = row
        if reason is None and not ctx.config.peers:
            row["peer_reason"] = "peers switched off"
        elif reason is None:
            peer = ctx.peer(spec.name)
            row["peer"] = "keras_hub.models.BertBackbone"
            x = ctx.inputs(spec.name, 2, 16)
            a = backbone(x, training=False)["sequence_output"]
            b = peer(x, training=False)["sequence_output"]
            row["peer_max_abs_diff"] = float(np.max(np.abs(
                np.asarray(a) - np.asarray(b))))
        ctx.release()
