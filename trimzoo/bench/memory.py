"""Peak memory of a model, measured in a fresh process.

``python -m trimzoo.bench.memory --spec=JSON`` builds one model, runs
inference, then one masked-LM training step, and prints one JSON line with
the process's peak resident set size (``VmHWM``) after the imports,
after inference and after training. A fresh process per model keeps the
numbers of different models apart.
"""

import argparse
import json
import os
import resource
import subprocess
import sys


def _peak_mb():
    """Peak resident memory of this process in MB.

    Reads ``VmHWM`` (the high-water mark of this process image): unlike
    ``ru_maxrss``, which Linux carries over ``execve`` from the forking
    parent, it counts only this process.
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


def build_model(spec):
    """A backbone from a JSON-able spec ``{"preset", "overrides",
    "drop_top"}`` (see ``trimzoo.bench.runner.ModelSpec``)."""
    import trimzoo

    backbone = trimzoo.models.create(spec["preset"],
                                     **spec.get("overrides", {}))
    if spec.get("drop_top"):
        backbone = trimzoo.models.drop_layers(backbone, strategy="top",
                                              k=int(spec["drop_top"]))
    return backbone


def measure(spec, batch_size, seq_len, train_batch_size):
    """Peak RSS in MB: ``baseline`` (imports done), ``infer`` (after
    inference at ``[batch_size, seq_len]``), ``train`` (after a training
    step at ``[train_batch_size, seq_len]``; None if 0)."""
    import tensorflow as tf  # noqa: F401  (counted in the baseline)

    from trimzoo.bench import workloads

    workloads.text_inputs(1, 8, 100)  # Tokenizer and corpus in the baseline.
    baseline = _peak_mb()
    backbone = build_model(spec)
    inputs = workloads.text_inputs(batch_size, seq_len,
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


def measure_in_subprocess(spec, batch_size, seq_len, train_batch_size,
                          timeout=1800):
    """Runs :func:`measure` in a fresh Python process; returns its dict,
    or ``{"error": ...}`` if the process failed."""
    command = [sys.executable, "-m", "trimzoo.bench.memory",
               f"--spec={json.dumps(spec)}", f"--batch_size={batch_size}",
               f"--seq_len={seq_len}",
               f"--train_batch_size={train_batch_size}"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    try:
        result = subprocess.run(command, capture_output=True, text=True,
                                timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    lines = [line for line in result.stdout.splitlines()
             if line.startswith("{")]
    if result.returncode or not lines:
        return {"error": f"exit code {result.returncode}: "
                         f"{result.stderr.strip()[-500:]}"}
    return json.loads(lines[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", required=True)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--seq_len", type=int, default=128)
    parser.add_argument("--train_batch_size", type=int, default=4)
    args = parser.parse_args(argv)
    print(json.dumps(measure(json.loads(args.spec), args.batch_size,
                             args.seq_len, args.train_batch_size)))


if __name__ == "__main__":
    main()
