"""Predictions on a file of text with any trimzoo model: a model folder, a
SavedModel or a ``.tflite`` file (the library behind ``tools/predict.py``).

``load_predictor(path)`` returns a :class:`Predictor`: ``kind`` is
``"classifier"`` (outputs: logits ``[batch, num_classes]``, 1 for
regression) or ``"embedder"`` (outputs: embeddings ``[batch, dim]``).
``predict_file`` streams an input file through it in batches (constant
memory) and writes one output row per input row; each bad row raises a
:class:`~trimzoo.data.DataError` naming its line, or is reported and skipped.
"""

import csv
import json
import logging
import os
import shutil
import sys

import keras
import keras_hub
import numpy as np
import tensorflow as tf
import tqdm

from trimzoo.export.app_file import (MediaPipeRunner, read_app_file,
                                     vocabulary_fingerprint, vocabulary_of)
from trimzoo.checkpoints.folders import (check_model_folder,
                                        load_text_classifier)
from trimzoo.data import DataError, compute_metrics, files_task
from trimzoo.data.files import LabelReader, read_records
from trimzoo.export.saved_model import SIGNATURE
from trimzoo.export.tflite import TFLiteRunner
from trimzoo.models import TrimzooTextEmbedder
from trimzoo.models.precision import (check_precision, resolve_precision,
                                      with_precision)
from trimzoo.models.preprocessors import (
    TrimzooTextClassifierPreprocessor,
    tokenizer_of_folder,
)
from trimzoo.utils.io import atomic_path, read_json

INPUT_FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl",
                 ".ndjson": "jsonl", ".txt": "txt"}
OUTPUT_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".npy": "npy"}

log = logging.getLogger("trimzoo")


def _softmax(logits):
    z = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


class Predictor:
    """Texts (or pairs) in, a NumPy array out; see the module docstring.

    Attributes:
        kind: ``"classifier"`` or ``"embedder"``.
        label_names: tuple of str (classifiers; the class ids as strings
            when the model has no names), or None (regression, embedders).
        source: str. What was loaded.
        precision: str. What the model computes in: ``"float32"`` or
            ``"bfloat16"`` (model folders), ``"as exported"`` (SavedModel
            and ``.tflite`` files).
        precision_reason: str. Why (``"asked for"``, or what ``"auto"``
            found on this machine).
    """

    def __init__(self, run, kind, label_names, source,
                 precision="as exported", precision_reason="as exported",
                 close=None):
        self._run, self.kind, self.source = run, kind, source
        self._close = close
        self.label_names = label_names
        self.precision, self.precision_reason = precision, precision_reason

    def __call__(self, texts, pairs=None):
        return np.asarray(self._run(list(texts), pairs), dtype="float32")

    def close(self):
        """Releases what the model holds (a MediaPipe task); idempotent."""
        if self._close is not None:
            self._close()


def _model_folder_predictor(folder, batch_size, precision="float32"):
    # The one allow-list of classes (and links) of every folder load.
    task = check_model_folder(folder)
    if task is not None and issubclass(task,
                                       keras_hub.models.TextClassifier):
        model = load_text_classifier(folder)
        if model.preprocessor is None:
            tokenizer_of_folder(folder)  # Raises: no tokenizer.
        names = model.label_names
        if names is None and model.num_classes > 1:
            names = tuple(str(i) for i in range(model.num_classes))
        kind = "classifier"
    else:  # An embedder, or any backbone: mean-pooled embeddings.
        model = TrimzooTextEmbedder.from_preset(folder)
        names, kind = None, "embedder"
    precision, reason = resolve_precision(precision, batch_size=batch_size)
    # The same float32 weights, computing in the chosen precision.
    model = with_precision(model, precision)

    def run(texts, pairs):
        # keras-hub's ``predict`` on strings maps the preprocessor over a
        # new tf.data pipeline on every call: seconds of tracing for each
        # chunk of a file. The preprocessor called eagerly and
        # ``predict_on_batch`` on its output compute the same logits
        # (tested) in milliseconds.
        outputs = []
        for start in range(0, len(texts), batch_size):
            x = tf.constant(list(texts[start:start + batch_size]))
            if pairs is not None:
                x = (x, tf.constant(list(pairs[start:start + batch_size])))
            outputs.append(model.predict_on_batch(model.preprocessor(x)))
        if not outputs:
            raise ValueError("Nothing to predict: got 0 examples.")
        return keras.tree.map_structure(
            lambda *parts: np.concatenate(parts), *outputs)

    return Predictor(run, kind, names, folder, precision, reason)


