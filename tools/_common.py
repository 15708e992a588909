"""Set-up shared by the absl entry points in tools/."""

import os
import re
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
if _ROOT not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, _ROOT)

import logging  # noqa: E402

# Lines TensorFlow writes to stderr on every start of a machine without a
# GPU, before its log settings apply: a missing CUDA driver is expected
# there. Every other line (real errors included) is passed through.
_CPU_ONLY_NOISE = re.compile(
    r"failed call to cuInit|Could not find cuda drivers|cudart_stub|"
    r"All log messages before absl::InitializeLog|oneDNN custom operations|"
    r"Unable to register cu(DNN|FFT|BLAS) factory|TF-TRT Warning|"
    r"computation placer already registered|This TensorFlow binary is "
    r"optimized to use available CPU instructions|rebuild TensorFlow with")


def _no_gpu_driver():
    return not (os.path.exists("/proc/driver/nvidia")
                or any(os.path.exists(p) for p in ("/dev/nvidia0",
                                                   "/dev/accel0")))


def _import_tensorflow_quietly():
    """Imports TensorFlow and initialises its devices with stderr (the file
    descriptor, where the C++ runtime writes) captured, then writes back
    every captured line but the CPU-only noise above."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode("utf-8", "replace").splitlines():
                if not _CPU_ONLY_NOISE.search(line):
                    print(line, file=sys.stderr)


if os.environ.get("TRIMZOO_TF_LOGS") != "all" and _no_gpu_driver():
    _import_tensorflow_quietly()

# TensorFlow's own INFO lines (savers, signatures) drown the tools' progress.
logging.getLogger("tensorflow").setLevel(logging.WARNING)
