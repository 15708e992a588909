"""Files an app runs as is: a ``.tflite`` that carries MediaPipe task
metadata, so that MediaPipe Tasks (``TextClassifier`` / ``TextEmbedder``,
on Android, iOS, the web and Python) runs it on raw strings.

What such a file holds (written by MediaPipe's own metadata writers):

- the model with fixed ``[1, seq_len]`` int32 inputs (``token_ids``,
  ``padding_mask``, ``segment_ids``, their roles recorded) and ONE output:
  the class probabilities (classifiers; the label names attached as
  ``labels.txt``) or the mean-pooled, L2-normalised embedding (backbones and
  embedders);
- the WordPiece vocabulary (``vocab.txt``) as the BERT tokenizer's file;
- a model description whose last line is a JSON object with the tokenizer
  settings (lower-casing, accent stripping, length), the vocabulary's size
  and SHA-256, the label names and the trimzoo version.

MediaPipe's BERT tokenizer lower-cases ASCII letters only and neither strips
accents nor drops control or zero-width characters, so texts with those
tokenise differently from the reference WordPiece: :func:`token_differences`
counts them (with a probe file that returns the token ids MediaPipe feeds the
model). What it cannot run at all is refused by :func:`refusal` with one
line: byte-level BPE vocabularies (Bort, RoBERTa), cased WordPiece and
sentence-pair classifiers.
"""

import hashlib
import json
import os
import sys
import tempfile
import time
import types
import unicodedata

import numpy as np
import tensorflow as tf

from trimzoo.models.backbone import INPUT_NAMES
from trimzoo.export.saved_model import _save, call_model, model_kind
from trimzoo.export.tflite import convert_file

#: Tensor names of the three inputs in a converted file (MediaPipe's writer
#: finds each role by name).
IDS_NAME, MASK_NAME, SEGMENT_NAME = (f"serving_default_{name}:0" for name in
                                     ("token_ids", "padding_mask",
                                      "segment_ids"))
#: quantize mode -> file-name suffix.
VARIANTS = {"none": "float32", "float16": "float16",
            "dynamic": "dynamic_int8", "int8": "int8"}
#: Fixed length of app files when the export sets none (MediaPipe's BERT
#: models use 128).
DEFAULT_APP_SEQ_LEN = 128
#: Line before the JSON settings in the model description.
_SETTINGS_MARK = "trimzoo settings: "


def app_file_name(kind, mode):
    """``text_classifier_<variant>.tflite`` or ``text_embedder_...``.

    >>> app_file_name("classifier", "dynamic")
    'text_classifier_dynamic_int8.tflite'
    >>> app_file_name("backbone", "none")
    'text_embedder_float32.tflite'
    """
    task = "classifier" if kind == "classifier" else "embedder"
    return f"text_{task}_{VARIANTS[mode]}.tflite"


#: Every app file name an export may write.
APP_FILE_NAMES = tuple(app_file_name(kind, mode)
                       for kind in ("classifier", "backbone")
                       for mode in VARIANTS)


# --- The vocabulary's identity ----------------------------------------------

def vocabulary_of(tokenizer):
    """The tokenizer's vocabulary, a list of str in id order."""
    return [str(token) for token in tokenizer.get_vocabulary()]


