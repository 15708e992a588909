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
    errors for a truncated or corrupt file (a plain ``OSError`` such as
    "truncated file: eof = ...", or a ``RuntimeError`` / ``KeyError`` such
    as "bad heap free list" from inside h5py, naming no file) become a
    ``ValueError`` naming the folder and the file. Other errors pass
    unchanged.

    Examples:
    >>> with reading_weights("/runs/best"):
    ...     raise OSError("Unable to synchronously open file (truncated file)")
    Traceback (most recent call last):
    ...
    ValueError: Cannot read the weights in '/runs/best' (/runs/best/model.weights.h5 is truncated or corrupt: Unable to ... file)). Write the folder again, or copy it again from where it was made.
    """
    try:
        yield
    except (OSError, RuntimeError, KeyError) as err:
        # FileNotFoundError etc. name a file; a RuntimeError or KeyError
        # is h5py's only when h5py raised it.
        if type(err) is not OSError and not _raised_in_h5py(err):
            raise
        folder = os.fspath(folder)
        detail = err.args[0] if err.args else err
        raise ValueError(
            f"Cannot read the weights in {folder!r} "
            f"({_unreadable(folder, filename)} is truncated or corrupt: "
            f"{detail}). Write the folder again, or copy it again from "
            "where it was made.") from err


def _unreadable(folder, filename):
    """The weights file of ``folder`` h5py cannot read (``filename`` unless
    another ``*.weights.h5`` is the unreadable one)."""
    default = os.path.join(folder, filename)
    names = sorted(n for n in (os.listdir(folder) if os.path.isdir(folder)
                               else ()) if n.endswith(".weights.h5"))
    for name in [filename] + [n for n in names if n != filename]:
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            try:
                _datasets(path)
            except Exception:
                return path
    return default


def _raised_in_h5py(err):
    """True when the innermost frames of ``err``'s traceback are h5py's."""
    tb, last = err.__traceback__, None
    while tb is not None:
        last, tb = tb, tb.tb_next
    if last is None:
        return False
    name = "/" + last.tb_frame.f_code.co_filename.replace(os.sep, "/")
    return "/h5py/" in name


def _datasets(path):
    """``{name: shape}`` of every array in a Keras weights file, but the
    optimizer's (a compiled task saves its step counter)."""
    import h5py

    shapes = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, item: shapes.__setitem__(
            name, tuple(item.shape)) if isinstance(item, h5py.Dataset)
            and not name.startswith("optimizer/") else None)
    return shapes


def _blocks(names):
    """Encoder blocks a Keras weights file holds (``layers/encoder_block``,
    ``layers/encoder_block_1``...)."""
    return len({n.split("/")[1] for n in names if n.count("/") > 1 and
                n.split("/")[1].split("_")[:2] == ["encoder", "block"]})


def weights_disagreement(folder, expected, config_file="config.json",
                         layers=None):
    """A one-line error (str) when the weights files in ``folder`` hold other
    tensors than the model its config builds, else None.

    Keras loads a ``.weights.h5`` file into whatever the config built: a
    config that says 3 layers for a file of 6 loads the first 3, and says
    nothing. The multiset of tensor shapes must be the same.

    Args:
        folder: str.
        expected: dict ``file name -> list of variables`` (the built
            model's, in the file's order or any).
        config_file: str. The file whose architecture was built, for the
            message.
        layers: int or None. The encoder layers the config builds.
    """
    for filename, variables in expected.items():
        path = os.path.join(os.fspath(folder), filename)
        if not os.path.isfile(path):
            continue
        try:
            found = _datasets(path)
        except Exception:  # Unreadable: reading_weights names it.
            return None
        want = sorted(tuple(v.shape) for v in variables)
        have = sorted(found.values())
        if want == have:
            continue
        size = lambda shapes: sum(int(np.prod(s)) for s in shapes)  # noqa
        blocks = _blocks(found)
        config_layers = (f"{layers} encoder layers, " if layers is not None
                         and blocks else "")
        file_layers = f"{blocks} encoder layers, " if config_layers else ""
        extra = sorted(set(want) - set(have))[:2]
        missing = sorted(set(have) - set(want))[:2]
        shapes = (f"; shapes {extra} only in the config, {missing} only in "
                  "the weights" if len(want) == len(have) else "")
        return (f"{os.path.join(os.fspath(folder), config_file)} builds "
                f"{config_layers}{len(want)} tensors ({size(want):,} values) "
                f"but {path} holds {file_layers}{len(have)} tensors "
                f"({size(have):,} values){shapes}: the config and the "
                "weights are of different models. Write the folder again "
                "from the model.")
    return None


def checked_load(folder, load, build, parts):
    """``load()`` (a model with the weights of ``folder``) under
    :func:`reading_weights`, its weights checked against the folder's files
    (:func:`weights_disagreement`): a config and weights of different
    models fail in one line naming both. Where Keras itself refuses to load
    (a config with more layers or other widths than the weights, in a
    many-line message), the model ``build()`` makes without weights is
    compared instead.

    Args:
        folder: str.
        load: ``fn() -> model``.
        build: ``fn() -> model``, the same model without loading weights.
        parts: ``fn(model) -> (expected, config_file, layers)``, the
            arguments of :func:`weights_disagreement` after ``folder``.
    """
    try:
        with reading_weights(folder):
            model = load()
    except ValueError as err:
        try:
            problem = weights_disagreement(folder, *parts(build()))
        except Exception:  # The config builds nothing: Keras' error.
            problem = None
        if problem:
            raise ValueError(problem) from err
        raise
    problem = weights_disagreement(folder, *parts(model))
    if problem:
        raise ValueError(problem)
    return model


def check_links_inside(folder):
    """Refuses a model folder holding a symbolic link (a ``vocab.txt``, a
    ``*.weights.h5``, ``config.json``, any file or folder, at any depth)
    that resolves outside the folder: a folder is read as itself, never
    as a file it points to elsewhere. The folder itself may be a link, and
    so may a file of a HuggingFace hub cache snapshot
    (``REPO/snapshots/REV/config.json -> ../../blobs/HASH``) that stays in
    its repository's ``blobs/``.

    Raises:
        ValueError: naming the link and where it points.
    """
    folder = os.fspath(folder)
    root = os.path.realpath(folder)
    inside = [root]
    parent = os.path.dirname(os.path.dirname(root))
    if os.path.basename(os.path.dirname(root)) == "snapshots":
        inside.append(os.path.join(parent, "blobs"))
    for here, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = os.path.join(here, name)
            if not os.path.islink(path):
                continue
            target = os.path.realpath(path)
            if not any(target == base or target.startswith(base + os.sep)
                       for base in inside):
                raise ValueError(
                    f"{path} is a symbolic link to {target}, outside the "
                    f"model folder {folder}: refused. Copy the file into "
                    "the folder.")


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
