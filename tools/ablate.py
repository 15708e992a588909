"""Pretraining ablations of the papers' claims at small scale, on real text.

    python tools/ablate.py --out=DIR [--steps=300] [--batch_size=16] \
        [--groups=ffn,layernorm,normalizer,distillation] [--vocab_size=4000]

Pretrains every variant from scratch at equal steps on the embedded corpus
(same seed, same data order) with ``trimzoo.training.pretrain``: FFN in
every layer / every 2nd / every 3rd / none, layernorm "all" vs
"one_per_block", each attention normaliser on the TrimBERT shape, and a
Bort-shaped student with and without distillation from the pretrained BERT
variant. Writes ``DIR/ablation.md``, ``DIR/ablation.json`` (held-out MLM
loss and accuracy, step time) and ``DIR/loss_vs_time.png``; the runs stay
in ``DIR/runs/`` and a re-run with the same settings resumes (other
settings are refused). The library is
``trimzoo.experiments.ablation``; the pretraining settings are
``configs/pretrain.py``'s, shrunk by the flags below.
"""

import json
import logging
import os

import _common  # noqa: F401  (path and logging set-up)
from absl import app, flags

flags.DEFINE_string("out", None, "Output folder.")
flags.DEFINE_list("groups", [], "Groups to run (default: all): ffn, "
                  "layernorm, normalizer, distillation.")
flags.DEFINE_integer("steps", 300, "Training steps of every variant.")
flags.DEFINE_integer("batch_size", 16, "Sequences per step.")
flags.DEFINE_integer("seq_len", 128, "Tokens per sequence.")
flags.DEFINE_float("learning_rate", 5e-4, "Peak AdamW learning rate.")
flags.DEFINE_integer("warmup_steps", None, "Warm-up steps (default: 10% "
                     "of --steps).")
flags.DEFINE_integer("seed", 0, "Seed of the data order, masks and "
                     "initialisation (the same for every variant).")
flags.DEFINE_integer("log_every", 10, "Steps between logged losses.")
flags.DEFINE_integer("eval_batches", 12, "Held-out batches evaluated.")
flags.DEFINE_integer("timing_rounds", 5, "Round-robin rounds of the "
                     "step-time measurement.")
flags.DEFINE_string("vocab", "", "Tokenizer folder or vocab.txt (as "
                    "--config.data.vocab of pretrain.py); empty = learn one "
                    "of --vocab_size tokens from the corpus.")
flags.DEFINE_integer("vocab_size", 4000, "Size of the WordPiece vocabulary "
                     "learned from the corpus when --vocab is empty; 0 = "
                     "the embedded bert-base-uncased vocabulary.")
flags.DEFINE_string("bert", "bert_mini", "Preset of the BERT variants.")
flags.DEFINE_string("trimbert", "trimbert_mini", "Preset of the normaliser "
                    "variants.")
flags.DEFINE_string("student", "bort_mini", "Preset of the distilled "
                    "student.")
flags.mark_flag_as_required("out")
FLAGS = flags.FLAGS


def vocabulary():
    """--vocab, or a WordPiece vocabulary of --vocab_size tokens learned
    from the corpus into OUT/vocab_<size> (once; re-runs reuse it). A small
    vocabulary keeps the 30k-row embedding table, most of whose rows the
    short runs never see, from dominating the ablated layers."""
    if FLAGS.vocab or not FLAGS.vocab_size:
        return FLAGS.vocab
    from trimzoo.data import pretraining

    folder = os.path.abspath(os.path.join(FLAGS.out,
                                          f"vocab_{FLAGS.vocab_size}"))
    if not os.path.exists(os.path.join(folder, "vocab.txt")):
        pretraining.build_wordpiece_vocabulary(
            folder, FLAGS.vocab_size,
            **pretraining.resolve_sources(""))
    return folder


def base_config():
    from configs.pretrain import get_config

    config = get_config(f"model={FLAGS.bert}")
    config.seed = FLAGS.seed
    config.strategy = "auto"
    config.data.max_seq_length = FLAGS.seq_len
    config.data.vocab = vocabulary()
    config.data.shuffle_buffer = 2_000
    config.train.batch_size = FLAGS.batch_size
    config.train.steps = FLAGS.steps
    config.train.learning_rate = FLAGS.learning_rate
    config.train.warmup_steps = (FLAGS.warmup_steps
                                 if FLAGS.warmup_steps is not None
                                 else max(1, FLAGS.steps // 10))
    config.train.log_every = FLAGS.log_every
    config.train.steps_per_execution = FLAGS.log_every
    config.train.keep_checkpoints = 1
    return config


def main(argv):
    del argv
    logging.getLogger().setLevel(logging.WARNING)
    from trimzoo.experiments import ablation
    from trimzoo.utils.run_folder import RunFolder

    entries = ablation.OUTPUTS + (f"vocab_{FLAGS.vocab_size}",)
    with RunFolder(FLAGS.out, "ablate", {}, entries, adopt="runs"):
        _run(ablation)


def _run(ablation):
    variants = ablation.select(
        ablation.default_variants(FLAGS.bert, FLAGS.trimbert, FLAGS.student),
        FLAGS.groups)
    results = ablation.run_ablation(
        base_config(), FLAGS.out, variants, eval_batches=FLAGS.eval_batches,
        timing_rounds=FLAGS.timing_rounds)
    print(f"Report: {os.path.abspath(os.path.join(FLAGS.out, 'ablation.md'))}")
    for row in results["variants"]:
        print(f"  {row['name']:26s} eval loss {row['eval_mlm_loss']:.3f} "
              f"acc {row['eval_mlm_accuracy']:.3f} step "
              f"{row.get('step_ms') or float('nan'):.0f} ms")
    if results["recommended_normalizer"]:
        print("Recommended TrimBERT normaliser: "
              + json.dumps(results["recommended_normalizer"]))


if __name__ == "__main__":
    _common.run(main)