def vocabulary_fingerprint(vocabulary):
    """``{"size", "sha256"}`` of a vocabulary (list of tokens in id order,
    hashed as the ``vocab.txt`` it is written as).

    >>> vocabulary_fingerprint(["[PAD]", "a"])["size"]
    2
    """
    text = "".join(token + "\n" for token in vocabulary)
    return {"size": len(vocabulary),
            "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest()}


def tokenizer_settings(tokenizer):
    """What the app file's tokenizer must reproduce: ``{"kind",
    "lowercase", "strip_accents"}`` plus the vocabulary fingerprint."""
    wordpiece = hasattr(tokenizer, "do_lower_case")
    settings = {
        "kind": "wordpiece" if wordpiece else type(tokenizer).__name__,
        "lowercase": bool(getattr(tokenizer, "do_lower_case",
                                  getattr(tokenizer, "lowercase", False))),
        "strip_accents": bool(getattr(tokenizer, "do_strip_accents", False)),
    }
    settings.update({f"vocabulary_{k}": v for k, v in
                     vocabulary_fingerprint(vocabulary_of(tokenizer)).items()})
    return settings


# --- What MediaPipe cannot run ----------------------------------------------

def refusal(model_kind, tokenizer, num_classes=None, pairs=False):
    """Why MediaPipe's text tasks cannot run this model, in one line; None
    when they can.

    Args:
        model_kind: str. ``"classifier"`` or ``"backbone"``.
        tokenizer: the model's tokenizer or None.
        num_classes: int or None. Classes of a classifier (1: regression).
        pairs: bool. The classifier was trained on pairs of texts.

    >>> refusal("classifier", None)
    'no tokenizer: the file must carry the vocabulary'
    """
    if tokenizer is None:
        return "no tokenizer: the file must carry the vocabulary"
    if not hasattr(tokenizer, "do_lower_case"):
        return (f"its tokenizer ({type(tokenizer).__name__}) is not WordPiece"
                " (byte-level BPE, as Bort's): MediaPipe's text tasks "
                "tokenise with WordPiece or SentencePiece only")
    if not tokenizer.do_lower_case:
        return ("its WordPiece vocabulary is cased: MediaPipe's BERT "
                "tokenizer lower-cases every text")
    if pairs:
        return ("it classifies pairs of texts: MediaPipe's TextClassifier "
                "takes one text")
    if model_kind == "classifier" and (num_classes or 0) < 2:
        return ("it is a regression head: MediaPipe's TextClassifier needs "
                "two or more labelled classes")
    return None


# --- The model with one output ------------------------------------------------

def app_outputs(model, token_ids, segment_ids, padding_mask):
    """The single output of the app file: a classifier's probabilities, or
    a backbone's mean-pooled (over real tokens), L2-normalised sequence
    output (as ``TrimzooTextEmbedder``)."""
    outputs = call_model(model, token_ids, segment_ids, padding_mask)
    if model_kind(model) == "classifier":
        return outputs["probabilities"]
    mask = tf.cast(padding_mask, outputs["sequence_output"].dtype)[..., None]
    pooled = (tf.reduce_sum(outputs["sequence_output"] * mask, axis=1)
              / tf.maximum(tf.reduce_sum(mask, axis=1), 1.0))
    return tf.math.l2_normalize(tf.cast(pooled, tf.float32), axis=-1)


def app_saved_model(model, seq_len, folder):
    """``folder/app_{seq_len}``: a SavedModel of ``model`` with inputs
    ``[1, seq_len]`` and the one output of :func:`app_outputs`, written once
    and reused."""
    path = os.path.join(folder, f"app_{seq_len}")
    if os.path.exists(path):
        return path
    signature = [tf.TensorSpec([1, seq_len], tf.int32, name=name)
                 for name in INPUT_NAMES]

    @tf.function(input_signature=signature)
    def serve(token_ids, segment_ids, padding_mask):
        return {"output": app_outputs(model, token_ids, segment_ids,
                                      padding_mask)}

    _save(path, serve, model)
    return path


# --- Writing the metadata -----------------------------------------------------

def metadata_writers():
    """MediaPipe's ``metadata_writer`` module.

    mediapipe 1.2.x (1.2.2, 1.2.3) ships ``metadata.py`` importing
    ``mediapipe.tasks.cc.metadata.python._pywrap_metadata_version``, a
    native module the wheel lacks; the writer uses it only to compute the
    metadata's minimum parser version. Where it is missing, a stand-in
    answers "1.1.0": the version of the newest schema feature these files
    use (the BERT tokenizer's input process unit; labels and vocabulary
    files are older), so every parser that can run the file accepts it.
    """
    name = "mediapipe.tasks.cc.metadata.python"
    try:
        __import__(name + "._pywrap_metadata_version")
    except ImportError:
        version = types.ModuleType(name + "._pywrap_metadata_version")
        version.GetMinimumMetadataParserVersion = lambda buffer: "1.1.0"
        package = sys.modules.get(name) or types.ModuleType(name)
        package._pywrap_metadata_version = version
        sys.modules.setdefault(name, package)
        sys.modules[version.__name__] = version
    from mediapipe.tasks.python.metadata.metadata_writers import (
        metadata_writer,
    )

    return metadata_writer


def add_metadata(flatbuffer, kind, vocabulary, label_names=None,
                 settings=None):
    """The ``.tflite`` bytes with MediaPipe task metadata (see the module
    docstring).

    Args:
        flatbuffer: bytes. A converted file with the three int32 inputs
            and one output.
        kind: str. ``"classifier"`` (TextClassifier, needs
            ``label_names``) or anything else (TextEmbedder).
        vocabulary: list of str, the WordPiece vocabulary in id order.
        label_names: list of str or None.
        settings: dict or None. Written as JSON on the description's last
            line.

    Returns:
        bytes.
    """
    writers = metadata_writers()
    with tempfile.TemporaryDirectory(prefix="trimzoo_app_") as tmp:
        vocab_path = os.path.join(tmp, "vocab.txt")
        with open(vocab_path, "w", encoding="utf-8") as f:
            f.write("".join(token + "\n" for token in vocabulary))
        classifier = kind == "classifier"
        description = (
            ("Classifies a text into " + ", ".join(label_names) + "."
             if classifier else
             "Embeds a text: mean-pooled, L2-normalised encoder output.")
            + "\n" + _SETTINGS_MARK + json.dumps(settings or {},
                                                 ensure_ascii=False))
        writer = writers.MetadataWriter(bytearray(flatbuffer))
        writer.add_general_info(
            "TextClassifier" if classifier else "TextEmbedder", description)
        writer.add_bert_text_input(writers.BertTokenizer(vocab_path),
                                   IDS_NAME, MASK_NAME, SEGMENT_NAME)
        if classifier:
            writer.add_classification_output(
                writers.Labels().add(list(label_names)), name="probabilities")
        else:
            writer.add_feature_output(name="embedding")
        buffer, _ = writer.populate()
        # Its __del__ removes its own temporary folder: run it now, not at
        # interpreter exit (where it fails).
        del writer
    return bytes(buffer)


def read_app_file(path):
    """What an app file carries, or None for a file without MediaPipe
    metadata: ``{"kind", "label_names", "vocabulary", "settings",
    "seq_len"}``."""
    metadata_writers()  # The same stand-in, if needed, first.
    from mediapipe.tasks.python.metadata import metadata

    with open(path, "rb") as f:
        buffer = f.read()
    try:
        displayer = metadata.MetadataDisplayer.with_model_buffer(buffer)
    except ValueError:
        return None
    files = displayer.get_packed_associated_file_list()
    if "vocab.txt" not in files:
        return None
    info = json.loads(displayer.get_metadata_json())
    description = info.get("description", "")
    settings = {}
    if _SETTINGS_MARK in description:
        settings = json.loads(description.split(_SETTINGS_MARK, 1)[1])
    vocabulary = displayer.get_associated_file_buffer("vocab.txt").decode(
        "utf-8").splitlines()
    labels = None
    if "labels.txt" in files:
        labels = displayer.get_associated_file_buffer("labels.txt").decode(
            "utf-8").splitlines()
    from ai_edge_litert.interpreter import Interpreter

    inputs = Interpreter(model_content=buffer).get_input_details()
    return {"kind": "classifier" if labels else "embedder",
            "label_names": labels, "vocabulary": vocabulary,
            "settings": settings, "seq_len": int(inputs[0]["shape"][1])}


# --- Running it as an app does ------------------------------------------------

class MediaPipeRunner:
    """Runs an app file with MediaPipe Tasks' Python API on strings.

    Call it with a list of texts: a classifier returns the probabilities
    ``[n, num_classes]`` (in label order), an embedder the embeddings
    ``[n, dim]``.

    Args:
        path: str. The ``.tflite`` file with metadata.
        kind: str. ``"classifier"`` or ``"embedder"``.
    """

    def __init__(self, path, kind):
        from mediapipe.tasks.python.core import base_options

        options = base_options.BaseOptions(model_asset_path=os.fspath(path))
        self.kind = kind
        if kind == "classifier":
            from mediapipe.tasks.python.text import text_classifier as tc

            self.task = tc.TextClassifier.create_from_options(
                tc.TextClassifierOptions(base_options=options,
                                         max_results=-1))
        else:
            from mediapipe.tasks.python.text import text_embedder as te

            self.task = te.TextEmbedder.create_from_options(
                te.TextEmbedderOptions(base_options=options,
                                       l2_normalize=False, quantize=False))

    def one(self, text):
        """The output for one text (a 1-D array)."""
        if self.kind == "classifier":
            categories = self.task.classify(text).classifications[
                0].categories
            out = np.zeros(len(categories), "float32")
            for category in categories:
                out[category.index] = category.score
            return out
        return np.asarray(self.task.embed(text).embeddings[0].embedding,
                          "float32")

    def __call__(self, texts):
        return np.stack([self.one(text) for text in texts])

    def latency_ms(self, texts, repeats=3):
        """Median milliseconds per text over ``texts`` (batch 1,
        tokenisation included), the best of ``repeats`` passes."""
        best = []
        for _ in range(repeats):
            times = []
            for text in texts:
                start = time.perf_counter()
                self.one(text)
                times.append(time.perf_counter() - start)
            best.append(float(np.median(times)))
        return 1e3 * min(best)

    def close(self):
        """Shuts the task down (idempotent). Call it when done: the task's
        own ``__del__`` at interpreter exit finds its thread pool gone."""
        self.task.close()


# --- Where MediaPipe tokenises differently -------------------------------------

def probe_flatbuffer(seq_len, folder, isolate=False):
    """A tiny ``.tflite`` whose one float output is ``4 * token_ids + 2 *
    padding_mask + segment_ids``: with metadata, MediaPipe's TextEmbedder
    returns the inputs its tokenizer made."""
    path = os.path.join(folder, f"probe_{seq_len}")
    signature = [tf.TensorSpec([1, seq_len], tf.int32, name=name)
                 for name in INPUT_NAMES]

    # Plain tensor ops: no autograph, which re-reads the source file (a
    # file edited since the import would be parsed at the wrong lines).
    @tf.function(input_signature=signature, autograph=False)
    def serve(token_ids, segment_ids, padding_mask):
        return {"ids": tf.cast(4 * token_ids + 2 * padding_mask
                               + segment_ids, tf.float32)}

    tf.saved_model.save(tf.Module(), path,
                        signatures={"serving_default": serve})
    return convert_file(path, "none", isolate=isolate)


def _category(text):
    """Which kind of character a text has that MediaPipe's tokenizer
    treats differently, or "other".

    >>> _category("Na\u00efve"), _category("a\u200bb"), _category("\uc11c")
    ('accented letters', 'control or zero-width characters', 'Hangul syllables')"""
    if any(unicodedata.category(c) in ("Cc", "Cf") and c not in "\t\n\r"
           for c in text):
        return "control or zero-width characters"
    if any(ord(c) > 127 and unicodedata.category(c).startswith("L")
           and unicodedata.decomposition(c) for c in text):
        return "accented letters"
    if any("\uac00" <= c <= "\ud7a3" for c in text):
        # The reference's accent stripping (NFD) splits them into jamo.
        return "Hangul syllables"
    if any(ord(c) > 127 and c.isupper() for c in text):
        return "non-ASCII capitals"
    return "other"


def token_differences(texts, token_ids, tokenizer, seq_len, folder,
                      isolate=False, examples=5):
    """Counts the texts whose token ids MediaPipe's tokenizer makes differ
    from ours.

    Args:
        texts: list of str.
        token_ids: int array ``[len(texts), seq_len]``, ours (padded).
        tokenizer: the WordPiece tokenizer (its vocabulary goes into the
            probe).
        seq_len: int.
        folder: str. A scratch folder.
        isolate: bool. Convert the probe in a fresh process.
        examples: int. How many differing texts to quote.

    Returns:
        dict ``{"texts", "differ", "by_cause": {cause: count}, "examples":
        [{"text", "ours", "mediapipe"}]}``.
    """
    flatbuffer = add_metadata(probe_flatbuffer(seq_len, folder, isolate),
                              "embedder", vocabulary_of(tokenizer))
    path = os.path.join(folder, f"probe_{seq_len}.tflite")
    with open(path, "wb") as f:
        f.write(flatbuffer)
    runner = MediaPipeRunner(path, "embedder")
    try:
        differ, by_cause, quoted, same = 0, {}, [], []
        for text, ours in zip(texts, np.asarray(token_ids)):
            theirs = (runner.one(text).astype(np.int64) // 4)
            ours = np.asarray(ours, np.int64)
            ok = np.array_equal(theirs, ours)
            same.append(ok)
            if ok:
                continue
            differ += 1
            cause = _category(text)
            by_cause[cause] = by_cause.get(cause, 0) + 1
            if len(quoted) < examples:
                quoted.append({"text": text[:200],
                               "ours": [tokenizer.id_to_token(int(i))
                                        for i in ours if i][:24],
                               "mediapipe": [tokenizer.id_to_token(int(i))
                                             for i in theirs if i][:24]})
    finally:
        runner.close()
    return {"texts": len(texts), "differ": differ, "by_cause": by_cause,
            "examples": quoted, "same": same}
