"""The pretraining input pipeline: sources, sharding, shuffling, masking,
batching; and a measurement of what it delivers."""

import os
import time

import tensorflow as tf

from trimzoo.data.pretraining.masking import MASK_RATE, masked_lm_features
from trimzoo.data.pretraining.packing import _budget, packed_text_dataset
from trimzoo.data.pretraining.records import parse_sequence
from trimzoo.data.rotten_tomatoes import load_split


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
    none does.

    Examples:
    >>> detect_format(["a.tfrecord", "b.tfrecord"]), detect_format(["a.txt"])
    ('tfrecord', 'text')
    >>> detect_format(["a.tfrecord", "b.txt"])
    Traceback (most recent call last):
    ...
    ValueError: Mixed inputs: ...
    """
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
    mask_rate=MASK_RATE,
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
    _budget(max_seq_length)  # a clear error for a too short length
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
            num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
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
    return dataset.prefetch(tf.data.AUTOTUNE)


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
