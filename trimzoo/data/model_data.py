"""The texts a tool runs a model on: the model's own task, or the user's file.

Export's parity gate and int8 calibration and pruning's importance scores
run the model on real text. The right text is the model's own:

1. ``--data=FILE`` (:func:`read_text_file`): a ``.txt`` file (one text per
   line), or a ``.csv`` / ``.tsv`` / ``.jsonl`` file with a text column (and,
   optionally, a label column).
2. The task the model was fine-tuned on (:func:`recorded_task`): a
   fine-tuned folder ``RUN/best`` or ``RUN/final`` has the run's
   ``RUN/config.json`` beside it (``task`` and ``data``: the task name and
   its files); a folder cut from one (``tools/drop_layers.py``,
   ``tools/prune.py``) carries that record as ``task_data.json``.
3. Only for the embedded checkpoint (the demo model), or when asked: the
   embedded Rotten Tomatoes reviews.

:func:`texts_for_model` picks in that order and says which
(:attr:`ModelTexts.source`); a model with neither gets an error that names
``--data``.
"""

import dataclasses
import json
import os

from trimzoo.data.files import DataError, _format_of, _rows, labelled_rows
from trimzoo.data.files import canonical_label_names
from trimzoo.data.load import load_task_data
from trimzoo.data.rotten_tomatoes import load_split
from trimzoo.data.tasks import get_task

#: File a cut model folder carries: the task its source was trained on.
RECORD_FILE = "task_data.json"
#: Fields of a fine-tuning config's ``data`` section that hold paths.
PATH_FIELDS = ("train_files", "validation_files", "test_files", "data_dir")
#: The embedded task used for the embedded checkpoint.
DEFAULT_TASK = "rotten_tomatoes"


@dataclasses.dataclass
class ModelTexts:
    """Texts (and labels, when known) to run a model on.

    Attributes:
        texts: list of str.
        labels: list of int (class ids of the model's task) or None.
        source: str. Where they come from, e.g. ``"task files, split
            validation (from RUN/config.json)"`` or ``"--data=x.csv
            (column text)"``.
        label_names: tuple of str or None.
    """

    texts: list
    labels: object = None
    source: str = ""
    label_names: object = None


