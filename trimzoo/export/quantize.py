"""Quantisation paths and what each is for.

- Edge (TFLite): the converter's post-training quantisation, chosen with
  ``quantize=`` in :func:`trimzoo.export.tflite.convert`: ``"float16"``
  (weights stored in float16), ``"dynamic"`` (int8 weights, activations
  quantised per call) and ``"int8"`` (int8 weights and activations,
  calibrated on real text; see ``INT8_FLOAT_OPS`` for the ops kept in
  float).
- Server (Keras / TF Serving): Keras 3's in-framework
  ``model.quantize("int8")`` (int8 weights of the dense layers), here
  :func:`keras_int8`. Its result is not exported to TFLite: the LiteRT
  converter fails on it for BERT (``tfl.squeeze`` squeeze_dims); the
  converter's own quantisation is the edge path.
"""

import warnings

import keras

from trimzoo.export.saved_model import model_kind

#: Keras quantisation modes measured next to the TFLite formats.
KERAS_MODES = ("int8",)


def copy_model(model):
    """An independent copy (same class, config and weights)."""
    model_kind(model)
    clone = model.__class__.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    return clone


def keras_int8(model):
    """A copy of ``model`` quantised with Keras 3 ``quantize("int8")``.

    The dense kernels (attention projections, FFN, pooler, classifier head)
    become int8 with per-channel scales; embeddings and layernorms stay
    float. ``model`` itself is unchanged.

    Args:
        model: backbone or classifier.

    Returns:
        The quantised copy.

    Examples:
    >>> import numpy as np, trimzoo
    >>> backbone = trimzoo.models.bert_tiny(vocabulary_size=100)
    >>> q = keras_int8(backbone)
    >>> str(q.transformer_layers[0].attention.qkv.quantization_mode)
    'int8'
    """
    clone = copy_model(model)
    preprocessor = getattr(clone, "preprocessor", None)
    with warnings.catch_warnings():
        # Layers without weights to quantise (Add, embeddings...) warn.
        warnings.filterwarnings(
            "ignore", message=r".*does not have a `quantize` method.*")
        if preprocessor is None:
            clone.quantize("int8")
        else:
            # The backbone and the head are quantised, never the
            # preprocessor's tokenizer (it has no weights to quantise).
            clone.backbone.quantize("int8")
            for layer in clone.layers:
                if layer is not clone.backbone and layer is not preprocessor \
                        and isinstance(layer, keras.layers.Dense):
                    layer.quantize("int8")
    return clone
