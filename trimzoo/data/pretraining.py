"""Masked-LM pretraining data: packing, TFRecords and dynamic masking.

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

Masking is dynamic (a new mask every epoch, as RoBERTa) and happens in the
input pipeline with keras-hub's ``MaskedLMMaskGenerator`` (BERT's 15% of
tokens, 80% ``[MASK]`` / 10% random / 10% unchanged, special tokens never
selected). Its random draws are made stateless, keyed by the seed and the
example's position in the stream (``StatelessMaskedLMMaskGenerator``), so
the masks are reproducible under parallel ``map`` and a resumed run sees
exactly the masks an uninterrupted run would have seen.
"""

import json
import math
import os

import keras_hub
import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

FEATURE = "token_ids"
METADATA_FILE = "metadata.json"
AUTOTUNE = tf.data.AUTOTUNE


# ---------------------------------------------------------------------------
# Packing, Python side (tools/create_pretraining_data.py).
# ---------------------------------------------------------------------------


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


def serialize_sequence(token_ids):
    """One packed sequence (with special tokens) as a ``tf.train.Example``."""
    feature = tf.train.Feature(
        int64_list=tf.train.Int64List(value=[int(t) for t in token_ids]))
    example = tf.train.Example(
        features=tf.train.Features(feature={FEATURE: feature}))
    return example.SerializeToString()


def parse_sequence(serialized):
    """Inverse of ``serialize_sequence``: an int32 ``[length]`` tensor."""
    parsed = tf.io.parse_single_example(
        serialized, {FEATURE: tf.io.RaggedFeature(tf.int64)})
    return tf.cast(parsed[FEATURE], tf.int32)


def read_metadata(folder):
    """The ``metadata.json`` that ``create_pretraining_data`` writes, or
    None."""
    path = os.path.join(folder, METADATA_FILE)
    if not tf.io.gfile.exists(path):  # local or gs:// folders
        return None
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


# ---------------------------------------------------------------------------
# Packing, tf.data side (raw text on the fly).
# ---------------------------------------------------------------------------


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
        special_ids: dict from ``trimzoo.data.tokenizers.special_token_ids``.
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
        num_parallel_calls=AUTOTUNE, deterministic=True).unbatch()
    pieces = tokens.flat_map(lambda t, d: _pieces(t, d, budget))
    packed = _pack(pieces, budget)
    cls_id, sep_id = special_ids["cls"], special_ids["sep"]
    return packed.map(
        lambda seq: tf.concat([[cls_id], seq, [sep_id]], axis=0))


def with_special_tokens(sequence, special_ids):
    """``[CLS] sequence [SEP]`` as a list."""
    return [special_ids["cls"], *sequence, special_ids["sep"]]


def _budget(max_seq_length):
    if max_seq_length < 3:
        raise ValueError(
            f"max_seq_length must be >= 3 (two special tokens and at least "
            f"one token), got {max_seq_length}.")
    return int(max_seq_length) - 2


# ---------------------------------------------------------------------------
# Dynamic masking.
# ---------------------------------------------------------------------------


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
    >>> gen = StatelessMaskedLMMaskGenerator(
    ...     vocabulary_size=50, mask_selection_rate=0.5, mask_token_id=4,
    ...     mask_selection_length=4, unselectable_token_ids=[0, 2, 3])
    >>> out = gen.mask(tf.constant([2, 10, 11, 12, 13, 3]), seed=[1, 7])
    >>> sorted(out.keys())
    ['mask_ids', 'mask_positions', 'mask_weights', 'token_ids']
    >>> int(tf.reduce_sum(out["mask_weights"]))
    2
    """

    _seeds = None

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


def default_max_predictions(max_seq_length, mask_rate=0.15):
    """BERT's ``max_predictions_per_seq``: enough for every sequence."""
    return int(math.ceil(max_seq_length * mask_rate))


