r"""The main job: Poor Man's BERT on a real pretrained checkpoint, end to end.

1. import the embedded pretrained BERT (all-MiniLM-L6-v2, 6 layers);
2. make its Poor Man's BERT version (top 2 layers dropped);
3. fine-tune both on the embedded Rotten Tomatoes sentiment task;
4. export the dropped model to TFLite (dynamic-range int8) behind the parity
   gate;
5. write ``OUT/report.md``, ``OUT/results.json`` and ``OUT/accuracy_latency.png``.

    python tools/demo.py --out=demo_out [--train_examples=4000 --epochs=1]
"""

import _common  # noqa: F401  (path and logging set-up)
from absl import app, flags

flags.DEFINE_string("out", "demo_out", "Output folder.")
flags.DEFINE_integer("train_examples", 4000,
                     "Training examples used (0 = the whole train split).")
flags.DEFINE_integer("epochs", 1, "Fine-tuning epochs per model.")
flags.DEFINE_integer("max_seq_length", 64, "Token budget per example.")
flags.DEFINE_bool("export", True, "Export the dropped model to TFLite.")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    from configs.finetune import get_config
    from trimzoo.demo import run_demo

    run_demo(FLAGS.out, lambda: get_config("task=rotten_tomatoes"), train_examples=FLAGS.train_examples,
             epochs=FLAGS.epochs, max_seq_length=FLAGS.max_seq_length,
             export=FLAGS.export)


if __name__ == "__main__":
    app.run(main)
