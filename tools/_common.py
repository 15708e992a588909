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

import traceback  # noqa: E402

from absl import app, flags  # noqa: E402

flags.DEFINE_bool("verbose", False, "On an error, print its traceback too "
                  "(as does the environment variable TRIMZOO_DEBUG=1).")


def _raised_by_project(error):
    """The innermost frame of ``error`` is in trimzoo's or the configs'
    code: an error the project raises on purpose, not one of a library."""
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return False
    filename = os.path.realpath(tb.tb_frame.f_code.co_filename)
    return any(filename.startswith(os.path.realpath(
        os.path.join(_ROOT, name)) + os.sep) for name in ("trimzoo",
                                                          "configs"))


def is_user_error(error):
    """Errors that a user fixes from their message alone: a bad value
    (``ValueError``, trimzoo's ``DataError``, ``ConfigChangedError``), a
    file (``OSError``: missing, existing, unreadable), any error class of
    trimzoo (``NonFiniteLossError``, ``CheckpointError``, ``ParityError``,
    ...) and a ``TypeError`` that trimzoo raises (a misspelt argument).
    Anything else is a bug and keeps its traceback."""
    if isinstance(error, (ValueError, OSError)):
        return True
    if "No space left on device" in str(error):  # e.g. TensorFlow's own
        return True
    if type(error).__module__.split(".")[0] == "trimzoo":
        return True
    return isinstance(error, TypeError) and _raised_by_project(error)


def _debug():
    return flags.FLAGS.is_parsed() and flags.FLAGS.verbose or (
        os.environ.get("TRIMZOO_DEBUG", "") not in ("", "0"))


def report_errors(main):
    """``main`` for ``absl.app.run``: a user error (:func:`is_user_error`)
    ends the run with one line ``error: ...`` on stderr and exit status 1;
    ``--verbose`` or ``TRIMZOO_DEBUG=1`` show the traceback instead."""

    def wrapped(argv):
        try:
            return main(argv)
        except Exception as error:  # noqa: BLE001  (sorted just below)
            if not is_user_error(error) or _debug():
                raise
            message = " ".join(str(error).split("\n")) or type(error).__name__
            print(f"error: {message} (--verbose for the traceback)",
                  file=sys.stderr, flush=True)
            sys.exit(1)

    return wrapped


def parse_flags(argv):
    """absl's flag parsing, with a bad value (a zero, negative, NaN or
    non-numeric number, an unknown flag) refused in one line ``error:
    flag --x=...: why`` and exit status 1, before any work."""
    try:
        return flags.FLAGS(argv)
    except (flags.Error, OSError, AttributeError, KeyError, ValueError,
            TypeError) as error:
        # A config file that is missing or fails to load, and an override
        # of a field the config does not have (--config.train.epohcs), are
        # raised by ml_collections while the flags are parsed, before main.
        if _debug():
            raise
        message = " ".join(str(error).replace("\\n", " ").replace(
            "\\'", "'").split()).strip("'\"")
        if isinstance(error, (AttributeError, KeyError)):
            message = "the config has no field " + message.replace("'", "")
        print(f"error: {message} (--helpshort lists the flags)",
              file=sys.stderr, flush=True)
        sys.exit(1)


def run(main, **kwargs):
    """``absl.app.run(main)`` with :func:`report_errors` and
    :func:`parse_flags`; the entry point of every tool."""
    kwargs.setdefault("flags_parser", parse_flags)
    app.run(report_errors(main), **kwargs)
