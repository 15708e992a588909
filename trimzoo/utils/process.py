"""Run a function in a fresh Python process and get its value back.

Used where a process must start clean: TFLite conversion (TensorFlow's
converter leaks memory on every call), peak-memory measurement and the
benchmark's phases (each builds only the models it needs). A spawn-context
process pool with one worker returns the function's value, or re-raises its
exception, in the caller.

Examples:

>>> import operator
>>> run_in_fresh_process(operator.add, 2, 3)
5
"""

import concurrent.futures
import multiprocessing
import os


def run_in_fresh_process(fn, *args, timeout=None, env=None, **kwargs):
    """Calls ``fn(*args, **kwargs)`` in a new (spawned) Python process.

    Args:
        fn: a function importable by name (module-level), whose arguments
            and return value pickle (plain values: dicts, lists, numbers,
            strings, numpy arrays).
        timeout: float or None. Seconds to wait; on expiry the process is
            killed and ``TimeoutError`` raised.
        env: dict or None. Environment variables to set in the child (they
            are set in this process around the start of the child and
            restored afterwards).

    Returns:
        what ``fn`` returned. An exception raised by ``fn`` is raised here;
        a child that dies (e.g. killed for memory) raises
        ``RuntimeError``.
    """
    context = multiprocessing.get_context("spawn")
    saved = {}
    for key, value in (env or {}).items():
        saved[key] = os.environ.get(key)
        os.environ[key] = str(value)
    executor = concurrent.futures.ProcessPoolExecutor(
        max_workers=1, mp_context=context)
    try:
        future = executor.submit(fn, *args, **kwargs)
        try:
            return future.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            for process in list(getattr(executor, "_processes", {}).values()):
                process.kill()
            raise TimeoutError(
                f"{getattr(fn, '__name__', fn)} did not finish within "
                f"{timeout} s in its fresh process.") from None
        except concurrent.futures.process.BrokenProcessPool:
            raise RuntimeError(
                f"The fresh process running {getattr(fn, '__name__', fn)} "
                "died (killed for memory, or a crash in native code)."
            ) from None
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def quiet_tensorflow_env():
    """An ``env`` for :func:`run_in_fresh_process` that keeps TensorFlow's
    C++ log lines out of the child's output (unless this process set
    ``TF_CPP_MIN_LOG_LEVEL`` itself)."""
    return {"TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL",
                                                   "2")}
