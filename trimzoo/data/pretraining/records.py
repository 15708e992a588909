"""TFRecords of packed sequences: the format, and a multiprocess writer
(``tools/create_pretraining_data.py``)."""

import contextlib
import hashlib
import json
import multiprocessing
import os

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from trimzoo.data.pretraining.packing import (
    _budget,
    pack_documents,
    read_documents,
    sequence_stats,
    tokenize_lines,
    with_special_tokens,
)
from trimzoo.models.tokenizers import load_tokenizer, special_token_ids
from trimzoo.utils.io import atomic_path, write_json
from trimzoo.utils.run_folder import check_output_location

FEATURE = "token_ids"
METADATA_FILE = "metadata.json"


def serialize_sequence(token_ids):
    """One packed sequence (with special tokens) as a ``tf.train.Example``.

    Examples:
    >>> record = serialize_sequence([2, 7, 8, 3])
    >>> parse_sequence(record).numpy().tolist()
    [2, 7, 8, 3]
    """
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


def vocabulary_sha256(vocabulary):
    """Digest of a token list (one token per line, UTF-8): identifies the
    vocabulary a set of TFRecords was made with."""
    return hashlib.sha256("\n".join(vocabulary).encode("utf-8")).hexdigest()


_WORKER_TOKENIZERS = {}


def _worker_tokenizer(vocab):
    if vocab not in _WORKER_TOKENIZERS:
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
        with atomic_path(os.path.join(output_dir, name)) as tmp:
            with tf.io.TFRecordWriter(tmp) as writer:
                for i in order[start:start + records_per_shard]:
                    writer.write(serialize_sequence(sequences[i]))
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

    Examples:
    Two documents (a blank line between them) become two sequences:

    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> with open(os.path.join(folder, "vocab.txt"), "w") as f:
    ...     _ = f.write("\\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]",
    ...                           "[MASK]", "a", "good", "film"]))
    >>> out = os.path.join(folder, "records")
    >>> metadata = create_pretraining_records(
    ...     out, folder, max_seq_length=8, progress=False,
    ...     texts=["a good film", "good film", "", "a film"])
    >>> metadata["sequences"], metadata["files"]
    (2, ['part-00000-000.tfrecord'])
    >>> records = tf.data.TFRecordDataset(os.path.join(out, metadata["files"][0]))
    >>> sorted(parse_sequence(r).numpy().tolist() for r in records)
    [[2, 5, 6, 7, 6, 7, 3], [2, 5, 7, 3]]
    >>> read_metadata(out)["vocabulary_size"]
    8
    """
    if (files is None) == (texts is None):
        raise ValueError("Pass exactly one of `files` and `texts`.")
    _budget(max_seq_length)
    if "://" not in output_dir:  # a local folder (not gs://)
        check_output_location(output_dir, list(files or []),
                              flag="--output")
    os.makedirs(output_dir, exist_ok=True)
    existing = tf.io.gfile.glob(os.path.join(output_dir, "*.tfrecord"))
    if existing and not overwrite:
        raise FileExistsError(
            f"{output_dir!r} already holds {len(existing)} TFRecord files; "
            "pass overwrite=True (--overwrite) to replace them.")
    # Overwrite removes the records an earlier run listed in its metadata,
    # never TFRecord files that this tool did not write.
    ours = {os.path.join(output_dir, name) for name in
            (read_metadata(output_dir) or {}).get("files", [])}
    foreign = sorted(set(existing) - ours)
    if foreign:
        raise FileExistsError(
            f"{output_dir!r} holds TFRecord files that no earlier run of "
            f"this tool listed ({', '.join(map(os.path.basename, foreign[:3]))}"
            f"{', ...' if len(foreign) > 3 else ''}); nothing is replaced. "
            "Choose a new output folder.")
    for path in sorted(ours) + [os.path.join(output_dir, METADATA_FILE)]:
        if tf.io.gfile.exists(path):
            tf.io.gfile.remove(path)
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
    with contextlib.ExitStack() as stack:
        if workers > 1 and len(tasks) > 1:
            pool = stack.enter_context(multiprocessing.get_context(
                "spawn").Pool(min(workers, len(tasks))))
            stream = pool.imap_unordered(_records_for_source, tasks)
        else:
            _WORKER_TOKENIZERS[vocab] = tokenizer
            stream = map(_records_for_source, tasks)
        bar = stack.enter_context(tqdm(total=len(tasks), unit="file",
                                       desc="packing", disable=not progress))
        for stats in stream:
            results.append(stats)
            bar.update(1)
            bar.set_postfix(sequences=sum(r["sequences"] for r in results))
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
    write_json(os.path.join(output_dir, METADATA_FILE), metadata)
    return metadata
