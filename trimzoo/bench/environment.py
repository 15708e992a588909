"""The machine a benchmark ran on: CPU, its low-precision units, what
oneDNN dispatches to, memory, library versions and the CPU's
theoretical peak (see :mod:`trimzoo.bench.roofline`).

Examples:

>>> env = environment(onednn=False)
>>> env["cores"] >= 1 and env["cpu_peak"]["fp32_lanes"] in (4, 8, 16)
True
>>> sorted(env["cpu_units"])
['amx_bf16', 'amx_int8', 'avx512_bf16', 'avx512_vnni', 'avx_vnni']
"""

import importlib.metadata as md
import os
import platform

import tensorflow as tf

from trimzoo.bench.roofline import cpu_peak
from trimzoo.utils import hardware


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gb():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    return round(int(line.split()[1]) / 1024 ** 2, 1)
    except OSError:
        pass
    return None


def environment(onednn=True):
    """Machine and library versions, for the report header.

    Args:
        onednn: bool. Probe what oneDNN dispatches to
            (``trimzoo.utils.hardware.onednn_info``: a fresh process,
            5-10 s). Defaults to True.
    """
    features = hardware.cpu_features()
    present = set(features["bf16_units"] + features["int8_units"])
    versions = {"python": platform.python_version()}
    for package in ("tensorflow", "keras", "keras-hub", "numpy",
                    "ai-edge-litert"):
        try:
            versions[package] = md.version(package)
        except md.PackageNotFoundError:
            versions[package] = None
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": _memory_gb(),
        "platform": platform.platform(),
        "versions": versions,
        "tf_threads": {
            "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
        },
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on)"),
        # Every low-precision unit trimzoo knows, present or not.
        "cpu_units": {flag: flag in present for flag in
                      hardware.BF16_FLAGS + hardware.INT8_FLAGS},
        "cpu_features": hardware.describe(features),
        "onednn_dispatch": hardware.onednn_info() if onednn else None,
        "cpu_peak": cpu_peak(),
    }
