"""Trains a WordPiece vocabulary from text files.

    python tools/build_vocab.py --input='corpus/*.txt' --output=DIR \
        --vocab_size=30522

Uses keras-hub's ``compute_word_piece_vocabulary`` (tf-text's BERT
vocabulary learner). Writes ``DIR/vocab.txt`` ([PAD], [UNK], [CLS], [SEP],
[MASK] first) and ``DIR/tokenizer_config.json``; pass ``DIR`` as
``--vocab`` to create_pretraining_data.py or ``--config.data.vocab`` to
pretrain.py. With no --input it learns from the embedded corpus (the Rotten
Tomatoes snippets, training split).
"""

import logging
import time

import _common  # noqa: F401  (path and logging set-up)
from absl import app, flags

flags.DEFINE_string("input", "", "Comma-separated globs of text files; "
                    "empty = the embedded corpus.")
flags.DEFINE_string("output", None, "Output folder for vocab.txt.")
flags.DEFINE_integer("vocab_size", 30522, "Target vocabulary size.")
flags.DEFINE_bool("lowercase", True, "Lowercase (uncased vocabulary).")
flags.DEFINE_bool("strip_accents", True, "Strip accents.")
flags.mark_flag_as_required("output")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    logging.getLogger().setLevel(logging.INFO)
    from trimzoo.data import pretraining

    from trimzoo.utils.run_folder import check_output_location

    start = time.perf_counter()
    source = pretraining.resolve_sources(FLAGS.input)
    check_output_location(FLAGS.output, source.get("files", []),
                          flag="--output")
    logging.info("Learning a vocabulary from %s.",
                 f"{len(source['files'])} files" if "files" in source
                 else f"the embedded corpus ({len(source['texts'])} lines)")
    path = pretraining.build_wordpiece_vocabulary(
        FLAGS.output, FLAGS.vocab_size, lowercase=FLAGS.lowercase,
        strip_accents=FLAGS.strip_accents, **source)
    with open(path, encoding="utf-8") as f:
        size = sum(1 for _ in f)
    print(f"Wrote {path}: {size} tokens in "
          f"{time.perf_counter() - start:.1f} s.")


if __name__ == "__main__":
    _common.run(main)
