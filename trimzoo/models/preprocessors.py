"""keras-hub preprocessors for the trimzoo tasks: strings in, backbone inputs
out.

- :class:`TrimzooTextClassifierPreprocessor`: one text or a pair, packed as
  ``[CLS] a [SEP] b [SEP]`` (``<s> a </s></s> b </s>`` for byte-level BPE
  vocabularies), truncated to ``sequence_length`` and padded to the longest
  sequence of the batch. Used by ``TrimzooClassifier`` and
  ``TrimzooTextEmbedder``.
- :class:`TrimzooMaskedLMPreprocessor`: the same packing plus BERT's random
  masking for training, or, for ``predict``, the positions of the mask
  tokens written in the text ("the [MASK] was great").

Both take the reference-exact tokenizers of ``trimzoo.models.tokenizers``
(or any keras-hub tokenizer with BERT or RoBERTa special tokens), are
registered Keras objects and are saved by ``save_to_preset`` beside the
model (``preprocessor.json`` and the tokenizer's assets), so that
``keras_hub.models.TextClassifier.from_preset(folder)`` reads strings.
"""

import os

import keras
import keras_hub
import numpy as np
import tensorflow as tf
# keras-hub's own preprocessors use this decorator (eager inputs to tensors
# and back); it is not exported under a public name.
from keras_hub.src.utils.tensor_utils import preprocessing_function

from trimzoo.models.tokenizers import load_tokenizer
from trimzoo.models.tokenizers import special_token_ids as _special_token_ids

# BERT's masked-LM rate: the share of real tokens selected for prediction
# (of which 80% become [MASK], 10% a random token, 10% stay). The one value
# every masking default and config reads.
MASK_RATE = 0.15

# Plain Python over the vocabulary, also when a tf.data map traces it.
special_token_ids = tf.autograph.experimental.do_not_convert(
    _special_token_ids)

#: Sequence length of a preprocessor made for a folder that has none.
DEFAULT_SEQUENCE_LENGTH = 128


def _is_bpe(tokenizer):
    """RoBERTa-style vocabularies join a pair as ``<s> a </s></s> b </s>``
    and have no segment embeddings."""
    return tokenizer.id_to_token(special_token_ids(tokenizer)["cls"]) == "<s>"


def _check_strings(x):
    """Clear errors for what the tokenizer cannot read, before it fails
    with an unrelated message."""
    segments = x if isinstance(x, tuple) else (x,)
    if len(segments) not in (1, 2):
        raise ValueError(
            f"Give one text or a pair of texts per example (a tuple of 1 or 2 "
            f"batches of strings); got a tuple of {len(segments)}.")
    for segment in segments:
        if isinstance(segment, dict):
            raise ValueError(
                "The preprocessor takes strings; this input is a dict "
                f"(keys {sorted(segment)}): token ids go to the model "
                "directly.")
        dtype = getattr(segment, "dtype", None)
        if dtype is None and isinstance(segment, (list, np.ndarray)):
            dtype = np.asarray(segment).dtype
        if dtype is not None and not (
                dtype == tf.string or getattr(dtype, "kind", None) in (
                    "U", "S", "O")):
            raise ValueError(
                f"The preprocessor takes strings, got values of dtype "
                f"{dtype}. Pass texts, or feed token-id dicts to the model.")


def trim_to_longest(features, pad_value):
    """Cuts ``[batch, sequence_length]`` features to the batch's longest
    sequence (at least 1): shorter inputs run faster and the outputs of the
    real tokens do not depend on padding."""
    mask = tf.cast(tf.not_equal(features["token_ids"], pad_value), tf.int32)
    length = tf.maximum(tf.reduce_max(tf.reduce_sum(mask, axis=-1)), 1)
    return {k: v[..., :length] for k, v in features.items()}


