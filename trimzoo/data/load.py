"""One entry point for every task's examples: :func:`load_task_data`."""

import os

from trimzoo.data import glue, rotten_tomatoes
from trimzoo.data.files import infer_label_names, read_examples
from trimzoo.data.pipeline import examples_to_dataset
from trimzoo.data.tasks import files_task, get_task

__all__ = ["load_task_data"]


def _reject(task, **given):
    passed = sorted(name for name, value in given.items() if value)
    if passed:
        raise ValueError(f"Task {task!r} takes no {', '.join(passed)}.")


def load_task_data(task, split, *, source=None, data_dir=None, files=None,
                   text_columns=None, label_column="label", label_names=None,
                   regression=False, file_format=None, download=True,
                   shuffle_files=False, skip_bad_rows=False,
                   labels_as_text=False):
    """The examples of one split of a task, and the task's spec.

    Three kinds of task:

    * ``"glue/<name>"`` (cola, sst2, mrpc, qqp, stsb, mnli, qnli, rte,
      wnli): from tensorflow-datasets (``source="tfds"``, the default;
      ``data_dir`` is the tfds data folder) or from the original GLUE TSV
      files (``source="tsv"``; ``data_dir`` is the GLUE folder with
      ``SST-2/``, ``MNLI/``...). Unlabelled test splits have label -1.
    * ``"rotten_tomatoes"``: the embedded real task (no other argument).
    * ``"files"``: local CSV/TSV/JSONL, ``files={split: path}``, with
      ``text_columns`` and ``label_column``. Label names, unless given, are
      the sorted unique labels of the train file (else of this split's
      file); ``regression=True`` reads float labels.

    Args:
        task: str. ``"glue/sst2"``, ``"rotten_tomatoes"``, ``"files"``...
        split: str. One of the task's splits (``spec.splits``): ``"train"``,
            ``"validation"``, ``"test"``; MNLI ``"validation_matched"`` and
            ``"validation_mismatched"``; for files, a key of ``files``.
        source: ``"tfds"``, ``"tsv"`` or None (GLUE: tfds). GLUE only.
        data_dir: str or None. GLUE: the tfds data folder, or (tsv) the
            GLUE folder.
        files: dict ``split -> path``. Task ``"files"`` only.
        text_columns: str or sequence of 1-2 str. Task ``"files"`` only.
        label_column: str. Task ``"files"`` only. Defaults to ``"label"``.
        label_names: sequence of str or None. Task ``"files"`` only.
        regression: bool. Task ``"files"`` only. Defaults to False.
        file_format: ``"csv"``, ``"tsv"``, ``"jsonl"`` or None (from the
            extension). Task ``"files"`` only.
        download: bool. GLUE tfds: let tfds download and prepare missing
            data. Defaults to True.
        shuffle_files: bool. GLUE tfds: shuffle the shards. Defaults to
            False.
        skip_bad_rows: bool. GLUE tsv: skip malformed rows instead of
            raising. Defaults to False.
        labels_as_text: bool. Task ``"files"`` only: every label is a
            class name as written (JSON ``true``, ``1.5``, integers among
            names), where by default such labels are refused
            (:func:`trimzoo.data.files.read_examples`). Defaults to False.

    Returns:
        ``(examples, spec)``: ``examples`` a ``tf.data.Dataset`` of tuples
        ``(text, label)`` or ``(text_a, text_b, label)`` with a known
        length (``len(examples)``), ready for
        :func:`trimzoo.data.encode_dataset`; ``spec`` the
        :class:`trimzoo.data.TaskSpec` (label names, metrics, splits).

    Raises:
        ValueError: unknown task, split or source, or arguments the task
            does not take.
        trimzoo.data.DataError: malformed files (names file and line).
        FileNotFoundError: missing files.
        RuntimeError: tfds could not load the data.

    Examples:
    >>> examples, spec = load_task_data("rotten_tomatoes", "validation")
    >>> spec.label_names, len(examples) > 1000
    (('rotten', 'fresh'), True)

    A CSV file of text pairs:

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "train.csv")
    >>> _ = open(path, "w").write("q,a,y\\nhi?,hello,yes\\nwho?,no,no\\n")
    >>> examples, spec = load_task_data(
    ...     "files", "train", files={"train": path}, text_columns=("q", "a"),
    ...     label_column="y")
    >>> spec.label_names, spec.num_texts
    (('no', 'yes'), 2)
    """
    data_dir = data_dir or None  # Config files use "" for "not set".
    source = source or None
    file_args = dict(files=files, text_columns=text_columns,
                     label_names=label_names, regression=regression,
                     file_format=file_format, labels_as_text=labels_as_text)
    if task == "files":
        _reject(task, source=source, data_dir=data_dir)
        return _load_files(split, label_column=label_column, **file_args)
    spec = get_task(task)
    _reject(task, **file_args)
    if task == "rotten_tomatoes":
        _reject(task, source=source, data_dir=data_dir)
        if split not in spec.splits:
            raise ValueError(f"{task} has no split {split!r}; valid: "
                             f"{list(spec.splits)}.")
        return examples_to_dataset(rotten_tomatoes.load_split(split)), spec
    # GLUE.
    source = source or "tfds"
    if source == "tfds":
        examples = glue.load_tfds(task, split, data_dir=data_dir,
                                  download=download,
                                  shuffle_files=shuffle_files)
    elif source == "tsv":
        if data_dir is None:
            raise ValueError("source='tsv' needs data_dir= (the GLUE folder "
                             "holding SST-2/, MNLI/...).")
        examples = examples_to_dataset(
            glue.load_tsv(task, split, data_dir,
                          skip_bad_rows=skip_bad_rows))
    else:
        raise ValueError(f"source must be 'tfds' or 'tsv', got {source!r}.")
    return examples, spec


def _load_files(split, *, files, text_columns, label_column, label_names,
                regression, file_format, labels_as_text):
    if not files:
        raise ValueError("Task 'files' needs files={split: path}.")
    if not text_columns:
        raise ValueError("Task 'files' needs text_columns= (one column, or "
                         "two for text pairs).")
    files = {name: os.fspath(path) for name, path in files.items() if path}
    if split not in files:
        raise ValueError(f"No file for split {split!r}; files has "
                         f"{sorted(files)}.")
    if regression:
        if label_names:
            raise ValueError("regression=True takes no label_names.")
        label_names = None
    elif not label_names:
        label_names = infer_label_names(files.get("train", files[split]),
                                        label_column, file_format=file_format,
                                        labels_as_text=labels_as_text)
    examples, label_names = read_examples(
        files[split], text_columns, label_column, label_names=label_names,
        regression=regression, file_format=file_format,
        labels_as_text=labels_as_text)
    spec = files_task(text_columns, label_names, splits=tuple(files))
    return examples_to_dataset(examples), spec
