"""Atomic writes of files and folders, and JSON that stays valid.

Every file trimzoo writes for a user goes through :func:`atomic_path`, so an
interrupted run never leaves a half-written file or folder behind.

Examples:

>>> import os, tempfile
>>> folder = tempfile.mkdtemp()
>>> path = os.path.join(folder, "metrics.json")
>>> write_json(path, {"loss": float("nan"), "accuracy": 0.5})
>>> read_json(path)
{'accuracy': 0.5, 'loss': None}
>>> with atomic_path(path) as tmp:
...     with open(tmp, "w") as f:
...         _ = f.write("replaced")
>>> open(path).read()
'replaced'
>>> _ = write_text(path, "text")
>>> open(path).read(), sorted(os.listdir(folder))
('text', ['metrics.json'])
"""

import contextlib
import json
import math
import os
import shutil
import tempfile

import numpy as np


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path next to ``path``; on success it replaces
    ``path`` in one rename, so readers never see a half-written file or
    folder. On error the temporary is removed and ``path`` is untouched.

    Works for files and folders: write a file or create a folder at the
    yielded path."""
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tmp-", dir=parent)
    target = os.path.join(tmp, os.path.basename(path))
    try:
        yield target
        if os.path.isdir(target):
            old = None
            if os.path.exists(path):
                # The old folder is moved into the temporary folder, so a
                # kill between the two renames leaves nothing beside `path`
                # that outlives the cleanup below.
                old = os.path.join(tmp, ".old")
                os.replace(path, old)
            os.replace(target, path)
        else:
            os.replace(target, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def reading_weights(folder, filename="model.weights.h5"):
    """Reads weights from ``folder`` inside the ``with`` block: h5py's
    error for a truncated or corrupt file (a plain ``OSError`` such as
    "truncated file: eof = ..." naming no file) becomes a ``ValueError``
    naming the folder and the file. Other errors pass unchanged.

    Examples:
    >>> with reading_weights("/runs/best"):
    ...     raise OSError("Unable to synchronously open file (truncated file)")
    Traceback (most recent call last):
    ...
    ValueError: Cannot read the weights in '/runs/best' (/runs/best/model.weights.h5 is truncated or corrupt: Unable to ... file)). Write the folder again, or copy it again from where it was made.
    """
    try:
        yield
    except OSError as err:
        if type(err) is not OSError:  # FileNotFoundError etc. name a file.
            raise
        folder = os.fspath(folder)
        raise ValueError(
            f"Cannot read the weights in {folder!r} "
            f"({os.path.join(folder, filename)} is truncated or corrupt: "
            f"{err}). Write the folder again, or copy it again from where "
            "it was made.") from err


def jsonable(value):
    """``value`` with numpy scalars/arrays as Python values, tuples as lists
    and non-finite floats as ``None``, so that ``json.dump`` writes valid
    JSON (``NaN`` is not JSON)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


def write_text(path, text, encoding="utf-8"):
    """Writes ``text`` to ``path``, atomically (see :func:`atomic_path`);
    returns ``path``."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding=encoding) as f:
            f.write(text)
    return path


def write_bytes(path, data):
    """Writes ``data`` to ``path``, atomically; returns ``path``."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
    return path


def save_figure(fig, path, **kwargs):
    """``fig.savefig(path, **kwargs)``, atomically: the temporary keeps the
    file's name, so the format still follows its extension. Returns
    ``path``."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, **kwargs)
    return path


def write_json(path, value):
    """Writes ``value`` as indented JSON, atomically; non-finite numbers
    become ``null``."""
    write_text(path, json.dumps(jsonable(value), indent=2, sort_keys=True,
                                allow_nan=False) + "\n")


def read_json(path, default=None):
    """The JSON value in ``path``, or ``default`` when the file does not
    exist. A file that is not valid JSON raises ``ValueError`` naming it."""
    path = os.fspath(path)
    if not os.path.exists(path):
        return default
    with open(path, encoding="utf-8") as f:
        try:
            return json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"{path} is not valid JSON: {e}") from None


def read_json_object(path):
    """The JSON object (a dict) in ``path``, which must exist: errors name
    the file (``FileNotFoundError``, ``ValueError``)."""
    value = read_json(path)
    if value is None and not os.path.exists(path):
        raise FileNotFoundError(f"Missing file: {path}")
    if not isinstance(value, dict):
        raise ValueError(f"{path} must hold a JSON object.")
    return value
