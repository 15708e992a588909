"""Interleaved (round-robin) timing, for ratios that hold on a loaded
machine, and the statistics over its rounds.

Examples:

>>> import time
>>> times = round_robin({"a": lambda: time.sleep(0.002),
...                      "b": lambda: time.sleep(0.001)}, rounds=3)
>>> sorted(times), len(times["a"])
(['a', 'b'], 3)
>>> median_ratio([2.0, 4.0, 6.0], [1.0, 2.0, 2.0])
2.0
"""

import statistics
import time


def round_robin(calls, rounds=10, warmup=1, min_seconds=0.0, progress=None):
    """Times several no-argument callables interleaved.

    Every round calls each callable once, alternating the order between
    rounds (forward, then backward), so a change in machine load hits all
    of them alike: the per-round ratios of two callables are steadier than
    the ratio of separately measured medians.

    Args:
        calls: dict ``name -> callable``; each call must block until its
            result is computed.
        rounds: int. Timed rounds (at least). Defaults to 10.
        warmup: int. Untimed calls of each callable first. Defaults to 1.
        min_seconds: float. Keep adding rounds until this much time has
            been spent timing. Defaults to 0.
        progress: optional callable ``progress(done_rounds)`` (e.g. a tqdm
            update).

    Returns:
        dict ``name -> list of seconds``, one entry per round.
    """
    if not calls:
        return {}
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}.")
    names = list(calls)
    for name in names:
        for _ in range(warmup):
            calls[name]()
    times = {name: [] for name in names}
    spent = 0.0
    done = 0
    while done < rounds or spent < min_seconds:
        order = names if done % 2 == 0 else names[::-1]
        for name in order:
            start = time.perf_counter()
            calls[name]()
            elapsed = time.perf_counter() - start
            times[name].append(elapsed)
            spent += elapsed
        done += 1
        if progress is not None:
            progress(done)
    return times


def median(values):
    """Median of a non-empty sequence."""
    return float(statistics.median(values))


def median_ratio(numerator, denominator):
    """Median over rounds of ``numerator[i] / denominator[i]``: e.g. the
    speed-up of B over A is ``median_ratio(times_a, times_b)``."""
    if len(numerator) != len(denominator) or not numerator:
        raise ValueError("median_ratio needs two equally long, non-empty "
                         "lists of round times.")
    return float(statistics.median(
        a / b for a, b in zip(numerator, denominator)))


def spread(values):
    """Relative interquartile range of round times (a noise indicator)."""
    if len(values) < 4:
        return float("nan")
    q = statistics.quantiles(values, n=4)
    return float((q[2] - q[0]) / statistics.median(values))