class _Packing:
    """Packing shared by the preprocessors: pair separators by vocabulary,
    int32 outputs, all-zero segments for one-segment models."""

    @property
    def special_ids(self):
        """``{"cls", "sep", "pad", "mask", "unk"} -> id`` of the tokenizer."""
        # Read once, in Python: the ids are constants of the graph.
        if getattr(self, "_special_ids", None) is None:
            self._special_ids = special_token_ids(self.tokenizer)
        return self._special_ids

    def _make_packer(self):
        ids = self.special_ids
        sep = [ids["sep"], ids["sep"]] if _is_bpe(self.tokenizer) else [
            ids["sep"]]
        return keras_hub.layers.MultiSegmentPacker(
            start_value=ids["cls"], end_value=ids["sep"], sep_value=sep,
            pad_value=ids["pad"], truncate=self.truncate,
            sequence_length=self.sequence_length)

    def _pack(self, x):
        _check_strings(x)
        x = x if isinstance(x, tuple) else (x,)
        x = tuple(self.tokenizer(tf.convert_to_tensor(s)) for s in x)
        token_ids, segment_ids = self.packer(x)
        token_ids = tf.cast(token_ids, tf.int32)
        segment_ids = tf.cast(segment_ids, tf.int32)
        if self.num_segments == 1:
            segment_ids = tf.zeros_like(segment_ids)
        pad = self.special_ids["pad"]
        features = {
            "token_ids": token_ids,
            "segment_ids": segment_ids,
            "padding_mask": tf.cast(tf.not_equal(token_ids, pad), tf.int32),
        }
        return features, pad

    def call(self, x, y=None, sample_weight=None):
        return self._call(x, y=y, sample_weight=sample_weight)

    def get_config(self):
        config = super().get_config()
        config["num_segments"] = self.num_segments
        return config

    @classmethod
    def _add_missing_kwargs(cls, loader, kwargs):
        """Arguments for a backbone-only folder: the tokenizer saved beside
        it, read with trimzoo's loader (reference normalisation, clear
        errors), and the backbone's segment count."""
        if "tokenizer" not in kwargs:
            kwargs["tokenizer"] = tokenizer_of_folder(loader.preset)
        config = loader.config.get("config", {})
        if "num_segments" not in kwargs:
            kwargs["num_segments"] = min(int(config.get("num_segments", 2)),
                                         2)
        kwargs.setdefault("sequence_length", min(
            DEFAULT_SEQUENCE_LENGTH,
            int(config.get("max_sequence_length", DEFAULT_SEQUENCE_LENGTH))))
        return kwargs


def _check_num_segments(num_segments):
    if num_segments not in (1, 2):
        raise ValueError(
            f"num_segments must be 1 (no segment embeddings: RoBERTa, Bort) "
            f"or 2 (BERT), got {num_segments!r}.")
    return int(num_segments)