def _export_report(path):
    """``(report, its folder)`` of the ``export_report.json`` beside an
    export (or one folder up, for a SavedModel folder), or ``({}, None)``."""
    folder = os.path.dirname(os.path.abspath(path))
    for where in (folder, os.path.dirname(folder)):
        report = read_json(os.path.join(where, "export_report.json"))
        if report:
            return report, where
    return {}, None


def _export_source(path):
    """The tokenizer folder of a token-ids-in export: the copy the export
    saved beside it (``tokenizer/``), else the model folder its report
    names (older exports), or None."""
    report, where = _export_report(path)
    copy = (report.get("tokenizer") or {}).get("path")
    if copy and os.path.isdir(os.path.join(where, copy)):
        return os.path.join(where, copy)
    return (report.get("model") or {}).get("path")


def check_vocabulary(tokenizer, expected, what, given):
    """Refuses a tokenizer whose vocabulary is not the one an export was
    made with (``expected``: ``{"vocabulary_size", "vocabulary_sha256"}``).

    Raises:
        ValueError: one line naming both sizes (and hashes).
    """
    if not expected or expected.get("vocabulary_sha256") is None:
        return
    found = vocabulary_fingerprint(vocabulary_of(tokenizer))
    if (found["size"], found["sha256"]) != (
            expected.get("vocabulary_size"),
            expected.get("vocabulary_sha256")):
        raise ValueError(
            f"--tokenizer={given} has another vocabulary than {what} "
            f"({found['size']} tokens, sha256 {found['sha256'][:12]}... vs "
            f"{expected.get('vocabulary_size')} tokens, sha256 "
            f"{str(expected.get('vocabulary_sha256'))[:12]}...): its token "
            "ids would be wrong; pass the tokenizer the model was exported "
            "with, or none.")


def _app_file_predictor(path, info, tokenizer):
    """A :class:`Predictor` running a ``.tflite`` file with MediaPipe
    metadata in MediaPipe's own task (tokenizer and labels inside)."""
    if tokenizer is not None:
        expected = vocabulary_fingerprint(info["vocabulary"])
        check_vocabulary(tokenizer_of_folder(tokenizer),
                         {f"vocabulary_{k}": v for k, v in expected.items()},
                         f"{os.path.basename(path)} carries", tokenizer)
    runner = MediaPipeRunner(path, info["kind"])

    def run(texts, pairs):
        if pairs is not None:
            raise ValueError(f"{path} takes one text per example (MediaPipe"
                             "'s text tasks), not pairs.")
        outputs = runner(texts)
        if info["kind"] == "classifier":
            # Probabilities in; the predictor's contract is logits, whose
            # softmax gives them back.
            return np.log(np.maximum(outputs, 1e-30))
        return outputs

    names = (tuple(info["label_names"]) if info["kind"] == "classifier"
             else None)
    return Predictor(run, info["kind"], names,
                     f"{path} (MediaPipe {'TextClassifier' if names else 'TextEmbedder'}, "
                     f"{info['seq_len']} tokens)", close=runner.close)


def _label_names_of(folder):
    """The label names in a model folder's ``task.json``, or None."""
    if not folder:
        return None
    task = read_json(os.path.join(folder, "task.json")) or {}
    names = task.get("config", {}).get("label_names")
    return None if names is None else tuple(names)


def _preprocessor_of(path, folder, sequence_length):
    """The preprocessor for a token-ids-in export, from its model folder."""
    if folder is None:
        raise ValueError(
            f"{path!r} takes token ids: pass the model folder it was "
            "exported from as the tokenizer (--tokenizer=DIR).")
    config = (read_json(os.path.join(folder, "config.json")) or {}).get(
        "config", {})
    return TrimzooTextClassifierPreprocessor(
        tokenizer_of_folder(folder), sequence_length=sequence_length,
        num_segments=min(int(config.get("num_segments", 2)), 2))