def masked_lm_features(sequences, special_ids, vocabulary_size,
                       max_seq_length, seed=0, max_predictions=None,
                       mask_rate=0.15, mask_token_rate=0.8,
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
    return indexed.map(mask_one, num_parallel_calls=AUTOTUNE,
                       deterministic=True)


# ---------------------------------------------------------------------------
# Sources and the full pipeline.
# ---------------------------------------------------------------------------


def list_files(patterns):
    """Sorted files matching a comma-separated list of globs or folders
    (a folder means its ``*.tfrecord`` files)."""
    if isinstance(patterns, str):
        patterns = [p for p in patterns.split(",") if p.strip()]
    files = []
    for pattern in patterns:
        pattern = pattern.strip()
        if tf.io.gfile.isdir(pattern):
            pattern = os.path.join(pattern, "*.tfrecord")
        matched = tf.io.gfile.glob(pattern)
        if not matched:
            raise FileNotFoundError(f"No files match {pattern!r}.")
        files.extend(matched)
    return sorted(set(files))


def detect_format(files):
    """``"tfrecord"`` if every file ends in ``.tfrecord``, ``"text"`` if
    none does."""
    records = [f.endswith(".tfrecord") for f in files]
    if all(records):
        return "tfrecord"
    if not any(records):
        return "text"
    raise ValueError(
        "Mixed inputs: some files are .tfrecord and some are not; pass one "
        "kind (or set data.format).")


def make_pretraining_dataset(
    batch_size,
    tokenizer,
    special_ids,
    max_seq_length,
    files=None,
    texts=None,
    data_format="auto",
    seed=0,
    max_predictions=None,
    mask_rate=0.15,
    mask_token_rate=0.8,
    random_token_rate=0.1,
    shuffle_buffer=10_000,
    cycle_length=8,
    start_batch=0,
    num_input_pipelines=1,
    input_pipeline_id=0,
):
    """The pretraining input pipeline for one host (input pipeline).

    Sources (exactly one): ``files`` (TFRecords of packed sequences or text
    files) or ``texts`` (a list of lines in memory, e.g. the embedded
    corpus). Files are sharded over input pipelines when there are enough
    of them, else the sequence stream is; file order is reshuffled every
    epoch, files are read with a parallel ``interleave``, sequences go
    through a shuffle buffer, masking runs in a parallel ``map``, batches
    are prefetched. Everything is deterministic given ``seed``.

    Args:
        batch_size: int. Batch size of this pipeline (per replica under
            ``distribute_datasets_from_function``).
        tokenizer: keras-hub tokenizer (text sources).
        special_ids: dict with ``cls``, ``sep``, ``pad``, ``mask``, ``unk``.
        max_seq_length: int.
        files: list of paths, or None.
        texts: list of str, or None.
        data_format: ``"auto"``, ``"tfrecord"`` or ``"text"``.
        seed: int.
        max_predictions, mask_rate, mask_token_rate, random_token_rate: see
            ``masked_lm_features``.
        shuffle_buffer: int. Sequences in the shuffle buffer (0: none).
        cycle_length: int. Files read at once.
        start_batch: int. Batches of this pipeline already consumed (the
            data position of a resumed run); they are skipped before
            parsing or masking.
        num_input_pipelines, input_pipeline_id: ints, from the
            ``tf.distribute.InputContext``.

    Returns:
        ``tf.data.Dataset`` of ``(x, y, sample_weight)`` batches with static
        shapes (``drop_remainder=True``), as ``masked_lm_features``.
    """
    if (files is None) == (texts is None):
        raise ValueError("Pass exactly one of `files` and `texts`.")
    budget_check = _budget(max_seq_length)
    del budget_check
    shard_stream = num_input_pipelines > 1
    if texts is not None:
        if not texts:
            raise ValueError("`texts` is empty.")
        lines = tf.data.Dataset.from_tensor_slices(list(texts))
        sequences = packed_text_dataset(lines, tokenizer, max_seq_length,
                                        special_ids)
        sequences = sequences.cache()
    else:
        files = list(files)
        if not files:
            raise ValueError("No input files.")
        if data_format == "auto":
            data_format = detect_format(files)
        if data_format not in ("tfrecord", "text"):
            raise ValueError(
                f"Unknown data format {data_format!r}. Valid values: "
                "'auto', 'tfrecord', 'text'.")
        if num_input_pipelines > 1 and len(files) >= num_input_pipelines:
            files = files[input_pipeline_id::num_input_pipelines]
            shard_stream = False
        n_files = len(files)
        file_ds = _epochs_of_files(files, seed)
        if data_format == "tfrecord":
            def read(path):
                return tf.data.TFRecordDataset(path).map(parse_sequence)
        else:
            def read(path):
                return packed_text_dataset(tf.data.TextLineDataset(path),
                                           tokenizer, max_seq_length,
                                           special_ids)
        sequences = file_ds.interleave(
            read, cycle_length=min(cycle_length, n_files), block_length=1,
            num_parallel_calls=AUTOTUNE, deterministic=True)
    if shard_stream:
        sequences = sequences.shard(num_input_pipelines, input_pipeline_id)
    sequences = sequences.repeat()
    if shuffle_buffer:
        sequences = sequences.shuffle(shuffle_buffer, seed=seed,
                                      reshuffle_each_iteration=False)
    dataset = masked_lm_features(
        sequences, special_ids, tokenizer.vocabulary_size(), max_seq_length,
        seed=seed, max_predictions=max_predictions, mask_rate=mask_rate,
        mask_token_rate=mask_token_rate,
        random_token_rate=random_token_rate,
        start_index=int(start_batch) * int(batch_size),
        seed_offset=input_pipeline_id)
    dataset = dataset.batch(batch_size, drop_remainder=True)
    options = tf.data.Options()
    options.deterministic = True
    options.experimental_optimization.map_parallelization = True
    dataset = dataset.with_options(options)
    return dataset.prefetch(AUTOTUNE)


def _epochs_of_files(files, seed):
    """An endless stream of ``files``, in a new order every epoch; the order
    of epoch ``e`` is a stateless function of ``(seed, e)``, so every
    iterator over the dataset sees the same stream."""
    names = tf.constant(files)

    def epoch(e):
        seeds = tf.stack([tf.constant(seed, tf.int64), e])
        order = tf.random.experimental.stateless_shuffle(
            tf.range(len(files)), seed=seeds)
        return tf.data.Dataset.from_tensor_slices(tf.gather(names, order))

    return tf.data.Dataset.counter().flat_map(epoch)


def vocabulary_sha256(vocabulary):
    """Digest of a token list (one token per line, UTF-8): identifies the
    vocabulary a set of TFRecords was made with."""
    import hashlib

    return hashlib.sha256("\n".join(vocabulary).encode("utf-8")).hexdigest()


def resolve_sources(patterns):
    """``{"files": [...]}`` for comma-separated globs or folders, or
    ``{"texts": [...]}`` (the embedded corpus, training split) for ``""``:
    keyword arguments for ``make_pretraining_dataset``,
    ``create_pretraining_records`` and ``build_wordpiece_vocabulary``."""
    if patterns:
        return {"files": list_files(patterns)}
    return {"texts": load_corpus_texts("train")}


def load_corpus_texts(split="train"):
    """The embedded corpus (Rotten Tomatoes review snippets) as a list of
    lines, one snippet each (one document: consecutive snippets are packed
    together)."""
    from trimzoo.data.rotten_tomatoes import load_split

    return [text for text, _ in load_split(split)]


def benchmark_dataset(dataset, num_batches=50, warmup_batches=5):
    """Examples/s and tokens/s that ``dataset`` delivers on its own.

    Args:
        dataset: a dataset from ``make_pretraining_dataset``.
        num_batches: int. Batches timed.
        warmup_batches: int. Batches pulled first (buffers filling).

    Returns:
        dict with ``examples_per_sec`` and ``tokens_per_sec``.
    """
    import time

    iterator = iter(dataset)
    for _ in range(warmup_batches):
        next(iterator)
    examples = tokens = 0
    start = time.perf_counter()
    for _ in range(num_batches):
        x, _, _ = next(iterator)
        examples += int(x["token_ids"].shape[0])
        tokens += int(tf.reduce_sum(x["padding_mask"]))
    elapsed = time.perf_counter() - start
    return {"examples_per_sec": examples / elapsed,
            "tokens_per_sec": tokens / elapsed}


def sequence_stats(sequences):
    """Count, mean length and fill ratio of a list of packed sequences."""
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    if not len(lengths):
        return {"sequences": 0, "tokens": 0, "mean_length": 0.0}
    return {"sequences": int(len(lengths)), "tokens": int(lengths.sum()),
            "mean_length": float(lengths.mean())}


# ---------------------------------------------------------------------------
# Building data: a WordPiece vocabulary and TFRecords of packed sequences.
# ---------------------------------------------------------------------------

BERT_RESERVED_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def build_wordpiece_vocabulary(output_dir, vocabulary_size, files=None,
                               texts=None, lowercase=True, strip_accents=True,
                               reserved_tokens=None):
    """Trains a WordPiece vocabulary with keras-hub's
    ``compute_word_piece_vocabulary`` (tf-text's BERT vocabulary learner).

    Writes ``output_dir/vocab.txt`` (the reserved tokens first: ``[PAD]``
    is id 0) and a ``tokenizer_config.json`` recording the casing, so
    ``trimzoo.data.tokenizers.load_tokenizer(output_dir)`` and
    ``data.vocab=output_dir`` use it.

    Args:
        output_dir: str. Created if needed.
        vocabulary_size: int. Target size (the learner may return a few
            tokens fewer).
        files: list of text files, or None.
        texts: list of str, or None (exactly one of the two).
        lowercase, strip_accents: bool. Uncased BERT normalisation.
        reserved_tokens: list of str. Defaults to BERT's five specials.

    Returns:
        str: the path of ``vocab.txt``.
    """
    if (files is None) == (texts is None):
        raise ValueError("Pass exactly one of `files` and `texts`.")
    if texts is not None:
        lines = tf.data.Dataset.from_tensor_slices(list(texts))
    else:
        lines = tf.data.TextLineDataset(list(files))
    lines = lines.filter(lambda line: tf.strings.length(
        tf.strings.strip(line)) > 0)
    reserved = list(reserved_tokens or BERT_RESERVED_TOKENS)
    if (isinstance(vocabulary_size, bool)
            or not isinstance(vocabulary_size, int)
            or vocabulary_size <= len(reserved)):
        raise ValueError(
            "vocabulary_size must be an integer above the "
            f"{len(reserved)} reserved tokens, got {vocabulary_size!r}.")
    vocabulary = keras_hub.tokenizers.compute_word_piece_vocabulary(
        lines.batch(1024), vocabulary_size, lowercase=lowercase,
        strip_accents=strip_accents, reserved_tokens=reserved)
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, "vocab.txt")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(vocabulary) + "\n")
    os.replace(tmp, path)
    with open(os.path.join(output_dir, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "BertTokenizer",
                   "do_lower_case": bool(lowercase),
                   # HF convention: None = follow do_lower_case.
                   "strip_accents": (None if strip_accents == lowercase
                                     else bool(strip_accents)),
                   "model_max_length": 512}, f, indent=2)
        f.write("\n")
    return path