@keras.saving.register_keras_serializable(package="trimzoo")
class TrimzooTextClassifierPreprocessor(
        _Packing, keras_hub.models.TextClassifierPreprocessor):
    """Strings in, trimzoo backbone inputs out, for classifiers and text
    embedders.

    A keras-hub ``TextClassifierPreprocessor``: call it on one batch of
    strings or on a tuple ``(texts_a, texts_b)`` of pairs, optionally with
    labels ``y`` and ``sample_weight`` (passed through). Texts are tokenized,
    packed ``[CLS] a [SEP] b [SEP]`` (``<s> a </s></s> b </s>`` for
    byte-level BPE vocabularies), truncated to ``sequence_length`` tokens
    (keras-hub's ``MultiSegmentPacker``: ``round_robin`` shortens the longer
    text of a pair first) and padded to the longest sequence of the batch.
    Runs eagerly and inside ``tf.data``.

    Args:
        tokenizer: a keras-hub tokenizer with BERT or RoBERTa special
            tokens, e.g. ``trimzoo.models.BertWordPieceTokenizer``.
        sequence_length: int. Longest packed sequence, special tokens
            included. Defaults to ``128``.
        truncate: ``"round_robin"`` or ``"waterfall"``. Defaults to
            ``"round_robin"``.
        num_segments: int. The model's segment vocabulary: 2 for BERT; 1 for
            models without segment embeddings (all-zero ``segment_ids``).
            Defaults to ``2``.

    Examples:
    >>> from trimzoo.models.tokenizers import BertWordPieceTokenizer
    >>> vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "good",
    ...          "film", "bad", "plot"]
    >>> preprocessor = TrimzooTextClassifierPreprocessor(
    ...     BertWordPieceTokenizer(vocab), sequence_length=16)
    >>> x = preprocessor(x=(["A good film"], ["bad plot"]))
    >>> x["token_ids"].numpy().tolist(), x["segment_ids"].numpy().tolist()
    ([[2, 5, 6, 7, 3, 8, 9, 3]], [[0, 0, 0, 0, 0, 1, 1, 1]])
    """

    def __init__(self, tokenizer, sequence_length=DEFAULT_SEQUENCE_LENGTH,
                 truncate="round_robin", num_segments=2, **kwargs):
        super().__init__(tokenizer, sequence_length=sequence_length,
                         truncate=truncate, **kwargs)
        self.num_segments = _check_num_segments(num_segments)

    def build(self, input_shape):
        keras_hub.models.Preprocessor.build(self, input_shape)
        self.packer = self._make_packer()

    @preprocessing_function
    def _call(self, x, y=None, sample_weight=None):
        features, pad = self._pack(x)
        features = trim_to_longest(features, pad)
        return keras.utils.pack_x_y_sample_weight(features, y, sample_weight)


@keras.saving.register_keras_serializable(package="trimzoo")
class TrimzooMaskedLMPreprocessor(_Packing,
                                  keras_hub.models.MaskedLMPreprocessor):
    """Strings in, masked-LM inputs out: random masking for training, the
    mask tokens of the text for prediction.

    A keras-hub ``MaskedLMPreprocessor``. Called on strings (or pairs) it
    packs them as :class:`TrimzooTextClassifierPreprocessor` does, then
    applies BERT's masking (``mask_selection_rate`` of the tokens selected;
    of those ``mask_token_rate`` become the mask token and
    ``random_token_rate`` a random token) and returns ``(x, y,
    sample_weight)``: ``y`` the original ids at ``x["mask_positions"]``.

    :meth:`fill_mask_inputs` instead marks the mask tokens written in the
    text (``[MASK]``, ``<mask>`` for BPE): ``mask_positions`` lists their
    positions, left to right, padded with 0 to ``mask_selection_length``.
    ``TrimzooMaskedLM.predict`` uses it.

    Args:
        tokenizer: a keras-hub tokenizer with BERT or RoBERTa special tokens.
        sequence_length: int. Longest packed sequence. Defaults to ``128``.
        truncate: ``"round_robin"`` or ``"waterfall"``. Defaults to
            ``"round_robin"``.
        mask_selection_rate: float. Defaults to ``0.15``.
        mask_selection_length: int. Predictions per sequence (masks beyond
            it are not predicted). Defaults to ``20``.
        mask_token_rate: float. Defaults to ``0.8``.
        random_token_rate: float. Defaults to ``0.1``.
        num_segments: int. 2 for BERT, 1 for models without segment
            embeddings. Defaults to ``2``.

    Examples:
    >>> from trimzoo.models.tokenizers import BertWordPieceTokenizer
    >>> vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the",
    ...          "film", "was", "great"]
    >>> preprocessor = TrimzooMaskedLMPreprocessor(
    ...     BertWordPieceTokenizer(vocab), mask_selection_length=2)
    >>> x = preprocessor.fill_mask_inputs(["the [MASK] was great"])
    >>> x["token_ids"].numpy().tolist(), x["mask_positions"].numpy().tolist()
    ([[2, 5, 4, 7, 8, 3]], [[2, 0]])
    """

    def __init__(self, tokenizer, sequence_length=DEFAULT_SEQUENCE_LENGTH,
                 truncate="round_robin", mask_selection_rate=MASK_RATE,
                 mask_selection_length=20, mask_token_rate=0.8,
                 random_token_rate=0.1, num_segments=2, **kwargs):
        super().__init__(
            tokenizer, sequence_length=sequence_length, truncate=truncate,
            mask_selection_rate=mask_selection_rate,
            mask_selection_length=mask_selection_length,
            mask_token_rate=mask_token_rate,
            random_token_rate=random_token_rate, **kwargs)
        self.num_segments = _check_num_segments(num_segments)

    def build(self, input_shape):
        super().build(input_shape)
        self.packer = self._make_packer()

    @preprocessing_function
    def _call(self, x, y=None, sample_weight=None):
        features, _ = self._pack(x)
        masked = self.masker(features["token_ids"])
        features["token_ids"] = tf.cast(masked["token_ids"], tf.int32)
        features["mask_positions"] = tf.cast(masked["mask_positions"],
                                             tf.int32)
        y = tf.cast(masked["mask_ids"], tf.int32)
        sample_weight = masked["mask_weights"]
        return keras.utils.pack_x_y_sample_weight(features, y, sample_weight)

    def fill_mask_inputs(self, x):
        """Model inputs whose ``mask_positions`` are the mask tokens in the
        text (see the class docstring); eager or inside ``tf.data``."""
        if not self.built:
            self.build(None)
        return self._fill(x)

    @preprocessing_function
    def _fill(self, x):
        features, pad = self._pack(x)
        features = trim_to_longest(features, pad)
        ids = features["token_ids"]
        mask_id = self.special_ids["mask"]
        is_mask = tf.equal(ids, mask_id)
        # Mask positions first (stable: left to right), then the others.
        order = tf.argsort(tf.cast(~is_mask, tf.int32), axis=-1, stable=True)
        count = tf.reduce_sum(tf.cast(is_mask, tf.int32), axis=-1,
                              keepdims=True)
        width = self.mask_selection_length
        order = tf.pad(order, [[0, 0], [0, tf.maximum(
            width - tf.shape(order)[-1], 0)]])[:, :width]
        keep = tf.range(width)[tf.newaxis, :] < count
        features["mask_positions"] = tf.where(keep, order, 0)
        return features