def _outputs_to_kind(outputs, names):
    if "embeddings" in outputs:
        return "embedder", None
    if "logits" in outputs:
        if names is None and outputs["logits"].shape[-1] > 1:
            names = tuple(str(i) for i in range(outputs["logits"].shape[-1]))
        return "classifier", names
    raise ValueError(f"The export has outputs {sorted(outputs)}; expected "
                     "'logits' (a classifier) or 'embeddings'.")


def check_export_gate(path, force=False):
    """Refuses an export that failed its parity gate: its entry in the
    ``export_report.json`` beside it says ``passed: false`` (or the file
    was set aside as ``*.failed.tflite``), unless ``force``.

    Raises:
        ValueError: naming the failed checks and ``--force``.
    """
    name = os.path.basename(os.path.normpath(path))
    report = read_json(os.path.join(os.path.dirname(os.path.abspath(path)),
                                    "export_report.json")) or {}
    entry = next((e for e in report.get("exports") or []
                  if e.get("path") == name), None)
    parity = (entry or {}).get("parity") or {}
    failed = parity.get("passed") is False or name.endswith(".failed.tflite")
    if not failed:
        return
    checks = ", ".join(
        f"{c['metric']} {c['value']:.4g} (limit {c['limit']})"
        for c in parity.get("checks") or [] if not c.get("passed")
        and isinstance(c.get("value"), (int, float)))
    message = (f"{path} FAILED the export parity gate"
               + (f" ({checks})" if checks else "")
               + ": its outputs differ from the Keras model's beyond the "
               "limits (export_report.json beside it).")
    if not force:
        raise ValueError(message + " Use another export, or pass --force "
                         "(force=True) to use it anyway.")
    log.warning("%s Used anyway (--force).", message)


def _export_predictor(path, tokenizer, sequence_length, force=False):
    check_export_gate(path, force)
    if path.endswith(".tflite"):
        info = read_app_file(path)
        if info is not None:
            return _app_file_predictor(path, info, tokenizer)
    report, _ = _export_report(path)
    if tokenizer is not None:
        check_vocabulary(tokenizer_of_folder(tokenizer),
                         report.get("tokenizer"),
                         "the export was made with (export_report.json)",
                         tokenizer)
    folder = tokenizer or _export_source(path)
    label_names = (report.get("tokenizer") or {}).get("label_names")
    label_names = (tuple(label_names) if label_names
                   else _label_names_of(folder))
    text_in, fixed = False, None
    if path.endswith(".tflite"):
        runner = TFLiteRunner(path)
        fixed = runner.seq_len

        def call(x):
            return runner({k: np.asarray(v) for k, v in x.items()})
    else:
        import tensorflow_text  # noqa: F401  (the text-in graph's ops)

        fn = tf.saved_model.load(path).signatures[SIGNATURE]
        text_in = "text" in fn.structured_input_signature[1]

        def call(x):
            if text_in:
                return {k: v.numpy() for k, v in fn(text=tf.constant(
                    x)).items()}
            return {k: v.numpy() for k, v in fn(**{
                k: tf.constant(v, tf.int32) for k, v in x.items()}).items()}

    if text_in:
        def encode(texts, pairs):
            if pairs is not None:
                raise ValueError("This text-in SavedModel takes one text per "
                                 "example, not pairs.")
            return texts
    else:
        preprocessor = _preprocessor_of(path, folder,
                                        fixed or sequence_length)

        def encode(texts, pairs):
            x = (preprocessor(texts) if pairs is None
                 else preprocessor(x=(texts, pairs)))
            x = {k: np.asarray(v) for k, v in x.items()}
            if fixed:  # A fixed-length model: pad to its length.
                pad = fixed - x["token_ids"].shape[1]
                values = {"token_ids": preprocessor.special_ids["pad"]}
                x = {k: np.pad(v, [(0, 0), (0, pad)],
                               constant_values=values.get(k, 0))
                     for k, v in x.items()}
            return x

    kind, names = _outputs_to_kind(call(encode(["probe"], None)),
                                   label_names)
    key = "embeddings" if kind == "embedder" else "logits"
    return Predictor(lambda texts, pairs: call(encode(texts, pairs))[key],
                     kind, names, path)


