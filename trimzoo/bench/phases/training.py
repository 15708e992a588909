"""Phase ``train_group``: the masked-LM training step of one row,
round-robin with its keras-hub peer and the reference (and profiled)."""

from trimzoo.bench import profile as profile_lib
from trimzoo.bench import workloads
from trimzoo.bench.config import PEER
from trimzoo.utils import timing


def order(ctx):
    """Training groups, the reference's first."""
    return [ctx.reference] + [n for n in ctx.rows if n != ctx.reference]


def _steps(ctx, name):
    cfg = ctx.config
    row = ctx.rows[name]
    batch = workloads.mlm_batch(cfg.train_batch_size, cfg.seq_len,
                                row["vocabulary_size"], seed=cfg.seed)
    steps = {name: workloads.TrainStep(
        workloads.masked_lm(ctx.backbone(name)), batch)}
    if row["peer"]:
        if row["params"] <= cfg.train_peer_max_params:
            steps[(name, PEER)] = workloads.TrainStep(
                workloads.masked_lm(ctx.peer(name)), batch)
        else:
            row["peer_train_skipped"] = (
                f"{row['params'] / 1e6:.0f}M parameters is above "
                f"train_peer_max_params="
                f"{cfg.train_peer_max_params / 1e6:.0f}M (memory)")
    if name != ctx.reference:
        ref_batch = workloads.mlm_batch(
            cfg.train_batch_size, cfg.seq_len,
            ctx.rows[ctx.reference]["vocabulary_size"], seed=cfg.seed)
        steps[ctx.reference] = workloads.TrainStep(
            workloads.masked_lm(ctx.backbone(ctx.reference)), ref_batch)
    return steps


def run(ctx, name):
    row = ctx.rows[name]
    steps = _steps(ctx, name)
    times = ctx.rounds(steps, ctx.config.train_rounds, f"train {name}",
                       phase=f"train_{name}")
    t = times[name]
    row["train_step_ms"] = 1000 * timing.median(t)
    row["train_tok_s"] = steps[name].tokens / timing.median(t)
    row["train_spread"] = timing.spread(t)
    row["train_loss_first_step"] = steps[name].last_loss
    if (name, PEER) in times:
        tp = times[(name, PEER)]
        row["peer_train_step_ms"] = 1000 * timing.median(tp)
        row["peer_train_ratio"] = timing.median_ratio(tp, t)
    if ctx.reference in times:
        row["train_speedup_vs_ref"] = timing.median_ratio(
            times[ctx.reference], t)
    if ctx.config.profile:
        entry = ctx.results.setdefault("profiles", {}).setdefault(name, {})
        entry["train"] = profile_lib.op_time_breakdown(steps[name])
        if (name, PEER) in steps:
            entry["peer_train"] = profile_lib.op_time_breakdown(
                steps[(name, PEER)])
    del steps, times
    ctx.release()