def tokenizer_of_folder(folder):
    """The tokenizer saved in a model folder, with a clear error when the
    folder has none.

    Raises:
        FileNotFoundError: naming the folder and how to load it without a
            tokenizer.
    """
    try:
        return load_tokenizer(os.fspath(folder))
    except FileNotFoundError as err:
        raise FileNotFoundError(
            f"{err} Strings need a tokenizer: save one with the model "
            "(save_pretrained(backbone, tokenizer, ...)), or load the folder "
            "with preprocessor=None and feed token-id dicts.") from None


def is_token_dict(x):
    """True for already-tokenized model inputs (a dict with token ids)."""
    return isinstance(x, dict) and "token_ids" in x


def preprocessor_for(backbone, tokenizer, sequence_length=None,
                     cls=TrimzooTextClassifierPreprocessor):
    """A preprocessor of class ``cls`` for ``backbone`` with ``tokenizer``:
    its segment count, and ``sequence_length`` (default: 128, at most the
    backbone's ``max_sequence_length``)."""
    if sequence_length is None:
        sequence_length = min(DEFAULT_SEQUENCE_LENGTH,
                              backbone.max_sequence_length)
    if sequence_length > backbone.max_sequence_length:
        raise ValueError(
            f"sequence_length={sequence_length} exceeds the model's "
            f"max_sequence_length {backbone.max_sequence_length}.")
    if isinstance(tokenizer, keras_hub.models.Preprocessor):
        tokenizer = tokenizer.tokenizer
    return cls(tokenizer, sequence_length=int(sequence_length),
               num_segments=min(backbone.num_segments, 2))
