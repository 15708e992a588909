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
           "LabelReader", "label_name", "parse_label", "read_examples",
           "read_records"]

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


#: The note every refused label ends with: the explicit option.
_AS_TEXT = ("labels_as_text=True (--config.data.labels_as_text=True) reads "
            "every label as a class name, as written")


def label_name(value, path, line, labels_as_text=False):
    """The label name of a raw label value, checked like data.

    A label is text (a class name) or an integer (a class name such as
    ``"3"``, or a class index). Refused, naming the file and line: an empty
    label (an empty field, JSON ``null``, ``"nan"`` as pandas writes a
    missing value), a JSON list or object, and, unless ``labels_as_text``
    says labels are names as written, a JSON boolean and a number that is
    not an integer (``1.5``: a score; see ``regression``).

    Args:
        value: the raw value from the file.
        path: str. File, for the error message.
        line: int. Line, for the error message.
        labels_as_text: bool. ``true`` is the name ``"true"``, ``1.5`` the
            name ``"1.5"``. Defaults to False.

    Returns:
        str: :func:`_label_str` of the value.

    Raises:
        DataError: naming the file, the line and the value.

    Examples:
    >>> label_name(" pos ", "train.csv", 2), label_name(1.0, "t.jsonl", 3)
    ('pos', '1')
    >>> label_name(True, "t.jsonl", 4)
    Traceback (most recent call last):
    ...
    trimzoo.data.files.DataError: t.jsonl, line 4: label true is a JSON boolean, not a class name; write the class name as text ("true"), or labels_as_text=True (...) reads every label as a class name, as written.
    >>> label_name(True, "t.jsonl", 4, labels_as_text=True)
    'true'
    """
    name = _present_label(value, path, line)
    if labels_as_text:
        return name
    if isinstance(value, bool):
        raise DataError(path, line, f"label {json.dumps(value)} is a JSON "
                        "boolean, not a class name; write the class name as "
                        f"text (\"{name}\"), or {_AS_TEXT}.")
    if not _is_integer(name) and _is_number(name):
        raise DataError(path, line, f"label {value!r} is a number but not an "
                        "integer: class labels are names or integer ids (scores "
                        f"are read with regression=True); or {_AS_TEXT}.")
    return name


def _present_label(value, path, line):
    """:func:`_label_str` of a value that is there: refuses an empty label,
    JSON null, a list or object, and ``nan``."""
    if value is None or (isinstance(value, str) and not value.strip()):
        what = "null" if value is None else "empty"
        raise DataError(path, line, f"the label is {what}; every row needs a "
                        "class label (fill it in, or remove the row).")
    if isinstance(value, (list, dict)):
        raise DataError(path, line, f"label {json.dumps(value):.60} is a "
                        "JSON " + ("list" if isinstance(value, list) else
                                   "object") + ", not a class name.")
    name = _label_str(value)
    if name.lower() == "nan":
        raise DataError(path, line, f"label {value!r} is a missing value "
                        "(as pandas writes one); fill it in, or remove the "
                        "row.")
    return name


def parse_label(value, label_names, path, line, labels_as_text=False):
    """Label id of a raw label value, or a float for regression.

    Args:
        value: str, int, float or bool. The raw value from the file.
        label_names: sequence of str, or None for a float (regression)
            label.
        path: str. File, for the error message.
        line: int. Line, for the error message.
        labels_as_text: bool. Every value is a class name as written, never
            an index (see :func:`label_name`). Defaults to False.

    Returns:
        int class id (the value is a label name, or else, when no label
        name is an integer, the index as an integer literal, as the GLUE
        files use ``0``/``1``), or float.

    Raises:
        DataError: for an empty, null or unknown label, a non-numeric
            score, or a value :func:`label_name` refuses.
    """
    return _parse_label(value, label_names, path, line, labels_as_text)[0]


def _parse_label(value, label_names, path, line, labels_as_text=False):
    """``(id, by_index)``: :func:`parse_label`'s id, and whether the value
    was read as an index (an integer among names that are not)."""
    if label_names is None:
        try:
            if isinstance(value, bool):
                raise ValueError
            score = float(value)
        except (TypeError, ValueError):
            raise DataError(path, line,
                            f"regression label {value!r} is not a number."
                            ) from None
        if not math.isfinite(score):
            raise DataError(path, line, f"regression label {value!r} is not "
                            "a finite number.")
        return score, False
    name = _present_label(value, path, line)
    # A value that is one of the names (a class "true" or "1.5" listed, or
    # read from the train file as text) is that class.
    if name in label_names:
        return label_names.index(name), False
    name = label_name(value, path, line, labels_as_text)
    numeric_names = any(_is_integer(n) for n in label_names)
    if not numeric_names and not labels_as_text and _is_integer(name):
        # Names such as ("negative", "positive") with 0/1 in the file, as
        # the GLUE files write them: the integer is the index. Never when a
        # name is itself an integer, where "1" could mean either.
        index = int(name)
        if 0 <= index < len(label_names):
            return index, True
    indices = ("" if numeric_names or labels_as_text else
               f" (or their indices 0..{len(label_names) - 1})")
    raise DataError(path, line,
                    f"unknown label {value!r}; known labels: "
                    f"{list(label_names)}{indices}. Label names come from "
                    f"the train file unless label_names lists every class.")


