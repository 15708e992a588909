"""Trade-off benchmark of the zoo: one command, one report.

    python tools/benchmark.py --out=DIR \
        [--models=bert_base,trimbert_base,bort,bert_large] [--drops=bert_base:4]

Writes ``DIR/report.md``, ``DIR/results.json`` and PNG plots: parameters,
FLOPs per token (checked against the TF profiler), Keras inference latency
and throughput, MLM training-step throughput, TFLite float32 and dynamic
int8 latency, peak memory, the keras-hub peer at the same architecture
timed round-robin with trimzoo, bfloat16 and Keras int8 against float32
(``--precisions``; the peer in the same precision too), the share of the
machine's matmul rate, scaling with sequence length and batch size,
ratios against the reference and the speed goals (met or missed, and why). The default model set (one
mini model per paper) runs in minutes; the goals are about the full set
above (see docs/benchmarks.md). The library is ``trimzoo.bench``.
"""

import os
import shlex
import sys

import _common  # noqa: F401  (path and logging set-up)
from absl import app, flags

from trimzoo.bench import runner as runner_lib

flags.DEFINE_string("out", None, "Output folder.")
flags.DEFINE_list("models", list(runner_lib.DEFAULT_MODELS),
                  "Presets to benchmark (rows).")
flags.DEFINE_list("drops", list(runner_lib.DEFAULT_DROPS),
                  "Layer-dropped rows 'preset:k' (top k layers dropped); "
                  "entries whose preset is not in --models are skipped.")
flags.DEFINE_string("reference", None,
                    "Row the ratios are taken against (default: bert_base "
                    "if present, else the first BERT row).")
flags.DEFINE_integer("seq_len", 128, "Tokens per sequence.")
flags.DEFINE_integer("batch_size", 8, "Batch of the throughput column.")
flags.DEFINE_integer("train_batch_size", 4, "Batch of the training step.")
flags.DEFINE_integer("infer_rounds", 15, "Round-robin rounds, inference.")
flags.DEFINE_integer("train_rounds", 5, "Round-robin rounds, training.")
flags.DEFINE_integer("tflite_rounds", 15, "Round-robin rounds, TFLite.")
flags.DEFINE_integer("scaling_rounds", 3, "Round-robin rounds per scaling "
                     "point.")
flags.DEFINE_list("seq_lens", ["64", "128", "256", "512"],
                  "Sequence lengths of the scaling sweep (batch 1).")
flags.DEFINE_list("batch_sizes", ["1", "2", "4", "8", "16"],
                  "Batch sizes of the scaling sweep.")
flags.DEFINE_list("precisions", list(runner_lib.DEFAULT_PRECISIONS),
                  "Precisions timed against float32: each row's inference "
                  "at batch 1 and --batch_size and, in bfloat16, its "
                  "training step and the keras-hub peer in bfloat16. "
                  "Values: " + ",".join(runner_lib.PRECISIONS) + " (int8, "
                  "int4, float8: Keras model.quantize); 'float32' alone "
                  "switches the phase off.")
flags.DEFINE_string("classifier", None,
                    "A fine-tuned classifier folder (RUN/best of "
                    "tools/finetune.py): its labels on the Rotten Tomatoes "
                    "test split and its speed at batch 1 and --batch_size "
                    "in each of --precisions, against float32.")
flags.DEFINE_integer("classifier_examples", 0, "Test texts the "
                     "--classifier labels are compared on (0: all).")
flags.DEFINE_integer("train_peer_max_params", 200_000_000,
                     "Rows above this many parameters get no keras-hub "
                     "training peer (memory).")
for _phase, _help in (("peers", "keras-hub peers"),
                      ("tflite", "TFLite conversion and latency"),
                      ("scaling", "scaling sweeps"),
                      ("memory", "peak memory (one process per row)"),
                      ("variants", "XLA variants of the reference"),
                      ("profile", "profiler breakdowns"),
                      ("flops_check", "FLOPs check against the TF profiler")):
    flags.DEFINE_bool(_phase, True, f"Measure {_help}.")
flags.DEFINE_bool("progress", True, "Show progress bars.")
flags.mark_flag_as_required("out")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    import tensorflow as tf

    from trimzoo.bench import report
    from trimzoo.utils.run_folder import RunFolder

    # Claimed before the long run: a folder of other files is refused now.
    folder = RunFolder(FLAGS.out, "benchmark", {}, report.OUTPUTS)
    # Every timed shape gets its own tf.function on purpose; TF's warning
    # about retracing would only clutter the output.
    tf.get_logger().setLevel("ERROR")

    config = runner_lib.BenchmarkConfig(
        models=tuple(FLAGS.models),
        reference=FLAGS.reference,
        drops=tuple(FLAGS.drops),
        seq_len=FLAGS.seq_len,
        batch_size=FLAGS.batch_size,
        train_batch_size=FLAGS.train_batch_size,
        infer_rounds=FLAGS.infer_rounds,
        train_rounds=FLAGS.train_rounds,
        tflite_rounds=FLAGS.tflite_rounds,
        scaling_rounds=FLAGS.scaling_rounds,
        seq_lens=tuple(int(v) for v in FLAGS.seq_lens),
        batch_sizes=tuple(int(v) for v in FLAGS.batch_sizes),
        precisions=tuple(FLAGS.precisions),
        classifier=FLAGS.classifier,
        classifier_examples=FLAGS.classifier_examples,
        peers=FLAGS.peers,
        train_peer_max_params=FLAGS.train_peer_max_params,
        tflite=FLAGS.tflite, scaling=FLAGS.scaling,
        memory=FLAGS.memory, variants=FLAGS.variants,
        profile=FLAGS.profile, flops_check=FLAGS.flops_check,
        progress=FLAGS.progress,
    )
    command = "python tools/benchmark.py " + " ".join(
        shlex.quote(a) for a in sys.argv[1:])
    results = runner_lib.run(config, command=command)
    with folder:
        path = report.write_report(results, FLAGS.out)
    print(f"Report: {os.path.abspath(path)}")
    for goal in results["goals"]:
        state = report.goal_state(goal)
        state = "MISSED" if state == "missed" else state
        print(f"  [{state}] {goal['goal']} ({goal['target']})")


if __name__ == "__main__":
    _common.run(main)
