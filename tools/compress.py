r"""Compress a fine-tuned classifier to a budget: the most accurate model
that fits, measured on this machine's runtime.

    python tools/compress.py --teacher=RUN/best --speedup=3 --out=compressed
    python tools/compress.py --teacher=RUN/best --latency_ms=4 \
        --runtime=tflite_int8 --out=compressed_int8
    python tools/compress.py --teacher=RUN/best --max_accuracy_drop=0.02
    python tools/compress.py --teacher=RUN/best --runtime=tflite_int8 \
        --speedup=15 --speedup_against=keras --out=compressed_15x

The teacher is timed on --runtime (batch 1 and --batch_size, --seq_len
tokens); candidates that stack the routes (layers kept, heads, FFN neurons,
hidden size; --trimbert_knobs adds the TrimBERT ones) are cut from it by
importance, the ones inside the budget are ranked by the search's proxy,
the best --k are healed (hidden-state distillation on the task's texts,
then task distillation on logits) and the most accurate on the validation
split is chosen. Writes OUT/model (a classifier folder), OUT/export (its
TFLite file behind the parity gate), OUT/report.md, OUT/results.json and
OUT/pareto.png. A re-run with the same --out resumes.
"""

import _common  # noqa: F401  (path and logging set-up)
from absl import app, flags

flags.DEFINE_string("teacher", None, "Fine-tuned classifier folder "
                    "(RUN/best, with RUN/config.json beside it).")
flags.DEFINE_string("out", "compress_out", "Output folder; a re-run "
                    "resumes.")
flags.DEFINE_float("speedup", None, "Budget: at least this many times "
                   "faster than the teacher at batch 1 on --runtime.")
flags.DEFINE_float("latency_ms", None, "Budget: at most this many ms per "
                   "call at batch 1 on --runtime.")
flags.DEFINE_integer("max_params", None, "Budget: at most this many "
                     "backbone parameters.")
flags.DEFINE_float("max_accuracy_drop", None, "Keep at least 1 - this of "
                   "the teacher's validation accuracy (0.02 = 98%); the "
                   "fastest such candidate is chosen.")
flags.DEFINE_enum("runtime", "keras", ["keras", "keras_bfloat16",
                                       "tflite_int8"],
                  "Where the candidates run and the budget is measured.")
flags.DEFINE_enum("speedup_against", None, ["keras", "keras_bfloat16",
                                            "tflite_int8"],
                  "Where the teacher is timed (default: --runtime): "
                  "--runtime=tflite_int8 --speedup_against=keras --speedup=15 "
                  "asks for TFLite int8 candidates 15x faster than the "
                  "teacher in Keras float32.")
flags.DEFINE_string("space", "fractions", "Candidate space (see "
                    "trimzoo.search.space): fractions, small, paper or "
                    "'D=..;A=..;H=..;I=..'.")
flags.DEFINE_bool("trimbert_knobs", False, "Also FFN in every 2nd layer and "
                  "the sigmoid attention normaliser.")
flags.DEFINE_string("data", None, "Extra training texts for healing "
                    "(.txt/.csv/.jsonl); default: the teacher's task.")
flags.DEFINE_string("text_column", "text", "Text column of --data.")
flags.DEFINE_integer("seq_len", None, "Tokens per sequence (timing, "
                     "training, the shipped preprocessor); default: the "
                     "length the teacher was fine-tuned with.")
flags.DEFINE_integer("batch_size", 8, "Your batch size (timed besides 1).")
flags.DEFINE_integer("k", 3, "Candidates healed.")
flags.DEFINE_integer("max_measured", 48, "Candidates timed at most.")
flags.DEFINE_integer("rounds", 10, "Timed rounds per candidate.")
flags.DEFINE_integer("proxy_steps", 40, "Distillation steps of the proxy.")
flags.DEFINE_integer("heal_steps", 300, "Hidden-state distillation steps "
                     "(batch 32) of healing stage 1.")
flags.DEFINE_integer("heal_batch_size", 32, "Batch size of healing "
                     "stage 1.")
flags.DEFINE_integer("eval_examples", 0, "Validation and test examples "
                     "scored (0 = all).")
flags.DEFINE_float("heal_attention", None, "Weight of the attention term "
                   "in healing stage 1 (0: hidden states alone); default: "
                   "trimzoo.search.budget.HEAL_ATTENTION.")
flags.DEFINE_integer("epochs", None, "Task distillation epochs (stage 2); "
                     "default: the fine-tuning recipe's (enough for 100 "
                     "steps, 3 to 10).")
flags.DEFINE_float("learning_rate", None, "Stage 2 learning rate; default: "
                   "the fine-tuning recipe's (by width and steps).")
flags.DEFINE_integer("train_examples", 0, "Stage 2 training examples "
                     "(0 = all).")
flags.DEFINE_integer("augment", 0, "Stage 2 also trains on this many "
                     "word-replaced copies of each training example, "
                     "labelled by the teacher (0: none).")
flags.DEFINE_integer("seed", 0, "Seed.")
flags.DEFINE_float("time_budget_min", None, "No new proxy or heal starts "
                   "after this many minutes.")
flags.DEFINE_bool("export", True, "Export the chosen model to TFLite.")
flags.DEFINE_string("compare", None, "A compression table's results.json "
                    "(tools/compression_table.py): its single routes join "
                    "the report and the plot.")
flags.DEFINE_bool("rechoose", False, "On a re-run whose timing picks "
                  "another candidate, take it (the earlier model is kept in "
                  "OUT/earlier/); by default the earlier choice stays.")
flags.DEFINE_bool("overwrite", False, "Start over in an --out that holds "
                  "a compression run of other settings: only what compress "
                  "wrote there is removed.")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    import dataclasses

    from configs.finetune import get_config
    from trimzoo.search.budget import Budget, CompressSettings
    from trimzoo.search.compressor import compress

    budget = Budget(speedup=FLAGS.speedup, latency_ms=FLAGS.latency_ms,
                    max_params=FLAGS.max_params,
                    max_accuracy_drop=FLAGS.max_accuracy_drop)
    # One flag per setting, of the same name: a flag left at None keeps the
    # setting's own default.
    values = {f.name: FLAGS[f.name].value
              for f in dataclasses.fields(CompressSettings)}
    settings = CompressSettings(**{name: value for name, value in
                                   values.items() if value is not None})
    compress(FLAGS.teacher, FLAGS.out, budget, get_config, settings,
             overwrite=FLAGS.overwrite, rechoose=FLAGS.rechoose)

if __name__ == "__main__":
    flags.mark_flags_as_required(["teacher"])
    _common.run(main)
