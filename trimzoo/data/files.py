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
           "read_examples", "read_records"]

_FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl",
            ".ndjson": "jsonl", ".txt": "txt"}


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


def _format_of(path, file_format, txt=False):
    formats = ("csv", "tsv", "jsonl") + (("txt",) if txt else ())
    if file_format is not None:
        if file_format not in formats:
            raise ValueError(f"file_format must be one of {list(formats)}, "
                             f"got {file_format!r}.")
        return file_format
    ext = os.path.splitext(str(path))[1].lower()
    if _FORMATS.get(ext) not in formats:
        raise ValueError(
            f"Cannot tell the format of {str(path)!r} from its extension "
            f"({sorted(e for e, f in _FORMATS.items() if f in formats)}); "
            f"pass file_format={list(formats)}.")
    return _FORMATS[ext]


# Longest CSV/TSV field read, in characters (Python's default, 131,072,
# stops at one long review); a longer field fails naming its line.
FIELD_SIZE_LIMIT = 1 << 26

ERROR_POLICIES = ("raise", "yield")


def read_records(path, columns, *, file_format=None, errors="raise"):
    """Streams ``(line, {column: value})`` from a CSV, TSV, JSONL or TXT
    file: the one reader of local files, with one policy for every format.

    Text is UTF-8; a byte-order mark at the start is dropped, so a header
    written by a spreadsheet reads like any other. CSV uses standard
    quoting, TSV is tab-split with no quoting (like the GLUE files), JSONL
    holds one JSON object per line, TXT one text per line (one column, no
    header). Blank lines of CSV, TSV and JSONL are skipped. ``line`` is the
    file's line (where the row ends) for messages.

    Args:
        path: str. The file.
        columns: sequence of str. The columns (JSON keys) to return; a
            TXT file's one text comes under ``columns[0]``.
        file_format: ``"csv"``, ``"tsv"``, ``"jsonl"``, ``"txt"`` or None
            (from the extension).
        errors: ``"raise"``: a bad row (not UTF-8, invalid JSON, a missing
            column or value, a field count other than the header's) raises
            its :class:`DataError`; ``"yield"``: yields ``(line,
            DataError)`` for it and goes on. A file that cannot be read, is
            empty, or whose header lacks a column raises either way.

    Examples:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "in.csv")
    >>> with open(path, "wb") as f:
    ...     _ = f.write(b"\\xef\\xbb\\xbftext,label\\ngood,1\\n"
    ...                 b"bad \\xff,0\\nlast,1\\n")
    >>> for line, row in read_records(path, ["text"], errors="yield"):
    ...     print(line, row)
    2 {'text': 'good'}
    3 .../in.csv, line 3: not UTF-8 text (undecodable bytes) in column 'text'.
    4 {'text': 'last'}
    """
    if errors not in ERROR_POLICIES:
        raise ValueError(f"errors must be one of {list(ERROR_POLICIES)}, "
                         f"got {errors!r}.")
    columns = list(columns)
    file_format = _format_of(path, file_format, txt=True)
    if file_format == "txt" and len(columns) != 1:
        raise ValueError("A .txt file has one text per line: no label or "
                         f"pair columns (asked for {columns}).")
    try:
        # surrogateescape: undecodable bytes fail on their own line below.
        f = open(path, encoding="utf-8-sig", errors="surrogateescape",
                 newline="")
    except OSError as err:
        raise DataError(path, None, f"cannot read the file ({err}).") from err
    if file_format == "txt":
        rows = ((n, {columns[0]: text.rstrip("\r\n")})
                for n, text in enumerate(f, start=1))
    elif file_format == "jsonl":
        rows = _jsonl_rows(f, path, columns)
    else:
        rows = _delimited_rows(f, path, file_format, columns)
    with f:
        for line, row in rows:
            if not isinstance(row, DataError):
                row = _undecodable(row, path, line) or row
            if isinstance(row, DataError):
                if errors == "raise":
                    raise row
            yield line, row


def _undecodable(row, path, line):
    """A DataError for the first value holding undecodable bytes."""
    for column, value in row.items():
        if isinstance(value, str) and any("\udc80" <= c <= "\udcff"
                                          for c in value):
            return DataError(path, line, "not UTF-8 text (undecodable bytes)"
                             f" in column {column!r}.")
    return None


def _rows(path, file_format, columns):
    """Yields ``(line, {column: value})``; the first bad row raises."""
    return read_records(path, columns, file_format=file_format)


def _jsonl_rows(f, path, columns):
    for line_number, line in enumerate(f, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            message = ("not UTF-8 text (undecodable bytes)."
                       if any("\udc80" <= c <= "\udcff" for c in line)
                       else f"invalid JSON ({err.msg}).")
            yield line_number, DataError(path, line_number, message)
            continue
        if not isinstance(record, dict):
            yield line_number, DataError(path, line_number,
                                         "expected a JSON object per line.")
            continue
        missing = [c for c in columns if c not in record]
        if missing:
            yield line_number, DataError(
                path, line_number, f"missing key(s) {missing}; the record "
                f"has {sorted(record)}.")
            continue
        yield line_number, {c: record[c] for c in columns}


def _delimited_rows(f, path, file_format, columns):
    if csv.field_size_limit() < FIELD_SIZE_LIMIT:
        csv.field_size_limit(FIELD_SIZE_LIMIT)
    if file_format == "tsv":
        # TSV has no quoting convention: a field may start with a quote.
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
    else:
        reader = csv.reader(f)
    try:
        header = next(reader, None)
    except csv.Error as err:
        raise DataError(path, 1, f"malformed {file_format.upper()} header "
                        f"({err}).") from None
    if header is None:
        raise DataError(path, None, "the file is empty.")
    missing = [c for c in columns if c not in header]
    if missing:
        raise DataError(path, 1,
                        f"missing column(s) {missing} in the header; "
                        f"columns are {header}.")
    index = {c: header.index(c) for c in columns}
    width = max(index.values(), default=-1) + 1
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            # The reader goes on with the next line.
            yield reader.line_num, DataError(
                path, reader.line_num,
                f"malformed {file_format.upper()} ({err}).")
            continue
        if not fields or fields == [""]:
            continue  # Blank line.
        if len(fields) < width or len(fields) > len(header):
            hint = ("; quote a field that holds a comma"
                    if file_format == "csv" and len(fields) > len(header)
                    else "")
            yield reader.line_num, DataError(
                path, reader.line_num,
                f"{len(fields)} field(s), expected {len(header)} "
                f"(header: {header}){hint}.")
            continue
        yield reader.line_num, {c: fields[i] for c, i in index.items()}


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
