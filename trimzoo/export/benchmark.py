"""Size and latency of the exported formats next to the Keras model.

Latency is the median wall time of one call on fixed inputs (real text
packed to the benchmark length) at batch 1 and 8. The formats are timed
round-robin (``trimzoo.utils.timing.round_robin``): every round calls each
format once, so load from other processes on a shared machine spreads over
all formats instead of penalising whichever ran at that moment.

Examples:

>>> import time
>>> latencies = median_latencies({"fast": lambda: None,
...                               "slow": lambda: time.sleep(0.002)},
...                              rounds=5, warmup=1)
>>> latencies["slow"]["median_ms"] > latencies["fast"]["median_ms"]
True
>>> latencies["fast"]["rounds"]
5
>>> print(format_table([
...     {"format": "keras_float32", "size_bytes": 4e6,
...      "latency_ms": {"1": 2.0, "8": 8.0}},
...     {"format": "tflite_dynamic_int8", "size_bytes": 1e6,
...      "latency_ms": {"1": 1.0, "8": 4.0}, "threads": {"1": 1, "8": 2}}]))
... # doctest: +NORMALIZE_WHITESPACE
format                  size MB  x size     b1 ms thr  speedup     b8 ms thr  speedup
-------------------------------------------------------------------------------------
keras_float32              4.00    1.00      2.00  tf    1.00x      8.00  tf    1.00x
tflite_dynamic_int8        1.00    0.25      1.00   1    2.00x      4.00   2    2.00x
thr: TFLite interpreter threads (the faster of those tried); tf: TensorFlow's own threading.
"""

import logging
import os
import platform
import tempfile

import numpy as np
import tensorflow as tf

from trimzoo.export.data import calibration_data
from trimzoo.export.parity import compare, gate
from trimzoo.export.quantize import keras_int8
from trimzoo.export.saved_model import KerasRunner, SavedModelRunner
from trimzoo.export.tflite import (
    TFLiteRunner,
    conversion_saved_model,
    convert_file,
)
from trimzoo.models.backbone import INPUT_NAMES
from trimzoo.utils import timing

log = logging.getLogger("trimzoo")

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


def median_latencies(calls, rounds=30, warmup=3, rotation=None):
    """Median (and 90th-percentile) latency in milliseconds of each
    no-argument callable, timed round-robin.

    Args:
        calls: dict ``name -> callable``.
        rounds: int. Timed calls per callable. Defaults to 30.
        warmup: int. Untimed calls first. Defaults to 3.
        rotation: callable(name) -> hashable, or None. Calls of one value
            are timed in a rotation of their own (one per runtime: a TFLite
            call right after a Keras one shares the cores with TensorFlow's
            still-spinning threads, 1.5-2x slower on 2 cores of an AMD EPYC,
            measured 2026-12-03). None: one rotation.

    Returns:
        dict ``name -> {"median_ms", "p90_ms", "rounds"}``.

    >>> import time
    >>> calls = {("keras", "a"): lambda: time.sleep(0.001),
    ...          ("tflite", "a"): lambda: None}
    >>> out = median_latencies(calls, rounds=3, warmup=0,
    ...                        rotation=lambda name: name[0])
    >>> sorted(out) == sorted(calls), out[("keras", "a")]["rounds"]
    (True, 3)
    """
    groups = {}
    for name, call in calls.items():
        groups.setdefault(None if rotation is None else rotation(name),
                          {})[name] = call
    out = {}
    for group in groups.values():
        times = timing.round_robin(group, rounds=rounds, warmup=warmup)
        out.update({name: {"median_ms": 1000 * timing.median(t),
                           "p90_ms": 1000 * float(np.percentile(t, 90)),
                           "rounds": len(t)}
                    for name, t in times.items()})
    return {name: out[name] for name in calls}


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


