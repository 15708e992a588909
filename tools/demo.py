r"""The main job: a smaller model that keeps the accuracy, end to end.

1. import the embedded pretrained BERT (all-MiniLM-L6-v2, 6 layers);
2. fine-tune it on the embedded Rotten Tomatoes sentiment task (the teacher);
3. compress it to a model --speedup (2) times faster on this machine
   (``trimzoo.compress``: layers, heads, FFN neurons and hidden size cut
   together, healed by distillation, chosen on validation); or, with
   --route=drop, drop its top 2 layers (Poor Man's BERT) and heal that
   student by task distillation from the teacher (--labels_only_row also
   trains it on labels alone, for comparison);
4. export the compressed (or distilled) student to TFLite (dynamic-range
   int8) behind the parity gate;
5. write ``OUT/report.md``, ``OUT/results.json`` and ``OUT/accuracy_latency.png``.

    python tools/demo.py --out=demo_out [--speedup=2 --route=budget|drop \
        --train_examples=0 --epochs=1 --teacher_epochs=2 --bucket_width=8]
"""

import _common  # noqa: F401  (path and logging set-up)
from absl import app, flags

flags.DEFINE_string("out", "demo_out", "Output folder.")
flags.DEFINE_integer("train_examples", 0,
                     "Training examples used (0 = the whole train split).")
flags.DEFINE_integer("epochs", 1, "Fine-tuning epochs per student.")
flags.DEFINE_integer("teacher_epochs", 2, "The teacher's fine-tuning epochs.")
flags.DEFINE_integer("bucket_width", 8, "Batch reviews of similar length "
                     "together, in buckets this many tokens wide (0 = plain "
                     "shuffled batches).")
flags.DEFINE_integer("max_seq_length", 64, "Token budget per example.")
flags.DEFINE_bool("export", True, "Export the distilled model to TFLite.")
flags.DEFINE_float("teacher_learning_rate", 1e-4, "Teacher's learning rate.")
flags.DEFINE_float("student_learning_rate", 1e-4, "Students' learning rate.")
flags.DEFINE_enum("route", "budget", ["budget", "drop"], "Step 3: compress "
                  "the teacher to --speedup (budget) or drop its top 2 "
                  "layers and distil (drop, Poor Man's BERT).")
flags.DEFINE_float("speedup", 2.0, "The budget of --route=budget: times "
                   "faster than the teacher (Keras float32, batch 1).")
flags.DEFINE_bool("labels_only_row", False, "Also train the dropped model "
                  "on labels alone, to show what distillation adds (about 5 "
                  "more minutes).")
flags.DEFINE_enum("precision", "auto", ["auto", "float32", "bfloat16"],
                  "What the teacher trains in: auto takes bfloat16 on a CPU "
                  "with bfloat16 units where a training step measures "
                  "faster (over three seeds a bfloat16 teacher measured "
                  "0.39 points under float32's, see docs/benchmarks.md); "
                  "the report says which ran.")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    from configs.finetune import get_config
    from trimzoo.demo import OUTPUTS, run_demo
    from trimzoo.utils.run_folder import RunFolder

    with RunFolder(FLAGS.out, "demo", {}, OUTPUTS, adopt="runs"):
        _run(run_demo, get_config)


def _run(run_demo, get_config):
    run_demo(FLAGS.out, lambda: get_config("task=rotten_tomatoes"),
             train_examples=FLAGS.train_examples, epochs=FLAGS.epochs,
             max_seq_length=FLAGS.max_seq_length, export=FLAGS.export,
             teacher_learning_rate=FLAGS.teacher_learning_rate,
             student_learning_rate=FLAGS.student_learning_rate,
             labels_only_row=FLAGS.labels_only_row,
             teacher_epochs=FLAGS.teacher_epochs,
             bucket_width=FLAGS.bucket_width, precision=FLAGS.precision,
             route=FLAGS.route, speedup=FLAGS.speedup)


if __name__ == "__main__":
    _common.run(main)
