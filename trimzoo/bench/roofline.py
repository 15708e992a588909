"""How close the models run to the machine's limits: the measured matrix
product rate (the best of several large float32 products) and the CPU's
theoretical float32 FMA peak.

The peak is derived from ``/proc/cpuinfo``: cores x clock x FMA units x
float32 lanes per unit x 2 (a fused multiply-add is two FLOPs). Lanes come
from the vector flags (``avx512f``: 16, ``avx2`` with ``fma``: 8, else 4
with no FMA); AMD family 25 with ``avx512f`` (Zen 4) executes a 512-bit
operation as two 256-bit halves, so it counts 8 lanes. Two FMA
units per core are assumed (every x86 server core of the last decade
has two; some Intel parts have one 512-bit unit, for which the peak is
twice too high). The clock is ``cpuinfo_max_freq`` where cpufreq exists,
else the highest ``cpu MHz`` (in a VM: the nominal clock; turbo can exceed
it, so a share a little above 1 is possible). Cores are the CPUs this
process may run on divided by the hardware threads per core (``siblings``
/ ``cpu cores``): hyper-threads share their core's FMA units.

Examples:

>>> info = '''processor : 0
... vendor_id : AuthenticAMD
... cpu family : 25
... cpu MHz : 2450.000
... siblings : 2
... cpu cores : 1
... flags : fpu sse avx avx2 fma
... '''
>>> peak = cpu_peak(info, cpus=4)
>>> peak["cores"], peak["fp32_lanes"], peak["flops_per_cycle_per_core"]
(2, 8, 32)
>>> round(peak["gflops"], 1)
156.8
>>> sorted(probe_shapes(256, [(768, 3072)]))
[(256, 768, 3072), (256, 1024, 4096), (2048, 2048, 2048)]
"""

import os

from trimzoo.bench import workloads
from trimzoo.utils import timing
from trimzoo.utils.hardware import cpu_fields as _fields
from trimzoo.utils.hardware import read_text as _read

#: FMA units per core assumed for every x86 core (see the module notes).
FMA_UNITS = 2
#: The square product timed next to every model (large enough to reach
#: the machine's matrix-product rate at any batch).
SQUARE = (2048, 2048, 2048)
_MAX_FREQ = "/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq"


def _vector_width(fields):
    """(ISA name, float32 lanes per FMA unit, FMA?) from the cpu flags."""
    flags = set(fields.get("flags", "").split())
    amd_half_width = (fields.get("vendor_id") == "AuthenticAMD"
                      and fields.get("cpu family") == "25")
    if "avx512f" in flags:
        return ("avx512f (256-bit datapath)" if amd_half_width
                else "avx512f"), (8 if amd_half_width else 16), True
    if "avx2" in flags and "fma" in flags:
        return "avx2+fma", 8, True
    if "avx" in flags:
        return "avx (no fma)", 8, False
    return "sse (no fma)", 4, False


def cpu_peak(cpuinfo=None, max_freq_khz=None, cpus=None):
    """The CPU's theoretical float32 peak and how it was derived.

    Args:
        cpuinfo: str or None. ``/proc/cpuinfo`` text; None reads it.
        max_freq_khz: number or None. The maximum clock in kHz; None reads
            ``cpuinfo_max_freq`` (falling back to ``cpu MHz``).
        cpus: int or None. Logical CPUs available; None: this process's
            CPU affinity.

    Returns:
        dict with ``gflops`` (None when the clock is unknown), ``cores``,
        ``logical_cpus``, ``threads_per_core``, ``clock_ghz``,
        ``clock_source``, ``isa``, ``fp32_lanes``, ``fma_units``,
        ``flops_per_cycle_per_core`` and ``formula`` (text).
    """
    fields = _fields(cpuinfo if cpuinfo is not None
                     else _read("/proc/cpuinfo") or "")
    if cpus is None:
        cpus = (len(os.sched_getaffinity(0))
                if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    try:
        threads = max(1, int(fields["siblings"]) // int(fields["cpu cores"]))
    except (KeyError, ValueError, ZeroDivisionError):
        threads = 1
    cores = max(1, cpus // threads)
    if max_freq_khz is None and cpuinfo is None:
        text = _read(_MAX_FREQ)
        max_freq_khz = float(text) if text and text.strip() else None
    if max_freq_khz:
        clock, source = float(max_freq_khz) / 1e6, "cpuinfo_max_freq"
    elif "cpu MHz" in fields:
        clock, source = fields["cpu MHz"] / 1e3, "cpu MHz"
    else:
        clock, source = None, "unknown"
    isa, lanes, fma = _vector_width(fields)
    # Without FMA: one add and one multiply pipe, the rate of one FMA unit.
    units = FMA_UNITS if fma else 1
    per_cycle = units * lanes * 2
    gflops = None if clock is None else cores * clock * per_cycle
    return {
        "gflops": gflops, "cores": cores, "logical_cpus": cpus,
        "threads_per_core": threads,
        "clock_ghz": None if clock is None else round(clock, 3),
        "clock_source": source, "isa": isa, "fp32_lanes": lanes,
        "fma_units": units, "flops_per_cycle_per_core": per_cycle,
        "formula": (f"{cores} cores x {clock or float('nan'):.2f} GHz "
                    f"({source}) x {units} FMA units x {lanes} fp32 lanes "
                    f"({isa}) x 2 FLOPs"),
    }


def probe_shapes(rows, ffn_shapes=()):
    """The ``(m, k, n)`` float32 products timed as the matmul reference at
    ``rows`` token rows: the square :data:`SQUARE`, ``rows x 1024 x 4096``
    and each model's feed-forward product ``rows x hidden x
    intermediate``."""
    shapes = {SQUARE, (rows, 1024, 4096)}
    shapes.update((rows, int(h), int(i)) for h, i in ffn_shapes)
    return sorted(shapes)


def shape_name(shape):
    return "x".join(str(d) for d in shape)


def probes(rows, ffn_shapes=()):
    """``{("matmul", "MxKxN"): (call, flops)}`` for :func:`probe_shapes`,
    ready to be timed next to the models."""
    out = {}
    for m, k, n in probe_shapes(rows, ffn_shapes):
        out[("matmul", shape_name((m, k, n)))] = workloads.matmul_probe(
            m, k, n)
    return out


def best_rates(times, probe_calls):
    """Per round, the fastest probe's FLOPs per second, and the median
    rate of each shape: ``(rates, {shape name: GFLOP/s})``."""
    per_shape = {key: [flops / t for t in times[key]]
                 for key, (_, flops) in probe_calls.items()}
    rounds = len(next(iter(per_shape.values())))
    best = [max(rates[i] for rates in per_shape.values())
            for i in range(rounds)]
    medians = {key[1]: timing.median(r) / 1e9
               for key, r in per_shape.items()}
    return best, medians
