"""One export run: every requested format, the parity gate on each, the
report and (optionally) the benchmark. The library behind
``tools/export.py``.

Output folder::

    saved_model/                  serving_default over token ids
    saved_model_text/             classifiers: strings in (tokenizer inside)
    model_float32.tflite          --quantize=none
    model_float16.tflite          --quantize=float16
    model_dynamic_int8.tflite     --quantize=dynamic
    model_int8.tflite             --quantize=int8
    text_classifier_<variant>.tflite  classifiers: the same variants with
                                  MediaPipe task metadata (vocabulary,
                                  labels; strings in, one probabilities
                                  output), for apps (--app_files)
    text_embedder_<variant>.tflite    backbones: the same for TextEmbedder
    tokenizer/                    the tokenizer of the token-id files
    export_report.json            settings, parity numbers, benchmark,
                                  the vocabulary's size and hash, labels

An export refuses a non-empty output folder unless ``overwrite=True``
(``--overwrite``), which removes these entries (and nothing else) first, so
no file of an earlier export is left beside the new ones.
"""

import dataclasses
import datetime
import logging
import os
import shutil
import tempfile
import time

import trimzoo
from trimzoo.utils.embedded import is_embedded_checkpoint, resolve_checkpoint
from trimzoo.utils.run_folder import check_output_location
from trimzoo.checkpoints.hf import _tokenizer_files
from trimzoo.data.tasks import get_task
from trimzoo.export.data import _encode
from trimzoo.models.backbone import INPUT_NAMES
from trimzoo.utils.io import read_json
from trimzoo.data.model_data import recorded_task, texts_for_model
from trimzoo.export.benchmark import benchmark_formats
from trimzoo.export.data import calibration_data, find_tokenizer, parity_data
from trimzoo.export.converter import FlexOpsError
from trimzoo.export.parity import (
    Thresholds,
    compare,
    failures,
    gate,
    raise_on_failures,
)
from trimzoo.export.saved_model import (
    KerasRunner,
    SavedModelRunner,
    TextSavedModelRunner,
    backbone_of,
    export_saved_model,
    export_text_saved_model,
    load_model,
    model_kind,
    num_classes,
    saved_model_size,
)
from trimzoo.export.tflite import (
    QUANTIZE_MODES,
    TFLITE_FORMATS,
    TFLiteRunner,
    conversion_saved_model,
    convert_file,
    tensor_types,
    tflite_ops,
)
from trimzoo.export.app_file import (
    APP_FILE_NAMES,
    VARIANTS as VARIANT_NAMES,
    MediaPipeRunner,
    add_metadata,
    app_file_name,
    app_outputs,
    app_saved_model,
    refusal,
    token_differences,
    tokenizer_settings,
    vocabulary_of,
)
from trimzoo.utils.io import write_bytes, write_json

log = logging.getLogger("trimzoo")

#: Values of ``formats``.
FORMATS = ("saved_model", "tflite")
#: Name of the report written into the output folder.
REPORT_FILE = "export_report.json"
#: Sequence length of the parity inputs and the benchmark when the export
#: has a dynamic length.
DEFAULT_SEQ_LEN = 128
#: Entries of the output folder that an export writes.
_FILES = tuple(filename for _, filename in TFLITE_FORMATS.values()
               ) + APP_FILE_NAMES
OUTPUT_ENTRIES = ("saved_model", "saved_model_text", "tokenizer",
                  REPORT_FILE) + _FILES + tuple(
    filename[:-len(".tflite")] + ".failed.tflite" for filename in _FILES)


def failed_name(filename):
    """Where a ``.tflite`` file that failed its parity gate is set aside.

    >>> failed_name("model_int8.tflite")
    'model_int8.failed.tflite'
    """
    return filename[:-len(".tflite")] + ".failed.tflite"


def parse_list(value, valid, what):
    """``"a,b"`` (or a list) -> a validated list without repeats.

    Raises:
        ValueError: naming the unknown entries and listing the valid ones.
    """
    items = value.split(",") if isinstance(value, str) else list(value)
    items = [item.strip() for item in items if item and item.strip()]
    unknown = [item for item in items if item not in valid]
    if unknown:
        raise ValueError(
            f"Unknown {what} {unknown}. Valid values: {list(valid)}.")
    if not items:
        raise ValueError(f"No {what} given. Valid values: {list(valid)}.")
    return list(dict.fromkeys(items))


