"""GLUE examples from tensorflow-datasets or from the original TSV folders.

Both sources give the same examples: tuples ``(text, label)`` or ``(text_a,
text_b, label)`` with the label ids of ``tensorflow_datasets`` (see
:data:`trimzoo.data.tasks.TASKS`); unlabelled test splits have label -1.

TSV folders are the layout of the original GLUE download (the
``download_glue_data.py`` script)::

    glue_data/CoLA/{train,dev,test}.tsv      train/dev without header
    glue_data/SST-2/{train,dev,test}.tsv
    glue_data/MRPC/{train,dev,test}.tsv
    glue_data/QQP/{train,dev,test}.tsv
    glue_data/STS-B/{train,dev,test}.tsv     float "score"
    glue_data/MNLI/{train,dev_matched,dev_mismatched,
                    test_matched,test_mismatched}.tsv
    glue_data/QNLI/{train,dev,test}.tsv
    glue_data/RTE/{train,dev,test}.tsv
    glue_data/WNLI/{train,dev,test}.tsv

The files are tab-separated with no quoting (quotes are ordinary
characters), as GLUE wrote them.
"""

import logging
import os

from trimzoo.data.files import DataError, parse_label
from trimzoo.data.tasks import get_task

__all__ = ["GLUE_TSV", "glue_task_name", "load_tfds", "load_tsv"]

_log = logging.getLogger(__name__)


def _columns(text, label, test_text=None):
    """Header columns of the text fields and label, per split kind."""
    return {"text": tuple(text), "label": label,
            "test_text": tuple(test_text or text)}


#: GLUE task -> folder name and header columns of the original TSV files
#: (``text``: the text columns in ``TaskSpec.text_features`` order,
#: ``label``: the label column, ``test_text``: text columns of test.tsv).
#: CoLA train/dev have no header: columns are source, label, original
#: label, sentence.
GLUE_TSV = {
    "cola": dict(folder="CoLA", **_columns(("sentence",), "label")),
    "sst2": dict(folder="SST-2", **_columns(("sentence",), "label")),
    "mrpc": dict(folder="MRPC",
                 **_columns(("#1 String", "#2 String"), "Quality")),
    "qqp": dict(folder="QQP",
                **_columns(("question1", "question2"), "is_duplicate")),
    "stsb": dict(folder="STS-B",
                 **_columns(("sentence1", "sentence2"), "score")),
    "mnli": dict(folder="MNLI",
                 **_columns(("sentence1", "sentence2"), "gold_label")),
    "qnli": dict(folder="QNLI",
                 **_columns(("question", "sentence"), "label")),
    "rte": dict(folder="RTE",
                **_columns(("sentence1", "sentence2"), "label")),
    "wnli": dict(folder="WNLI",
                 **_columns(("sentence1", "sentence2"), "label")),
}

# CoLA train/dev columns (no header): source, label, original label, text.
_COLA_TEXT, _COLA_LABEL, _COLA_WIDTH = 3, 1, 4

# tfds split -> TSV file stem.
_TSV_FILES = {
    "train": "train",
    "validation": "dev",
    "test": "test",
    "validation_matched": "dev_matched",
    "validation_mismatched": "dev_mismatched",
    "test_matched": "test_matched",
    "test_mismatched": "test_mismatched",
}


def glue_task_name(task):
    """``"glue/sst2"`` or ``"sst2"`` -> ``"sst2"``, validated."""
    short = task[len("glue/"):] if task.startswith("glue/") else task
    if short not in GLUE_TSV:
        raise ValueError(
            f"Unknown GLUE task {task!r}; valid: "
            f"{['glue/' + t for t in GLUE_TSV]}.")
    return short


def _check_split(spec, split):
    if split not in spec.splits:
        raise ValueError(
            f"{spec.name} has no split {split!r}; valid: "
            f"{list(spec.splits)}.")


def load_tfds(task, split, *, data_dir=None, download=True,
              shuffle_files=False, read_config=None):
    """GLUE examples through ``tensorflow_datasets`` (``glue/<task>``).

    Args:
        task: str. ``"glue/sst2"`` (or ``"sst2"``).
        split: str. ``"train"``, ``"validation"``, ``"test"``; for MNLI
            ``"validation_matched"``, ``"validation_mismatched"``,
            ``"test_matched"``, ``"test_mismatched"``. A tfds slice such as
            ``"train[:1%]"`` works too.
        data_dir: str or None. Where the tfds data lives (prepared
            elsewhere, e.g. ``tfds build glue/sst2 --data_dir=...``). None:
            the tfds default (``~/tensorflow_datasets``).
        download: bool. Let tfds download and prepare missing data.
            Defaults to True.
        shuffle_files: bool. Shuffle the tfds shards (train). Defaults to
            False.
        read_config: optional ``tfds.ReadConfig`` (seeds, interleave).

    Returns:
        ``tf.data.Dataset`` of tuples ``(text[, text_b], label)``: tf.string
        scalars and an int64 label (float32 for STS-B).

    Raises:
        ValueError: unknown task or split.
        RuntimeError: tfds could neither find nor prepare the data.

    Examples:
    >>> import tensorflow_datasets as tfds
    >>> with tfds.testing.mock_data(num_examples=3):
    ...     ds = load_tfds("glue/rte", "validation")
    >>> len(ds.element_spec)
    3
    """
    import tensorflow_datasets as tfds

    short = glue_task_name(task)
    spec = get_task("glue/" + short)
    for part in split.split("+"):  # tfds split syntax: "train[:10%]+..."
        _check_split(spec, part.split("[", 1)[0].strip())
    try:
        dataset = tfds.load(f"glue/{short}", split=split, data_dir=data_dir,
                            download=download, shuffle_files=shuffle_files,
                            read_config=read_config)
    except Exception as err:  # tfds raises many kinds; add the way out.
        raise RuntimeError(
            f"tensorflow_datasets could not load glue/{short} split "
            f"{split!r} (data_dir={data_dir!r}): {err}\nGLUE is downloaded "
            f"from its upstream URLs; without network, prepare it elsewhere "
            f"and pass data_dir=, or use the GLUE TSV files "
            f"(source='tsv').") from err
    features = spec.text_features
    return dataset.map(
        lambda ex: tuple(ex[f] for f in features) + (ex["label"],))


