"""Dynamic masking for masked-LM pretraining.

Masking is dynamic (a new mask every epoch, as RoBERTa) and happens in the
input pipeline with keras-hub's ``MaskedLMMaskGenerator`` (BERT's 15% of
tokens, 80% ``[MASK]`` / 10% random / 10% unchanged, special tokens never
selected). Its random draws are made stateless, keyed by the seed and the
example's position in the stream (``StatelessMaskedLMMaskGenerator``), so
the masks are reproducible under parallel ``map`` and a resumed run sees
exactly the masks an uninterrupted run would have seen.
"""

import math

import keras_hub
import tensorflow as tf
import tensorflow_text as tf_text

from trimzoo.models.preprocessors import MASK_RATE


class _StatelessItemSelector(tf_text.RandomItemSelector):
    """tf-text's selector with a stateless shuffle seeded by its owner."""

    def __init__(self, owner, **kwargs):
        self._owner = owner
        super().__init__(shuffle_fn=self._shuffle, **kwargs)

    def _shuffle(self, values):
        return tf.random.experimental.stateless_shuffle(
            values, seed=self._owner._seeds[0])


class _StatelessValuesChooser(tf_text.MaskValuesChooser):
    """80/10/10 mask values from stateless draws seeded by its owner."""

    def __init__(self, owner, *args, **kwargs):
        self._owner = owner
        super().__init__(*args, **kwargs)

    def get_mask_values(self, masked_lm_ids):
        ids = masked_lm_ids.flat_values
        shape = tf.shape(ids)
        u = tf.random.stateless_uniform(shape, seed=self._owner._seeds[1])
        random_ids = tf.random.stateless_uniform(
            shape, seed=self._owner._seeds[2], minval=0,
            maxval=self.vocab_size, dtype=tf.int64)
        mask = tf.cast(tf.fill(shape, self.mask_token), ids.dtype)
        mask_rate = self._mask_token_rate
        random_rate = self._random_token_rate
        values = tf.where(
            u < mask_rate, mask,
            tf.where(u < mask_rate + random_rate,
                     tf.cast(random_ids, ids.dtype), ids))
        return masked_lm_ids.with_flat_values(values)


class StatelessMaskedLMMaskGenerator(keras_hub.layers.MaskedLMMaskGenerator):
    """keras-hub's ``MaskedLMMaskGenerator`` with counter-based randomness.

    Same selection algorithm (tf-text ``mask_language_model``: exactly
    ``ceil(rate · selectable)`` positions per sequence, capped at
    ``mask_selection_length``, never an unselectable id) and the same
    outputs, but every random draw is a stateless function of the ``seed``
    passed to ``mask``. Stateful random ops in ``tf.data`` are neither
    reproducible under a parallel ``map`` nor restorable from a checkpoint;
    these draws are both.

    Args: as ``keras_hub.layers.MaskedLMMaskGenerator``.

    Examples:
    Half of the four selectable tokens are masked, at positions that depend
    only on the seed:

    >>> import numpy as np
    >>> gen = StatelessMaskedLMMaskGenerator(
    ...     vocabulary_size=50, mask_selection_rate=0.5, mask_token_id=4,
    ...     mask_selection_length=4, unselectable_token_ids=[0, 2, 3])
    >>> tokens = np.array([2, 10, 11, 12, 13, 3], "int32")
    >>> out = gen.mask(tokens, seed=[1, 7])
    >>> sorted(out)
    ['mask_ids', 'mask_positions', 'mask_weights', 'token_ids']
    >>> np.asarray(out["mask_weights"]).tolist()
    [1.0, 1.0, 0.0, 0.0]
    >>> again = gen.mask(tokens, seed=[1, 7])
    >>> np.array_equal(out["mask_positions"], again["mask_positions"])
    True
    """

    _seeds = None

    def _use_tf_workflow(self):
        # keras-hub runs eager calls through a Python path that draws from
        # Python's global `random`, ignoring the seed; the stateless draws
        # exist only on the TensorFlow path, so every call takes it.
        return True

    def _maybe_initialize_tf(self):
        if self._random_selector is not None:
            return
        self._random_selector = _StatelessItemSelector(
            self,
            max_selections_per_batch=self.mask_selection_length or 2**31 - 1,
            selection_rate=self.mask_selection_rate,
            unselectable_ids=self.unselectable_token_ids,
        )
        self._mask_values_chooser = _StatelessValuesChooser(
            self, self.vocabulary_size, self.mask_token_id,
            mask_token_rate=self.mask_token_rate,
            random_token_rate=self.random_token_rate,
        )

    def mask(self, token_ids, seed):
        """Masks one sequence (or a batch) with draws keyed by ``seed``.

        Args:
            token_ids: int tensor ``[length]`` or ``[batch, length]``.
            seed: int tensor of shape ``[2]``.

        Returns:
            dict as ``MaskedLMMaskGenerator.__call__``.
        """
        seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
        self._seeds = tf.random.experimental.stateless_split(seed, 3)
        try:
            return self(token_ids)
        finally:
            self._seeds = None


