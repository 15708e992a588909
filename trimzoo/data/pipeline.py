"""Tokenised, packed, dynamically padded ``tf.data`` input pipelines.

Examples are tuples ``(text, label)`` or ``(text_a, text_b, label)``, as a
Python list or a ``tf.data.Dataset``; :func:`encode_dataset` turns them into
batches ``(features, labels)`` that trimzoo models take::

    features = {"token_ids": int32 [batch, length],
                "segment_ids": int32 [batch, length],
                "padding_mask": int32 [batch, length]}

Tokenisation, truncation and packing run inside ``tf.data`` (parallel map);
each batch is padded only to its longest sequence.
"""

import keras_hub
import numpy as np
import tensorflow as tf

from trimzoo.data.tasks import get_task
from trimzoo.models.tokenizers import special_token_ids

__all__ = ["encode_dataset", "examples_to_dataset"]

# Raw examples tokenised per map call; the map then yields single examples
# for padded_batch. Larger blocks amortise the per-call overhead.
_TOKENIZE_BLOCK = 256


def examples_to_dataset(examples):
    """A ``tf.data.Dataset`` of example tuples.

    Args:
        examples: list of tuples ``(*texts, label)`` with 1 or 2 texts and
            an int (classification) or float (regression) label, or a
            ``tf.data.Dataset`` of such tuples (returned unchanged).

    Returns:
        ``tf.data.Dataset`` of ``(tf.string, ..., label)``: int32 labels,
        or float32 when any label is a float.

    Raises:
        ValueError: empty list, or tuples of different or wrong sizes.

    Examples:
    >>> ds = examples_to_dataset([("good", 1), ("bad", 0)])
    >>> len(ds), ds.element_spec[1].dtype.name
    (2, 'int32')
    """
    if isinstance(examples, tf.data.Dataset):
        return examples
    examples = list(examples)
    if not examples:
        raise ValueError("No examples.")
    width = len(examples[0])
    if width not in (2, 3) or any(len(e) != width for e in examples):
        raise ValueError(
            "Examples must all be (text, label) or all (text_a, text_b, "
            f"label); the first is {examples[0]!r}.")
    columns = list(zip(*examples))
    labels = columns[-1]
    if any(isinstance(y, (float, np.floating)) for y in labels):
        labels = np.asarray(labels, np.float32)
    else:
        labels = np.asarray(labels, np.int32)
    texts = tuple(tf.constant(list(c), tf.string) for c in columns[:-1])
    return tf.data.Dataset.from_tensor_slices(texts + (labels,))


def _packer_values(tokenizer, num_texts, max_seq_length):
    ids = special_token_ids(tokenizer)
    # RoBERTa-style vocabularies join a pair as <s> a </s></s> b </s>.
    roberta = tokenizer.id_to_token(ids["cls"]) == "<s>"
    sep = [ids["sep"], ids["sep"]] if roberta else [ids["sep"]]
    num_special = 2 + (num_texts - 1) * len(sep)
    if max_seq_length <= num_special:
        raise ValueError(
            f"max_seq_length={max_seq_length} leaves no room for text after "
            f"{num_special} special tokens.")
    return ids, sep, num_special