def _tsv_path(glue_dir, short, split):
    stem = _TSV_FILES[split]
    folder = GLUE_TSV[short]["folder"]
    candidates = [os.path.join(glue_dir, folder, stem + ".tsv"),
                  os.path.join(glue_dir, stem + ".tsv")]
    for path in candidates:
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(
        f"No GLUE file for {short} split {split!r}: looked for "
        f"{candidates[0]!r} (GLUE folder layout) and {candidates[1]!r} "
        f"(the task folder itself).")


def _split_fields(line):
    return line.rstrip("\r\n").split("\t")


def _columns_of(lines, path, short, split, is_test):
    """``(text indices, label index or None, minimum row width)``, reading
    the header line from ``lines`` where the file has one."""
    if short == "cola" and not is_test:
        return (_COLA_TEXT,), _COLA_LABEL, _COLA_WIDTH
    try:
        _, header_line = next(lines)
    except StopIteration:
        raise DataError(path, None, "the file is empty.") from None
    except UnicodeDecodeError as err:
        raise DataError(path, 1, f"not UTF-8 text ({err}).") from err
    header = _split_fields(header_line)
    layout = GLUE_TSV[short]
    wanted = layout["test_text"] if is_test else layout["text"] + (
        layout["label"],)
    missing = [c for c in wanted if c not in header]
    if missing:
        raise DataError(path, 1,
                        f"missing column(s) {missing} in the header of GLUE "
                        f"{short} {split}; columns are {header}.")
    indices = [header.index(c) for c in wanted]
    if is_test:
        return tuple(indices), None, max(indices) + 1
    return tuple(indices[:-1]), indices[-1], max(indices) + 1


def load_tsv(task, split, glue_dir, *, skip_bad_rows=False):
    """GLUE examples from the original TSV files.

    Args:
        task: str. ``"glue/sst2"`` (or ``"sst2"``).
        split: str. As for :func:`load_tfds` (``"validation"`` reads
            ``dev.tsv``, MNLI ``"validation_matched"`` reads
            ``dev_matched.tsv``...).
        glue_dir: str. The GLUE folder holding ``SST-2/``, ``MNLI/``...;
            or the task's own folder (``glue_data/SST-2``).
        skip_bad_rows: bool. Skip rows with too few fields or an unknown
            label (logged with their count) instead of raising; some
            redistributed copies of QQP have a few. Defaults to False.

    Returns:
        list of tuples ``(text[, text_b], label)``: int labels (-1 in test
        files), float for STS-B.

    Raises:
        FileNotFoundError: no such file.
        DataError: naming file and line, for an empty file, a missing
            column, a short row or an unknown label.

    Examples:
    >>> import os, tempfile
    >>> root = tempfile.mkdtemp()
    >>> os.makedirs(os.path.join(root, "SST-2"))
    >>> with open(os.path.join(root, "SST-2", "dev.tsv"), "w") as f:
    ...     _ = f.write("sentence\\tlabel\\nit 's a charming journey .\\t1\\n")
    >>> load_tsv("glue/sst2", "validation", root)
    [("it 's a charming journey .", 1)]
    """
    short = glue_task_name(task)
    spec = get_task("glue/" + short)
    _check_split(spec, split)
    path = _tsv_path(glue_dir, short, split)
    is_test = split in spec.unlabelled_splits
    regression = spec.is_regression
    missing_label = -1.0 if regression else -1
    examples = []
    skipped = []
    try:
        # utf-8-sig: the MRPC files start with a byte-order mark.
        f = open(path, encoding="utf-8-sig", newline="\n")
    except OSError as err:
        raise DataError(path, None, f"cannot read the file ({err}).") from err
    with f:
        lines = enumerate(f, start=1)
        text_index, label_index, width = _columns_of(lines, path, short,
                                                     split, is_test)
        try:
            for line_number, line in lines:
                if not line.strip("\r\n"):
                    continue
                fields = _split_fields(line)
                try:
                    if len(fields) < width:
                        raise DataError(path, line_number,
                                        f"{len(fields)} field(s), expected "
                                        f"at least {width}.")
                    if label_index is None:
                        label = missing_label
                    else:
                        label = parse_label(fields[label_index],
                                            spec.label_names, path,
                                            line_number)
                except DataError as err:
                    if not skip_bad_rows:
                        raise DataError(
                            path, line_number, err.message + " (pass "
                            "skip_bad_rows=True to skip such rows)") from None
                    skipped.append(line_number)
                    continue
                examples.append(tuple(fields[i] for i in text_index)
                                + (label,))
        except UnicodeDecodeError as err:
            raise DataError(path, None, f"not UTF-8 text ({err}).") from err
    if skipped:
        _log.warning("%s: skipped %d bad row(s), lines %s%s", path,
                     len(skipped), skipped[:10],
                     "..." if len(skipped) > 10 else "")
    if not examples:
        raise DataError(path, None, "the file has no examples.")
    return examples
