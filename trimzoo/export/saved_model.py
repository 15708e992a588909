"""Models in, serving graphs out: loading a model folder, the serving
function, the SavedModel exports and runners for them.

Two SavedModels are written:

- ``export_saved_model``: signature ``serving_default`` over int32
  ``token_ids``, ``segment_ids``, ``padding_mask`` ``[batch, seq]`` (dynamic
  batch and length). Outputs: ``sequence_output`` and ``pooled_output`` for a
  backbone; ``logits`` (and ``probabilities`` for more than one class) for a
  classifier. It holds only TensorFlow ops and variables: load it with
  ``tf.saved_model.load`` without trimzoo (or Keras) installed.
- ``export_text_saved_model`` (classifiers): signature ``serving_default``
  over a ``tf.string`` vector ``text``, with the tokenizer and the
  ``[CLS] text [SEP]`` packing inside the graph. Outputs ``logits``,
  ``probabilities`` and ``label``. Its tokenizer ops come from TensorFlow
  Text: ``import tensorflow_text`` before ``tf.saved_model.load`` (TF Serving
  builds include these ops).
"""

import logging
import os

import keras
import keras_hub
import tensorflow as tf

from trimzoo.checkpoints.folders import load_backbone, load_text_classifier
from trimzoo.models.tokenizers import special_token_ids
from trimzoo.models.backbone import INPUT_NAMES, TrimzooBackbone
from trimzoo.utils.io import atomic_path

log = logging.getLogger("trimzoo")

#: Signature key of every export.
SIGNATURE = "serving_default"


# --- Models -----------------------------------------------------------------

