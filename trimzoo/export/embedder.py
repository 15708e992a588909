"""Export of a ``TrimzooTextEmbedder``: a text-in SavedModel (tokenizer
inside the graph) and a token-ids-in TFLite file, both with the output
``embeddings`` ``[batch, hidden_dim]``."""

import os
import tempfile

import tensorflow as tf

from trimzoo.export.saved_model import _save
from trimzoo.export.tflite import convert_file
from trimzoo.models.backbone import INPUT_NAMES
from trimzoo.models.text_embedder import TrimzooTextEmbedder
from trimzoo.utils.io import write_bytes

#: Output name of every embedder export.
OUTPUT = "embeddings"


def _check(embedder):
    if not isinstance(embedder, TrimzooTextEmbedder):
        raise TypeError(
            f"Expected a TrimzooTextEmbedder, got {type(embedder).__name__}.")


def export_embedder_saved_model(embedder, path):
    """Writes a SavedModel whose ``serving_default`` takes a ``tf.string``
    vector ``text`` and returns ``embeddings``; the embedder's preprocessor
    (tokenizer, packing, truncation) runs inside the graph. Load it with
    ``import tensorflow_text`` then ``tf.saved_model.load``.

    Args:
        embedder: ``TrimzooTextEmbedder`` with a preprocessor.
        path: str. Output folder (replaced if it exists).

    Returns:
        str. ``path``.

    Examples:
    >>> import tempfile, numpy as np, tensorflow as tf, trimzoo
    >>> from trimzoo.models import BertWordPieceTokenizer
    >>> vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good"]
    >>> embedder = trimzoo.models.TrimzooTextEmbedder(
    ...     trimzoo.models.bert_tiny(vocabulary_size=6),
    ...     trimzoo.models.TrimzooTextClassifierPreprocessor(
    ...         BertWordPieceTokenizer(vocab), sequence_length=8))
    >>> path = export_embedder_saved_model(embedder, tempfile.mkdtemp())
    >>> serve = tf.saved_model.load(path).signatures["serving_default"]
    >>> out = serve(text=tf.constant(["good", "good good"]))["embeddings"]
    >>> bool(np.allclose(out, embedder.encode(["good", "good good"]),
    ...                  atol=1e-5))
    True
    """
    _check(embedder)
    preprocessor = embedder.preprocessor
    if preprocessor is None:
        raise ValueError("The text-in SavedModel needs the embedder's "
                         "preprocessor; this embedder has none.")

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string,
                                                name="text")])
    def serve(text):
        return {OUTPUT: embedder(preprocessor(text), training=False)}

    _save(path, serve, embedder, resources=preprocessor.tokenizer)
    return os.fspath(path)


def _ids_serving_function(embedder, seq_len=None):
    signature = [tf.TensorSpec([None, seq_len], tf.int32, name=name)
                 for name in INPUT_NAMES]

    @tf.function(input_signature=signature)
    def serve(token_ids, segment_ids, padding_mask):
        inputs = {"token_ids": token_ids, "segment_ids": segment_ids,
                  "padding_mask": padding_mask}
        return {OUTPUT: embedder(inputs, training=False)}

    return serve


def export_embedder_tflite(embedder, path, quantize="none", seq_len=None):
    """Writes a ``.tflite`` file (builtin ops only) whose ``serving_default``
    takes int32 ``token_ids``, ``segment_ids``, ``padding_mask`` ``[batch,
    seq]`` and returns ``embeddings``. Tokenize with the embedder's
    preprocessor (e.g. ``tools/predict.py --tokenizer``).

    Args:
        embedder: ``TrimzooTextEmbedder``.
        path: str. The ``.tflite`` file to write.
        quantize: str. ``"none"``, ``"float16"`` or ``"dynamic"``. Defaults
            to ``"none"``.
        seq_len: int or None. Fixed sequence length; None for dynamic.

    Returns:
        str. ``path``.
    """
    _check(embedder)
    if quantize == "int8":
        raise ValueError("Full-integer export of an embedder is not "
                         "supported; use 'none', 'float16' or 'dynamic'.")
    with tempfile.TemporaryDirectory() as folder:
        saved = os.path.join(folder, "ids")
        _save(saved, _ids_serving_function(embedder, seq_len), embedder)
        flatbuffer = convert_file(saved, quantize)
    write_bytes(path, flatbuffer)
    return os.fspath(path)