def load_predictor(path, tokenizer=None, batch_size=32, sequence_length=128,
                   force=False, precision="float32"):
    """A :class:`Predictor` for a model folder (fine-tuned classifier,
    embedder, or any backbone/checkpoint folder: mean-pooled embeddings), a
    SavedModel folder or a ``.tflite`` file.

    Args:
        path: str. The model.
        tokenizer: str or None. For token-ids-in exports: the model folder
            they were made from (its tokenizer and label names); None:
            the folder named in the ``export_report.json`` beside the
            export.
        batch_size: int. Defaults to 32.
        sequence_length: int. Token budget of ids-in exports. Defaults to
            128.
        force: bool. Use an export whose parity gate failed
            (``export_report.json``). Defaults to False.
        precision: str. What a model folder computes in
            (``trimzoo.models.precision``): ``"float32"``, ``"bfloat16"``
            (the same float32 weights; probabilities still float32) or
            ``"auto"`` (bfloat16 only where this CPU has bfloat16 units and
            it measures faster). The predictor's ``precision`` says which
            ran. An export computes as it was exported: anything but
            ``"float32"`` is refused there. Defaults to ``"float32"``.

    Raises:
        FileNotFoundError: no such model, or a model folder without a
            tokenizer.
        ValueError: an unknown precision, or one other than float32 for a
            SavedModel or ``.tflite`` file.
    """
    path = os.fspath(path)
    check_precision(precision)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No such model: {path!r}.")
    if path.endswith(".tflite") or os.path.exists(
            os.path.join(path, "saved_model.pb")):
        if precision != "float32":
            what = ("a .tflite file" if path.endswith(".tflite")
                    else "a SavedModel")
            raise ValueError(
                f"precision={precision!r} applies to model folders only; "
                f"{path!r} is {what}, which computes in the precision it was "
                "exported in (tools/export.py formats). Use "
                "precision='float32' with it, or the model folder it was "
                "exported from.")
        return _export_predictor(path, tokenizer, sequence_length, force)
    if not os.path.isdir(path):
        raise ValueError(f"{path!r} is neither a model folder, a SavedModel "
                         "folder nor a .tflite file.")
    return _model_folder_predictor(path, batch_size, precision)


# --- Reading ------------------------------------------------------------------

def _format(path, table, what):
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext not in table:
        raise ValueError(f"Cannot tell the {what} format of {path!r}: use "
                         f"one of {sorted(table)}.")
    return table[ext]


def _check_text(value, column, path, line):
    if value is None:
        raise DataError(path, line, f"no value in column {column!r}.")
    if not isinstance(value, str):
        raise DataError(path, line,
                        f"column {column!r} is {value!r:.40}, not text.")
    if not value.strip():
        raise DataError(path, line, f"empty text in column {column!r}.")
    return value


def read_rows(path, text_column="text", text_pair_column=None,
              label_column=None, id_column=None):
    """Streams ``(line, texts, label, row_id)`` from a CSV, TSV, JSONL or
    TXT file (one text per line; no columns) read by
    :func:`trimzoo.data.files.read_records` (a byte-order mark is
    dropped), or ``(line, DataError, None, None)`` for a bad row: not
    UTF-8, empty text, missing value or invalid JSON. A file that cannot be
    read at all, or whose header lacks a column, raises
    :class:`~trimzoo.data.DataError`. ``row_id`` is the value of
    ``id_column`` (None without one).

    Examples:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "in.csv")
    >>> with open(path, "wb") as f:
    ...     _ = f.write(b"text,label\\ngood,1\\n,0\\nbad \\xff,0\\n")
    >>> for line, texts, label, _ in read_rows(path, label_column="label"):
    ...     print(line, texts if label is not None else texts.message)
    2 ('good',)
    3 empty text in column 'text'.
    4 not UTF-8 text (undecodable bytes) in column 'text'.
    """
    _format(path, INPUT_FORMATS, "input")
    texts = [text_column] + ([text_pair_column] if text_pair_column else [])
    extra = [c for c in (label_column, id_column) if c and c not in texts]
    records = read_records(path, texts + extra, errors="yield")
    for line, record in records:
        if isinstance(record, DataError):
            yield line, record, None, None
            continue
        try:
            values = tuple(_check_text(record[c], c, path, line)
                           for c in texts)
        except DataError as err:
            yield line, err, None, None
            continue
        yield (line, values, record.get(label_column) if label_column
               else None, record.get(id_column) if id_column else None)


