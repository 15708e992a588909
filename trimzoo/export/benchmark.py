"""Size and latency of the exported formats next to the Keras model.

Latency is the median wall time of one call on fixed inputs (real text
packed to the benchmark length) at batch 1 and 8. The formats are timed
round-robin: every round calls each format once, so load from other
processes on a shared machine spreads over all formats instead of
penalising whichever ran at that moment.
"""

import os
import tempfile
import time

import numpy as np
import tensorflow as tf

from trimzoo.models.backbone import INPUT_NAMES

#: Batch sizes of the benchmark.
BATCH_SIZES = (1, 8)


def keras_weights_size(model):
    """Bytes of the model's weights as Keras saves them
    (``.weights.h5``)."""
    with tempfile.TemporaryDirectory(prefix="trimzoo_size_") as tmp:
        path = os.path.join(tmp, "model.weights.h5")
        model.save_weights(path)
        return os.path.getsize(path)


def keras_callable(serving_fn, inputs):
    """A no-argument call of a Keras serving function on ``inputs``."""
    tensors = {name: tf.constant(inputs[name], tf.int32)
               for name in INPUT_NAMES}

    def call():
        outputs = serving_fn(**tensors)
        # Wait for the result, as the TFLite call does.
        return [value.numpy() for value in outputs.values()]

    return call


def tflite_callable(runner, inputs):
    """A no-argument call of a ``TFLiteRunner``'s signature on ``inputs``
    (one interpreter invocation)."""
    arrays = {name: np.asarray(inputs[name], dtype="int32")
              for name in INPUT_NAMES}
    runner.runner(**arrays)  # Resize and allocate once, outside the timing.

    def call():
        return runner.runner(**arrays)

    return call


def median_latencies(calls, rounds=30, warmup=3):
    """Median (and 90th-percentile) latency in milliseconds of each
    no-argument callable, timed round-robin.

    Args:
        calls: dict ``name -> callable``.
        rounds: int. Timed calls per callable. Defaults to 30.
        warmup: int. Untimed calls first. Defaults to 3.

    Returns:
        dict ``name -> {"median_ms", "p90_ms", "rounds"}``.
    """
    for call in calls.values():
        for _ in range(warmup):
            call()
    times = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return {name: {"median_ms": 1000 * float(np.median(t)),
                   "p90_ms": 1000 * float(np.percentile(t, 90)),
                   "rounds": rounds}
            for name, t in times.items()}


def format_table(rows, reference="keras_float32"):
    """A text table of benchmark rows ``{"format", "size_bytes",
    "latency_ms": {batch: ms}, "threads": {batch: n or None}}`` with size
    ratios and speed-ups against ``reference``."""
    by_name = {row["format"]: row for row in rows}
    ref = by_name.get(reference)
    header = (f"{'format':<22}{'size MB':>9}{'x size':>8}"
              + "".join(f"{'b' + str(b) + ' ms':>10}{'thr':>4}{'speedup':>9}"
                        for b in BATCH_SIZES))
    lines = [header, "-" * len(header)]
    for row in rows:
        size = row["size_bytes"]
        line = f"{row['format']:<22}{size / 1e6:>9.2f}"
        line += (f"{size / ref['size_bytes']:>8.2f}" if ref else f"{'':>8}")
        for b in BATCH_SIZES:
            ms = row["latency_ms"].get(str(b))
            ref_ms = ref["latency_ms"].get(str(b)) if ref else None
            threads = row.get("threads", {}).get(str(b))
            if ms is None:
                line += f"{'-':>10}{'':>4}{'':>9}"
                continue
            line += f"{ms:>10.2f}{threads if threads else 'tf':>4}"
            line += f"{ref_ms / ms:>8.2f}x" if ref_ms else f"{'':>9}"
        lines.append(line)
    lines.append("thr: TFLite interpreter threads (the faster of those "
                 "tried); tf: TensorFlow's own threading.")
    return "\n".join(lines)
