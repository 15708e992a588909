"""Median wall-clock timing after warm-up."""

import statistics
import time


def median_seconds(fn, warmup=3, runs=20, min_seconds=0.0):
    """Median wall time of ``fn()`` over ``runs`` calls after ``warmup``.

    With ``min_seconds`` > 0, keeps calling until that much time has been
    spent measuring (at least ``runs`` calls), which steadies short timings
    on a shared machine.
    """
    for _ in range(warmup):
        fn()
    times = []
    spent = 0.0
    while len(times) < runs or spent < min_seconds:
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
        times.append(elapsed)
        spent += elapsed
    return statistics.median(times)


def keras_predictor(model, jit_compile=False):
    """A compiled inference function ``f(inputs) -> outputs`` for timing."""
    import tensorflow as tf

    return tf.function(lambda x: model(x, training=False),
                       jit_compile=jit_compile, reduce_retracing=True)