def encode_dataset(examples, tokenizer, task=None, *, max_seq_length=128,
                   batch_size=32, num_segments=2, shuffle=False, seed=0,
                   shuffle_buffer=None, repeat=False, drop_remainder=False,
                   bucket_boundaries=None, truncate="round_robin"):
    """Tokenises, packs and batches examples for a trimzoo model.

    Text pairs are packed ``[CLS] a [SEP] b [SEP]`` (segment ids 0 for
    ``[CLS] a [SEP]``, 1 for ``b [SEP]``), or ``<s> a </s></s> b </s>`` for
    RoBERTa-style vocabularies (detected from the tokenizer's special
    tokens). Texts are truncated to ``max_seq_length`` tokens including the
    special ones by keras-hub's ``MultiSegmentPacker`` (``round_robin``: a
    pair is shortened one token at a time from the longer side). Each batch
    is padded to its own longest sequence, not to ``max_seq_length``.

    Args:
        examples: list of tuples ``(*texts, label)`` or a ``tf.data.Dataset``
            of them (see :func:`trimzoo.data.load_task_data`).
        tokenizer: a keras-hub tokenizer without fixed ``sequence_length``
            (``trimzoo.models.tokenizers.load_tokenizer``).
        task: str, TaskSpec or None. Sets the label dtype (float32 for
            regression) and checks the number of texts; None: inferred from
            the examples.
        max_seq_length: int. Longest packed sequence. Defaults to 128.
        batch_size: int. Defaults to 32.
        num_segments: int. The model's segment vocabulary: 2 for BERT, 1
            for models without segment embeddings (RoBERTa, Bort), which
            get all-zero ``segment_ids``. Defaults to 2.
        shuffle: bool. Shuffle examples (with ``seed``; a new order each
            epoch). Defaults to False.
        seed: int. Shuffle seed. Defaults to 0.
        shuffle_buffer: int or None. None: the whole data set when its size
            is known (capped at 100,000), else 10,000.
        repeat: bool. Repeat forever (shuffled anew each pass). Defaults to
            False.
        drop_remainder: bool. Drop the last partial batch. Defaults to
            False.
        bucket_boundaries: list of int or None. Batch examples of similar
            length together (``tf.data`` ``bucket_by_sequence_length``):
            less padding, faster training. Defaults to None (plain batches
            in order).
        truncate: ``"round_robin"`` or ``"waterfall"`` (keep the first
            text whole where possible). Defaults to ``"round_robin"``.

    Returns:
        ``tf.data.Dataset`` of ``(features, labels)``: ``features`` a dict
        of int32 ``[batch, length]`` tensors ``token_ids``, ``segment_ids``,
        ``padding_mask``; ``labels`` int32 ``[batch]`` (float32 for
        regression). Prefetched. Its length is known when that of the
        examples is and no bucketing or repeat is asked for.

    Raises:
        ValueError: bad sizes, a tokenizer that pads, or a task mismatch.

    Examples:
    >>> import keras_hub
    >>> vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "good",
    ...          "film", "bad", "plot"]
    >>> tokenizer = keras_hub.tokenizers.WordPieceTokenizer(vocabulary=vocab)
    >>> ds = encode_dataset([("a good film", "bad plot", 1)], tokenizer,
    ...                     max_seq_length=16, batch_size=8)
    >>> features, labels = next(iter(ds))
    >>> features["token_ids"].numpy().tolist()
    [[2, 5, 6, 7, 3, 8, 9, 3]]
    >>> features["segment_ids"].numpy().tolist()
    [[0, 0, 0, 0, 0, 1, 1, 1]]
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}.")
    if num_segments not in (1, 2):
        raise ValueError(f"num_segments must be 1 or 2, got {num_segments}.")
    dataset = examples_to_dataset(examples)
    spec = dataset.element_spec
    if not isinstance(spec, tuple) or len(spec) not in (2, 3):
        raise ValueError(
            "Examples must be tuples (text, label) or (text_a, text_b, "
            f"label); got elements {spec}.")
    num_texts = len(spec) - 1
    if task is not None:
        task = get_task(task)
        if task.num_texts != num_texts:
            raise ValueError(
                f"{task.name} examples have {task.num_texts} text(s), these "
                f"have {num_texts}.")
        regression = task.is_regression
    else:
        regression = spec[-1].dtype.is_floating
    label_dtype = tf.float32 if regression else tf.int32

    ids, sep, num_special = _packer_values(tokenizer, num_texts,
                                           max_seq_length)
    packer = keras_hub.layers.MultiSegmentPacker(
        sequence_length=max_seq_length, start_value=ids["cls"],
        end_value=ids["sep"], sep_value=sep, pad_value=ids["pad"],
        truncate=truncate)
    budget = max_seq_length - num_special

    def encode_block(*example):
        texts = example[:-1]
        # One tokenizer call for both texts of a pair (half the graph).
        tokens = tokenizer(tf.concat(texts, axis=0))
        if not isinstance(tokens, tf.RaggedTensor):
            raise ValueError("The tokenizer pads its output; build it with "
                             "sequence_length=None.")
        rows = tf.shape(texts[0], out_type=tf.int64)[0]
        segments = [tokens[i * rows:(i + 1) * rows]
                    for i in range(len(texts))]
        token_ids, segment_ids = packer(tuple(segments))
        # Both truncation rules keep min(total, budget) tokens: the packed
        # length, from which the ragged (unpadded) rows follow.
        total = tf.add_n([s.row_lengths() for s in segments])
        lengths = tf.minimum(total, budget) + num_special
        token_ids = tf.RaggedTensor.from_tensor(
            tf.cast(token_ids, tf.int32), lengths=lengths)
        if num_segments == 1:
            segment_ids = tf.zeros_like(token_ids)
        else:
            segment_ids = tf.RaggedTensor.from_tensor(
                tf.cast(segment_ids, tf.int32), lengths=lengths)
        features = {"token_ids": token_ids, "segment_ids": segment_ids,
                    "padding_mask": tf.ones_like(token_ids)}
        return features, tf.cast(example[-1], label_dtype)

    def densify(features, label):  # Ragged rank-0 rows -> plain tensors.
        return {k: tf.reshape(v, [-1]) for k, v in features.items()}, label

    size = int(dataset.cardinality())
    if shuffle:
        if shuffle_buffer is None:
            shuffle_buffer = min(size, 100_000) if size > 0 else 10_000
        dataset = dataset.shuffle(shuffle_buffer, seed=seed,
                                  reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    dataset = (dataset.batch(_TOKENIZE_BLOCK)
               .map(encode_block, num_parallel_calls=tf.data.AUTOTUNE)
               .unbatch()
               .map(densify))
    padding_values = ({"token_ids": tf.constant(ids["pad"], tf.int32),
                       "segment_ids": tf.constant(0, tf.int32),
                       "padding_mask": tf.constant(0, tf.int32)},
                      tf.constant(0, label_dtype))
    padded_shapes = ({"token_ids": [None], "segment_ids": [None],
                      "padding_mask": [None]}, [])
    if bucket_boundaries:
        boundaries = sorted(int(b) for b in bucket_boundaries)
        dataset = dataset.bucket_by_sequence_length(
            lambda features, label: tf.shape(features["token_ids"])[0],
            bucket_boundaries=boundaries,
            bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
            padded_shapes=padded_shapes, padding_values=padding_values,
            drop_remainder=drop_remainder)
    else:
        dataset = dataset.padded_batch(
            batch_size, padded_shapes=padded_shapes,
            padding_values=padding_values, drop_remainder=drop_remainder)
        if size >= 0 and not repeat:
            batches = size // batch_size if drop_remainder else -(
                -size // batch_size)
            dataset = dataset.apply(
                tf.data.experimental.assert_cardinality(batches))
    return dataset.prefetch(tf.data.AUTOTUNE)
