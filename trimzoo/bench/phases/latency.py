"""Phase ``inference``: Keras inference at batch 1 and at ``batch_size``,
each row round-robin with its keras-hub peer and the matmul reference
products (see :mod:`trimzoo.bench.roofline`)."""

from trimzoo.bench import roofline, workloads
from trimzoo.bench.config import PEER
from trimzoo.utils import timing


def run(ctx):
    cfg = ctx.config
    peak = roofline.cpu_peak()
    ctx.results["cpu_peak"] = peak
    ffn_shapes = sorted({(r["hidden_dim"], r["intermediate_dim"])
                         for r in ctx.rows.values()})
    for batch in (1, cfg.batch_size):
        suffix = f"b{batch}"
        calls = {}
        for name in ctx.rows:
            x = ctx.inputs(name, batch, cfg.seq_len)
            calls[name] = workloads.inference_call(ctx.backbone(name), x)
            if ctx.rows[name]["peer"]:
                calls[(name, PEER)] = workloads.inference_call(
                    ctx.peer(name), x)
        probes = roofline.probes(batch * cfg.seq_len, ffn_shapes)
        calls.update({key: call for key, (call, _) in probes.items()})
        times = ctx.rounds(calls, cfg.infer_rounds,
                           f"inference batch {batch}", phase=f"infer_{suffix}")
        del calls
        best, by_shape = roofline.best_rates(times, probes)
        rate = timing.median(best)
        ctx.results.setdefault("matmul_rate", {})[suffix] = {
            "shape": [int(d) for d in max(by_shape, key=by_shape.get)
                      .split("x")],
            "gflops": round(rate / 1e9, 2),
            "shapes": {k: round(v, 2) for k, v in by_shape.items()},
            "peak_fraction": (rate / 1e9 / peak["gflops"]
                              if peak["gflops"] else None)}
        _fill_rows(ctx, times, best, batch, suffix, peak)
    ctx.release()


def _fill_rows(ctx, times, best, batch, suffix, peak):
    tokens = batch * ctx.config.seq_len
    for name, row in ctx.rows.items():
        t = times[name]
        seconds = timing.median(t)
        flops = row["flops_per_token"] * tokens
        row[f"infer_ms_{suffix}"] = 1000 * seconds
        row[f"infer_tok_s_{suffix}"] = tokens / seconds
        row[f"infer_spread_{suffix}"] = timing.spread(t)
        row[f"infer_gflops_{suffix}"] = flops / seconds / 1e9
        # Per round: the model's rate over the fastest reference product.
        row[f"matmul_fraction_{suffix}"] = timing.median(
            [(flops / tm) / rate for tm, rate in zip(t, best)])
        row[f"peak_fraction_{suffix}"] = (
            flops / seconds / 1e9 / peak["gflops"] if peak["gflops"]
            else None)
        if (name, PEER) in times:
            tp = times[(name, PEER)]
            row[f"peer_infer_ms_{suffix}"] = 1000 * timing.median(tp)
            row[f"peer_infer_ratio_{suffix}"] = timing.median_ratio(tp, t)
            if suffix == "b1":
                row["peer_infer_ratio"] = row["peer_infer_ratio_b1"]
        row[f"infer_speedup_vs_ref_{suffix}"] = timing.median_ratio(
            times[ctx.reference], t)
