"""Labelled text examples from local CSV, TSV and JSONL files.

Every loader returns examples as tuples ``(text, label)`` or ``(text_a,
text_b, label)``: the format :func:`trimzoo.data.encode_dataset` reads. Bad
data raises :class:`DataError`, whose message names the file and the line.
"""

import csv
import json
import math
import os

__all__ = ["DataError", "canonical_label_names", "infer_label_names",
           "read_examples"]

_FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl",
            ".ndjson": "jsonl"}


class DataError(ValueError):
    """Malformed data file: missing column, unknown label, empty file...

    Attributes:
        path: str. The file.
        line: int or None. 1-based line of the problem, when there is one.
        message: str. What is wrong, without the location.
    """

    def __init__(self, path, line, message):
        self.path = str(path)
        self.line = line
        self.message = message
        where = self.path if line is None else f"{self.path}, line {line}"
        super().__init__(f"{where}: {message}")


def parse_label(value, label_names, path, line):
    """Label id of a raw label value, or a float for regression.

    Args:
        value: str, int, float or bool. The raw value from the file.
        label_names: sequence of str, or None for a float (regression)
            label.
        path: str. File, for the error message.
        line: int. Line, for the error message.

    Returns:
        int class id (the value is a label name, or else, when no label
        name is an integer, the index as an integer literal, as the GLUE
        files use ``0``/``1``), or float.

    Raises:
        DataError: for an unknown label or a non-numeric score.
    """
    if label_names is None:
        try:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        except (TypeError, ValueError):
            raise DataError(path, line,
                            f"regression label {value!r} is not a number."
                            ) from None
    name = _label_str(value)
    if name in label_names:
        return label_names.index(name)
    numeric_names = any(_is_integer(n) for n in label_names)
    if not numeric_names and _is_integer(name):
        # Names such as ("negative", "positive") with 0/1 in the file, as
        # the GLUE files write them: the integer is the index. Never when a
        # name is itself an integer, where "1" could mean either.
        index = int(name)
        if 0 <= index < len(label_names):
            return index
    indices = ("" if numeric_names else
               f" (or their indices 0..{len(label_names) - 1})")
    raise DataError(path, line,
                    f"unknown label {value!r}; known labels: "
                    f"{list(label_names)}{indices}. Label names come from "
                    f"the train file unless label_names lists every class.")


def _is_integer(name):
    try:
        int(name)
    except ValueError:
        return False
    return True