# --- Writing -------------------------------------------------------------------

def check_output(input_path, output_path, overwrite=False):
    """Refuses an output that would destroy something: the input file
    itself (compared as real paths, so links and ``./`` count), an existing
    file without ``overwrite``, a folder.

    Examples:
    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> path = os.path.join(folder, "in.csv")
    >>> _ = open(path, "w").write("text\\nhello\\n")
    >>> check_output(path, os.path.join(folder, ".", "in.csv"))
    Traceback (most recent call last):
    ...
    ValueError: The output .../in.csv is the input file; write to another file.
    >>> check_output(path, os.path.join(folder, "out.csv"))
    """
    input_path, output_path = os.fspath(input_path), os.fspath(output_path)
    if os.path.realpath(input_path) == os.path.realpath(output_path):
        raise ValueError(f"The output {output_path} is the input file; "
                         "write to another file.")
    if os.path.isdir(output_path):
        raise IsADirectoryError(f"The output {output_path} is a folder; "
                                "name a file.")
    if os.path.exists(output_path) and not overwrite:
        raise FileExistsError(f"The output {output_path} exists; pass "
                              "--overwrite (overwrite=True) to replace it.")


class _Writer:
    """Streams predictions to CSV / JSONL, or embeddings to ``.npy``, at
    ``path`` (a temporary name; the caller renames it when complete)."""

    def __init__(self, path, fmt, predictor, key_columns):
        self.fmt, self.predictor = fmt, predictor
        self.key_columns = list(key_columns)
        self.path, self.count, self.dim = path, 0, None
        if self.fmt == "npy":
            # Rows go to a raw file first; the .npy header (which holds the
            # row count) is written once the count is known.
            self.raw = open(path + ".rows", "wb")
            return
        self.file = open(path, "w", encoding="utf-8", newline="")
        if self.fmt == "csv":
            self.csv = csv.writer(self.file)
            self.csv.writerow(self._columns())

    def _columns(self):
        names = self.predictor.label_names
        if names is None:
            return ["row", *self.key_columns, "score"]
        return (["row", *self.key_columns, "label", "probability"]
                + [f"p_{n}" for n in names])

    def write(self, rows, keys, outputs):
        if self.fmt == "npy":
            self.dim = outputs.shape[1]
            self.raw.write(np.ascontiguousarray(outputs, "<f4").tobytes())
            self.count += len(rows)
            return
        names = self.predictor.label_names
        probs = None if names is None else _softmax(outputs)
        for i, row in enumerate(rows):
            if names is None:
                values = [float(outputs[i, 0])]
            else:
                best = int(np.argmax(probs[i]))
                values = [names[best], float(probs[i, best])] + [
                    float(p) for p in probs[i]]
            values = [row, *keys[i], *values]
            if self.fmt == "csv":
                self.csv.writerow([f"{v:.6g}" if isinstance(v, float) else v
                                   for v in values])
            else:
                self.file.write(json.dumps(dict(zip(self._columns(), values)),
                                           ensure_ascii=False) + "\n")
        self.count += len(rows)

    def close(self):
        if self.fmt != "npy":
            self.file.close()
            return
        self.raw.close()
        with open(self.path, "wb") as out, open(self.raw.name, "rb") as raw:
            np.lib.format.write_array_header_1_0(out, {
                "descr": "<f4", "fortran_order": False,
                "shape": (self.count, self.dim or 0)})
            shutil.copyfileobj(raw, out)
        os.unlink(self.raw.name)