_WORKER_TOKENIZERS = {}


def _worker_tokenizer(vocab):
    if vocab not in _WORKER_TOKENIZERS:
        from trimzoo.data.tokenizers import load_tokenizer

        _WORKER_TOKENIZERS[vocab] = load_tokenizer(vocab)
    return _WORKER_TOKENIZERS[vocab]


def _tokenize_documents(tokenizer, documents, chunk=2048):
    """Tokenised documents (lists of token lists), lines batched."""
    flat = [line for document in documents for line in document]
    ids = []
    for start in range(0, len(flat), chunk):
        ids.extend(tokenize_lines(tokenizer, flat[start:start + chunk]))
    out, i = [], 0
    for document in documents:
        out.append(ids[i:i + len(document)])
        i += len(document)
    return out


def _records_for_source(task):
    """Worker: one input (file or in-memory lines) -> shuffled packed
    sequences written to ``part-IIIII-SSS.tfrecord``; returns stats."""
    (index, source, lines, vocab, max_seq_length, seed, output_dir,
     records_per_shard) = task
    from trimzoo.data.tokenizers import special_token_ids

    tokenizer = _worker_tokenizer(vocab)
    special_ids = special_token_ids(tokenizer)
    if lines is None:
        with open(source, encoding="utf-8", errors="replace") as f:
            documents = list(read_documents(f))
    else:
        documents = list(read_documents(lines))
    tokenized = _tokenize_documents(tokenizer, documents)
    sequences = [with_special_tokens(s, special_ids)
                 for s in pack_documents(tokenized, _budget(max_seq_length))]
    order = np.random.default_rng([int(seed), index]).permutation(
        len(sequences))
    names = []
    for shard, start in enumerate(range(0, len(order), records_per_shard)):
        name = f"part-{index:05d}-{shard:03d}.tfrecord"
        tmp = os.path.join(output_dir, name + ".tmp")
        with tf.io.TFRecordWriter(tmp) as writer:
            for i in order[start:start + records_per_shard]:
                writer.write(serialize_sequence(sequences[i]))
        os.replace(tmp, os.path.join(output_dir, name))
        names.append(name)
    stats = sequence_stats(sequences)
    stats.update(index=index, source=source, files=names,
                 documents=len(documents),
                 lines=sum(len(d) for d in documents))
    return stats


