"""Text files -> sharded TFRecords of packed masked-LM sequences.

    python tools/create_pretraining_data.py --input='corpus/*.txt' \
        --vocab=VOCAB_DIR --output=DIR --max_seq_length=128 [--workers=8]

Input: plain text, one sentence (or paragraph) per line, a blank line
between documents. Lines are tokenised (WordPiece ``vocab.txt`` or
byte-level BPE ``vocab.json`` + ``merges.txt``) and packed greedily into
sequences of up to ``max_seq_length`` tokens that never cross a document
boundary; masking happens later, dynamically, in the training pipeline.
Files are processed in parallel (one process per file), each becoming
shuffled shards ``part-<file>-<shard>.tfrecord``; the result depends only
on the inputs and --seed. ``DIR/metadata.json`` records the vocabulary and
counts. With no --input the embedded corpus is used; with no --vocab the
embedded bert-base-uncased vocabulary.
"""

import json
import logging
import os
import time

import _common  # noqa: F401  (path and logging set-up)
from absl import app, flags

flags.DEFINE_string("input", "", "Comma-separated globs of text files; "
                    "empty = the embedded corpus (training split).")
flags.DEFINE_string("vocab", "", "Tokenizer folder or vocab.txt; empty = "
                    "the embedded bert-base-uncased vocabulary.")
flags.DEFINE_string("output", None, "Output folder.")
flags.DEFINE_integer("max_seq_length", 128, "Tokens per sequence, with "
                     "[CLS] and [SEP].")
flags.DEFINE_integer("seed", 0, "Shuffling seed.")
flags.DEFINE_integer("workers", os.cpu_count() or 1, "Parallel processes.")
flags.DEFINE_integer("records_per_shard", 100_000, "Sequences per file.")
flags.DEFINE_bool("overwrite", False, "Replace existing records.")
flags.mark_flag_as_required("output")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    logging.getLogger().setLevel(logging.INFO)
    from trimzoo.data import pretraining
    from trimzoo.training.pretrain import embedded_vocabulary_folder

    start = time.perf_counter()
    source = pretraining.resolve_sources(FLAGS.input)
    metadata = pretraining.create_pretraining_records(
        FLAGS.output, FLAGS.vocab or embedded_vocabulary_folder(),
        max_seq_length=FLAGS.max_seq_length, seed=FLAGS.seed,
        workers=FLAGS.workers, records_per_shard=FLAGS.records_per_shard,
        overwrite=FLAGS.overwrite, **source)
    summary = {k: metadata[k] for k in ("sequences", "tokens", "mean_length",
                                        "fill", "documents", "lines")}
    summary["record_files"] = len(metadata["files"])
    summary["seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    _common.run(main)
