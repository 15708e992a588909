"""Phase ``variants``: what helps the reference and its peer, XLA
(``jit_compile``) on and off, for inference at batch 1 and the training
step."""

from trimzoo.bench import workloads
from trimzoo.utils import timing


def _models(ctx):
    models = {"trimzoo": ctx.backbone(ctx.reference)}
    if ctx.rows[ctx.reference]["peer"]:
        models["keras-hub"] = ctx.peer(ctx.reference)
    return models


def run(ctx):
    cfg = ctx.config
    models = _models(ctx)
    x = ctx.inputs(ctx.reference, 1, cfg.seq_len)
    calls = {(label, jit): workloads.inference_call(model, x, jit)
             for label, model in models.items() for jit in (False, True)}
    infer = ctx.rounds(calls, cfg.infer_rounds, "variants: inference")
    del calls
    batch = workloads.mlm_batch(cfg.train_batch_size, cfg.seq_len,
                                models["trimzoo"].vocabulary_size,
                                seed=cfg.seed)
    steps = {}
    for label, model in models.items():
        task = workloads.masked_lm(model)
        for jit in (False, True):
            steps[(label, jit)] = workloads.TrainStep(task, batch,
                                                      jit_compile=jit)
    train = ctx.rounds(steps, cfg.train_rounds, "variants: training")
    del steps
    ctx.release()
    base = ("keras-hub", False) if "keras-hub" in models else (
        "trimzoo", False)
    rows = [{"model": label, "jit_compile": jit,
             "infer_ms_b1": 1000 * timing.median(infer[(label, jit)]),
             "train_step_ms": 1000 * timing.median(train[(label, jit)]),
             "infer_speedup": timing.median_ratio(infer[base],
                                                  infer[(label, jit)]),
             "train_speedup": timing.median_ratio(train[base],
                                                  train[(label, jit)])}
            for label, jit in infer]
    ctx.results["variants"] = {"model": ctx.reference, "baseline": list(base),
                               "rows": rows}
