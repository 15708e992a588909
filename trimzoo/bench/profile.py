"""Where the time goes: TensorFlow profiler traces summed by op category.

Used to explain a missed goal: a ratio that falls short of its FLOPs ratio
is explained by the share of time spent outside matrix products (which the
FLOPs do not count) and, for training, in the optimizer update.
"""

import collections
import glob
import os
import shutil
import tempfile

MATMUL_KERNELS = ("MatMul", "BatchMatMul", "Einsum", "FusedMatMul")
OPTIMIZER_SCOPES = ("adam", "lamb", "sgd", "rmsprop", "adafactor", "lion")
CATEGORIES = ("matmul", "matmul_backward", "optimizer", "elementwise",
              "elementwise_backward")


def _category(name, kind):
    backward = "gradient_tape" in name or "gradients" in name
    # Keras names the update ops after the optimizer ("adam_w/..."); grappler
    # renames some model nodes ".../ArithmeticOptimizer/...", which are not.
    if name.split("/")[0].lower().startswith(OPTIMIZER_SCOPES):
        return "optimizer"
    is_matmul = any(k in kind for k in MATMUL_KERNELS)
    if is_matmul:
        return "matmul_backward" if backward else "matmul"
    return "elementwise_backward" if backward else "elementwise"


def _read_xspace(folder):
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    files = sorted(glob.glob(os.path.join(folder, "**", "*.xplane.pb"),
                             recursive=True))
    if not files:
        raise RuntimeError(f"The profiler wrote no trace under {folder!r}.")
    space = xplane_pb2.XSpace()
    with open(files[-1], "rb") as f:
        space.ParseFromString(f.read())
    return space


def op_time_breakdown(call, steps=3):
    """Profiles ``steps`` calls of ``call`` and sums kernel time by category.

    Kernel events of the TF executor are named ``"<node name>:<op type>"``;
    they are grouped into matrix products and everything else
    ("elementwise": layernorms, activations, softmax, dropout, transposes,
    gathers), each split into forward and backward (nodes under
    ``gradient_tape``), plus the optimizer update.

    Returns:
        dict with ``ms`` (category -> milliseconds per call, summed over
        threads), ``share`` (category -> fraction of the kernel time),
        ``top_ops`` (the ten op types with most time) and ``steps``; or
        ``{"error": message}`` when no trace could be read.
    """
    import tensorflow as tf

    folder = tempfile.mkdtemp(prefix="trimzoo_profile_")
    try:
        call()  # Any tracing happens outside the profile.
        tf.profiler.experimental.start(folder)
        try:
            for _ in range(steps):
                call()
        finally:
            tf.profiler.experimental.stop()
        space = _read_xspace(folder)
    except (RuntimeError, ImportError, OSError) as e:
        return {"error": f"{type(e).__name__}: {e}"}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    totals = collections.Counter()
    by_type = collections.Counter()
    for plane in space.planes:
        metadata = plane.event_metadata
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                full = metadata[event.metadata_id].name
                # Kernels are "node:OpType"; executor bookkeeping such as
                # "ExecutorState::Process" is not a kernel.
                if ":" not in full or "::" in full:
                    continue
                name, kind = full.rsplit(":", 1)
                ms = event.duration_ps / 1e9 / steps
                totals[_category(name, kind)] += ms
                by_type[kind] += ms
    total = sum(totals.values())
    if not total:
        return {"error": "the trace holds no TensorFlow kernel events"}
    return {
        "steps": steps,
        "ms": {c: round(totals[c], 3) for c in CATEGORIES},
        "share": {c: round(totals[c] / total, 4) for c in CATEGORIES},
        "top_ops": [(k, round(v, 3)) for k, v in by_type.most_common(10)],
    }


def matmul_share(breakdown):
    """Fraction of kernel time in matrix products (forward and backward)."""
    if not breakdown or "share" not in breakdown:
        return None
    share = breakdown["share"]
    return share["matmul"] + share["matmul_backward"]
