"""Phase ``tflite``: every row converted to TFLite float32 and dynamic
int8 (builtin ops only), sized, and timed round-robin at batch 1."""

import gc
import os
import tempfile

import numpy as np

from trimzoo.export import TFLiteRunner, convert
from trimzoo.utils import timing
from trimzoo.utils.io import write_bytes

MODES = (("none", "fp32"), ("dynamic", "int8"))


def _convert(ctx, name, tmp, calls):
    cfg = ctx.config
    row = ctx.rows[name]
    arrays = {k: np.asarray(v, "int32")
              for k, v in ctx.inputs(name, 1, cfg.seq_len).items()}
    for quantize, key in MODES:
        try:
            flatbuffer = convert(ctx.backbone(name), quantize=quantize,
                                 seq_len=cfg.seq_len, batch_size=1,
                                 isolate=cfg.tflite_isolate)
        except Exception as e:  # Reported in the row.
            row[f"tflite_{key}_error"] = f"{type(e).__name__}: {str(e)[:300]}"
            continue
        path = os.path.join(tmp, f"{name}_{key}.tflite")
        write_bytes(path, flatbuffer)
        row[f"tflite_{key}_mb"] = len(flatbuffer) / 2 ** 20
        del flatbuffer
        runner = TFLiteRunner(path, num_threads=os.cpu_count())
        runner.runner(**arrays)
        calls[(name, key)] = lambda r=runner, a=arrays: r.runner(**a)


def run(ctx):
    calls = {}
    with tempfile.TemporaryDirectory(prefix="trimzoo_bench_") as tmp:
        for name in ctx.each(ctx.rows, "TFLite convert"):
            _convert(ctx, name, tmp, calls)
            ctx.release()
        times = ctx.rounds(calls, ctx.config.tflite_rounds, "TFLite batch 1",
                           phase="tflite_b1")
        del calls
        for (name, key), t in times.items():
            ctx.rows[name][f"tflite_{key}_ms_b1"] = 1000 * timing.median(t)
        gc.collect()
