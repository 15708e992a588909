"""Peak memory of a model, measured in a fresh process.

:func:`measure` builds one model, runs inference, then one masked-LM
training step, and returns the process's peak resident set size after the
imports, after inference and after training. The benchmark runs it with
``trimzoo.utils.process.run_in_fresh_process``, one process per model, so
the numbers of different models stay apart; this module imports only what
the measurement needs.

Examples:

>>> _peak_mb() > 0
True
"""

import resource
import sys

from trimzoo.bench import workloads
from trimzoo.bench.config import build_backbone
from trimzoo.data.text_inputs import text_inputs


def _peak_mb():
    """Peak resident memory of this process in MB.

    Reads ``VmHWM`` (the high-water mark of this process image): unlike
    ``ru_maxrss``, which Linux carries over ``execve`` from the parent
    that started the process (a spawned child of a 1.2 GB parent reports
    ru_maxrss >= 1.2 GB), it counts only this process.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    # Elsewhere ru_maxrss (KiB on Linux, bytes on macOS).
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 ** 2 if sys.platform == "darwin" else 1024.0)


def measure(spec, batch_size, seq_len, train_batch_size):
    """Peak RSS in MB: ``baseline`` (imports done), ``infer`` (after
    inference at ``[batch_size, seq_len]``), ``train`` (after a training
    step at ``[train_batch_size, seq_len]``; None if 0)."""
    text_inputs(1, 8, 100)  # Tokenizer and corpus in the baseline.
    baseline = _peak_mb()
    backbone = build_backbone(spec)
    inputs = text_inputs(batch_size, seq_len,
                                   backbone.vocabulary_size)
    workloads.inference_call(backbone, inputs)()
    infer = _peak_mb()
    train = None
    if train_batch_size:
        batch = workloads.mlm_batch(train_batch_size, seq_len,
                                    backbone.vocabulary_size)
        workloads.TrainStep(workloads.masked_lm(backbone), batch)()
        train = _peak_mb()
    return {"baseline_mb": round(baseline, 1), "infer_mb": round(infer, 1),
            "train_mb": None if train is None else round(train, 1)}