def prepare_output_dir(output_dir, overwrite=False, inputs=()):
    """Creates ``output_dir``, or empties it of an earlier export.

    Args:
        output_dir: str. The export folder.
        overwrite: bool. Allow a non-empty folder: the entries an export
            writes (:data:`OUTPUT_ENTRIES`) are removed, other files kept.
            Defaults to False.
        inputs: sequence of str. The model folder (and other inputs): the
            output is never one of them, holds one or lies inside one, and
            never the current directory (``trimzoo.utils.run_folder``).

    Raises:
        FileExistsError: ``output_dir`` is not empty and ``overwrite`` is
            False.
        NotADirectoryError: ``output_dir`` is a file.

    Examples:
    >>> import os, tempfile
    >>> out = tempfile.mkdtemp()
    >>> _ = open(os.path.join(out, "model_int8.tflite"), "w").write("old")
    >>> _ = open(os.path.join(out, "notes.txt"), "w").write("mine")
    >>> prepare_output_dir(out)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileExistsError: ... is not empty (model_int8.tflite, notes.txt); pass overwrite=True (--overwrite) to replace an earlier export.
    >>> prepare_output_dir(out, overwrite=True)
    >>> os.listdir(out)
    ['notes.txt']
    """
    check_output_location(output_dir, inputs, flag="--output")
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise NotADirectoryError(f"--output {output_dir!r} is a file.")
    existing = sorted(os.listdir(output_dir)) if os.path.isdir(
        output_dir) else []
    if existing and not overwrite:
        raise FileExistsError(
            f"{output_dir!r} is not empty ({', '.join(existing[:6])}"
            f"{', ...' if len(existing) > 6 else ''}); pass overwrite=True "
            "(--overwrite) to replace an earlier export.")
    for name in existing:
        if name in OUTPUT_ENTRIES:
            path = os.path.join(output_dir, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
    os.makedirs(output_dir, exist_ok=True)


def write_report(report, output_dir):
    """Writes ``export_report.json`` (atomically; non-finite numbers as
    ``null``); returns its path."""
    path = os.path.join(output_dir, REPORT_FILE)
    write_json(path, report)
    return path


def _describe_model(model, model_dir):
    backbone = backbone_of(model)
    return {
        "path": os.path.abspath(model_dir) if model_dir else None,
        "kind": model_kind(model),
        "class": type(model).__name__,
        "num_classes": num_classes(model),
        "num_parameters": int(model.count_params()),
        "num_layers": backbone.num_layers,
        "hidden_dim": backbone.hidden_dim,
        "vocabulary_size": backbone.vocabulary_size,
        "max_sequence_length": backbone.max_sequence_length,
        "attention_normalizer": backbone.attention_normalizer,
        "ffn_layers": backbone.ffn_layers,
        "layer_norm": backbone.layer_norm,
    }


def export_model(model, output_dir, formats=FORMATS, quantize=("none",),
                 seq_len=None, benchmark=False, tokenizer=None,
                 thresholds=None, num_examples=None, calibration_samples=128,
                 isolate=False, num_threads=None, check=True,
                 overwrite=False, data=None, text_column="text",
                 label_column=None, app_files=True):
    """Exports a backbone or classifier and runs the parity gate on every
    export.

    Args:
        model: a model folder (see :func:`load_model`) or a Keras backbone /
            classifier.
        output_dir: str. Folder for the exports and ``export_report.json``.
        formats: str (``"saved_model,tflite"``) or list; values in
            :data:`FORMATS`.
        quantize: str or list of TFLite modes: ``"none"`` (float32),
            ``"float16"``, ``"dynamic"``, ``"int8"``.
        seq_len: int or None. Fixed TFLite sequence length (static
            ``[1, seq_len]`` inputs); None for a dynamic length. The
            SavedModel always has a dynamic batch and length.
        benchmark: bool. Also measure size and median latency (batch 1 and
            8) of every format next to the Keras model (float32 and Keras
            ``quantize("int8")``). Defaults to False.
        tokenizer: keras-hub tokenizer, tokenizer folder or None (the model
            folder's, see :func:`trimzoo.export.data.find_tokenizer`).
        thresholds: :class:`Thresholds` or None for the defaults.
        num_examples: int or None. Parity inputs; None: the whole
            validation split for a classifier, 256 texts for a backbone.
        calibration_samples: int. Representative samples for ``"int8"``.
            Defaults to 128.
        isolate: bool. Convert each TFLite model in a subprocess. Defaults
            to False.
        num_threads: int or None. TFLite interpreter threads in the
            benchmark; None times 1 thread and every core (TensorFlow's
            setting) and reports the faster.
        check: bool. Raise :class:`ParityError` if a gate fails (after the
            report is written). Defaults to True.
        overwrite: bool. Export into a non-empty ``output_dir``, replacing
            an earlier export (see :func:`prepare_output_dir`). Defaults to
            False.
        data: str or None. The user's texts for the parity gate and int8
            calibration (``--data``: ``.txt``, or ``.csv``/``.tsv``/
            ``.jsonl`` with ``text_column`` and optional ``label_column``).
            None: the task a fine-tuned folder records (``RUN/config.json``),
            else the embedded Rotten Tomatoes reviews, with a warning unless
            the model is the embedded checkpoint (their labels then count
            only for a classifier with the labels ``rotten``, ``fresh``).
        text_column, label_column: str. Columns of ``data``.
        app_files: bool. Also write, for every TFLite variant that passes
            its gate, the file an app runs as is: MediaPipe task metadata
            (WordPiece vocabulary, labels), strings in, one output
            (``text_classifier_<variant>.tflite``, or
            ``text_embedder_<variant>.tflite`` for a backbone), at
            ``seq_len`` (default 128) tokens, checked in MediaPipe's
            ``TextClassifier`` / ``TextEmbedder`` against the Keras model
            on the gate's texts. What MediaPipe cannot run (byte-level BPE,
            cased WordPiece, pairs of texts, regression) is skipped with
            the reason in the report (``app_files.refused``). Defaults to
            True.

    Returns:
        dict. The report (also written to ``output_dir``).

    Raises:
        ParityError: an export exceeded its parity limits.
        FlexOpsError: the model needs Flex ops for TFLite.
        FileNotFoundError, ValueError: bad paths or options, with the valid
            values.
        FileExistsError: ``output_dir`` is not empty and ``overwrite`` is
            False.
    """
    formats = parse_list(formats, FORMATS, "export formats")
    quantize = parse_list(quantize, QUANTIZE_MODES, "quantize modes")
    model_dir = None
    if isinstance(model, (str, os.PathLike)):
        model_dir = os.fspath(resolve_checkpoint(model))
        log.info("Loading %s", model_dir)
        model = load_model(model_dir)
    kind = model_kind(model)
    texts, calibration_texts = _model_texts(model, model_dir, data,
                                            text_column, label_column)
    backbone = backbone_of(model)
    if seq_len is not None:
        seq_len = int(seq_len)
        if not 1 <= seq_len <= backbone.max_sequence_length:
            raise ValueError(
                f"seq_len must be in [1, {backbone.max_sequence_length}] "
                f"(the model's max_sequence_length), got {seq_len}.")
    thresholds = thresholds or Thresholds()
    output_dir = os.fspath(output_dir)
    prepare_output_dir(output_dir, overwrite, inputs=[model_dir])

    tok, tok_source = find_tokenizer(model, model_dir, tokenizer)
    length = seq_len or min(DEFAULT_SEQ_LEN, backbone.max_sequence_length)
    data = parity_data(model, tok, length, num_examples,
                       tokenizer_source=tok_source, texts=texts)
    log.info("Parity data: %d texts from %s, padded to %d%s",
             data.num_examples, data.source, data.seq_len,
             ", with labels" if data.labels is not None else "")
    reference = KerasRunner(model)
    caches = {True: {}, False: {}}  # Reference outputs, trimmed / padded.
    exports, records, skipped = [], [], []

    def check_export(fmt, runner, trim, batch_size=32):
        start = time.perf_counter()
        metrics = compare(reference, runner, data, batch_size, trim,
                          caches[trim])
        record = gate(fmt, metrics, thresholds)
        records.append(record)
        log.info("  parity %s: max abs diff %.3g%s -> %s (%.1fs)", fmt,
                 metrics["max_abs_diff"],
                 "".join(f", {k} {metrics[k]:.4g}" for k in (
                     "label_agreement", "accuracy_drop_points",
                     "min_mean_cosine") if k in metrics),
                 "ok" if record["passed"] else "FAILED",
                 time.perf_counter() - start)
        return record

    report = {
        "trimzoo_version": trimzoo.__version__,
        "created": datetime.datetime.now(datetime.timezone.utc)
        .isoformat(timespec="seconds"),
        "model": _describe_model(model, model_dir),
        "settings": {
            "formats": formats,
            "quantize": quantize if "tflite" in formats else [],
            "seq_len": seq_len,
            "tflite_input_shape": [1, seq_len] if seq_len else [None, None],
            "thresholds": dataclasses.asdict(thresholds),
        },
        "parity_data": data.describe(),
        "calibration_data": (calibration_texts.source
                             if "int8" in quantize and "tflite" in formats
                             else None),
        "tokenizer": _describe_tokenizer(model, tok, tok_source,
                                         output_dir),
        "exports": exports,
        "skipped": skipped,
    }
    try:
        with tempfile.TemporaryDirectory(prefix="trimzoo_export_") as tmp:
            if "saved_model" in formats:
                exports += _export_saved_models(
                    model, kind, tok, length, output_dir, check_export,
                    skipped)
            tflite_entries = []
            if "tflite" in formats:
                tflite_entries = _export_tflite(
                    model, tok, seq_len, length, quantize, output_dir, tmp,
                    calibration_samples, isolate, check_export, exports,
                    formats, calibration_texts.texts)
            if app_files and "tflite" in formats:
                entries, report["app_files"] = _export_app_files(
                    model, model_dir, tok, length, quantize, output_dir,
                    tmp, calibration_samples, isolate, thresholds, data,
                    tflite_entries, calibration_texts.texts, records)
                exports += entries
            if benchmark:
                try:
                    report["benchmark"], report["keras_int8"] = (
                        benchmark_formats(
                            model, reference, data, seq_len, length,
                            output_dir, exports, tflite_entries, tok,
                            calibration_samples, isolate, tmp, num_threads,
                            thresholds, caches[True],
                            calibration_texts.texts))
                except Exception as err:  # noqa: BLE001
                    # The benchmark measures; the gate's verdict and the
                    # report stand without it.
                    log.warning("The benchmark failed (%s: %s); the exports "
                                "and their parity gate are unaffected.",
                                type(err).__name__, err)
                    report["benchmark_error"] = f"{type(err).__name__}: {err}"
    except FlexOpsError as err:
        # The report still says what was exported and why the rest failed.
        report.update(error=str(err).splitlines()[0], flex_ops=err.ops,
                      failures=failures(records), passed=False)
        write_report(report, output_dir)
        raise
    failed = failures(records)
    report["failures"] = failed
    report["passed"] = not failed
    path = write_report(report, output_dir)
    log.info("Wrote %s", path)
    if check:
        raise_on_failures(records, path)
    return report


def _describe_tokenizer(model, tok, source, output_dir):
    """The report's ``tokenizer`` section: what the token-id files need,
    as copies (the tokenizer is saved into ``output_dir/tokenizer``, so
    the export works once the model folder is gone): the vocabulary's size
    and SHA-256, the tokenizer settings and the label names."""
    names = getattr(model, "label_names", None)
    section = {"label_names": list(names) if names else None,
               "source": source}
    if tok is None:
        return section
    section.update(tokenizer_settings(tok))
    try:
        files = _tokenizer_files(tok)
    except ValueError as err:
        log.warning("The tokenizer is not saved beside the export: %s", err)
        return section
    folder = os.path.join(output_dir, "tokenizer")
    os.makedirs(folder, exist_ok=True)
    for name, text in files.items():
        write_bytes(os.path.join(folder, name), text.encode("utf-8"))
    section["path"] = "tokenizer"
    return section


def _model_texts(model, model_dir, data, text_column, label_column):
    """``(parity texts, calibration texts)`` (``ModelTexts``) for the
    export of ``model`` (see :func:`export_model`'s ``data``)."""
    label_names = getattr(model, "label_names", None)
    chosen = dict(data=data, text_column=text_column,
                  label_column=label_column, label_names=label_names,
                  allow_default=True)
    parity = texts_for_model(model_dir, split="validation", **chosen)
    calibration = texts_for_model(model_dir, split="train", **chosen)
    if data or recorded_task(model_dir) is not None:
        return parity, calibration
    if model_dir is None or not is_embedded_checkpoint(model_dir):
        log.warning(
            "WARNING: no data given (--data) and none recorded for this "
            "model: the parity gate and int8 calibration use the embedded "
            "Rotten Tomatoes MOVIE REVIEWS. Pass --data=FILE (your texts; "
            "--text_column, --label_column) to check on yours.")
    if model_kind(model) == "classifier" and tuple(
            label_names or ()) != tuple(parity.label_names):
        parity.labels = None  # Not this classifier's labels.
    return parity, calibration


def verify(model, path, fmt=None, data=None, thresholds=None, tokenizer=None,
           check=True):
    """Runs the parity gate on an existing export.

    Args:
        model: the Keras model (or its folder) the export was made from.
        path: str. A SavedModel folder or a ``.tflite`` file.
        fmt: str or None. The format name (see
            ``trimzoo.export.parity.PRECISION``); None infers it from the
            file name (``model_dynamic_int8.tflite`` ->
            ``"tflite_dynamic_int8"``) or the folder
            (``saved_model_text`` -> text-in, else ``"saved_model"``).
        data: :class:`trimzoo.export.data.ParityData` or None to build it
            as :func:`export_model` does.
        thresholds: :class:`Thresholds` or None.
        tokenizer: as in :func:`export_model`.
        check: bool. Raise :class:`ParityError` on failure. Defaults to
            True.

    Returns:
        dict. The gate record.
    """
    model_dir = None
    if isinstance(model, (str, os.PathLike)):
        model_dir = os.fspath(model)
        model = load_model(model_dir)
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No such export: {path!r}.")
    if fmt is None:
        name = os.path.basename(os.path.normpath(path))
        by_file = {file: f for f, file in TFLITE_FORMATS.values()}
        if name.endswith(".tflite"):
            fmt = by_file.get(name, "tflite_float32")
        else:
            fmt = ("saved_model_text" if name == "saved_model_text"
                   else "saved_model")
    if fmt.startswith("tflite"):
        runner = TFLiteRunner(path)
        trim = runner.seq_len is None
        length = runner.seq_len
    else:
        runner = (TextSavedModelRunner(path) if fmt == "saved_model_text"
                  else SavedModelRunner(path))
        trim, length = True, None
    if data is None:
        tok, source = find_tokenizer(model, model_dir, tokenizer)
        length = length or min(DEFAULT_SEQ_LEN,
                               backbone_of(model).max_sequence_length)
        data = parity_data(model, tok, length, tokenizer_source=source)
    record = gate(fmt, compare(KerasRunner(model), runner, data, trim=trim),
                  thresholds)
    if check:
        raise_on_failures([record], None)
    return record


def _export_saved_models(model, kind, tok, length, output_dir, check_export,
                         skipped):
    entries = []
    path = os.path.join(output_dir, "saved_model")
    start = time.perf_counter()
    log.info("Writing SavedModel %s", path)
    export_saved_model(model, path)
    seconds = time.perf_counter() - start
    record = check_export("saved_model", SavedModelRunner(path), trim=True)
    entries.append({"format": "saved_model", "path": "saved_model",
                    "size_bytes": saved_model_size(path),
                    "input_shape": [None, None],
                    "seconds": round(seconds, 2), "parity": record})
    if kind != "classifier":
        return entries
    if tok is None:
        reason = ("no tokenizer for this model (the folder has none and "
                  "its vocabulary is not the embedded one)")
        log.warning("Skipping the text-in SavedModel: %s.", reason)
        skipped.append({"format": "saved_model_text", "reason": reason})
        return entries
    path = os.path.join(output_dir, "saved_model_text")
    start = time.perf_counter()
    log.info("Writing text-in SavedModel %s (tokenizer inside, length %d)",
             path, length)
    export_text_saved_model(model, tok, path, length)
    seconds = time.perf_counter() - start
    record = check_export("saved_model_text", TextSavedModelRunner(path),
                          trim=True)
    entries.append({"format": "saved_model_text", "path": "saved_model_text",
                    "size_bytes": saved_model_size(path),
                    "input_shape": [None], "sequence_length": length,
                    "seconds": round(seconds, 2), "parity": record})
    return entries


def _export_tflite(model, tok, seq_len, length, quantize, output_dir, tmp,
                   calibration_samples, isolate, check_export, exports,
                   formats, calibration_texts=None):
    batch_size = 1 if seq_len else None
    if seq_len is None and "saved_model" in formats:
        source = os.path.join(output_dir, "saved_model")  # Same shapes.
    else:
        source = conversion_saved_model(model, seq_len, batch_size, tmp)
    calibration = None
    if "int8" in quantize:
        calibration = calibration_data(model, tok, length, 1,
                                       calibration_samples,
                                       texts=calibration_texts)
    entries = []
    for mode in quantize:
        fmt, filename = TFLITE_FORMATS[mode]
        path = os.path.join(output_dir, filename)
        log.info("Converting %s (%s)...", filename,
                 f"input [1, {seq_len}]" if seq_len else "dynamic shapes")
        start = time.perf_counter()
        flatbuffer = convert_file(source, mode, calibration, isolate=isolate)
        seconds = time.perf_counter() - start
        write_bytes(path, flatbuffer)
        log.info("  %s: %.2f MB in %.1fs", filename, len(flatbuffer) / 1e6,
                 seconds)
        runner = TFLiteRunner(path)
        record = check_export(fmt, runner, trim=runner.seq_len is None)
        if not record["passed"]:
            # Not left under the name a user would take.
            del runner
            aside = failed_name(filename)
            os.replace(path, os.path.join(output_dir, aside))
            log.warning("  %s FAILED the parity gate: set aside as %s.",
                        filename, aside)
            filename = aside
        entry = {"format": fmt, "quantize": mode, "path": filename,
                 "size_bytes": len(flatbuffer),
                 "input_shape": [batch_size, seq_len],
                 "seconds": round(seconds, 2),
                 "ops": tflite_ops(flatbuffer),
                 "tensor_types": tensor_types(flatbuffer),
                 "parity": record}
        exports.append(entry)
        entries.append(entry)
    return entries


def _pair_task(model_dir):
    """True when the folder's recorded task classifies pairs of texts."""
    record = recorded_task(model_dir)
    if record is None:
        return False
    if record["task"] == "files":
        return bool((record.get("data") or {}).get("text_pair_column"))
    try:
        return len(get_task(record["task"]).text_features) > 1
    except ValueError:
        return False


def _reference_outputs(model, data, batch_size=32):
    """The Keras model's app output (probabilities, or the pooled
    embedding) on the parity inputs."""
    import numpy as np
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def run(token_ids, segment_ids, padding_mask):
        return app_outputs(model, token_ids, segment_ids, padding_mask)

    parts = []
    for start in range(0, data.num_examples, batch_size):
        parts.append(run(**{name: tf.constant(
            data.inputs[name][start:start + batch_size], tf.int32)
            for name in INPUT_NAMES}).numpy())
    return np.concatenate(parts)


def _predict_path_latency_ms(path, tok, model, length, texts):
    """Median ms per text of the token-id file the way
    ``trimzoo.predict`` runs it (our tokenizer, then the interpreter),
    batch 1."""
    import numpy as np

    runner = TFLiteRunner(path)
    times = []
    for text in texts:
        start = time.perf_counter()
        runner(_encode(tok, [text], length))
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def app_metrics(kind, reference, outputs, same, labels=None):
    """Agreement of the app file's outputs with the Keras model's.

    The gate's metrics (``max_abs_diff``, ``label_agreement``, accuracies,
    ``min_mean_cosine``) are measured on the texts MediaPipe tokenises as
    the reference WordPiece does: what the file computes. The same
    measured on every text, tokenisation differences included (what an app
    sees), carry the suffix ``_all_texts``.

    Args:
        kind: ``"classifier"`` or ``"embedder"``.
        reference, outputs: arrays ``[n, k]`` (probabilities, embeddings).
        same: bool array ``[n]``: MediaPipe's token ids equal ours.
        labels: int array or None.

    Returns:
        dict.

    >>> import numpy as np
    >>> m = app_metrics("classifier", np.array([[.9, .1], [.2, .8]]),
    ...                 np.array([[.8, .2], [.6, .4]]),
    ...                 np.array([True, False]))
    >>> round(m["max_abs_diff"], 3), m["label_agreement"]
    (0.1, 1.0)
    >>> m["label_agreement_all_texts"], m["texts_tokenized_alike"]
    (0.5, 1)
    """
    import numpy as np

    reference, outputs = np.asarray(reference), np.asarray(outputs)
    same = np.asarray(same, bool)
    alike = int(np.sum(same))
    if not alike:  # Nothing tokenised alike: judge on every text.
        same = np.ones_like(same)

    def measure(rows):
        ref, out = reference[rows], outputs[rows]
        result = {"max_abs_diff": float(np.abs(ref - out).max())}
        if kind == "classifier":
            ref_labels, exp_labels = ref.argmax(-1), out.argmax(-1)
            result["label_agreement"] = float(np.mean(ref_labels
                                                      == exp_labels))
            if labels is not None:
                truth = np.asarray(labels)[rows]
                ref_acc = float(np.mean(ref_labels == truth))
                exp_acc = float(np.mean(exp_labels == truth))
                result.update(reference_accuracy=ref_acc,
                              export_accuracy=exp_acc,
                              accuracy_drop_points=100.0 * (ref_acc
                                                            - exp_acc))
        else:
            cosine = np.sum(ref * out, -1) / np.maximum(
                np.linalg.norm(ref, axis=-1) * np.linalg.norm(out, axis=-1),
                1e-12)
            result["min_mean_cosine"] = float(np.mean(cosine))
        return result

    metrics = {"texts": int(len(same)),
               "texts_tokenized_alike": alike}
    metrics.update(measure(same))
    metrics.update({f"{k}_all_texts": v for k, v in
                    measure(np.ones_like(same)).items()})
    return metrics


def _export_app_files(model, model_dir, tok, length, quantize, output_dir,
                      tmp, calibration_samples, isolate, thresholds, data,
                      tflite_entries, calibration_texts, records):
    """The app files (MediaPipe metadata) of every TFLite variant whose
    token-id file passed its gate: ``(entries, report section)``."""
    kind = model_kind(model)
    reason = refusal(kind, tok, num_classes(model), _pair_task(model_dir))
    section = {"task": ("TextClassifier" if kind == "classifier"
                        else "TextEmbedder"), "sequence_length": length}
    if reason:
        log.warning("No app files (MediaPipe metadata): %s. The token-id "
                    ".tflite files are written.", reason)
        section["refused"] = reason
        return [], section
    label_names = list(getattr(model, "label_names", None) or [
        str(i) for i in range(num_classes(model) or 0)])
    settings = dict(tokenizer_settings(tok), sequence_length=length,
                    label_names=label_names if kind == "classifier" else None,
                    trimzoo_version=trimzoo.__version__)
    vocabulary = vocabulary_of(tok)
    source = app_saved_model(model, length, tmp)
    passed = {e["quantize"] for e in tflite_entries
              if e["parity"]["passed"]}
    calibration = None
    if "int8" in passed:
        calibration = calibration_data(model, tok, length, 1,
                                       calibration_samples,
                                       texts=calibration_texts)
    reference = _reference_outputs(model, data)
    texts = list(data.texts or [])
    if len(texts) != data.num_examples:
        section["refused"] = "the parity data has no texts to run on"
        return [], section
    start = time.perf_counter()
    tokens = token_differences(texts, data.inputs["token_ids"], tok, length,
                               tmp, isolate)
    same = tokens.pop("same")
    section["token_differences"] = tokens
    log.info("MediaPipe tokenises %d of %d parity texts differently from "
             "the reference WordPiece %s (%.1fs)", tokens["differ"],
             len(texts), tokens["by_cause"], time.perf_counter() - start)
    entries = []
    for mode in quantize:
        if mode not in passed:
            continue
        filename = app_file_name(kind, mode)
        fmt = "mediapipe_" + VARIANT_NAMES[mode]
        path = os.path.join(output_dir, filename)
        start = time.perf_counter()
        flatbuffer = add_metadata(
            convert_file(source, mode, calibration, isolate=isolate),
            "classifier" if kind == "classifier" else "embedder",
            vocabulary, label_names if kind == "classifier" else None,
            settings)
        seconds = time.perf_counter() - start
        write_bytes(path, flatbuffer)
        runner = MediaPipeRunner(path, "classifier" if kind == "classifier"
                                 else "embedder")
        try:
            start = time.perf_counter()
            outputs = runner(texts)
            run_seconds = time.perf_counter() - start
            timed = texts[:64]
            latency = runner.latency_ms(timed)
        finally:
            runner.close()
        metrics = app_metrics(
            "classifier" if kind == "classifier" else "embedder",
            reference, outputs, same, data.labels)
        record = gate(fmt, metrics, thresholds)
        if "label_agreement" in metrics and not any(
                c["metric"] == "label_agreement" for c in record["checks"]):
            ok = metrics["label_agreement"] >= thresholds.min_label_agreement
            record["checks"].append({
                "metric": "label_agreement",
                "value": metrics["label_agreement"],
                "limit": thresholds.min_label_agreement, "kind": "min",
                "passed": bool(ok)})
            record["passed"] = record["passed"] and bool(ok)
        records.append(record)
        plain = next(e for e in tflite_entries if e["quantize"] == mode)
        predict_ms = _predict_path_latency_ms(
            os.path.join(output_dir, plain["path"]), tok, model, length,
            timed)
        log.info("  %s: %.2f MB; MediaPipe %s on %d texts: %s, "
                 "%.2f ms a text (tokenisation included; predict's path "
                 "%.2f ms) -> %s", filename, len(flatbuffer) / 1e6,
                 section["task"], len(texts), ", ".join(
                     f"{k} {metrics[k]:.4g}" for k in (
                         "label_agreement_all_texts", "label_agreement",
                         "max_abs_diff", "accuracy_drop_points",
                         "min_mean_cosine_all_texts")
                     if k in metrics), latency, predict_ms,
                 "ok" if record["passed"] else "FAILED")
        everywhere = metrics.get("label_agreement_all_texts")
        if everywhere is not None and (everywhere
                                       < thresholds.min_label_agreement):
            log.warning(
                "  %s: on all %d texts MediaPipe's labels agree with the "
                "Keras model's on %.2f%% only: its tokenizer reads %d of "
                "them differently (%s; see docs/export.md).", filename,
                len(texts), 100 * everywhere, tokens["differ"],
                ", ".join(tokens["by_cause"]))
        if not record["passed"]:
            aside = failed_name(filename)
            os.replace(path, os.path.join(output_dir, aside))
            log.warning("  %s FAILED the parity gate: set aside as %s.",
                        filename, aside)
            filename = aside
        entries.append({
            "format": fmt, "quantize": mode, "path": filename,
            "size_bytes": len(flatbuffer), "input": "text",
            "input_shape": [1, length], "seconds": round(seconds, 2),
            "run_seconds": round(run_seconds, 2),
            "latency_ms_per_text": {
                "mediapipe_task": round(latency, 3),
                "predict_token_ids_file": round(predict_ms, 3),
                "texts_timed": len(timed), "batch_size": 1,
                "tokenization_included": True},
            "parity": record})
    return entries, section


def app_file_summary(output_dir, quantize="dynamic"):
    """The app file of an export folder as a demo row's fields
    (``app_file``, ``app_mb``, ``app_ms_per_text``, ``app_label_agreement``,
    ``app_predict_ms_per_text``), or ``{}`` without one.

    >>> app_file_summary("/nonexistent")
    {}
    """
    report = read_json(os.path.join(output_dir, REPORT_FILE)) or {}
    entry = next((e for e in report.get("exports") or []
                  if e["format"].startswith("mediapipe_")
                  and e["quantize"] == quantize), None)
    if entry is None:
        return {}
    latency = entry["latency_ms_per_text"]
    return {"app_file": entry["path"], "app_mb": entry["size_bytes"] / 1e6,
            "app_ms_per_text": latency["mediapipe_task"],
            "app_predict_ms_per_text": latency["predict_token_ids_file"],
            "app_label_agreement": entry["parity"]["metrics"].get(
                "label_agreement")}


def app_file_line(row):
    """One report line about a row's app file (see :func:`app_file_summary`).

    >>> print(app_file_line({
    ...     "model": "m", "app_file": "f.tflite", "app_mb": 2.0,
    ...     "app_ms_per_text": 1.5, "app_predict_ms_per_text": 9,
    ...     "app_label_agreement": 0.995}))  # doctest: +ELLIPSIS
    App file of m: f.tflite (2.0 MB, MediaPipe metadata), ... 1.50 ms a text, ... 0.9950 on the validation reviews.
    """
    return (f"App file of {row['model']}: {row['app_file']} "
            f"({row['app_mb']:.1f} MB, MediaPipe metadata), run by MediaPipe's"
            f" TextClassifier on raw text: {row['app_ms_per_text']:.2f} ms a "
            "text, tokenisation included, batch 1 (tools/predict.py's path "
            f"on the token-id file: {row['app_predict_ms_per_text']:.2f} ms);"
            " label agreement with the Keras model "
            f"{row['app_label_agreement']:.4f} on the validation reviews.")


def export_tflite_int8(folder, output, max_seq_length, num_examples=None):
    """Dynamic-int8 TFLite export of the classifier folder ``folder`` into
    ``output`` (replaced); raises if the parity gate (on ``num_examples``
    validation examples, None: all) fails, and prints its numbers.
    Returns the ``.tflite`` path."""
    report = export_model(folder, output, formats="tflite",
                          quantize="dynamic", seq_len=max_seq_length,
                          num_examples=num_examples,
                          overwrite=True)  # The caller's own folder.
    entry = next(e for e in report["exports"] if e["quantize"] == "dynamic")
    metrics = entry["parity"]["metrics"]
    print(f"   parity gate passed: label agreement "
          f"{metrics.get('label_agreement', float('nan')):.4f}, accuracy "
          f"drop {metrics.get('accuracy_drop_points', float('nan')):.2f} "
          "points (validation split)")
    app = app_file_summary(output)
    if app:
        print(f"   app file {app['app_file']} (MediaPipe metadata): "
              f"{app['app_ms_per_text']:.2f} ms a text in MediaPipe's "
              "TextClassifier, label agreement "
              f"{app['app_label_agreement']:.4f}")
    return os.path.join(output, entry["path"])
