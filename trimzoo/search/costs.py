"""Measured costs of a candidate: exact parameters, analytic FLOPs and the
latency of Keras float32 or bfloat16 or TFLite dynamic-int8 on this
machine.

Latency is the median of round-robin rounds
(``trimzoo.export.benchmark.median_latencies``: each round calls the model
once per batch size, alternating the order) on real text packed to full
sequences (``trimzoo.data.text_inputs``). TFLite files are
converted in a fresh process (``convert(..., isolate=True)``: the converter
leaks memory) with static shapes, one file per batch size, and run with as
many interpreter threads as there are cores.

Examples:

>>> import trimzoo
>>> model = trimzoo.models.bert_tiny(vocabulary_size=100, num_layers=1,
...                                  max_sequence_length=16)
>>> costs = measure_costs(model, cost="flops", seq_len=16)
>>> costs["params"] == model.count_params(), costs["inference_cost"] > 0
(True, True)
"""

import os

from trimzoo.models.costs import flops_per_token, parameter_counts
from trimzoo.data.text_inputs import text_inputs
from trimzoo.export import TFLiteRunner, convert
from trimzoo.export.benchmark import (
    keras_callable,
    median_latencies,
    tflite_callable,
)
from trimzoo.export.saved_model import serving_function
from trimzoo.models.precision import with_precision
from trimzoo.utils import timing

COSTS = ("flops", "keras", "keras_bfloat16", "tflite")


def check_cost(cost):
    """``cost`` if it is one of ``COSTS``, else a ``ValueError``."""
    if cost not in COSTS:
        raise ValueError(f"Unknown cost {cost!r}. Valid values: "
                         f"{list(COSTS)}.")
    return cost


def timed_calls(model, cost, batch_sizes, seq_len):
    """``{batch size: zero-argument callable}`` running ``model`` on real
    text under ``cost`` (a timed one), for ``median_latencies``."""
    calls = {}
    for b in batch_sizes:
        inputs = text_inputs(b, seq_len, model.vocabulary_size)
        if cost in ("keras", "keras_bfloat16"):
            timed = (model if cost == "keras"
                     else with_precision(model, "bfloat16"))
            calls[b] = keras_callable(serving_function(timed, seq_len, b),
                                      inputs)
        else:
            flatbuffer = convert(model, quantize="dynamic", seq_len=seq_len,
                                 batch_size=b, isolate=True)
            runner = TFLiteRunner(flatbuffer, num_threads=os.cpu_count())
            calls[b] = tflite_callable(runner, inputs)
    return calls


def measure_costs(model, cost="keras", batch_sizes=(1,), seq_len=128,
                  rounds=10):
    """Costs of one backbone.

    Args:
        model: ``TrimzooBackbone`` (weights do not matter).
        cost: str. ``"flops"`` (analytic, no timing), ``"keras"`` (float32
            latency), ``"keras_bfloat16"`` (bfloat16 arithmetic, float32
            weights) or ``"tflite"`` (dynamic-int8 latency). Defaults to
            ``"keras"``.
        batch_sizes: sequence of int. Timed batch sizes; the first is the
            inference cost of the W-coefficient. Defaults to ``(1,)``.
        seq_len: int. Tokens per sequence. Defaults to 128.
        rounds: int. Timed rounds. Defaults to 10.

    Returns:
        dict: ``params``, ``non_embedding_params``, ``flops`` (forward
        FLOPs of one sequence), ``latency_ms`` (``{batch: median ms}``, for
        timed costs), ``cost`` and ``inference_cost`` (the FLOPs, or the
        latency at the first batch size).
    """
    check_cost(cost)
    counts = parameter_counts(model)
    out = {"params": counts["params"],
           "non_embedding_params": counts["non_embedding_params"],
           "flops": float(flops_per_token(model, seq_len)["total"] * seq_len),
           "cost": cost, "seq_len": int(seq_len)}
    if cost == "flops":
        out["inference_cost"] = out["flops"]
        return out
    calls = timed_calls(model, cost, batch_sizes, seq_len)
    latencies = median_latencies(calls, rounds=rounds, warmup=2)
    out["latency_ms"] = {str(b): latencies[b]["median_ms"]
                         for b in batch_sizes}
    out["inference_cost"] = float(out["latency_ms"][str(batch_sizes[0])])
    return out


def speedup(model, reference, cost="keras", batch_size=1, seq_len=128,
            rounds=20):
    """How many times faster ``model`` runs than ``reference``: the median
    over round-robin rounds of the per-round time ratio
    (``trimzoo.utils.timing.median_ratio``), which holds on a loaded
    machine.

    Returns:
        dict with ``speedup`` and both medians in ms.
    """
    if cost == "flops":
        raise ValueError("speedup needs a timed cost ('keras' or 'tflite').")
    calls = {"model": timed_calls(model, cost, (batch_size,),
                                  seq_len)[batch_size],
             "reference": timed_calls(reference, cost, (batch_size,),
                                      seq_len)[batch_size]}
    times = timing.round_robin(calls, rounds=rounds, warmup=2)
    return {"speedup": timing.median_ratio(times["reference"],
                                           times["model"]),
            "model_ms": 1000 * timing.median(times["model"]),
            "reference_ms": 1000 * timing.median(times["reference"]),
            "batch_size": int(batch_size), "rounds": len(times["model"]),
            "cost": cost}

