"""Phase ``memory``: each row's peak resident memory, measured by
``trimzoo.bench.memory.measure`` in its own fresh process (this phase
itself runs in the benchmark's process)."""

from trimzoo.bench.memory import measure
from trimzoo.utils.process import quiet_tensorflow_env, run_in_fresh_process

#: Seconds one row's measurement may take.
TIMEOUT = 1800


def run(ctx):
    cfg = ctx.config
    for spec in ctx.each(ctx.specs, "peak memory"):
        row = ctx.rows[spec.name]
        try:
            result = run_in_fresh_process(
                measure, spec.to_json(), cfg.batch_size, cfg.seq_len,
                cfg.train_batch_size, timeout=TIMEOUT,
                env=quiet_tensorflow_env())
        except Exception as e:  # Reported in the row.
            row["memory_error"] = f"{type(e).__name__}: {str(e)[-500:]}"
            continue
        row["peak_rss_baseline_mb"] = result["baseline_mb"]
        row["peak_rss_infer_mb"] = result["infer_mb"]
        row["peak_rss_train_mb"] = result["train_mb"]