def benchmark_formats(model, reference, data, seq_len, length, output_dir,
                      exports, tflite_entries, tok, calibration_samples,
                      isolate, tmp, num_threads, thresholds,
                      reference_cache, calibration_texts=None):
    """Sizes and latencies of every format next to the Keras model (float32
    and Keras ``quantize("int8")``), plus the Keras int8 model's parity;
    the benchmark of ``trimzoo.export.export_model(..., benchmark=True)``.

    Returns:
        ``(benchmark, keras_int8_entry)``: the report's ``benchmark``
        section (rows, table, machine) and the Keras int8 entry.
    """
    if data.num_examples < max(BATCH_SIZES):
        raise ValueError("The benchmark needs at least "
                         f"{max(BATCH_SIZES)} parity inputs.")
    inputs = {b: {name: data.inputs[name][:b, :length]
                  for name in INPUT_NAMES} for b in BATCH_SIZES}
    # TFLite runs at one thread and at every core (TensorFlow's setting);
    # each format reports its faster setting, both are in the report.
    threads = ([int(num_threads)] if num_threads
               else sorted({1, os.cpu_count() or 1}))
    log.info("Benchmark: Keras int8 (model.quantize('int8'))")
    quantized = keras_int8(model)
    q_runner = KerasRunner(quantized)
    q_record = gate("keras_int8",
                    compare(reference, q_runner, data,
                            reference_cache=reference_cache), thresholds)
    log.info("  parity keras_int8: %s", "ok" if q_record["passed"]
             else "exceeds the int8 limits (not an export; not gated)")
    sizes = {"keras_float32": keras_weights_size(model),
             "keras_int8": keras_weights_size(quantized)}
    calls = {b: {("keras_float32", None): keras_callable(
                     reference.fn, inputs[b]),
                 ("keras_int8", None): keras_callable(
                     q_runner.fn, inputs[b])}
             for b in BATCH_SIZES}
    for entry in exports:
        if entry["format"] == "saved_model":
            runner = SavedModelRunner(os.path.join(output_dir,
                                                   entry["path"]))
            sizes["saved_model"] = entry["size_bytes"]
            for b in BATCH_SIZES:
                calls[b][("saved_model", None)] = keras_callable(
                    runner.fn, inputs[b])
    for entry in tflite_entries:
        fmt = entry["format"]
        sizes[fmt] = entry["size_bytes"]
        for b in BATCH_SIZES:
            model_file = os.path.join(output_dir, entry["path"])
            if seq_len is not None and b > 1:
                # Static shapes: time a batch-b copy of this format.
                log.info("Benchmark: converting %s with input [%d, %d]",
                         fmt, b, seq_len)
                source = conversion_saved_model(model, seq_len, b, tmp)
                calibration = None
                if entry["quantize"] == "int8":
                    calibration = calibration_data(
                        model, tok, length, b,
                        max(calibration_samples // b, 8),
                        texts=calibration_texts)
                model_file = convert_file(source, entry["quantize"],
                                          calibration, isolate=isolate)
            for t in threads:
                runner = TFLiteRunner(model_file, num_threads=t)
                calls[b][(fmt, t)] = tflite_callable(runner, inputs[b])
    timings = {}
    for b in BATCH_SIZES:
        log.info("Benchmark: timing %d formats at batch %d, length %d",
                 len(calls[b]), b, length)
        timings[b] = median_latencies(calls[b])
    table = []
    for name in sizes:
        row = {"format": name, "size_bytes": sizes[name], "latency_ms": {},
               "p90_ms": {}, "threads": {}, "by_threads_ms": {}}
        for b in BATCH_SIZES:
            mine = {t: v for (f, t), v in timings[b].items() if f == name}
            best = min(mine, key=lambda t: mine[t]["median_ms"])
            row["latency_ms"][str(b)] = mine[best]["median_ms"]
            row["p90_ms"][str(b)] = mine[best]["p90_ms"]
            row["threads"][str(b)] = best
            if best is not None:
                row["by_threads_ms"][str(b)] = {
                    str(t): v["median_ms"] for t, v in mine.items()}
        table.append(row)
    text = format_table(table)
    print(text, flush=True)
    result = {
        "sequence_length": length,
        "batch_sizes": list(BATCH_SIZES),
        "tflite_threads_tried": threads,
        "tensorflow_intra_op_threads": (
            tf.config.threading.get_intra_op_parallelism_threads()
            or os.cpu_count()),
        "machine": {"cpu_count": os.cpu_count(),
                    "processor": platform.processor() or platform.machine(),
                    "tensorflow": tf.__version__},
        "rows": table,
        "table": text.splitlines(),
    }
    keras_int8_entry = {"format": "keras_int8",
                        "size_bytes": sizes["keras_int8"],
                        "parity": q_record}
    return result, keras_int8_entry
