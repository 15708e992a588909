"""Phase ``precisions``: one row in each precision of the run
(``BenchmarkConfig.precisions``: bfloat16, Keras int8...) against itself
in float32, round-robin: inference at batch 1 and ``batch_size``, and in
the Keras dtype policies (bfloat16) the masked-LM training step and the
keras-hub peer in the same precision.

Columns of the row, for each precision ``p`` other than float32 and
``B`` in 1 and ``batch_size``: ``{p}_infer_ms_bB``,
``{p}_infer_ratio_bB`` (float32 time / ``p`` time: above 1, ``p`` is
faster), ``{p}_max_abs_diff`` (largest difference of the batch-1 hidden
states from float32's); for dtype policies also ``{p}_train_step_ms``,
``{p}_train_ratio``, ``peer_{p}_infer_ratio_bB`` and
``peer_{p}_train_ratio`` (keras-hub ``p`` time / trimzoo ``p`` time).
With ``profile``, the step's profile in ``p`` goes to
``results["profiles"][row]["train_{p}"]``.
"""

import numpy as np

from trimzoo.bench import profile as profile_lib
from trimzoo.bench import workloads
from trimzoo.bench.config import PEER, POLICY_PRECISIONS
from trimzoo.utils import timing


def _fill(row, times, name, precision, ms_key, ratio_key):
    """The row's ``{p}_{ms_key}`` and ``{p}_{ratio_key}`` (float32 time /
    ``p`` time) and, where the peer ran, ``peer_{p}_{ratio_key}``
    (keras-hub time / trimzoo time, both in ``p``)."""
    t = times[(name, precision)]
    row[f"{precision}_{ms_key}"] = 1000 * timing.median(t)
    row[f"{precision}_{ratio_key}"] = timing.median_ratio(
        times[(name, "float32")], t)
    if (name, PEER, precision) in times:
        row[f"peer_{precision}_{ratio_key}"] = timing.median_ratio(
            times[(name, PEER, precision)], t)


def _inference(ctx, name):
    cfg = ctx.config
    row = ctx.rows[name]
    for batch in sorted({1, cfg.batch_size}):
        x = ctx.inputs(name, batch, cfg.seq_len)
        calls = {}
        for precision in ctx.precisions:
            calls[(name, precision)] = workloads.inference_call(
                ctx.in_precision(name, precision), x)
            if precision in POLICY_PRECISIONS[1:] and row["peer"]:
                calls[(name, PEER, precision)] = workloads.inference_call(
                    ctx.in_precision(name, precision, peer=True), x)
        if batch == 1:
            reference = calls[(name, "float32")]()
            for precision in ctx.precisions[1:]:
                out = calls[(name, precision)]().astype("float32")
                row[f"{precision}_max_abs_diff"] = float(
                    np.max(np.abs(out - reference)))
        times = ctx.rounds(calls, cfg.infer_rounds,
                           f"{name}: precisions, inference batch {batch}",
                           phase=f"precisions_infer_b{batch}_{name}")
        del calls
        for precision in ctx.precisions[1:]:
            _fill(row, times, name, precision, f"infer_ms_b{batch}",
                  f"infer_ratio_b{batch}")
    ctx.release()


def _training(ctx, name):
    cfg = ctx.config
    row = ctx.rows[name]
    precisions = [p for p in ctx.precisions if p in POLICY_PRECISIONS]
    if len(precisions) < 2:
        return
    batch = workloads.mlm_batch(cfg.train_batch_size, cfg.seq_len,
                                row["vocabulary_size"], seed=cfg.seed)
    with_peer = row["peer"] and (
        row["params"] <= cfg.train_peer_max_params)
    steps = {}
    for precision in precisions:
        steps[(name, precision)] = workloads.TrainStep(
            workloads.masked_lm(ctx.in_precision(name, precision)), batch)
        if with_peer and precision != "float32":
            steps[(name, PEER, precision)] = workloads.TrainStep(
                workloads.masked_lm(ctx.in_precision(name, precision,
                                                     peer=True)), batch)
    times = ctx.rounds(steps, cfg.train_rounds,
                       f"{name}: precisions, training",
                       phase=f"precisions_train_{name}")
    for precision in precisions[1:]:
        _fill(row, times, name, precision, "train_step_ms", "train_ratio")
        if cfg.profile:  # where the time of the step goes, as in float32
            ctx.results.setdefault("profiles", {}).setdefault(name, {})[
                f"train_{precision}"] = profile_lib.op_time_breakdown(
                    steps[(name, precision)])
    del steps
    ctx.release()


def run(ctx, name):
    """Times row ``name`` in every precision of the run; inference models
    are dropped before the training steps are built (memory)."""
    _inference(ctx, name)
    _training(ctx, name)