def read_text_file(path, text_column="text", label_column=None,
                   label_names=None):
    """Texts (and labels) of a user file.

    Args:
        path: str. ``.txt`` (one text per line, blank lines skipped), or
            ``.csv`` / ``.tsv`` / ``.jsonl`` with a header / keys.
        text_column: str. The column (key) holding the text. Defaults to
            ``"text"``.
        label_column: str or None. A label column; its values are mapped to
            class ids with ``label_names`` (names or integer ids).
        label_names: sequence of str or None. The model's class names.

    Returns:
        :class:`ModelTexts`.

    Raises:
        DataError: naming the file (and line): unreadable, empty, missing
            column, unknown label.

    Examples:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "mine.csv")
    >>> _ = open(path, "w").write("body,topic\\nstocks fell,business\\n"
    ...                           "a late goal,sport\\n")
    >>> data = read_text_file(path, "body", "topic",
    ...                       ["business", "science", "sport"])
    >>> data.texts, data.labels
    (['stocks fell', 'a late goal'], [0, 2])
    >>> data.source  # doctest: +ELLIPSIS
    '--data=.../mine.csv (text column body, labels from topic)'
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--data: no such file {path!r}.")
    source = f"--data={path}"
    if path.lower().endswith(".txt"):
        with open(path, encoding="utf-8") as f:
            texts = [line.strip() for line in f if line.strip()]
        if not texts:
            raise DataError(path, None, "the file has no texts.")
        return ModelTexts(texts, None, source + " (one text per line)")
    file_format = _format_of(path, None)
    columns = (text_column,) + ((label_column,) if label_column else ())
    names = None if label_names is None else canonical_label_names(
        label_names)
    if label_column and names is None:
        raise ValueError(
            f"{path}: label_column {label_column!r} needs the model's label "
            "names (a classifier folder has them).")
    rows = (labelled_rows(path, file_format, (text_column,), label_column,
                          names) if label_column else
            ((line, row, None) for line, row in _rows(path, file_format,
                                                      columns)))
    texts, labels = [], []
    for line, row, label in rows:
        text = row[text_column]
        if not isinstance(text, str) or not text.strip():
            raise DataError(path, line, f"column {text_column!r} holds no "
                            "text.")
        texts.append(text)
        labels.append(label)
    if not texts:
        raise DataError(path, None, "the file has no texts.")
    source += f" (text column {text_column}"
    source += f", labels from {label_column})" if label_column else ")"
    return ModelTexts(texts, labels if label_column else None, source,
                      names)


def absolute_data_paths(data):
    """``{field: absolute path}`` for the :data:`PATH_FIELDS` of ``data``
    (a config's ``data`` section) that are set and relative, resolved
    against the current folder: what a run records, so that a tool
    reading the record from anywhere finds the same files."""
    return {field: os.path.abspath(data[field]) for field in PATH_FIELDS
            if data.get(field) and not os.path.isabs(data[field])}


def resolve_recorded_path(value, folder, source, field):
    """An absolute path for a path ``value`` recorded in the file
    ``source`` (in ``folder``).

    A relative path (runs recorded them before paths were stored absolute)
    is resolved against ``folder`` (the run folder), never the current
    folder. One that is not there but exists relative to a folder above
    (where an older run may have been started) is refused with that path,
    so that another task's file of the same name is never read silently;
    one found nowhere resolves against ``folder`` (reading it then says it
    is missing).

    Examples:
    >>> import os, tempfile
    >>> root = tempfile.mkdtemp()
    >>> run = os.path.join(root, "runs", "a")
    >>> os.makedirs(run)
    >>> _ = open(os.path.join(run, "train.csv"), "w").write("text,label\\n")
    >>> _ = open(os.path.join(root, "dev.csv"), "w").write("text,label\\n")
    >>> resolve_recorded_path("train.csv", run, "config.json", "x") == (
    ...     os.path.join(run, "train.csv"))
    True
    >>> resolve_recorded_path("dev.csv", run, "config.json", "y")
    Traceback (most recent call last):
    ...
    ValueError: config.json: data.y='dev.csv' is a relative path that is not in the run folder ...
    """
    if not value or os.path.isabs(value):
        return value
    own = os.path.normpath(os.path.join(folder, value))
    if os.path.exists(own):
        return own
    here = os.path.dirname(folder)
    while True:
        candidate = os.path.normpath(os.path.join(here, value))
        if os.path.exists(candidate):
            raise ValueError(
                f"{source}: data.{field}={value!r} is a relative path that "
                f"is not in the run folder {folder}; {candidate} has that "
                "name. If it is the file the run was trained on, write its "
                f"absolute path into {source}.")
        parent = os.path.dirname(here)
        if parent == here:
            return own
        here = parent


def _resolved(record):
    """``record`` with its data paths absolute (:func:`resolve_recorded_path`
    against the folder of the file that records them)."""
    data = dict(record.get("data") or {})
    folder = os.path.dirname(os.path.abspath(record["source"]))
    for field in PATH_FIELDS:
        if isinstance(data.get(field), str):
            data[field] = resolve_recorded_path(data[field], folder,
                                                record["source"], field)
    return {**record, "data": data}


def check_recorded_files(record):
    """Raises ``FileNotFoundError`` in one line naming the file and the run
    when a data file (or folder) that ``record`` names is not there."""
    for field in PATH_FIELDS:
        path = (record.get("data") or {}).get(field)
        if path and not os.path.exists(path):
            raise FileNotFoundError(
                f"{path} (data.{field} of the run recorded in "
                f"{record['source']}) does not exist: the run's data moved. "
                "Put it back, or pass --data=FILE.")


def recorded_task(folder):
    """The task a model folder was trained on, or None.

    ``FOLDER/task_data.json`` (written into folders cut from a fine-tuned
    one), else, for a classifier folder (``task.json``), the fine-tuning
    run's ``config.json`` in the parent folder (``RUN/best`` ->
    ``RUN/config.json``).

    Returns:
        ``{"task": str, "data": dict (the run's config.data, its paths
        absolute: relative ones resolved where the record is, see
        :func:`resolve_recorded_path`), "source": str (the file it was
        read from)}`` or None.
    """
    if folder is None:
        return None
    folder = os.path.abspath(os.fspath(folder))
    path = os.path.join(folder, RECORD_FILE)
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
        record.setdefault("source", path)
        if not os.path.isfile(record["source"]):
            record["source"] = path  # Copied from a run: read from here.
        return _resolved(record)
    if not os.path.isfile(os.path.join(folder, "task.json")):
        return None
    path = os.path.join(os.path.dirname(folder), "config.json")
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict) or not isinstance(config.get("task"),
                                                      str):
        return None
    return _resolved({"task": config["task"],
                      "data": config.get("data") or {}, "source": path})


def task_kwargs(task, data):
    """``load_task_data`` arguments of ``task`` from a fine-tuning config's
    ``data`` section (a dict or ConfigDict)."""
    if task == "files":
        files = {split: data[f"{split}_files"]
                 for split in ("train", "validation", "test")
                 if data.get(f"{split}_files")}
        columns = [data.get("text_column", "sentence")] + (
            [data["text_pair_column"]] if data.get("text_pair_column")
            else [])
        return dict(files=files, text_columns=columns,
                    label_column=data.get("label_column", "label"),
                    labels_as_text=bool(data.get("labels_as_text")))
    if task.startswith("glue/"):
        return dict(source=data.get("source"), data_dir=data.get("data_dir"))
    return {}


def _splits(task, kwargs, split):
    """The splits to try for ``split``, best first."""
    if task == "files":
        available = list(kwargs["files"])
    else:

        spec = get_task(task)
        available = list(spec.splits)
        if split == "validation" and spec.eval_splits:
            split = spec.eval_splits[0]
    order = [split] + [s for s in ("validation", "test", "train")
                       if s != split]
    return [s for s in order if s in available]


def recorded_texts(record, split="validation"):
    """:class:`ModelTexts` of the recorded task's ``split`` (or the nearest
    split the task has: validation, test, train). Pairs give their first
    text."""

    task = record["task"]
    check_recorded_files(record)
    kwargs = task_kwargs(task, record.get("data") or {})
    splits = _splits(task, kwargs, split)
    if not splits:
        raise ValueError(f"{record['source']}: task {task!r} records no "
                         "data files; pass --data=FILE.")
    examples, spec = load_task_data(task, splits[0], **kwargs)
    texts, labels = [], []
    for example in examples.as_numpy_iterator():
        text = example[0]
        texts.append(text.decode("utf-8") if isinstance(text, bytes)
                     else str(text))
        labels.append(example[-1])
    if spec.num_classes == 1 or any(label < 0 for label in labels):
        labels = None  # Regression scores or an unlabelled split.
    else:
        labels = [int(label) for label in labels]
    return ModelTexts(texts, labels, f"task {task}, split {splits[0]} "
                      f"(recorded in {record['source']})", spec.label_names)


def default_texts(split="validation"):
    """The embedded Rotten Tomatoes reviews of ``split``, with labels."""
    examples = load_split(split)
    return ModelTexts([t for t, _ in examples], [int(y) for _, y in examples],
                      f"{DEFAULT_TASK}/{split} (embedded movie reviews)",
                      ("rotten", "fresh"))


def texts_for_model(folder=None, data=None, text_column="text",
                    label_column=None, label_names=None, split="validation",
                    allow_default=False, what="this tool"):
    """The texts to run a model on, in the order of the module docstring.

    Args:
        folder: str or None. The model folder.
        data: str or None. A user file (``--data``).
        text_column, label_column: columns of ``data``.
        label_names: the model's class names (labels of ``data``).
        split: str. ``"validation"`` (checking) or ``"train"``
            (calibration, importance) of a recorded task.
        allow_default: bool. Fall back to the embedded reviews (the
            embedded checkpoint, or a caller that chose them).
        what: str. What needs the texts, for the error message.

    Returns:
        :class:`ModelTexts`.

    Raises:
        ValueError: no data: neither ``data``, nor a recorded task, nor
            ``allow_default``.
    """
    if data:
        return read_text_file(data, text_column, label_column, label_names)
    record = recorded_task(folder)
    if record is not None:
        return recorded_texts(record, split)
    if allow_default:
        return default_texts(split)
    raise ValueError(
        f"{what} needs texts to run the model on, and {folder!r} records no "
        "task (a fine-tuned RUN/best folder has RUN/config.json beside it). "
        "Pass --data=FILE: a .txt file (one text per line) or a .csv/.tsv/"
        ".jsonl file with a text column (--text_column).")