def load_model(folder):
    """The Keras model of a model folder: a classifier if the folder is a
    fine-tuned task preset (``task.json``), else a backbone.

    Backbone folders may be trimzoo presets (``backbone.save_to_preset``,
    ``save_pretrained``), keras-hub ``BertBackbone`` presets or HF BERT /
    RoBERTa folders (``trimzoo.checkpoints.load_backbone``).

    Args:
        folder: str. The model folder.

    Returns:
        ``TrimzooClassifier`` or ``TrimzooBackbone``.

    Raises:
        FileNotFoundError: the folder or its ``config.json`` is missing.
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"No such model folder: {folder!r}.")
    if not os.path.exists(os.path.join(folder, "config.json")):
        raise FileNotFoundError(
            f"{folder!r} is not a model folder: it has no config.json (expected "
            "a preset written by save_to_preset / save_pretrained, a "
            "fine-tuned classifier folder or a HF BERT/RoBERTa folder)."
        )
    if os.path.exists(os.path.join(folder, "task.json")):
        model = load_text_classifier(folder)
    else:
        model = load_backbone(folder)
    model_kind(model)  # Refuses models the export does not know.
    return model


def model_kind(model):
    """``"backbone"`` or ``"classifier"``.

    Raises:
        TypeError: for any other model.
    """
    if isinstance(model, TrimzooBackbone):
        return "backbone"
    if isinstance(model, keras_hub.models.TextClassifier) and isinstance(
            getattr(model, "backbone", None), TrimzooBackbone):
        return "classifier"
    raise TypeError(
        "The export handles a TrimzooBackbone or a classifier on one "
        f"(TrimzooClassifier), got {type(model).__name__}."
    )


def backbone_of(model):
    """The ``TrimzooBackbone`` of a backbone or classifier."""
    return model if model_kind(model) == "backbone" else model.backbone


def num_classes(model):
    """Number of outputs of a classifier (``None`` for a backbone)."""
    if model_kind(model) == "backbone":
        return None
    return int(model.output_shape[-1])


def output_names(model):
    """Names of the serving outputs, in a fixed order."""
    if model_kind(model) == "backbone":
        return ["pooled_output", "sequence_output"]
    if num_classes(model) > 1:
        return ["logits", "probabilities"]
    return ["logits"]


def _classifier_outputs(model, outputs):
    """``logits`` = the classifier's output; ``probabilities`` = its softmax
    (or the output itself for a classifier built with a softmax)."""
    result = {"logits": outputs}
    if num_classes(model) > 1:
        activation = keras.activations.serialize(model.activation)
        result["probabilities"] = (
            outputs if activation == "softmax" else tf.nn.softmax(outputs))
    return result


def call_model(model, token_ids, segment_ids, padding_mask):
    """The serving outputs of ``model`` on int32 inputs (inference mode)."""
    inputs = {"token_ids": token_ids, "segment_ids": segment_ids,
              "padding_mask": padding_mask}
    outputs = model(inputs, training=False)
    if model_kind(model) == "backbone":
        return {name: outputs[name] for name in output_names(model)}
    return _classifier_outputs(model, outputs)


def serving_function(model, seq_len=None, batch_size=None):
    """A ``tf.function`` with the export signature.

    Args:
        model: backbone or classifier.
        seq_len: int or None. Fixed sequence length; None for dynamic.
        batch_size: int or None. Fixed batch size; None for dynamic.

    Returns:
        ``tf.function`` taking int32 ``token_ids``, ``segment_ids``,
        ``padding_mask`` ``[batch_size, seq_len]`` and returning the dict of
        :func:`output_names`.
    """
    model_kind(model)
    if seq_len is not None:
        limit = backbone_of(model).max_sequence_length
        if not 1 <= int(seq_len) <= limit:
            raise ValueError(
                f"seq_len must be in [1, {limit}] (the model's "
                f"max_sequence_length), got {seq_len}."
            )
    shape = [batch_size, seq_len]
    signature = [tf.TensorSpec(shape, tf.int32, name=name)
                 for name in INPUT_NAMES]

    @tf.function(input_signature=signature)
    def serve(token_ids, segment_ids, padding_mask):
        return call_model(model, token_ids, segment_ids, padding_mask)

    return serve


def export_saved_model(model, path, seq_len=None, batch_size=None):
    """Writes ``model`` as a SavedModel with the ``serving_default``
    signature (see the module docstring).

    Args:
        model: backbone or classifier.
        path: str. Output folder (replaced if it exists).
        seq_len, batch_size: int or None. Fix these dimensions of the
            signature; None (default) keeps them dynamic.

    Returns:
        str. ``path``.

    Examples:
    >>> import tempfile, trimzoo
    >>> backbone = trimzoo.models.bert_tiny(vocabulary_size=100)
    >>> path = export_saved_model(backbone, tempfile.mkdtemp() + "/sm")
    """
    _save(path, serving_function(model, seq_len, batch_size), model)
    return path


def _save(path, serve, model, resources=None):
    """Saves ``serve`` as the ``serving_default`` signature of a module that
    tracks exactly the model's TensorFlow variables (and ``resources``).

    Keras' ``ExportArchive`` (and ``model.export``) stores every variable
    twice in this Keras version (the Keras variable and the TensorFlow
    variable it wraps), doubling the SavedModel's size.

    An existing folder at ``path`` is replaced in one rename once the new
    one is complete.
    """
    module = tf.Module()
    module.model_variables = [getattr(v, "value", v) for v in model.variables]
    if resources is not None:
        module.resources = resources
    with atomic_path(path) as tmp:
        tf.saved_model.save(
            module, tmp,
            signatures={SIGNATURE: serve.get_concrete_function()})


def export_text_saved_model(model, tokenizer, path, sequence_length):
    """Writes an end-to-end classifier: strings in, probabilities out.

    The graph tokenizes with ``tokenizer`` (a keras-hub tokenizer, TF Text
    based), packs ``[CLS] text [SEP]`` (``<s> text </s>`` for byte-level BPE
    vocabularies) truncated to ``sequence_length``, trims the batch to its
    longest text and runs the classifier. The ids equal
    ``trimzoo.models.tokenizers.encode(tokenizer, texts, sequence_length)``.

    Args:
        model: a classifier.
        tokenizer: keras-hub tokenizer of the model's vocabulary.
        path: str. Output folder (replaced if it exists).
        sequence_length: int. Longest packed input, ``[CLS]``/``[SEP]``
            included.

    Returns:
        str. ``path``.
    """
    if model_kind(model) != "classifier":
        raise TypeError("The text-in SavedModel is for classifiers; got a "
                        "backbone.")
    vocab = tokenizer.vocabulary_size()
    if vocab > backbone_of(model).vocabulary_size:
        raise ValueError(
            f"The tokenizer has {vocab} tokens but the model's vocabulary "
            f"has {backbone_of(model).vocabulary_size}: not its tokenizer."
        )
    ids = special_token_ids(tokenizer)
    packer = keras_hub.layers.StartEndPacker(
        sequence_length=int(sequence_length), start_value=ids["cls"],
        end_value=ids["sep"], pad_value=ids["pad"], return_padding_mask=True)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string,
                                                name="text")])
    def serve(text):
        token_ids, mask = packer(tokenizer(text))
        token_ids = tf.cast(token_ids, tf.int32)
        mask = tf.cast(mask, tf.int32)
        # Shorter batches run faster; outputs do not depend on padding.
        length = tf.maximum(tf.reduce_max(tf.reduce_sum(mask, axis=1)), 1)
        token_ids, mask = token_ids[:, :length], mask[:, :length]
        outputs = call_model(model, token_ids, tf.zeros_like(token_ids),
                             mask)
        if "probabilities" in outputs:
            outputs["label"] = tf.argmax(outputs["logits"], axis=-1)
        return outputs

    _save(path, serve, model, resources=tokenizer)
    return path


# --- Runners ----------------------------------------------------------------

class KerasRunner:
    """Runs the Keras model through its (traced, dynamic-shape) serving
    function; the reference of every parity check.

    Call it with a dict of int32 arrays ``[batch, seq]``; returns a dict of
    NumPy outputs.
    """

    def __init__(self, model):
        self.model = model
        self.fn = serving_function(model)

    def __call__(self, inputs):
        outputs = self.fn(**{name: tf.constant(inputs[name], tf.int32)
                             for name in INPUT_NAMES})
        return {name: value.numpy() for name, value in outputs.items()}


class SavedModelRunner:
    """Runs an exported SavedModel's ``serving_default`` signature.

    Args:
        path: str. The SavedModel folder.
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        self.loaded = tf.saved_model.load(self.path)
        self.fn = self.loaded.signatures[SIGNATURE]

    def __call__(self, inputs):
        outputs = self.fn(**{name: tf.constant(inputs[name], tf.int32)
                             for name in INPUT_NAMES})
        return {name: value.numpy() for name, value in outputs.items()}


class TextSavedModelRunner(SavedModelRunner):
    """Runs a text-in SavedModel on the ``"text"`` entry of its input dict
    (a vector of strings); the token inputs are ignored."""

    def __call__(self, inputs):
        if "text" not in inputs:
            raise ValueError("The text-in SavedModel needs the texts; the "
                             "inputs have none (random-id parity data).")
        text = tf.constant([str(t) for t in inputs["text"]], tf.string)
        outputs = self.fn(text=text)
        return {name: value.numpy() for name, value in outputs.items()}


def saved_model_size(path):
    """Bytes of every file under ``path``."""
    total = 0
    for root, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total