def predict_file(predictor, input_path, output_path, *, text_column="text",
                 text_pair_column=None, label_column=None, id_column=None,
                 evaluate=False, skip_bad_rows=False, batch_size=32,
                 overwrite=False, progress=True, log=sys.stderr):
    """Runs ``predictor`` over ``input_path`` and writes ``output_path``.

    The output is written under a temporary name beside ``output_path``
    and renamed when complete: a failed or killed run leaves an earlier
    output as it was and never a partial file under the output's name.

    Args:
        predictor: :class:`Predictor`.
        input_path: str. ``.csv``, ``.tsv``, ``.jsonl`` or ``.txt``.
        output_path: str. ``.csv`` or ``.jsonl`` (classifiers: one row per
            input row, in input order: ``row``, the 1-based position of
            the input row, header excluded; the text (``text_column``,
            and ``text_pair_column``) or the ``id_column``; the label name,
            its probability and every class probability; regression: the
            score) or ``.npy`` (embedders: ``[rows, dim]`` float32).
            Never the input file.
        text_column, text_pair_column: str. Columns (JSON keys) of the text
            and of the second text of a pair.
        label_column: str or None. Labels, for ``evaluate``.
        id_column: str or None. A column written instead of the text.
        evaluate: bool. Return the metrics of the predictions against the
            labels (``trimzoo.data.compute_metrics``).
        skip_bad_rows: bool. Report each bad row on ``log`` and go on;
            False: raise its ``DataError``.
        batch_size: int. Rows per model call. Defaults to 32.
        overwrite: bool. Replace an existing output. Defaults to False.
        progress: bool. Show a progress bar. Defaults to True.

    Returns:
        dict: ``rows`` written, ``skipped`` (list of ``"line N: reason"``,
        N the file's line) and, with ``evaluate``, ``metrics``.

    Raises:
        FileExistsError: the output exists and ``overwrite`` is False.
        ValueError: the output is the input; an unknown format.
        DataError: a bad row (without ``skip_bad_rows``), a bad file.
    """
    if evaluate and (not label_column or predictor.kind != "classifier"):
        raise ValueError("evaluate needs a classifier and a label_column.")
    _format(input_path, INPUT_FORMATS, "input")
    fmt = _format(output_path, OUTPUT_FORMATS, "output")
    if (fmt == "npy") != (predictor.kind == "embedder"):
        raise ValueError(
            "Write embeddings to a .npy file and classifier outputs to "
            f".csv or .jsonl; got {output_path!r} for a {predictor.kind}.")
    check_output(input_path, output_path, overwrite)
    key_columns = ([id_column] if id_column else
                   [text_column] + ([text_pair_column] if text_pair_column
                                    else []))
    clash = {"row", "label", "probability", "score"}.intersection(
        key_columns)
    if clash and fmt != "npy":
        raise ValueError(f"The output already has a column {sorted(clash)}; "
                         "name another column with --id_column.")
    names = predictor.label_names
    read_label = LabelReader(input_path, names)
    labels, predictions, skipped = [], [], []
    batch = []

    with atomic_path(output_path) as tmp:
        writer = _Writer(tmp, fmt, predictor, key_columns)

        def flush():
            texts = [t[0] for _, t, _ in batch]
            pairs = [t[1] for _, t, _ in batch] if text_pair_column else None
            outputs = predictor(texts, pairs)
            writer.write([row for row, _, _ in batch],
                         [key for _, _, key in batch], outputs)
            if evaluate:
                predictions.extend(outputs[:, 0] if names is None
                                   else np.argmax(outputs, axis=-1))
            batch.clear()

        try:
            rows = read_rows(input_path, text_column, text_pair_column,
                             label_column if evaluate else None, id_column)
            for row, (line, texts, label, row_id) in enumerate(tqdm.tqdm(
                    rows, unit=" rows", disable=not progress, file=log),
                    start=1):
                try:
                    if isinstance(texts, DataError):
                        raise texts
                    if evaluate:
                        label = read_label(label, line)
                except DataError as err:
                    if not skip_bad_rows:
                        raise
                    skipped.append(f"line {line}: {err.message}")
                    print(f"skipped {err}", file=log)
                    continue
                labels.append(label)
                key = (row_id,) if id_column else texts
                batch.append((row, texts, key))
                if len(batch) == batch_size:
                    flush()
            if batch:
                flush()
        finally:
            writer.close()
        if writer.count == 0:
            raise DataError(input_path, None, "no rows to predict (all "
                            f"{len(skipped)} skipped)." if skipped else
                            "no rows to predict.")
    result = {"rows": writer.count, "skipped": skipped}
    if evaluate:
        spec = files_task([text_column] + ([text_pair_column]
                                           if text_pair_column else []),
                          names)
        result["metrics"] = compute_metrics(spec, np.asarray(labels),
                                            np.asarray(predictions))
    return result
