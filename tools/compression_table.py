r"""The compression table: smaller models from a fine-tuned one, with and
without task distillation, on one accuracy-vs-latency table.

    python tools/compression_table.py --out=compress_out                 # all methods
    python tools/compression_table.py --out=compress_out --teacher=RUN/best \
        --methods=top2,prune50 --epochs=2

Without --teacher, all-MiniLM-L6-v2 is first fine-tuned on the embedded
Rotten Tomatoes task (mean pooling) into OUT/teacher. Every method cuts a
student from the teacher by weight inheritance (layers dropped, heads and
FFN neurons pruned, a narrower hidden size, TrimBERT conversion, and that
conversion healed by a short hidden-state distillation in pretraining),
which is fine-tuned on labels alone and with the teacher's logits; then every
architecture is timed round-robin (Keras float32 and TFLite dynamic int8,
batch 1). Writes OUT/table.md, OUT/results.json, OUT/accuracy_latency.png.
A re-run resumes finished runs.
"""

import _common  # noqa: F401  (path and logging set-up)
from absl import app, flags

flags.DEFINE_string("out", "compress_out", "Output folder.")
flags.DEFINE_string("teacher", "", "Fine-tuned classifier folder (RUN/best); "
                    "empty: fine-tune all-MiniLM-L6-v2 first.")
flags.DEFINE_string("methods", "top2,contribution2,prune50,prune25,"
                    "hidden256,trimbert,trimbert_healed",
                    "Comma-separated methods.")
flags.DEFINE_bool("labels_only", True, "Also train each student on labels "
                  "alone (the row without distillation).")
flags.DEFINE_integer("train_examples", 0, "Training examples (0 = all).")
flags.DEFINE_integer("epochs", 1, "Fine-tuning epochs per student.")
flags.DEFINE_float("learning_rate", 1e-4, "Students' learning rate.")
flags.DEFINE_integer("teacher_epochs", 2, "Teacher fine-tuning epochs.")
flags.DEFINE_float("teacher_learning_rate", 1e-4, "Teacher's learning rate.")
flags.DEFINE_integer("max_seq_length", 64, "Token budget per example.")
flags.DEFINE_bool("export", True, "Also time TFLite dynamic int8 files.")
flags.DEFINE_integer("heal_steps", 300, "Pretraining steps (batch 32) that "
                     "heal the trimbert_healed student before fine-tuning.")
flags.DEFINE_bool("runlocal", False, "A quick run of every stage (about two "
                  "minutes on 2 cores): 96 training and 64 evaluation reviews, "
                  "one teacher epoch, 3 steps per epoch, the top2 row "
                  "distilled (other --methods allowed), 4 healing steps, 32 "
                  "tokens, 5 timing rounds, no TFLite.")
flags.DEFINE_integer("bucket_width", 8, "Batch training reviews of similar "
                     "length (buckets this many tokens wide; 0 = plain "
                     "batches).")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    from trimzoo.experiments.compression_table import (
        OUTPUTS, compression_table, finetune_teacher, parse_methods)
    from trimzoo.utils.run_folder import RunFolder

    with RunFolder(FLAGS.out, "compression_table", {}, OUTPUTS,
                   inputs=[FLAGS.teacher], adopt="runs"):
        _run(compression_table, finetune_teacher, parse_methods)


def _run(compression_table, finetune_teacher, parse_methods):
    import os

    from configs.finetune import get_config
    from configs.pretrain import get_config as get_pretrain_config

    methods = parse_methods(FLAGS.methods)
    sizes = dict(train_examples=FLAGS.train_examples,
                 max_seq_length=FLAGS.max_seq_length, export=FLAGS.export,
                 heal_steps=FLAGS.heal_steps, rounds=30)
    teacher_epochs = FLAGS.teacher_epochs
    if FLAGS.runlocal:
        if not FLAGS["methods"].present:
            methods = parse_methods("top2")
        sizes = dict(train_examples=96, max_seq_length=32, export=False,
                     heal_steps=4, rounds=5)
        teacher_epochs = 1

    def make_config():
        config = get_config("task=rotten_tomatoes")
        if FLAGS.runlocal:
            config.data.max_eval_examples = 64
            config.train.max_steps_per_epoch = 3
        return config

    teacher = FLAGS.teacher or finetune_teacher(
        os.path.join(FLAGS.out, "teacher"), make_config,
        epochs=teacher_epochs, learning_rate=FLAGS.teacher_learning_rate,
        train_examples=sizes["train_examples"],
        max_seq_length=sizes["max_seq_length"],
        bucket_width=FLAGS.bucket_width)
    compression_table(
        FLAGS.out, teacher, make_config, methods=methods,
        distill=(False, True) if FLAGS.labels_only and not FLAGS.runlocal
        else (True,),
        epochs=FLAGS.epochs, learning_rate=FLAGS.learning_rate,
        make_pretrain_config=get_pretrain_config,
        bucket_width=FLAGS.bucket_width, **sizes)


if __name__ == "__main__":
    _common.run(main)
