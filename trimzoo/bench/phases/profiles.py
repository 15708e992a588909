"""Phases ``profiles`` (TF profiler breakdown of inference at batch 1, row
and peer) and ``check_flops`` (analytic FLOPs against the profiler's)."""

from trimzoo.models import costs as flops_lib
from trimzoo.bench import workloads
from trimzoo.bench.profile import op_time_breakdown


def run(ctx):
    profiles = ctx.results.setdefault("profiles", {})
    for name in ctx.each(ctx.rows, "profiles"):
        x = ctx.inputs(name, 1, ctx.config.seq_len)
        entry = profiles.setdefault(name, {})
        entry["infer_b1"] = op_time_breakdown(
            workloads.inference_call(ctx.backbone(name), x), steps=5)
        if ctx.rows[name]["peer"]:
            entry["peer_infer_b1"] = op_time_breakdown(
                workloads.inference_call(ctx.peer(name), x), steps=5)
        ctx.release()


def check_flops(ctx):
    check = flops_lib.check_flops(ctx.backbone(ctx.reference),
                                  seq_len=ctx.config.seq_len)
    check["model"] = ctx.reference
    ctx.results["flops_check"] = check
    ctx.release()
