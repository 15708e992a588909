"""Model inputs of real text for timing: the embedded review sentences,
tokenised with the embedded BERT vocabulary and packed into full
sequences (no padding, so every position is real work). The benchmark and
the search's costs time models on them.

Examples:

>>> inputs = text_inputs(batch_size=2, seq_len=8, vocabulary_size=100)
>>> inputs["token_ids"].shape, int(inputs["token_ids"].max()) < 100
((2, 8), True)
"""

import functools

import numpy as np

from trimzoo.data.pipeline import encode_dataset
from trimzoo.data.rotten_tomatoes import load_split
from trimzoo.data.tasks import get_task
from trimzoo.models.tokenizers import load_tokenizer, special_token_ids
from trimzoo.utils.embedded import minilm_path

#: Number of sentences of the embedded corpus packed into benchmark inputs.
_TEXT_SENTENCES = 400


@functools.lru_cache(maxsize=1)
def corpus_token_stream():
    """Word-piece ids of real review sentences, ``[CLS] s1 [SEP] s2 ...``.

    Uses the embedded BERT vocabulary and the Rotten Tomatoes test split,
    both installed as data packages (see docs/data.md).
    """
    tokenizer = load_tokenizer(str(minilm_path()))
    special = special_token_ids(tokenizer)
    texts = [text for text, _ in load_split("test")[:_TEXT_SENTENCES]]
    stream = []
    for ids in tokenizer(texts):
        stream.extend([special["cls"], *np.asarray(ids).tolist(),
                       special["sep"]])
    return np.asarray(stream, dtype="int32"), special


def text_inputs(batch_size, seq_len, vocabulary_size, offset=0):
    """Backbone inputs of real text: the tokenised corpus cut into
    ``batch_size`` full sequences of ``seq_len`` tokens (no padding, so
    every position is real work). Ids outside a smaller vocabulary map to
    ``[UNK]`` (to id 1 when even that is outside).

    Returns:
        dict of int32 arrays ``token_ids``, ``segment_ids``,
        ``padding_mask`` of shape ``[batch_size, seq_len]``.
    """
    stream, special = corpus_token_stream()
    need = batch_size * seq_len
    reps = -(-(offset + need) // len(stream))
    ids = np.tile(stream, reps)[offset:offset + need].reshape(
        batch_size, seq_len).copy()
    unk = special["unk"] if special["unk"] < vocabulary_size else 1
    ids[ids >= vocabulary_size] = unk
    return {
        "token_ids": ids,
        "segment_ids": np.zeros_like(ids),
        "padding_mask": np.ones_like(ids),
    }


def encode_fixed(tokenizer, examples, max_seq_length):
    """Real text packed and padded to ``max_seq_length`` (as served by a
    fixed-shape TFLite model). Returns ``(inputs, labels)`` as arrays.

    Examples:

    >>> tokenizer = load_tokenizer(str(minilm_path()))
    >>> inputs, labels = encode_fixed(
    ...     tokenizer, [("a fine film", 1), ("dull", 0)], max_seq_length=16)
    >>> inputs["token_ids"].shape, labels.tolist()
    ((2, 16), [1, 0])
    """
    ds = encode_dataset(examples, tokenizer, get_task("rotten_tomatoes"),
                        max_seq_length=max_seq_length, batch_size=256)
    parts, labels = [], []
    for features, label in ds.as_numpy_iterator():
        pad = max_seq_length - features["token_ids"].shape[1]
        parts.append({k: np.pad(v, ((0, 0), (0, pad)))
                      for k, v in features.items()})
        labels.append(label)
    inputs = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return inputs, np.concatenate(labels)