def default_max_predictions(max_seq_length, mask_rate=MASK_RATE):
    """BERT's ``max_predictions_per_seq``: enough for every sequence."""
    return int(math.ceil(max_seq_length * mask_rate))


def masked_lm_features(sequences, special_ids, vocabulary_size,
                       max_seq_length, seed=0, max_predictions=None,
                       mask_rate=MASK_RATE, mask_token_rate=0.8,
                       random_token_rate=0.1, start_index=0,
                       seed_offset=0):
    """Masks and pads a stream of packed sequences.

    Args:
        sequences: ``tf.data.Dataset`` of int32 ``[length]`` sequences with
            special tokens, ``length <= max_seq_length``.
        special_ids: dict with ``cls``, ``sep``, ``pad``, ``mask``, ``unk``.
        vocabulary_size: int. Random replacements are drawn below it.
        max_seq_length: int. Sequences are padded to this length.
        seed: int. Masks depend only on (seed, seed_offset, position).
        max_predictions: int or None. Masked positions per sequence (the
            output width). Defaults to ``ceil(max_seq_length · mask_rate)``.
        mask_rate, mask_token_rate, random_token_rate: floats. BERT's 15%
            and 80/10/10.
        start_index: int. Skip this many sequences first (the data
            position of a resumed run); they are not masked.
        seed_offset: int. Folded into the seed (the input pipeline id).

    Returns:
        ``tf.data.Dataset`` of ``(x, y, sample_weight)``: ``x`` a dict of
        int32 ``token_ids``, ``segment_ids``, ``padding_mask``
        (``[max_seq_length]``) and ``mask_positions``; ``y`` the original
        ids at those positions; ``sample_weight`` float32 1/0 for real/pad
        predictions (all ``[max_predictions]``).

    Examples:
    >>> special = {"cls": 2, "sep": 3, "pad": 0, "mask": 4, "unk": 1}
    >>> sequences = tf.data.Dataset.from_tensor_slices(
    ...     tf.ragged.constant([[2, 10, 11, 12, 3], [2, 13, 3]]))
    >>> features = masked_lm_features(sequences, special, vocabulary_size=20,
    ...                               max_seq_length=8, max_predictions=2)
    >>> x, y, weights = next(iter(features))
    >>> tuple(x["token_ids"].shape), tuple(x["mask_positions"].shape)
    ((8,), (2,))
    >>> x["padding_mask"].numpy().tolist(), weights.numpy().tolist()
    ([1, 1, 1, 1, 1, 0, 0, 0], [1.0, 0.0])
    """
    if max_predictions is None:
        max_predictions = default_max_predictions(max_seq_length, mask_rate)
    unselectable = sorted({special_ids[k]
                           for k in ("cls", "sep", "pad", "mask", "unk")})
    masker = StatelessMaskedLMMaskGenerator(
        vocabulary_size=vocabulary_size,
        mask_selection_rate=mask_rate,
        mask_token_id=special_ids["mask"],
        mask_selection_length=max_predictions,
        unselectable_token_ids=unselectable,
        mask_token_rate=mask_token_rate,
        random_token_rate=random_token_rate,
    )
    pad_id = special_ids["pad"]
    base = tf.constant(int(seed) * 1_000_003 + int(seed_offset), tf.int64)

    def mask_one(index, tokens):
        tokens = tf.cast(tokens, tf.int32)
        length = tf.size(tokens)
        check = tf.debugging.assert_less_equal(
            length, max_seq_length,
            message=f"A sequence is longer than max_seq_length="
                    f"{max_seq_length}; rebuild the TFRecords or raise "
                    "max_seq_length.")
        with tf.control_dependencies([check]):
            out = masker.mask(tokens, tf.stack([base, index]))
        pad = max_seq_length - length
        token_ids = tf.pad(tf.cast(out["token_ids"], tf.int32), [[0, pad]],
                           constant_values=pad_id)
        token_ids = tf.ensure_shape(token_ids, [max_seq_length])
        padding_mask = tf.sequence_mask(length, max_seq_length, tf.int32)
        x = {
            "token_ids": token_ids,
            "segment_ids": tf.zeros([max_seq_length], tf.int32),
            "padding_mask": padding_mask,
            "mask_positions": tf.ensure_shape(
                tf.cast(out["mask_positions"], tf.int32), [max_predictions]),
        }
        y = tf.ensure_shape(tf.cast(out["mask_ids"], tf.int32),
                            [max_predictions])
        w = tf.ensure_shape(tf.cast(out["mask_weights"], tf.float32),
                            [max_predictions])
        return x, y, w

    indexed = sequences.enumerate()
    if start_index:
        indexed = indexed.skip(start_index)
    return indexed.map(mask_one, num_parallel_calls=tf.data.AUTOTUNE,
                       deterministic=True)