class _LabelKinds:
    """Refuses a file whose labels mix integers and names: a file's labels
    are all class names, or all integers (names or indices), unless
    ``labels_as_text``. Call :meth:`see` on each row in order."""

    def __init__(self, path, labels_as_text=False, booleans=True):
        self.path, self.off = path, labels_as_text
        # With names given by the user, a listed "true" is a class name.
        self.booleans = booleans
        self.first = {}  # kind -> (line, value)

    def see(self, line, value, integer):
        if self.off:
            return
        # A boolean word among names ("true" among "pos"/"neg") is a slip,
        # as an integer among names is; a file of true/false alone is fine.
        kind = "integer" if integer else (
            "boolean" if self.booleans and str(value).strip().lower() in (
                "true", "false") else "name")
        self.first.setdefault(kind, (line, value))
        if len(self.first) >= 2:
            other = next(k for k in self.first if k != kind)
            other_line, other_value = self.first[other]
            article = "an" if kind == "integer" else "a"
            raise DataError(
                self.path, line,
                f"label {value!r} is {article} {kind}, but line {other_line} "
                f"has the {other} {other_value!r}: a file's labels are all "
                "class names, all true/false or all integer ids; "
                f"or {_AS_TEXT}.")


class LabelReader:
    """Label ids of one file's rows, read in order: :func:`parse_label`'s
    checks, and the file's labels all names or all integers (unless
    ``labels_as_text``).

    Args:
        path: str. The file, for messages.
        label_names: sequence of str, or None (float scores).
        labels_as_text: bool. Defaults to False.

    Examples:
    >>> read = LabelReader("dev.csv", ("neg", "pos"))
    >>> read("pos", 2), read("neg", 3)
    (1, 0)
    >>> read("1", 4)
    Traceback (most recent call last):
    ...
    trimzoo.data.files.DataError: dev.csv, line 4: label '1' is an integer, but line 2 has the name 'pos': ...
    """

    def __init__(self, path, label_names, labels_as_text=False):
        self.path, self.names = path, label_names
        self.as_text = labels_as_text
        self.kinds = _LabelKinds(path, labels_as_text, booleans=False)

    def __call__(self, value, line):
        label, by_index = _parse_label(value, self.names, self.path, line,
                                       self.as_text)
        if self.names is not None:
            self.kinds.see(line, value,
                           by_index or _is_integer(self.names[label]))
        return label


def _is_number(name):
    try:
        float(name)
    except ValueError:
        return False
    return True


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
        if [f.strip() for f in fields] == [h.strip() for h in header]:
            yield reader.line_num, DataError(
                path, reader.line_num,
                "the header row again (a file joined from several with "
                "their headers?); remove it.")
            continue
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


def labelled_rows(path, file_format, columns, label_column, label_names,
                  labels_as_text=False):
    """Yields ``(line, row, label id)`` of a file's rows (``columns`` and
    ``label_column``; the label a float when ``label_names`` is None),
    every label checked (:func:`parse_label`) and the file's labels all
    names or all integers (unless ``labels_as_text``); the first bad row
    raises its :class:`DataError`."""
    read = LabelReader(path, label_names, labels_as_text)
    for line, row in _rows(path, file_format,
                           tuple(columns) + (label_column,)):
        yield line, row, read(row[label_column], line)


def infer_label_names(path, label_column, *, file_format=None,
                      labels_as_text=False):
    """Sorted unique label values of a file, as label names.

    Integer-valued labels sort numerically (``"2"`` before ``"10"``), other
    labels as strings.

    Args:
        path: str. A CSV, TSV or JSONL file.
        label_column: str. The label column (key).
        file_format: ``"csv"``, ``"tsv"``, ``"jsonl"`` or None (from the
            extension).
        labels_as_text: bool. Every label is a class name as written
            (:func:`label_name`). Defaults to False.

    Returns:
        tuple of str.

    Raises:
        DataError: for an empty file, a missing column, a single label, a
            label :func:`label_name` refuses, or integers among names.

    Examples:
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "train.csv")
    >>> _ = open(path, "w").write("text,label\\na,pos\\nb,neg\\nc,pos\\n")
    >>> infer_label_names(path, "label")
    ('neg', 'pos')
    """
    file_format = _format_of(path, file_format)
    values = set()
    kinds = _LabelKinds(path, labels_as_text)
    for line, row in _rows(path, file_format, (label_column,)):
        name = label_name(row[label_column], path, line, labels_as_text)
        kinds.see(line, row[label_column], _is_integer(name))
        values.add(name)
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
                  regression=False, file_format=None, labels_as_text=False):
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
        labels_as_text: bool. Every label is a class name as written: JSON
            ``true`` the name ``"true"``, ``1.5`` the name ``"1.5"``, an
            integer a name, never an index, and a file may mix integers and
            names. Defaults to False: those are refused (:func:`label_name`).

    Labels are checked like data, naming the file and line: an empty label,
    JSON ``null``, a header row repeated inside the file, and (unless
    ``labels_as_text``) a boolean, a number that is not an integer, and a
    file whose labels mix integers and names are refused before anything
    trains.

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
                                            file_format=file_format,
                                            labels_as_text=labels_as_text)
        label_names = canonical_label_names(label_names)
    else:
        label_names = None
    examples = []
    for line, row, label in labelled_rows(
            path, file_format, text_columns, label_column, label_names,
            labels_as_text=labels_as_text):
        texts = []
        for column in text_columns:
            value = row[column]
            if not isinstance(value, str):
                raise DataError(path, line,
                                f"column {column!r} is {value!r}, not text.")
            texts.append(value)
        examples.append((*texts, label))
    if not examples:
        raise DataError(path, None, "the file has no examples.")
    return examples, label_names
