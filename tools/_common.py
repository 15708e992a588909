"""Set-up shared by the absl entry points in tools/."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
if _ROOT not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, _ROOT)

import logging  # noqa: E402

# TensorFlow's own INFO lines (savers, signatures) drown the tools' progress.
logging.getLogger("tensorflow").setLevel(logging.WARNING)
