"""Packing text into pretraining sequences, in Python and in ``tf.data``.

Text format (as BERT's ``create_pretraining_data``): plain text files with
one sentence (or paragraph) per line and documents separated by blank lines.

Packing (RoBERTa's "doc-sentences"): each line is tokenised; a line longer
than the budget (``max_seq_length - 2``) is cut into budget-sized pieces;
pieces are appended greedily to the current sequence until the next one
does not fit, and a sequence never crosses a document boundary. Every
sequence becomes ``[CLS] tokens [SEP]`` (``<s> ... </s>`` for BPE
vocabularies) with segment ids 0. The same algorithm exists twice, in
Python (``pack_documents``, used by ``tools/create_pretraining_data.py``)
and in ``tf.data`` (``packed_text_dataset``, for reading raw text on the
fly); a test checks that they agree.

Examples:
>>> list(read_documents(["one", "two", "", "three"]))
[['one', 'two'], ['three']]
>>> pack_documents([[[1, 2], [3, 4, 5]], [[6]]], budget=4)
[[1, 2], [3, 4, 5], [6]]
>>> with_special_tokens([1, 2], {"cls": 101, "sep": 102})
[101, 1, 2, 102]
"""

import numpy as np
import tensorflow as tf

# --- Python side (tools/create_pretraining_data.py). ----------------------


def read_documents(lines):
    """Groups lines into documents: a blank line ends a document.

    Args:
        lines: iterable of str (e.g. an open text file).

    Yields:
        list of str: the stripped, non-empty lines of one document.
    """
    document = []
    for line in lines:
        line = line.strip()
        if line:
            document.append(line)
        elif document:
            yield document
            document = []
    if document:
        yield document


def tokenize_lines(tokenizer, lines):
    """Token ids of each line, as lists of int (keras-hub tokenizer)."""
    if not lines:
        return []
    out = tokenizer(list(lines))
    if hasattr(out, "to_list"):
        out = out.to_list()
    return [[int(t) for t in row] for row in out]


def split_pieces(tokens, budget):
    """``tokens`` cut into consecutive pieces of at most ``budget``."""
    return [list(tokens[i:i + budget]) for i in range(0, len(tokens), budget)]


def pack_documents(documents, budget):
    """Greedy packing of tokenised lines into sequences of ``<= budget``.

    Args:
        documents: iterable of documents, each a list of token-id lists (one
            per line).
        budget: int. Maximum tokens per sequence, without special tokens.

    Returns:
        list of lists of int: the packed sequences, in order.
    """
    if budget < 1:
        raise ValueError(f"The packing budget must be >= 1, got {budget}.")
    sequences = []
    for document in documents:
        current = []
        for line in document:
            for piece in split_pieces(line, budget):
                if current and len(current) + len(piece) > budget:
                    sequences.append(current)
                    current = []
                current = current + piece
        if current:
            sequences.append(current)
    return sequences


def with_special_tokens(sequence, special_ids):
    """``[CLS] sequence [SEP]`` as a list."""
    return [special_ids["cls"], *sequence, special_ids["sep"]]


def _budget(max_seq_length):
    if max_seq_length < 3:
        raise ValueError(
            f"max_seq_length must be >= 3 (two special tokens and at least "
            f"one token), got {max_seq_length}.")
    return int(max_seq_length) - 2


def sequence_stats(sequences):
    """Count, mean length and fill ratio of a list of packed sequences."""
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    if not len(lengths):
        return {"sequences": 0, "tokens": 0, "mean_length": 0.0}
    return {"sequences": int(len(lengths)), "tokens": int(lengths.sum()),
            "mean_length": float(lengths.mean())}


# --- tf.data side (raw text on the fly). ----------------------------------


def _document_ids(lines):
    """``lines`` (strings) -> ``(stripped line, document id)`` for
    non-empty lines; a blank line starts a new document."""

    def step(doc, line):
        line = tf.strings.strip(line)
        empty = tf.equal(tf.strings.length(line), 0)
        doc = tf.where(empty, doc + 1, doc)
        return doc, (line, doc, empty)

    lines = lines.scan(tf.constant(0, tf.int64), step)
    lines = lines.filter(lambda line, doc, empty: tf.logical_not(empty))
    return lines.map(lambda line, doc, empty: (line, doc))


def _pieces(tokens, doc, budget):
    """A 1-D token tensor cut into pieces of at most ``budget``."""
    n = tf.size(tokens, out_type=tf.int64)
    full = n // budget
    rest = n % budget
    lengths = tf.concat(
        [tf.fill([full], tf.constant(budget, tf.int64)),
         tf.reshape(rest, [1])[: tf.cast(rest > 0, tf.int32)]], axis=0)
    padded = tf.reshape(
        tf.pad(tokens, [[0, (budget - n % budget) % budget]]), [-1, budget])
    docs = tf.fill([tf.size(lengths)], doc)
    return tf.data.Dataset.from_tensor_slices((padded, lengths, docs)).map(
        lambda row, length, d: (row[:length], d))


def _pack(pieces, budget):
    """Greedy packing of ``(piece, doc)`` elements (see ``pack_documents``)."""
    budget = tf.constant(budget, tf.int32)

    def step(state, element):
        buffer, current_doc = state
        piece, doc = element
        used = tf.size(buffer)
        flush = tf.logical_and(
            used > 0,
            tf.logical_or(tf.not_equal(doc, current_doc),
                          used + tf.size(piece) > budget))
        new_buffer = tf.cond(flush, lambda: piece,
                             lambda: tf.concat([buffer, piece], axis=0))
        return (new_buffer, doc), (flush, buffer)

    # A sentinel from no document flushes the last sequence.
    end = tf.data.Dataset.from_tensors(
        (tf.zeros([0], tf.int32), tf.constant(-1, tf.int64)))
    pieces = pieces.concatenate(end)
    initial = (tf.zeros([0], tf.int32), tf.constant(-1, tf.int64))
    packed = pieces.scan(initial, step)
    packed = packed.filter(lambda flush, sequence: flush)
    return packed.map(lambda flush, sequence: sequence)


def packed_text_dataset(lines, tokenizer, max_seq_length, special_ids,
                        tokenize_batch=256):
    """Packed sequences from a dataset of text lines, in ``tf.data``.

    Args:
        lines: ``tf.data.Dataset`` of scalar strings, one line each; blank
            lines separate documents.
        tokenizer: keras-hub tokenizer (WordPiece or byte-level BPE).
        max_seq_length: int. Length of a sequence with its special tokens.
        special_ids: dict from ``trimzoo.models.tokenizers.special_token_ids``.
        tokenize_batch: int. Lines tokenised per call.

    Returns:
        ``tf.data.Dataset`` of int32 ``[length]`` sequences
        ``[CLS] ... [SEP]``, the same as ``pack_documents`` followed by
        ``with_special_tokens``.
    """
    budget = _budget(max_seq_length)
    lines = _document_ids(lines)
    tokens = lines.batch(tokenize_batch).map(
        lambda text, doc: (tf.cast(tokenizer(text), tf.int32), doc),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).unbatch()
    pieces = tokens.flat_map(lambda t, d: _pieces(t, d, budget))
    packed = _pack(pieces, budget)
    cls_id, sep_id = special_ids["cls"], special_ids["sep"]
    return packed.map(
        lambda seq: tf.concat([[cls_id], seq, [sep_id]], axis=0))
