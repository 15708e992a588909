"""The machine a benchmark ran on: CPU, memory, load, library versions and
the CPU's theoretical peak (see :mod:`trimzoo.bench.roofline`).

Examples:

>>> env = environment()
>>> env["cores"] >= 1 and env["cpu_peak"]["fp32_lanes"] in (4, 8, 16)
True
"""

import importlib.metadata as md
import os
import platform

import tensorflow as tf

from trimzoo.bench.roofline import cpu_peak


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


def load_average():
    """The 1, 5 and 15 minute load averages, or None."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def environment():
    """Machine and library versions, for the report header."""
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
        "cpu_peak": cpu_peak(),
    }