def _label_str(value):
    """The label name of a raw value: text as written without surrounding
    spaces; an integer-valued number (``1``, ``1.0``, ``"1.0"``, ``" 1"``)
    as its integer (``"1"``), so every split and format agrees."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        number = value
    else:
        value = str(value).strip()
        try:
            number = float(value)
        except ValueError:
            return value
    if isinstance(number, float) and not (math.isfinite(number)
                                          and number.is_integer()):
        return str(value)
    return str(int(number))


def canonical_label_names(label_names):
    """``label_names`` as label names (:func:`_label_str`); two names that
    are the same label (``"1"`` and ``"1.0"``) raise ``ValueError``."""
    names = tuple(_label_str(n) for n in label_names)
    if len(set(names)) != len(names):
        raise ValueError(
            f"label_names {list(label_names)} name the same label twice "
            f"({list(names)} once spaces are stripped and integer values "
            f"compared as integers).")
    return names


def _format_of(path, file_format):
    if file_format is not None:
        if file_format not in ("csv", "tsv", "jsonl"):
            raise ValueError(
                f"file_format must be 'csv', 'tsv' or 'jsonl', got "
                f"{file_format!r}.")
        return file_format
    ext = os.path.splitext(str(path))[1].lower()
    if ext not in _FORMATS:
        raise ValueError(
            f"Cannot tell the format of {str(path)!r} from its extension; "
            f"pass file_format='csv', 'tsv' or 'jsonl'.")
    return _FORMATS[ext]


def _rows(path, file_format, columns):
    """Yields ``(line, {column: value})`` for the needed columns."""
    try:
        f = open(path, encoding="utf-8-sig", newline="")
    except OSError as err:
        raise DataError(path, None, f"cannot read the file ({err}).") from err
    with f:
        try:
            if file_format == "jsonl":
                yield from _jsonl_rows(f, path, columns)
            else:
                yield from _delimited_rows(f, path, file_format, columns)
        except UnicodeDecodeError as err:
            raise DataError(path, None,
                            f"not UTF-8 text ({err}).") from err


def _jsonl_rows(f, path, columns):
    for line_number, line in enumerate(f, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(path, line_number,
                            f"invalid JSON ({err.msg}).") from None
        if not isinstance(record, dict):
            raise DataError(path, line_number,
                            "expected a JSON object per line.")
        missing = [c for c in columns if c not in record]
        if missing:
            raise DataError(path, line_number,
                            f"missing key(s) {missing}; the record has "
                            f"{sorted(record)}.")
        yield line_number, {c: record[c] for c in columns}


def _delimited_rows(f, path, file_format, columns):
    if file_format == "tsv":
        # TSV has no quoting convention: a field may start with a quote.
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
    else:
        reader = csv.reader(f)
    try:
        header = next(reader, None)
        if header is None:
            raise DataError(path, None, "the file is empty.")
        missing = [c for c in columns if c not in header]
        if missing:
            raise DataError(path, 1,
                            f"missing column(s) {missing} in the header; "
                            f"columns are {header}.")
        index = {c: header.index(c) for c in columns}
        width = max(index.values()) + 1
        for fields in reader:
            if not fields or fields == [""]:
                continue  # Blank line.
            if len(fields) < width or len(fields) > len(header):
                hint = ("; quote a field that holds a comma"
                        if file_format == "csv" and len(fields) > len(header)
                        else "")
                raise DataError(
                    path, reader.line_num,
                    f"{len(fields)} field(s), expected {len(header)} "
                    f"(header: {header}){hint}.")
            yield reader.line_num, {c: fields[i] for c, i in index.items()}
    except csv.Error as err:
        raise DataError(path, reader.line_num,
                        f"malformed {file_format.upper()} ({err}).") from None


def infer_label_names(path, label_column, *, file_format=None):
    """Sorted unique label values of a file, as label names.

    Integer-valued labels sort numerically (``"2"`` before ``"10"``), other
    labels as strings.

    Args:
        path: str. A CSV, TSV or JSONL file.
        label_column: str. The label column (key).
        file_format: ``"csv"``, ``"tsv"``, ``"jsonl"`` or None (from the
            extension).

    Returns:
        tuple of str.

    Raises:
        DataError: for an empty file, a missing column, or a single label.

    Examples:
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "train.csv")
    >>> _ = open(path, "w").write("text,label\\na,pos\\nb,neg\\nc,pos\\n")
    >>> infer_label_names(path, "label")
    ('neg', 'pos')
    """
    file_format = _format_of(path, file_format)
    values = set()
    for _, row in _rows(path, file_format, (label_column,)):
        values.add(_label_str(row[label_column]))
    if not values:
        raise DataError(path, None, "the file has no examples.")
    if len(values) < 2:
        raise DataError(path, None,
                        f"only one label value {sorted(values)} in column "
                        f"{label_column!r}; a classifier needs two or more "
                        f"(for regression pass regression=True).")

    def key(name):
        try:
            return (0, int(name), "")
        except ValueError:
            return (1, 0, name)

    return tuple(sorted(values, key=key))


def read_examples(path, text_columns, label_column, *, label_names=None,
                  regression=False, file_format=None):
    """Examples from a local CSV, TSV or JSONL file.

    CSV uses standard quoting; TSV is tab-split with no quoting (like the
    GLUE files); JSONL has one JSON object per line. CSV and TSV need a
    header row naming the columns. Blank lines are skipped.

    Args:
        path: str. The file; the format comes from its extension
            (``.csv``, ``.tsv``, ``.jsonl``/``.ndjson``) unless
            ``file_format`` is given.
        text_columns: str or sequence of 1-2 str. The text column, or the
            two columns of a text pair.
        label_column: str. The label column.
        label_names: sequence of str, or None. Class names; a label value
            maps to its position in this list. Values and names compare as
            written without surrounding spaces, integer values as integers
            (``"1"``, ``"1.0"`` and ``1`` are one label); when no name is
            an integer, an integer value is taken as the index. None:
            inferred as the sorted unique values of the file
            (:func:`infer_label_names`).
        regression: bool. Float labels; ``label_names`` must be None.
            Defaults to False.
        file_format: ``"csv"``, ``"tsv"``, ``"jsonl"`` or None.

    Returns:
        ``(examples, label_names)``: a list of tuples ``(*texts, label)``
        with int labels (float for regression) and the tuple of label
        names used (None for regression).

    Raises:
        DataError: naming the file and line, for an unreadable or empty
            file, a missing column, a missing value, an unknown label or a
            non-numeric score.

    Examples:
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "pairs.jsonl")
    >>> _ = open(path, "w").write(
    ...     '{"q": "who?", "a": "me", "y": "yes"}\\n'
    ...     '{"q": "why?", "a": "no idea", "y": "no"}\\n')
    >>> read_examples(path, ("q", "a"), "y")
    ([('who?', 'me', 1), ('why?', 'no idea', 0)], ('no', 'yes'))
    """
    if isinstance(text_columns, str):
        text_columns = (text_columns,)
    text_columns = tuple(text_columns)
    if len(text_columns) not in (1, 2):
        raise ValueError(
            f"text_columns must name 1 or 2 columns, got {text_columns!r}.")
    if regression and label_names is not None:
        raise ValueError("regression=True takes no label_names.")
    file_format = _format_of(path, file_format)
    if not regression:
        if label_names is None:
            label_names = infer_label_names(path, label_column,
                                            file_format=file_format)
        label_names = canonical_label_names(label_names)
    else:
        label_names = None
    examples = []
    for line, row in _rows(path, file_format,
                           text_columns + (label_column,)):
        texts = []
        for column in text_columns:
            value = row[column]
            if not isinstance(value, str):
                raise DataError(path, line,
                                f"column {column!r} is {value!r}, not text.")
            texts.append(value)
        label = parse_label(row[label_column], label_names, path, line)
        examples.append((*texts, label))
    if not examples:
        raise DataError(path, None, "the file has no examples.")
    return examples, label_names
