"""Phase ``scaling``: latency against sequence length (batch 1) and batch
size (``seq_len`` tokens), every row round-robin at each point."""

import gc

from trimzoo.bench import workloads
from trimzoo.utils import timing


def run(ctx):
    cfg = ctx.config
    sweeps = {"seq_len": [(1, length) for length in cfg.seq_lens],
              "batch_size": [(b, cfg.seq_len) for b in cfg.batch_sizes]}
    out = ctx.results.setdefault("scaling", {})
    for sweep, points in sweeps.items():
        table = {name: {} for name in ctx.rows}
        for batch, length in points:
            calls = {}
            for name in ctx.rows:
                backbone = ctx.backbone(name)
                if length > backbone.max_sequence_length:
                    continue
                calls[name] = workloads.inference_call(
                    backbone, ctx.inputs(name, batch, length))
            key = length if sweep == "seq_len" else batch
            times = ctx.rounds(calls, cfg.scaling_rounds,
                               f"scaling {sweep}={key}")
            del calls
            for name, t in times.items():
                table[name][str(key)] = 1000 * timing.median(t)
            gc.collect()
        out[sweep] = table
    ctx.release()