def create_pretraining_records(output_dir, vocab, max_seq_length=128,
                               files=None, texts=None, seed=0, workers=1,
                               records_per_shard=100_000, overwrite=False,
                               progress=True):
    """Text -> sharded TFRecords of packed sequences (``pack_documents``).

    Each input file is one task (run in parallel over ``workers``
    processes) and becomes ``part-<file index>-<shard>.tfrecord`` files of
    at most ``records_per_shard`` sequences, shuffled with a seed derived
    from ``(seed, file index)``: the output is the same for any number of
    workers. ``metadata.json`` is written last and records the vocabulary
    (size and digest, checked by the training pipeline), the length and the
    counts.

    Args:
        output_dir: str.
        vocab: str. Tokenizer folder (WordPiece ``vocab.txt`` or BPE
            ``vocab.json`` + ``merges.txt``).
        max_seq_length: int. Sequence length with the two special tokens.
        files: list of text files (one sentence per line, blank lines
            between documents), or None.
        texts: list of str (lines in memory, e.g. the embedded corpus), or
            None.
        seed: int.
        workers: int. Processes; 1 runs in this process.
        records_per_shard: int.
        overwrite: bool. Replace existing records in ``output_dir``.
        progress: bool. Show a progress bar.

    Returns:
        dict: the metadata written.
    """
    from trimzoo.data.tokenizers import load_tokenizer

    if (files is None) == (texts is None):
        raise ValueError("Pass exactly one of `files` and `texts`.")
    _budget(max_seq_length)
    os.makedirs(output_dir, exist_ok=True)
    existing = tf.io.gfile.glob(os.path.join(output_dir, "*.tfrecord"))
    if existing and not overwrite:
        raise FileExistsError(
            f"{output_dir!r} already holds {len(existing)} TFRecord files; "
            "pass overwrite=True (--overwrite) to replace them.")
    for path in existing + [os.path.join(output_dir, METADATA_FILE)]:
        if os.path.exists(path):
            os.remove(path)
    vocab = os.path.abspath(vocab)
    if os.path.isfile(vocab):  # a vocab.txt: its folder holds the config
        vocab = os.path.dirname(vocab)
    tokenizer = load_tokenizer(vocab)
    common = (vocab, int(max_seq_length), int(seed), output_dir,
              int(records_per_shard))
    if texts is not None:
        tasks = [(0, "<memory>", list(texts), *common)]
    else:
        tasks = [(i, os.path.abspath(f), None, *common)
                 for i, f in enumerate(sorted(files))]
    results = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(tasks), unit="file", desc="packing")
    if workers > 1 and len(tasks) > 1:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        with context.Pool(min(workers, len(tasks))) as pool:
            for stats in pool.imap_unordered(_records_for_source, tasks):
                results.append(stats)
                if bar:
                    bar.update(1)
                    bar.set_postfix(sequences=sum(
                        r["sequences"] for r in results))
    else:
        _WORKER_TOKENIZERS[vocab] = tokenizer
        for task in tasks:
            results.append(_records_for_source(task))
            if bar:
                bar.update(1)
                bar.set_postfix(sequences=sum(r["sequences"]
                                              for r in results))
    if bar:
        bar.close()
    results.sort(key=lambda r: r["index"])
    vocabulary = tokenizer.get_vocabulary()
    sequences = sum(r["sequences"] for r in results)
    tokens = sum(r["tokens"] for r in results)
    metadata = {
        "max_seq_length": int(max_seq_length),
        "vocab": vocab,
        "vocabulary_size": len(vocabulary),
        "vocabulary_sha256": vocabulary_sha256(vocabulary),
        "tokenizer": type(tokenizer).__name__,
        "seed": int(seed),
        "sequences": int(sequences),
        "tokens": int(tokens),
        "mean_length": tokens / max(sequences, 1),
        "fill": tokens / max(sequences * int(max_seq_length), 1),
        "documents": int(sum(r["documents"] for r in results)),
        "lines": int(sum(r["lines"] for r in results)),
        "files": [f for r in results for f in r["files"]],
        "sources": [r["source"] for r in results],
    }
    tmp = os.path.join(output_dir, METADATA_FILE + ".tmp")
    with open(tmp, "w") as f:
        json.dump(metadata, f, indent=2)
        f.write("\n")
    os.replace(tmp, os.path.join(output_dir, METADATA_FILE))
    return metadata
